//! The context schema: Pipet's configuration of context variables and identifiers
//! (docs/proctor.md §6.6).
//!
//! A schema names the context variables rules may use (with their Java types, where a request
//! carries them and their defaults) and the identifier types a request may carry. The same JSON
//! document configures Pipet, so one file serves both.

use std::sync::Arc;

use indexmap::IndexMap;

use crate::java;
use crate::version::ReleaseVersion;
use crate::useragent::UserAgent;
use crate::value::{IntKind, Value};

/// The Java type of a context variable, as named in Pipet's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContextType {
    /// `byte`, `Byte`, `java.lang.Byte`
    Byte,
    /// `short`, `Short`, `java.lang.Short`
    Short,
    /// `int`, `Integer`, `java.lang.Integer`
    Integer,
    /// `long`, `Long`, `java.lang.Long`
    Long,
    /// `float`, `Float`, `java.lang.Float`
    Float,
    /// `double`, `Double`, `java.lang.Double`
    Double,
    /// `boolean`, `Boolean`, `java.lang.Boolean`
    Boolean,
    /// `char`, `Character`, `java.lang.Character`
    Character,
    /// `string`, `String`, `java.lang.String`
    String,
    /// `UserAgent`, `com.indeed.proctor.pipet.deploy.useragent.UserAgent`
    UserAgent,
    /// `ReleaseVersion`, `com.indeed.util.core.ReleaseVersion` (A vs B extension: Proctor
    /// applications declare it in their specifications, Pipet cannot convert it).
    ReleaseVersion,
}

/// The Pipet name of the user-agent type.
const USER_AGENT_CLASS: &str = "com.indeed.proctor.pipet.deploy.useragent.UserAgent";

impl ContextType {
    /// Every type, for listings.
    pub const ALL: [ContextType; 11] = [
        ContextType::Byte,
        ContextType::Short,
        ContextType::Integer,
        ContextType::Long,
        ContextType::Float,
        ContextType::Double,
        ContextType::Boolean,
        ContextType::Character,
        ContextType::String,
        ContextType::UserAgent,
        ContextType::ReleaseVersion,
    ];

    /// The type for a name in Pipet's configuration: the primitive name, the wrapper's simple
    /// name or its canonical name (`int`, `Integer`, `java.lang.Integer`).
    pub fn from_name(name: &str) -> Option<ContextType> {
        ContextType::ALL.into_iter().find(|ty| {
            let (primitive, simple) = ty.short_names();
            name == primitive || name == simple || name == ty.canonical_name()
        })
    }

    fn short_names(self) -> (&'static str, &'static str) {
        match self {
            ContextType::Byte => ("byte", "Byte"),
            ContextType::Short => ("short", "Short"),
            ContextType::Integer => ("int", "Integer"),
            ContextType::Long => ("long", "Long"),
            ContextType::Float => ("float", "Float"),
            ContextType::Double => ("double", "Double"),
            ContextType::Boolean => ("boolean", "Boolean"),
            ContextType::Character => ("char", "Character"),
            ContextType::String => ("string", "String"),
            ContextType::UserAgent => ("UserAgent", "UserAgent"),
            ContextType::ReleaseVersion => ("ReleaseVersion", "ReleaseVersion"),
        }
    }

    /// The Java canonical class name, as `/config/context` reports it.
    pub fn canonical_name(self) -> &'static str {
        match self {
            ContextType::Byte => "java.lang.Byte",
            ContextType::Short => "java.lang.Short",
            ContextType::Integer => "java.lang.Integer",
            ContextType::Long => "java.lang.Long",
            ContextType::Float => "java.lang.Float",
            ContextType::Double => "java.lang.Double",
            ContextType::Boolean => "java.lang.Boolean",
            ContextType::Character => "java.lang.Character",
            ContextType::String => "java.lang.String",
            ContextType::UserAgent => USER_AGENT_CLASS,
            ContextType::ReleaseVersion => "com.indeed.util.core.ReleaseVersion",
        }
    }

    /// Converts raw request text as Pipet's `ValueConverters` do. The error is the detail Pipet
    /// appends to its 400 message (`NumberFormatException`, or the character-length message).
    pub fn convert(self, raw: &str) -> Result<Value, String> {
        let number = |e: java::NumberFormatError| e.to_string();
        Ok(match self {
            ContextType::Byte => Value::Int(java::parse_byte(raw).map_err(number)?.into(), IntKind::Byte),
            ContextType::Short => Value::Int(java::parse_short(raw).map_err(number)?.into(), IntKind::Short),
            ContextType::Integer => Value::Int(java::parse_int(raw).map_err(number)?.into(), IntKind::Integer),
            ContextType::Long => Value::Int(java::parse_long(raw).map_err(number)?, IntKind::Long),
            ContextType::Float => Value::Float(java::parse_float(raw).map_err(number)?),
            ContextType::Double => Value::Double(java::parse_double(raw).map_err(number)?),
            ContextType::Boolean => Value::Bool(raw == "1" || java::parse_boolean(raw)),
            ContextType::Character => {
                let units = raw.encode_utf16().count();
                let mut chars = raw.chars();
                match (chars.next(), chars.next(), units) {
                    (Some(c), None, 1) => Value::Char(c),
                    _ => return Err(format!("Parameter was length {units} but expecting length 1.")),
                }
            }
            ContextType::String => Value::string(raw),
            ContextType::UserAgent => Value::UserAgent(Arc::new(UserAgent::parse(raw))),
            ContextType::ReleaseVersion => Value::Version(ReleaseVersion::parse(raw).map_err(|e| e.0)?),
        })
    }
}

/// Where a request carries a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A query parameter (`ctx.<key>` or `id.<key>`).
    Query,
    /// A request header (the key as is).
    Header,
}

impl Source {
    /// `QUERY` or `HEADER`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Query => "QUERY",
            Source::Header => "HEADER",
        }
    }
}

/// One configured context variable.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextVariable {
    /// Where the request carries it.
    pub source: Source,
    /// The parameter or header name (defaults to the variable name).
    pub source_key: String,
    /// Its Java type.
    pub ty: ContextType,
    /// The text used when the request lacks it; without one, the request is rejected.
    pub default_value: Option<String>,
}

impl ContextVariable {
    /// The effective parameter name: `ctx.<sourceKey>` for QUERY, the header name for HEADER.
    pub fn effective_key(&self) -> String {
        effective_key(self.source, "ctx.", &self.source_key)
    }
}

/// One configured identifier type.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentifierConfig {
    /// Where the request carries it.
    pub source: Source,
    /// The parameter or header name (defaults to the identifier type).
    pub source_key: String,
}

impl IdentifierConfig {
    /// The effective parameter name: `id.<sourceKey>` for QUERY, the header name for HEADER.
    pub fn effective_key(&self) -> String {
        effective_key(self.source, "id.", &self.source_key)
    }
}

fn effective_key(source: Source, prefix: &str, key: &str) -> String {
    match source {
        Source::Query => format!("{prefix}{key}"),
        Source::Header => key.to_string(),
    }
}

/// Proctor's six test types (docs/proctor.md §4). RANDOM takes no identifier.
pub const PROCTOR_TEST_TYPES: [&str; 6] = ["USER", "ACCOUNT", "EMAIL", "RANDOM", "PAGE", "COMPANY"];

/// A schema document that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SchemaError {
    /// Where in the document (`context.country.type`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Pipet's configuration: context variables and identifier types.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContextSchema {
    /// Context variables by name, in document order.
    pub variables: IndexMap<String, ContextVariable>,
    /// Identifier types by name (Proctor's names upper-cased), in document order.
    pub identifiers: IndexMap<String, IdentifierConfig>,
    /// Without a schema file: any variable name is accepted (typed only at run time) and
    /// requests may carry any identifier type.
    pub permissive: bool,
}

impl ContextSchema {
    /// The schema used when none is given: every variable allowed, Proctor's identifier types.
    pub fn permissive() -> ContextSchema {
        let identifiers = PROCTOR_TEST_TYPES
            .iter()
            .filter(|t| **t != "RANDOM")
            .map(|t| (t.to_string(), IdentifierConfig { source: Source::Query, source_key: t.to_string() }))
            .collect();
        ContextSchema { variables: IndexMap::new(), identifiers, permissive: true }
    }

    /// Reads Pipet's configuration JSON (comments allowed).
    pub fn from_json(text: &str) -> Result<ContextSchema, SchemaError> {
        let doc: serde_json::Value = crate::json::parse_lenient_json(text)
            .map_err(|message| SchemaError { path: "$".into(), message })?;
        Self::from_value(&doc)
    }

    /// Reads Pipet's configuration from parsed JSON.
    pub fn from_value(doc: &serde_json::Value) -> Result<ContextSchema, SchemaError> {
        let err = |path: String, message: String| SchemaError { path, message };
        let root = doc.as_object().ok_or_else(|| err("$".into(), "expected a JSON object".into()))?;
        let mut schema = ContextSchema::default();
        for (section, is_context) in [("context", true), ("identifiers", false)] {
            let entries = match root.get(section) {
                None | Some(serde_json::Value::Null) => continue,
                Some(serde_json::Value::Object(entries)) => entries,
                Some(_) => return Err(err(section.into(), "expected an object".into())),
            };
            for (name, config) in entries {
                let path = format!("{section}.{name}");
                let config = config.as_object().ok_or_else(|| err(path.clone(), "expected an object".into()))?;
                let text = |key: &str| -> Result<Option<String>, SchemaError> {
                    match config.get(key) {
                        None | Some(serde_json::Value::Null) => Ok(None),
                        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => Ok(Some(v.to_string())),
                        Some(_) => Err(err(format!("{path}.{key}"), "expected a string".into())),
                    }
                };
                let source = match text("source")?.as_deref() {
                    Some("QUERY") => Source::Query,
                    Some("HEADER") => Source::Header,
                    Some(other) => {
                        return Err(err(format!("{path}.source"), format!("unknown source '{other}': expected QUERY or HEADER")))
                    }
                    None => return Err(err(format!("{path}.source"), "missing: expected QUERY or HEADER".into())),
                };
                let source_key = text("sourceKey")?.unwrap_or_else(|| name.clone());
                if is_context {
                    let type_name = text("type")?.ok_or_else(|| err(format!("{path}.type"), "missing".into()))?;
                    let ty = ContextType::from_name(&type_name).ok_or_else(|| {
                        err(format!("{path}.type"), format!("unknown type '{type_name}'"))
                    })?;
                    let default_value = text("defaultValue")?;
                    if let Some(default) = &default_value {
                        ty.convert(default).map_err(|detail| {
                            err(format!("{path}.defaultValue"), format!("'{default}' is not a {}: {detail}", ty.canonical_name()))
                        })?;
                    }
                    schema.variables.insert(name.clone(), ContextVariable { source, source_key, ty, default_value });
                } else {
                    let type_name = canonical_identifier_type(name);
                    if type_name == "RANDOM" {
                        return Err(err(path, "RANDOM tests take no identifier".into()));
                    }
                    if schema.identifiers.contains_key(&type_name) {
                        return Err(err(path, format!("identifier type '{type_name}' is configured twice")));
                    }
                    schema.identifiers.insert(type_name, IdentifierConfig { source, source_key });
                }
            }
        }
        Ok(schema)
    }

    /// Adds an identifier type a request uses (permissive schemas only).
    pub fn allow_identifier_type(&mut self, name: &str) {
        let name = canonical_identifier_type(name);
        if name != "RANDOM" && !self.identifiers.contains_key(&name) {
            self.identifiers.insert(name.clone(), IdentifierConfig { source: Source::Query, source_key: name });
        }
    }

    /// Whether a test type can be used by tests under this schema.
    pub fn knows_test_type(&self, test_type: &str) -> bool {
        PROCTOR_TEST_TYPES.contains(&test_type) || self.identifiers.contains_key(test_type)
    }

    /// Pipet's `/config/context` answer.
    pub fn context_config_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for (name, var) in &self.variables {
            let mut entry = serde_json::Map::new();
            entry.insert("source".into(), var.source.name().into());
            entry.insert("sourceKey".into(), var.effective_key().into());
            entry.insert("type".into(), var.ty.canonical_name().into());
            if let Some(default) = &var.default_value {
                entry.insert("defaultValue".into(), default.clone().into());
            }
            out.insert(name.clone(), entry.into());
        }
        out.into()
    }

    /// Pipet's `/config/identifiers` answer.
    pub fn identifiers_config_json(&self) -> serde_json::Value {
        self.identifiers
            .iter()
            .map(|(name, id)| {
                (name.clone(), serde_json::json!({ "source": id.source.name(), "sourceKey": id.effective_key() }))
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// The schema as a configuration document (the inverse of [`ContextSchema::from_json`]).
    pub fn to_json(&self) -> serde_json::Value {
        let context: serde_json::Map<_, _> = self
            .variables
            .iter()
            .map(|(name, var)| {
                let mut entry = serde_json::json!({ "source": var.source.name(), "sourceKey": var.source_key, "type": var.ty.canonical_name() });
                if let (Some(default), Some(obj)) = (&var.default_value, entry.as_object_mut()) {
                    obj.insert("defaultValue".into(), default.clone().into());
                }
                (name.clone(), entry)
            })
            .collect();
        let identifiers: serde_json::Map<_, _> = self
            .identifiers
            .iter()
            .map(|(name, id)| (name.clone(), serde_json::json!({ "source": id.source.name(), "sourceKey": id.source_key })))
            .collect();
        serde_json::json!({ "context": context, "identifiers": identifiers })
    }
}

/// Pipet maps identifier configuration keys to test types by name, ignoring case; custom types
/// (our extension) keep the name they are declared with.
pub fn canonical_identifier_type(name: &str) -> String {
    PROCTOR_TEST_TYPES
        .iter()
        .find(|t| t.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_string(), |t| t.to_string())
}

/// A request Pipet would refuse, with its status and exact message (docs/proctor.md §6.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// The HTTP status Pipet answers with.
    pub status: u16,
    /// Pipet's message.
    pub message: String,
}

impl RequestError {
    fn bad(message: String) -> RequestError {
        RequestError { status: 400, message }
    }
}

impl ContextSchema {
    /// Converts a request's raw context as Pipet does: each configured variable from `raw`
    /// (looked up by variable name), else its default, else a 400; then converted by type.
    /// In a permissive schema, every raw value is kept as a String.
    pub fn convert_context<'a>(
        &self,
        raw: impl Fn(&str, &ContextVariable) -> Option<&'a str>,
        extra: &[(&str, &str)],
    ) -> Result<IndexMap<String, Value>, RequestError> {
        let mut out = IndexMap::with_capacity(self.variables.len() + extra.len());
        for (name, var) in &self.variables {
            let text = match raw(name, var).or(var.default_value.as_deref()) {
                Some(text) => text,
                None => {
                    return Err(RequestError::bad(format!(
                        "Required variable '{name}' not found by '{}:{}'. See the pipet configuration.",
                        var.source.name(),
                        var.effective_key()
                    )))
                }
            };
            let value = var.ty.convert(text).map_err(|detail| {
                RequestError::bad(format!(
                    "Could not convert raw value '{text}' to type '{}' for context variable '{name}': {detail}",
                    var.ty.canonical_name()
                ))
            })?;
            out.insert(name.clone(), value);
        }
        if self.permissive {
            for (name, text) in extra {
                if !self.variables.contains_key(*name) {
                    out.insert((*name).to_string(), Value::string(*text));
                }
            }
        }
        Ok(out)
    }

    /// Checks a request's identifiers as Pipet does: unknown types are ignored (or, in a
    /// permissive schema, accepted), and at least one configured type must be present.
    pub fn check_identifiers<'a>(
        &self,
        given: &'a [(String, String)],
    ) -> Result<Vec<(String, &'a str)>, RequestError> {
        let mut out: Vec<(String, &'a str)> = Vec::new();
        for (type_name, value) in given {
            let type_name = canonical_identifier_type(type_name);
            if type_name == "RANDOM" {
                return Err(RequestError { status: 500, message: "RANDOM tests take no identifier".into() });
            }
            if (self.permissive || self.identifiers.contains_key(&type_name))
                && !out.iter().any(|(t, _)| *t == type_name)
            {
                out.push((type_name, value.as_str()));
            }
        }
        if out.is_empty() {
            return Err(RequestError::bad("Request must have at least one identifier.".into()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPET_EXAMPLE: &str = r#"{
      "context": {
        "country":  { "source": "QUERY", "type": "String" },
        "loggedIn": { "source": "QUERY", "type": "boolean", "defaultValue": false },
        "userAgent":{ "source": "HEADER", "sourceKey": "User-Agent", "type": "UserAgent" }
      },
      "identifiers": {
        "USER":    { "source": "QUERY" },
        "account": { "source": "QUERY", "sourceKey": "acctid" }
      }
    }"#;

    #[test]
    fn reads_pipet_configuration() {
        let schema = ContextSchema::from_json(PIPET_EXAMPLE).unwrap();
        assert_eq!(schema.variables["loggedIn"].default_value.as_deref(), Some("false"));
        assert_eq!(schema.variables["country"].effective_key(), "ctx.country");
        assert_eq!(schema.variables["userAgent"].effective_key(), "User-Agent");
        assert_eq!(schema.identifiers["ACCOUNT"].effective_key(), "id.acctid");
        assert_eq!(
            schema.context_config_json()["loggedIn"],
            serde_json::json!({"source": "QUERY", "sourceKey": "ctx.loggedIn", "type": "java.lang.Boolean", "defaultValue": "false"})
        );
    }

    #[test]
    fn rejects_bad_configuration_with_its_path() {
        let e = ContextSchema::from_json(r#"{"context": {"age": {"source": "QUERY", "type": "Integr"}}}"#).unwrap_err();
        assert_eq!(e.to_string(), "context.age.type: unknown type 'Integr'");
        let e = ContextSchema::from_json(r#"{"context": {"age": {"source": "BODY", "type": "int"}}}"#).unwrap_err();
        assert_eq!(e.path, "context.age.source");
    }

    #[test]
    fn converts_like_pipet() {
        assert!(matches!(ContextType::Boolean.convert("1"), Ok(Value::Bool(true))));
        assert!(matches!(ContextType::Boolean.convert("True"), Ok(Value::Bool(true))));
        assert!(matches!(ContextType::Boolean.convert("yes"), Ok(Value::Bool(false))));
        assert_eq!(ContextType::Integer.convert("1.5").unwrap_err(), "NumberFormatException");
        assert_eq!(ContextType::Character.convert("ab").unwrap_err(), "Parameter was length 2 but expecting length 1.");
        assert!(matches!(ContextType::Double.convert(" 2.5d"), Ok(Value::Double(d)) if d == 2.5));
        assert!(matches!(ContextType::ReleaseVersion.convert("1.2.3.4"), Ok(Value::Version(_))));
        assert!(ContextType::ReleaseVersion.convert("1.2.3").is_err());
        assert_eq!(ContextType::from_name("com.indeed.util.core.ReleaseVersion"), Some(ContextType::ReleaseVersion));
    }

    #[test]
    fn request_errors_carry_pipets_messages() {
        let schema = ContextSchema::from_json(PIPET_EXAMPLE).unwrap();
        let e = schema.convert_context(|_, _| None, &[]).unwrap_err();
        assert_eq!(e.message, "Required variable 'country' not found by 'QUERY:ctx.country'. See the pipet configuration.");
        let e = schema
            .convert_context(|name, _| (name == "country").then_some("US"), &[])
            .unwrap_err();
        assert_eq!(e.message, "Required variable 'userAgent' not found by 'HEADER:User-Agent'. See the pipet configuration.");
        let e = schema.check_identifiers(&[("COMPANY".into(), "x".into())]).unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (400, "Request must have at least one identifier."));
        let given = [("user".to_string(), String::new())];
        let ids = schema.check_identifiers(&given).unwrap();
        assert_eq!(ids, vec![("USER".to_string(), "")]);
    }
}
