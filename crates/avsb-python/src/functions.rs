//! What the engine knows that the Python package needs outside an evaluation: payload types,
//! OpenFeature's reasons and error codes, Proctor's identifier types, how a rule writes a value
//! and which names it reads, and how Pipet reads a `User-Agent`. Python keeps no copy of these.

use avsb_core::{IntKind, Value};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};

use crate::convert;

/// OpenFeature's reasons the SDK reports.
pub const REASONS: [&str; 6] = ["STATIC", "TARGETING_MATCH", "SPLIT", "DEFAULT", "DISABLED", "ERROR"];
/// OpenFeature's error codes the SDK reports.
pub const ERROR_CODES: [&str; 5] = ["PROVIDER_NOT_READY", "FLAG_NOT_FOUND", "TYPE_MISMATCH", "TARGETING_KEY_MISSING", "GENERAL"];

/// The engine's payload type names (`doubleValue`, ..., `booleanValue`).
#[pyfunction]
pub fn payload_types() -> Vec<&'static str> {
    avsb_core::payload::PAYLOAD_TYPES.to_vec()
}

/// The engine's reading of a `User-Agent` header: Pipet's `UserAgent` bean (`browser`,
/// `operatingSystem`, `deviceType`, `mobileDevice`, `tablet`, `phone`, `smartPhone`,
/// `dumbPhone`, ...), so Python classifies devices without a second parser.
#[pyfunction]
pub fn parse_user_agent(py: Python<'_>, text: &str) -> PyResult<Py<PyAny>> {
    convert::json_to_py(py, &avsb_core::useragent::UserAgent::parse(text).to_json())
}

/// The version of the engine this module was built from.
#[pyfunction]
pub fn core_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The identifier type a name stands for, as Pipet maps configuration keys: one of Proctor's
/// test types whatever its case (`user` → `USER`), a custom type as written (`device`).
#[pyfunction]
pub fn canonical_identifier_type(name: &str) -> String {
    avsb_core::schema::canonical_identifier_type(name)
}

/// Whether a rule can read `name` as a variable: one identifier of the rule language, and not
/// one of its reserved words (`and`, `empty`, `div`, ...).
#[pyfunction]
pub fn is_variable_name(name: &str) -> bool {
    avsb_core::rule::is_variable_name(name)
}

/// A str, int, float or bool as a rule literal that reads back as that value (`'it\'s'`,
/// `42`, `0.5`, `true`). Raises `ValueError` for an int outside the 64-bit range or a float
/// that is not finite, and `TypeError` for any other type.
#[pyfunction]
pub fn rule_literal(value: &Bound<'_, PyAny>) -> PyResult<String> {
    let text = || value.str().map(|s| s.to_string()).unwrap_or_default();
    let engine_value = if let Ok(s) = value.cast::<PyString>() {
        Value::string(s.to_str()?)
    } else if let Ok(b) = value.cast::<PyBool>() {
        Value::Bool(b.is_true())
    } else if value.is_instance_of::<PyInt>() {
        let n = value.extract::<i64>().map_err(|_| PyValueError::new_err(format!("{} does not fit in a 64-bit integer", text())))?;
        Value::Int(n, IntKind::Long)
    } else if let Ok(f) = value.cast::<PyFloat>() {
        Value::Double(f.value())
    } else {
        let type_name = convert::type_name(value);
        return Err(PyTypeError::new_err(format!("rule values must be str, int, float or bool, not {type_name}")));
    };
    avsb_core::rule::literal(&engine_value).ok_or_else(|| PyValueError::new_err(format!("{} cannot be compared in a rule", text())))
}
