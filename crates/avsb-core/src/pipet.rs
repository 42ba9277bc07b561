//! Pipet's `/groups/identify` (docs/proctor.md §6.3) over raw request values: the one place that
//! turns text parameters into a request and an evaluation into Pipet's `data` object. The command
//! line and the server both use it, so they answer alike.

use std::borrow::Cow;

use crate::compile::CompiledMatrix;
use crate::force::ForceGroups;
use crate::json::write_json;
use crate::schema::{ContextSchema, RequestError, Source};

/// An identify request, with values already extracted from wherever they came.
#[derive(Debug, Clone, Default)]
pub struct IdentifyParams {
    /// Identifier type and raw value, in request order (the first of a type wins).
    pub identifiers: Vec<(String, String)>,
    /// Context variable name and raw text.
    pub context: Vec<(String, String)>,
    /// The `test` parameter: `None` when absent (every test), else the raw comma-separated list.
    pub tests: Option<String>,
    /// The `prforceGroups` parameter.
    pub force_groups: Option<String>,
    /// Honour payload forcing and default modes too (Pipet keeps only the test-to-bucket map).
    pub full_force: bool,
    /// The request time, for `proctor:now()`.
    pub now_millis: Option<i64>,
    /// A random number for RANDOM tests (Pipet always enables them).
    pub random_seed: Option<u64>,
}

impl IdentifyParams {
    /// Collects the context and identifiers a request carries, as the schema says where each
    /// comes from: `query` answers a query parameter (`ctx.country`, `id.acctid`), `header` a
    /// request header. The server reads its query string and headers; the Python package reads
    /// django-proctor's `get_context()`/`get_identifiers()` dicts, so both map alike.
    pub fn from_sources(
        schema: &ContextSchema,
        query: impl Fn(&str, &str) -> Option<String>,
        header: impl Fn(&str) -> Option<String>,
    ) -> IdentifyParams {
        let mut params = IdentifyParams::default();
        for (name, var) in &schema.variables {
            let raw = match var.source {
                Source::Query => query("ctx.", &var.source_key),
                Source::Header => header(&var.source_key),
            };
            if let Some(raw) = raw {
                params.context.push((name.clone(), raw));
            }
        }
        for (type_name, config) in &schema.identifiers {
            let raw = match config.source {
                Source::Query => query("id.", &config.source_key),
                Source::Header => header(&config.source_key),
            };
            if let Some(raw) = raw {
                params.identifiers.push((type_name.clone(), raw));
            }
        }
        params
    }
}

/// Splits the `test` parameter as Guava's trimming, empty-dropping splitter does.
pub fn split_test_names(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Answers `/groups/identify`: Pipet's `data` object (`groups`, `context`, `audit`), or the
/// status and message Pipet would refuse the request with.
pub fn identify(matrix: &CompiledMatrix, params: &IdentifyParams) -> Result<serde_json::Value, RequestError> {
    identify_explained(matrix, params).map(|(data, _)| data)
}

/// Like [`identify`], plus how each evaluated test's result was reached, sorted by test name.
pub fn identify_explained(
    matrix: &CompiledMatrix,
    params: &IdentifyParams,
) -> Result<(serde_json::Value, Vec<(String, serde_json::Value)>), RequestError> {
    with_request(matrix, params, |request, context| {
        let evaluation = matrix.evaluate(request);
        let context_json: serde_json::Map<String, serde_json::Value> =
            context.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
        let data = serde_json::json!({
            "groups": evaluation.groups_json(),
            "context": context_json,
            "audit": matrix.audit().to_json(),
        });
        let reasons = evaluation.results.iter().map(|a| (a.test.to_string(), a.reason.to_json())).collect();
        (data, reasons)
    })
}

/// Writes the same `data` object as [`identify`] straight into `out` as JSON text, without
/// building a JSON tree: the server's hot path.
pub fn identify_to(matrix: &CompiledMatrix, params: &IdentifyParams, out: &mut Vec<u8>) -> Result<(), RequestError> {
    identify_to_observed(matrix, params, out, |_, _| {})
}

/// [`identify_to`], handing the evaluation and the request to `observe` (the server records
/// exposures from them) before writing.
pub fn identify_to_observed(
    matrix: &CompiledMatrix,
    params: &IdentifyParams,
    out: &mut Vec<u8>,
    observe: impl FnOnce(&crate::eval::Evaluation<'_>, &crate::eval::Request<'_>),
) -> Result<(), RequestError> {
    with_request(matrix, params, |request, context| {
        let evaluation = matrix.evaluate(request);
        observe(&evaluation, request);
        out.extend_from_slice(b"{\"groups\":");
        evaluation.write_groups(out);
        out.extend_from_slice(b",\"context\":{");
        for (i, (name, value)) in context.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json(out, name);
            out.push(b':');
            write_json(out, &value.to_json());
        }
        out.extend_from_slice(b"},\"audit\":");
        out.extend_from_slice(matrix.audit_json_text().as_bytes());
        out.push(b'}');
    })
}

/// Converts the raw parameters into a request (with Pipet's errors) and hands it, with the
/// converted context, to `f`.
pub fn with_request<R>(
    matrix: &CompiledMatrix,
    params: &IdentifyParams,
    f: impl FnOnce(&crate::eval::Request<'_>, &indexmap::IndexMap<String, crate::value::Value>) -> R,
) -> Result<R, RequestError> {
    let schema = matrix.schema();
    let raw_context: Vec<(&str, &str)> = params.context.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let context = schema.convert_context(
        |name, _| raw_context.iter().find(|(k, _)| *k == name).map(|(_, v)| *v),
        &raw_context,
    )?;
    let identifiers = schema.check_identifiers(&params.identifiers)?;
    let force = params.force_groups.as_deref().map(|f| {
        if params.full_force {
            ForceGroups::parse(f)
        } else {
            ForceGroups::parse_pipet(f)
        }
    });
    let mut request = matrix.request();
    for (type_name, value) in &identifiers {
        if let Some(slot) = matrix.identifier_slot(type_name) {
            request.identifiers[slot] = Some(Cow::Borrowed(value));
        }
    }
    for (name, value) in &context {
        if let Some(slot) = matrix.variable_slot(name) {
            request.context[slot] = Some(value.clone());
        }
    }
    request.force = force.as_ref().filter(|f| !f.is_empty());
    request.tests = params.tests.as_deref().map(split_test_names);
    request.now_millis = params.now_millis;
    request.random_seed = params.random_seed;
    Ok(f(&request, &context))
}
