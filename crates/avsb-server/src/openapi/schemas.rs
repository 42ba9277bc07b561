//! The shapes of documents the server reads and writes as JSON text rather than through Rust
//! types of its own: Proctor's matrix and test definitions, Pipet's and OFREP's answers, the
//! datafile, events, and the error bodies. These types exist only to describe them in the
//! OpenAPI document; nothing constructs them.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The error shape of the admin, SDK and event APIs.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "project 'shop' not found"}}))]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    /// `code` and `message`, plus details that depend on the error (`diagnostics`, `path`, `index`, ...).
    pub error: ApiErrorError,
}

/// `code` and `message`, plus details that depend on the error (`diagnostics`, `path`, `index`, ...).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiErrorError {
    /// Stable and machine-readable.
    #[schema(example = json!("invalid_json"))]
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

/// A 400 of the admin API: the `ApiError` shape, with `field` or `path` when they help.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "invalid_field", "message": "the request body does not fit at 'environments[0]': invalid type: integer `1`, expected a string at line 1 column 28", "field": "environments[0]"}}))]
#[serde(rename_all = "camelCase")]
pub struct BadRequestError {
    pub error: BadRequestErrorError,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BadRequestErrorError {
    #[schema(example = json!("invalid_json"))]
    pub code: String,
    /// A sentence for people; for a body that does not fit, `the request body does not fit at '<field>': <problem>`.
    pub message: String,
    /// `invalid_field`: where in the request body the problem is (`name`, `environments[0]`, `bogus` for an unknown field). Set when reading the body names a field and for an empty `name`; absent when the body as a whole does not fit (not an object, a missing top-level field) and for checks made after reading (`baseRevision`, `environments: []`, ...).
    pub field: Option<String>,
    /// `invalid_schema`: where in the schema document (`context.country.defualtValue`, `$`).
    pub path: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "conflict", "message": "the schema is at version 4, not 3; reload and retry", "currentSchemaVersion": 4}}))]
#[serde(rename_all = "camelCase")]
pub struct SchemaConflictError {
    pub error: SchemaConflictErrorError,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaConflictErrorError {
    pub code: SchemaConflictErrorErrorCode,
    pub message: String,
    /// The schema version current now; reload and retry.
    pub current_schema_version: i64,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "conflict", "message": "the write was based on revision 41, but revision 44 is current; reload and retry", "baseRevision": "41", "currentRevision": "44"}}))]
#[serde(rename_all = "camelCase")]
pub struct ConflictError {
    pub error: ConflictErrorError,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConflictErrorError {
    pub code: ConflictErrorErrorCode,
    pub message: String,
    /// The revision the write was based on.
    pub base_revision: Option<String>,
    /// The revision current now; reload and retry.
    pub current_revision: Option<String>,
    /// The revisions since the base that changed what the write changes (for an edit of one
    /// test, the changes to that test).
    pub changes: Option<Vec<crate::ops::ConflictingChange>>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "invalid_matrix", "message": "the change would drop 1 test(s): 'checkout-v2'; nothing was changed", "diagnostics": [{"severity": "error", "test": "checkout-v2", "path": "tests.checkout-v2.allocations[0].rule", "code": "unknown_variable", "message": "unknown variable 'contry'", "rule": "${contry == 'US'}", "span": [2, 8], "column": 3}]}}))]
#[serde(rename_all = "camelCase")]
pub struct UnprocessableError {
    pub error: UnprocessableErrorError,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnprocessableErrorError {
    pub code: UnprocessableErrorErrorCode,
    pub message: String,
    /// Every diagnostic of the rejected matrix (errors and warnings).
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaUnprocessableError {
    pub error: SchemaUnprocessableErrorError,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaUnprocessableErrorError {
    pub code: SchemaUnprocessableErrorErrorCode,
    pub message: String,
    /// Environment key → the diagnostics of its matrix under the new schema.
    pub diagnostics: BTreeMap<String, Vec<Diagnostic>>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "invalid_event", "message": "events[3].bucket: is required (the bucket value)", "index": 3, "field": "bucket"}}))]
#[serde(rename_all = "camelCase")]
pub struct InvalidEventError {
    pub error: InvalidEventErrorError,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvalidEventErrorError {
    pub code: InvalidEventErrorErrorCode,
    /// `events[<index>].<field>: <problem>`.
    pub message: String,
    /// The refused event's position in the batch.
    pub index: i64,
    /// The refused field (`identifiers.USER`, ...); empty when the event itself is not an object.
    pub field: String,
}

/// One problem with one test. `error` drops the test; `warning` keeps it. `rule`, `span` and `column` are set for rule problems, else null (absent when a stored-form definition cannot be read).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    pub severity: DiagnosticSeverity,
    /// The test's name.
    pub test: String,
    /// Where in the matrix document.
    #[schema(example = json!("tests.foo.allocations[1].rule"))]
    pub path: String,
    /// Stable code (see spec/README.md): `invalid_field`, `unknown_test_type`, `ranges_sum`, `undefined_bucket`, `unknown_variable`, `syntax`, ...; the admin API adds `missing_field` (a bucket without `value`, a range without `bucketValue` or `length`).
    #[schema(example = json!("unknown_variable"))]
    pub code: String,
    pub message: String,
    /// The rule text.
    pub rule: Option<String>,
    /// Byte offsets `[start, end)` of the problem in `rule`.
    pub span: Option<Vec<i64>>,
    /// 1-based character column where the problem starts in `rule`.
    pub column: Option<i64>,
}

/// Pipet's configuration JSON (docs/proctor.md §6.6): context variables and identifier types. Served normalised: `type` as the Java canonical name, `defaultValue` as text. On input, a field not listed here is refused (`invalid_schema` with its `path`), and the identifier types must keep the project's `defaultIdentifierType`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextSchema {
    pub context: Option<BTreeMap<String, ContextSchemaContextValue>>,
    /// Identifier type → where requests carry it. Proctor's type names are upper-cased; `RANDOM` is refused; other names are custom types (A vs B extension).
    pub identifiers: Option<BTreeMap<String, ContextSchemaIdentifiersValue>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextSchemaContextValue {
    pub source: ContextSchemaContextValueSource,
    /// Parameter (without `ctx.`) or header name; default: the variable name.
    pub source_key: Option<String>,
    /// A Java type name; `ReleaseVersion` is an A vs B extension.
    #[schema(example = "String")]
    pub r#type: String,
    /// Used when a request lacks the variable; converted like request text.
    pub default_value: Option<Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextSchemaIdentifiersValue {
    pub source: ContextSchemaIdentifiersValueSource,
    /// Parameter (without `id.`) or header name; default: the type name.
    pub source_key: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"country": {"source": "QUERY", "sourceKey": "ctx.country", "type": "java.lang.String"}}))]
#[serde(rename_all = "camelCase")]
pub struct PipetContextConfig {
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"USER": {"source": "QUERY", "sourceKey": "id.USER"}}))]
#[serde(rename_all = "camelCase")]
pub struct PipetIdentifiersConfig {
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipetMeta {
    /// Equals the HTTP status.
    pub status: i64,
    /// Pipet's message, on errors only.
    pub error: Option<String>,
}

/// Pipet's error envelope (docs/proctor.md §6.2); the HTTP status equals `meta.status`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"data": {}, "meta": {"status": 400, "error": "Request must have at least one identifier."}}))]
#[serde(rename_all = "camelCase")]
pub struct PipetError {
    #[schema(value_type = Object)]
    pub data: Value,
    pub meta: Value,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipetGroup {
    /// The bucket's name.
    pub name: String,
    /// The bucket's value.
    pub value: i32,
    pub payload: Option<Payload>,
    /// The test's version.
    #[schema(required = true)]
    pub version: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"groups": {"buttoncolortst": {"name": "green", "value": 2, "payload": {"stringValue": "#3DFF33"}, "version": "1"}}, "context": {"country": "US", "loggedIn": true}, "audit": {"version": "1", "updated": 1, "updatedDate": "1969-12-31T18:00-0600", "updatedBy": "example"}}))]
#[serde(rename_all = "camelCase")]
pub struct PipetIdentifyData {
    /// Test name → assigned bucket; tests without a bucket are absent.
    pub groups: BTreeMap<String, PipetGroup>,
    /// Every configured context variable after defaults and type conversion (a UserAgent as a bean).
    #[schema(value_type = Object)]
    pub context: Value,
    pub audit: Audit,
}

/// Proctor's compiled matrix (docs/proctor.md §1.2). Read leniently: unknown fields ignored, `//` and `/* */` comments allowed, numbers accepted where text is expected and numeric text where numbers are.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestMatrixArtifact {
    pub audit: Audit,
    /// Test name → definition.
    pub tests: BTreeMap<String, ConsumableTestDefinition>,
}

/// Matrix metadata (docs/proctor.md §1.3).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Audit {
    /// The matrix version (here: the revision version). Numbers are accepted on input.
    pub version: Option<String>,
    /// Epoch milliseconds.
    pub updated: Option<i64>,
    /// `yyyy-MM-dd'T'HH:mmZ` in US/Central; `""` when `updated` ≤ 0. Output only.
    pub updated_date: Option<String>,
    pub updated_by: Option<String>,
}

/// One test (docs/proctor.md §1.4). Written with every field, nulls included; `targets` only when non-empty. Load-time checks that drop a test are listed in spec/README.md (Diagnostics).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumableTestDefinition {
    /// The test's version: the revision its definition was made at (promotion keeps it).
    pub version: Option<String>,
    /// Hash salt; `&`-prefixed to share hashing between tests.
    pub salt: Option<String>,
    /// Eligibility rule, a `${...}` EL expression; null or blank: always eligible.
    pub rule: Option<String>,
    /// Name → JSON value, visible as variables in this test's rules.
    #[schema(value_type = Option<Object>)]
    pub constants: Option<Value>,
    pub buckets: Option<Vec<TestBucket>>,
    /// Evaluated in order; the first matching rule wins.
    pub allocations: Option<Vec<Allocation>>,
    #[schema(default = json!(false))]
    pub silent: Option<bool>,
    /// `USER`, `ACCOUNT`, `EMAIL`, `RANDOM`, `PAGE`, `COMPANY`, or an identifier type the schema declares (A vs B extension).
    #[schema(example = json!("USER"))]
    pub test_type: String,
    pub description: Option<String>,
    pub meta_tags: Option<Vec<String>>,
    pub depends_on: Option<DependsOn>,
    #[schema(default = json!(false))]
    pub dynamic: Option<bool>,
    #[schema(default = json!(false))]
    pub evaluate_for_incognito_users: Option<bool>,
    #[schema(default = json!(false))]
    pub enable_unitless_allocations: Option<bool>,
    #[schema(default = json!(false))]
    pub contains_unitless_allocation: Option<bool>,
    #[schema(default = json!(false))]
    pub force_logging: Option<bool>,
    pub payload_experiment_config: Option<PayloadExperimentConfig>,
    /// A vs B extension: identifiers (of the test's type) that always get a bucket; checked after force groups and `dependsOn`, before the rule and allocations. Proctor ignores it.
    pub targets: Option<Vec<Target>>,
}

/// Proctor's stored `definition.json` (docs/proctor.md §1.5), converted on input: `specialConstants` overlay `constants`, `__COUNTRIES` becomes a rule clause, rules are normalised to `${...}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredTestDefinition {
    #[schema(value_type = Option<Object>)]
    pub special_constants: Option<Value>,
    /// Legacy alias of `rule`.
    pub subrule: Option<String>,
}

/// One outcome of a test (docs/proctor.md §1.6).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestBucket {
    pub name: String,
    /// Bucket id; negative values are conventionally inactive (-1).
    pub value: i32,
    /// Omitted when null.
    pub description: Option<String>,
    pub payload: Option<Payload>,
}

/// A bucket's typed value (docs/proctor.md §1.7): exactly one key. Within a test all buckets have a payload of one type, or none has. `booleanValue` is an A vs B extension (exported to Proctor as `json`).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"stringValue": "#3DFF33"}))]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub double_value: Option<f64>,
    pub double_array: Option<Vec<Option<f64>>>,
    pub long_value: Option<i64>,
    pub long_array: Option<Vec<Option<i64>>>,
    pub string_value: Option<String>,
    pub string_array: Option<Vec<Option<String>>>,
    /// String keys to numbers, strings or arrays of them.
    #[schema(value_type = Option<Object>)]
    pub map: Option<Value>,
    /// Any JSON value.
    pub json: Option<Value>,
    pub boolean_value: Option<bool>,
}

/// See docs/proctor.md §1.8.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    /// Informational (`#A1`).
    #[schema(default = json!(""))]
    pub id: Option<String>,
    #[schema(default = json!(""))]
    pub name: Option<String>,
    /// Allocation rule; null or blank matches. Only the last allocation may have none.
    pub rule: Option<String>,
    /// Lengths sum to 1 (±0.0001).
    pub ranges: Vec<Range>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Range {
    /// A bucket `value` of the test.
    pub bucket_value: i32,
    pub length: f64,
}

/// The test is eligible only if `testName` was assigned exactly `bucketValue` in the same request.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DependsOn {
    pub test_name: String,
    pub bucket_value: i32,
}

/// Kept and served as given; not used for assignment.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayloadExperimentConfig {
    pub priority: Option<String>,
    pub namespaces: Option<Vec<String>>,
}

/// A vs B extension: these identifiers always get `bucketValue`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"bucketValue": 1, "identifiers": ["u_1", "u_2"]}))]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub bucket_value: i32,
    /// Numbers are accepted and read as text.
    pub identifiers: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Datafile {
    pub project: String,
    pub environment: String,
    /// The revision version.
    pub version: String,
    pub schema_version: i64,
    pub default_identifier_type: String,
    pub schema: ContextSchema,
    pub matrix: TestMatrixArtifact,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepEvaluationRequest {
    /// `targetingKey` and attributes; values must be strings, numbers or booleans.
    pub context: Option<OfrepEvaluationRequestContext>,
}

/// `targetingKey` and attributes; values must be strings, numbers or booleans.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepEvaluationRequestContext {
    /// An identifier of the project's default identifier type.
    pub targeting_key: Option<Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepEvaluationSuccess {
    pub key: String,
    /// `DEFAULT`: not eligible, dependency not met, or no bucket; `DISABLED`: skipped for an incognito user.
    pub reason: OfrepEvaluationSuccessReason,
    /// The bucket's name; null when no bucket was assigned.
    #[schema(required = true)]
    pub variant: Option<String>,
    /// The bucket's payload value; omitted when there is none, so the caller's default applies.
    pub value: Option<Value>,
    pub metadata: OfrepEvaluationSuccessMetadata,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepEvaluationSuccessMetadata {
    /// Absent when no bucket was assigned.
    pub bucket_value: Option<i32>,
    pub test_version: Option<String>,
    /// The revision version evaluated.
    pub matrix_version: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepEvaluationFailure {
    pub key: String,
    pub error_code: OfrepEvaluationFailureErrorCode,
    pub error_details: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepBulkEvaluationSuccess {
    /// Every flag, by name; `TARGETING_KEY_MISSING` and `GENERAL` failures are items.
    #[schema(value_type = Vec<Object>)]
    pub flags: Vec<Value>,
    pub metadata: OfrepBulkEvaluationSuccessMetadata,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepBulkEvaluationSuccessMetadata {
    pub matrix_version: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepBulkEvaluationFailure {
    pub error_code: OfrepBulkEvaluationFailureErrorCode,
    pub error_details: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepErrorDetails {
    pub error_details: String,
}

/// An event as stored; fields of the other kind are null.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// Increasing in arrival order.
    pub id: i64,
    #[schema(required = true)]
    pub sdk_key_id: Option<i64>,
    pub received_at: i64,
    pub kind: StoredEventKind,
    pub time: i64,
    pub identifiers: BTreeMap<String, String>,
    #[schema(required = true)]
    pub test: Option<String>,
    #[schema(required = true)]
    pub bucket: Option<i32>,
    #[schema(required = true)]
    pub bucket_name: Option<String>,
    #[schema(required = true)]
    pub version: Option<String>,
    #[schema(required = true)]
    pub key: Option<String>,
    #[schema(required = true)]
    pub value: Option<f64>,
    #[schema(value_type = Option<Object>, required = true)]
    pub properties: Option<Value>,
}

/// A user was assigned a bucket and saw its effect.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExposureEvent {
    pub kind: ExposureEventKind,
    /// Identifier type → identifier (1 to 16 entries; integers are stored as text).
    #[schema(value_type = BTreeMap<String, Object>, example = json!({"USER": "user-42"}))]
    pub identifiers: BTreeMap<String, Value>,
    /// When it happened, epoch milliseconds (at most a day in the future). Default: now.
    pub time: Option<i64>,
    /// The test.
    pub test: String,
    /// The bucket value.
    pub bucket: i32,
    pub bucket_name: Option<String>,
    /// The test or matrix version evaluated (text up to 256 bytes).
    pub version: Option<Value>,
    /// How the bucket was reached: `split` (hashed into an allocation's ranges), `targeted`,
    /// `forced` or `default` (`default_to_min_live`). Only `split` exposures, and those without
    /// a reason, enter experiment results.
    pub reason: Option<ExposureReason>,
    /// The 0-based index of the allocation that matched.
    #[schema(minimum = 0, maximum = 10000)]
    pub allocation: Option<i64>,
    /// Context values to break results down by (at most 8; numbers and booleans are stored as text).
    #[schema(value_type = Option<BTreeMap<String, Object>>, example = json!({"device": "mobile"}))]
    pub dimensions: Option<BTreeMap<String, Value>>,
}

/// How an exposure's bucket was reached.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExposureReason {
    /// Hashed into an allocation's ranges.
    Split,
    /// The test's targets.
    Targeted,
    /// Force groups.
    Forced,
    /// An allocation's `default_to_min_live`.
    Default,
}

/// Something the user did (a conversion, a metric).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackEvent {
    pub kind: TrackEventKind,
    /// Identifier type → identifier (1 to 16 entries; integers are stored as text).
    #[schema(value_type = BTreeMap<String, Object>, example = json!({"USER": "user-42"}))]
    pub identifiers: BTreeMap<String, Value>,
    /// When it happened, epoch milliseconds (at most a day in the future). Default: now.
    pub time: Option<i64>,
    /// The event key, e.g. `purchase`.
    pub key: String,
    /// A finite number.
    pub value: Option<f64>,
    /// Free properties, at most 8 KiB as JSON.
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum Event {
    /// See [`ExposureEvent`].
    ExposureEvent(ExposureEvent),
    /// See [`TrackEvent`].
    TrackEvent(TrackEvent),
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum EventBatch {
    /// The object form.
    Form1(EventBatchForm1),
    /// The array form.
    Form2(Vec<Event>),
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventBatchForm1 {
    /// A UUID the sender keeps for every retry of this batch: a batch id stored before stores
    /// nothing again.
    #[schema(format = "uuid")]
    pub batch_id: Option<String>,
    pub events: Vec<Event>,
}

#[derive(Serialize, ToSchema)]
pub enum SchemaConflictErrorErrorCode {
    #[serde(rename = "conflict")]
    Conflict,
}

#[derive(Serialize, ToSchema)]
pub enum ConflictErrorErrorCode {
    #[serde(rename = "conflict")]
    Conflict,
}

#[derive(Serialize, ToSchema)]
pub enum UnprocessableErrorErrorCode {
    #[serde(rename = "invalid_matrix")]
    InvalidMatrix,
}

#[derive(Serialize, ToSchema)]
pub enum SchemaUnprocessableErrorErrorCode {
    #[serde(rename = "invalid_matrix")]
    InvalidMatrix,
}

#[derive(Serialize, ToSchema)]
pub enum InvalidEventErrorErrorCode {
    #[serde(rename = "invalid_event")]
    InvalidEvent,
}

#[derive(Serialize, ToSchema)]
pub enum DiagnosticSeverity {
    #[serde(rename = "error")]
    Error,
    #[serde(rename = "warning")]
    Warning,
}

#[derive(Serialize, ToSchema)]
pub enum ContextSchemaContextValueSource {
    #[serde(rename = "QUERY")]
    QUERY,
    #[serde(rename = "HEADER")]
    HEADER,
}


#[derive(Serialize, ToSchema)]
pub enum ContextSchemaIdentifiersValueSource {
    #[serde(rename = "QUERY")]
    QUERY,
    #[serde(rename = "HEADER")]
    HEADER,
}

/// `DEFAULT`: not eligible, dependency not met, or no bucket; `DISABLED`: skipped for an incognito user.
#[derive(Serialize, ToSchema)]
pub enum OfrepEvaluationSuccessReason {
    #[serde(rename = "STATIC")]
    STATIC,
    #[serde(rename = "TARGETING_MATCH")]
    TARGETINGMATCH,
    #[serde(rename = "SPLIT")]
    SPLIT,
    #[serde(rename = "DEFAULT")]
    DEFAULT,
    #[serde(rename = "DISABLED")]
    DISABLED,
    #[serde(rename = "UNKNOWN")]
    UNKNOWN,
}

#[derive(Serialize, ToSchema)]
pub enum OfrepEvaluationFailureErrorCode {
    #[serde(rename = "PARSE_ERROR")]
    PARSEERROR,
    #[serde(rename = "TARGETING_KEY_MISSING")]
    TARGETINGKEYMISSING,
    #[serde(rename = "INVALID_CONTEXT")]
    INVALIDCONTEXT,
    #[serde(rename = "GENERAL")]
    GENERAL,
    #[serde(rename = "FLAG_NOT_FOUND")]
    FLAGNOTFOUND,
}

#[derive(Serialize, ToSchema)]
pub enum OfrepBulkEvaluationFailureErrorCode {
    #[serde(rename = "PARSE_ERROR")]
    PARSEERROR,
    #[serde(rename = "INVALID_CONTEXT")]
    INVALIDCONTEXT,
}

#[derive(Serialize, ToSchema)]
pub enum StoredEventKind {
    #[serde(rename = "exposure")]
    Exposure,
    #[serde(rename = "track")]
    Track,
}

#[derive(Serialize, ToSchema)]
pub enum ExposureEventKind {
    #[serde(rename = "exposure")]
    Exposure,
}

#[derive(Serialize, ToSchema)]
pub enum TrackEventKind {
    #[serde(rename = "track")]
    Track,
}

/// Pipet's success envelope around `/groups/identify`'s data.
#[derive(Serialize, ToSchema)]
pub struct PipetIdentifyEnvelope {
    /// The groups, the converted context and the audit.
    pub data: PipetIdentifyData,
    /// `{"status": 200}`.
    pub meta: PipetMeta,
}

/// Pipet's success envelope around the matrix audit.
#[derive(Serialize, ToSchema)]
pub struct PipetAuditEnvelope {
    /// The audit.
    pub data: Audit,
    /// `{"status": 200}`.
    pub meta: PipetMeta,
}

/// Pipet's success envelope around one test definition.
#[derive(Serialize, ToSchema)]
pub struct PipetDefinitionEnvelope {
    /// The definition.
    pub data: ConsumableTestDefinition,
    /// `{"status": 200}`.
    pub meta: PipetMeta,
}

/// Pipet's success envelope around the context variable configuration.
#[derive(Serialize, ToSchema)]
pub struct PipetContextEnvelope {
    /// The configuration.
    pub data: PipetContextConfig,
    /// `{"status": 200}`.
    pub meta: PipetMeta,
}

/// Pipet's success envelope around the identifier configuration.
#[derive(Serialize, ToSchema)]
pub struct PipetIdentifiersEnvelope {
    /// The configuration.
    pub data: PipetIdentifiersConfig,
    /// `{"status": 200}`.
    pub meta: PipetMeta,
}

/// A stored event batch.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// How many events were stored (for a repeated batch, how many were stored the first time).
    #[schema(minimum = 0)]
    pub accepted: i64,
    /// The batch id had been stored before; nothing was stored this time.
    pub duplicate: Option<bool>,
}

/// A batch refused whole: one event is invalid, or the batch itself is.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum EventBatchError {
    /// One event is invalid (its index and field are named).
    InvalidEvent(InvalidEventError),
    /// The body is not a batch.
    Other(ApiError),
}

/// The server is healthy.
#[derive(Serialize, ToSchema)]
pub struct Healthy {
    /// `ok`.
    #[schema(example = "ok")]
    pub status: String,
    /// How many environments are loaded.
    #[schema(minimum = 0)]
    pub environments: i64,
}

/// The server cannot serve.
#[derive(Serialize, ToSchema)]
pub struct Unhealthy {
    /// `unavailable`.
    #[schema(example = "unavailable")]
    pub status: String,
    /// Why.
    pub reason: String,
}
