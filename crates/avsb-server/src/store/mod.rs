//! Storage: projects → environments → revisions, SDK keys, admin tokens and events, behind one
//! trait so handlers never know which database they talk to. Every backend runs the same
//! conformance suite (`tests/store/conformance.rs`).

use async_trait::async_trait;
use serde::Serialize;

pub mod sqlite;

pub use sqlite::SqliteStore;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The environment's current revision is no longer the one the write was based on.
    #[error("the environment is at revision {current}, not {expected}")]
    Conflict {
        /// The revision the write expected to replace.
        expected: i64,
        /// The revision that is current now.
        current: i64,
    },
    /// A unique name is taken.
    #[error("{0} already exists")]
    Duplicate(String),
    /// A referenced row does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The database failed.
    #[error("storage failure: {0}")]
    Backend(String),
}

/// A result from the store.
pub type StoreResult<T> = Result<T, StoreError>;

/// A project: a context schema and its environments.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    /// Internal id.
    #[serde(skip)]
    pub id: i64,
    /// The URL-safe key (`demo`).
    pub key: String,
    /// A display name.
    pub name: String,
    /// The context schema, as Pipet's configuration JSON text.
    #[serde(skip)]
    pub schema_json: String,
    /// Incremented on every schema change.
    pub schema_version: i64,
    /// The identifier type OFREP's `targetingKey` and SDK contexts of kind `user` map to.
    pub default_identifier_type: String,
    /// Creation time, epoch milliseconds.
    pub created_at: i64,
}

/// What a new project starts with.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// The URL-safe key.
    pub key: String,
    /// A display name.
    pub name: String,
    /// Pipet's configuration JSON text.
    pub schema_json: String,
    /// See [`Project::default_identifier_type`].
    pub default_identifier_type: String,
}

/// An environment of a project.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    /// Internal id.
    #[serde(skip)]
    pub id: i64,
    /// The owning project.
    #[serde(skip)]
    pub project_id: i64,
    /// The URL-safe key (`production`).
    pub key: String,
    /// A display name.
    pub name: String,
    /// Promotion order: tests move from lower to higher positions.
    pub position: i64,
    /// The revision served now.
    pub current_revision: i64,
    /// Creation time, epoch milliseconds.
    pub created_at: i64,
    /// Whether only the project's admins may change it.
    pub protected: bool,
}

/// A revision's audit, without its matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionMeta {
    /// The revision id; also the matrix's `audit.version`.
    pub id: i64,
    /// The environment it belongs to.
    #[serde(skip)]
    pub environment_id: i64,
    /// The revision it replaced (none for an environment's first).
    pub parent: Option<i64>,
    /// What made it: `create`, `edit`, `replace`, `delete`, `rollback`, `promote`, `kill`, `schema`.
    pub kind: String,
    /// How many tests its matrix holds.
    pub test_count: i64,
    /// Who made it (the admin token's name).
    pub author: String,
    /// Why.
    pub comment: String,
    /// When, epoch milliseconds.
    pub created_at: i64,
}

/// A revision with its matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// Its audit.
    pub meta: RevisionMeta,
    /// Proctor's `TestMatrixArtifact` JSON, with `audit` matching `meta`.
    pub matrix_json: String,
}

/// A server SDK key as listed (never the secret itself).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = SdkKey)]
#[serde(rename_all = "camelCase")]
pub struct SdkKeyInfo {
    /// Its id.
    pub id: i64,
    /// The environment it reads.
    #[serde(skip)]
    pub environment_id: i64,
    /// A label.
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// Creation time, epoch milliseconds.
    pub created_at: i64,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
    /// Whether the server records an exposure for each bucket its Pipet and OFREP answers hand
    /// out with this key (for applications that evaluate remotely).
    pub record_exposures: bool,
}

/// An unrevoked SDK key as the registry loads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveSdkKey {
    /// The SHA-256 digest of the secret.
    pub digest: Vec<u8>,
    /// The key's id.
    pub id: i64,
    /// The environment it reads.
    pub environment_id: i64,
    /// See [`SdkKeyInfo::record_exposures`].
    pub record_exposures: bool,
}

/// An admin token's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May read everything.
    Read,
    /// May also write.
    Write,
}

impl Role {
    /// `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
        }
    }

    /// Parses `read` or `write`.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "read" => Some(Role::Read),
            "write" => Some(Role::Write),
            _ => None,
        }
    }
}

/// Whom an admin token acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOwner {
    /// The instance (`avsb token create`): `read` reads and `write` changes everything.
    Instance,
    /// A user: it acts with at most the user's roles (`read` caps them at viewer).
    User(i64),
    /// One project, as its service account: `read` is a viewer there, `write` an admin.
    Project(i64),
}

/// An admin token as listed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = AdminToken)]
#[serde(rename_all = "camelCase")]
pub struct AdminTokenInfo {
    /// Its id.
    pub id: i64,
    /// Who it belongs to; recorded as the author of revisions it makes.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The user it belongs to, if one.
    pub user_id: Option<i64>,
    /// The project it is the service account of, if one.
    pub project_id: Option<i64>,
    /// The first characters of the token.
    pub prefix: String,
    /// Creation time, epoch milliseconds.
    pub created_at: i64,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

impl AdminTokenInfo {
    /// Whom the token acts for.
    pub fn owner(&self) -> TokenOwner {
        match (self.user_id, self.project_id) {
            (Some(user), _) => TokenOwner::User(user),
            (None, Some(project)) => TokenOwner::Project(project),
            (None, None) => TokenOwner::Instance,
        }
    }
}

/// A user's role in a project, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProjectRole {
    /// May read everything of the project.
    Viewer,
    /// May also change tests in environments that are not protected.
    Editor,
    /// May also change protected environments, SDK keys, members and settings.
    Admin,
}

impl ProjectRole {
    /// Every role, weakest first.
    pub const ALL: [ProjectRole; 3] = [ProjectRole::Viewer, ProjectRole::Editor, ProjectRole::Admin];

    /// `viewer`, `editor` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRole::Viewer => "viewer",
            ProjectRole::Editor => "editor",
            ProjectRole::Admin => "admin",
        }
    }

    /// Parses `viewer`, `editor` or `admin`.
    pub fn parse(text: &str) -> Option<ProjectRole> {
        ProjectRole::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// A person who signs in to the console.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Its id.
    pub id: i64,
    /// The name they sign in with (unique, compared without case).
    pub username: String,
    /// The name shown, and recorded as the author of what they change.
    pub display_name: String,
    /// The instance owner: an admin of every project, who manages users.
    pub is_owner: bool,
    /// Creation time, epoch milliseconds.
    pub created_at: i64,
    /// When the password last changed, epoch milliseconds.
    pub password_changed_at: i64,
    /// When the account was disabled, if it is.
    pub disabled_at: Option<i64>,
}

/// A new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// See [`User::username`].
    pub username: String,
    /// See [`User::display_name`].
    pub display_name: String,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// See [`User::is_owner`].
    pub is_owner: bool,
}

/// A console session, as stored (the id itself is only in the browser's cookie).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// The user signed in.
    pub user: User,
    /// The token every state-changing request of the session must carry.
    pub csrf: String,
    /// When it began, epoch milliseconds.
    pub created_at: i64,
    /// When it was last used.
    pub last_seen_at: i64,
    /// When it ends.
    pub expires_at: i64,
}

/// Failed sign-ins counted for one key (a username or a client address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    /// Failures in the current window.
    pub failures: i64,
    /// When the window began, epoch milliseconds.
    pub window_start: i64,
    /// Until when sign-ins with this key are refused, epoch milliseconds (0: not locked).
    pub locked_until: i64,
}

/// A change of keys, tokens, members or roles, or a sign-in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Increasing.
    pub id: i64,
    /// When, epoch milliseconds.
    pub at: i64,
    /// Who (a user's display name, or a token's name).
    pub actor: String,
    /// What (`sign_in`, `sdk_key.create`, `member.set_role`, ...).
    pub action: String,
    /// The project it concerns, if one.
    #[serde(skip)]
    pub project_id: Option<i64>,
    /// What it was done to (a user, a key's prefix, an environment).
    pub target: String,
    /// More, as JSON object text.
    pub details: String,
}

/// An event to store.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewEvent {
    /// `exposure` or `track`.
    pub kind: String,
    /// When it happened, epoch milliseconds.
    pub time: i64,
    /// Identifier type → identifier, as JSON object text.
    pub identifiers: String,
    /// Exposure: the test.
    pub test: Option<String>,
    /// Exposure: the bucket value.
    pub bucket: Option<i32>,
    /// Exposure: the bucket name.
    pub bucket_name: Option<String>,
    /// Exposure: the matrix or test version it was evaluated at.
    pub version: Option<String>,
    /// Track: the event key (`purchase`).
    pub key: Option<String>,
    /// Track: the numeric value.
    pub value: Option<f64>,
    /// Track: properties as JSON object text.
    pub properties: Option<String>,
    /// Exposure: how the bucket was reached (`split`, `targeted`, `forced`, `default`).
    pub reason: Option<String>,
    /// Exposure: the 0-based index of the allocation that matched.
    pub allocation: Option<i64>,
    /// Exposure: context values to break results down by, as JSON object text.
    pub dimensions: Option<String>,
}

impl NewEvent {
    /// An exposure of `identifier` (of `identifier_type`) to `bucket` of `test`, reached as
    /// `reason` says (`split`, `targeted`, `default`) through `allocation`.
    #[allow(clippy::too_many_arguments)]
    pub fn exposure(
        time: i64,
        identifier_type: &str,
        identifier: &str,
        test: &str,
        bucket: &avsb_core::document::Bucket,
        version: Option<&str>,
        reason: &str,
        allocation: Option<usize>,
    ) -> NewEvent {
        let mut identifiers = serde_json::Map::new();
        identifiers.insert(identifier_type.to_string(), serde_json::Value::String(identifier.to_string()));
        NewEvent {
            kind: "exposure".into(),
            time,
            identifiers: serde_json::Value::Object(identifiers).to_string(),
            test: Some(test.to_string()),
            bucket: Some(bucket.value),
            bucket_name: Some(bucket.name.clone()),
            version: version.map(str::to_string),
            key: None,
            value: None,
            properties: None,
            reason: Some(reason.to_string()),
            allocation: allocation.and_then(|a| i64::try_from(a).ok()),
            dimensions: None,
        }
    }
}

/// Which stored events a listing wants (every field optional).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// `exposure` or `track`.
    pub kind: Option<String>,
    /// Exposures of this test.
    pub test: Option<String>,
    /// Tracked events with this key.
    pub key: Option<String>,
    /// Events that happened at or after this time, epoch milliseconds.
    pub from: Option<i64>,
    /// Events that happened before this time, epoch milliseconds.
    pub to: Option<i64>,
}

/// What storing a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// How many events the batch held (when it was first stored, for a repeated batch).
    pub accepted: usize,
    /// The batch id had been stored before: nothing was stored this time.
    pub duplicate: bool,
}

/// A project's metric as stored: its key and its definition (JSON object text, read by
/// `results::metric`).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRecord {
    /// Its id.
    pub id: i64,
    /// The project it belongs to.
    pub project_id: i64,
    /// Its key in URLs (`purchase-rate`).
    pub key: String,
    /// The definition, as JSON object text.
    pub definition: String,
    /// Creation time, epoch milliseconds.
    pub created_at: i64,
    /// Last change, epoch milliseconds.
    pub updated_at: i64,
}

/// An exposure as the results read it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExposureRow {
    /// The event's id.
    pub id: i64,
    /// When it happened, epoch milliseconds.
    pub time: i64,
    /// Identifier type → identifier, as JSON object text.
    pub identifiers: String,
    /// The bucket value.
    pub bucket: i32,
    /// How the bucket was reached, if the sender said.
    pub reason: Option<String>,
    /// The allocation index, if the sender said.
    pub allocation: Option<i64>,
    /// Dimensions, as JSON object text.
    pub dimensions: Option<String>,
}

/// A tracked event as the results read it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackRow {
    /// The event's id.
    pub id: i64,
    /// When it happened, epoch milliseconds.
    pub time: i64,
    /// Identifier type → identifier, as JSON object text.
    pub identifiers: String,
    /// The event key.
    pub key: String,
    /// The value, if one was sent.
    pub value: Option<f64>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// Its id, increasing in arrival order.
    pub id: i64,
    /// The SDK key that sent it.
    pub sdk_key_id: Option<i64>,
    /// When the server stored it, epoch milliseconds.
    pub received_at: i64,
    /// The event.
    #[serde(flatten)]
    pub event: NewEvent,
}

/// The storage interface every backend implements.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a project.
    async fn create_project(&self, project: NewProject) -> StoreResult<Project>;
    /// All projects, by key.
    async fn list_projects(&self) -> StoreResult<Vec<Project>>;
    /// One project by key.
    async fn project(&self, key: &str) -> StoreResult<Option<Project>>;
    /// Replaces a project's schema if its schema version is still `expected_version`; bumps it.
    async fn set_schema(&self, project_id: i64, schema_json: &str, expected_version: i64) -> StoreResult<Project>;
    /// Changes a project's name or default identifier type.
    async fn update_project(&self, project_id: i64, name: &str, default_identifier_type: &str)
        -> StoreResult<Project>;

    /// Creates an environment whose first revision is `first` (its id from [`Store::reserve_revision_id`]).
    async fn create_environment(
        &self,
        project_id: i64,
        key: &str,
        name: &str,
        first: Revision,
    ) -> StoreResult<Environment>;
    /// A project's environments, in promotion order.
    async fn list_environments(&self, project_id: i64) -> StoreResult<Vec<Environment>>;
    /// Every environment of every project (to load at start).
    async fn all_environments(&self) -> StoreResult<Vec<(Project, Environment)>>;

    /// A fresh revision id, never handed out before (ids may have gaps).
    async fn reserve_revision_id(&self) -> StoreResult<i64>;
    /// Stores `revision` and makes it current, if the environment's current revision is still
    /// `expected_current`; otherwise [`StoreError::Conflict`] and nothing changes.
    async fn commit_revision(&self, expected_current: i64, revision: Revision) -> StoreResult<()>;
    /// One revision by id.
    async fn revision(&self, id: i64) -> StoreResult<Option<Revision>>;
    /// The audits of these revisions (any environment), in no particular order; unknown ids are
    /// left out.
    async fn revision_metas(&self, ids: Vec<i64>) -> StoreResult<Vec<RevisionMeta>>;
    /// An environment's revisions, newest first, older than `before` if given.
    async fn list_revisions(&self, environment_id: i64, before: Option<i64>, limit: u32)
        -> StoreResult<Vec<RevisionMeta>>;

    /// Stores a new SDK key's digest.
    async fn create_sdk_key(
        &self,
        environment_id: i64,
        name: &str,
        digest: &[u8],
        prefix: &str,
        record_exposures: bool,
    ) -> StoreResult<SdkKeyInfo>;
    /// Turns a key's recording of remote exposures on or off; false if it is not an active key
    /// of the environment.
    async fn set_sdk_key_recording(&self, environment_id: i64, key_id: i64, record_exposures: bool)
        -> StoreResult<bool>;
    /// An environment's SDK keys, revoked ones included.
    async fn list_sdk_keys(&self, environment_id: i64) -> StoreResult<Vec<SdkKeyInfo>>;
    /// Revokes a key; false if it was not found or already revoked.
    async fn revoke_sdk_key(&self, environment_id: i64, key_id: i64) -> StoreResult<bool>;
    /// Every unrevoked SDK key.
    async fn active_sdk_keys(&self) -> StoreResult<Vec<ActiveSdkKey>>;

    /// Stores a new admin token's digest.
    async fn create_admin_token(
        &self,
        name: &str,
        role: Role,
        owner: TokenOwner,
        digest: &[u8],
        prefix: &str,
    ) -> StoreResult<AdminTokenInfo>;
    /// The unrevoked token with this digest.
    async fn admin_token(&self, digest: &[u8]) -> StoreResult<Option<AdminTokenInfo>>;
    /// Every admin token, revoked ones included.
    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminTokenInfo>>;
    /// Revokes a token; false if it was not found or already revoked.
    async fn revoke_admin_token(&self, id: i64) -> StoreResult<bool>;

    /// Marks an environment protected (only admins write it) or not.
    async fn set_protected(&self, environment_id: i64, protected: bool) -> StoreResult<()>;

    /// Creates a user.
    async fn create_user(&self, user: NewUser) -> StoreResult<User>;
    /// A user by id.
    async fn user(&self, id: i64) -> StoreResult<Option<User>>;
    /// A user and their password hash, by username (without case).
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<(User, String)>>;
    /// Every user, by username.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// How many users exist.
    async fn user_count(&self) -> StoreResult<i64>;
    /// Replaces a user's password hash and ends all their sessions.
    async fn set_password(&self, user_id: i64, password_hash: &str) -> StoreResult<()>;
    /// Makes a user the owner, or not.
    async fn set_owner(&self, user_id: i64, is_owner: bool) -> StoreResult<()>;

    /// Sets (or, with `None`, removes) a user's role in a project.
    async fn set_membership(&self, user_id: i64, project_id: i64, role: Option<ProjectRole>) -> StoreResult<()>;
    /// A user's roles, by project id.
    async fn memberships(&self, user_id: i64) -> StoreResult<Vec<(i64, ProjectRole)>>;
    /// A project's members and their roles.
    async fn project_members(&self, project_id: i64) -> StoreResult<Vec<(User, ProjectRole)>>;

    /// Stores a new session.
    async fn create_session(&self, digest: &[u8], user_id: i64, csrf: &str, expires_at: i64) -> StoreResult<()>;
    /// The unexpired session with this digest (at `now`), with its user.
    async fn session(&self, digest: &[u8], now: i64) -> StoreResult<Option<SessionRecord>>;
    /// Notes a session's use and moves its end.
    async fn touch_session(&self, digest: &[u8], now: i64, expires_at: i64) -> StoreResult<()>;
    /// Ends one session.
    async fn delete_session(&self, digest: &[u8]) -> StoreResult<()>;
    /// Ends every session of a user.
    async fn delete_user_sessions(&self, user_id: i64) -> StoreResult<()>;

    /// The failures counted for a sign-in key.
    async fn login_failures(&self, key: &str) -> StoreResult<Option<LoginFailures>>;
    /// Replaces the failures counted for a key.
    async fn set_login_failures(&self, key: &str, failures: LoginFailures) -> StoreResult<()>;
    /// Forgets the failures of a key (after a successful sign-in).
    async fn clear_login_failures(&self, key: &str) -> StoreResult<()>;

    /// Appends to the audit log.
    async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        project_id: Option<i64>,
        target: &str,
        details: &str,
    ) -> StoreResult<()>;
    /// Audit entries (of one project, or all), newest first, older than `before` if given.
    async fn list_audit(&self, project_id: Option<i64>, before: Option<i64>, limit: u32) -> StoreResult<Vec<AuditEntry>>;

    /// An instance setting.
    async fn setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Sets (or, with `None`, removes) an instance setting.
    async fn set_setting(&self, key: &str, value: Option<&str>) -> StoreResult<()>;

    /// Stores a batch of events atomically (all or none). A batch whose `batch_id` was stored
    /// before in the environment stores nothing and says so.
    async fn insert_events(
        &self,
        environment_id: i64,
        sdk_key_id: Option<i64>,
        batch_id: Option<String>,
        events: Vec<NewEvent>,
    ) -> StoreResult<BatchOutcome>;
    /// An environment's events after id `after` that pass `filter`, oldest first.
    async fn list_events(&self, environment_id: i64, filter: &EventFilter, after: i64, limit: u32)
        -> StoreResult<Vec<StoredEvent>>;
    /// The id of an environment's newest event (0 when it has none).
    async fn last_event_id(&self, environment_id: i64) -> StoreResult<i64>;
    /// One test's exposures with ids in `(after, up_to]`, oldest first, at most `limit`.
    async fn exposures_page(&self, environment_id: i64, test: &str, after: i64, up_to: i64, limit: u32)
        -> StoreResult<Vec<ExposureRow>>;
    /// Tracked events with one of `keys` and ids in `(after, up_to]`, oldest first, at most `limit`.
    async fn track_page(&self, environment_id: i64, keys: Vec<String>, after: i64, up_to: i64, limit: u32)
        -> StoreResult<Vec<TrackRow>>;

    /// The last results stored for a test, environment and settings: (the newest event they
    /// include, their JSON).
    async fn result_snapshot(&self, environment_id: i64, test: &str, query_key: &str) -> StoreResult<Option<(i64, String)>>;
    /// Stores results (replacing those of the same test, environment and settings).
    async fn put_result_snapshot(&self, environment_id: i64, test: &str, query_key: &str, last_event_id: i64, results: &str)
        -> StoreResult<()>;

    /// Creates a metric; [`StoreError::Duplicate`] if the project has one with that key.
    async fn create_metric(&self, project_id: i64, key: &str, definition: &str) -> StoreResult<MetricRecord>;
    /// Replaces a metric's definition; `None` if there is no such metric.
    async fn update_metric(&self, project_id: i64, key: &str, definition: &str) -> StoreResult<Option<MetricRecord>>;
    /// Deletes a metric; false if there was none.
    async fn delete_metric(&self, project_id: i64, key: &str) -> StoreResult<bool>;
    /// A project's metrics, by key.
    async fn list_metrics(&self, project_id: i64) -> StoreResult<Vec<MetricRecord>>;
}

/// The current time in epoch milliseconds.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
