//! Who is in an experiment: each unit (an identifier of the test's identifier type) enters at
//! its first exposure within the phase, in the bucket it was exposed to.
//!
//! Only exposures reached by hashing count (`reason` `split`, or none from older SDKs): a
//! targeted, forced or default exposure says nothing about the split, so it is counted and left
//! out. A unit exposed to more than one bucket is counted and left out too (its identifier was
//! re-used, or the test's salt or ranges moved it).

use rustc_hash::FxHashMap;

/// The time span whose exposures count, epoch milliseconds, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The first millisecond.
    pub from: i64,
    /// The last millisecond.
    pub to: i64,
}

impl Span {
    /// Whether `time` is inside.
    pub fn contains(&self, time: i64) -> bool {
        self.from <= time && time <= self.to
    }
}

/// One exposure as the population reads it.
#[derive(Debug, Clone, Copy)]
pub struct Exposure<'a> {
    /// When, epoch milliseconds.
    pub time: i64,
    /// The identifier of the test's identifier type.
    pub unit: &'a str,
    /// The bucket value.
    pub bucket: i32,
    /// `split`, `targeted`, `forced`, `default`, or none.
    pub reason: Option<&'a str>,
    /// The allocation index, if the sender said.
    pub allocation: Option<i64>,
    /// The value of the dimension the results break down by, if any.
    pub dimension: Option<&'a str>,
}

/// A unit of the experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Its first exposure in the phase.
    pub first_time: i64,
    /// The bucket of its first exposure.
    pub bucket: i32,
    /// The allocation of its first exposure.
    pub allocation: Option<i64>,
    /// The dimension's value at its first exposure.
    pub dimension: Option<Box<str>>,
    /// It was exposed to another bucket too.
    pub multiple: bool,
}

/// Exposures read and left out, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Exclusions {
    /// Exposures outside the phase.
    pub outside_phase: u64,
    /// Targeted, forced and default exposures.
    pub not_split: u64,
    /// Exposures without an identifier of the test's type.
    pub no_identifier: u64,
    /// Units exposed to more than one bucket (left out whole).
    pub multiple_buckets: u64,
}

/// Every unit of an experiment, in first-seen order, with an index by identifier.
#[derive(Debug, Default)]
pub struct Population {
    index: FxHashMap<Box<str>, u32>,
    units: Vec<Unit>,
    /// What was left out.
    pub excluded: Exclusions,
}

impl Population {
    /// An empty population.
    pub fn new() -> Population {
        Population::default()
    }

    /// Counts an exposure without an identifier of the test's type.
    pub fn no_identifier(&mut self) {
        self.excluded.no_identifier += 1;
    }

    /// Adds one exposure (in any order: a unit's earliest exposure decides its entry).
    pub fn add(&mut self, exposure: Exposure<'_>, span: Span) {
        if !span.contains(exposure.time) {
            self.excluded.outside_phase += 1;
            return;
        }
        if !matches!(exposure.reason, None | Some("split")) {
            self.excluded.not_split += 1;
            return;
        }
        if let Some(&i) = self.index.get(exposure.unit) {
            let unit = &mut self.units[i as usize];
            if unit.bucket != exposure.bucket {
                unit.multiple = true;
            }
            if exposure.time < unit.first_time {
                unit.first_time = exposure.time;
                unit.allocation = exposure.allocation;
                unit.dimension = exposure.dimension.map(Box::from);
            }
            return;
        }
        let Ok(i) = u32::try_from(self.units.len()) else { return };
        self.index.insert(Box::from(exposure.unit), i);
        self.units.push(Unit {
            first_time: exposure.time,
            bucket: exposure.bucket,
            allocation: exposure.allocation,
            dimension: exposure.dimension.map(Box::from),
            multiple: false,
        });
    }

    /// Ends reading: counts the units exposed to several buckets.
    pub fn finish(&mut self) {
        self.excluded.multiple_buckets = self.units.iter().filter(|u| u.multiple).count() as u64;
    }

    /// The index of a unit, if it is in the experiment.
    pub fn find(&self, unit: &str) -> Option<u32> {
        self.index.get(unit).copied()
    }

    /// Every unit (those exposed to several buckets included; see [`Unit::multiple`]).
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// How many units, left-out ones included.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Whether nobody was exposed.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Span = Span { from: 0, to: i64::MAX };

    fn exposure(time: i64, unit: &str, bucket: i32, reason: Option<&'static str>) -> Exposure<'static> {
        let unit: &'static str = Box::leak(unit.to_string().into_boxed_str());
        Exposure { time, unit, bucket, reason, allocation: Some(0), dimension: None }
    }

    #[test]
    fn a_unit_enters_at_its_earliest_exposure_whatever_the_order_they_arrive_in() {
        let mut p = Population::new();
        p.add(exposure(50, "u1", 1, Some("split")), ALL);
        p.add(exposure(10, "u1", 1, None), ALL);
        p.finish();
        assert_eq!(p.units().len(), 1);
        assert_eq!(p.units()[0].first_time, 10);
        assert_eq!(p.excluded, Exclusions::default());
    }

    #[test]
    fn targeted_forced_and_out_of_phase_exposures_are_counted_and_left_out() {
        let mut p = Population::new();
        p.add(exposure(5, "u1", 1, Some("targeted")), ALL);
        p.add(exposure(5, "u2", 1, Some("forced")), ALL);
        p.add(exposure(5, "u3", 1, Some("default")), ALL);
        p.add(exposure(5, "u4", 1, Some("split")), Span { from: 10, to: 20 });
        p.finish();
        assert!(p.is_empty());
        assert_eq!(p.excluded.not_split, 3);
        assert_eq!(p.excluded.outside_phase, 1);
    }

    #[test]
    fn a_unit_seen_in_two_buckets_is_marked_and_counted_once() {
        let mut p = Population::new();
        p.add(exposure(1, "u1", 0, None), ALL);
        p.add(exposure(2, "u1", 1, None), ALL);
        p.add(exposure(3, "u1", 0, None), ALL);
        p.add(exposure(3, "u2", 0, None), ALL);
        p.finish();
        assert_eq!(p.excluded.multiple_buckets, 1);
        assert!(p.units()[0].multiple);
        assert!(!p.units()[1].multiple);
    }
}
