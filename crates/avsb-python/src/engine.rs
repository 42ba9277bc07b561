//! `Engine`: one compiled matrix with its schema, plus the Python objects evaluation hands out
//! (bucket names, ints, immutable payloads), made once at load so a call only increments
//! reference counts.

use std::sync::Arc;

use avsb_core::compile::{CompiledMatrix, INCOGNITO_VARIABLE};
use avsb_core::document::MatrixDocument;
use avsb_core::schema::canonical_identifier_type;
use avsb_core::{ContextSchema, ContextType, Diagnostic, Value};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use rustc_hash::FxHashMap;
use serde_json::Value as Json;

use crate::convert::{json_to_py, payload_is_immutable, payload_to_py};
use crate::details::PayloadTypes;
use crate::errors::{MatrixError, RequestError};

/// Where a context attribute goes.
#[derive(Debug, Clone, Copy)]
pub enum AttributeTarget {
    /// An identifier of the type in this slot (`{'kind': 'user', 'account': 'a1'}`).
    Identifier(usize),
    /// A context variable in this slot, converted to the schema's type (if it declares one).
    Variable(usize, Option<ContextType>),
}

/// A bucket's Python objects.
pub struct BucketObjects {
    pub value: i32,
    pub name: Py<PyString>,
    pub value_obj: Py<PyAny>,
    /// The payload's value when immutable (shared); `None` when mutable or absent.
    pub shared_payload: Option<Py<PyAny>>,
}

/// A test's Python objects and facts the SDK needs per call.
pub struct TestObjects {
    pub name: Py<PyString>,
    /// The identifier type the test hashes (its `testType`, canonical).
    pub identifier_type: Arc<str>,
    /// That type's slot in a request (`None` for RANDOM tests and unknown types).
    pub identifier_slot: Option<usize>,
    pub buckets: Vec<BucketObjects>,
    /// The getter types some bucket's payload answers.
    pub payload_types: PayloadTypes,
}

impl TestObjects {
    pub fn bucket(&self, value: i32) -> Option<&BucketObjects> {
        self.buckets.iter().find(|b| b.value == value)
    }
}

/// Converted context values by variable slot and text, so that a context's `'country': 'US'`
/// or a user-agent string is parsed once per matrix rather than once per request. Bounded: a
/// slot's table is emptied when it reaches `MAX_PER_SLOT` texts (high-cardinality values such as
/// ids gain nothing from it). The lock is never held while Python runs.
pub struct ConversionCache {
    slots: std::sync::Mutex<Vec<FxHashMap<Box<str>, Value>>>,
}

impl ConversionCache {
    const MAX_PER_SLOT: usize = 1024;

    fn new(slots: usize) -> ConversionCache {
        ConversionCache { slots: std::sync::Mutex::new(vec![FxHashMap::default(); slots]) }
    }

    pub fn get(&self, slot: usize, text: &str) -> Option<Value> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.get(slot)?.get(text).cloned()
    }

    pub fn put(&self, slot: usize, text: &str, value: &Value) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(table) = slots.get_mut(slot) {
            if table.len() >= Self::MAX_PER_SLOT {
                table.clear();
            }
            table.insert(text.into(), value.clone());
        }
    }
}

/// Everything evaluation needs, shared by every scope built against it.
pub struct EngineData {
    pub matrix: CompiledMatrix,
    /// The datafile's version (the server's revision id), else the matrix's `audit.version`.
    pub version: String,
    pub schema_version: Option<i64>,
    pub project: Option<String>,
    pub environment: Option<String>,
    pub default_identifier_type: String,
    pub has_random_tests: bool,
    /// Attribute name → where it goes.
    pub attributes: FxHashMap<String, AttributeTarget>,
    /// Each variable slot's schema default, converted.
    pub defaults: Vec<Option<Value>>,
    /// Attribute texts already converted, by slot.
    pub conversions: ConversionCache,
    pub tests: FxHashMap<String, TestObjects>,
    pub diagnostics: Vec<Diagnostic>,
}

impl EngineData {
    /// A random number for RANDOM tests, drawn only when the matrix has some.
    pub fn random_seed(&self) -> Option<u64> {
        if self.has_random_tests {
            getrandom::u64().ok()
        } else {
            None
        }
    }

    /// Compiles a matrix against a schema (the CPU-heavy part runs without the interpreter lock).
    fn build(
        py: Python<'_>,
        matrix_text: &str,
        schema: ContextSchema,
        header: DatafileHeader,
    ) -> PyResult<EngineData> {
        let compiled = py.detach(|| -> Result<_, String> {
            let (source, mut diagnostics) = MatrixDocument::from_json(matrix_text).map_err(|e| e.message)?;

            let compilation = CompiledMatrix::compile(source, &schema);
            diagnostics.extend(compilation.diagnostics);
            Ok((compilation.matrix, diagnostics))
        });
        let (matrix, diagnostics) = compiled.map_err(|m| MatrixError::new_err(format!("matrix: {m}")))?;
        let version = header.version.unwrap_or_else(|| matrix.audit().version.clone().unwrap_or_default());
        let default_identifier_type = canonical_identifier_type(header.default_identifier_type.as_deref().unwrap_or("USER"));

        let mut attributes = FxHashMap::default();
        for (slot, type_name) in matrix.identifier_types().iter().enumerate() {
            attributes.insert(type_name.clone(), AttributeTarget::Identifier(slot));
            attributes.insert(type_name.to_ascii_lowercase(), AttributeTarget::Identifier(slot));
        }
        let schema_ref = matrix.schema();
        let mut defaults = vec![None; matrix.variables().len()];
        for (slot, var) in matrix.variables().iter().enumerate() {
            let declared = schema_ref.variables.get(&var.name);
            let ty = declared.map(|d| d.ty).or(var.ty);
            attributes.insert(var.name.clone(), AttributeTarget::Variable(slot, ty));
            if let Some(default) = declared.and_then(|d| d.default_value.as_deref()) {
                defaults[slot] = declared.and_then(|d| d.ty.convert(default).ok());
            }
        }

        let mut tests = FxHashMap::default();
        let mut has_random_tests = false;
        for name in matrix.test_names() {
            let Some(definition) = matrix.definition(name) else { continue };
            has_random_tests |= definition.test_type.eq_ignore_ascii_case("RANDOM");
            let mut buckets = Vec::with_capacity(definition.buckets.len());
            let mut payload_types = PayloadTypes::default();
            for b in &definition.buckets {
                if let Some(p) = &b.payload {
                    payload_types.add(p);
                }
                let shared_payload = match &b.payload {
                    Some(p) if payload_is_immutable(p) => Some(payload_to_py(py, p)?),
                    _ => None,
                };
                buckets.push(BucketObjects {
                    value: b.value,
                    name: PyString::intern(py, &b.name).unbind(),
                    value_obj: b.value.into_pyobject(py)?.into_any().unbind(),
                    shared_payload,
                });
            }
            tests.insert(
                name.to_string(),
                TestObjects {
                    name: PyString::intern(py, name).unbind(),
                    identifier_type: Arc::from(canonical_identifier_type(&definition.test_type)),
                    identifier_slot: matrix.identifier_slot(&definition.test_type),
                    buckets,
                    payload_types,
                },
            );
        }
        Ok(EngineData {
            matrix,
            version,
            schema_version: header.schema_version,
            project: header.project,
            environment: header.environment,
            default_identifier_type,
            has_random_tests,
            attributes,
            conversions: ConversionCache::new(defaults.len()),
            defaults,
            tests,
            diagnostics,
        })
    }
}

/// What a datafile says besides its matrix and schema.
#[derive(Default)]
struct DatafileHeader {
    version: Option<String>,
    schema_version: Option<i64>,
    project: Option<String>,
    environment: Option<String>,
    default_identifier_type: Option<String>,
}

fn text_arg(value: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(s.to_str()?.to_string());
    }
    if let Ok(b) = value.extract::<Vec<u8>>() {
        return String::from_utf8(b).map_err(|e| MatrixError::new_err(format!("{what}: not UTF-8: {e}")));
    }
    Err(MatrixError::new_err(format!("{what}: expected str or bytes")))
}

/// A compiled matrix and its schema, ready to evaluate. Immutable; share it freely.
#[pyclass(frozen, module = "avsb._native")]
pub struct Engine {
    pub data: Arc<EngineData>,
}

#[pymethods]
impl Engine {
    /// Reads an A vs B SDK datafile (`GET /sdk/v1/datafile`): matrix, schema and versions.
    #[staticmethod]
    fn from_datafile(py: Python<'_>, datafile: &Bound<'_, PyAny>) -> PyResult<Engine> {
        let text = text_arg(datafile, "datafile")?;
        let doc: Json = serde_json::from_str(&text).map_err(|e| MatrixError::new_err(format!("datafile: not JSON: {e}")))?;
        let Json::Object(doc) = doc else {
            return Err(MatrixError::new_err("datafile: expected a JSON object"));
        };
        let text_field = |name: &str| -> PyResult<Option<String>> {
            match doc.get(name) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(s)) => Ok(Some(s.clone())),
                Some(Json::Number(n)) => Ok(Some(n.to_string())),
                Some(_) => Err(MatrixError::new_err(format!("datafile: '{name}' must be a string"))),
            }
        };
        let header = DatafileHeader {
            version: text_field("version")?,
            schema_version: doc.get("schemaVersion").and_then(Json::as_i64),
            project: text_field("project")?,
            environment: text_field("environment")?,
            default_identifier_type: text_field("defaultIdentifierType")?,
        };
        let schema = match doc.get("schema") {
            None | Some(Json::Null) => ContextSchema::permissive(),
            Some(s) => ContextSchema::from_value(s).map_err(|e| MatrixError::new_err(format!("datafile: schema: {e}")))?,
        };
        let Some(matrix) = doc.get("matrix") else {
            return Err(MatrixError::new_err("datafile: 'matrix' is missing"));
        };
        let matrix_text = matrix.to_string();
        Ok(Engine { data: Arc::new(EngineData::build(py, &matrix_text, schema, header)?) })
    }

    /// Reads a Proctor test matrix (text or bytes) with an optional Pipet configuration (the
    /// schema; without one, every variable a rule uses is accepted as given, and the identifier
    /// types are Proctor's plus `identifier_types`) — the offline mode.
    #[staticmethod]
    #[pyo3(signature = (matrix, schema=None, default_identifier_type="USER", identifier_types=None))]
    fn from_matrix(
        py: Python<'_>,
        matrix: &Bound<'_, PyAny>,
        schema: Option<&Bound<'_, PyAny>>,
        default_identifier_type: &str,
        identifier_types: Option<Vec<String>>,
    ) -> PyResult<Engine> {
        let matrix_text = text_arg(matrix, "matrix")?;
        let mut schema = match schema {
            None => ContextSchema::permissive(),
            Some(s) if s.is_none() => ContextSchema::permissive(),
            Some(s) => {
                let text = text_arg(s, "schema")?;
                ContextSchema::from_json(&text).map_err(|e| MatrixError::new_err(format!("schema: {e}")))?
            }
        };
        if schema.permissive {
            for type_name in identifier_types.iter().flatten() {
                schema.allow_identifier_type(type_name);
            }
        }
        let header = DatafileHeader { default_identifier_type: Some(default_identifier_type.to_string()), ..Default::default() };
        Ok(Engine { data: Arc::new(EngineData::build(py, &matrix_text, schema, header)?) })
    }

    /// The datafile's version (the server's revision), or the matrix's `audit.version`.
    #[getter]
    fn version(&self) -> &str {
        &self.data.version
    }

    /// The schema's version, when the datafile names one.
    #[getter]
    fn schema_version(&self) -> Option<i64> {
        self.data.schema_version
    }

    /// The project key, when the datafile names one.
    #[getter]
    fn project(&self) -> Option<&str> {
        self.data.project.as_deref()
    }

    /// The environment key, when the datafile names one.
    #[getter]
    fn environment(&self) -> Option<&str> {
        self.data.environment.as_deref()
    }

    /// The identifier type a context's `key` is for when its kind names none (`USER`).
    #[getter]
    fn default_identifier_type(&self) -> &str {
        &self.data.default_identifier_type
    }

    /// The identifier types the schema knows, in slot order (`['USER', 'ACCOUNT']`).
    #[getter]
    fn identifier_types(&self) -> Vec<String> {
        self.data.matrix.identifier_types().to_vec()
    }

    /// The usable tests' names, sorted.
    #[getter]
    fn test_names(&self) -> Vec<String> {
        self.data.matrix.test_names().map(str::to_string).collect()
    }

    /// The context variables of the matrix's rules and schema, in slot order, as
    /// `(name, type)`: the schema's type (`'java.lang.String'`), or `None` for a variable that
    /// only rules mention (a matrix read without a schema). Proctor's `isIncognitoUser`, which
    /// every request may carry, is listed only when the schema declares it.
    #[getter]
    fn variables(&self) -> Vec<(String, Option<&'static str>)> {
        let declared = &self.data.matrix.schema().variables;
        self.data
            .matrix
            .variables()
            .iter()
            .filter(|v| v.name != INCOGNITO_VARIABLE || declared.contains_key(&v.name))
            .map(|v| (v.name.clone(), v.ty.map(|t| t.canonical_name())))
            .collect()
    }

    /// Number of usable tests.
    fn __len__(&self) -> usize {
        self.data.matrix.len()
    }

    /// Whether a test is in the matrix.
    fn __contains__(&self, test: &str) -> bool {
        self.data.tests.contains_key(test)
    }

    /// The problems found at load, one dict per problem (`test`, `path`, `code`, `message`,
    /// `severity`, and for rules `rule`, `span`, `column`). Tests with an error were dropped.
    #[getter]
    fn diagnostics(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let list = PyList::empty(py);
        for d in &self.data.diagnostics {
            list.append(json_to_py(py, &d.to_json())?)?;
        }
        Ok(list.unbind())
    }

    /// A test's definition as the matrix holds it (Proctor's consumable JSON), or `None`.
    fn definition(&self, py: Python<'_>, test: &str) -> PyResult<Py<PyAny>> {
        match self.data.matrix.definition(test) {
            Some(d) => json_to_py(py, &d.to_json(false)),
            None => Ok(py.None()),
        }
    }

    /// The schema as Pipet's configuration JSON (`{'context': ..., 'identifiers': ...}`).
    fn schema(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json_to_py(py, &self.data.matrix.schema().to_json())
    }

    /// The matrix as Proctor's `TestMatrixArtifact` JSON, as a dict.
    fn matrix(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json_to_py(py, &self.data.matrix.to_document().to_json(false))
    }

    /// Pipet's `/groups/identify` over this matrix, as the server and `avsb eval` answer it:
    /// `identifiers` as `[(type, value)]` or `{type: value}`, `context` as `[(variable, text)]`
    /// or `{variable: text}` (raw text, converted by the schema). Returns `{'data': {groups,
    /// context, audit}, 'reasons': {test: reason}}`; raises `RequestError((status, message))`
    /// where Pipet would refuse the request. For tools and the shared spec cases.
    #[pyo3(signature = (identifiers, context, tests=None, force_groups=None, full_force=false, now_millis=None, random_seed=None))]
    #[allow(clippy::too_many_arguments)]
    fn identify(
        &self,
        py: Python<'_>,
        identifiers: &Bound<'_, PyAny>,
        context: &Bound<'_, PyAny>,
        tests: Option<String>,
        force_groups: Option<String>,
        full_force: bool,
        now_millis: Option<i64>,
        random_seed: Option<u64>,
    ) -> PyResult<Py<PyAny>> {
        let pairs = |v: &Bound<'_, PyAny>| -> PyResult<Vec<(String, String)>> {
            if let Ok(d) = v.cast::<PyDict>() {
                d.iter().map(|(k, v)| Ok((k.extract()?, v.extract()?))).collect()
            } else {
                v.extract()
            }
        };
        let params = avsb_core::pipet::IdentifyParams {
            identifiers: pairs(identifiers)?,
            context: pairs(context)?,
            tests,
            force_groups,
            full_force,
            now_millis,
            random_seed,
        };
        match avsb_core::pipet::identify_explained(&self.data.matrix, &params) {
            Ok((data, reasons)) => {
                let reasons: serde_json::Map<String, Json> = reasons.into_iter().collect();
                json_to_py(py, &serde_json::json!({"data": data, "reasons": reasons}))
            }
            Err(e) => Err(RequestError::new_err((e.status, e.message))),
        }
    }

    fn __repr__(&self) -> String {
        format!("<Engine version={:?} tests={}>", self.data.version, self.data.matrix.len())
    }
}

/// A dict of the converted context values the engine sees, for debugging (`Scope.explain`).
pub fn context_dict<'py>(py: Python<'py>, data: &EngineData, values: &[Option<Value>]) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (slot, var) in data.matrix.variables().iter().enumerate() {
        if let Some(Some(v)) = values.get(slot) {
            dict.set_item(&var.name, json_to_py(py, &v.to_json())?)?;
        }
    }
    Ok(dict)
}
