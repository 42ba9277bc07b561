//! What `avsb flag` sends, built from what people type: a new test's first definition from a
//! template, percentages turned into one allocation's ranges, and a test's targets with some
//! identifiers moved. Pure functions over JSON; the server validates, diffs and counts.

use serde_json::{json, Map, Value};

/// Range lengths are computed in billionths, so `10%` is exactly `0.1` and shares sum to 1.
const UNIT: f64 = 1e9;

/// The templates `avsb flag create` knows, as the console's "new test" page offers them.
pub const TEMPLATES: [&str; 5] = ["boolean", "string", "json", "abn", "rollout"];

/// What `create` was asked for.
#[derive(Debug, Clone, Default)]
pub struct NewTest {
    /// One of [`TEMPLATES`].
    pub template: String,
    /// The variants' names, in order (`string`, `json` and `abn`).
    pub variants: Vec<String>,
    /// Payloads by variant name, as typed (`on=true`, `blue="#00f"`).
    pub values: Vec<(String, String)>,
    /// The identifier type.
    pub identifier_type: String,
    /// A description.
    pub description: Option<String>,
    /// The share of "on" for `rollout`, in percent.
    pub percent: f64,
}

/// Parses a percentage: `10%`, `10`, `12.5%`; from 0 to 100.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("'{text}' is not a percentage from 0% to 100%")),
    }
}

/// A length (a share of 1) as a percentage without needless digits: `0.1` → `10%`.
pub fn percent(length: f64) -> String {
    let p = (length * 100.0 * 10_000.0).round() / 10_000.0;
    let text = format!("{p:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{}%", if text.is_empty() || text == "-0" { "0" } else { text })
}

fn units(length: f64) -> i64 {
    (length * UNIT).round() as i64
}

fn length(units: i64) -> f64 {
    units as f64 / UNIT
}

/// A payload for a template's bucket from the text typed for it.
fn payload(template: &str, variant: &str, text: Option<&str>) -> Result<Value, String> {
    match template {
        "boolean" | "rollout" => {
            let text = text.unwrap_or(if variant == "on" { "true" } else { "false" });
            match text {
                "true" => Ok(json!({"booleanValue": true})),
                "false" => Ok(json!({"booleanValue": false})),
                other => Err(format!("the value of '{variant}' must be true or false, not '{other}'")),
            }
        }
        "string" => Ok(json!({"stringValue": text.unwrap_or(variant)})),
        "json" => {
            let text = text.unwrap_or("{}");
            serde_json::from_str::<Value>(text)
                .map(|v| json!({"json": v}))
                .map_err(|e| format!("the value of '{variant}' is not JSON ({e}): {text}"))
        }
        _ => Err(format!("there is no template '{template}'")),
    }
}

/// The first definition of a new test, as the console's templates make it: `boolean` and
/// `rollout` are off (0) and on (1) with boolean payloads, on for `percent` (0 for `boolean`);
/// `string` and `json` are variants with payloads, everyone in the first; `abn` is Proctor's
/// inactive bucket (-1) and the variants, split equally.
pub fn template_definition(name: &str, new: &NewTest) -> Result<Value, String> {
    let template = new.template.as_str();
    let variants: Vec<String> = match (template, new.variants.is_empty()) {
        ("boolean" | "rollout", true) => vec!["off".into(), "on".into()],
        ("boolean" | "rollout", false) => {
            return Err(format!("a {template} flag has the buckets off and on; --variants is for string, json and abn"))
        }
        ("string" | "json", true) => vec!["control".into(), "treatment".into()],
        ("abn", true) => vec!["control".into(), "variant-a".into(), "variant-b".into()],
        (_, _) => new.variants.clone(),
    };
    if !TEMPLATES.contains(&template) {
        return Err(format!("there is no template '{template}'; choose one of {}", TEMPLATES.join(", ")));
    }
    if variants.len() < 2 {
        return Err("name at least two variants, e.g. --variants control,treatment".into());
    }
    for (i, v) in variants.iter().enumerate() {
        if v.trim().is_empty() {
            return Err("a variant needs a name (--variants control,treatment)".into());
        }
        if variants[..i].contains(v) {
            return Err(format!("the variant '{v}' is named twice"));
        }
    }
    for (variant, _) in &new.values {
        if !variants.contains(variant) {
            return Err(format!("--value names '{variant}', which is not a variant ({})", variants.join(", ")));
        }
    }
    let value_of = |variant: &str| new.values.iter().rev().find(|(v, _)| v == variant).map(|(_, t)| t.as_str());
    let mut buckets = Vec::new();
    let ranges: Vec<Value> = if template == "abn" {
        if !new.values.is_empty() {
            return Err("abn buckets carry no payload; use --template string or json for values".into());
        }
        buckets.push(json!({"name": "inactive", "value": -1}));
        let n = variants.len() as i64;
        let each = (UNIT as i64 / n / 1000) * 1000; // in millionths, as the console writes them
        let mut list = vec![json!({"bucketValue": -1, "length": 0.0})];
        for (i, v) in variants.iter().enumerate() {
            buckets.push(json!({"name": v, "value": i}));
            let share = if i as i64 == n - 1 { UNIT as i64 - each * (n - 1) } else { each };
            list.push(json!({"bucketValue": i, "length": length(share)}));
        }
        list
    } else {
        for (i, v) in variants.iter().enumerate() {
            buckets.push(json!({"name": v, "value": i, "payload": payload(template, v, value_of(v))?}));
        }
        match template {
            "boolean" | "rollout" => {
                let on = if template == "rollout" { units(new.percent / 100.0) } else { 0 };
                vec![json!({"bucketValue": 0, "length": length(UNIT as i64 - on)}), json!({"bucketValue": 1, "length": length(on)})]
            }
            _ => vec![json!({"bucketValue": 0, "length": 1.0})],
        }
    };
    let mut definition = Map::new();
    definition.insert("testType".into(), json!(new.identifier_type));
    definition.insert("salt".into(), json!(name));
    if let Some(d) = &new.description {
        definition.insert("description".into(), json!(d));
    }
    definition.insert("buckets".into(), Value::Array(buckets));
    definition.insert("allocations".into(), json!([{"ranges": ranges}]));
    Ok(Value::Object(definition))
}

/// One range: a bucket value and its length.
pub type Range = (i64, f64);

/// An allocation's ranges as `(bucketValue, length)` pairs.
pub fn ranges_of(allocation: &Value) -> Vec<Range> {
    allocation["ranges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| (r["bucketValue"].as_i64().unwrap_or(0), r["length"].as_f64().unwrap_or(0.0)))
        .collect()
}

/// Ranges as the API takes them.
pub fn ranges_json(ranges: &[Range]) -> Value {
    Value::Array(ranges.iter().map(|(b, l)| json!({"bucketValue": b, "length": l})).collect())
}

/// The ranges that give bucket `target` `share` percent of the allocation by moving only the
/// boundary between its range and the range next to it (its donor): exactly the difference
/// changes bucket, and no range is re-sorted. A bucket without a range gets one at the end
/// (taking from the last range); a bucket that has everything gives back to `fallback`, which
/// gets a range just before it.
pub fn rollout(ranges: &[Range], target: i64, share: f64, fallback: i64) -> Result<Vec<Range>, String> {
    let mut lens: Vec<i64> = ranges.iter().map(|(_, l)| units(*l)).collect();
    let mut buckets: Vec<i64> = ranges.iter().map(|(b, _)| *b).collect();
    let wanted = units(share / 100.0);
    let current: i64 = buckets.iter().zip(&lens).filter(|(b, _)| **b == target).map(|(_, l)| *l).sum();
    let mut i = match buckets.iter().rposition(|b| *b == target) {
        Some(i) => i,
        None => {
            buckets.push(target);
            lens.push(0);
            buckets.len() - 1
        }
    };
    if wanted > current {
        let mut need = wanted - current;
        // Donors nearest first: leftwards from the bucket's range, then rightwards.
        let order: Vec<usize> = (0..i).rev().chain(i + 1..buckets.len()).collect();
        for j in order {
            if need == 0 {
                break;
            }
            if buckets[j] == target {
                continue;
            }
            let take = lens[j].min(need);
            lens[j] -= take;
            lens[i] += take;
            need -= take;
        }
        if need > 0 {
            return Err("the other buckets have nothing left to give".into());
        }
    } else if wanted < current {
        let mut give = current - wanted;
        if !buckets.iter().any(|b| *b != target) {
            buckets.insert(i, fallback);
            lens.insert(i, 0);
            i += 1;
        }
        // Shrink the bucket's ranges from the last one back, each into the nearest other range
        // (leftwards first), so the boundary next to the donor moves back.
        let mut k = i as isize;
        while give > 0 && k >= 0 {
            let idx = k as usize;
            if buckets[idx] == target && lens[idx] > 0 {
                let recipient = (0..idx).rev().find(|j| buckets[*j] != target).or_else(|| (idx + 1..buckets.len()).find(|j| buckets[*j] != target));
                if let Some(r) = recipient {
                    let moved = lens[idx].min(give);
                    lens[idx] -= moved;
                    lens[r] += moved;
                    give -= moved;
                }
            }
            k -= 1;
        }
    }
    // Lengths that did not change keep their exact value as stored.
    Ok(buckets
        .iter()
        .zip(&lens)
        .enumerate()
        .map(|(n, (b, l))| match ranges.get(n) {
            Some((ob, ol)) if ob == b && units(*ol) == *l => (*b, *ol),
            _ => (*b, length(*l)),
        })
        .collect())
}

/// Parses `--split`: `50/50` (one share per bucket, in the test's order; Proctor's inactive
/// bucket may be left out) or `control=50,treatment=50` (unnamed buckets get 0).
pub fn parse_split(text: &str, buckets: &[(i64, String)]) -> Result<Vec<(i64, f64)>, String> {
    let names = || buckets.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", ");
    let shares: Vec<(i64, f64)> = if text.contains('=') {
        let mut out: Vec<(i64, f64)> = buckets.iter().map(|(v, _)| (*v, 0.0)).collect();
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, share) = part.split_once('=').ok_or_else(|| format!("'{part}' is not NAME=PERCENT"))?;
            let index = buckets
                .iter()
                .position(|(_, n)| n == name.trim())
                .ok_or_else(|| format!("the test has no bucket '{}' (its buckets: {})", name.trim(), names()))?;
            out[index].1 = parse_percent(share)?;
        }
        out
    } else {
        let numbers = text.split('/').map(parse_percent).collect::<Result<Vec<f64>, String>>()?;
        let active: Vec<&(i64, String)> = buckets.iter().filter(|(v, _)| *v >= 0).collect();
        if numbers.len() == buckets.len() {
            buckets.iter().zip(numbers).map(|((v, _), p)| (*v, p)).collect()
        } else if numbers.len() == active.len() {
            let mut out: Vec<(i64, f64)> = buckets.iter().map(|(v, _)| (*v, 0.0)).collect();
            for ((v, _), p) in active.into_iter().zip(numbers) {
                if let Some(slot) = out.iter_mut().find(|(b, _)| b == v) {
                    slot.1 = p;
                }
            }
            out
        } else {
            return Err(format!(
                "--split {text} has {} shares, but the test has {} buckets ({}); give one share per bucket, or NAME=PERCENT",
                numbers.len(),
                buckets.len(),
                names()
            ));
        }
    };
    let total: f64 = shares.iter().map(|(_, p)| p).sum();
    if (total - 100.0).abs() > 0.01 {
        return Err(format!("--split {text} sums to {total}%, not 100%"));
    }
    Ok(shares)
}

/// The ranges that give each bucket its share, keeping the order of the existing ranges: a
/// bucket's first range takes its share, its other ranges and buckets not named get 0, and a
/// bucket without a range gets one at the end.
pub fn split(ranges: &[Range], shares: &[(i64, f64)]) -> Vec<Range> {
    let mut wanted: Vec<(i64, i64)> = shares.iter().map(|(b, p)| (*b, units(p / 100.0))).collect();
    // Rounding: the last non-zero share takes the remainder, so the lengths sum to exactly 1.
    let sum: i64 = wanted.iter().map(|(_, u)| u).sum();
    if let Some(last) = wanted.iter_mut().rev().find(|(_, u)| *u > 0) {
        last.1 += UNIT as i64 - sum;
    }
    let mut out: Vec<(i64, i64)> = Vec::new();
    let mut placed: Vec<i64> = Vec::new();
    for (b, _) in ranges {
        let share = if placed.contains(b) { 0 } else { wanted.iter().find(|(w, _)| w == b).map_or(0, |(_, u)| *u) };
        placed.push(*b);
        out.push((*b, share));
    }
    for (b, u) in &wanted {
        if !placed.contains(b) && *u > 0 {
            out.push((*b, *u));
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(n, (b, u))| match ranges.get(n) {
            Some((ob, ol)) if *ob == b && units(*ol) == u => (b, *ol),
            _ => (b, length(u)),
        })
        .collect()
}

/// A test's targets with `ids` given `bucket` (taken out of any other target) and `remove`
/// taken out of every target; empty targets are dropped.
pub fn retarget(targets: &Value, bucket: Option<i64>, ids: &[String], remove: &[String]) -> Value {
    let mut list: Vec<(i64, Vec<String>)> = targets
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let ids = t["identifiers"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
            (t["bucketValue"].as_i64().unwrap_or(0), ids)
        })
        .collect();
    for (_, members) in &mut list {
        members.retain(|id| !ids.contains(id) && !remove.contains(id));
    }
    if let Some(bucket) = bucket.filter(|_| !ids.is_empty()) {
        match list.iter_mut().find(|(b, _)| *b == bucket) {
            Some((_, members)) => members.extend(ids.iter().cloned()),
            None => list.push((bucket, ids.to_vec())),
        }
    }
    list.retain(|(_, members)| !members.is_empty());
    Value::Array(list.into_iter().map(|(b, ids)| json!({"bucketValue": b, "identifiers": ids})).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(r: &[Range]) -> Vec<(i64, f64)> {
        r.to_vec()
    }

    #[test]
    fn a_rollout_moves_only_the_boundary_next_to_the_on_range() {
        let off_on = [(0, 1.0), (1, 0.0)];
        let ten = rollout(&off_on, 1, 10.0, 0).unwrap();
        assert_eq!(lengths(&ten), vec![(0, 0.9), (1, 0.1)]);
        assert_eq!(rollout(&ten, 1, 50.0, 0).unwrap(), vec![(0, 0.5), (1, 0.5)]);
        assert_eq!(rollout(&[(0, 0.5), (1, 0.5)], 1, 0.0, 0).unwrap(), vec![(0, 1.0), (1, 0.0)]);
    }

    #[test]
    fn a_rollout_never_resorts_ranges_and_takes_from_the_neighbour_first() {
        // inactive, control, treatment: treatment grows into control, not inactive.
        let r = [(-1, 0.2), (0, 0.6), (1, 0.2)];
        assert_eq!(rollout(&r, 1, 50.0, 0).unwrap(), vec![(-1, 0.2), (0, 0.3), (1, 0.5)]);
        // Past what the neighbour has, the next one gives.
        assert_eq!(rollout(&r, 1, 90.0, 0).unwrap(), vec![(-1, 0.1), (0, 0.0), (1, 0.9)]);
        // A bucket without a range gets one at the end.
        assert_eq!(rollout(&[(0, 1.0)], 1, 10.0, 0).unwrap(), vec![(0, 0.9), (1, 0.1)]);
        // A killed test (on everywhere) rolled back to 10% gives to the fallback, placed before.
        assert_eq!(rollout(&[(1, 1.0)], 1, 10.0, 0).unwrap(), vec![(0, 0.9), (1, 0.1)]);
    }

    #[test]
    fn unchanged_lengths_keep_their_stored_value() {
        let r = [(0, 0.333_333_333_3), (1, 0.333_333_333_3), (2, 0.333_333_333_4)];
        let out = rollout(&r, 2, 0.333_333_333_4 * 100.0, 0).unwrap();
        assert_eq!(out, r.to_vec());
    }

    #[test]
    fn a_split_keeps_range_order_and_sums_to_one() {
        let buckets = [(-1, "inactive".to_string()), (0, "control".to_string()), (1, "a".to_string()), (2, "b".to_string())];
        let shares = parse_split("34/33/33", &buckets).unwrap();
        assert_eq!(shares, vec![(-1, 0.0), (0, 34.0), (1, 33.0), (2, 33.0)]);
        let out = split(&[(-1, 0.0), (2, 0.5), (0, 0.5)], &shares);
        assert_eq!(out, vec![(-1, 0.0), (2, 0.33), (0, 0.34), (1, 0.33)]);
        let sum: f64 = out.iter().map(|(_, l)| l).sum();
        assert!((sum - 1.0).abs() < 1e-12);
        assert!(parse_split("50/40/5", &buckets).unwrap_err().contains("not 100%"));
        assert!(parse_split("50/50", &buckets).unwrap_err().contains("4 buckets"));
        assert_eq!(parse_split("control=50,b=50", &buckets).unwrap(), vec![(-1, 0.0), (0, 50.0), (1, 0.0), (2, 50.0)]);
    }

    #[test]
    fn templates_make_what_the_console_makes() {
        let new = NewTest { template: "boolean".into(), identifier_type: "USER".into(), ..NewTest::default() };
        let d = template_definition("f", &new).unwrap();
        assert_eq!(d["buckets"][1], json!({"name": "on", "value": 1, "payload": {"booleanValue": true}}));
        assert_eq!(d["allocations"][0]["ranges"], json!([{"bucketValue": 0, "length": 1.0}, {"bucketValue": 1, "length": 0.0}]));
        let abn = NewTest { template: "abn".into(), variants: vec!["control".into(), "blue".into(), "green".into()], ..new.clone() };
        let d = template_definition("f", &abn).unwrap();
        let lengths: Vec<f64> = d["allocations"][0]["ranges"].as_array().unwrap().iter().map(|r| r["length"].as_f64().unwrap()).collect();
        assert_eq!(lengths, vec![0.0, 0.333_333, 0.333_333, 0.333_334]);
        let s = NewTest { template: "string".into(), variants: vec!["a".into(), "b".into()], values: vec![("b".into(), "dark".into())], ..new };
        let d = template_definition("f", &s).unwrap();
        assert_eq!(d["buckets"][0]["payload"], json!({"stringValue": "a"}));
        assert_eq!(d["buckets"][1]["payload"], json!({"stringValue": "dark"}));
    }

    #[test]
    fn retargeting_moves_identifiers_between_buckets() {
        let t = json!([{"bucketValue": 1, "identifiers": ["u_1"]}, {"bucketValue": 0, "identifiers": ["u_2"]}]);
        let out = retarget(&t, Some(1), &["u_2".into(), "u_3".into()], &[]);
        assert_eq!(out, json!([{"bucketValue": 1, "identifiers": ["u_1", "u_2", "u_3"]}]));
        assert_eq!(retarget(&out, None, &[], &["u_1".into(), "u_2".into(), "u_3".into()]), json!([]));
    }

    #[test]
    fn percentages_read_and_print_without_noise() {
        assert_eq!(parse_percent("10%"), Ok(10.0));
        assert_eq!(parse_percent("12.5"), Ok(12.5));
        assert!(parse_percent("120%").is_err());
        assert_eq!(percent(0.1), "10%");
        assert_eq!(percent(0.333_333), "33.3333%");
        assert_eq!(percent(0.0), "0%");
    }
}
