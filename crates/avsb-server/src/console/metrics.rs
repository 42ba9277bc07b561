//! A project's metrics: the list (everyone), the form that creates or changes one and the
//! deletion with the metric's key typed (editors). A definition is checked by
//! `MetricDefinition::check`, the same as the admin API's, and its refusals are shown beside
//! the fields they name.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use super::charts::number;
use super::format::url_component;
use super::pages::project_access;
use super::session::SignedForm;
use super::{field_error, render, render_status, ConsoleError, Layout, PageResult, Signed};
use crate::error::ErrorCode;
use crate::ops::metrics::Metric;
use crate::ops::WriteError;
use crate::results::metric::{Aggregate, Capping, Denominator, Direction, MetricDefinition, MetricType};
use crate::store::{Project, ProjectRole};
use crate::SharedState;

/// The project, checked: the user may see it, and may change its metrics when `write`.
async fn metrics_access(state: &SharedState, signed: &Signed, key: &str, write: bool) -> Result<(Project, ProjectRole), ConsoleError> {
    let (project, role) = project_access(state, signed, key).await?;
    if write && role < ProjectRole::Editor {
        return Err(ConsoleError::Forbidden(format!(
            "Only the editors and admins of project '{}' may change its metrics; you are a {}.",
            project.key,
            role.as_str()
        )));
    }
    Ok((project, role))
}

fn list_url(project: &str) -> String {
    format!("/projects/{}/metrics", url_component(project))
}

fn metric_url(project: &str, metric: &str) -> String {
    format!("/projects/{}/metrics/{}", url_component(project), url_component(metric))
}

// ---------------------------------------------------------------------------------------------
// The list

#[derive(Template)]
#[template(path = "metrics.html")]
struct MetricsPage {
    layout: Layout,
    project: String,
    can_edit: bool,
    rows: Vec<MetricRow>,
    notice: Option<String>,
}

struct MetricRow {
    key: String,
    name: String,
    description: String,
    event: String,
    kind: String,
    direction: &'static str,
    window: String,
    guardrail: bool,
    capping: String,
    href: String,
}

/// `?saved=<key>` or `?deleted=<key>`: the notice after a change.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    saved: Option<String>,
    deleted: Option<String>,
}

fn kind_words(d: &MetricDefinition) -> String {
    match (&d.metric_type, &d.denominator) {
        (MetricType::Ratio, Some(den)) => {
            let aggregate = if den.aggregate == Aggregate::Sum { "sum of" } else { "count of" };
            format!("ratio: sum of {} over {aggregate} {}", d.event, den.event)
        }
        (MetricType::Conversion, _) => "conversion".into(),
        (MetricType::Mean, _) => "mean (sum of values per unit)".into(),
        (MetricType::Count, _) => "count (events per unit)".into(),
        (MetricType::Ratio, None) => "ratio".into(),
    }
}

fn capping_words(c: Option<Capping>) -> String {
    match c {
        None => "—".into(),
        Some(Capping::Absolute(v)) => format!("at {}", number(v)),
        Some(Capping::Percentile(q)) => format!("at the {} percentile", ordinal(q * 100.0)),
    }
}

/// `99th`, `99.5th`, `92nd`.
fn ordinal(p: f64) -> String {
    let text = format!("{:.2}", p).trim_end_matches('0').trim_end_matches('.').to_string();
    let suffix = if text.contains('.') {
        "th"
    } else {
        match (p.round() as i64 % 100, p.round() as i64 % 10) {
            (11..=13, _) => "th",
            (_, 1) => "st",
            (_, 2) => "nd",
            (_, 3) => "rd",
            _ => "th",
        }
    };
    format!("{text}{suffix}")
}

fn hours(h: Option<f64>) -> String {
    h.map_or_else(|| "any time after exposure".into(), |h| format!("{} h", number(h).trim_end_matches(".00")))
}

fn row(project: &str, m: Metric) -> MetricRow {
    let d = m.definition;
    MetricRow {
        href: metric_url(project, &m.key),
        kind: kind_words(&d),
        direction: if d.direction == Direction::Lower { "lower is better" } else { "higher is better" },
        window: hours(d.window_hours),
        guardrail: d.guardrail,
        capping: capping_words(d.capping),
        key: m.key,
        name: d.name,
        description: d.description,
        event: d.event,
    }
}

/// `GET /projects/{project}/metrics`.
pub async fn list(State(state): State<SharedState>, signed: Signed, Path(key): Path<String>, Query(q): Query<ListQuery>) -> PageResult {
    let (project, role) = metrics_access(&state, &signed, &key, false).await?;
    let rows = state.metrics(&project.key).await?.into_iter().map(|m| row(&project.key, m)).collect();
    let notice = match (q.saved, q.deleted) {
        (Some(k), _) => Some(format!("Saved the metric '{k}'. Results use it from now on.")),
        (None, Some(k)) => Some(format!("Deleted the metric '{k}'. Its events are kept.")),
        (None, None) => None,
    };
    render(&MetricsPage {
        layout: Layout::new("Metrics", &signed).in_project(&project, "metrics"),
        project: project.key.clone(),
        can_edit: role >= ProjectRole::Editor,
        rows,
        notice,
    })
}

// ---------------------------------------------------------------------------------------------
// The form

/// The form's fields as text, as typed.
#[derive(Debug, Clone)]
struct MetricForm {
    key: String,
    name: String,
    description: String,
    event: String,
    metric_type: String,
    denominator_event: String,
    denominator_aggregate: String,
    direction: String,
    window_hours: String,
    guardrail: bool,
    capping_type: String,
    capping_value: String,
}

impl Default for MetricForm {
    fn default() -> Self {
        MetricForm {
            key: String::new(),
            name: String::new(),
            description: String::new(),
            event: String::new(),
            metric_type: "conversion".into(),
            denominator_event: String::new(),
            denominator_aggregate: "count".into(),
            direction: "higher".into(),
            window_hours: String::new(),
            guardrail: false,
            capping_type: "none".into(),
            capping_value: String::new(),
        }
    }
}

impl MetricForm {
    fn of(m: &Metric) -> MetricForm {
        let d = &m.definition;
        let (capping_type, capping_value) = match d.capping {
            None => ("none", String::new()),
            Some(Capping::Absolute(v)) => ("absolute", v.to_string()),
            Some(Capping::Percentile(q)) => ("percentile", q.to_string()),
        };
        MetricForm {
            key: m.key.clone(),
            name: d.name.clone(),
            description: d.description.clone(),
            event: d.event.clone(),
            metric_type: type_value(d.metric_type).into(),
            denominator_event: d.denominator.as_ref().map(|x| x.event.clone()).unwrap_or_default(),
            denominator_aggregate: if d.denominator.as_ref().is_some_and(|x| x.aggregate == Aggregate::Sum) { "sum" } else { "count" }.into(),
            direction: if d.direction == Direction::Lower { "lower" } else { "higher" }.into(),
            window_hours: d.window_hours.map(|h| h.to_string()).unwrap_or_default(),
            guardrail: d.guardrail,
            capping_type: capping_type.into(),
            capping_value,
        }
    }

    fn read(form: &SignedForm) -> MetricForm {
        MetricForm {
            key: form.text("key").trim().to_string(),
            name: form.text("name"),
            description: form.text("description"),
            event: form.text("event").trim().to_string(),
            metric_type: form.text("type"),
            denominator_event: form.text("denominator_event").trim().to_string(),
            denominator_aggregate: form.text("denominator_aggregate"),
            direction: form.text("direction"),
            window_hours: form.text("window_hours").trim().to_string(),
            guardrail: form.get("guardrail").is_some(),
            capping_type: form.text("capping_type"),
            capping_value: form.text("capping_value").trim().to_string(),
        }
    }

    /// The definition, or what is wrong with the fields as typed (by field id). The rules of a
    /// definition are `MetricDefinition::check`'s, applied afterwards.
    fn definition(&self) -> Result<MetricDefinition, Vec<(String, String)>> {
        let mut errors = Vec::new();
        // Every empty required field at once (GOV.UK lists them all); the definition's own
        // rules, which stop at the first problem, come after.
        let required = [
            ("key", &self.key, "Enter a key, such as purchase-rate"),
            ("name", &self.name, "Enter a name, such as Purchase rate"),
            ("event", &self.event, "Enter the event key your app tracks, such as purchase"),
        ];
        for (id, value, message) in required {
            if value.trim().is_empty() {
                errors.push((id.to_string(), message.to_string()));
            }
        }
        let metric_type = match self.metric_type.as_str() {
            "conversion" => MetricType::Conversion,
            "mean" => MetricType::Mean,
            "count" => MetricType::Count,
            "ratio" => MetricType::Ratio,
            _ => {
                errors.push(("type".into(), "Choose what the metric computes: conversion, mean, count or ratio".into()));
                MetricType::Conversion
            }
        };
        let window_hours = match self.window_hours.as_str() {
            "" => None,
            text => match text.parse::<f64>() {
                Ok(h) => Some(h),
                Err(_) => {
                    errors.push(("window-hours".into(), "Enter the window as a number of hours, such as 72, or leave it empty".into()));
                    None
                }
            },
        };
        let capping = match self.capping_type.as_str() {
            "" | "none" => None,
            kind => match self.capping_value.parse::<f64>() {
                Ok(v) if kind == "absolute" => Some(Capping::Absolute(v)),
                Ok(v) => Some(Capping::Percentile(v)),
                Err(_) => {
                    let example = if kind == "absolute" { "500" } else { "0.99" };
                    errors.push(("capping-value".into(), format!("Enter the cap as a number, such as {example}")));
                    None
                }
            },
        };
        if metric_type == MetricType::Ratio && self.denominator_event.is_empty() {
            errors.push(("denominator-event".into(), "Enter the event to divide by: a ratio metric needs one".into()));
        }
        // A denominator only for a ratio: the fields stay in the form for the other types.
        let denominator = (metric_type == MetricType::Ratio).then(|| Denominator {
            event: self.denominator_event.clone(),
            aggregate: if self.denominator_aggregate == "sum" { Aggregate::Sum } else { Aggregate::Count },
        });
        if !errors.is_empty() {
            // In the form's order, as the summary lists them.
            let order = ["key", "name", "description", "event", "type", "denominator-event", "window-hours", "capping-type", "capping-value"];
            errors.sort_by_key(|(field, _)| order.iter().position(|f| f == field));
            return Err(errors);
        }
        Ok(MetricDefinition {
            name: self.name.trim().to_string(),
            description: self.description.trim().to_string(),
            event: self.event.clone(),
            metric_type,
            denominator,
            direction: if self.direction == "lower" { Direction::Lower } else { Direction::Higher },
            window_hours,
            guardrail: self.guardrail,
            capping,
        })
    }
}

fn type_value(t: MetricType) -> &'static str {
    match t {
        MetricType::Conversion => "conversion",
        MetricType::Mean => "mean",
        MetricType::Count => "count",
        MetricType::Ratio => "ratio",
    }
}

/// The form field a definition's field name (as `MetricDefinition::check` names it) is typed
/// in, and the field's label.
fn form_field(field: &str) -> (&'static str, &'static str) {
    match field {
        "name" => ("name", "Name"),
        "description" => ("description", "Description"),
        "event" => ("event", "Event"),
        "denominator" | "denominator.event" => ("denominator-event", "Denominator event"),
        "windowHours" => ("window-hours", "Window"),
        "capping" => ("capping-type", "Capping"),
        "capping.value" => ("capping-value", "Cap"),
        _ => ("key", "Key"),
    }
}

/// A refusal of the operations as the field it names and a sentence for people: the
/// definition's field name at the start of the message is replaced by the field's label.
fn field_message(error: WriteError, key: &str) -> Result<(String, String), ConsoleError> {
    match error {
        WriteError::Refused { at: Some((_, field)), message, .. } => {
            let (id, label) = form_field(&field);
            let text = message.strip_prefix(&format!("{field}: ")).unwrap_or(&message);
            Ok((id.to_string(), format!("{label}: {text}")))
        }
        WriteError::Refused { code: ErrorCode::InvalidKey, .. } => Ok((
            "key".into(),
            "Key: use 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or digit, such as purchase-rate".into(),
        )),
        WriteError::Duplicate(_) => Ok(("key".into(), format!("Key: there is a metric '{key}' already; choose another key, or edit that one"))),
        other => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "metric_form.html")]
struct MetricFormPage {
    layout: Layout,
    project: String,
    /// Changing an existing metric (its key is fixed).
    editing: bool,
    action: String,
    form: MetricForm,
    errors: Vec<(String, String)>,
}

impl MetricFormPage {
    fn error(&self, field: &str) -> Option<&str> {
        field_error(&self.errors, field)
    }

    fn list_url(&self) -> String {
        list_url(&self.project)
    }

    fn types(&self) -> &'static [(&'static str, &'static str, &'static str)] {
        &[
            ("conversion", "Conversion", "the share of units with at least one such event after their first exposure"),
            ("mean", "Mean", "the sum of the events' values per unit (no event: 0)"),
            ("count", "Count", "the number of events per unit"),
            ("ratio", "Ratio", "the sum of the events' values over another event's count or sum, e.g. revenue per order"),
        ]
    }
}

fn form_page(signed: &Signed, project: &Project, editing: bool, form: MetricForm, errors: Vec<(String, String)>) -> PageResult {
    let title = if editing { format!("Metric {}", form.key) } else { "New metric".to_string() };
    let action = if editing { format!("{}/edit", metric_url(&project.key, &form.key)) } else { list_url(&project.key) };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render_status(
        status,
        &MetricFormPage {
            layout: Layout::new(title, signed).in_project(project, "metrics").with_errors(!errors.is_empty()),
            project: project.key.clone(),
            editing,
            action,
            form,
            errors,
        },
    )
}

/// `GET /projects/{project}/metrics/new`.
pub async fn new_page(State(state): State<SharedState>, signed: Signed, Path(key): Path<String>) -> PageResult {
    let (project, _) = metrics_access(&state, &signed, &key, true).await?;
    form_page(&signed, &project, false, MetricForm::default(), Vec::new())
}

/// `POST /projects/{project}/metrics`: creates a metric.
pub async fn create(State(state): State<SharedState>, Path(key): Path<String>, form: SignedForm) -> PageResult {
    let (project, _) = metrics_access(&state, &form.signed, &key, true).await?;
    let fields = MetricForm::read(&form);
    let definition = match fields.definition() {
        Ok(d) => d,
        Err(errors) => return form_page(&form.signed, &project, false, fields, errors),
    };
    match state.create_metric(&project.key, &fields.key, &definition, &form.signed.user.username).await {
        Ok(m) => Ok(Redirect::to(&format!("{}?saved={}", list_url(&project.key), url_component(&m.key))).into_response()),
        Err(e) => {
            let error = field_message(e, &fields.key)?;
            form_page(&form.signed, &project, false, fields, vec![error])
        }
    }
}

/// `GET /projects/{project}/metrics/{metric}/edit`.
pub async fn edit_page(State(state): State<SharedState>, signed: Signed, Path((key, metric)): Path<(String, String)>) -> PageResult {
    let (project, _) = metrics_access(&state, &signed, &key, true).await?;
    let m = state.metric(&project.key, &metric).await?;
    form_page(&signed, &project, true, MetricForm::of(&m), Vec::new())
}

/// `POST /projects/{project}/metrics/{metric}/edit`: replaces the metric's definition.
pub async fn update(State(state): State<SharedState>, Path((key, metric)): Path<(String, String)>, form: SignedForm) -> PageResult {
    let (project, _) = metrics_access(&state, &form.signed, &key, true).await?;
    let existing = state.metric(&project.key, &metric).await?;
    let mut fields = MetricForm::read(&form);
    fields.key = existing.key;
    let definition = match fields.definition() {
        Ok(d) => d,
        Err(errors) => return form_page(&form.signed, &project, true, fields, errors),
    };
    match state.update_metric(&project.key, &fields.key, &definition, &form.signed.user.username).await {
        Ok(m) => Ok(Redirect::to(&format!("{}?saved={}", list_url(&project.key), url_component(&m.key))).into_response()),
        Err(e) => {
            let error = field_message(e, &fields.key)?;
            form_page(&form.signed, &project, true, fields, vec![error])
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deletion

#[derive(Template)]
#[template(path = "metric_delete.html")]
struct DeletePage {
    layout: Layout,
    project: String,
    key: String,
    name: String,
    action: String,
    back: String,
    error: Option<String>,
}

fn delete_page_for(signed: &Signed, project: &Project, m: &Metric, error: Option<String>) -> PageResult {
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    render_status(
        status,
        &DeletePage {
            layout: Layout::new(format!("Delete metric {}", m.key), signed).in_project(project, "metrics").with_errors(error.is_some()),
            project: project.key.clone(),
            key: m.key.clone(),
            name: m.definition.name.clone(),
            action: format!("{}/delete", metric_url(&project.key, &m.key)),
            back: list_url(&project.key),
            error,
        },
    )
}

/// `GET /projects/{project}/metrics/{metric}/delete`: type the metric's key.
pub async fn delete_page(State(state): State<SharedState>, signed: Signed, Path((key, metric)): Path<(String, String)>) -> PageResult {
    let (project, _) = metrics_access(&state, &signed, &key, true).await?;
    let m = state.metric(&project.key, &metric).await?;
    delete_page_for(&signed, &project, &m, None)
}

/// `POST /projects/{project}/metrics/{metric}/delete`: `confirm` must be the key.
pub async fn delete(State(state): State<SharedState>, Path((key, metric)): Path<(String, String)>, form: SignedForm) -> PageResult {
    let (project, _) = metrics_access(&state, &form.signed, &key, true).await?;
    let m = state.metric(&project.key, &metric).await?;
    if form.text("confirm").trim() != m.key {
        return delete_page_for(&form.signed, &project, &m, Some(format!("Type '{}' to confirm", m.key)));
    }
    state.delete_metric(&project.key, &m.key, &form.signed.user.username).await?;
    Ok(Redirect::to(&format!("{}?deleted={}", list_url(&project.key), url_component(&m.key))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_read_as_ordinals() {
        assert_eq!(ordinal(99.0), "99th");
        assert_eq!(ordinal(92.0), "92nd");
        assert_eq!(ordinal(91.0), "91st");
        assert_eq!(ordinal(99.5), "99.5th");
        assert_eq!(capping_words(Some(Capping::Percentile(0.99))), "at the 99th percentile");
    }

    #[test]
    fn a_ratios_denominator_is_only_sent_for_a_ratio() {
        let mut form = MetricForm { key: "aov".into(), name: "AOV".into(), event: "purchase".into(), denominator_event: "order".into(), ..MetricForm::default() };
        assert_eq!(form.definition().unwrap().denominator, None);
        form.metric_type = "ratio".into();
        assert_eq!(form.definition().unwrap().denominator.map(|d| d.event), Some("order".into()));
        form.window_hours = "three days".into();
        assert_eq!(form.definition().unwrap_err()[0].0, "window-hours");
    }

    #[test]
    fn every_empty_required_field_is_named_at_once() {
        let form = MetricForm { metric_type: "ratio".into(), ..MetricForm::default() };
        let fields: Vec<String> = form.definition().unwrap_err().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["key", "name", "event", "denominator-event"]);
    }
}
