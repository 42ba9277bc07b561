//! `Evaluator`: the evaluating half of an SDK instance (`AvsbServer` and `MockAvsbServer`
//! subclass it). It holds the current engine behind an `ArcSwap` and the bounded event buffer
//! behind a mutex; both are shared with every scope it makes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwapOption;
use avsb_core::pipet::{self, IdentifyParams};
use avsb_core::ForceGroups;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyMapping, PyTuple};

use crate::engine::{Engine, EngineData};
use crate::errors::RequestError;
use crate::events::{self, EventBuffer};
use crate::group::group_object;
use crate::scope::Scope;

/// What every scope of one SDK instance shares.
pub struct Shared {
    pub engine: ArcSwapOption<EngineData>,
    events: Mutex<EventBuffer>,
    pub events_enabled: AtomicBool,
    logger: Py<PyAny>,
    /// Which (problem, flag) pairs were logged for which engine: each is logged once per matrix,
    /// not once per call (a first-boot outage would otherwise log every flag of every request).
    warned: Mutex<(usize, rustc_hash::FxHashSet<u64>)>,
    /// Context attributes copied onto each exposure as `dimensions` (for results broken down by
    /// device, country...).
    pub exposure_dimensions: arc_swap::ArcSwap<Vec<String>>,
}

impl Evaluator {
    /// Records the exposure of one test `identify` assigned (django-proctor's drop-in evaluating
    /// locally), as the typed getters do: not for force groups, once per unit and bucket.
    fn record_identify_exposure(&self, data: &EngineData, request: &avsb_core::Request<'_>, assignment: &avsb_core::Assignment<'_>) {
        let Some(bucket) = assignment.bucket else { return };
        let Some((reason, allocation)) = assignment.reason.exposure() else { return };
        if reason == "forced" {
            return;
        }
        let Some(definition) = data.matrix.definition(assignment.test) else { return };
        let Some(slot) = data.matrix.identifier_slot(&definition.test_type) else { return };
        let Some(Some(identifier)) = request.identifiers.get(slot) else { return };
        let identifier_type: Arc<str> = Arc::from(definition.test_type.as_str());
        let (test, version) = (assignment.test, assignment.version);
        let mut events = self.shared.events();
        events.exposure(&identifier_type, identifier, test, bucket.value, &bucket.name, version, reason, allocation, None);
    }
}

impl Shared {
    pub fn events(&self) -> MutexGuard<'_, EventBuffer> {
        // A panic while holding the lock cannot leave the buffer inconsistent in a way that
        // matters (at worst a half-drained queue), so a poisoned lock is simply reused.
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn warn(&self, py: Python<'_>, message: &str) {
        let _ = self.logger.bind(py).call_method1(intern!(py, "warning"), ("%s", message));
    }

    /// Logs `message` unless the same `problem` was logged for the current engine already.
    pub fn warn_once(&self, py: Python<'_>, engine: Option<&Arc<EngineData>>, problem: (&str, &str), message: &str) {
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
                exposure_dimensions: arc_swap::ArcSwap::from_pointee(Vec::new()),
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

    /// Turns exposure and track recording on or off, bounds the buffer, and names the context
    /// attributes exposures carry as `dimensions` (at most 8).
    #[pyo3(signature = (enabled, capacity=10_000, dedup_capacity=100_000, dimensions=None))]
    fn _configure_events(&self, enabled: bool, capacity: usize, dedup_capacity: usize, dimensions: Option<Vec<String>>) {
        let mut events = self.shared.events();
        let counts = events.counts;
        *events = EventBuffer::new(capacity, dedup_capacity);
        events.counts = counts;
        drop(events);
        let mut dimensions = dimensions.unwrap_or_default();
        dimensions.truncate(crate::events::MAX_DIMENSIONS);
        self.shared.exposure_dimensions.store(Arc::new(dimensions));
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
        Scope::new(py, self.shared.clone(), context.unbind(), force)
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
        params.random_seed = data.random_seed();
        let out = PyDict::new(py);
        let record = self.shared.events_enabled.load(Ordering::Relaxed);
        let result = pipet::with_request(&data.matrix, &params, |request, _| -> PyResult<()> {
            let evaluation = data.matrix.evaluate(request);
            for assignment in evaluation.assigned() {
                out.set_item(assignment.test, group_object(py, &data, assignment)?)?;
                if record {
                    self.record_identify_exposure(&data, request, assignment);
                }
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
