//! A test's history as the results need it: the spans during which its allocations' ranges
//! stayed the same ("ranges windows"). The default phase starts where the last one starts, and
//! the sample-ratio check compares each window's units with the shares then in force, so a
//! planned ramp (10% → 50%) is not a mismatch.

use avsb_core::document::TestDefinition;

/// The value Proctor's convention gives the inactive bucket; it is never analysed.
pub const INACTIVE: i32 = -1;

/// Each allocation's expected share per bucket (inactive buckets left out, shares summing to 1
/// over the rest), in allocation order.
pub type Shares = Vec<Vec<(i32, f64)>>;

/// A span of time with the same ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct RangesWindow {
    /// When it started (the revision's time), epoch milliseconds.
    pub from: i64,
    /// When the next window started (`i64::MAX` for the current one).
    pub to: i64,
    /// The revision that set these ranges.
    pub revision: i64,
    /// Per allocation, the expected share per analysed bucket.
    pub shares: Shares,
    /// Per allocation, the ranges as written (bucket, length), inactive ones included: what a
    /// new window is told apart by.
    ranges: Shares,
}

/// Each allocation's ranges as written.
fn raw_ranges(test: &TestDefinition) -> Shares {
    test.allocations.iter().map(|a| a.ranges.iter().map(|r| (r.bucket_value, r.length)).collect()).collect()
}

/// The analysed buckets' shares of each allocation's ranges.
pub fn shares(test: &TestDefinition) -> Shares {
    test.allocations
        .iter()
        .map(|allocation| {
            let mut per_bucket: Vec<(i32, f64)> = Vec::new();
            for range in allocation.ranges.iter().filter(|r| r.bucket_value != INACTIVE && r.length > 0.0) {
                match per_bucket.iter_mut().find(|(b, _)| *b == range.bucket_value) {
                    Some((_, share)) => *share += range.length,
                    None => per_bucket.push((range.bucket_value, range.length)),
                }
            }
            let total: f64 = per_bucket.iter().map(|(_, s)| s).sum();
            if total > 0.0 {
                for (_, share) in &mut per_bucket {
                    *share /= total;
                }
            }
            per_bucket
        })
        .collect()
}

/// The ranges windows of a test, from its revisions oldest first (`None` where the test did not
/// exist): a new window starts wherever the ranges differ from the previous revision's (a ramp
/// from 10% to 50% too, though the analysed buckets' shares stay equal: the units it lets in
/// arrive later).
pub fn windows(history: &[(i64, i64, Option<&TestDefinition>)]) -> Vec<RangesWindow> {
    let mut out: Vec<RangesWindow> = Vec::new();
    for &(revision, time, test) in history {
        let Some(test) = test else {
            if let Some(last) = out.last_mut() {
                if last.to == i64::MAX {
                    last.to = time;
                }
            }
            continue;
        };
        let ranges = raw_ranges(test);
        let window = RangesWindow { from: time, to: i64::MAX, revision, shares: shares(test), ranges };
        match out.last_mut() {
            Some(last) if last.to == i64::MAX && same_shares(&last.ranges, &window.ranges) => {}
            Some(last) => {
                if last.to == i64::MAX {
                    last.to = time;
                }
                out.push(window);
            }
            None => out.push(window),
        }
    }
    out
}

fn same_shares(a: &Shares, b: &Shares) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.len() == y.len() && x.iter().zip(y).all(|((b1, s1), (b2, s2))| b1 == b2 && (s1 - s2).abs() < 1e-12)
        })
}

#[cfg(test)]
mod tests {
    use avsb_core::document::{Allocation, Range};

    use super::*;

    fn test(ranges: &[(i32, f64)]) -> TestDefinition {
        let ranges = ranges.iter().map(|&(bucket_value, length)| Range { bucket_value, length }).collect();
        TestDefinition { allocations: vec![Allocation { ranges, ..Allocation::default() }], ..TestDefinition::default() }
    }

    #[test]
    fn a_ramp_starts_a_new_window_and_other_changes_do_not() {
        let t10 = test(&[(-1, 0.8), (0, 0.1), (1, 0.1)]);
        let mut t10_described = t10.clone();
        t10_described.description = Some("now described".into());
        let t50 = test(&[(-1, 0.0), (0, 0.5), (1, 0.5)]);
        let w = windows(&[(1, 100, Some(&t10)), (2, 200, Some(&t10_described)), (3, 300, Some(&t50))]);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].from, w[0].to, w[0].revision), (100, 300, 1));
        assert_eq!((w[1].from, w[1].to, w[1].revision), (300, i64::MAX, 3));
        assert_eq!(w[0].shares, vec![vec![(0, 0.5), (1, 0.5)]], "inactive left out, shares normalised");
    }

    #[test]
    fn a_deleted_test_closes_its_window() {
        let t = test(&[(0, 0.5), (1, 0.5)]);
        let w = windows(&[(1, 100, Some(&t)), (2, 200, None), (3, 300, Some(&t))]);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].to, 200);
        assert_eq!(w[1].from, 300);
    }
}
