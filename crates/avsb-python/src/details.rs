//! A typed getter's result: the type it asks for (`FlagType`), the payload read as that type,
//! and everything `*_details` reports (`FlagDetails`).

use avsb_core::{Assignment, Payload};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyString};
use serde_json::Value as Json;

use crate::engine::TestObjects;
use crate::group::payload_value;

/// The type a typed getter returns (`get_bool_flag` a boolean, ...).
#[derive(Clone, Copy, PartialEq)]
pub enum FlagType {
    Bool,
    Str,
    Int,
    Float,
    Json,
}

impl FlagType {
    /// The type with its article, for messages ("a boolean", "an integer").
    pub fn name(self) -> &'static str {
        match self {
            FlagType::Bool => "a boolean",
            FlagType::Str => "a string",
            FlagType::Int => "an integer",
            FlagType::Float => "a float",
            FlagType::Json => "a JSON",
        }
    }

    /// The getter that asks for this type, for messages.
    pub fn getter(self) -> &'static str {
        match self {
            FlagType::Bool => "get_bool_flag",
            FlagType::Str => "get_string_flag",
            FlagType::Int => "get_int_flag",
            FlagType::Float => "get_float_flag",
            FlagType::Json => "get_json_flag",
        }
    }

    /// Whether `typed_value` reads `payload` as this type (the JSON getter reads any payload).
    pub fn accepts(self, payload: &Payload) -> bool {
        match (self, payload) {
            (FlagType::Bool, Payload::BooleanValue(_) | Payload::Json(Json::Bool(_))) => true,
            (FlagType::Str, Payload::StringValue(_) | Payload::Json(Json::String(_))) => true,
            (FlagType::Int, Payload::LongValue(_)) => true,
            (FlagType::Int, Payload::Json(Json::Number(n))) => n.is_i64() || n.is_u64(),
            (FlagType::Float, Payload::DoubleValue(_) | Payload::LongValue(_) | Payload::Json(Json::Number(_))) => true,
            (FlagType::Json, _) => true,
            _ => false,
        }
    }

    /// This type's bit in a `PayloadTypes` set.
    fn bit(self) -> u8 {
        match self {
            FlagType::Bool => 1,
            FlagType::Str => 2,
            FlagType::Int => 4,
            FlagType::Float => 8,
            FlagType::Json => 16,
        }
    }
}

/// The getter types some bucket of a test has a payload for, worked out once at load: a typed
/// getter on a test none of whose buckets can answer it is a type mismatch, not a code default.
#[derive(Clone, Copy, Default)]
pub struct PayloadTypes(u8);

impl PayloadTypes {
    const ALL: [FlagType; 5] = [FlagType::Bool, FlagType::Str, FlagType::Int, FlagType::Float, FlagType::Json];

    /// Adds the types a bucket's payload answers.
    pub fn add(&mut self, payload: &Payload) {
        for flag_type in Self::ALL {
            if flag_type.accepts(payload) {
                self.0 |= flag_type.bit();
            }
        }
    }

    /// Whether some bucket answers `flag_type`.
    pub fn contains(self, flag_type: FlagType) -> bool {
        self.0 & flag_type.bit() != 0
    }
}

/// The payload as a value of `flag_type`, or `None` when the payload has another type (exactly
/// when `flag_type.accepts(payload)` is false).
pub fn typed_value(
    py: Python<'_>,
    test_objects: Option<&TestObjects>,
    assignment: &Assignment<'_>,
    payload: &Payload,
    flag_type: FlagType,
) -> PyResult<Option<Py<PyAny>>> {
    if !flag_type.accepts(payload) {
        return Ok(None);
    }
    Ok(match (flag_type, payload) {
        (FlagType::Bool, Payload::BooleanValue(b)) | (FlagType::Bool, Payload::Json(Json::Bool(b))) => {
            Some(PyBool::new(py, *b).to_owned().into_any().unbind())
        }
        (FlagType::Str, Payload::StringValue(_)) | (FlagType::Str, Payload::Json(Json::String(_))) => {
            Some(payload_value(py, test_objects, assignment)?)
        }
        (FlagType::Int, Payload::LongValue(_)) => Some(payload_value(py, test_objects, assignment)?),
        (FlagType::Int, Payload::Json(Json::Number(n))) if n.is_i64() || n.is_u64() => {
            Some(payload_value(py, test_objects, assignment)?)
        }
        (FlagType::Float, Payload::DoubleValue(d)) => Some(PyFloat::new(py, *d).into_any().unbind()),
        (FlagType::Float, Payload::LongValue(n)) => Some(PyFloat::new(py, *n as f64).into_any().unbind()),
        (FlagType::Float, Payload::Json(Json::Number(n))) => {
            Some(PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any().unbind())
        }
        (FlagType::Json, _) => Some(payload_value(py, test_objects, assignment)?),
        _ => None,
    })
}

/// A flag call's full result, shaped like OpenFeature's `FlagEvaluationDetails`. The plain
/// getters make one too, without the parts only `*_details` reports (the variant, the reason
/// and the versions), and hand out only its value.
#[pyclass(frozen, get_all, module = "avsb._native")]
pub struct FlagDetails {
    /// The test's name.
    pub flag_key: Py<PyString>,
    /// What the call returned: the payload, or the default.
    pub value: Py<PyAny>,
    /// The bucket's name, when the context got a bucket.
    pub variant: Option<Py<PyString>>,
    /// OpenFeature's reason: STATIC, TARGETING_MATCH, SPLIT, DEFAULT, DISABLED or ERROR.
    pub reason: &'static str,
    /// OpenFeature's error code when the default was returned because of a problem.
    pub error_code: Option<&'static str>,
    /// What the problem was.
    pub error_message: Option<String>,
    /// The bucket's integer value.
    pub bucket_value: Option<i32>,
    /// The test's version (the revision its definition was made at).
    pub test_version: Option<String>,
    /// The matrix version the call evaluated against.
    pub matrix_version: Option<String>,
}

impl FlagDetails {
    /// The caller's default, returned because of a problem (`error_code`, `message`).
    pub fn failed(flag_key: Py<PyString>, default: Bound<'_, PyAny>, error_code: &'static str, message: String) -> FlagDetails {
        FlagDetails {
            flag_key,
            value: default.unbind(),
            variant: None,
            reason: "ERROR",
            error_code: Some(error_code),
            error_message: Some(message),
            bucket_value: None,
            test_version: None,
            matrix_version: None,
        }
    }
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
        let text = |s: Option<&str>| s.map_or_else(|| "None".to_string(), |s| repr(PyString::new(py, s).as_any()));
        format!(
            "FlagDetails(flag_key={}, value={}, variant={}, reason={}, error_code={}, error_message={})",
            repr(self.flag_key.bind(py).as_any()),
            repr(self.value.bind(py)),
            self.variant.as_ref().map_or_else(|| "None".to_string(), |v| repr(v.bind(py).as_any())),
            text(Some(self.reason)),
            text(self.error_code),
            text(self.error_message.as_deref()),
        )
    }
}
