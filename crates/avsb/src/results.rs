//! `avsb results TEST`: a test's experiment results from a running server, as a table per
//! metric (or the API's JSON with `--json`).

use std::io::Write;

use clap::Args;
use serde_json::Value;

use crate::remote::{encode, Remote, RemoteArgs};

/// `avsb results`.
#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// The test.
    pub test: String,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Only these metrics (keys, comma-separated).
    #[arg(long)]
    pub metrics: Option<String>,
    /// `frequentist` or `bayesian`.
    #[arg(long)]
    pub engine: Option<String>,
    /// Sequential testing (always-valid intervals; safe to look every day).
    #[arg(long)]
    pub sequential: bool,
    /// Without CUPED.
    #[arg(long)]
    pub no_cuped: bool,
    /// `holm` or `benjamini-hochberg`.
    #[arg(long)]
    pub correction: Option<String>,
    /// Break down by a dimension the exposures carry.
    #[arg(long)]
    pub dimension: Option<String>,
    /// `current` (since the last change of the ranges) or `all`.
    #[arg(long)]
    pub phase: Option<String>,
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
}

impl ResultsArgs {
    fn query(&self) -> String {
        let mut params: Vec<(&str, String)> = Vec::new();
        let options = [
            ("metrics", &self.metrics),
            ("engine", &self.engine),
            ("correction", &self.correction),
            ("dimension", &self.dimension),
            ("phase", &self.phase),
        ];
        for (name, value) in options {
            if let Some(v) = value {
                params.push((name, v.clone()));
            }
        }
        if self.sequential {
            params.push(("sequential", "true".into()));
        }
        if self.no_cuped {
            params.push(("cuped", "false".into()));
        }
        let joined: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        if joined.is_empty() {
            String::new()
        } else {
            format!("?{}", joined.join("&"))
        }
    }
}

/// Runs `avsb results`.
pub fn results(args: &ResultsArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let remote = Remote::new(&args.remote)?;
    let project = remote.project(&args.remote)?;
    let path = format!(
        "/projects/{}/environments/{}/tests/{}/results{}",
        encode(&project),
        encode(&args.remote.environment),
        encode(&args.test),
        args.query()
    );
    let mut results = remote.get(&path)?;
    let mut told = false;
    while results["computing"] == true {
        if !told {
            eprintln!("avsb: computing the results of a large experiment (started {}); waiting", date(&results["startedAt"]));
            told = true;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        results = remote.get(&path)?;
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&results)?)?;
    } else {
        write!(out, "{}", render(&results))?;
    }
    Ok(0)
}

fn number(v: &Value, digits: usize) -> String {
    v.as_f64().map_or_else(|| "—".to_string(), |x| format!("{x:.digits$}"))
}

fn percent(v: &Value) -> String {
    v.as_f64().map_or_else(|| "—".to_string(), |x| format!("{:+.1}%", x * 100.0))
}

/// The results as text tables.
pub fn render(r: &Value) -> String {
    let mut s = String::new();
    let settings = &r["settings"];
    let relative = settings["relative"].as_bool().unwrap_or(true);
    s.push_str(&format!(
        "{} in {} — units: {} ({}), phase from {}{}\n",
        r["test"].as_str().unwrap_or(""),
        r["environment"].as_str().unwrap_or(""),
        r["variants"].as_array().into_iter().flatten().map(|v| format!("{} {}", v["name"].as_str().unwrap_or(""), v["units"])).collect::<Vec<_>>().join(", "),
        r["identifierType"].as_str().unwrap_or(""),
        crate::results::date(&r["phase"]["from"]),
        if r["phase"]["default"].as_bool() == Some(true) { " (the last change of the ranges)" } else { "" },
    ));
    if r["stale"] == true {
        s.push_str(&format!(
            "These are the results as of {}; newer events are being included and will show on the next look.\n",
            date(&r["asOf"])
        ));
    }
    let srm = &r["srm"];
    if srm["warning"].as_bool() == Some(true) {
        s.push_str(&format!(
            "WARNING: sample-ratio mismatch (p = {}): the split is not what the ranges say; do not trust these results until the cause is found.\n",
            number(&srm["pValue"], 6)
        ));
    } else if let Some(p) = srm["pValue"].as_f64() {
        s.push_str(&format!("Sample ratio: fine (p = {p:.4}).\n"));
    }
    let excluded = &r["excluded"];
    let left_out = ["notSplit", "multipleBuckets", "noIdentifier"].iter().filter_map(|k| excluded[*k].as_u64()).sum::<u64>();
    if left_out > 0 {
        s.push_str(&format!(
            "Left out: {} targeted/forced exposures, {} units seen in several buckets, {} exposures without an identifier.\n",
            excluded["notSplit"], excluded["multipleBuckets"], excluded["noIdentifier"]
        ));
    }
    let bayesian = settings["engine"] == "bayesian";
    for metric in r["metrics"].as_array().into_iter().flatten() {
        s.push('\n');
        s.push_str(&format!(
            "{} ({}{}{})\n",
            metric["name"].as_str().unwrap_or(""),
            metric["type"].as_str().unwrap_or(""),
            if metric["direction"] == "lower" { ", lower is better" } else { "" },
            if metric["guardrail"] == true { ", guardrail" } else { "" }
        ));
        let header = if bayesian { "chance to win" } else { "p-value" };
        let mut rows = vec![[
            "variant".to_string(),
            "units".to_string(),
            "value".to_string(),
            if relative { "lift".to_string() } else { "difference".to_string() },
            "interval".to_string(),
            header.to_string(),
            String::new(),
        ]];
        for v in metric["variants"].as_array().into_iter().flatten() {
            let name = r["variants"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|x| x["bucket"] == v["bucket"])
                .and_then(|x| x["name"].as_str())
                .unwrap_or("")
                .to_string();
            let shown = |x: &Value| if relative { percent(x) } else { number(x, 4) };
            let (lift, interval, p, verdict) = if v["control"] == true {
                ("control".to_string(), String::new(), String::new(), String::new())
            } else if let Some(error) = v["error"].as_str() {
                ("—".to_string(), String::new(), String::new(), error.to_string())
            } else {
                let p = if bayesian {
                    number(&v["chanceToWin"], 3)
                } else {
                    let adjusted = v.get("adjustedPValue").map(|a| format!(" (adj. {})", number(a, 4))).unwrap_or_default();
                    format!("{}{adjusted}", number(&v["pValue"], 4))
                };
                (shown(&v["lift"]), format!("[{}, {}]", shown(&v["ciLow"]), shown(&v["ciHigh"])), p, v["verdict"].as_str().unwrap_or("").to_string())
            };
            rows.push([name, number(&v["units"], 0), number(&v["value"], 4), lift, interval, p, verdict]);
        }
        let widths: Vec<usize> = (0..7).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
        for row in rows {
            let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            s.push_str(line.join("  ").trim_end());
            s.push('\n');
        }
    }
    if r["metrics"].as_array().is_none_or(Vec::is_empty) {
        s.push_str("\nNo metrics yet: create one (POST /api/v1/projects/<project>/metrics, or the console's Metrics page).\n");
    }
    s.push_str(&format!(
        "\n{} statistics, alpha {}{}{}; {}. Computed {}.\n",
        settings["engine"].as_str().unwrap_or(""),
        settings["alpha"],
        if settings["sequentialTuning"].is_number() { ", sequential" } else { "" },
        settings["cupedDays"].as_f64().map(|d| format!(", CUPED over {d} days before exposure")).unwrap_or_default(),
        settings["statistics"].as_str().unwrap_or(""),
        date(&r["asOf"]),
    ));
    s
}

/// An epoch-millisecond time as UTC text.
pub fn date(v: &Value) -> String {
    v.as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "—".into(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}
