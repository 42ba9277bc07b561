//! Contexts: `{'kind': 'user', 'key': 'u1', 'plan': 'pro'}` or
//! `{'kind': 'multi', 'user': {...}, 'account': {...}}` → an engine request.
//!
//! A kind names an identifier type (case ignored: `user` → `USER`); its `key` is that identifier.
//! Other attributes are context variables, converted to the schema's declared type, or, when
//! named after an identifier type, identifiers. Variables a context lacks take the schema's
//! defaults. Problems never raise: the attribute is left out and the problem is kept for the
//! `*_details` error message and the log.

use std::borrow::Cow;

use avsb_core::{ContextType, IntKind, Request, Value};
use pyo3::prelude::*;
use pyo3::intern;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

use crate::convert::type_name;
use crate::engine::{AttributeTarget, EngineData};

/// A context converted for one engine.
pub struct Converted {
    pub request: Request<'static>,
    /// Identifiers of types the schema does not know (kept for tracked events only).
    pub extra_identifiers: Vec<(String, String)>,
    /// What could not be used, as sentences.
    pub problems: Vec<String>,
}

impl Converted {
    /// An empty conversion (no engine yet).
    pub fn empty() -> Converted {
        Converted { request: Request::default(), extra_identifiers: Vec::new(), problems: Vec::new() }
    }

    /// Every identifier the context carries, by type, for tracked events.
    pub fn identifiers(&self, data: &EngineData) -> Vec<(String, String)> {
        let types = data.matrix.identifier_types();
        let mut out: Vec<(String, String)> = self
            .request
            .identifiers
            .iter()
            .enumerate()
            .filter_map(|(slot, id)| Some((types.get(slot)?.clone(), id.as_deref()?.to_string())))
            .collect();
        out.extend(self.extra_identifiers.iter().cloned());
        out
    }
}

/// Converts a context for `data`. This runs once per `for_user`, so it avoids allocating:
/// keys are looked up as interned strings, kinds are matched without case folding copies, and
/// the identifier list for events is only built when an event needs it.
pub fn convert(data: &EngineData, context: &Bound<'_, PyAny>) -> Converted {
    let mut out = Converted {
        request: Request {
            identifiers: vec![None; data.matrix.identifier_types().len()],
            context: data.defaults.clone(),
            ..Request::default()
        },
        extra_identifiers: Vec::new(),
        problems: Vec::new(),
    };
    let Ok(dict) = context.cast::<PyDict>() else {
        out.problems.push(format!("the context must be a dict like {{'kind': 'user', 'key': ...}}, not {}", type_name(context)));
        return out;
    };
    let py = context.py();
    let kind_obj = dict.get_item(intern!(py, "kind")).ok().flatten();
    let kind = match &kind_obj {
        None => "user",
        Some(k) => match k.cast::<PyString>().ok().and_then(|s| s.to_str().ok()) {
            Some(s) => s,
            None => {
                out.problems.push(format!("context 'kind' must be a string, not {}", type_name(k)));
                return out;
            }
        },
    };
    if kind == "multi" {
        for (name, sub) in dict.iter() {
            let Ok(name) = name.extract::<String>() else { continue };
            if name == "kind" {
                continue;
            }
            match sub.cast::<PyDict>() {
                Ok(sub) => single(data, &name, sub, &mut out),
                Err(_) => out.problems.push(format!("multi-context '{name}' must be a dict, not {}", type_name(&sub))),
            }
        }
    } else {
        single(data, kind, dict, &mut out);
    }
    out
}

/// Text for an identifier: strings as they are, ints in decimal.
fn identifier_text(value: &Bound<'_, PyAny>) -> Option<String> {
    if let Ok(s) = value.cast::<PyString>() {
        return s.to_str().ok().map(str::to_string);
    }
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() {
        return value.str().ok().and_then(|s| s.to_str().ok().map(str::to_string));
    }
    None
}

/// The identifier slot a context kind names (`user` → `USER`), case ignored.
fn kind_slot(data: &EngineData, kind: &str) -> Option<usize> {
    data.matrix.identifier_types().iter().position(|t| t.eq_ignore_ascii_case(kind))
}

fn single(data: &EngineData, kind: &str, dict: &Bound<'_, PyDict>, out: &mut Converted) {
    let slot = kind_slot(data, kind);
    for (name, value) in dict.iter() {
        let Ok(name) = name.cast::<PyString>() else {
            out.problems.push(format!("context '{kind}': attribute names must be strings, not {}", type_name(&name)));
            continue;
        };
        let Ok(name) = name.to_str() else { continue };
        match name {
            "kind" | "_meta" => continue,
            "key" => {
                if value.is_none() {
                    continue;
                }
                match (identifier_text(&value), slot) {
                    (Some(key), Some(slot)) => out.request.identifiers[slot] = Some(Cow::Owned(key)),
                    (Some(key), None) => {
                        // A kind no test hashes: kept for tracked events only.
                        let type_name = avsb_core::schema::canonical_identifier_type(&kind.to_ascii_uppercase());
                        out.extra_identifiers.retain(|(t, _)| *t != type_name);
                        out.extra_identifiers.push((type_name, key));
                    }
                    (None, _) => out.problems.push(format!("context '{kind}': 'key' must be a string, not {}", type_name(&value))),
                }
                continue;
            }
            _ => {}
        }
        if value.is_none() {
            continue;
        }
        match data.attributes.get(name) {
            Some(AttributeTarget::Identifier(slot)) if out.request.identifiers[*slot].is_none() => {
                if let Some(text) = identifier_text(&value) {
                    out.request.identifiers[*slot] = Some(Cow::Owned(text));
                }
            }
            Some(AttributeTarget::Identifier(_)) => {}
            Some(AttributeTarget::Variable(slot, ty)) => match to_value(data, *slot, &value, *ty) {
                Ok(v) => out.request.context[*slot] = Some(v),
                Err(why) => out.problems.push(format!("context attribute '{name}': {why}")),
            },
            // Attributes no rule reads are ignored, as Pipet ignores unconfigured parameters.
            None => {}
        }
    }
}

/// A Python attribute value as the engine value of the schema's type. Strings go through the
/// schema's own conversion (as Pipet converts request text); Python numbers and bools are
/// taken natively when the type fits, else converted from their text.
fn to_value(data: &EngineData, slot: usize, value: &Bound<'_, PyAny>, ty: Option<ContextType>) -> Result<Value, String> {
    let Some(ty) = ty else {
        // A variable only rules mention (permissive schema): keep the Python type.
        return native_value(value);
    };
    if let Ok(s) = value.cast::<PyString>() {
        let text = s.to_str().map_err(|e| e.to_string())?;
        if let Some(v) = data.conversions.get(slot, text) {
            return Ok(v);
        }
        let v = ty.convert(text).map_err(|detail| format!("could not convert '{text}' to {}: {detail}", ty.canonical_name()))?;
        data.conversions.put(slot, text, &v);
        return Ok(v);
    }
    if let Ok(b) = value.cast::<PyBool>() {
        let b = b.is_true();
        return match ty {
            ContextType::Boolean => Ok(Value::Bool(b)),
            ContextType::String => Ok(Value::string(if b { "true" } else { "false" })),
            _ => Err(format!("a bool cannot be a {}", ty.canonical_name())),
        };
    }
    if value.is_instance_of::<PyInt>() {
        let Ok(n) = value.extract::<i64>() else {
            return Err("integer out of the 64-bit range".into());
        };
        let ranged = |kind: IntKind, lo: i64, hi: i64| {
            if (lo..=hi).contains(&n) {
                Ok(Value::Int(n, kind))
            } else {
                Err(format!("{n} is out of range for {}", ty.canonical_name()))
            }
        };
        return match ty {
            ContextType::Byte => ranged(IntKind::Byte, i8::MIN.into(), i8::MAX.into()),
            ContextType::Short => ranged(IntKind::Short, i16::MIN.into(), i16::MAX.into()),
            ContextType::Integer => ranged(IntKind::Integer, i32::MIN.into(), i32::MAX.into()),
            ContextType::Long => Ok(Value::Int(n, IntKind::Long)),
            ContextType::Double => Ok(Value::Double(n as f64)),
            ContextType::Float => Ok(Value::Float(n as f32)),
            _ => ty.convert(&n.to_string()).map_err(|d| format!("could not convert {n} to {}: {d}", ty.canonical_name())),
        };
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        let f = f.value();
        return match ty {
            ContextType::Double => Ok(Value::Double(f)),
            ContextType::Float => Ok(Value::Float(f as f32)),
            ContextType::String => Ok(Value::string(f.to_string().as_str())),
            _ => Err(format!("a float cannot be a {}", ty.canonical_name())),
        };
    }
    Err(format!("{} cannot be a {} (use str, int, float or bool)", type_name(value), ty.canonical_name()))
}

/// A value for a variable with no declared type: str, bool, int (Long) or float (Double).
fn native_value(value: &Bound<'_, PyAny>) -> Result<Value, String> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Value::string(s.to_str().map_err(|e| e.to_string())?));
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        return value.extract::<i64>().map(|n| Value::Int(n, IntKind::Long)).map_err(|_| "integer out of the 64-bit range".into());
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Ok(Value::Double(f.value()));
    }
    Err(format!("{} is not a str, int, float or bool", type_name(value)))
}

/// Identifiers straight from a context when no matrix is loaded yet (kind upper-cased).
pub fn identifiers_without_engine(context: &Bound<'_, PyAny>) -> Vec<(String, String)> {
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
