//! Conversions between Python objects and JSON or engine values.

use avsb_core::payload::Payload;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value as Json;

/// How deep a Python value may nest before it is refused (tracked properties, payloads).
const MAX_DEPTH: usize = 32;

/// A JSON value as a new Python object (dicts and lists are fresh, so callers may mutate them).
pub fn json_to_py(py: Python<'_>, value: &Json) -> PyResult<Py<PyAny>> {
    Ok(match value {
        Json::Null => py.None(),
        Json::Bool(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any().unbind()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any().unbind()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any().unbind()
            }
        }
        Json::String(s) => PyString::new(py, s).into_any().unbind(),
        Json::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any().unbind()
        }
        Json::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any().unbind()
        }
    })
}

/// A payload's value as a new Python object: `True`, `"#2B60DE"`, `3`, `[1.5, None]`, `{...}`.
pub fn payload_to_py(py: Python<'_>, payload: &Payload) -> PyResult<Py<PyAny>> {
    json_to_py(py, &payload.value_json())
}

/// Whether a payload's Python value is immutable, so one object may be shared by every call.
pub fn payload_is_immutable(payload: &Payload) -> bool {
    match payload {
        Payload::DoubleValue(_) | Payload::LongValue(_) | Payload::StringValue(_) | Payload::BooleanValue(_) => true,
        Payload::Json(j) => !matches!(j, Json::Array(_) | Json::Object(_)),
        _ => false,
    }
}

/// A Python value as JSON: `None`, bools, ints, finite floats, strings, and lists, tuples and
/// dicts (with string keys) of them. Anything else is an error naming where it is.
pub fn py_to_json(value: &Bound<'_, PyAny>, path: &str, depth: usize) -> PyResult<Json> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!("{path}: nested more than {MAX_DEPTH} levels deep")));
    }
    if value.is_none() {
        return Ok(Json::Null);
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Json::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(i) = value.extract::<i64>() {
            return Ok(Json::from(i));
        }
        if let Ok(u) = value.extract::<u64>() {
            return Ok(Json::from(u));
        }
        return Err(PyValueError::new_err(format!("{path}: integer out of the 64-bit range")));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        let f = f.value();
        return serde_json::Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| PyValueError::new_err(format!("{path}: {f} is not a finite number")));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Json::String(s.to_str()?.to_string()));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = serde_json::Map::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            let key = k
                .cast::<PyString>()
                .map_err(|_| PyValueError::new_err(format!("{path}: keys must be strings, not {}", type_name(&k))))?
                .to_str()?
                .to_string();
            let child = format!("{path}.{key}");
            map.insert(key, py_to_json(&v, &child, depth + 1)?);
        }
        return Ok(Json::Object(map));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in value.try_iter()?.enumerate() {
            items.push(py_to_json(&item?, &format!("{path}[{i}]"), depth + 1)?);
        }
        return Ok(Json::Array(items));
    }
    Err(PyValueError::new_err(format!("{path}: {} is not JSON (use str, int, float, bool, None, list or dict)", type_name(value))))
}

/// The Python type name of a value, for messages.
pub fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into())
}
