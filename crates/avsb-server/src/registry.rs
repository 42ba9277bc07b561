//! What the request path reads: one immutable snapshot per environment (its compiled matrix and
//! pre-rendered documents), swapped atomically when a revision is committed, and the map from
//! SDK-key digests to environments. Readers never take a lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use avsb_core::{CompiledMatrix, ContextSchema, MatrixDocument, Severity};
use axum::body::Bytes;
use serde_json::json;
use tokio::sync::watch;

use crate::store::{ActiveSdkKey, Environment, Project, Revision, RevisionMeta};

/// A stored revision or schema the engine cannot read (only after a manual database edit:
/// everything written is validated first).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SnapshotError(pub String);

/// One environment at one revision, ready to serve.
#[derive(Debug)]
pub struct EnvSnapshot {
    /// The project's id.
    pub project_id: i64,
    /// The project's key.
    pub project_key: String,
    /// The environment's id.
    pub environment_id: i64,
    /// The environment's key.
    pub environment_key: String,
    /// The revision served.
    pub revision: RevisionMeta,
    /// The project's schema version it was compiled against.
    pub schema_version: i64,
    /// The identifier type of OFREP's `targetingKey` and SDK contexts of kind `user`.
    pub default_identifier_type: String,
    /// The compiled matrix.
    pub matrix: CompiledMatrix,
    /// `GET /proctor/matrix`: the verified matrix as Proctor writes it.
    pub matrix_json: Bytes,
    /// The SDK datafile: matrix, schema and versions.
    pub datafile: Bytes,
    /// The datafile's entity tag (quoted), also the stream's event id.
    pub etag: String,
    /// Whether any test is of type RANDOM (only then does a request need a random number).
    pub has_random_tests: bool,
}

impl EnvSnapshot {
    /// Compiles a revision against the project's schema. Tests the schema no longer accepts are
    /// left out (writes are validated first, so this only happens after a manual database edit).
    pub fn build(project: &Project, env: &Environment, revision: &Revision) -> Result<EnvSnapshot, SnapshotError> {
        let schema = ContextSchema::from_json(&project.schema_json)
            .map_err(|e| SnapshotError(format!("project '{}': schema {e}", project.key)))?;
        let compilation = CompiledMatrix::compile_json(&revision.matrix_json, &schema)
            .map_err(|e| SnapshotError(format!("revision {}: {e}", revision.meta.id)))?;
        for d in compilation.diagnostics.iter().filter(|d| d.severity == Severity::Error) {
            tracing::warn!(project = %project.key, environment = %env.key, revision = revision.meta.id, "dropped at load: {d}");
        }
        Self::from_compiled(project, env.id, &env.key, &revision.meta, compilation.matrix)
    }

    /// A snapshot of an already compiled matrix.
    pub fn from_compiled(
        project: &Project,
        environment_id: i64,
        environment_key: &str,
        revision: &RevisionMeta,
        matrix: CompiledMatrix,
    ) -> Result<EnvSnapshot, SnapshotError> {
        let matrix_json = document_json(&matrix.to_document()).map_err(|e| SnapshotError(e.to_string()))?;
        Self::from_rendered(project, environment_id, environment_key, revision, matrix, matrix_json)
    }

    /// A snapshot of a compiled matrix whose document is already rendered (`matrix_json`, as
    /// [`document_json`] writes it): the write path has it, as the revision it stores, and
    /// rendering a large matrix again would cost another copy of every test.
    pub fn from_rendered(
        project: &Project,
        environment_id: i64,
        environment_key: &str,
        revision: &RevisionMeta,
        matrix: CompiledMatrix,
        matrix_json: Vec<u8>,
    ) -> Result<EnvSnapshot, SnapshotError> {
        let has_random_tests =
            matrix.test_names().any(|t| matrix.definition(t).is_some_and(|d| d.test_type.eq_ignore_ascii_case("RANDOM")));
        let etag = format!("\"{}.{}\"", revision.id, project.schema_version);
        let head = json!({
            "project": project.key,
            "environment": environment_key,
            "version": revision.id.to_string(),
            "schemaVersion": project.schema_version,
            "defaultIdentifierType": project.default_identifier_type,
            "schema": matrix.schema().to_json(),
        });
        // The head's fields, then the matrix's text as its last field.
        let mut datafile = serde_json::to_vec(&head).map_err(|e| SnapshotError(e.to_string()))?;
        datafile.pop();
        datafile.reserve(matrix_json.len() + 12);
        datafile.extend_from_slice(b",\"matrix\":");
        datafile.extend_from_slice(&matrix_json);
        datafile.push(b'}');
        Ok(EnvSnapshot {
            project_id: project.id,
            project_key: project.key.clone(),
            environment_id,
            environment_key: environment_key.to_string(),
            revision: revision.clone(),
            schema_version: project.schema_version,
            default_identifier_type: project.default_identifier_type.clone(),
            matrix_json: Bytes::from(matrix_json),
            datafile: Bytes::from(datafile),
            has_random_tests,
            matrix,
            etag,
        })
    }
}

/// A matrix document as compact JSON, byte for byte `serde_json::to_vec(&document.to_json(false))`,
/// written one test at a time: a `serde_json::Value` of a whole matrix costs over ten times its
/// text (about 70 MB for 10,000 tests), and a write renders the document more than once.
pub fn document_json(document: &MatrixDocument) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(64 + document.tests.len() * 512);
    out.extend_from_slice(b"{\"audit\":");
    serde_json::to_writer(&mut out, &document.audit.to_json())?;
    out.extend_from_slice(b",\"tests\":{");
    for (i, (name, test)) in document.tests.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, name)?;
        out.push(b':');
        serde_json::to_writer(&mut out, &test.to_json(false))?;
    }
    out.extend_from_slice(b"}}");
    Ok(out)
}

/// One environment's current snapshot and the channel that announces new ones.
#[derive(Debug)]
pub struct EnvSlot {
    current: ArcSwap<EnvSnapshot>,
    changes: watch::Sender<Arc<EnvSnapshot>>,
}

impl EnvSlot {
    /// The snapshot served now.
    pub fn current(&self) -> Arc<EnvSnapshot> {
        self.current.load_full()
    }

    /// A receiver that sees every later snapshot (the latest one, if several arrive at once).
    pub fn subscribe(&self) -> watch::Receiver<Arc<EnvSnapshot>> {
        self.changes.subscribe()
    }
}

/// An SDK key as the request path knows it.
#[derive(Debug, Clone, Copy)]
pub struct KeyEntry {
    /// The key's id.
    pub key_id: i64,
    /// The environment it reads.
    pub environment_id: i64,
    /// Whether Pipet and OFREP answers with this key record exposures.
    pub record_exposures: bool,
}

#[derive(Debug, Default, Clone)]
struct Maps {
    environments: HashMap<i64, Arc<EnvSlot>>,
    by_name: HashMap<(String, String), i64>,
    keys: HashMap<[u8; 32], KeyEntry>,
}

/// Every environment's snapshot and every active SDK key.
#[derive(Debug)]
pub struct Registry {
    maps: ArcSwap<Maps>,
    /// Bumped whenever the set of active keys changes, so open streams can check theirs.
    keys_changed: watch::Sender<u64>,
    /// Serializes updates (rare); reads go through `maps` without it.
    update: Mutex<()>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { maps: ArcSwap::default(), keys_changed: watch::channel(0).0, update: Mutex::new(()) }
    }
}

impl Registry {
    /// A receiver told whenever keys are created or revoked.
    pub fn subscribe_keys(&self) -> watch::Receiver<u64> {
        self.keys_changed.subscribe()
    }

    /// Whether the SDK key with this id is still active.
    pub fn key_active(&self, key_id: i64) -> bool {
        self.maps.load().keys.values().any(|k| k.key_id == key_id)
    }

    fn modify(&self, f: impl FnOnce(&mut Maps)) {
        let _guard = self.update.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut maps = Maps::clone(&self.maps.load());
        f(&mut maps);
        self.maps.store(Arc::new(maps));
    }

    /// Publishes a snapshot: new requests see it at once and streams are told.
    pub fn publish(&self, snapshot: EnvSnapshot) -> Arc<EnvSnapshot> {
        let snapshot = Arc::new(snapshot);
        let slot = self.maps.load().environments.get(&snapshot.environment_id).cloned();
        match slot {
            Some(slot) => {
                slot.current.store(Arc::clone(&snapshot));
                slot.changes.send_replace(Arc::clone(&snapshot));
            }
            None => self.modify(|maps| {
                let (changes, _) = watch::channel(Arc::clone(&snapshot));
                let slot = EnvSlot { current: ArcSwap::new(Arc::clone(&snapshot)), changes };
                maps.by_name
                    .insert((snapshot.project_key.clone(), snapshot.environment_key.clone()), snapshot.environment_id);
                maps.environments.insert(snapshot.environment_id, Arc::new(slot));
            }),
        }
        snapshot
    }

    /// An environment by id.
    pub fn environment(&self, environment_id: i64) -> Option<Arc<EnvSlot>> {
        self.maps.load().environments.get(&environment_id).cloned()
    }

    /// An environment's current snapshot by project and environment key.
    pub fn by_name(&self, project: &str, environment: &str) -> Option<Arc<EnvSnapshot>> {
        let maps = self.maps.load();
        let id = maps.by_name.get(&(project.to_string(), environment.to_string()))?;
        maps.environments.get(id).map(|slot| slot.current())
    }

    /// The environment an SDK key reads, by the key's digest.
    pub fn key(&self, digest: &[u8; 32]) -> Option<(KeyEntry, Arc<EnvSlot>)> {
        let maps = self.maps.load();
        let entry = *maps.keys.get(digest)?;
        let slot = maps.environments.get(&entry.environment_id)?.clone();
        Some((entry, slot))
    }

    /// Replaces the set of active SDK keys.
    pub fn set_keys(&self, keys: impl IntoIterator<Item = ActiveSdkKey>) {
        let keys: HashMap<[u8; 32], KeyEntry> = keys
            .into_iter()
            .filter_map(|key| {
                let digest: [u8; 32] = key.digest.try_into().ok()?;
                let entry =
                    KeyEntry { key_id: key.id, environment_id: key.environment_id, record_exposures: key.record_exposures };
                Some((digest, entry))
            })
            .collect();
        self.modify(|maps| maps.keys = keys);
        self.keys_changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Every environment's current snapshot (for metrics).
    pub fn snapshots(&self) -> Vec<Arc<EnvSnapshot>> {
        self.maps.load().environments.values().map(|slot| slot.current()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_written_as_its_json_tree_would_be() {
        let text = r#"{"audit": {"version": "7", "updated": 1700000000000, "updatedBy": "ann \"the\" editor"},
            "tests": {
              "b-test": {"version": "3", "salt": "b", "testType": "USER", "description": "é ☃ \u0001", "rule": "${a == 'x'}",
                "constants": {"LIST": ["a", 1, 2.5e-7, null]},
                "buckets": [{"name": "off", "value": 0, "payload": {"doubleValue": 0.1}},
                            {"name": "on", "value": 1, "description": "d", "payload": {"map": {"k": 1}}}],
                "allocations": [{"rule": null, "ranges": [{"bucketValue": 0, "length": 0.3}, {"bucketValue": 1, "length": 0.7}]}]},
              "a-test": {"salt": "&a", "testType": "USER", "buckets": [{"name": "x", "value": -1}],
                "allocations": [{"ranges": [{"bucketValue": -1, "length": 1.0}]}]}
            }}"#;
        let (document, _) = MatrixDocument::from_json(text).unwrap();
        assert!(document.tests.len() == 2);
        assert_eq!(document_json(&document).unwrap(), serde_json::to_vec(&document.to_json(false)).unwrap());
        let empty = MatrixDocument::default();
        assert_eq!(document_json(&empty).unwrap(), serde_json::to_vec(&empty.to_json(false)).unwrap());
    }
}
