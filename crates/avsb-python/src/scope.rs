//! `Scope`: a client scoped to one context, what `for_user` returns and `request.avsb` forwards
//! to. Its context is converted once per matrix; each call evaluates with the current engine.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use avsb_core::{Assignment, ForceGroups, Reason};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};

use crate::context::{self, Converted};
use crate::convert;
use crate::details::{typed_value, FlagDetails, FlagType};
use crate::engine::{self, EngineData, TestObjects};
use crate::evaluator::Shared;
use crate::events;
use crate::group::{group_object, payload_value, unassigned_group};

/// A client scoped to one context: the typed getters, `get_group`, `all_flags` and `track`.
/// It follows the SDK's current matrix (re-converting its context when the matrix changes).
#[pyclass(module = "avsb._native")]
pub struct Scope {
    shared: Arc<Shared>,
    context: Py<PyAny>,
    force: Option<ForceGroups>,
    engine: Option<Arc<EngineData>>,
    converted: Converted,
}

impl Scope {
    /// A scope of `context` over `shared`'s current engine.
    pub fn new(py: Python<'_>, shared: Arc<Shared>, context: Py<PyAny>, force: Option<ForceGroups>) -> Scope {
        let mut scope = Scope { shared, context, force, engine: None, converted: Converted::empty() };
        scope.refresh(py);
        scope
    }

    /// Makes sure the request was built for the current engine; returns it.
    fn refresh(&mut self, py: Python<'_>) -> Option<Arc<EngineData>> {
        let current = self.shared.engine.load();
        match (&*current, &self.engine) {
            (Some(c), Some(mine)) if Arc::ptr_eq(c, mine) => {}
            (Some(c), _) => {
                self.engine = Some(c.clone());
                self.converted = context::convert(c, self.context.bind(py));
                if !self.converted.problems.is_empty() {
                    let problems = self.converted.problems.join("; ");
                    let text = format!("avsb: context problems (logged once per kind of problem and matrix): {problems}");
                    self.shared.warn_once(py, Some(c), ("context", &problems), &text);
                }
            }
            (None, _) => self.engine = None,
        }
        self.engine.clone()
    }

    /// Stamps the request with the time (and a random number, if RANDOM tests exist).
    fn stamp(&mut self, data: &EngineData) {
        self.converted.request.now_millis = Some(events::now_millis());
        self.converted.request.random_seed = data.random_seed();
    }

    /// Evaluates one test with the scope's force groups (call `stamp` first).
    fn with_assignment<R>(&self, data: &EngineData, test: &str, f: impl FnOnce(Option<Assignment<'_>>) -> R) -> R {
        match &self.force {
            None => f(data.matrix.evaluate_test(test, &self.converted.request)),
            Some(force) => {
                let mut request = self.converted.request.clone();
                request.force = Some(force);
                f(data.matrix.evaluate_test(test, &request))
            }
        }
    }

    /// The configured context attributes of this scope's context, as an exposure's
    /// `dimensions` (text values up to the server's limit; other values left out).
    fn dimensions(&self, py: Python<'_>) -> Option<serde_json::Value> {
        let names = self.shared.exposure_dimensions.load();
        if names.is_empty() {
            return None;
        }
        let context = self.context.bind(py);
        let mut out = serde_json::Map::new();
        for name in names.iter() {
            if let Some(text) = context_attribute(context, name) {
                out.insert(name.clone(), serde_json::Value::String(text));
            }
        }
        (!out.is_empty()).then_some(serde_json::Value::Object(out))
    }

    fn record_exposure(&self, py: Python<'_>, data: &EngineData, test_objects: &TestObjects, assignment: &Assignment<'_>) {
        if !self.shared.events_enabled.load(Ordering::Relaxed) || matches!(assignment.reason, Reason::Forced) {
            return;
        }
        let Some(bucket) = assignment.bucket else { return };
        let slot = test_objects.identifier_slot.or_else(|| data.matrix.identifier_slot(&data.default_identifier_type));
        let Some(Some(identifier)) = slot.and_then(|s| self.converted.request.identifiers.get(s)) else { return };
        let identifier_type = match test_objects.identifier_slot {
            Some(_) => test_objects.identifier_type.clone(),
            None => Arc::from(data.default_identifier_type.as_str()),
        };
        let Some((reason, allocation)) = assignment.reason.exposure() else { return };
        let test = assignment.test;
        let version = assignment.version;
        let dimensions = self.dimensions(py);
        let mut events = self.shared.events();
        events.exposure(&identifier_type, identifier, test, bucket.value, &bucket.name, version, reason, allocation, dimensions);
    }

    /// One typed flag call. The variant, the reason and the versions are worked out only when
    /// `full` (for `*_details`); the plain getters hand out only the value.
    fn flag(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>, flag_type: FlagType, full: bool) -> FlagDetails {
        let Some(data) = self.refresh(py) else {
            let message = "no matrix has been loaded yet".to_string();
            return FlagDetails::failed(PyString::new(py, key).unbind(), default, "PROVIDER_NOT_READY", message);
        };
        let Some(test_objects) = data.tests.get(key) else {
            let message = format!("no test named '{key}' in matrix version {}", data.version);
            let mut details = FlagDetails::failed(PyString::new(py, key).unbind(), default, "FLAG_NOT_FOUND", message);
            details.matrix_version = full.then(|| data.version.clone());
            return details;
        };
        self.stamp(&data);
        let result = self.with_assignment(&data, key, |assignment| -> Result<FlagDetails, (&'static str, String)> {
            let Some(assignment) = assignment else { return Err(("FLAG_NOT_FOUND", format!("no test named '{key}'"))) };
            let reason = if full { data.matrix.openfeature_reason(&assignment) } else { "" };
            let test_version = if full { assignment.version.map(str::to_string) } else { None };
            let Some(bucket) = assignment.bucket else {
                return match &assignment.reason {
                    Reason::NoIdentifier => Err((
                        "TARGETING_KEY_MISSING",
                        format!("test '{key}' hashes {} identifiers; the context has none", test_objects.identifier_type),
                    )),
                    Reason::RuleError(f) => Err(("GENERAL", format!("test '{key}': {} failed: {}", f.rule, f.message))),
                    _ if !test_objects.payload_types.contains(flag_type) => Err(no_payload_of_type(key, flag_type)),
                    _ => Ok(FlagDetails {
                        flag_key: test_objects.name.clone_ref(py),
                        value: default.clone().unbind(),
                        variant: None,
                        reason,
                        error_code: None,
                        error_message: None,
                        bucket_value: None,
                        test_version,
                        matrix_version: None,
                    }),
                };
            };
            let variant = if full {
                test_objects
                    .bucket(bucket.value)
                    .map(|b| b.name.clone_ref(py))
                    .or_else(|| Some(PyString::new(py, &bucket.name).unbind()))
            } else {
                None
            };
            let assigned = |value: Py<PyAny>, error: Option<(&'static str, String)>| {
                let (error_code, error_message) = error.unzip();
                FlagDetails {
                    flag_key: test_objects.name.clone_ref(py),
                    value,
                    variant,
                    reason: if error_code.is_some() { "ERROR" } else { reason },
                    error_code,
                    error_message,
                    bucket_value: Some(bucket.value),
                    test_version,
                    matrix_version: None,
                }
            };
            match assignment.payload.as_deref() {
                // No bucket of the test can answer this getter (the engine accepts a test whose
                // buckets all have payloads or none has): a mistake in the caller's code.
                None if !test_objects.payload_types.contains(flag_type) => {
                    Ok(assigned(default.clone().unbind(), Some(no_payload_of_type(key, flag_type))))
                }
                // Not reached for a matrix the engine accepts; such a bucket would defer to the
                // caller's default (OFREP's omitted value).
                None => {
                    self.record_exposure(py, &data, test_objects, &assignment);
                    Ok(assigned(default.clone().unbind(), None))
                }
                Some(payload) => match typed_value(py, Some(test_objects), &assignment, payload, flag_type) {
                    Ok(Some(value)) => {
                        self.record_exposure(py, &data, test_objects, &assignment);
                        Ok(assigned(value, None))
                    }
                    Ok(None) => {
                        let message = format!(
                            "test '{key}' bucket '{}' has a {} payload, not {} value",
                            bucket.name,
                            payload.type_name(),
                            flag_type.name()
                        );
                        Ok(assigned(default.clone().unbind(), Some(("TYPE_MISMATCH", message))))
                    }
                    Err(e) => Err(("GENERAL", format!("test '{key}': {e}"))),
                },
            }
        });
        let mut details = match result {
            Ok(details) => details,
            Err((code, message)) => FlagDetails::failed(test_objects.name.clone_ref(py), default, code, message),
        };
        details.matrix_version = full.then(|| data.version.clone());
        details
    }

    /// A plain getter's value; a problem is logged (once per flag and matrix), never raised.
    fn value(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>, flag_type: FlagType) -> Py<PyAny> {
        let details = self.flag(py, key, default, flag_type, false);
        if let (Some(code), Some(message)) = (details.error_code, &details.error_message) {
            let text = format!("avsb: {code}: {message}; returning the default (logged once per flag and matrix)");
            self.shared.warn_once(py, self.engine.as_ref(), (code, key), &text);
        }
        details.value
    }
}

/// A context attribute as text: a key of the context dict, or of one of a multi-context's
/// nested contexts; strings, numbers and booleans only, at most 256 bytes.
fn context_attribute(context: &Bound<'_, PyAny>, name: &str) -> Option<String> {
    let dict = context.cast::<PyDict>().ok()?;
    let value = match dict.get_item(name).ok().flatten() {
        Some(v) => v,
        None => dict
            .values()
            .iter()
            .filter_map(|nested| nested.cast_into::<PyDict>().ok())
            .find_map(|nested| nested.get_item(name).ok().flatten())?,
    };
    let text = if value.is_instance_of::<PyBool>() {
        if value.is_truthy().ok()? { "true".to_string() } else { "false".to_string() }
    } else if let Ok(s) = value.extract::<String>() {
        s
    } else if let Ok(i) = value.extract::<i64>() {
        i.to_string()
    } else if let Ok(f) = value.extract::<f64>() {
        f.to_string()
    } else {
        return None;
    };
    (text.len() <= crate::events::MAX_STRING).then_some(text)
}

/// The error of a typed getter on a test none of whose buckets has a payload of its type.
fn no_payload_of_type(key: &str, flag_type: FlagType) -> (&'static str, String) {
    let message = format!(
        "test '{key}' has no bucket with {} payload, so {} can only return the default; \
         read its bucket with get_group('{key}'), or give its buckets payloads",
        flag_type.name(),
        flag_type.getter(),
    );
    ("TYPE_MISMATCH", message)
}

#[pymethods]
impl Scope {
    /// The boolean payload of the context's bucket, else `default`.
    fn get_bool_flag(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> Py<PyAny> {
        self.value(py, key, default, FlagType::Bool)
    }

    /// The string payload of the context's bucket, else `default`.
    fn get_string_flag(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> Py<PyAny> {
        self.value(py, key, default, FlagType::Str)
    }

    /// The integer payload of the context's bucket, else `default`.
    fn get_int_flag(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> Py<PyAny> {
        self.value(py, key, default, FlagType::Int)
    }

    /// The number payload of the context's bucket as a float, else `default`.
    fn get_float_flag(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> Py<PyAny> {
        self.value(py, key, default, FlagType::Float)
    }

    /// The payload of the context's bucket as JSON-like Python data (any type), else `default`.
    fn get_json_flag(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> Py<PyAny> {
        self.value(py, key, default, FlagType::Json)
    }

    /// `get_bool_flag` with the variant, reason and error code.
    fn get_bool_flag_details(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> FlagDetails {
        self.flag(py, key, default, FlagType::Bool, true)
    }

    /// `get_string_flag` with the variant, reason and error code.
    fn get_string_flag_details(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> FlagDetails {
        self.flag(py, key, default, FlagType::Str, true)
    }

    /// `get_int_flag` with the variant, reason and error code.
    fn get_int_flag_details(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> FlagDetails {
        self.flag(py, key, default, FlagType::Int, true)
    }

    /// `get_float_flag` with the variant, reason and error code.
    fn get_float_flag_details(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> FlagDetails {
        self.flag(py, key, default, FlagType::Float, true)
    }

    /// `get_json_flag` with the variant, reason and error code.
    fn get_json_flag_details(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> FlagDetails {
        self.flag(py, key, default, FlagType::Json, true)
    }

    /// Proctor's `(group, value, payload)` for a test: the bucket's name, its integer value and
    /// its payload; `(None, None, None)` when the context gets no bucket or the test is unknown.
    fn get_group(&mut self, py: Python<'_>, test: &str) -> PyResult<Py<PyAny>> {
        let Some(data) = self.refresh(py) else { return unassigned_group(py) };
        let Some(test_objects) = data.tests.get(test) else { return unassigned_group(py) };
        self.stamp(&data);
        self.with_assignment(&data, test, |assignment| match assignment {
            Some(assignment) => {
                if assignment.bucket.is_some() {
                    self.record_exposure(py, &data, test_objects, &assignment);
                }
                group_object(py, &data, &assignment)
            }
            None => unassigned_group(py),
        })
    }

    /// `{test: GroupAssignment}` for the named tests (every test when `None`), evaluated in one
    /// pass; unassigned and unknown tests get `(None, None, None)`. Records no exposures.
    #[pyo3(signature = (tests=None))]
    fn get_groups<'py>(&mut self, py: Python<'py>, tests: Option<Vec<String>>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let data = self.refresh(py);
        if let Some(data) = &data {
            self.stamp(data);
            let mut request = self.converted.request.clone();
            request.force = self.force.as_ref();
            request.tests = tests.clone();
            let evaluation = data.matrix.evaluate(&request);
            for assignment in &evaluation.results {
                out.set_item(assignment.test, group_object(py, data, assignment)?)?;
            }
        }
        if let Some(names) = tests {
            for name in names {
                if !out.contains(&name)? {
                    out.set_item(name, unassigned_group(py)?)?;
                }
            }
        }
        Ok(out)
    }

    /// Every test for this context as JSON-safe data, for templates and browser code:
    /// `{test: {'group': name|None, 'value': int|None, 'payload': ...}}`. Records no exposures.
    fn all_flags<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let Some(data) = self.refresh(py) else { return Ok(out) };
        self.stamp(&data);
        let forced;
        let request = match &self.force {
            None => &self.converted.request,
            Some(force) => {
                let mut r = self.converted.request.clone();
                r.force = Some(force);
                forced = r;
                &forced
            }
        };
        let evaluation = data.matrix.evaluate(request);
        let (k_group, k_value, k_payload) = (intern!(py, "group"), intern!(py, "value"), intern!(py, "payload"));
        for assignment in &evaluation.results {
            let test_objects = data.tests.get(assignment.test);
            let entry = PyDict::new(py);
            match (assignment.bucket, test_objects.and_then(|t| assignment.bucket.and_then(|b| t.bucket(b.value)))) {
                (Some(_), Some(b)) => {
                    entry.set_item(k_group, b.name.bind(py))?;
                    entry.set_item(k_value, b.value_obj.bind(py))?;
                }
                (Some(b), None) => {
                    entry.set_item(k_group, &b.name)?;
                    entry.set_item(k_value, b.value)?;
                }
                (None, _) => {
                    entry.set_item(k_group, py.None())?;
                    entry.set_item(k_value, py.None())?;
                }
            }
            entry.set_item(k_payload, payload_value(py, test_objects, assignment)?)?;
            match test_objects {
                Some(t) => out.set_item(t.name.bind(py), entry)?,
                None => out.set_item(assignment.test, entry)?,
            }
        }
        Ok(out)
    }

    /// Reports an action (`'purchase'`, with an optional number and JSON-safe properties) for
    /// this context's identifiers. Never raises: an event the server would refuse is logged
    /// and dropped.
    #[pyo3(signature = (key, value=None, properties=None))]
    fn track(&mut self, py: Python<'_>, key: &Bound<'_, PyAny>, value: Option<&Bound<'_, PyAny>>, properties: Option<&Bound<'_, PyAny>>) {
        if !self.shared.events_enabled.load(Ordering::Relaxed) {
            return;
        }
        self.refresh(py);
        let result = (|| -> Result<(), String> {
            let key = key.cast::<PyString>().map_err(|_| "track: the key must be a string".to_string())?;
            let key = key.to_str().map_err(|e| e.to_string())?;
            let value = match value {
                None => None,
                Some(v) if v.is_none() => None,
                Some(v) if v.is_instance_of::<PyBool>() => return Err(format!("track('{key}'): value must be a number, not bool")),
                Some(v) => Some(v.extract::<f64>().map_err(|_| format!("track('{key}'): value must be a number"))?),
            };
            let properties = match properties {
                None => None,
                Some(p) if p.is_none() => None,
                Some(p) => Some(convert::py_to_json(p, "properties", 0).map_err(|e| format!("track('{key}'): {e}"))?),
            };
            let identifiers = match &self.engine {
                Some(data) => self.converted.identifiers(data),
                None => context::identifiers_without_engine(self.context.bind(py)),
            };
            if identifiers.is_empty() {
                return Err(format!("track('{key}'): the context has no identifier"));
            }
            self.shared.events().track(identifiers, key, value, properties)
        })();
        if let Err(message) = result {
            self.shared.warn(py, &format!("avsb: {message}"));
        }
    }

    /// How a test's result was reached, for debugging: `{'test', 'group', 'value', 'reason',
    /// 'openfeature_reason', 'context'}` (the converted context values the rules saw).
    fn explain<'py>(&mut self, py: Python<'py>, test: &str) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        out.set_item("test", test)?;
        let Some(data) = self.refresh(py) else {
            out.set_item("reason", "no matrix has been loaded yet")?;
            return Ok(out);
        };
        let context = engine::context_dict(py, &data, &self.converted.request.context)?;
        self.stamp(&data);
        self.with_assignment(&data, test, |assignment| -> PyResult<()> {
            match assignment {
                None => out.set_item("reason", convert::json_to_py(py, &serde_json::json!({"code": "unknown_test"}))?)?,
                Some(assignment) => {
                    out.set_item("group", assignment.bucket.map(|b| b.name.clone()))?;
                    out.set_item("value", assignment.bucket.map(|b| b.value))?;
                    out.set_item("reason", convert::json_to_py(py, &assignment.reason.to_json())?)?;
                    out.set_item("openfeature_reason", data.matrix.openfeature_reason(&assignment))?;
                }
            }
            Ok(())
        })?;
        out.set_item("context", context)?;
        out.set_item("problems", self.converted.problems.clone())?;
        Ok(out)
    }

    /// The context this scope was made for (as given).
    #[getter]
    fn context(&self, py: Python<'_>) -> Py<PyAny> {
        self.context.clone_ref(py)
    }

    /// The identifiers the context carries, by type: `{'USER': 'u1'}`.
    #[getter]
    fn identifiers<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let pairs = match self.refresh(py) {
            Some(data) => self.converted.identifiers(&data),
            None => context::identifiers_without_engine(self.context.bind(py)),
        };
        for (t, v) in pairs {
            d.set_item(t, v)?;
        }
        Ok(d)
    }

    /// What in the context could not be used (empty when everything was).
    #[getter]
    fn problems(&mut self, py: Python<'_>) -> Vec<String> {
        self.refresh(py);
        self.converted.problems.clone()
    }

    /// The force groups this scope honours, as canonical text, or `None`.
    #[getter]
    fn force_groups(&self) -> Option<String> {
        self.force.as_ref().map(ForceGroups::to_canonical_string)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let context = self.context.bind(py).repr().map(|r| r.to_string()).unwrap_or_default();
        format!("<avsb scope {context}>")
    }
}
