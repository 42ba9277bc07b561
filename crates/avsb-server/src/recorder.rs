//! Exposures of remote evaluation: for SDK keys with `recordExposures`, every bucket the
//! server's Pipet and OFREP answers hand out is recorded here, on the request path without
//! waiting, and written to the store in batches by [`AppState::flush_exposures`] (every
//! half-second while the server runs, and once more when it stops).
//!
//! Bounded twice, like the SDK's buffer: at most [`CAPACITY`] exposures wait (further ones are
//! counted as dropped and logged), and the set that keeps a unit's repeated exposure from being
//! recorded on every request forgets everything when it holds [`DEDUP_CAPACITY`] entries.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use avsb_core::{CompiledMatrix, Evaluation, Request};
use rustc_hash::{FxHashSet, FxHasher};

use crate::store::{NewEvent, StoreResult};
use crate::AppState;

/// The most exposures waiting to be written.
pub const CAPACITY: usize = 100_000;
/// The most exposures remembered to skip repeats.
const DEDUP_CAPACITY: usize = 1_000_000;
/// Exposures per stored batch.
const BATCH: usize = 1000;

#[derive(Default)]
struct Pending {
    by_key: HashMap<(i64, i64), Vec<NewEvent>>,
    count: usize,
    seen: FxHashSet<u64>,
    dropped: u64,
}

/// Exposures waiting to be stored, per environment and SDK key.
#[derive(Default)]
pub struct ExposureRecorder {
    pending: Mutex<Pending>,
}

impl std::fmt::Debug for ExposureRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExposureRecorder")
    }
}

impl ExposureRecorder {
    /// Records the exposures of one evaluation (tests that got a bucket, force groups aside).
    pub fn record(
        &self,
        environment_id: i64,
        key_id: i64,
        matrix: &CompiledMatrix,
        evaluation: &Evaluation<'_>,
        request: &Request<'_>,
        now: i64,
    ) {
        let mut events = Vec::new();
        for assignment in evaluation.assigned() {
            if let Some(event) = exposure(matrix, assignment, request, now) {
                events.push(event);
            }
        }
        if events.is_empty() {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (digest, event) in events {
            if pending.seen.contains(&digest) {
                continue;
            }
            if pending.count >= CAPACITY {
                pending.dropped += 1;
                continue;
            }
            if pending.seen.len() >= DEDUP_CAPACITY {
                pending.seen.clear();
            }
            pending.seen.insert(digest);
            pending.count += 1;
            pending.by_key.entry((environment_id, key_id)).or_default().push(event);
        }
    }

    /// Records one assignment (OFREP's single evaluation).
    pub fn record_one(
        &self,
        environment_id: i64,
        key_id: i64,
        matrix: &CompiledMatrix,
        assignment: &avsb_core::Assignment<'_>,
        request: &Request<'_>,
        now: i64,
    ) {
        let evaluation = Evaluation { results: vec![assignment.clone()] };
        self.record(environment_id, key_id, matrix, &evaluation, request, now);
    }

    /// Everything waiting, and how many were dropped since the last call.
    fn take(&self) -> (HashMap<(i64, i64), Vec<NewEvent>>, u64) {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.count = 0;
        (std::mem::take(&mut pending.by_key), std::mem::take(&mut pending.dropped))
    }
}

/// One exposure event and its de-duplication digest, if the assignment is one to record.
fn exposure(
    matrix: &CompiledMatrix,
    assignment: &avsb_core::Assignment<'_>,
    request: &Request<'_>,
    now: i64,
) -> Option<(u64, NewEvent)> {
    let bucket = assignment.bucket?;
    let (reason, allocation) = assignment.reason.exposure()?;
    if reason == "forced" {
        return None;
    }
    let identifier_type = &matrix.definition(assignment.test)?.test_type;
    let slot = matrix.identifier_slot(identifier_type)?;
    let identifier = request.identifiers.get(slot)?.as_deref()?;
    let mut digest = FxHasher::default();
    (assignment.test, identifier, identifier_type, bucket.value, assignment.version).hash(&mut digest);
    let (test, version) = (assignment.test, assignment.version);
    let event = NewEvent::exposure(now, identifier_type, identifier, test, bucket, version, reason, allocation);
    Some((digest.finish(), event))
}

/// A random (version 4) UUID for a batch.
fn batch_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        return format!("{:032x}", crate::store::now_millis());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

impl AppState {
    /// Writes the recorded exposures to the store; returns how many were written.
    pub async fn flush_exposures(&self) -> StoreResult<usize> {
        let (by_key, dropped) = self.exposure_recorder.take();
        if dropped > 0 {
            tracing::warn!(dropped, "remote exposures were dropped: more than {CAPACITY} waited to be written");
        }
        let mut written = 0;
        for ((environment_id, key_id), events) in by_key {
            let mut events = events.into_iter().peekable();
            while events.peek().is_some() {
                let chunk: Vec<NewEvent> = events.by_ref().take(BATCH).collect();
                let count = chunk.len();
                self.store.insert_events(environment_id, Some(key_id), Some(batch_id()), chunk).await?;
                self.metrics.events_accepted("exposure", count as u64);
                written += count;
            }
        }
        Ok(written)
    }
}
