//! A metric: what a project measures in its experiments, from the events `track()` sends.
//!
//! The definition is stored as JSON (the `metrics` table's `definition`) and read back through
//! [`MetricDefinition`]; [`MetricDefinition::check`] is the one place a definition is
//! validated, for the admin API, the console form and the command line alike.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ops::{WriteError, WriteResult};

/// The longest metric name.
pub const MAX_NAME: usize = 100;
/// The longest description.
pub const MAX_DESCRIPTION: usize = 2000;
/// The longest event key (as `POST /sdk/v1/events` accepts).
pub const MAX_EVENT: usize = 256;
/// The longest conversion window, in hours (a year).
pub const MAX_WINDOW_HOURS: f64 = 24.0 * 366.0;

/// What a metric computes per unit, and how units are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    /// The share of units with at least one such event after their first exposure.
    Conversion,
    /// The mean per unit of the summed `value`s (units without events count as 0; an event
    /// without a value counts as 0).
    Mean,
    /// Events per unit.
    Count,
    /// The event's summed values over the denominator's (count or sum), per variant, analysed
    /// with the delta method.
    Ratio,
}

/// Whether a rise is good news.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A higher value is better (conversions, revenue).
    #[default]
    Higher,
    /// A lower value is better (errors, latency, refunds).
    Lower,
}

/// How a per-unit figure is taken from a unit's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// How many events.
    Count,
    /// The sum of their values.
    Sum,
}

/// A ratio metric's denominator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Denominator {
    /// The event key counted or summed (`order`).
    pub event: String,
    /// `count` (orders) or `sum` (of their values).
    pub aggregate: Aggregate,
}

/// Winsorising: per-unit values above the cap are counted as the cap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Capping {
    /// A fixed cap (`{"type": "absolute", "value": 500}`).
    Absolute(f64),
    /// The given quantile of the experiment's per-unit values, from 0.5 to 1 exclusive
    /// (`{"type": "percentile", "value": 0.99}`).
    Percentile(f64),
}

/// A metric as defined by people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricDefinition {
    /// A display name (`Purchase rate`).
    pub name: String,
    /// What it means, for people reading results.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The event key it counts: what `track('purchase', value=...)` sends.
    pub event: String,
    /// `conversion`, `mean`, `count` or `ratio`.
    #[serde(rename = "type")]
    pub metric_type: MetricType,
    /// A ratio's denominator; required for `ratio`, refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<Denominator>,
    /// Whether higher or lower is better. Default `higher`.
    #[serde(default)]
    pub direction: Direction,
    /// Only events within this many hours after a unit's first exposure count. Default: all
    /// events after the first exposure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_hours: Option<f64>,
    /// A guardrail: a metric that must not get worse, shown apart from the goals.
    #[serde(default)]
    pub guardrail: bool,
    /// Winsorising of per-unit values (`mean`, `count` and `ratio` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capping: Option<Capping>,
}

fn field(name: &str, message: impl Into<String>) -> WriteError {
    WriteError::field(ErrorCode::InvalidField, name, message)
}

fn check_event(name: &str, event: &str) -> WriteResult<()> {
    if event.trim().is_empty() {
        return Err(field(name, format!("{name}: the event key must not be empty")));
    }
    if event.len() > MAX_EVENT {
        return Err(field(name, format!("{name}: the event key is {} bytes long; the limit is {MAX_EVENT}", event.len())));
    }
    Ok(())
}

impl MetricDefinition {
    /// Refuses a definition that cannot be analysed, naming the field.
    pub fn check(&self) -> WriteResult<()> {
        let name = self.name.trim();
        if name.is_empty() || self.name.len() > MAX_NAME {
            return Err(field("name", format!("name: must be 1 to {MAX_NAME} bytes and not blank")));
        }
        if self.description.len() > MAX_DESCRIPTION {
            return Err(field("description", format!("description: at most {MAX_DESCRIPTION} bytes")));
        }
        check_event("event", &self.event)?;
        match (&self.metric_type, &self.denominator) {
            (MetricType::Ratio, None) => {
                return Err(field("denominator", "denominator: a ratio metric needs one ({\"event\": ..., \"aggregate\": \"count\" or \"sum\"})"))
            }
            (MetricType::Ratio, Some(d)) => check_event("denominator.event", &d.event)?,
            (_, Some(_)) => return Err(field("denominator", "denominator: only a ratio metric has one")),
            (_, None) => {}
        }
        if let Some(hours) = self.window_hours {
            if !(hours.is_finite() && hours > 0.0 && hours <= MAX_WINDOW_HOURS) {
                return Err(field("windowHours", format!("windowHours: must be more than 0 and at most {MAX_WINDOW_HOURS}")));
            }
        }
        match self.capping {
            Some(_) if self.metric_type == MetricType::Conversion => {
                Err(field("capping", "capping: a conversion metric is 0 or 1 per unit and has nothing to cap"))
            }
            Some(Capping::Absolute(cap)) if !(cap.is_finite() && cap > 0.0) => {
                Err(field("capping.value", "capping.value: an absolute cap must be a number above 0"))
            }
            Some(Capping::Percentile(q)) if !(q.is_finite() && (0.5..1.0).contains(&q)) => {
                Err(field("capping.value", "capping.value: a percentile cap must be at least 0.5 and below 1 (0.99 is the 99th percentile)"))
            }
            _ => Ok(()),
        }
    }

    /// The event keys whose events this metric reads.
    pub fn events(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.event.as_str()).chain(self.denominator.as_ref().map(|d| d.event.as_str()))
    }

    /// The definition as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored definition.
    pub fn from_json(text: &str) -> Result<MetricDefinition, String> {
        serde_json::from_str(text).map_err(|e| format!("a stored metric definition does not read: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(json: &str) -> Result<MetricDefinition, String> {
        let m: MetricDefinition = serde_json::from_str(json).map_err(|e| e.to_string())?;
        m.check().map_err(|e| e.to_string())?;
        Ok(m)
    }

    #[test]
    fn a_ratio_needs_a_denominator_and_only_a_ratio_has_one() {
        assert!(metric(r#"{"name": "AOV", "event": "purchase", "type": "ratio"}"#).unwrap_err().contains("denominator"));
        let d = r#""denominator": {"event": "order", "aggregate": "count"}"#;
        assert!(metric(&format!(r#"{{"name": "AOV", "event": "purchase", "type": "ratio", {d}}}"#)).is_ok());
        assert!(metric(&format!(r#"{{"name": "x", "event": "purchase", "type": "mean", {d}}}"#)).unwrap_err().contains("only a ratio"));
    }

    #[test]
    fn capping_is_checked_and_round_trips() {
        let m = metric(r#"{"name": "Revenue", "event": "purchase", "type": "mean", "capping": {"type": "percentile", "value": 0.99}}"#)
            .unwrap();
        assert_eq!(MetricDefinition::from_json(&m.to_json()).unwrap(), m);
        assert!(metric(r#"{"name": "R", "event": "p", "type": "mean", "capping": {"type": "percentile", "value": 99}}"#)
            .unwrap_err()
            .contains("below 1"));
        assert!(metric(r#"{"name": "R", "event": "p", "type": "conversion", "capping": {"type": "absolute", "value": 9}}"#)
            .unwrap_err()
            .contains("nothing to cap"));
    }

    #[test]
    fn unknown_fields_and_bad_windows_are_refused() {
        assert!(metric(r#"{"name": "R", "event": "p", "type": "mean", "windw": 3}"#).unwrap_err().contains("windw"));
        assert!(metric(r#"{"name": "R", "event": "p", "type": "mean", "windowHours": 0}"#).unwrap_err().contains("windowHours"));
        assert!(metric(r#"{"name": " ", "event": "p", "type": "count"}"#).unwrap_err().contains("name"));
    }
}
