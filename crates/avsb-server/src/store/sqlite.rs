//! The default store: one SQLite file, migrations embedded and applied at open.
//!
//! rusqlite is synchronous, so every call runs on tokio's blocking pool behind one connection
//! mutex. That also serializes writes, which SQLite does anyway. The request path never
//! reaches this store: it reads in-memory snapshots (`registry`).
//!
//! The database holds every matrix, event and the digests of every secret: on Unix its files
//! are created readable by their owner only (0600, in a 0700 data directory), and tightened
//! at open, with a warning, when an earlier version or a copy left them looser.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use rusqlite_migration::{Migrations, M};

use super::{
    now_millis, ActiveSdkKey, AdminTokenInfo, AuditEntry, BatchOutcome, EventFilter, ExposureRow, MetricRecord, TrackRow, Environment, LoginFailures, NewEvent, NewProject, NewUser, Project,
    ProjectRole, Revision, RevisionMeta, Role, SdkKeyInfo, SessionRecord, Store, StoreError, StoreResult, StoredEvent,
    TokenOwner, User,
};

/// The schema, one migration per file, applied in order at open.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/sqlite/001_initial.sql")),
        M::up(include_str!("../../migrations/sqlite/002_accounts.sql")),
        M::up(include_str!("../../migrations/sqlite/003_results.sql")),
        M::up(include_str!("../../migrations/sqlite/004_result_snapshots.sql")),
    ])
}

/// A store in one SQLite database file.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(code, ref message) = e {
            if code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE {
                return StoreError::Duplicate(message.clone().unwrap_or_else(|| "a row".into()));
            }
        }
        StoreError::Backend(e.to_string())
    }
}

/// Creates the data directory (and its parents) readable by the owner only, or tightens an
/// existing one that group or others may read.
pub fn secure_data_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.exists() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        tighten(dir, 0o700);
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Takes group and other permissions away from `path` if it has any (`private` is the mode to
/// set), saying so; a failure is logged, not fatal (the owner may be someone else).
#[cfg(unix)]
fn tighten(path: &Path, private: u32) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::metadata(path) else { return };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(private)) {
        Ok(()) => tracing::warn!(
            path = %path.display(),
            "tightened permissions from {mode:04o} to {private:04o}: the data directory holds every matrix and the digests of every secret"
        ),
        Err(e) => tracing::warn!(
            path = %path.display(),
            "permissions are {mode:04o} (group or others may read) and could not be tightened to {private:04o}: {e}"
        ),
    }
}

/// The database file and SQLite's files beside it (the write-ahead log, its index, a rollback
/// journal).
fn database_files(path: &Path) -> Vec<std::path::PathBuf> {
    let mut files = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(name.into());
    }
    files
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations. A new
    /// database file is created with mode 0600 (SQLite gives its journal and index the same);
    /// existing ones that group or others may read are tightened.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            if !path.exists() {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", path.display())))?;
            }
            for file in database_files(path) {
                tighten(&file, 0o600);
            }
        }
        let conn = Connection::open(path)?;
        let store = Self::init(conn)?;
        #[cfg(unix)]
        for file in database_files(path) {
            tighten(&file, 0o600);
        }
        Ok(store)
    }

    /// A private in-memory database, for tests.
    pub fn in_memory() -> StoreResult<SqliteStore> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> StoreResult<SqliteStore> {
        // WAL lets `avsb token create` write while a server reads; FULL syncs every commit, so an
        // acknowledged event or revision survives a power cut.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations().to_latest(&mut conn).map_err(|e| StoreError::Backend(format!("migrations: {e}")))?;
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn call<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Backend("the connection lock is poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("storage task failed: {e}")))?
    }
}

const PROJECT_COLUMNS: &str = "id, key, name, schema_json, schema_version, default_identifier_type, created_at";
const ENVIRONMENT_COLUMNS: &str = "id, project_id, key, name, position, current_revision_id, created_at, protected";
const USER_COLUMNS: &str = "id, username, display_name, is_owner, created_at, password_changed_at, disabled_at";
const TOKEN_COLUMNS: &str = "id, name, role, prefix, created_at, revoked_at, user_id, project_id";
const REVISION_META_COLUMNS: &str = "id, environment_id, parent_id, kind, test_count, author, comment, created_at";

fn project_row(row: &Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: row.get(0)?,
        key: row.get(1)?,
        name: row.get(2)?,
        schema_json: row.get(3)?,
        schema_version: row.get(4)?,
        default_identifier_type: row.get(5)?,
        created_at: row.get(6)?,
    })
}

fn environment_row(row: &Row<'_>) -> rusqlite::Result<Environment> {
    Ok(Environment {
        id: row.get(0)?,
        project_id: row.get(1)?,
        key: row.get(2)?,
        name: row.get(3)?,
        position: row.get(4)?,
        current_revision: row.get::<_, Option<i64>>(5)?.unwrap_or(0),
        created_at: row.get(6)?,
        protected: row.get(7)?,
    })
}

fn revision_meta_row(row: &Row<'_>) -> rusqlite::Result<RevisionMeta> {
    Ok(RevisionMeta {
        id: row.get(0)?,
        environment_id: row.get(1)?,
        parent: row.get(2)?,
        kind: row.get(3)?,
        test_count: row.get(4)?,
        author: row.get(5)?,
        comment: row.get(6)?,
        created_at: row.get(7)?,
    })
}

fn sdk_key_row(row: &Row<'_>) -> rusqlite::Result<SdkKeyInfo> {
    Ok(SdkKeyInfo {
        id: row.get(0)?,
        environment_id: row.get(1)?,
        name: row.get(2)?,
        prefix: row.get(3)?,
        created_at: row.get(4)?,
        revoked_at: row.get(5)?,
        record_exposures: row.get(6)?,
    })
}

const SDK_KEY_COLUMNS: &str = "id, environment_id, name, prefix, created_at, revoked_at, record_exposures";
const METRIC_COLUMNS: &str = "id, project_id, key, definition, created_at, updated_at";

fn metric_row(row: &Row<'_>) -> rusqlite::Result<MetricRecord> {
    Ok(MetricRecord {
        id: row.get(0)?,
        project_id: row.get(1)?,
        key: row.get(2)?,
        definition: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    })
}

/// `?2, ?3, ...` for `count` bound values after the first.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
}

fn admin_token_row(row: &Row<'_>) -> rusqlite::Result<AdminTokenInfo> {
    let role: String = row.get(2)?;
    Ok(AdminTokenInfo {
        id: row.get(0)?,
        name: row.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Read),
        prefix: row.get(3)?,
        created_at: row.get(4)?,
        revoked_at: row.get(5)?,
        user_id: row.get(6)?,
        project_id: row.get(7)?,
    })
}

fn user_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        display_name: row.get(2)?,
        is_owner: row.get(3)?,
        created_at: row.get(4)?,
        password_changed_at: row.get(5)?,
        disabled_at: row.get(6)?,
    })
}

fn role_of(text: String) -> ProjectRole {
    // Roles are written by this store only; an unknown one (a manual edit) grants the least.
    ProjectRole::parse(&text).unwrap_or(ProjectRole::Viewer)
}

fn insert_revision(conn: &Connection, revision: &Revision) -> StoreResult<()> {
    let m = &revision.meta;
    conn.execute(
        "INSERT INTO revisions (id, environment_id, parent_id, kind, matrix_json, test_count, author, comment, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            m.id,
            m.environment_id,
            m.parent,
            m.kind,
            revision.matrix_json,
            m.test_count,
            m.author,
            m.comment,
            m.created_at
        ],
    )?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_project(&self, project: NewProject) -> StoreResult<Project> {
        self.call(move |conn| {
            let now = now_millis();
            conn.execute(
                "INSERT INTO projects (key, name, schema_json, default_identifier_type, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![project.key, project.name, project.schema_json, project.default_identifier_type, now],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Duplicate(_) => StoreError::Duplicate(format!("project '{}'", project.key)),
                other => other,
            })?;
            let id = conn.last_insert_rowid();
            Ok(conn.query_row(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?1"), [id], project_row)?)
        })
        .await
    }

    async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        self.call(|conn| {
            let mut stmt = conn.prepare(&format!("SELECT {PROJECT_COLUMNS} FROM projects ORDER BY key"))?;
            let rows = stmt.query_map([], project_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn project(&self, key: &str) -> StoreResult<Option<Project>> {
        let key = key.to_string();
        self.call(move |conn| {
            Ok(conn
                .query_row(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE key = ?1"), [key], project_row)
                .optional()?)
        })
        .await
    }

    async fn set_schema(&self, project_id: i64, schema_json: &str, expected_version: i64) -> StoreResult<Project> {
        let schema_json = schema_json.to_string();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: i64 = tx
                .query_row("SELECT schema_version FROM projects WHERE id = ?1", [project_id], |r| r.get(0))
                .optional()?
                .ok_or_else(|| StoreError::NotFound("project".into()))?;
            if current != expected_version {
                return Err(StoreError::Conflict { expected: expected_version, current });
            }
            tx.execute(
                "UPDATE projects SET schema_json = ?1, schema_version = schema_version + 1 WHERE id = ?2",
                params![schema_json, project_id],
            )?;
            let project =
                tx.query_row(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?1"), [project_id], project_row)?;
            tx.commit()?;
            Ok(project)
        })
        .await
    }

    async fn update_project(&self, project_id: i64, name: &str, default_identifier_type: &str) -> StoreResult<Project> {
        let (name, default_identifier_type) = (name.to_string(), default_identifier_type.to_string());
        self.call(move |conn| {
            let changed = conn.execute(
                "UPDATE projects SET name = ?1, default_identifier_type = ?2 WHERE id = ?3",
                params![name, default_identifier_type, project_id],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound("project".into()));
            }
            Ok(conn.query_row(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?1"), [project_id], project_row)?)
        })
        .await
    }

    async fn create_environment(&self, project_id: i64, key: &str, name: &str, first: Revision) -> StoreResult<Environment> {
        let (key, name) = (key.to_string(), name.to_string());
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let position: i64 = tx.query_row(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM environments WHERE project_id = ?1",
                [project_id],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO environments (project_id, key, name, position, current_revision_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![project_id, key, name, position, first.meta.id, first.meta.created_at],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Duplicate(_) => StoreError::Duplicate(format!("environment '{key}'")),
                other => other,
            })?;
            let environment_id = tx.last_insert_rowid();
            let mut first = first;
            first.meta.environment_id = environment_id;
            insert_revision(&tx, &first)?;
            let env = tx.query_row(
                &format!("SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE id = ?1"),
                [environment_id],
                environment_row,
            )?;
            tx.commit()?;
            Ok(env)
        })
        .await
    }

    async fn list_environments(&self, project_id: i64) -> StoreResult<Vec<Environment>> {
        self.call(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE project_id = ?1 ORDER BY position"
            ))?;
            let rows = stmt.query_map([project_id], environment_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn all_environments(&self) -> StoreResult<Vec<(Project, Environment)>> {
        self.call(|conn| {
            let columns: String = PROJECT_COLUMNS
                .split(", ")
                .map(|c| format!("p.{c}"))
                .chain(ENVIRONMENT_COLUMNS.split(", ").map(|c| format!("e.{c}")))
                .collect::<Vec<_>>()
                .join(", ");
            let mut stmt = conn.prepare(&format!(
                "SELECT {columns} FROM environments e JOIN projects p ON p.id = e.project_id ORDER BY p.key, e.position"
            ))?;
            let rows = stmt
                .query_map([], |row| {
                    let project = project_row(row)?;
                    let env = Environment {
                        id: row.get(7)?,
                        project_id: row.get(8)?,
                        key: row.get(9)?,
                        name: row.get(10)?,
                        position: row.get(11)?,
                        current_revision: row.get::<_, Option<i64>>(12)?.unwrap_or(0),
                        created_at: row.get(13)?,
                        protected: row.get(14)?,
                    };
                    Ok((project, env))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn reserve_revision_id(&self) -> StoreResult<i64> {
        self.call(|conn| {
            conn.execute("INSERT INTO revision_sequence DEFAULT VALUES", [])?;
            let id = conn.last_insert_rowid();
            conn.execute("DELETE FROM revision_sequence WHERE id < ?1", [id])?;
            Ok(id)
        })
        .await
    }

    async fn commit_revision(&self, expected_current: i64, revision: Revision) -> StoreResult<()> {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: i64 = tx
                .query_row(
                    "SELECT current_revision_id FROM environments WHERE id = ?1",
                    [revision.meta.environment_id],
                    |r| r.get::<_, Option<i64>>(0),
                )
                .optional()?
                .ok_or_else(|| StoreError::NotFound("environment".into()))?
                .unwrap_or(0);
            if current != expected_current {
                return Err(StoreError::Conflict { expected: expected_current, current });
            }
            insert_revision(&tx, &revision)?;
            tx.execute(
                "UPDATE environments SET current_revision_id = ?1 WHERE id = ?2",
                params![revision.meta.id, revision.meta.environment_id],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn revision(&self, id: i64) -> StoreResult<Option<Revision>> {
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {REVISION_META_COLUMNS}, matrix_json FROM revisions WHERE id = ?1"),
                    [id],
                    |row| Ok(Revision { meta: revision_meta_row(row)?, matrix_json: row.get(8)? }),
                )
                .optional()?)
        })
        .await
    }

    async fn revision_metas(&self, ids: Vec<i64>) -> StoreResult<Vec<RevisionMeta>> {
        self.call(move |conn| {
            let mut out = Vec::with_capacity(ids.len());
            // SQLite takes at most 999 parameters in a statement (older builds): ask in chunks.
            for chunk in ids.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(", ");
                let mut stmt = conn.prepare(&format!("SELECT {REVISION_META_COLUMNS} FROM revisions WHERE id IN ({marks})"))?;
                let rows = stmt.query_map(rusqlite::params_from_iter(chunk.iter()), revision_meta_row)?;
                for row in rows {
                    out.push(row?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn list_revisions(&self, environment_id: i64, before: Option<i64>, limit: u32) -> StoreResult<Vec<RevisionMeta>> {
        self.call(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {REVISION_META_COLUMNS} FROM revisions WHERE environment_id = ?1 AND id < ?2
                 ORDER BY id DESC LIMIT ?3"
            ))?;
            let rows = stmt
                .query_map(params![environment_id, before.unwrap_or(i64::MAX), limit], revision_meta_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn create_sdk_key(
        &self,
        environment_id: i64,
        name: &str,
        digest: &[u8],
        prefix: &str,
        record_exposures: bool,
    ) -> StoreResult<SdkKeyInfo> {
        let (name, digest, prefix) = (name.to_string(), digest.to_vec(), prefix.to_string());
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO sdk_keys (environment_id, name, digest, prefix, created_at, record_exposures)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![environment_id, name, digest, prefix, now_millis(), record_exposures],
            )?;
            let id = conn.last_insert_rowid();
            Ok(conn.query_row(&format!("SELECT {SDK_KEY_COLUMNS} FROM sdk_keys WHERE id = ?1"), [id], sdk_key_row)?)
        })
        .await
    }

    async fn set_sdk_key_recording(&self, environment_id: i64, key_id: i64, record_exposures: bool) -> StoreResult<bool> {
        self.call(move |conn| {
            let changed = conn.execute(
                "UPDATE sdk_keys SET record_exposures = ?1 WHERE id = ?2 AND environment_id = ?3 AND revoked_at IS NULL",
                params![record_exposures, key_id, environment_id],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn list_sdk_keys(&self, environment_id: i64) -> StoreResult<Vec<SdkKeyInfo>> {
        self.call(move |conn| {
            let mut stmt =
                conn.prepare(&format!("SELECT {SDK_KEY_COLUMNS} FROM sdk_keys WHERE environment_id = ?1 ORDER BY id"))?;
            let rows = stmt.query_map([environment_id], sdk_key_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn revoke_sdk_key(&self, environment_id: i64, key_id: i64) -> StoreResult<bool> {
        self.call(move |conn| {
            let changed = conn.execute(
                "UPDATE sdk_keys SET revoked_at = ?1 WHERE id = ?2 AND environment_id = ?3 AND revoked_at IS NULL",
                params![now_millis(), key_id, environment_id],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn active_sdk_keys(&self) -> StoreResult<Vec<ActiveSdkKey>> {
        self.call(|conn| {
            let mut stmt = conn
                .prepare("SELECT digest, id, environment_id, record_exposures FROM sdk_keys WHERE revoked_at IS NULL")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(ActiveSdkKey {
                        digest: r.get(0)?,
                        id: r.get(1)?,
                        environment_id: r.get(2)?,
                        record_exposures: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn create_admin_token(
        &self,
        name: &str,
        role: Role,
        owner: TokenOwner,
        digest: &[u8],
        prefix: &str,
    ) -> StoreResult<AdminTokenInfo> {
        let (name, digest, prefix) = (name.to_string(), digest.to_vec(), prefix.to_string());
        let (user_id, project_id) = match owner {
            TokenOwner::Instance => (None, None),
            TokenOwner::User(id) => (Some(id), None),
            TokenOwner::Project(id) => (None, Some(id)),
        };
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO admin_tokens (name, role, digest, prefix, created_at, user_id, project_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![name, role.as_str(), digest, prefix, now_millis(), user_id, project_id],
            )?;
            let id = conn.last_insert_rowid();
            Ok(conn.query_row(
                &format!("SELECT {TOKEN_COLUMNS} FROM admin_tokens WHERE id = ?1"),
                [id],
                admin_token_row,
            )?)
        })
        .await
    }

    async fn admin_token(&self, digest: &[u8]) -> StoreResult<Option<AdminTokenInfo>> {
        let digest = digest.to_vec();
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {TOKEN_COLUMNS} FROM admin_tokens WHERE digest = ?1 AND revoked_at IS NULL"),
                    [digest],
                    admin_token_row,
                )
                .optional()?)
        })
        .await
    }

    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminTokenInfo>> {
        self.call(|conn| {
            let mut stmt =
                conn.prepare(&format!("SELECT {TOKEN_COLUMNS} FROM admin_tokens ORDER BY id"))?;
            let rows = stmt.query_map([], admin_token_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn revoke_admin_token(&self, id: i64) -> StoreResult<bool> {
        self.call(move |conn| {
            let changed = conn.execute(
                "UPDATE admin_tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                params![now_millis(), id],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn set_protected(&self, environment_id: i64, protected: bool) -> StoreResult<()> {
        self.call(move |conn| {
            let changed =
                conn.execute("UPDATE environments SET protected = ?1 WHERE id = ?2", params![protected, environment_id])?;
            if changed == 0 {
                return Err(StoreError::NotFound("environment".into()));
            }
            Ok(())
        })
        .await
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        self.call(move |conn| {
            let now = now_millis();
            conn.execute(
                "INSERT INTO users (username, display_name, password_hash, is_owner, created_at, password_changed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![user.username, user.display_name, user.password_hash, user.is_owner, now],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Duplicate(_) => StoreError::Duplicate(format!("user '{}'", user.username)),
                other => other,
            })?;
            let id = conn.last_insert_rowid();
            Ok(conn.query_row(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"), [id], user_row)?)
        })
        .await
    }

    async fn user(&self, id: i64) -> StoreResult<Option<User>> {
        self.call(move |conn| {
            Ok(conn.query_row(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"), [id], user_row).optional()?)
        })
        .await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        let username = username.to_string();
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?1"),
                    [username],
                    |r| Ok((user_row(r)?, r.get(7)?)),
                )
                .optional()?)
        })
        .await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.call(|conn| {
            let mut stmt = conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"))?;
            let rows = stmt.query_map([], user_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn user_count(&self) -> StoreResult<i64> {
        self.call(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)).await
    }

    async fn set_password(&self, user_id: i64, password_hash: &str) -> StoreResult<()> {
        let password_hash = password_hash.to_string();
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let changed = tx.execute(
                "UPDATE users SET password_hash = ?1, password_changed_at = ?2 WHERE id = ?3",
                params![password_hash, now_millis(), user_id],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound("user".into()));
            }
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn set_owner(&self, user_id: i64, is_owner: bool) -> StoreResult<()> {
        self.call(move |conn| {
            let changed = conn.execute("UPDATE users SET is_owner = ?1 WHERE id = ?2", params![is_owner, user_id])?;
            if changed == 0 {
                return Err(StoreError::NotFound("user".into()));
            }
            Ok(())
        })
        .await
    }

    async fn set_membership(&self, user_id: i64, project_id: i64, role: Option<ProjectRole>) -> StoreResult<()> {
        self.call(move |conn| {
            match role {
                Some(role) => conn.execute(
                    "INSERT INTO memberships (user_id, project_id, role) VALUES (?1, ?2, ?3)
                     ON CONFLICT (user_id, project_id) DO UPDATE SET role = excluded.role",
                    params![user_id, project_id, role.as_str()],
                )?,
                None => conn.execute(
                    "DELETE FROM memberships WHERE user_id = ?1 AND project_id = ?2",
                    params![user_id, project_id],
                )?,
            };
            Ok(())
        })
        .await
    }

    async fn memberships(&self, user_id: i64) -> StoreResult<Vec<(i64, ProjectRole)>> {
        self.call(move |conn| {
            let mut stmt = conn.prepare("SELECT project_id, role FROM memberships WHERE user_id = ?1 ORDER BY project_id")?;
            let rows = stmt
                .query_map([user_id], |r| Ok((r.get(0)?, role_of(r.get(1)?))))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn project_members(&self, project_id: i64) -> StoreResult<Vec<(User, ProjectRole)>> {
        self.call(move |conn| {
            let columns: String = USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ");
            let mut stmt = conn.prepare(&format!(
                "SELECT {columns}, m.role FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.project_id = ?1 ORDER BY u.username"
            ))?;
            let rows = stmt
                .query_map([project_id], |r| Ok((user_row(r)?, role_of(r.get(7)?))))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn create_session(&self, digest: &[u8], user_id: i64, csrf: &str, expires_at: i64) -> StoreResult<()> {
        let (digest, csrf) = (digest.to_vec(), csrf.to_string());
        self.call(move |conn| {
            let now = now_millis();
            conn.execute(
                "INSERT INTO sessions (digest, user_id, csrf, created_at, last_seen_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                params![digest, user_id, csrf, now, expires_at],
            )?;
            // Expired sessions are removed as new ones are made, so the table stays small.
            conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [now])?;
            Ok(())
        })
        .await
    }

    async fn session(&self, digest: &[u8], now: i64) -> StoreResult<Option<SessionRecord>> {
        let digest = digest.to_vec();
        self.call(move |conn| {
            let columns: String = USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ");
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {columns}, s.csrf, s.created_at, s.last_seen_at, s.expires_at
                         FROM sessions s JOIN users u ON u.id = s.user_id
                         WHERE s.digest = ?1 AND s.expires_at > ?2 AND u.disabled_at IS NULL"
                    ),
                    params![digest, now],
                    |r| {
                        Ok(SessionRecord {
                            user: user_row(r)?,
                            csrf: r.get(7)?,
                            created_at: r.get(8)?,
                            last_seen_at: r.get(9)?,
                            expires_at: r.get(10)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    async fn touch_session(&self, digest: &[u8], now: i64, expires_at: i64) -> StoreResult<()> {
        let digest = digest.to_vec();
        self.call(move |conn| {
            conn.execute(
                "UPDATE sessions SET last_seen_at = ?1, expires_at = ?2 WHERE digest = ?3",
                params![now, expires_at, digest],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_session(&self, digest: &[u8]) -> StoreResult<()> {
        let digest = digest.to_vec();
        self.call(move |conn| {
            conn.execute("DELETE FROM sessions WHERE digest = ?1", [digest])?;
            Ok(())
        })
        .await
    }

    async fn delete_user_sessions(&self, user_id: i64) -> StoreResult<()> {
        self.call(move |conn| {
            conn.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
            Ok(())
        })
        .await
    }

    async fn login_failures(&self, key: &str) -> StoreResult<Option<LoginFailures>> {
        let key = key.to_string();
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT failures, window_start, locked_until FROM login_failures WHERE key = ?1",
                    [key],
                    |r| Ok(LoginFailures { failures: r.get(0)?, window_start: r.get(1)?, locked_until: r.get(2)? }),
                )
                .optional()?)
        })
        .await
    }

    async fn set_login_failures(&self, key: &str, failures: LoginFailures) -> StoreResult<()> {
        let key = key.to_string();
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO login_failures (key, failures, window_start, locked_until) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start,
                                                 locked_until = excluded.locked_until",
                params![key, failures.failures, failures.window_start, failures.locked_until],
            )?;
            Ok(())
        })
        .await
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        let key = key.to_string();
        self.call(move |conn| {
            conn.execute("DELETE FROM login_failures WHERE key = ?1", [key])?;
            Ok(())
        })
        .await
    }

    async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        project_id: Option<i64>,
        target: &str,
        details: &str,
    ) -> StoreResult<()> {
        let (actor, action, target, details) = (actor.to_string(), action.to_string(), target.to_string(), details.to_string());
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO audit_log (at, actor, action, project_id, target, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![now_millis(), actor, action, project_id, target, details],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, project_id: Option<i64>, before: Option<i64>, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        self.call(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, at, actor, action, project_id, target, details FROM audit_log
                 WHERE (?1 IS NULL OR project_id = ?1) AND id < ?2 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(params![project_id, before.unwrap_or(i64::MAX), limit], |r| {
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        at: r.get(1)?,
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        project_id: r.get(4)?,
                        target: r.get(5)?,
                        details: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_string();
        self.call(move |conn| {
            Ok(conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
        })
        .await
    }

    async fn set_setting(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        let (key, value) = (key.to_string(), value.map(str::to_string));
        self.call(move |conn| {
            match value {
                Some(value) => conn.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![key, value],
                )?,
                None => conn.execute("DELETE FROM settings WHERE key = ?1", [key])?,
            };
            Ok(())
        })
        .await
    }

    async fn insert_events(
        &self,
        environment_id: i64,
        sdk_key_id: Option<i64>,
        batch_id: Option<String>,
        events: Vec<NewEvent>,
    ) -> StoreResult<BatchOutcome> {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_millis();
            if let Some(batch_id) = &batch_id {
                let stored: Option<i64> = tx
                    .query_row(
                        "SELECT accepted FROM event_batches WHERE environment_id = ?1 AND batch_id = ?2",
                        params![environment_id, batch_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(accepted) = stored {
                    return Ok(BatchOutcome { accepted: usize::try_from(accepted).unwrap_or(0), duplicate: true });
                }
                tx.execute(
                    "INSERT INTO event_batches (environment_id, batch_id, received_at, accepted) VALUES (?1, ?2, ?3, ?4)",
                    params![environment_id, batch_id, now, events.len() as i64],
                )?;
            }
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO events (environment_id, sdk_key_id, kind, time, received_at, identifiers, test, bucket,
                                         bucket_name, version, key, value, properties, reason, allocation, dimensions)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                )?;
                for e in &events {
                    stmt.execute(params![
                        environment_id,
                        sdk_key_id,
                        e.kind,
                        e.time,
                        now,
                        e.identifiers,
                        e.test,
                        e.bucket,
                        e.bucket_name,
                        e.version,
                        e.key,
                        e.value,
                        e.properties,
                        e.reason,
                        e.allocation,
                        e.dimensions
                    ])?;
                }
            }
            tx.commit()?;
            Ok(BatchOutcome { accepted: events.len(), duplicate: false })
        })
        .await
    }

    async fn list_events(&self, environment_id: i64, filter: &EventFilter, after: i64, limit: u32)
        -> StoreResult<Vec<StoredEvent>> {
        let filter = filter.clone();
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, sdk_key_id, received_at, kind, time, identifiers, test, bucket, bucket_name, version, key,
                        value, properties, reason, allocation, dimensions
                 FROM events WHERE environment_id = ?1 AND id > ?2
                   AND (?4 IS NULL OR kind = ?4) AND (?5 IS NULL OR test = ?5) AND (?6 IS NULL OR key = ?6)
                   AND (?7 IS NULL OR time >= ?7) AND (?8 IS NULL OR time < ?8)
                 ORDER BY id LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(params![environment_id, after, limit, filter.kind, filter.test, filter.key, filter.from, filter.to], |r| {
                    Ok(StoredEvent {
                        id: r.get(0)?,
                        sdk_key_id: r.get(1)?,
                        received_at: r.get(2)?,
                        event: NewEvent {
                            kind: r.get(3)?,
                            time: r.get(4)?,
                            identifiers: r.get(5)?,
                            test: r.get(6)?,
                            bucket: r.get(7)?,
                            bucket_name: r.get(8)?,
                            version: r.get(9)?,
                            key: r.get(10)?,
                            value: r.get(11)?,
                            properties: r.get(12)?,
                            reason: r.get(13)?,
                            allocation: r.get(14)?,
                            dimensions: r.get(15)?,
                        },
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn last_event_id(&self, environment_id: i64) -> StoreResult<i64> {
        self.call(move |conn| {
            // One index seek per kind (events_by_environment is (environment_id, kind, id)).
            Ok(conn.query_row(
                "SELECT MAX(COALESCE((SELECT id FROM events WHERE environment_id = ?1 AND kind = 'exposure' ORDER BY id DESC LIMIT 1), 0),
                            COALESCE((SELECT id FROM events WHERE environment_id = ?1 AND kind = 'track' ORDER BY id DESC LIMIT 1), 0))",
                [environment_id],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn exposures_page(
        &self,
        environment_id: i64,
        test: &str,
        after: i64,
        up_to: i64,
        limit: u32,
    ) -> StoreResult<Vec<ExposureRow>> {
        let test = test.to_string();
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, time, identifiers, bucket, reason, allocation, dimensions FROM events
                 WHERE environment_id = ?1 AND test = ?2 AND id > ?3 AND id <= ?4 AND kind = 'exposure'
                 ORDER BY id LIMIT ?5",
            )?;
            let rows = stmt
                .query_map(params![environment_id, test, after, up_to, limit], |r| {
                    Ok(ExposureRow {
                        id: r.get(0)?,
                        time: r.get(1)?,
                        identifiers: r.get(2)?,
                        bucket: r.get(3)?,
                        reason: r.get(4)?,
                        allocation: r.get(5)?,
                        dimensions: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn track_page(
        &self,
        environment_id: i64,
        keys: Vec<String>,
        after: i64,
        up_to: i64,
        limit: u32,
    ) -> StoreResult<Vec<TrackRow>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.call(move |conn| {
            let sql = format!(
                "SELECT id, time, identifiers, key, value FROM events
                 WHERE environment_id = ?1 AND kind = 'track' AND key IN ({}) AND id > ?2 AND id <= ?3
                 ORDER BY id LIMIT ?4",
                placeholders(5, keys.len())
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut values: Vec<rusqlite::types::Value> =
                vec![environment_id.into(), after.into(), up_to.into(), i64::from(limit).into()];
            values.extend(keys.into_iter().map(rusqlite::types::Value::from));
            let rows = stmt
                .query_map(rusqlite::params_from_iter(values), |r| {
                    Ok(TrackRow { id: r.get(0)?, time: r.get(1)?, identifiers: r.get(2)?, key: r.get(3)?, value: r.get(4)? })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn result_snapshot(&self, environment_id: i64, test: &str, query_key: &str) -> StoreResult<Option<(i64, String)>> {
        let (test, query_key) = (test.to_string(), query_key.to_string());
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT last_event_id, results FROM result_snapshots WHERE environment_id = ?1 AND test = ?2 AND query_key = ?3",
                    params![environment_id, test, query_key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
        })
        .await
    }

    async fn put_result_snapshot(
        &self,
        environment_id: i64,
        test: &str,
        query_key: &str,
        last_event_id: i64,
        results: &str,
    ) -> StoreResult<()> {
        let (test, query_key, results) = (test.to_string(), query_key.to_string(), results.to_string());
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO result_snapshots (environment_id, test, query_key, last_event_id, computed_at, results)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (environment_id, test, query_key) DO UPDATE
                 SET last_event_id = excluded.last_event_id, computed_at = excluded.computed_at, results = excluded.results",
                params![environment_id, test, query_key, last_event_id, now_millis(), results],
            )?;
            Ok(())
        })
        .await
    }

    async fn create_metric(&self, project_id: i64, key: &str, definition: &str) -> StoreResult<MetricRecord> {
        let (key, definition) = (key.to_string(), definition.to_string());
        self.call(move |conn| {
            let now = now_millis();
            conn.execute(
                "INSERT INTO metrics (project_id, key, definition, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![project_id, key, definition, now],
            )?;
            let id = conn.last_insert_rowid();
            Ok(conn.query_row(&format!("SELECT {METRIC_COLUMNS} FROM metrics WHERE id = ?1"), [id], metric_row)?)
        })
        .await
    }

    async fn update_metric(&self, project_id: i64, key: &str, definition: &str) -> StoreResult<Option<MetricRecord>> {
        let (key, definition) = (key.to_string(), definition.to_string());
        self.call(move |conn| {
            let changed = conn.execute(
                "UPDATE metrics SET definition = ?1, updated_at = ?2 WHERE project_id = ?3 AND key = ?4",
                params![definition, now_millis(), project_id, key],
            )?;
            if changed == 0 {
                return Ok(None);
            }
            Ok(conn
                .query_row(
                    &format!("SELECT {METRIC_COLUMNS} FROM metrics WHERE project_id = ?1 AND key = ?2"),
                    params![project_id, key],
                    metric_row,
                )
                .optional()?)
        })
        .await
    }

    async fn delete_metric(&self, project_id: i64, key: &str) -> StoreResult<bool> {
        let key = key.to_string();
        self.call(move |conn| {
            Ok(conn.execute("DELETE FROM metrics WHERE project_id = ?1 AND key = ?2", params![project_id, key])? == 1)
        })
        .await
    }

    async fn list_metrics(&self, project_id: i64) -> StoreResult<Vec<MetricRecord>> {
        self.call(move |conn| {
            let mut stmt =
                conn.prepare(&format!("SELECT {METRIC_COLUMNS} FROM metrics WHERE project_id = ?1 ORDER BY key"))?;
            let rows = stmt.query_map([project_id], metric_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }
}
