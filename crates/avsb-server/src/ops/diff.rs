//! What changes between two matrices, test by test: the fields that differ (as paths, old and
//! new values) and, for each allocation, the share of units that would get another bucket.
//!
//! The share is exact where it can be: when an allocation keeps serving the same units (its rule
//! and every rule before it unchanged, the eligibility unchanged) and the salt is unchanged, a
//! unit changes bucket exactly when its hash falls where the old and new ranges disagree, which
//! the engine counts on the same integer cutoffs evaluation uses (`bucketing::
//! reassigned_hash_count`). A new salt rehashes everyone: the share is then the expected one.
//! Where units move between allocations by rule, the share depends on traffic and is left out.

use std::collections::{BTreeMap, BTreeSet};

use avsb_core::bucketing::{bucket_hash_counts, reassigned_hash_count, HASH_SPACE};
use avsb_core::document::{Allocation, MatrixDocument, TestDefinition};
use serde::Serialize;
use serde_json::Value;

/// How a test differs between two matrices.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestChange {
    /// The test.
    pub test: String,
    /// Added, removed or changed.
    pub change: ChangeKind,
    /// The top-level fields that differ (versions aside), in name order.
    pub fields: Vec<String>,
    /// Every differing leaf: its path in the definition, and its old and new value.
    pub changes: Vec<FieldChange>,
    /// The old definition (absent for an added test).
    #[schema(value_type = Option<Object>)]
    pub from: Option<Value>,
    /// The new definition (absent for a removed test).
    #[schema(value_type = Option<Object>)]
    pub to: Option<Value>,
    /// Who would get another bucket.
    pub reassignment: Reassignment,
}

/// Whether a test is new, gone or different.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Only in the new matrix.
    Added,
    /// Only in the old matrix.
    Removed,
    /// In both, with different definitions.
    Changed,
}

/// One differing value.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    /// Where in the definition (`allocations[0].ranges[1].length`).
    pub path: String,
    /// The old value (absent when the field is new).
    #[schema(value_type = Option<Object>)]
    pub from: Option<Value>,
    /// The new value (absent when the field is gone).
    #[schema(value_type = Option<Object>)]
    pub to: Option<Value>,
}

/// Who would get another bucket, allocation by allocation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reassignment {
    /// For each allocation of the new definition (and each old allocation whose units now
    /// reach another one), the share of its units that change bucket.
    pub allocations: Vec<AllocationShift>,
    /// Targeted identifiers whose bucket changes (added to, removed from or moved between
    /// targets).
    pub targets_changed: usize,
    /// What makes some units' fate depend on traffic, in words.
    pub notes: Vec<String>,
}

/// Units of one allocation before (`from`) reaching one allocation after (`to`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocationShift {
    /// The allocation in the old definition whose units these are (absent when they come from
    /// any allocation, by rule).
    pub from: Option<usize>,
    /// The allocation in the new definition they reach.
    pub to: usize,
    /// The new allocation's rule.
    pub rule: Option<String>,
    /// The share of these units that get another bucket, in [0, 1]; absent when it depends on
    /// traffic.
    pub share: Option<f64>,
    /// Whether `share` is exact (same units, same salt) or expected (a new salt or a RANDOM test).
    pub exact: bool,
    /// Why the share is what it is.
    pub basis: ShiftBasis,
}

/// Why an allocation's share is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShiftBasis {
    /// Same units, same salt: counted on the hash cutoffs.
    Ranges,
    /// A new salt (or identifier type) hashes everyone anew: the expected share.
    Salt,
    /// A RANDOM test draws anew on every request: the expected share of a draw.
    Random,
    /// Which units reach this allocation changed by rule: depends on traffic.
    Rule,
}

/// Test-by-test differences between two matrices, in name order (unchanged tests left out).
pub fn matrix_changes(from: &MatrixDocument, to: &MatrixDocument) -> Vec<TestChange> {
    let names: BTreeSet<&String> = from.tests.keys().chain(to.tests.keys()).collect();
    names.into_iter().filter_map(|name| test_change(name, from.tests.get(name), to.tests.get(name))).collect()
}

/// How one test differs; `None` when it does not (versions aside).
pub fn test_change(name: &str, from: Option<&TestDefinition>, to: Option<&TestDefinition>) -> Option<TestChange> {
    let (change, reassignment) = match (from, to) {
        (None, None) => return None,
        (None, Some(_)) => (
            ChangeKind::Added,
            Reassignment { notes: vec!["a new test: every unit it reaches gets a bucket".into()], ..Default::default() },
        ),
        (Some(_), None) => (
            ChangeKind::Removed,
            Reassignment {
                notes: vec!["the test is removed: no unit gets a bucket from it (applications get their defaults)".into()],
                ..Default::default()
            },
        ),
        (Some(a), Some(b)) if crate::ops::edit::same_definition(a, b) => return None,
        (Some(a), Some(b)) => (ChangeKind::Changed, reassignment(a, b)),
    };
    let (from_json, to_json) = (from.map(|d| d.to_json(false)), to.map(|d| d.to_json(false)));
    let mut changes = Vec::new();
    leaf_changes("", from_json.as_ref(), to_json.as_ref(), &mut changes);
    changes.retain(|c| c.path != "version");
    let fields: BTreeSet<String> = changes
        .iter()
        .map(|c| c.path.split(['.', '[']).next().unwrap_or_default().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    Some(TestChange {
        test: name.to_string(),
        change,
        fields: fields.into_iter().collect(),
        changes: if change == ChangeKind::Changed { changes } else { Vec::new() },
        from: from_json,
        to: to_json,
        reassignment,
    })
}

/// Every leaf that differs between two JSON values, with its path.
fn leaf_changes(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<FieldChange>) {
    let join = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                leaf_changes(&join(key), x.get(key).filter(|v| !v.is_null()), y.get(key).filter(|v| !v.is_null()), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                leaf_changes(&format!("{path}[{i}]"), x.get(i), y.get(i), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(FieldChange { path: path.to_string(), from: a.cloned(), to: b.cloned() }),
    }
}

/// `(bucket value, length)` pairs of an allocation.
fn ranges(allocation: &Allocation) -> Vec<(i32, f64)> {
    allocation.ranges.iter().map(|r| (r.bucket_value, r.length)).collect()
}

fn rule_text(allocation: &Allocation) -> Option<&str> {
    allocation.rule.as_deref().map(str::trim).filter(|r| !r.is_empty() && *r != "${}")
}

/// The share of one allocation's units that change bucket when their ranges go from `old` to
/// `new`: exact on the same hash, or expected when everyone is hashed (or drawn) anew.
fn share(old: &Allocation, new: &Allocation, rehashed: Option<ShiftBasis>) -> (f64, bool, ShiftBasis) {
    match rehashed {
        None => (reassigned_hash_count(&ranges(old), &ranges(new)) as f64 / HASH_SPACE as f64, true, ShiftBasis::Ranges),
        Some(basis) => {
            // Independent draws: a unit keeps its bucket with probability Σ p_old(b) p_new(b).
            let (before, after) = (bucket_hash_counts(&ranges(old)), bucket_hash_counts(&ranges(new)));
            let kept: f64 = before
                .iter()
                .map(|(bucket, n)| {
                    let m = after.iter().find(|(b, _)| b == bucket).map_or(0, |(_, m)| *m);
                    (*n as f64 / HASH_SPACE as f64) * (m as f64 / HASH_SPACE as f64)
                })
                .sum();
            ((1.0 - kept).clamp(0.0, 1.0), false, basis)
        }
    }
}

/// Who would get another bucket when `old` becomes `new`.
pub fn reassignment(old: &TestDefinition, new: &TestDefinition) -> Reassignment {
    let mut notes = Vec::new();
    let random = new.test_type.eq_ignore_ascii_case("RANDOM");
    let rehashed = if random {
        notes.push("a RANDOM test draws a bucket on every request: shares are those of one draw".into());
        Some(ShiftBasis::Random)
    } else if !old.test_type.eq_ignore_ascii_case(&new.test_type) {
        notes.push(format!(
            "the identifier type changed ({} → {}): every unit is hashed anew",
            old.test_type, new.test_type
        ));
        Some(ShiftBasis::Salt)
    } else if old.salt != new.salt {
        notes.push("the salt changed: every unit is hashed anew (the shares are expected, not exact)".into());
        Some(ShiftBasis::Salt)
    } else {
        None
    };
    let mut eligibility = Vec::new();
    if old.rule != new.rule {
        eligibility.push("the test's rule");
    }
    if old.depends_on != new.depends_on {
        eligibility.push("its dependency");
    }
    if old.evaluate_for_incognito_users != new.evaluate_for_incognito_users {
        eligibility.push("whether incognito users are evaluated");
    }
    let constants_changed = old.constants != new.constants;
    if constants_changed {
        eligibility.push("its constants (which rules read)");
    }
    if !eligibility.is_empty() {
        notes.push(format!(
            "{} changed: units may enter or leave the test, depending on traffic; the shares are of units served before and after",
            eligibility.join(", ")
        ));
    }
    // Allocations whose rules (and every rule before them) are unchanged serve the same units.
    let same_prefix = if constants_changed {
        0
    } else {
        old.allocations.iter().zip(&new.allocations).take_while(|(a, b)| rule_text(a) == rule_text(b)).count()
    };
    let catch_all = new.allocations.len() == 1 && rule_text(&new.allocations[0]).is_none();
    let mut allocations = Vec::new();
    for (i, allocation) in new.allocations.iter().enumerate() {
        let rule = allocation.rule.clone();
        if i < same_prefix {
            let (share, exact, basis) = share(&old.allocations[i], allocation, rehashed);
            allocations.push(AllocationShift { from: Some(i), to: i, rule, share: Some(share), exact, basis });
        } else if catch_all {
            // One allocation for everyone (the kill switch): each old allocation's units land here.
            for (j, before) in old.allocations.iter().enumerate() {
                let (share, exact, basis) = share(before, allocation, rehashed);
                allocations.push(AllocationShift { from: Some(j), to: i, rule: rule.clone(), share: Some(share), exact, basis });
            }
        } else {
            allocations.push(AllocationShift { from: None, to: i, rule, share: None, exact: false, basis: ShiftBasis::Rule });
        }
    }
    if allocations.iter().any(|a| a.basis == ShiftBasis::Rule) {
        notes.push("allocation rules changed or moved: which allocation a unit reaches depends on traffic".into());
    }
    Reassignment { allocations, targets_changed: targets_changed(old, new), notes }
}

fn targets_changed(old: &TestDefinition, new: &TestDefinition) -> usize {
    let map = |t: &TestDefinition| -> BTreeMap<String, i32> {
        let mut out = BTreeMap::new();
        for target in &t.targets {
            for id in &target.identifiers {
                // The first target naming an identifier wins, as evaluation does.
                out.entry(id.clone()).or_insert(target.bucket_value);
            }
        }
        out
    };
    let (before, after) = (map(old), map(new));
    let ids: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    ids.into_iter().filter(|id| before.get(*id) != after.get(*id)).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use avsb_core::document::{Range, Target};

    /// An allocation: its rule and its `(bucket value, length)` ranges.
    type Spec<'a> = (Option<&'a str>, &'a [(i32, f64)]);

    fn test(allocations: &[Spec<'_>]) -> TestDefinition {
        TestDefinition {
            salt: Some("s".into()),
            test_type: "USER".into(),
            allocations: allocations
                .iter()
                .map(|(rule, ranges)| Allocation {
                    rule: rule.map(str::to_string),
                    ranges: ranges.iter().map(|&(bucket_value, length)| Range { bucket_value, length }).collect(),
                    ..Allocation::default()
                })
                .collect(),
            ..TestDefinition::default()
        }
    }

    /// The share of identifiers whose bucket differs between two definitions of test `t`, as the
    /// engine evaluates them.
    fn evaluated_share(old: &TestDefinition, new: &TestDefinition, n: usize) -> f64 {
        use avsb_core::{CompiledMatrix, ContextSchema, MatrixDocument};
        let schema = ContextSchema::from_json(r#"{"context": {}, "identifiers": {"USER": {"source": "QUERY"}}}"#).unwrap();
        let compile = |t: &TestDefinition| {
            let mut test = t.clone();
            test.buckets = vec![
                avsb_core::document::Bucket { name: "a".into(), value: 0, description: None, payload: None },
                avsb_core::document::Bucket { name: "b".into(), value: 1, description: None, payload: None },
                avsb_core::document::Bucket { name: "c".into(), value: 2, description: None, payload: None },
            ];
            let document = MatrixDocument { tests: [("t".to_string(), test)].into_iter().collect(), ..MatrixDocument::default() };
            let compilation = CompiledMatrix::compile(document, &schema);
            assert!(compilation.dropped_tests().is_empty(), "{:?}", compilation.diagnostics);
            compilation.matrix
        };
        let (a, b) = (compile(old), compile(new));
        let bucket = |m: &CompiledMatrix, id: &str| {
            let mut request = m.request();
            request.identifiers[m.identifier_slot("USER").unwrap()] = Some(id.to_string().into());
            m.evaluate_test("t", &request).and_then(|x| x.bucket.map(|b| b.value))
        };
        let moved = (0..n).filter(|i| {
            let id = format!("user-{i}");
            bucket(&a, &id) != bucket(&b, &id)
        });
        moved.count() as f64 / n as f64
    }

    #[test]
    fn the_exact_share_is_what_evaluation_does_to_real_identifiers() {
        let cases = [
            (test(&[(None, &[(0, 0.9), (1, 0.1)])]), test(&[(None, &[(0, 0.5), (1, 0.5)])])),
            (test(&[(None, &[(0, 0.34), (1, 0.33), (2, 0.33)])]), test(&[(None, &[(2, 0.2), (0, 0.5), (1, 0.3)])])),
            (test(&[(None, &[(0, 0.5), (1, 0.5)])]), test(&[(None, &[(1, 0.5), (0, 0.5)])])),
        ];
        let n = 40_000;
        for (old, new) in cases {
            let predicted = reassignment(&old, &new).allocations[0].share.unwrap();
            let observed = evaluated_share(&old, &new, n);
            // Four standard errors of a binomial share.
            let tolerance = 4.0 * (predicted * (1.0 - predicted) / n as f64).sqrt() + 1e-9;
            assert!((predicted - observed).abs() <= tolerance, "predicted {predicted}, observed {observed}");
        }
        let old = test(&[(None, &[(0, 0.5), (1, 0.5)])]);
        let mut new = old.clone();
        new.salt = Some("reshuffled".into());
        let expected = reassignment(&old, &new).allocations[0].share.unwrap();
        let observed = evaluated_share(&old, &new, n);
        assert!((expected - observed).abs() <= 4.0 * (0.25f64 / n as f64).sqrt(), "expected {expected}, observed {observed}");
    }

    #[test]
    fn a_ramp_from_10_to_50_percent_moves_40_percent_exactly() {
        let old = test(&[(None, &[(0, 0.9), (1, 0.1)])]);
        let new = test(&[(None, &[(0, 0.5), (1, 0.5)])]);
        let r = reassignment(&old, &new);
        assert_eq!(r.allocations.len(), 1);
        let shift = &r.allocations[0];
        assert!(shift.exact && shift.basis == ShiftBasis::Ranges);
        assert!((shift.share.unwrap() - 0.4).abs() < 1e-9, "{shift:?}");
        assert!(r.notes.is_empty());
    }

    #[test]
    fn a_new_salt_gives_the_expected_share() {
        let old = test(&[(None, &[(0, 0.5), (1, 0.5)])]);
        let mut new = old.clone();
        new.salt = Some("other".into());
        let shift = &reassignment(&old, &new).allocations[0];
        assert!(!shift.exact && shift.basis == ShiftBasis::Salt);
        assert!((shift.share.unwrap() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_changed_rule_makes_later_allocations_depend_on_traffic() {
        let old = test(&[(Some("${a}"), &[(1, 1.0)]), (None, &[(0, 0.5), (1, 0.5)])]);
        let new = test(&[(Some("${b}"), &[(1, 1.0)]), (None, &[(0, 0.5), (1, 0.5)])]);
        let r = reassignment(&old, &new);
        assert!(r.allocations.iter().all(|a| a.share.is_none() && a.basis == ShiftBasis::Rule), "{r:?}");
        assert!(!r.notes.is_empty());
    }

    #[test]
    fn a_kill_counts_each_old_allocation_against_the_one_left() {
        let old = test(&[(Some("${a}"), &[(1, 1.0)]), (None, &[(0, 0.5), (1, 0.5)])]);
        let new = test(&[(None, &[(0, 1.0)])]);
        let r = reassignment(&old, &new);
        let shares: Vec<(Option<usize>, Option<f64>)> = r.allocations.iter().map(|a| (a.from, a.share)).collect();
        assert_eq!(shares.len(), 2);
        assert_eq!(shares[0], (Some(0), Some(1.0)));
        assert!((shares[1].1.unwrap() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn targets_and_field_paths_are_reported() {
        let old = test(&[(None, &[(0, 0.5), (1, 0.5)])]);
        let mut new = test(&[(None, &[(0, 0.4), (1, 0.6)])]);
        new.targets = vec![Target { bucket_value: 1, identifiers: vec!["u1".into(), "u2".into()] }];
        let change = test_change("t", Some(&old), Some(&new)).unwrap();
        assert_eq!(change.change, ChangeKind::Changed);
        assert_eq!(change.fields, ["allocations", "targets"]);
        let paths: Vec<&str> = change.changes.iter().map(|c| c.path.as_str()).collect();
        assert!(paths.contains(&"allocations[0].ranges[0].length"), "{paths:?}");
        assert_eq!(change.reassignment.targets_changed, 2);
        assert!(test_change("t", Some(&old), Some(&old)).is_none());
    }
}
