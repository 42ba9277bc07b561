//! A test's results in one environment: who was analysed (units, the sample-ratio check, what
//! was left out and why), a table per metric with each bucket's value and its lift against the
//! control with an interval bar, the cumulative lift and units per day, and the settings the
//! statistics ran with. Every setting is in the URL (a GET form), so a result is a link.
//!
//! The numbers are `AppState::results` (cached per settings until an event, the matrix or a
//! metric changes); this page only puts them into words and pictures.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::bars;
use super::charts::{self, Boundary, Line, Tone};
use super::format::{ago, count, date, percent, url_component};
use super::pages::{environments, project_access, segments, state_of, TestState};
use super::{field_error, render_status, ConsoleError, Layout, PageResult, Signed};
use crate::ops::metrics::Metric;
use crate::ops::WriteError;
use crate::results::analysis::{CorrectionChoice, EngineChoice, VariantResult, Verdict};
use crate::results::metric::{Direction, MetricType};
use crate::results::{MetricResults, Results, ResultsAnswer, ResultsQuery, DAY};
use crate::store::now_millis;
use crate::SharedState;

/// The page's settings as the URL holds them (every one optional: empty means the default).
#[derive(Debug, Clone, Default)]
struct Settings {
    env: String,
    metrics: Vec<String>,
    engine: String,
    difference: String,
    sequential: String,
    cuped: String,
    correction: String,
    alpha: String,
    control: String,
    phase: String,
    dimension: String,
    chart: String,
}

impl Settings {
    /// Reads the query string; `metrics` may repeat (the form's checkboxes) or hold a
    /// comma-separated list (the API's form). Unknown names are ignored.
    fn read(pairs: &[(String, String)]) -> Settings {
        let mut s = Settings::default();
        for (name, value) in pairs {
            let value = value.trim().to_string();
            match name.as_str() {
                "env" => s.env = value,
                "metrics" => {
                    for key in value.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                        if !s.metrics.iter().any(|m| m == key) {
                            s.metrics.push(key.to_string());
                        }
                    }
                }
                "engine" => s.engine = value,
                "difference" => s.difference = value,
                "sequential" => s.sequential = value,
                "cuped" => s.cuped = value,
                "correction" => s.correction = value,
                "alpha" => s.alpha = value,
                "control" => s.control = value,
                "phase" => s.phase = value,
                "dimension" => s.dimension = value,
                "chart" => s.chart = value,
                _ => {}
            }
        }
        s
    }

    /// The results query, or each setting that is not valid (by the form field's id).
    fn query(&self) -> Result<ResultsQuery, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, message: &str| errors.push((field.to_string(), message.to_string()));
        let switch = |text: &str| match text {
            "on" | "true" => Ok(Some(true)),
            "off" | "false" => Ok(Some(false)),
            "" => Ok(None),
            _ => Err(()),
        };
        let mut query = ResultsQuery {
            metrics: (!self.metrics.is_empty()).then(|| self.metrics.join(",")),
            dimension: (!self.dimension.is_empty()).then(|| self.dimension.clone()),
            ..ResultsQuery::default()
        };
        query.engine = match self.engine.as_str() {
            "" => None,
            "frequentist" => Some(EngineChoice::Frequentist),
            "bayesian" => Some(EngineChoice::Bayesian),
            _ => {
                bad("engine", "Choose the frequentist or the Bayesian engine");
                None
            }
        };
        query.difference = match self.difference.as_str() {
            "" => None,
            "relative" | "absolute" => Some(self.difference.clone()),
            _ => {
                bad("difference", "Choose a relative or an absolute difference");
                None
            }
        };
        query.sequential = switch(&self.sequential).unwrap_or_else(|()| {
            bad("sequential", "Sequential testing is on or off");
            None
        });
        query.cuped = switch(&self.cuped).unwrap_or_else(|()| {
            bad("cuped", "CUPED is on or off");
            None
        });
        query.correction = match self.correction.as_str() {
            "" | "none" => None,
            "holm" => Some(CorrectionChoice::Holm),
            "benjamini-hochberg" => Some(CorrectionChoice::BenjaminiHochberg),
            _ => {
                bad("correction", "Choose no correction, Holm or Benjamini-Hochberg");
                None
            }
        };
        if !self.alpha.is_empty() {
            match self.alpha.parse::<f64>() {
                Ok(a) => query.alpha = Some(a),
                Err(_) => bad("alpha", "Enter the significance level as a number, such as 0.05"),
            }
        }
        if !self.control.is_empty() {
            match self.control.parse::<i32>() {
                Ok(c) => query.control = Some(c),
                Err(_) => bad("control", "Choose the control among the test's buckets"),
            }
        }
        match self.phase.as_str() {
            "" | "current" => {}
            "all" => query.phase = Some("all".into()),
            revision => {
                let id = revision.trim_start_matches('r');
                if id.parse::<i64>().is_ok() {
                    query.from_revision = Some(id.to_string());
                    query.to_revision = Some(id.to_string());
                } else {
                    bad("phase", "Choose the current phase, all of them, or one revision's");
                }
            }
        }
        // The analysis' own checks (alpha's range...), so every problem is named at once.
        if let Err(WriteError::Refused { message, at, .. }) = query.settings() {
            let field = at.map_or("settings", |(_, f)| form_field(&f));
            if !errors.iter().any(|(f, _)| f == field) {
                errors.push((field.to_string(), sentence(&message)));
            }
        }
        if errors.is_empty() { Ok(query) } else { Err(errors) }
    }

    /// The page's URL with these settings, the chart's metric replaced by `chart` if given.
    fn url(&self, project: &str, test: &str, chart: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("env", &self.env);
        for m in &self.metrics {
            query.append_pair("metrics", m);
        }
        for (name, value) in [
            ("engine", &self.engine),
            ("difference", &self.difference),
            ("sequential", &self.sequential),
            ("cuped", &self.cuped),
            ("correction", &self.correction),
            ("alpha", &self.alpha),
            ("control", &self.control),
            ("phase", &self.phase),
            ("dimension", &self.dimension),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if let Some(chart) = chart.or((!self.chart.is_empty()).then_some(self.chart.as_str())) {
            query.append_pair("chart", chart);
        }
        format!("/projects/{}/tests/{}/results?{}", url_component(project), url_component(test), query.finish())
    }
}

/// A choice of a select: value, label, selected.
type Choice = (String, String, bool);

fn choices(current: &str, options: &[(&str, &str)]) -> Vec<Choice> {
    options.iter().map(|(v, l)| ((*v).to_string(), (*l).to_string(), current == *v)).collect()
}

/// An environment to choose, and whether the test is in it.
struct EnvChoice {
    key: String,
    name: String,
    present: bool,
    selected: bool,
}

#[derive(Template)]
#[template(path = "results.html")]
struct ResultsPage {
    layout: Layout,
    project: String,
    name: String,
    kind: String,
    tab: &'static str,
    env_name: String,
    envs: Vec<EnvChoice>,
    /// The form's fields.
    metric_choices: Vec<(String, String, bool)>,
    engine: Vec<Choice>,
    difference: Vec<Choice>,
    sequential: Vec<Choice>,
    cuped: Vec<Choice>,
    correction: Vec<Choice>,
    controls: Vec<Choice>,
    phases: Vec<Choice>,
    alpha: String,
    dimension: String,
    errors: Vec<(String, String)>,
    /// The test is not in the chosen environment: where it is.
    absent: bool,
    /// The first computation of these results is under way (a large experiment), since when.
    computing: Option<String>,
    report: Option<Report>,
}

impl ResultsPage {
    fn error(&self, field: &str) -> Option<&str> {
        field_error(&self.errors, field)
    }
}

/// What the results say, ready to show.
struct Report {
    /// The header line's parts.
    summary: Vec<String>,
    srm_warning: Option<String>,
    srm_line: String,
    srm_checks: Vec<String>,
    excluded: String,
    /// Whether anything was left out.
    any_excluded: bool,
    /// No unit was analysed: the checklist instead of tables.
    no_exposures: bool,
    checklist: Vec<CheckItem>,
    no_metrics: bool,
    goals: Vec<MetricTable>,
    guardrails: Vec<MetricTable>,
    dimension: Option<(String, Vec<DimensionView>)>,
    chart: Option<ChartView>,
    /// How the numbers were computed, in sentences.
    method: Vec<String>,
    as_of: String,
    stat_heading: String,
    lift_heading: String,
    explain_bayesian: bool,
    /// These are the last results while newer ones are computed.
    stale: bool,
}

/// One item of the empty state's checklist.
struct CheckItem {
    /// `ok`, `problem`, or `check` (for the reader to check).
    status: &'static str,
    text: String,
    /// Where to do it: address and words.
    link: Option<(String, String)>,
}

/// One metric's table.
struct MetricTable {
    key: String,
    name: String,
    description: String,
    meta: String,
    guardrail: bool,
    /// In a breakdown: the name only (its meta and description are in the main tables).
    compact: bool,
    axis: String,
    rows: Vec<MetricRow>,
}

/// One bucket of a metric.
struct MetricRow {
    swatch: String,
    bucket: String,
    control: bool,
    /// The bucket's name does not say it is the control.
    mark_control: bool,
    units: String,
    value: String,
    lift: String,
    bar: String,
    stat: String,
    stat_note: String,
    verdict: &'static str,
}

/// A dimension's value and its tables.
struct DimensionView {
    label: String,
    units: String,
    tables: Vec<MetricTable>,
}

/// The daily charts of one metric.
struct ChartView {
    metric: String,
    /// `lift` or `difference`.
    change: &'static str,
    choices: Vec<(String, String, bool)>,
    lift: String,
    units: String,
    legend: Vec<(String, String)>,
    /// The numbers behind the charts: per day, its cells.
    heading: Vec<String>,
    days: Vec<Vec<String>>,
}

/// How one comparison's numbers are written, from the analysis settings.
struct Style {
    relative: bool,
    bayesian: bool,
    corrected: bool,
}

impl Style {
    fn of(results: &Results) -> Style {
        Style {
            relative: results.settings.relative,
            bayesian: results.settings.engine == EngineChoice::Bayesian,
            corrected: results.settings.correction != CorrectionChoice::None,
        }
    }

    fn change(&self, v: f64, metric_type: MetricType) -> String {
        if self.relative { charts::signed_percent(v) } else { charts::signed_difference(v, metric_type == MetricType::Conversion) }
    }

    fn value(v: Option<f64>, metric_type: MetricType) -> String {
        match v {
            None => "—".into(),
            Some(v) if metric_type == MetricType::Conversion => charts::rate(v),
            Some(v) => charts::number(v),
        }
    }
}

/// A bucket's name (its value when it has none).
fn bucket_name(results: &Results, bucket: i32) -> String {
    results.variants.iter().find(|v| v.bucket == bucket).map_or_else(|| bucket.to_string(), |v| v.name.clone())
}

fn tone(verdict: Verdict) -> Tone {
    match verdict {
        Verdict::Better => Tone::Better,
        Verdict::Worse => Tone::Worse,
        Verdict::Inconclusive => Tone::Inconclusive,
    }
}

fn type_label(t: MetricType) -> &'static str {
    match t {
        MetricType::Conversion => "conversion rate",
        MetricType::Mean => "mean per unit",
        MetricType::Count => "count per unit",
        MetricType::Ratio => "ratio",
    }
}

/// A metric's table, its rows sharing one interval axis.
fn metric_table(m: &MetricResults, results: &Results, defined: &[Metric], style: &Style, compact: bool) -> MetricTable {
    let definition = defined.iter().find(|d| d.key == m.key).map(|d| &d.definition);
    let bound = charts::axis_bound(
        m.variants.iter().filter(|v| v.error.is_none()).flat_map(|v| [v.ci_low, v.ci_high, v.lift]).flatten(),
    );
    let mut meta = vec![type_label(m.metric_type).to_string()];
    meta.push(if m.direction == Direction::Higher { "higher is better" } else { "lower is better" }.into());
    if let Some(hours) = definition.and_then(|d| d.window_hours) {
        meta.push(format!("events within {} h of exposure", charts::number(hours).trim_end_matches(".00")));
    }
    if m.cuped {
        meta.push("CUPED-adjusted".into());
    }
    if let Some(cap) = m.cap {
        meta.push(format!("values capped at {}", charts::number(cap)));
    }
    let format = |v: f64| style.change(v, m.metric_type);
    let axis = bound.map_or_else(String::new, |b| charts::interval_axis(b, format));
    let rows = m.variants.iter().map(|v| metric_row(v, m, results, bound, style)).collect();
    MetricTable {
        key: m.key.clone(),
        name: m.name.clone(),
        description: definition.map_or_else(String::new, |d| d.description.clone()),
        meta: meta.join(" · "),
        guardrail: m.guardrail,
        compact,
        axis,
        rows,
    }
}

fn metric_row(v: &VariantResult, m: &MetricResults, results: &Results, bound: Option<f64>, style: &Style) -> MetricRow {
    let name = bucket_name(results, v.bucket);
    let mut row = MetricRow {
        swatch: bars::swatch(v.bucket),
        mark_control: v.control && !name.eq_ignore_ascii_case("control"),
        bucket: name.clone(),
        control: v.control,
        units: count(v.units.max(0.0) as usize),
        value: Style::value(v.value, m.metric_type),
        lift: String::new(),
        bar: String::new(),
        stat: String::new(),
        stat_note: String::new(),
        verdict: "",
    };
    if v.control {
        row.lift = "control".into();
        return row;
    }
    if let Some(error) = &v.error {
        row.lift = format!("No comparison: {error}.");
        return row;
    }
    let (Some(lift), Some(low), Some(high)) = (v.lift, v.ci_low, v.ci_high) else {
        row.lift = "No comparison yet.".into();
        return row;
    };
    let verdict = v.verdict.map_or(Tone::Inconclusive, tone);
    let format = |x: f64| style.change(x, m.metric_type);
    row.lift = format!("{} [{}, {}]", format(lift), format(low), format(high));
    row.verdict = verdict.word();
    if let Some(b) = bound {
        let label = format!("{name}: {} (interval {} to {}), {}", format(lift), format(low), format(high), verdict.word());
        row.bar = charts::interval_bar(low, lift, high, b, verdict, &label);
    }
    if style.bayesian {
        if let Some(chance) = v.chance_to_win {
            row.stat = format!("{:.1}%", chance * 100.0);
        }
        if let Some([_, loss]) = v.risk {
            let loss = if style.relative { percent(loss.abs()) } else { charts::number(loss.abs()) };
            row.stat_note = format!("expected loss if you pick it: {loss}");
        }
    } else if let Some(adjusted) = v.adjusted_p_value {
        row.stat = charts::p_value(adjusted);
        row.stat_note = v.p_value.map_or_else(String::new, |p| format!("unadjusted {}", charts::p_value(p)));
    } else if let Some(p) = v.p_value {
        row.stat = charts::p_value(p);
    }
    row
}

/// The sample-ratio banner (when the split is off), the quiet line otherwise, and each check.
fn srm_words(results: &Results) -> (Option<String>, String, Vec<String>) {
    let name = |bucket: i32| bucket_name(results, bucket);
    let describe = |check: &crate::results::analysis::SrmCheck| {
        let expected_total: f64 = check.buckets.iter().map(|b| b.expected_share).sum();
        let observed_total: u64 = check.buckets.iter().map(|b| b.observed).sum();
        let expected: Vec<String> = check
            .buckets
            .iter()
            .map(|b| charts::share_number(if expected_total > 0.0 { b.expected_share / expected_total } else { 0.0 }))
            .collect();
        let observed: Vec<String> =
            check.buckets.iter().map(|b| charts::share_number(b.observed as f64 / observed_total.max(1) as f64)).collect();
        let names: Vec<String> = check.buckets.iter().map(|b| name(b.bucket)).collect();
        let units: Vec<String> = check.buckets.iter().map(|b| count(b.observed as usize)).collect();
        (expected.join("/"), observed.join("/"), names.join("/"), units.join("/"))
    };
    let several = results.srm.checks.len() > 1;
    let checks: Vec<String> = if several {
        results
            .srm
            .checks
            .iter()
            .map(|c| {
                let (expected, observed, names, units) = describe(c);
                format!(
                    "Ranges of r{}, allocation {}: expected {expected}, got {observed} ({names}: {units} units), p {}",
                    c.revision,
                    c.allocation + 1,
                    p_words(c.p_value)
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let worst = results.srm.checks.iter().min_by(|a, b| a.p_value.total_cmp(&b.p_value));
    let unknown = if results.srm.unknown_allocation > 0 {
        format!(
            " {} units without an allocation (older SDKs) were left out of the check.",
            count(results.srm.unknown_allocation as usize)
        )
    } else {
        String::new()
    };
    match (results.srm.warning, worst) {
        (true, Some(check)) => {
            let (expected, observed, names, _) = describe(check);
            let which = if several { format!(" in the ranges of r{}, allocation {}", check.revision, check.allocation + 1) } else { String::new() };
            let threshold = charts::p_value(results.srm.threshold).trim_start_matches('<').to_string();
            let p = if check.p_value < results.srm.threshold { format!("p<{threshold}") } else { format!("p={}", charts::p_value(check.p_value)) };
            let banner = format!(
                "Sample ratio mismatch ({p}): expected {expected}, got {observed} ({names}){which}. Don't trust these numbers until the cause is found."
            );
            (Some(banner), unknown.trim().to_string(), checks)
        }
        (_, Some(check)) => {
            let (expected, observed, _, _) = describe(check);
            let line = format!(
                "The split matches the ranges: expected {expected}, got {observed} (sample-ratio check p = {}; a mismatch is flagged below {}).{unknown}",
                charts::p_value(results.srm.p_value.unwrap_or(check.p_value)),
                results.srm.threshold
            );
            (None, line, checks)
        }
        (_, None) => (None, format!("No sample-ratio check yet: it needs units in the split's buckets.{unknown}"), checks),
    }
}

fn p_words(p: f64) -> String {
    if p < 0.001 { "<0.001".into() } else { format!("= {}", charts::p_value(p)) }
}

/// What was left out, in plain words.
fn excluded_words(results: &Results) -> String {
    let e = &results.excluded;
    let mut parts = Vec::new();
    let plural = |n: u64, one: &str, many: &str| format!("{} {}", count(n as usize), if n == 1 { one } else { many });
    if e.outside_phase > 0 {
        parts.push(format!("{} outside this phase", plural(e.outside_phase, "exposure", "exposures")));
    }
    if e.not_split > 0 {
        parts.push(format!("{} not from the split (targeted, forced or a default)", plural(e.not_split, "exposure", "exposures")));
    }
    if e.no_identifier > 0 {
        parts.push(format!("{} without a {} identifier", plural(e.no_identifier, "exposure", "exposures"), results.identifier_type));
    }
    if e.multiple_buckets > 0 {
        parts.push(format!("{} exposed to more than one bucket", plural(e.multiple_buckets, "unit", "units")));
    }
    if parts.is_empty() {
        "Nothing was left out: every exposure in this phase came from the split.".into()
    } else {
        format!("Left out: {}.", parts.join("; "))
    }
}

/// The header line: the test, environment, phase, days and units.
fn summary(results: &Results, env_name: &str) -> Vec<String> {
    let first = results.phases.first().map_or(results.phase.from, |p| p.from);
    let from = results.phase.from.max(first);
    let to = results.phase.to.unwrap_or(results.as_of).min(results.as_of);
    let revisions: Vec<&str> = results
        .phases
        .iter()
        .filter(|p| p.from <= to && p.to.is_none_or(|end| end > from))
        .map(|p| p.revision.as_str())
        .collect();
    let revs = match revisions.as_slice() {
        [] => String::new(),
        [one] => format!("r{one}"),
        [a, .., b] => format!("r{a}–r{b}"),
    };
    let until = results.phase.to.map_or_else(|| "now".to_string(), date);
    let phase = if results.phase.default {
        format!("since {revs} on {}", date(from))
    } else {
        format!("{revs}: {} to {until}", date(from))
    };
    let days = (to - from).max(0) as f64 / DAY as f64;
    let days = match days {
        d if d < 1.0 => "less than a day".to_string(),
        d if d < 2.0 => "1 day".to_string(),
        d => format!("{} days", d.floor()),
    };
    let units: u64 = results.variants.iter().map(|v| v.units).sum();
    vec![
        env_name.to_string(),
        phase.trim().to_string(),
        days,
        format!("{} {} {}", count(units as usize), results.identifier_type, if units == 1 { "unit" } else { "units" }),
    ]
}

/// The statistics used, in sentences.
fn method(results: &Results) -> Vec<String> {
    let s = &results.settings;
    let level = charts::share_number(1.0 - s.alpha);
    let difference = if s.relative { "relative lift" } else { "absolute difference" };
    let mut lines = vec![match s.engine {
        EngineChoice::Frequentist => format!(
            "Frequentist: {difference} with {level}% confidence intervals and two-sided p-values (Welch's t-test), significant below {}.",
            s.alpha
        ),
        EngineChoice::Bayesian => format!(
            "Bayesian: {difference} with {level}% credible intervals, the chance to beat the control and the expected loss; better or worse past {level}%."
        ),
    }];
    lines.push(match s.sequential_tuning {
        Some(t) => format!("Sequential testing on (tuned for {} units): the intervals stay valid however often you look.", count(t as usize)),
        None => "Sequential testing off: look once, at the planned end, for the stated error rates.".into(),
    });
    lines.push(match s.cuped_days {
        Some(d) => format!("CUPED on: each unit's same metric in the {} days before its first exposure reduces the noise (ratio metrics are not adjusted).", charts::number(d).trim_end_matches(".00")),
        None => "CUPED off.".into(),
    });
    lines.push(match s.correction {
        CorrectionChoice::None => "No correction for comparing several metrics and buckets.".into(),
        _ if s.engine == EngineChoice::Bayesian => "Corrections for multiple comparisons adjust p-values, so they do not change Bayesian results.".into(),
        CorrectionChoice::Holm => "Holm's correction over the goal metrics' comparisons (guardrails left out).".into(),
        CorrectionChoice::BenjaminiHochberg => "Benjamini-Hochberg's correction over the goal metrics' comparisons (guardrails left out).".into(),
    });
    lines.push(format!("Computed by {}.", s.statistics));
    lines
}

/// The daily charts of the chosen metric.
fn chart(results: &Results, settings: &Settings, project: &str, test: &str, style: &Style) -> Option<ChartView> {
    let chosen = results.metrics.iter().find(|m| m.key == settings.chart).or_else(|| results.metrics.first())?;
    let daily = results.daily.metrics.iter().find(|d| d.key == chosen.key)?;
    if daily.days.is_empty() {
        return None;
    }
    let name = |bucket: i32| bucket_name(results, bucket);
    let format = |v: f64| style.change(v, chosen.metric_type);
    let mut lifts: Vec<Line> = Vec::new();
    let mut units: Vec<Line> = results.variants.iter().map(|v| Line { bucket: v.bucket, points: Vec::new() }).collect();
    for point in &daily.days {
        for v in &point.variants {
            if let Some(line) = units.iter_mut().find(|l| l.bucket == v.bucket) {
                line.points.push((point.date, v.units, 0.0, 0.0));
            }
            if v.bucket == results.control {
                continue;
            }
            if let (Some(lift), Some(low), Some(high)) = (v.lift, v.ci_low, v.ci_high) {
                match lifts.iter_mut().find(|l| l.bucket == v.bucket) {
                    Some(line) => line.points.push((point.date, lift, low, high)),
                    None => lifts.push(Line { bucket: v.bucket, points: vec![(point.date, lift, low, high)] }),
                }
            }
        }
    }
    let boundaries: Vec<Boundary> = results.phases.iter().map(|p| Boundary { time: p.from, label: format!("r{}", p.revision) }).collect();
    let marked: Vec<String> = {
        let (start, end) = (daily.days[0].date - DAY, daily.days[daily.days.len() - 1].date);
        boundaries.iter().filter(|b| b.time > start && b.time < end).map(|b| format!("{} on {}", b.label, charts::day(b.time))).collect()
    };
    let marks = if marked.is_empty() { String::new() } else { format!(" Ranges changed: {}.", marked.join(", ")) };
    let lift_words: Vec<String> = lifts
        .iter()
        .filter_map(|l| {
            let (first, last) = (l.points.first()?, l.points.last()?);
            Some(format!("{}: {} on {} to {} on {}", name(l.bucket), format(first.1), charts::day(first.0), format(last.1), charts::day(last.0)))
        })
        .collect();
    let lift_svg = if lifts.is_empty() {
        String::new()
    } else {
        let label = format!("Cumulative lift of {} against the control, by day: {}.{marks}", chosen.name, lift_words.join("; "));
        charts::lift_chart(&lifts, &boundaries, &format, &label)
    };
    let unit_words: Vec<String> =
        units.iter().filter_map(|l| Some(format!("{} {}", name(l.bucket), count(l.points.last()?.1 as usize)))).collect();
    let units_svg = charts::units_chart(&units, &boundaries, &format!("Units exposed so far, by day: {}.{marks}", unit_words.join(", ")));
    let mut heading = vec!["Day".to_string()];
    heading.extend(lifts.iter().map(|l| format!("{} lift", name(l.bucket))));
    heading.extend(units.iter().map(|l| format!("{} units", name(l.bucket))));
    let days = daily
        .days
        .iter()
        .map(|point| {
            let mut cells = vec![charts::day(point.date)];
            for line in &lifts {
                let cell = point.variants.iter().find(|v| v.bucket == line.bucket).and_then(|v| {
                    Some(format!("{} [{}, {}]", format(v.lift?), format(v.ci_low?), format(v.ci_high?)))
                });
                cells.push(cell.unwrap_or_else(|| "—".into()));
            }
            for line in &units {
                let n = point.variants.iter().find(|v| v.bucket == line.bucket).map_or(0.0, |v| v.units);
                cells.push(count(n as usize));
            }
            cells
        })
        .collect();
    Some(ChartView {
        metric: chosen.name.clone(),
        change: if style.relative { "lift" } else { "difference" },
        choices: results
            .metrics
            .iter()
            .map(|m| (m.name.clone(), settings.url(project, test, Some(&m.key)), m.key == chosen.key))
            .collect(),
        lift: lift_svg,
        units: units_svg,
        legend: results.variants.iter().map(|v| (bars::swatch(v.bucket), v.name.clone())).collect(),
        heading,
        days,
    })
}

fn report(results: &Results, defined: &[Metric], settings: &Settings, project: &str, env_name: &str, split: (&'static str, String))
    -> Report {
    let style = Style::of(results);
    let (srm_warning, srm_line, srm_checks) = srm_words(results);
    let tables: Vec<MetricTable> = results.metrics.iter().map(|m| metric_table(m, results, defined, &style, false)).collect();
    let (guardrails, goals): (Vec<MetricTable>, Vec<MetricTable>) = tables.into_iter().partition(|t| t.guardrail);
    let dimension = results.dimension.as_ref().map(|d| {
        let values = d
            .values
            .iter()
            .map(|v| DimensionView {
                label: v.value.clone().unwrap_or_else(|| "(none)".into()),
                units: count(v.units as usize),
                tables: v.metrics.iter().map(|m| metric_table(m, results, defined, &style, true)).collect(),
            })
            .collect();
        (d.name.clone(), values)
    });
    let units: u64 = results.variants.iter().map(|v| v.units).sum();
    let env = env_name.to_string();
    let checklist = vec![
        CheckItem {
            status: "check",
            text: format!("Your app sends exposures for this test in {env}: the Python SDK does when it gives a bucket (AvsbServer sends them in the background); other apps post them to /sdk/v1/events with an SDK key of {env}."),
            link: None,
        },
        CheckItem {
            status: "check",
            text: "Apps that ask the server for buckets (Pipet's /groups/identify, OFREP) send none themselves: give their SDK key record exposures (recordExposures).".into(),
            link: Some((format!("/projects/{}/settings/environments", url_component(project)), "SDK keys in Settings".to_string())),
        },
        CheckItem { status: split.0, text: split.1, link: None },
    ];
    let now = now_millis();
    Report {
        summary: summary(results, env_name),
        srm_warning,
        srm_line,
        srm_checks,
        excluded: excluded_words(results),
        any_excluded: {
            let e = &results.excluded;
            e.outside_phase + e.not_split + e.no_identifier + e.multiple_buckets > 0
        },
        no_exposures: units == 0,
        checklist,
        no_metrics: defined.is_empty(),
        goals,
        guardrails,
        dimension,
        chart: chart(results, settings, project, &results.test, &style),
        method: method(results),
        as_of: format!("{} ({}), events up to #{}, revision r{}", date(results.as_of), ago(results.as_of, now), results.last_event_id, results.revision),
        stat_heading: if style.bayesian {
            "Chance to beat control".into()
        } else if style.corrected {
            "p-value (adjusted)".into()
        } else {
            "p-value".into()
        },
        lift_heading: format!(
            "{} ({}% {})",
            if style.relative { "Lift" } else { "Difference" },
            charts::share_number(1.0 - results.settings.alpha),
            if style.bayesian { "credible interval" } else { "CI" }
        ),
        explain_bayesian: style.bayesian,
        stale: results.stale,
    }
}

/// Whether the test splits its units in the environment, in words (the checklist's last item).
fn split_words(definition: &avsb_core::document::TestDefinition, env_name: &str) -> (&'static str, String) {
    match state_of(definition) {
        TestState::Split => {
            let shares: Vec<String> = definition
                .allocations
                .iter()
                .enumerate()
                .map(|(i, _)| segments(definition, i).iter().map(|s| format!("{} {}", s.name, percent(s.share))).collect::<Vec<_>>().join(", "))
                .collect();
            ("ok", format!("The test splits units in {env_name}: {}.", shares.join("; ")))
        }
        TestState::Single => ("problem", format!("The test gives one bucket to everyone in {env_name}: nobody is compared until its ranges split units.")),
        TestState::Inactive => ("problem", format!("The test is inactive in {env_name}: every unit gets the inactive bucket, which is never analysed.")),
    }
}

/// `GET /projects/{project}/tests/{test}/results?env=&metrics=&engine=...`.
pub async fn show(
    State(state): State<SharedState>,
    signed: Signed,
    Path((key, name)): Path<(String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> PageResult {
    let (project, _) = project_access(&state, &signed, &key).await?;
    let envs = environments(&state, &project).await?;
    let present: Vec<bool> = envs.iter().map(|(_, s)| s.matrix.definition(&name).is_some()).collect();
    if !present.contains(&true) {
        return Err(ConsoleError::NotFound(format!("There is no test '{name}' in project '{}'.", project.key)));
    }
    let mut settings = Settings::read(&pairs);
    if settings.env.is_empty() {
        // The last environment the test is in: production when it is there.
        let last = present.iter().rposition(|p| *p).unwrap_or(0);
        settings.env = envs[last].0.key.clone();
    }
    let Some(chosen) = envs.iter().position(|(e, _)| e.key == settings.env) else {
        return Err(ConsoleError::NotFound(format!("There is no environment '{}' in project '{}'.", settings.env, project.key)));
    };
    let (env, snapshot) = &envs[chosen];
    let definition = snapshot.matrix.definition(&name).or_else(|| envs.iter().find_map(|(_, s)| s.matrix.definition(&name)));
    let defined = state.metrics(&project.key).await?;
    let mut errors = Vec::new();
    let mut report_view = None;
    let mut computing = None;
    let mut results_phases = Vec::new();
    let absent = !present[chosen];
    if !absent {
        match settings.query() {
            Err(e) => errors = e,
            Ok(query) => match state.results_answer(&project.key, &env.key, &name, &query).await {
                Ok(ResultsAnswer::Computing { started_at }) => computing = Some(ago(started_at, now_millis())),
                Ok(ResultsAnswer::Ready(results)) => {
                    let split = definition.map_or(("check", String::new()), |d| split_words(d, &env.name));
                    results_phases = results.phases.iter().map(|p| (p.revision.clone(), p.from, p.to)).collect();
                    report_view = Some(report(&results, &defined, &settings, &project.key, &env.name, split));
                }
                Err(WriteError::Refused { message, at, .. }) => {
                    let field = at.map_or_else(|| "settings".to_string(), |(_, f)| form_field(&f).to_string());
                    errors.push((field, sentence(&message)));
                }
                Err(other) => return Err(other.into()),
            },
        }
    }
    let buckets = definition.map(|d| d.buckets.clone()).unwrap_or_default();
    let mut phases = choices(&settings.phase, &[("", "current (since the ranges last changed)"), ("all", "all phases")]);
    if settings.phase == "current" {
        phases[0].2 = true;
    }
    let phase_count = results_phases.len();
    for (i, (revision, from, to)) in results_phases.into_iter().enumerate().rev() {
        let until = to.map_or_else(|| "now".to_string(), date);
        let current = if i + 1 == phase_count { " (current)" } else { "" };
        let selected = settings.phase.trim_start_matches('r') == revision;
        phases.push((revision.clone(), format!("r{revision}: {} to {until}{current}", date(from)), selected));
    }
    let page = ResultsPage {
        layout: Layout::new(format!("Results of {name}"), &signed).in_project(&project, "tests").with_errors(!errors.is_empty()),
        project: project.key.clone(),
        kind: definition.map(|d| d.test_type.to_uppercase()).unwrap_or_default(),
        tab: "results",
        env_name: env.name.clone(),
        envs: envs
            .iter()
            .zip(&present)
            .map(|((e, _), p)| EnvChoice { key: e.key.clone(), name: e.name.clone(), present: *p, selected: e.key == env.key })
            .collect(),
        metric_choices: defined
            .iter()
            .map(|m| (m.key.clone(), m.definition.name.clone(), settings.metrics.is_empty() || settings.metrics.contains(&m.key)))
            .collect(),
        engine: choices(&settings.engine, &[("frequentist", "frequentist"), ("bayesian", "Bayesian")]),
        difference: choices(&settings.difference, &[("relative", "relative (lift)"), ("absolute", "absolute")]),
        sequential: choices(&settings.sequential, &[("off", "off"), ("on", "on")]),
        cuped: choices(&settings.cuped, &[("on", "on"), ("off", "off")]),
        correction: choices(&settings.correction, &[("none", "none"), ("holm", "Holm"), ("benjamini-hochberg", "Benjamini-Hochberg")]),
        controls: buckets
            .iter()
            .filter(|b| b.value >= 0)
            .map(|b| (b.value.to_string(), format!("{} ({})", b.name, b.value), settings.control == b.value.to_string()))
            .collect(),
        phases,
        alpha: settings.alpha.clone(),
        dimension: settings.dimension.clone(),
        errors,
        absent,
        computing,
        report: report_view,
        name,
    };
    let status = match (page.errors.is_empty(), page.computing.is_some()) {
        (false, _) => StatusCode::UNPROCESSABLE_ENTITY,
        (true, true) => StatusCode::ACCEPTED,
        (true, false) => StatusCode::OK,
    };
    render_status(status, &page)
}

/// An API message as a sentence beside a form field: without the parameter's name in front
/// (`metrics: there is no metric 'x'`), starting with a capital.
fn sentence(message: &str) -> String {
    let text = match message.split_once(": ") {
        Some((head, rest)) if !head.contains(' ') => rest,
        _ => message,
    };
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// The form field of an API parameter the results refused.
fn form_field(parameter: &str) -> &'static str {
    match parameter {
        "metrics" => "metrics",
        "engine" => "engine",
        "difference" => "difference",
        "alpha" => "alpha",
        "tuning" | "sequential" => "sequential",
        "cuped" | "cupedDays" => "cuped",
        "correction" => "correction",
        "control" => "control",
        "dimension" => "dimension",
        _ => "phase",
    }
}

impl ResultsPage {
    fn results_url(&self, env: &str) -> String {
        format!("/projects/{}/tests/{}/results?env={}", url_component(&self.project), url_component(&self.name), url_component(env))
    }

    fn metrics_url(&self) -> String {
        format!("/projects/{}/metrics", url_component(&self.project))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    #[test]
    fn settings_read_the_forms_checkboxes_and_the_apis_list_alike() {
        let s = Settings::read(&pairs("env=production&metrics=a&metrics=b,c&engine=bayesian&phase=r12&cuped=off"));
        let q = s.query().unwrap();
        assert_eq!(q.metrics.as_deref(), Some("a,b,c"));
        assert_eq!(q.engine, Some(EngineChoice::Bayesian));
        assert_eq!((q.from_revision.as_deref(), q.to_revision.as_deref()), (Some("12"), Some("12")));
        assert_eq!(q.cuped, Some(false));
        assert_eq!(s.url("demo", "t 1", Some("a")), "/projects/demo/tests/t+1/results?env=production&metrics=a&metrics=b&metrics=c&engine=bayesian&cuped=off&phase=r12&chart=a");
    }

    #[test]
    fn a_bad_setting_names_its_field() {
        let errors = Settings::read(&pairs("engine=magic&alpha=x&phase=yesterday")).query().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["engine", "alpha", "phase"]);
        let errors = Settings::read(&pairs("engine=magic&alpha=2")).query().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["engine", "alpha"], "the analysis' own range check too");
        assert_eq!(errors[1].1, "Alpha must be above 0 and below 0.5 (0.05 is usual)");
        assert_eq!(sentence("metrics: there is no metric 'x' in project 'demo'"), "There is no metric 'x' in project 'demo'");
    }
}
