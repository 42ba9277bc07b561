//! `avsb._native`: avsb-core for Python.
//!
//! The boundary is crossed coarsely: a matrix is compiled once (`Engine`), a context is
//! converted once (`Evaluator.for_user` → `Scope`), and each flag call passes a test name and a
//! default and gets back a Python object prepared at load time. Nothing crosses as JSON text
//! per call. Shared state lives behind an `ArcSwap` (the current engine) and a mutex that is
//! never held while Python code runs, so the module is safe across threads and after `fork()`
//! (the interpreter lock is held by the forking thread, and no other thread can be inside a
//! critical section that released it).

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwapOption;
use avsb_core::pipet::{self, IdentifyParams};
use avsb_core::{Assignment, ForceGroups, Payload, Reason};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyMapping, PyString, PyTuple};
use pyo3::{create_exception, intern};
use serde_json::Value as Json;

mod context;
mod convert;
mod engine;
mod events;

use context::Converted;
use engine::{Engine, EngineData, TestObjects};
use events::EventBuffer;

create_exception!(_native, MatrixError, PyValueError, "A matrix, schema or datafile that cannot be used.");
create_exception!(_native, RequestError, PyValueError, "A request Pipet would refuse (its status and message).");

/// The class `get_group` returns instances of (`avsb.GroupAssignment`, a named tuple), set by
/// the package at import; a plain tuple until then.
static GROUP_ASSIGNMENT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// What every scope of one SDK instance shares.
struct Shared {
    engine: ArcSwapOption<EngineData>,
    events: Mutex<EventBuffer>,
    events_enabled: AtomicBool,
    logger: Py<PyAny>,
    /// Which (problem, flag) pairs were logged for which engine: each is logged once per matrix,
    /// not once per call (a first-boot outage would otherwise log every flag of every request).
    warned: Mutex<(usize, rustc_hash::FxHashSet<u64>)>,
}

impl Shared {
    fn events(&self) -> MutexGuard<'_, EventBuffer> {
        // A panic while holding the lock cannot leave the buffer inconsistent in a way that
        // matters (at worst a half-drained queue), so a poisoned lock is simply reused.
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn warn(&self, py: Python<'_>, message: &str) {
        let _ = self.logger.bind(py).call_method1(intern!(py, "warning"), ("%s", message));
    }

    /// Logs `message` unless the same `problem` was logged for the current engine already.
    fn warn_once(&self, py: Python<'_>, engine: Option<&Arc<EngineData>>, problem: (&str, &str), message: &str) {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        problem.hash(&mut h);
        let key = h.finish();
        let engine_id = engine.map_or(0, |e| Arc::as_ptr(e) as usize);
        {
            let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
            if warned.0 != engine_id || warned.1.len() > 10_000 {
                *warned = (engine_id, Default::default());
            }
            if !warned.1.insert(key) {
                return;
            }
        }
        self.warn(py, message);
    }
}

/// The evaluating half of an SDK instance: holds the current engine and the event buffer.
/// `avsb.AvsbServer` and `avsb.test_utils.MockAvsbServer` subclass it.
#[pyclass(subclass, frozen, module = "avsb._native")]
pub struct Evaluator {
    shared: Arc<Shared>,
}

#[pymethods]
impl Evaluator {
    /// Subclasses take their own arguments; this only sets up the shared state (events off).
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(py: Python<'_>, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Evaluator> {
        let logger = py.import("logging")?.call_method1("getLogger", ("avsb",))?.unbind();
        Ok(Evaluator {
            shared: Arc::new(Shared {
                engine: ArcSwapOption::empty(),
                events: Mutex::new(EventBuffer::new(10_000, 100_000)),
                events_enabled: AtomicBool::new(false),
                logger,
                warned: Mutex::new((0, Default::default())),
            }),
        })
    }

    /// Makes `engine` current: every scope uses it from its next call on.
    fn _set_engine(&self, engine: &Engine) {
        self.shared.engine.store(Some(engine.data.clone()));
    }

    /// The current engine, or `None` before the first matrix.
    #[getter]
    fn engine(&self) -> Option<Engine> {
        self.shared.engine.load_full().map(|data| Engine { data })
    }

    /// Turns exposure and track recording on or off and bounds the buffer.
    #[pyo3(signature = (enabled, capacity=10_000, dedup_capacity=100_000))]
    fn _configure_events(&self, enabled: bool, capacity: usize, dedup_capacity: usize) {
        let mut events = self.shared.events();
        let counts = events.counts;
        *events = EventBuffer::new(capacity, dedup_capacity);
        events.counts = counts;
        self.shared.events_enabled.store(enabled, Ordering::Relaxed);
    }

    /// Takes up to `max_events` waiting events as one JSON request body, or `None`.
    #[pyo3(signature = (max_events=1000))]
    fn _drain_events(&self, max_events: usize) -> Option<Vec<u8>> {
        self.shared.events().drain(max_events)
    }

    /// How many events wait.
    fn _pending_events(&self) -> usize {
        self.shared.events().len()
    }

    /// Event counters: `recorded`, `deduplicated`, `dropped_full`, `dropped_invalid`.
    fn _event_counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.shared.events().counts;
        let d = PyDict::new(py);
        d.set_item("recorded", c.recorded)?;
        d.set_item("deduplicated", c.deduplicated)?;
        d.set_item("dropped_full", c.dropped_full)?;
        d.set_item("dropped_invalid", c.dropped_invalid)?;
        Ok(d)
    }

    /// In a child after `fork()`: forget the parent's waiting events (the parent sends them).
    fn _forget_events(&self) {
        self.shared.events().clear();
    }

    /// A client scoped to one context (`{'kind': 'user', 'key': ...}` or a multi-context).
    /// Never raises: a context that cannot be used evaluates as far as it can, and says why in
    /// `problems` and the log. `force_groups` (Proctor's `prforceGroups` text) is honoured as
    /// given; callers decide who may force.
    #[pyo3(signature = (context, force_groups=None))]
    fn for_user(&self, py: Python<'_>, context: Bound<'_, PyAny>, force_groups: Option<&str>) -> Scope {
        let force = force_groups.map(ForceGroups::parse).filter(|f| !f.is_empty());
        let mut scope = Scope {
            shared: self.shared.clone(),
            context: context.unbind(),
            force,
            engine: None,
            converted: Converted::empty(),
        };
        scope.refresh(py);
        scope
    }

    /// django-proctor's identify, evaluated here with Pipet's rules: `identifiers` and `context`
    /// are keyed by the schema's source keys (`{'USER': 'u1', 'account': 42}`, `{'ua': ''}`),
    /// values are turned into text as `requests` would (`None` leaves a value out). Returns
    /// `{test: GroupAssignment}` for the assigned tests; raises `RequestError` with Pipet's
    /// message where Pipet would answer 400.
    #[pyo3(signature = (identifiers, context, tests=None, force_groups=None))]
    fn identify<'py>(
        &self,
        py: Python<'py>,
        identifiers: &Bound<'py, PyAny>,
        context: &Bound<'py, PyAny>,
        tests: Option<Vec<String>>,
        force_groups: Option<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let Some(data) = self.shared.engine.load_full() else {
            return Err(RequestError::new_err((500u16, "Could not get Proctor from loader: no matrix has been loaded yet")));
        };
        let identifiers = identifiers.cast::<PyMapping>()?;
        let context = context.cast::<PyMapping>()?;
        let text = |d: &Bound<'py, PyMapping>, key: &str| -> Option<String> { request_text(d.get_item(key).ok()?) };
        let mut params = IdentifyParams::from_sources(
            data.matrix.schema(),
            |prefix, key| if prefix == "ctx." { text(context, key) } else { text(identifiers, key) },
            |_| None,
        );
        if data.matrix.schema().permissive {
            // No schema to say where variables come from: every variable a rule reads, by name.
            for var in data.matrix.variables() {
                if !params.context.iter().any(|(name, _)| *name == var.name) {
                    if let Some(value) = text(context, &var.name) {
                        params.context.push((var.name.clone(), value));
                    }
                }
            }
        }
        params.tests = tests.map(|t| t.join(","));
        params.force_groups = force_groups.filter(|f| !f.is_empty());
        params.now_millis = Some(events::now_millis());
        params.random_seed = random_seed(&data);
        let out = PyDict::new(py);
        let result = pipet::with_request(&data.matrix, &params, |request, _| -> PyResult<()> {
            let evaluation = data.matrix.evaluate(request);
            for a in evaluation.assigned() {
                out.set_item(a.test, group_object(py, &data, a)?)?;
            }
            Ok(())
        });
        match result {
            Ok(inner) => inner.map(|_| out),
            Err(e) => Err(RequestError::new_err((e.status, e.message))),
        }
    }
}

/// A value as the text `requests` would send for it: `None` leaves it out, a list or tuple
/// sends its items (Pipet reads the first), bytes are decoded, anything else is `str()`.
fn request_text(value: Bound<'_, PyAny>) -> Option<String> {
    if value.is_none() {
        return None;
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let first = value.try_iter().ok()?.filter_map(Result::ok).find(|v| !v.is_none())?;
        return request_text(first);
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Some(String::from_utf8_lossy(b.as_bytes()).into_owned());
    }
    value.str().ok().and_then(|s| s.to_str().ok().map(str::to_string))
}

/// A random number for RANDOM tests, drawn only when the matrix has some.
fn random_seed(data: &EngineData) -> Option<u64> {
    if data.has_random_tests {
        getrandom::u64().ok()
    } else {
        None
    }
}

/// The Python value of an assignment's payload.
fn payload_value(py: Python<'_>, tobj: Option<&TestObjects>, a: &Assignment<'_>) -> PyResult<Py<PyAny>> {
    let (Some(bucket), Some(payload)) = (a.bucket, a.payload.as_ref()) else { return Ok(py.None()) };
    if let (Cow::Borrowed(_), Some(shared)) =
        (payload, tobj.and_then(|t| t.bucket(bucket.value)).and_then(|b| b.shared_payload.as_ref()))
    {
        return Ok(shared.clone_ref(py));
    }
    // A forced payload (owned), or a mutable one: a fresh object each call.
    convert::payload_to_py(py, payload)
}

/// `GroupAssignment(group, value, payload)`; `(None, None, None)` when unassigned.
fn group_object(py: Python<'_>, data: &EngineData, a: &Assignment<'_>) -> PyResult<Py<PyAny>> {
    let tobj = data.tests.get(a.test);
    let (group, value): (Py<PyAny>, Py<PyAny>) = match (a.bucket, tobj.and_then(|t| a.bucket.and_then(|b| t.bucket(b.value)))) {
        (Some(_), Some(b)) => (b.name.clone_ref(py).into_any(), b.value_obj.clone_ref(py)),
        (Some(b), None) => (PyString::new(py, &b.name).into_any().unbind(), b.value.into_pyobject(py)?.into_any().unbind()),
        (None, _) => (py.None(), py.None()),
    };
    let payload = payload_value(py, tobj, a)?;
    let args = PyTuple::new(py, [group, value, payload])?;
    match GROUP_ASSIGNMENT.get(py) {
        Some(cls) => Ok(cls.bind(py).call1(args)?.unbind()),
        None => Ok(args.into_any().unbind()),
    }
}

/// The value type a typed getter wants.
#[derive(Clone, Copy, PartialEq)]
enum Want {
    Bool,
    Str,
    Int,
    Float,
    Json,
}

impl Want {
    /// The type with its article, for messages ("a boolean", "an integer").
    fn name(self) -> &'static str {
        match self {
            Want::Bool => "a boolean",
            Want::Str => "a string",
            Want::Int => "an integer",
            Want::Float => "a float",
            Want::Json => "a JSON",
        }
    }
}

/// The payload as the wanted type, or `None` on a mismatch.
fn typed_value(
    py: Python<'_>,
    tobj: Option<&TestObjects>,
    a: &Assignment<'_>,
    payload: &Payload,
    want: Want,
) -> PyResult<Option<Py<PyAny>>> {
    Ok(match (want, payload) {
        (Want::Bool, Payload::BooleanValue(b)) | (Want::Bool, Payload::Json(Json::Bool(b))) => {
            Some(PyBool::new(py, *b).to_owned().into_any().unbind())
        }
        (Want::Str, Payload::StringValue(_)) | (Want::Str, Payload::Json(Json::String(_))) => {
            Some(payload_value(py, tobj, a)?)
        }
        (Want::Int, Payload::LongValue(_)) => Some(payload_value(py, tobj, a)?),
        (Want::Int, Payload::Json(Json::Number(n))) if n.is_i64() || n.is_u64() => Some(payload_value(py, tobj, a)?),
        (Want::Float, Payload::DoubleValue(d)) => Some(PyFloat::new(py, *d).into_any().unbind()),
        (Want::Float, Payload::LongValue(n)) => Some(PyFloat::new(py, *n as f64).into_any().unbind()),
        (Want::Float, Payload::Json(Json::Number(n))) => Some(PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any().unbind()),
        (Want::Json, _) => Some(payload_value(py, tobj, a)?),
        _ => None,
    })
}

/// The result of one flag call, everything `*_details` reports.
struct Outcome {
    value: Py<PyAny>,
    variant: Option<Py<PyString>>,
    reason: &'static str,
    error_code: Option<&'static str>,
    error_message: Option<String>,
    bucket_value: Option<i32>,
    test_version: Option<String>,
}

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
        self.converted.request.random_seed = random_seed(data);
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

    fn record_exposure(&self, data: &EngineData, tobj: &TestObjects, a: &Assignment<'_>) {
        if !self.shared.events_enabled.load(Ordering::Relaxed) || matches!(a.reason, Reason::Forced) {
            return;
        }
        let Some(bucket) = a.bucket else { return };
        let slot = tobj.identifier_slot.or_else(|| data.matrix.identifier_slot(&data.default_identifier_type));
        let Some(Some(identifier)) = slot.and_then(|s| self.converted.request.identifiers.get(s)) else { return };
        let identifier_type = match tobj.identifier_slot {
            Some(_) => tobj.identifier_type.clone(),
            None => Arc::from(data.default_identifier_type.as_str()),
        };
        self.shared.events().exposure(&identifier_type, identifier, a.test, bucket.value, &bucket.name, a.version);
    }

    /// One typed flag call. The reason and the test's version are worked out only for
    /// `*_details` (`details`); the plain getters skip them.
    fn flag(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>, want: Want, details: bool) -> Outcome {
        let fail = |default: Bound<'_, PyAny>, code: &'static str, message: String| Outcome {
            value: default.unbind(),
            variant: None,
            reason: "ERROR",
            error_code: Some(code),
            error_message: Some(message),
            bucket_value: None,
            test_version: None,
        };
        let Some(data) = self.refresh(py) else {
            return fail(default, "PROVIDER_NOT_READY", "no matrix has been loaded yet".into());
        };
        let Some(tobj) = data.tests.get(key) else {
            return fail(default, "FLAG_NOT_FOUND", format!("no test named '{key}' in matrix version {}", data.version));
        };
        self.stamp(&data);
        let outcome = self.with_assignment(&data, key, |a| -> Result<Outcome, (&'static str, String)> {
            let Some(a) = a else { return Err(("FLAG_NOT_FOUND", format!("no test named '{key}'"))) };
            let reason = if details { data.matrix.openfeature_reason(&a) } else { "" };
            let test_version = if details { a.version.map(str::to_string) } else { None };
            let Some(bucket) = a.bucket else {
                return match &a.reason {
                    Reason::NoIdentifier => Err((
                        "TARGETING_KEY_MISSING",
                        format!("test '{key}' hashes {} identifiers; the context has none", tobj.identifier_type),
                    )),
                    Reason::RuleError(f) => Err(("GENERAL", format!("test '{key}': {} failed: {}", f.rule, f.message))),
                    _ => Ok(Outcome {
                        value: default.clone().unbind(),
                        variant: None,
                        reason,
                        error_code: None,
                        error_message: None,
                        bucket_value: None,
                        test_version,
                    }),
                };
            };
            let variant = if details {
                tobj.bucket(bucket.value)
                    .map(|b| b.name.clone_ref(py))
                    .or_else(|| Some(PyString::new(py, &bucket.name).unbind()))
            } else {
                None
            };
            let base = |value: Py<PyAny>, code: Option<&'static str>, message: Option<String>| Outcome {
                value,
                variant,
                reason,
                error_code: code,
                error_message: message,
                bucket_value: Some(bucket.value),
                test_version: test_version.clone(),
            };
            match a.payload.as_deref() {
                // No payload: the bucket defers to the caller's default (OFREP's omitted value).
                None => {
                    self.record_exposure(&data, tobj, &a);
                    Ok(base(default.clone().unbind(), None, None))
                }
                Some(payload) => match typed_value(py, Some(tobj), &a, payload, want) {
                    Ok(Some(value)) => {
                        self.record_exposure(&data, tobj, &a);
                        Ok(base(value, None, None))
                    }
                    Ok(None) => Ok(Outcome {
                        reason: "ERROR",
                        ..base(
                            default.clone().unbind(),
                            Some("TYPE_MISMATCH"),
                            Some(format!(
                                "test '{key}' bucket '{}' has a {} payload, not {} value",
                                bucket.name,
                                payload.type_name(),
                                want.name()
                            )),
                        )
                    }),
                    Err(e) => Err(("GENERAL", format!("test '{key}': {e}"))),
                },
            }
        });
        match outcome {
            Ok(o) => o,
            Err((code, message)) => fail(default, code, message),
        }
    }

    fn value(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>, want: Want) -> Py<PyAny> {
        let o = self.flag(py, key, default, want, false);
        if let (Some(code), Some(message)) = (o.error_code, &o.error_message) {
            let text = format!("avsb: {code}: {message}; returning the default (logged once per flag and matrix)");
            self.shared.warn_once(py, self.engine.as_ref(), (code, key), &text);
        }
        o.value
    }

    fn details(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>, want: Want) -> FlagDetails {
        let o = self.flag(py, key, default, want, true);
        FlagDetails {
            flag_key: key.to_string(),
            value: o.value,
            variant: o.variant,
            reason: o.reason,
            error_code: o.error_code,
            error_message: o.error_message,
            bucket_value: o.bucket_value,
            test_version: o.test_version,
            matrix_version: self.engine.as_ref().map(|e| e.version.clone()),
        }
    }
}

#[pymethods]
impl Scope {
    /// The boolean payload of the context's bucket, else `default`.
    fn get_bool_flag(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> Py<PyAny> {
        self.value(py, key, default, Want::Bool)
    }

    /// The string payload of the context's bucket, else `default`.
    fn get_string_flag(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> Py<PyAny> {
        self.value(py, key, default, Want::Str)
    }

    /// The integer payload of the context's bucket, else `default`.
    fn get_int_flag(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> Py<PyAny> {
        self.value(py, key, default, Want::Int)
    }

    /// The number payload of the context's bucket as a float, else `default`.
    fn get_float_flag(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> Py<PyAny> {
        self.value(py, key, default, Want::Float)
    }

    /// The payload of the context's bucket as JSON-like Python data (any type), else `default`.
    fn get_json_flag(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> Py<PyAny> {
        self.value(py, key, default, Want::Json)
    }

    /// `get_bool_flag` with the variant, reason and error code.
    fn get_bool_flag_details(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> FlagDetails {
        self.details(py, key, default, Want::Bool)
    }

    /// `get_string_flag` with the variant, reason and error code.
    fn get_string_flag_details(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> FlagDetails {
        self.details(py, key, default, Want::Str)
    }

    /// `get_int_flag` with the variant, reason and error code.
    fn get_int_flag_details(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> FlagDetails {
        self.details(py, key, default, Want::Int)
    }

    /// `get_float_flag` with the variant, reason and error code.
    fn get_float_flag_details(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> FlagDetails {
        self.details(py, key, default, Want::Float)
    }

    /// `get_json_flag` with the variant, reason and error code.
    fn get_json_flag_details(&mut self, py: Python<'_>, key: &str, default: Bound<'_, PyAny>) -> FlagDetails {
        self.details(py, key, default, Want::Json)
    }

    /// Proctor's `(group, value, payload)` for a test: the bucket's name, its integer value and
    /// its payload; `(None, None, None)` when the context gets no bucket or the test is unknown.
    fn get_group(&mut self, py: Python<'_>, test: &str) -> PyResult<Py<PyAny>> {
        let none = || -> PyResult<Py<PyAny>> {
            let args = PyTuple::new(py, [py.None(), py.None(), py.None()])?;
            match GROUP_ASSIGNMENT.get(py) {
                Some(cls) => Ok(cls.bind(py).call1(args)?.unbind()),
                None => Ok(args.into_any().unbind()),
            }
        };
        let Some(data) = self.refresh(py) else { return none() };
        let Some(tobj) = data.tests.get(test) else { return none() };
        self.stamp(&data);
        self.with_assignment(&data, test, |a| match a {
            Some(a) => {
                if a.bucket.is_some() {
                    self.record_exposure(&data, tobj, &a);
                }
                group_object(py, &data, &a)
            }
            None => none(),
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
            for a in &evaluation.results {
                out.set_item(a.test, group_object(py, data, a)?)?;
            }
        }
        if let Some(names) = tests {
            for name in names {
                if !out.contains(&name)? {
                    let args = PyTuple::new(py, [py.None(), py.None(), py.None()])?;
                    let none = match GROUP_ASSIGNMENT.get(py) {
                        Some(cls) => cls.bind(py).call1(args)?.unbind(),
                        None => args.into_any().unbind(),
                    };
                    out.set_item(name, none)?;
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
        for a in &evaluation.results {
            let tobj = data.tests.get(a.test);
            let entry = PyDict::new(py);
            match (a.bucket, tobj.and_then(|t| a.bucket.and_then(|b| t.bucket(b.value)))) {
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
            entry.set_item(k_payload, payload_value(py, tobj, a)?)?;
            match tobj {
                Some(t) => out.set_item(t.name.bind(py), entry)?,
                None => out.set_item(a.test, entry)?,
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
                None => context_identifiers_without_engine(self.context.bind(py)),
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
        self.with_assignment(&data, test, |a| -> PyResult<()> {
            match a {
                None => out.set_item("reason", convert::json_to_py(py, &serde_json::json!({"code": "unknown_test"}))?)?,
                Some(a) => {
                    out.set_item("group", a.bucket.map(|b| b.name.clone()))?;
                    out.set_item("value", a.bucket.map(|b| b.value))?;
                    out.set_item("reason", convert::json_to_py(py, &a.reason.to_json())?)?;
                    out.set_item("openfeature_reason", data.matrix.openfeature_reason(&a))?;
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
            None => context_identifiers_without_engine(self.context.bind(py)),
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
        let ctx = self.context.bind(py).repr().map(|r| r.to_string()).unwrap_or_default();
        format!("<avsb scope {ctx}>")
    }
}

/// Identifiers straight from a context when no matrix is loaded yet (kind upper-cased).
fn context_identifiers_without_engine(context: &Bound<'_, PyAny>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(dict) = context.cast::<PyDict>() else { return out };
    let key_of = |d: &Bound<'_, PyDict>| -> Option<String> {
        let k = d.get_item("key").ok()??;
        if k.is_none() {
            return None;
        }
        k.str().ok().and_then(|s| s.to_str().ok().map(str::to_string))
    };
    let kind: String = dict.get_item("kind").ok().flatten().and_then(|k| k.extract().ok()).unwrap_or_else(|| "user".into());
    if kind == "multi" {
        for (name, sub) in dict.iter() {
            let (Ok(name), Ok(sub)) = (name.extract::<String>(), sub.cast::<PyDict>()) else { continue };
            if let Some(k) = key_of(sub) {
                out.push((name.to_ascii_uppercase(), k));
            }
        }
    } else if let Some(k) = key_of(dict) {
        out.push((kind.to_ascii_uppercase(), k));
    }
    out
}

/// A flag call's full result, shaped like OpenFeature's `FlagEvaluationDetails`.
#[pyclass(frozen, get_all, module = "avsb._native")]
pub struct FlagDetails {
    /// The test's name.
    flag_key: String,
    /// What the call returned: the payload, or the default.
    value: Py<PyAny>,
    /// The bucket's name, when the context got a bucket.
    variant: Option<Py<PyString>>,
    /// OpenFeature's reason: STATIC, TARGETING_MATCH, SPLIT, DEFAULT, DISABLED or ERROR.
    reason: &'static str,
    /// OpenFeature's error code when the default was returned because of a problem.
    error_code: Option<&'static str>,
    /// What the problem was.
    error_message: Option<String>,
    /// The bucket's integer value.
    bucket_value: Option<i32>,
    /// The test's version (the revision its definition was made at).
    test_version: Option<String>,
    /// The matrix version the call evaluated against.
    matrix_version: Option<String>,
}

#[pymethods]
impl FlagDetails {
    /// `{'bucketValue': ..., 'testVersion': ..., 'matrixVersion': ...}` (the ones known), as
    /// OFREP's metadata.
    #[getter]
    fn flag_metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        if let Some(v) = self.bucket_value {
            d.set_item("bucketValue", v)?;
        }
        if let Some(v) = &self.test_version {
            d.set_item("testVersion", v)?;
        }
        if let Some(v) = &self.matrix_version {
            d.set_item("matrixVersion", v)?;
        }
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let repr = |o: &Bound<'_, PyAny>| o.repr().map(|r| r.to_string()).unwrap_or_default();
        let opt = |o: Option<String>| o.map_or_else(|| "None".to_string(), |s| repr(&PyString::new(py, &s).into_any()));
        format!(
            "FlagDetails(flag_key={}, value={}, variant={}, reason={}, error_code={}, error_message={})",
            opt(Some(self.flag_key.clone())),
            repr(self.value.bind(py)),
            opt(self.variant.as_ref().map(|v| v.bind(py).to_string())),
            opt(Some(self.reason.to_string())),
            opt(self.error_code.map(str::to_string)),
            opt(self.error_message.clone()),
        )
    }
}

/// Sets the class `get_group` returns (the package's `GroupAssignment` named tuple).
#[pyfunction]
fn _set_group_assignment_type(py: Python<'_>, cls: Bound<'_, PyAny>) -> PyResult<()> {
    // Set once per process; a re-import (importlib.reload) keeps the first class.
    let _ = GROUP_ASSIGNMENT.set(py, cls.unbind());
    Ok(())
}

/// OpenFeature's reasons the SDK reports, and its error codes.
const REASONS: [&str; 6] = ["STATIC", "TARGETING_MATCH", "SPLIT", "DEFAULT", "DISABLED", "ERROR"];
const ERROR_CODES: [&str; 5] = ["PROVIDER_NOT_READY", "FLAG_NOT_FOUND", "TYPE_MISMATCH", "TARGETING_KEY_MISSING", "GENERAL"];

/// The engine's payload type names (`doubleValue`, ..., `booleanValue`).
#[pyfunction]
fn payload_types() -> Vec<&'static str> {
    avsb_core::payload::PAYLOAD_TYPES.to_vec()
}

/// The engine's reading of a `User-Agent` header: Pipet's `UserAgent` bean (`browser`,
/// `operatingSystem`, `deviceType`, `mobileDevice`, `tablet`, `phone`, `smartPhone`,
/// `dumbPhone`, ...), so Python classifies devices without a second parser.
#[pyfunction]
fn parse_user_agent(py: Python<'_>, text: &str) -> PyResult<Py<PyAny>> {
    convert::json_to_py(py, &avsb_core::useragent::UserAgent::parse(text).to_json())
}

/// The version of the engine this module was built from.
#[pyfunction]
fn core_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule(gil_used = true)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Engine>()?;
    m.add_class::<Evaluator>()?;
    m.add_class::<Scope>()?;
    m.add_class::<FlagDetails>()?;
    m.add("MatrixError", py.get_type::<MatrixError>())?;
    m.add("RequestError", py.get_type::<RequestError>())?;
    m.add("REASONS", REASONS.to_vec())?;
    m.add("ERROR_CODES", ERROR_CODES.to_vec())?;
    m.add_function(wrap_pyfunction!(_set_group_assignment_type, m)?)?;
    m.add_function(wrap_pyfunction!(payload_types, m)?)?;
    m.add_function(wrap_pyfunction!(core_version, m)?)?;
    m.add_function(wrap_pyfunction!(parse_user_agent, m)?)?;
    Ok(())
}
