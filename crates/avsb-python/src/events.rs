//! The event buffer: exposures and tracked events waiting for the background sender.
//!
//! Bounded twice: at most `capacity` events wait (further ones are counted as dropped), and the
//! exposure de-duplication set forgets everything when it reaches `dedup_capacity` (so a
//! repeated exposure is sent again at worst once per cycle, never lost).
//!
//! The server's limits (`POST /sdk/v1/events`) are checked here, at record time, so that one bad
//! event can never make the server refuse a whole batch.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustc_hash::{FxHashSet, FxHasher};
use serde_json::{json, Value as Json};

/// The longest string the server accepts in an event.
pub const MAX_STRING: usize = 256;
/// The largest `properties` object the server accepts, as JSON text.
pub const MAX_PROPERTIES: usize = 8 * 1024;
/// The most events the server accepts in one batch.
pub const MAX_BATCH: usize = 1000;
/// The most dimensions the server accepts on one exposure.
pub const MAX_DIMENSIONS: usize = 8;

/// One event waiting to be sent.
pub enum Event {
    Exposure {
        identifier_type: Arc<str>,
        identifier: String,
        test: Arc<str>,
        bucket: i32,
        bucket_name: String,
        version: Option<String>,
        reason: &'static str,
        allocation: Option<usize>,
        dimensions: Option<Json>,
        time: i64,
    },
    Track {
        identifiers: Vec<(String, String)>,
        key: String,
        value: Option<f64>,
        properties: Option<Json>,
        time: i64,
    },
}

impl Event {
    fn to_json(&self) -> Json {
        match self {
            Event::Exposure { identifier_type, identifier, test, bucket, bucket_name, version, reason, allocation, dimensions, time } => {
                let mut e = json!({
                    "kind": "exposure",
                    "identifiers": { &**identifier_type: identifier },
                    "test": &**test,
                    "bucket": bucket,
                    "bucketName": bucket_name,
                    "reason": reason,
                    "time": time,
                });
                if let Some(a) = allocation {
                    e["allocation"] = Json::from(*a);
                }
                if let Some(d) = dimensions {
                    e["dimensions"] = d.clone();
                }
                if let Some(v) = version {
                    e["version"] = Json::from(v.as_str());
                }
                e
            }
            Event::Track { identifiers, key, value, properties, time } => {
                let ids: serde_json::Map<String, Json> =
                    identifiers.iter().map(|(t, v)| (t.clone(), Json::from(v.as_str()))).collect();
                let mut e = json!({"kind": "track", "identifiers": ids, "key": key, "time": time});
                if let Some(v) = value {
                    e["value"] = json!(v);
                }
                if let Some(p) = properties {
                    e["properties"] = p.clone();
                }
                e
            }
        }
    }
}

/// Counters the SDK reports (and logs when events are dropped).
#[derive(Default, Clone, Copy)]
pub struct EventCounts {
    pub recorded: u64,
    pub deduplicated: u64,
    pub dropped_full: u64,
    pub dropped_invalid: u64,
}

/// Events waiting for the sender, bounded.
pub struct EventBuffer {
    queue: VecDeque<Event>,
    capacity: usize,
    seen: FxHashSet<u64>,
    dedup_capacity: usize,
    pub counts: EventCounts,
}

/// A random (version 4) UUID naming one batch.
pub fn batch_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness from the OS: the time and a counter still name the batch uniquely here.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..8].copy_from_slice(&now_millis().to_le_bytes());
        bytes[8..].copy_from_slice(&(n ^ u64::from(std::process::id())).to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Milliseconds since the epoch, now.
pub fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl EventBuffer {
    pub fn new(capacity: usize, dedup_capacity: usize) -> EventBuffer {
        EventBuffer {
            queue: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
            seen: FxHashSet::default(),
            dedup_capacity: dedup_capacity.max(1),
            counts: EventCounts::default(),
        }
    }

    fn push(&mut self, event: Event) -> bool {
        if self.queue.len() >= self.capacity {
            self.counts.dropped_full += 1;
            return false;
        }
        self.queue.push_back(event);
        self.counts.recorded += 1;
        true
    }

    /// Records that `identifier` saw `bucket` of `test`, unless it was recorded already.
    /// `reason` says how the bucket was reached (`split`, `targeted`, `default`) and
    /// `allocation` which allocation matched.
    #[allow(clippy::too_many_arguments)]
    pub fn exposure(
        &mut self,
        identifier_type: &Arc<str>,
        identifier: &str,
        test: &str,
        bucket: i32,
        bucket_name: &str,
        version: Option<&str>,
        reason: &'static str,
        allocation: Option<usize>,
        dimensions: Option<Json>,
    ) {
        let mut h = FxHasher::default();
        (test, identifier, &**identifier_type, bucket, version).hash(&mut h);
        let key = h.finish();
        if self.seen.contains(&key) {
            self.counts.deduplicated += 1;
            return;
        }
        if identifier.len() > MAX_STRING || test.len() > MAX_STRING || bucket_name.len() > MAX_STRING {
            self.counts.dropped_invalid += 1;
            return;
        }
        if self.seen.len() >= self.dedup_capacity {
            self.seen.clear();
        }
        let event = Event::Exposure {
            identifier_type: identifier_type.clone(),
            identifier: identifier.to_string(),
            test: Arc::from(test),
            bucket,
            bucket_name: bucket_name.to_string(),
            version: version.map(str::to_string),
            reason,
            allocation,
            dimensions,
            time: now_millis(),
        };
        if self.push(event) {
            self.seen.insert(key);
        }
    }

    /// Records a tracked event; an event the server would refuse is an error saying why.
    pub fn track(
        &mut self,
        identifiers: Vec<(String, String)>,
        key: &str,
        value: Option<f64>,
        properties: Option<Json>,
    ) -> Result<(), String> {
        let invalid = |counts: &mut EventCounts, message: String| {
            counts.dropped_invalid += 1;
            Err(message)
        };
        if key.is_empty() || key.len() > MAX_STRING {
            return invalid(&mut self.counts, format!("track: the key must be 1 to {MAX_STRING} bytes"));
        }
        if let Some(v) = value {
            if !v.is_finite() {
                return invalid(&mut self.counts, format!("track('{key}'): value must be a finite number"));
            }
        }
        if let Some((t, _)) = identifiers.iter().find(|(t, v)| t.len() > MAX_STRING || v.len() > MAX_STRING) {
            return invalid(&mut self.counts, format!("track('{key}'): the {t} identifier is longer than {MAX_STRING} bytes"));
        }
        if let Some(p) = &properties {
            if !p.is_object() {
                return invalid(&mut self.counts, format!("track('{key}'): properties must be a dict"));
            }
            let size = p.to_string().len();
            if size > MAX_PROPERTIES {
                return invalid(
                    &mut self.counts,
                    format!("track('{key}'): properties are {size} bytes of JSON; at most {MAX_PROPERTIES}"),
                );
            }
        }
        let event = Event::Track { identifiers, key: key.to_string(), value, properties, time: now_millis() };
        if self.push(event) {
            Ok(())
        } else {
            Err(format!("track('{key}'): the event buffer is full ({} events); dropped", self.capacity))
        }
    }

    /// Takes up to `max` events as one request body: `{"batchId": "<uuid>", "events": [...]}`.
    /// The sender re-sends the same body on a retry, so the server stores the batch once.
    pub fn drain(&mut self, max: usize) -> Option<Vec<u8>> {
        let n = self.queue.len().min(max.clamp(1, MAX_BATCH));
        if n == 0 {
            return None;
        }
        let events: Vec<Json> = self.queue.drain(..n).map(|e| e.to_json()).collect();
        serde_json::to_vec(&json!({ "batchId": batch_id(), "events": events })).ok()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Forgets everything: the queue and what was seen (after `fork()`, a child starts clean).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.seen.clear();
    }
}
