//! Proctor's result for one test as Python sees it: `GroupAssignment(group, value, payload)`.

use std::borrow::Cow;

use avsb_core::Assignment;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyTuple};

use crate::convert;
use crate::engine::{EngineData, TestObjects};

/// The class `get_group` returns instances of (`avsb.GroupAssignment`, a named tuple), set by
/// the package at import; a plain tuple until then.
static GROUP_ASSIGNMENT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Sets the class `get_group` returns (the package's `GroupAssignment` named tuple).
#[pyfunction]
pub fn _set_group_assignment_type(py: Python<'_>, cls: Bound<'_, PyAny>) -> PyResult<()> {
    // Set once per process; a re-import (importlib.reload) keeps the first class.
    let _ = GROUP_ASSIGNMENT.set(py, cls.unbind());
    Ok(())
}

fn group_assignment(py: Python<'_>, group: Py<PyAny>, value: Py<PyAny>, payload: Py<PyAny>) -> PyResult<Py<PyAny>> {
    let args = PyTuple::new(py, [group, value, payload])?;
    match GROUP_ASSIGNMENT.get(py) {
        Some(cls) => Ok(cls.bind(py).call1(args)?.unbind()),
        None => Ok(args.into_any().unbind()),
    }
}

/// `GroupAssignment(None, None, None)`: no bucket, or no such test.
pub fn unassigned_group(py: Python<'_>) -> PyResult<Py<PyAny>> {
    group_assignment(py, py.None(), py.None(), py.None())
}

/// `GroupAssignment(group, value, payload)` of an assignment; all `None` when unassigned.
pub fn group_object(py: Python<'_>, data: &EngineData, assignment: &Assignment<'_>) -> PyResult<Py<PyAny>> {
    let test_objects = data.tests.get(assignment.test);
    let bucket_objects = test_objects.and_then(|t| assignment.bucket.and_then(|b| t.bucket(b.value)));
    let (group, value): (Py<PyAny>, Py<PyAny>) = match (assignment.bucket, bucket_objects) {
        (Some(_), Some(b)) => (b.name.clone_ref(py).into_any(), b.value_obj.clone_ref(py)),
        (Some(b), None) => (PyString::new(py, &b.name).into_any().unbind(), b.value.into_pyobject(py)?.into_any().unbind()),
        (None, _) => (py.None(), py.None()),
    };
    let payload = payload_value(py, test_objects, assignment)?;
    group_assignment(py, group, value, payload)
}

/// The Python value of an assignment's payload: the object made at load when the payload is
/// the bucket's own and immutable, else a fresh one.
pub fn payload_value(py: Python<'_>, test_objects: Option<&TestObjects>, assignment: &Assignment<'_>) -> PyResult<Py<PyAny>> {
    let (Some(bucket), Some(payload)) = (assignment.bucket, assignment.payload.as_ref()) else { return Ok(py.None()) };
    if let (Cow::Borrowed(_), Some(shared)) =
        (payload, test_objects.and_then(|t| t.bucket(bucket.value)).and_then(|b| b.shared_payload.as_ref()))
    {
        return Ok(shared.clone_ref(py));
    }
    // A forced payload (owned), or a mutable one: a fresh object each call.
    convert::payload_to_py(py, payload)
}
