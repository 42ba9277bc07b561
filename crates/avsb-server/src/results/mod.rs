//! Experiment results: metrics, the population of an experiment, per-variant sufficient
//! statistics and their analysis.
//!
//! Reading is here ([`AppState::results`]); everything after the read is pure:
//! [`population`] (who entered when, in which bucket), [`aggregate`] (events → per-unit
//! figures → per-variant sums), [`phase`] (the test's ranges over time), [`analysis`] (the
//! statistics, from `avsb-stats`). Results are cached per test, environment and settings, and
//! recomputed only when an event arrived, the matrix changed or a metric changed.

pub mod aggregate;
pub mod analysis;
pub mod metric;
pub mod phase;
pub mod population;
mod report;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use avsb_core::document::TestDefinition;
use avsb_core::MatrixDocument;
use serde::Deserialize;
use serde_json::{Map, Value};

pub use report::{DailyPoint, DailyResults, MetricResults, Results, ResultsVariant};

use self::analysis::AnalysisSettings;

use self::aggregate::{MetricPlan, Tracked};
use self::analysis::{CorrectionChoice, EngineChoice};
use self::phase::RangesWindow;
use self::population::{Exposure, Population, Span};
use crate::error::ErrorCode;
use crate::ops::metrics::Metric;
use crate::ops::{WriteError, WriteResult};
use crate::store::{now_millis, ExposureRow};
use crate::AppState;

/// Rows read from the store at a time.
const PAGE: u32 = 20_000;
/// Milliseconds in a day.
pub const DAY: i64 = 86_400_000;
/// Revisions read for a test's history, at most.
const HISTORY_LIMIT: usize = 2_000;
/// Results kept in the cache.
const CACHE_ENTRIES: usize = 64;
/// The default sequential tuning parameter (gbstats' default).
pub const DEFAULT_TUNING: f64 = 5000.0;
/// The default CUPED pre-exposure window, days.
pub const DEFAULT_CUPED_DAYS: f64 = 14.0;

/// What the results of a test are asked for: the query string of the results routes and the
/// console's Results tab.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// Metric keys, comma-separated (default: every metric of the project).
    pub metrics: Option<String>,
    /// `frequentist` (default) or `bayesian`.
    pub engine: Option<EngineChoice>,
    /// `relative` (default) or `absolute`.
    pub difference: Option<String>,
    /// Significance level, default 0.05.
    pub alpha: Option<f64>,
    /// Sequential testing (always-valid intervals), default off.
    pub sequential: Option<bool>,
    /// Sequential testing's tuning parameter (the expected sample size), default 5000.
    pub tuning: Option<f64>,
    /// CUPED variance reduction, default on.
    pub cuped: Option<bool>,
    /// CUPED's pre-exposure window in days, default 14.
    pub cuped_days: Option<f64>,
    /// `none` (default), `holm` or `benjamini-hochberg`.
    pub correction: Option<CorrectionChoice>,
    /// The control's bucket value (default: the first non-inactive bucket).
    pub control: Option<i32>,
    /// A dimension to break the results down by (a key of the exposures' `dimensions`).
    pub dimension: Option<String>,
    /// The phase: `current` (default: since the last change of the test's ranges) or `all`.
    pub phase: Option<String>,
    /// The phase's start, epoch milliseconds (instead of `phase`).
    pub from: Option<i64>,
    /// The phase's end, epoch milliseconds (default: now).
    pub to: Option<i64>,
    /// The phase starts when this revision became current.
    pub from_revision: Option<String>,
    /// The phase ends when the revision after this one became current.
    pub to_revision: Option<String>,
}

fn bad(field: &str, message: impl Into<String>) -> WriteError {
    WriteError::field(ErrorCode::InvalidQuery, field, message)
}

impl ResultsQuery {
    /// The analysis settings, defaults filled in; a bad value names its parameter.
    pub fn settings(&self) -> WriteResult<AnalysisSettings> {
        let alpha = self.alpha.unwrap_or(0.05);
        if !(alpha > 0.0 && alpha < 0.5) {
            return Err(bad("alpha", "alpha must be above 0 and below 0.5 (0.05 is usual)"));
        }
        let relative = match self.difference.as_deref() {
            None | Some("relative") => true,
            Some("absolute") => false,
            Some(other) => return Err(bad("difference", format!("difference must be 'relative' or 'absolute', not '{other}'"))),
        };
        let tuning = self.tuning.unwrap_or(DEFAULT_TUNING);
        if !(tuning.is_finite() && tuning >= 1.0) {
            return Err(bad("tuning", "tuning must be a number of units, at least 1"));
        }
        let cuped_days = self.cuped_days.unwrap_or(DEFAULT_CUPED_DAYS);
        if !(cuped_days.is_finite() && cuped_days > 0.0 && cuped_days <= 365.0) {
            return Err(bad("cupedDays", "cupedDays must be more than 0 and at most 365"));
        }
        Ok(AnalysisSettings {
            engine: self.engine.unwrap_or_default(),
            relative,
            alpha,
            sequential_tuning: self.sequential.unwrap_or(false).then_some(tuning),
            cuped_days: self.cuped.unwrap_or(true).then_some(cuped_days),
            correction: self.correction.unwrap_or_default(),
            statistics: "avsb-stats: gbstats 0.8.0's formulas".into(),
        })
    }

    fn cache_key(&self) -> String {
        format!("{self:?}")
    }
}

/// A cache key: environment, test, settings.
type Key = (i64, String, String);

/// What was last computed for a test and settings, and from what.
#[derive(Clone)]
struct CacheEntry {
    /// The newest event the results include.
    last_event: i64,
    /// The environment's revision and the metrics' definitions then.
    basis: String,
    /// How long the computation took.
    took: std::time::Duration,
    results: Arc<Results>,
}

/// What is stored of computed results (the daily series is not part of `Results`' JSON).
#[derive(serde::Serialize, Deserialize)]
struct Persisted {
    basis: String,
    took_ms: u64,
    results: Results,
    daily: DailyResults,
}

type Outcome = Option<Result<Arc<Results>, WriteError>>;

/// Results already computed, and computations under way, by environment, test and settings.
#[derive(Default)]
pub struct ResultsCache {
    entries: Mutex<HashMap<Key, CacheEntry>>,
    running: Mutex<HashMap<Key, (i64, watch::Receiver<Outcome>)>>,
}

impl std::fmt::Debug for ResultsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResultsCache")
    }
}

impl ResultsCache {
    fn get(&self, key: &Key) -> Option<CacheEntry> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).cloned()
    }

    fn put(&self, key: Key, entry: CacheEntry) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CACHE_ENTRIES && !entries.contains_key(&key) {
            let oldest = entries.iter().min_by_key(|(_, e)| e.results.as_of).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, entry);
    }
}

/// What a request for results gets.
#[derive(Debug, Clone)]
pub enum ResultsAnswer {
    /// Results: current, or (`stale`) the last ones while a recomputation catches up.
    Ready(Arc<Results>),
    /// The first computation for these settings is under way (a large experiment): ask again.
    Computing {
        /// When it started, epoch milliseconds.
        started_at: i64,
    },
}

/// Everything a computation needs, read by the request that starts it.
struct Job {
    key: Key,
    basis: String,
    environment_id: i64,
    environment: String,
    test: String,
    query: ResultsQuery,
    settings: AnalysisSettings,
    definition: TestDefinition,
    metrics: Vec<Metric>,
    control: i32,
    last_event: i64,
    revision: i64,
}

/// Reads one identifier type's value out of events' identifiers (JSON object text, as the
/// server stores it: serde_json's compact form). The common case is a substring search; text
/// with escapes, or a type that would need them, is parsed as JSON.
pub struct UnitReader {
    identifier_type: String,
    needle: Option<String>,
}

impl UnitReader {
    /// A reader of `identifier_type`.
    pub fn new(identifier_type: &str) -> UnitReader {
        let plain = !identifier_type.contains(['"', '\\']) && !identifier_type.chars().any(char::is_control);
        UnitReader { identifier_type: identifier_type.to_string(), needle: plain.then(|| format!("\"{identifier_type}\":\"")) }
    }

    /// The identifier, if the event has one of this type (as text).
    pub fn read<'a>(&self, identifiers: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        if let Some(needle) = &self.needle {
            let mut from = 0;
            while let Some(found) = identifiers[from..].find(needle.as_str()) {
                let at = from + found;
                let key_position = matches!(identifiers.as_bytes().get(at.wrapping_sub(1)), Some(b'{' | b','));
                let start = at + needle.len();
                if key_position {
                    let rest = &identifiers[start..];
                    match rest.find(['"', '\\']) {
                        Some(end) if rest.as_bytes()[end] == b'"' => return Some(std::borrow::Cow::Borrowed(&rest[..end])),
                        _ => break,
                    }
                }
                from = start;
            }
            if !identifiers.contains('\\') {
                return None;
            }
        }
        let map: Map<String, Value> = serde_json::from_str(identifiers).ok()?;
        match map.get(&self.identifier_type)? {
            Value::String(s) => Some(std::borrow::Cow::Owned(s.clone())),
            _ => None,
        }
    }
}

fn dimension_of(row: &ExposureRow, dimension: Option<&str>) -> Option<String> {
    let name = dimension?;
    let map: Map<String, Value> = serde_json::from_str(row.dimensions.as_deref()?).ok()?;
    map.get(name).and_then(Value::as_str).map(str::to_string)
}

/// The test's definition in a revision document, if the test is in it.
fn test_in(document: &MatrixDocument, test: &str) -> Option<TestDefinition> {
    document.tests.get(test).cloned()
}

impl AppState {
    /// A test's ranges windows over the environment's history, oldest first.
    async fn ranges_windows(&self, environment_id: i64, test: &str) -> WriteResult<Vec<RangesWindow>> {
        let mut metas = Vec::new();
        let mut before = None;
        while metas.len() < HISTORY_LIMIT {
            let page = self.store.list_revisions(environment_id, before, 200).await?;
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            metas.extend(page);
        }
        metas.reverse();
        let mut history = Vec::with_capacity(metas.len());
        for meta in metas {
            let Some(revision) = self.store.revision(meta.id).await? else { continue };
            let definition = MatrixDocument::from_json(&revision.matrix_json).ok().and_then(|(d, _)| test_in(&d, test));
            history.push((meta.id, meta.created_at, definition));
        }
        let borrowed: Vec<(i64, i64, Option<&TestDefinition>)> =
            history.iter().map(|(id, time, d)| (*id, *time, d.as_ref())).collect();
        Ok(phase::windows(&borrowed))
    }

    /// The phase's span: explicit times, revisions, `all`, or (the default) since the last
    /// change of the test's ranges.
    fn phase_span(query: &ResultsQuery, windows: &[RangesWindow]) -> WriteResult<(Span, bool)> {
        let revision_time = |field: &str, text: &str| -> WriteResult<(i64, i64)> {
            let id = crate::ops::input::parse_revision(text)
                .ok_or_else(|| bad(field, format!("{field} must be a revision version such as \"12\"")))?;
            windows
                .iter()
                .find(|w| w.revision == id)
                .map(|w| (w.from, w.to))
                .ok_or_else(|| bad(field, format!("revision {id} did not change this test's ranges; pick one of the phases listed")))
        };
        let mut from = match (&query.from_revision, query.from, query.phase.as_deref()) {
            (Some(r), _, _) => revision_time("fromRevision", r)?.0,
            (None, Some(t), _) => t,
            (None, None, Some("all")) => 0,
            (None, None, None | Some("current")) => windows.last().map_or(0, |w| w.from),
            (None, None, Some(other)) => return Err(bad("phase", format!("phase must be 'current' or 'all', not '{other}'"))),
        };
        let to = match (&query.to_revision, query.to) {
            (Some(r), _) => match revision_time("toRevision", r)?.1 {
                i64::MAX => i64::MAX,
                next => next - 1,
            },
            (None, Some(t)) => t,
            (None, None) => i64::MAX,
        };
        from = from.max(0);
        if from > to {
            return Err(bad("from", "the phase starts after it ends"));
        }
        let default = query.from_revision.is_none() && query.from.is_none() && query.phase.is_none();
        Ok((Span { from, to }, default))
    }

    /// A test's results in an environment: the cached ones when nothing changed since; else a
    /// computation, waited for up to `Options::results_wait`, after which the last results
    /// answer (marked `stale`) or, the first time, [`ResultsAnswer::Computing`]. The
    /// computation goes on and stores its results.
    pub async fn results_answer(self: &Arc<Self>, project: &str, environment: &str, test: &str, query: &ResultsQuery)
        -> WriteResult<ResultsAnswer> {
        let settings = query.settings()?;
        let snapshot = self.current(project, environment)?;
        let definition = snapshot
            .matrix
            .definition(test)
            .cloned()
            .ok_or_else(|| WriteError::NotFound(format!("no test '{test}' in environment '{environment}'")))?;
        let control = report::control_bucket(&definition, query.control)?;
        if let Some(phase) = query.phase.as_deref().filter(|p| !matches!(*p, "current" | "all")) {
            return Err(bad("phase", format!("phase must be 'current' or 'all', not '{phase}'")));
        }
        let metrics = self.chosen_metrics(project, query.metrics.as_deref()).await?;
        let basis = std::iter::once(snapshot.revision.id.to_string())
            .chain(metrics.iter().map(|m| format!("{}={}", m.key, m.definition.to_json())))
            .collect::<Vec<_>>()
            .join(";");
        let last_event = self.store.last_event_id(snapshot.environment_id).await?;
        let key: Key = (snapshot.environment_id, test.to_string(), query.cache_key());
        let cached = match self.results_cache.get(&key) {
            Some(entry) => Some(entry),
            None => self.persisted_results(&key).await,
        };
        if let Some(entry) = &cached {
            if entry.last_event == last_event && entry.basis == basis {
                return Ok(ResultsAnswer::Ready(entry.results.clone()));
            }
        }
        let job = Job {
            key: key.clone(),
            basis,
            environment_id: snapshot.environment_id,
            environment: environment.to_string(),
            test: test.to_string(),
            query: query.clone(),
            settings,
            definition,
            metrics,
            control,
            last_event,
            revision: snapshot.revision.id,
        };
        let (started_at, mut receiver) = self.start_computation(job);
        // Wait for a computation expected to be quick; when the last one took longer than the
        // wait, answer the last results at once (marked stale) while this one runs.
        let wait = match &cached {
            Some(entry) if entry.took >= self.options.results_wait => std::time::Duration::ZERO,
            _ => self.options.results_wait,
        };
        let waited = tokio::time::timeout(wait, receiver.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(outcome)) => match outcome.clone() {
                Some(Ok(results)) => Ok(ResultsAnswer::Ready(results)),
                Some(Err(e)) => Err(e),
                None => Ok(ResultsAnswer::Computing { started_at }),
            },
            Ok(Err(_)) => {
                // The computation's task ended without sending (it panicked): forget it, so the
                // next request starts another.
                self.results_cache.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
                Err(WriteError::internal("the results computation ended without an answer"))
            }
            Err(_) => match cached {
                Some(entry) => {
                    let mut stale = Results::clone(&entry.results);
                    stale.stale = true;
                    Ok(ResultsAnswer::Ready(Arc::new(stale)))
                }
                None => Ok(ResultsAnswer::Computing { started_at }),
            },
        }
    }

    /// A test's results, waiting for the computation however long it takes (requests use
    /// [`AppState::results_answer`]).
    pub async fn results(self: &Arc<Self>, project: &str, environment: &str, test: &str, query: &ResultsQuery)
        -> WriteResult<Arc<Results>> {
        loop {
            match self.results_answer(project, environment, test, query).await? {
                ResultsAnswer::Ready(results) if !results.stale => return Ok(results),
                _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
    }

    /// The results stored for `key`, if they read.
    async fn persisted_results(&self, key: &Key) -> Option<CacheEntry> {
        let (last_event, json) = self.store.result_snapshot(key.0, &key.1, &key.2).await.ok()??;
        let persisted: Persisted = serde_json::from_str(&json).ok()?;
        let mut results = persisted.results;
        results.daily = persisted.daily;
        let took = std::time::Duration::from_millis(persisted.took_ms);
        let entry = CacheEntry { last_event, basis: persisted.basis, took, results: Arc::new(results) };
        self.results_cache.put(key.clone(), entry.clone());
        Some(entry)
    }

    /// Starts computing `job` unless the same key is being computed; returns when it started
    /// and a receiver of its outcome.
    fn start_computation(self: &Arc<Self>, job: Job) -> (i64, watch::Receiver<Outcome>) {
        let mut running = self.results_cache.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((started_at, receiver)) = running.get(&job.key) {
            return (*started_at, receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        let started_at = now_millis();
        running.insert(job.key.clone(), (started_at, receiver.clone()));
        drop(running);
        let state = Arc::clone(self);
        tokio::spawn(async move {
            let key = job.key.clone();
            let outcome = state.compute(job).await;
            if let Err(e) = &outcome {
                tracing::warn!(test = key.1, "experiment results could not be computed: {e}");
            }
            state.results_cache.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
            sender.send_replace(Some(outcome));
        });
        (started_at, receiver)
    }

    /// Computes, caches and stores one test's results.
    async fn compute(&self, job: Job) -> WriteResult<Arc<Results>> {
        let started = std::time::Instant::now();
        let windows = self.ranges_windows(job.environment_id, &job.test).await?;
        let (span, default_phase) = Self::phase_span(&job.query, &windows)?;
        let units = UnitReader::new(&job.definition.test_type);
        let dimension = job.query.dimension.clone();

        let mut population = Population::new();
        let mut after = 0;
        loop {
            let rows = self.store.exposures_page(job.environment_id, &job.test, after, job.last_event, PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            for row in &rows {
                let Some(unit) = units.read(&row.identifiers) else {
                    population.no_identifier();
                    continue;
                };
                let dimension = dimension_of(row, dimension.as_deref());
                let exposure = Exposure {
                    time: row.time,
                    unit: &unit,
                    bucket: row.bucket,
                    reason: row.reason.as_deref(),
                    allocation: row.allocation,
                    dimension: dimension.as_deref(),
                };
                population.add(exposure, span);
            }
        }
        population.finish();

        let pre_window = job.settings.cuped_days.map(|d| (d * DAY as f64) as i64);
        let mut plans: Vec<MetricPlan> = job
            .metrics
            .iter()
            .map(|m| {
                let cuped = if m.definition.metric_type == metric::MetricType::Ratio { None } else { pre_window };
                MetricPlan::new(m.definition.clone(), cuped, span.to)
            })
            .collect();
        let mut keys: Vec<String> = plans.iter().flat_map(|p| p.definition.events().map(str::to_string).collect::<Vec<_>>()).collect();
        keys.sort();
        keys.dedup();
        let mut after = 0;
        while !keys.is_empty() && !population.is_empty() {
            let rows = self.store.track_page(job.environment_id, keys.clone(), after, job.last_event, PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            for row in &rows {
                let Some(unit) = units.read(&row.identifiers) else { continue };
                let Some(index) = population.find(&unit) else { continue };
                let unit_state = &population.units()[index as usize];
                let event = Tracked { time: row.time, key: &row.key, value: row.value };
                for plan in &mut plans {
                    plan.fold(index, unit_state, event);
                }
            }
        }

        let (basis, key, last_event) = (job.basis.clone(), job.key.clone(), job.last_event);
        let results = tokio::task::spawn_blocking(move || {
            report::build(report::Inputs {
                test: &job.test,
                environment: &job.environment,
                definition: &job.definition,
                metrics: &job.metrics,
                plans: &plans,
                population: &population,
                windows: &windows,
                span,
                default_phase,
                control: job.control,
                settings: job.settings.clone(),
                dimension: job.query.dimension.clone(),
                as_of: now_millis(),
                last_event: job.last_event,
                revision: job.revision,
            })
        })
        .await
        .map_err(|e| WriteError::internal(format!("the results computation failed: {e}")))?;
        let results = Arc::new(results);
        let took = started.elapsed();
        let took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let persisted = Persisted { basis: basis.clone(), took_ms, results: Results::clone(&results), daily: results.daily.clone() };
        match serde_json::to_string(&persisted) {
            Ok(json) => {
                if let Err(e) = self.store.put_result_snapshot(key.0, &key.1, &key.2, last_event, &json).await {
                    tracing::warn!(test = key.1, "experiment results could not be stored: {e}");
                }
            }
            Err(e) => tracing::warn!(test = key.1, "experiment results could not be written as JSON: {e}"),
        }
        self.results_cache.put(key, CacheEntry { last_event, basis, took, results: results.clone() });
        Ok(results)
    }

    /// The metrics a query names (all of the project's by default), refusing unknown keys.
    async fn chosen_metrics(&self, project: &str, keys: Option<&str>) -> WriteResult<Vec<Metric>> {
        let all = self.metrics(project).await?;
        let Some(keys) = keys.filter(|k| !k.trim().is_empty()) else { return Ok(all) };
        let mut chosen = Vec::new();
        for key in keys.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            let metric = all
                .iter()
                .find(|m| m.key == key)
                .ok_or_else(|| bad("metrics", format!("metrics: there is no metric '{key}' in project '{project}'")))?;
            if !chosen.iter().any(|m: &Metric| m.key == key) {
                chosen.push(metric.clone());
            }
        }
        Ok(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::UnitReader;

    #[test]
    fn the_unit_reader_finds_a_type_only_as_a_key_and_falls_back_to_json_for_escapes() {
        let user = UnitReader::new("USER");
        assert_eq!(user.read(r#"{"USER":"u1"}"#).as_deref(), Some("u1"));
        assert_eq!(user.read(r#"{"ACCOUNT":"42","USER":"u-2"}"#).as_deref(), Some("u-2"));
        assert_eq!(user.read(r#"{"ACCOUNT":"\"USER\":\"x","USER":"u3"}"#).as_deref(), Some("u3"));
        assert_eq!(user.read(r#"{"USER":"a\"b"}"#).as_deref(), Some("a\"b"));
        assert_eq!(user.read(r#"{"ACCOUNT":"42"}"#), None);
        assert_eq!(user.read(r#"{"XUSER":"u1"}"#), None);
        assert_eq!(UnitReader::new("we\"ird").read(r#"{"we\"ird":"v"}"#).as_deref(), Some("v"));
    }
}
