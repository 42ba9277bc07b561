//! A project's metrics: create, change, delete, list. Every change is audited.

use serde_json::json;

use super::accounts::audit;
use super::{check_key, WriteError, WriteResult};
use crate::results::metric::MetricDefinition;
use crate::store::MetricRecord;
use crate::AppState;

/// A metric with its key, as the API and the console show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    /// Its key in URLs (`purchase-rate`).
    pub key: String,
    /// The definition.
    #[serde(flatten)]
    pub definition: MetricDefinition,
    /// Creation time, epoch milliseconds.
    pub created_at: i64,
    /// Last change, epoch milliseconds.
    pub updated_at: i64,
}

impl Metric {
    /// A stored metric, read.
    pub fn from_record(record: MetricRecord) -> WriteResult<Metric> {
        let definition = MetricDefinition::from_json(&record.definition).map_err(WriteError::internal)?;
        Ok(Metric { key: record.key, definition, created_at: record.created_at, updated_at: record.updated_at })
    }
}

impl AppState {
    /// A project's metrics, by key.
    pub async fn metrics(&self, project: &str) -> WriteResult<Vec<Metric>> {
        let project = self.project(project).await?;
        self.store.list_metrics(project.id).await?.into_iter().map(Metric::from_record).collect()
    }

    /// One metric.
    pub async fn metric(&self, project: &str, key: &str) -> WriteResult<Metric> {
        self.metrics(project)
            .await?
            .into_iter()
            .find(|m| m.key == key)
            .ok_or_else(|| WriteError::NotFound(format!("no metric '{key}' in project '{project}'")))
    }

    /// Creates a metric.
    pub async fn create_metric(&self, project: &str, key: &str, definition: &MetricDefinition, actor: &str)
        -> WriteResult<Metric> {
        check_key("metric key", key)?;
        definition.check()?;
        let project = self.project(project).await?;
        let record = self.store.create_metric(project.id, key, &definition.to_json()).await.map_err(|e| match e {
            crate::store::StoreError::Duplicate(_) => WriteError::Duplicate(format!("metric '{key}'")),
            other => other.into(),
        })?;
        audit(&*self.store, actor, "metric.create", Some(project.id), key, json!({"definition": definition})).await;
        Metric::from_record(record)
    }

    /// Replaces a metric's definition.
    pub async fn update_metric(&self, project: &str, key: &str, definition: &MetricDefinition, actor: &str)
        -> WriteResult<Metric> {
        definition.check()?;
        let project_row = self.project(project).await?;
        let record = self
            .store
            .update_metric(project_row.id, key, &definition.to_json())
            .await?
            .ok_or_else(|| WriteError::NotFound(format!("no metric '{key}' in project '{project}'")))?;
        audit(&*self.store, actor, "metric.update", Some(project_row.id), key, json!({"definition": definition})).await;
        Metric::from_record(record)
    }

    /// Deletes a metric (its events stay; only the definition goes).
    pub async fn delete_metric(&self, project: &str, key: &str, actor: &str) -> WriteResult<()> {
        let project_row = self.project(project).await?;
        if !self.store.delete_metric(project_row.id, key).await? {
            return Err(WriteError::NotFound(format!("no metric '{key}' in project '{project}'")));
        }
        audit(&*self.store, actor, "metric.delete", Some(project_row.id), key, json!({})).await;
        Ok(())
    }
}
