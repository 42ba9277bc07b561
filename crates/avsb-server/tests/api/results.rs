//! Experiment results: batches stored once by `batchId`, exposures with how their bucket was
//! reached, exposures recorded for remote evaluation, metrics, and a test's results computed
//! from the stored events (population, exclusions, lift, sample-ratio checks per ranges window).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::Server;
use crate::support::{assert_error, definition, env_path, exposure, ok, post_events, save_test, sdk_key, stored_events};

const BATCH: &str = "6f1c2f9e-0d5b-4b8a-9a51-5d1e2c3b4a79";

// ---------------------------------------------------------------------------------------------
// Batches and exposures

#[test]
fn a_retried_batch_is_stored_once_and_answered_as_before() {
    let s = Server::start_demo();
    let body = json!({"batchId": BATCH, "events": [exposure("u_1"), exposure("u_2")]}).to_string();
    assert_eq!(ok(post_events(&s, &body)), json!({"accepted": 2}));
    assert_eq!(ok(post_events(&s, &body)), json!({"accepted": 2, "duplicate": true}));
    assert_eq!(stored_events(&s).len(), 2);
    // The same id in upper case is the same batch; another id is another batch.
    let upper = json!({"batchId": BATCH.to_uppercase(), "events": [exposure("u_3")]}).to_string();
    assert_eq!(ok(post_events(&s, &upper))["duplicate"], true);
    let other = json!({"batchId": "00000000-0000-4000-8000-000000000001", "events": [exposure("u_3")]}).to_string();
    assert_eq!(ok(post_events(&s, &other)), json!({"accepted": 1}));
    assert_eq!(stored_events(&s).len(), 3);
}

#[test]
fn a_batch_id_that_is_not_a_uuid_is_refused_naming_it() {
    let s = Server::start_demo();
    let body = json!({"batchId": "batch-1", "events": [exposure("u_1")]}).to_string();
    let error = assert_error(&post_events(&s, &body), 400, "invalid_body", &["batchId", "not a UUID"]);
    assert_eq!(error["field"], "batchId");
    assert!(stored_events(&s).is_empty());
}

#[test]
fn an_exposure_keeps_its_reason_allocation_and_dimensions() {
    let s = Server::start_demo();
    let mut e = exposure("u_1");
    e["reason"] = json!("targeted");
    e["allocation"] = json!(0);
    e["dimensions"] = json!({"device": "mobile", "beta": true, "age": 31});
    assert_eq!(post_events(&s, &json!([e]).to_string()).status, 202);
    let stored = &stored_events(&s)[0];
    assert_eq!(stored["reason"], "targeted");
    assert_eq!(stored["allocation"], 0);
    assert_eq!(stored["dimensions"], json!({"device": "mobile", "beta": "true", "age": "31"}));

    let mut bad = exposure("u_2");
    bad["reason"] = json!("lucky");
    let error = assert_error(&post_events(&s, &json!([bad]).to_string()), 400, "invalid_event", &["events[0].reason", "'split'"]);
    assert_eq!(error["field"], "reason");
    let mut nested = exposure("u_2");
    nested["dimensions"] = json!({"device": {"os": "ios"}});
    assert_error(&post_events(&s, &json!([nested]).to_string()), 400, "invalid_event", &["dimensions.device"]);
}

/// Polls development's stored events until `done` holds (the server writes recorded exposures
/// every half-second).
fn wait_for_events(s: &Server, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let events = stored_events(s);
        if done(&events) || Instant::now() > deadline {
            return events;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_key_that_records_exposures_records_what_pipet_and_ofrep_hand_out_once_per_unit() {
    let s = Server::start_demo();
    save_test(&s, "exp", &definition("exp", json!([{"length": 0.5, "bucketValue": 0}, {"length": 0.5, "bucketValue": 1}])));
    let keys = ok(s.admin("GET", &format!("{}/sdk-keys", env_path("development")), None));
    let key_id = keys["keys"][0]["id"].as_i64().expect("key id");
    let identify = |user: &str| {
        let path = format!("/pipet/{}/groups/identify?id.USER={user}", sdk_key(&s));
        assert_eq!(s.call("GET", &path, None, None).status, 200);
    };

    // Off by default: nothing is recorded.
    identify("u_1");
    std::thread::sleep(Duration::from_millis(800));
    assert!(stored_events(&s).is_empty());

    let patched = ok(s.admin("PATCH", &format!("{}/sdk-keys/{key_id}", env_path("development")), Some(r#"{"recordExposures": true}"#)));
    assert_eq!(patched["recordExposures"], true);
    identify("u_1");
    identify("u_1");
    let ofrep = s.call("POST", "/ofrep/v1/evaluate/flags/exp", Some(&sdk_key(&s)), Some(r#"{"context": {"targetingKey": "u_2"}}"#));
    assert_eq!(ofrep.status, 200, "{}", ofrep.body);
    let events = wait_for_events(&s, |e| e.iter().any(|e| e["identifiers"]["USER"] == "u_2"));
    let exp: Vec<&Value> = events.iter().filter(|e| e["test"] == "exp").collect();
    assert_eq!(exp.len(), 2, "one per unit, however often it asked: {events:?}");
    assert!(exp.iter().all(|e| e["reason"] == "split" && e["allocation"] == 0 && e["kind"] == "exposure"));
    assert_eq!(exp[0]["identifiers"], json!({"USER": "u_1"}));
}

// ---------------------------------------------------------------------------------------------
// Metrics

fn metrics_path() -> &'static str {
    "/projects/demo/metrics"
}

#[test]
fn metrics_are_created_listed_changed_and_deleted_with_clear_refusals() {
    let s = Server::start_demo();
    let body = json!({"key": "buy-rate", "name": "Purchase rate", "event": "purchase", "type": "conversion", "windowHours": 72});
    let created = s.admin("POST", metrics_path(), Some(&body.to_string()));
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json()["direction"], "higher");
    assert_error(&s.admin("POST", metrics_path(), Some(&body.to_string())), 409, "already_exists", &["buy-rate"]);

    let ratio = json!({"key": "aov", "name": "Order value", "event": "purchase", "type": "ratio"});
    let error = assert_error(&s.admin("POST", metrics_path(), Some(&ratio.to_string())), 400, "invalid_field", &["denominator"]);
    assert_eq!(error["field"], "denominator");
    let typo = json!({"key": "aov", "name": "Order value", "event": "purchase", "type": "mean", "windw": 3});
    assert_error(&s.admin("POST", metrics_path(), Some(&typo.to_string())), 400, "invalid_field", &["windw"]);
    let capped = json!({"key": "rev", "name": "Revenue", "event": "purchase", "type": "mean", "capping": {"type": "percentile", "value": 99}});
    let error = assert_error(&s.admin("POST", metrics_path(), Some(&capped.to_string())), 400, "invalid_field", &["percentile"]);
    assert_eq!(error["field"], "capping.value");

    let changed = json!({"name": "Purchase rate (7 days)", "event": "purchase", "type": "conversion", "windowHours": 168, "guardrail": true});
    let updated = ok(s.admin("PUT", &format!("{}/buy-rate", metrics_path()), Some(&changed.to_string())));
    assert_eq!((updated["windowHours"].as_f64(), updated["guardrail"].as_bool()), (Some(168.0), Some(true)));
    let list = ok(s.admin("GET", metrics_path(), None));
    let keys: Vec<&str> = list["metrics"].as_array().expect("metrics").iter().filter_map(|m| m["key"].as_str()).collect();
    assert_eq!(keys, ["buy-rate", "purchase-rate", "revenue"], "by key, the demo's two included");
    assert_eq!(s.admin("DELETE", &format!("{}/buy-rate", metrics_path()), None).status, 204);
    assert_eq!(s.admin("GET", &format!("{}/buy-rate", metrics_path()), None).status, 404);
}

// ---------------------------------------------------------------------------------------------
// Results

fn ranges(control: f64) -> Value {
    json!([{"length": control, "bucketValue": 0}, {"length": 1.0 - control, "bucketValue": 1}])
}

fn split_exposure(user: &str, bucket: i32, time: i64) -> Value {
    json!({"kind": "exposure", "identifiers": {"USER": user}, "test": "exp", "bucket": bucket, "reason": "split", "allocation": 0, "time": time})
}

fn purchase(user: &str, value: f64, time: i64) -> Value {
    json!({"kind": "track", "identifiers": {"USER": user}, "key": "purchase", "value": value, "time": time})
}

fn post_all(s: &Server, events: Vec<Value>) {
    for chunk in events.chunks(1000) {
        assert_eq!(post_events(s, &json!({"events": chunk}).to_string()).status, 202);
    }
}

fn results(s: &Server, query: &str) -> Value {
    ok(s.admin("GET", &format!("{}/tests/exp/results{query}", env_path("development")), None))
}

fn add_metric(s: &Server, body: Value) {
    assert_eq!(s.admin("POST", metrics_path(), Some(&body.to_string())).status, 201);
}

#[test]
fn results_count_units_from_their_first_split_exposure_and_compare_the_variant_with_the_control() {
    let s = Server::start_demo();
    save_test(&s, "exp", &definition("exp", ranges(0.5)));
    add_metric(&s, json!({"key": "buy", "name": "Purchase rate", "event": "purchase", "type": "conversion"}));
    // Units enter when the ranges are in force: exposures from now on.
    let t = crate::support::now_millis();
    let mut events = Vec::new();
    for i in 0..200 {
        let (user, bucket) = (format!("u{i}"), i32::from(i % 2 == 1));
        events.push(split_exposure(&user, bucket, t));
        // 30% of the control converts, 50% of the variant; one purchase before exposure never counts.
        let converts = if bucket == 0 { i % 20 < 6 } else { i % 20 < 10 };
        if converts {
            events.push(purchase(&user, 10.0, t + 1000));
        }
    }
    events.push(purchase("u0", 1.0, t - 500));
    // Left out: a targeted and a forced exposure, and a unit seen in both buckets.
    let mut targeted = split_exposure("vip", 1, t);
    targeted["reason"] = json!("targeted");
    let mut forced = split_exposure("qa", 0, t);
    forced["reason"] = json!("forced");
    events.extend([targeted, forced, split_exposure("flip", 0, t), split_exposure("flip", 1, t + 1)]);
    post_all(&s, events);

    let r = results(&s, "?cuped=false");
    assert_eq!(r["variants"][0]["units"], 100);
    assert_eq!(r["variants"][1]["units"], 100);
    assert_eq!(r["excluded"]["notSplit"], 2);
    assert_eq!(r["excluded"]["multipleBuckets"], 1);
    let metric = &r["metrics"][0];
    let (control, variant) = (&metric["variants"][0], &metric["variants"][1]);
    assert_eq!(control["statistics"]["sum"], 30.0);
    assert_eq!(variant["statistics"]["sum"], 50.0);
    let lift = variant["lift"].as_f64().expect("lift");
    assert!((lift - (0.5 / 0.3 - 1.0)).abs() < 1e-9, "relative lift {lift}");
    let p = variant["pValue"].as_f64().expect("p-value");
    assert!(p > 0.0 && p < 0.05, "{p}");
    assert!(variant["ciLow"].as_f64() < Some(lift) && variant["ciHigh"].as_f64() > Some(lift));
    assert_eq!(variant["verdict"], "better");
    assert_eq!(r["srm"]["warning"], false);
    assert!(r["srm"]["pValue"].as_f64().expect("srm") > 0.9);

    // Bayesian: a chance to win instead of a p-value.
    let b = results(&s, "?engine=bayesian&cuped=false");
    let ctw = b["metrics"][0]["variants"][1]["chanceToWin"].as_f64().expect("chance to win");
    assert!(ctw > 0.95, "{ctw}");
    assert!(b["metrics"][0]["variants"][1].get("pValue").is_none());
}

#[test]
fn results_are_cached_until_an_event_arrives() {
    let s = Server::start_demo();
    save_test(&s, "exp", &definition("exp", ranges(0.5)));
    let t = crate::support::now_millis();
    post_all(&s, vec![split_exposure("a", 0, t), split_exposure("b", 1, t)]);
    let first = results(&s, "");
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(results(&s, "")["asOf"], first["asOf"], "nothing new: the same results");
    post_all(&s, vec![split_exposure("c", 1, t)]);
    let third = results(&s, "");
    assert_ne!(third["asOf"], first["asOf"]);
    assert_eq!(third["variants"][1]["units"], 2);
}

#[test]
fn a_mismatched_split_is_flagged_and_a_planned_ramp_is_not() {
    let s = Server::start_demo();
    save_test(&s, "exp", &definition("exp", ranges(0.8)));
    let now = crate::support::now_millis;
    // During the 80/20 phase: 320 and 80 units, as planned.
    let t = now();
    post_all(&s, (0..400).map(|i| split_exposure(&format!("a{i}"), i32::from(i >= 320), t)).collect());
    std::thread::sleep(Duration::from_millis(10));
    save_test(&s, "exp", &definition("exp", ranges(0.5)));
    std::thread::sleep(Duration::from_millis(10));
    // During the 50/50 phase: 100 and 100.
    let t = now();
    post_all(&s, (0..200).map(|i| split_exposure(&format!("b{i}"), i32::from(i >= 100), t)).collect());

    let all = results(&s, "?phase=all");
    assert_eq!(all["srm"]["checks"].as_array().map(Vec::len), Some(2), "{}", all["srm"]);
    assert_eq!(all["srm"]["warning"], false, "a ramp is not a mismatch: {}", all["srm"]);
    assert_eq!(all["variants"][0]["units"], 420);
    let current = results(&s, "");
    assert_eq!(current["phase"]["default"], true);
    assert_eq!(current["variants"][0]["units"], 100, "the default phase starts at the last change of the ranges");
    assert_eq!(current["phases"].as_array().map(Vec::len), Some(2));

    // 600 against 400 on a 50/50 split is a mismatch.
    let t = now();
    post_all(&s, (0..200).map(|i| split_exposure(&format!("c{i}"), 0, t)).collect());
    let skewed = results(&s, "");
    assert_eq!(skewed["srm"]["warning"], true, "{}", skewed["srm"]);
    assert!(skewed["srm"]["pValue"].as_f64().expect("p") < 0.001);
}

#[test]
fn bad_result_parameters_name_the_parameter() {
    let s = Server::start_demo();
    save_test(&s, "exp", &definition("exp", ranges(0.5)));
    let path = |q: &str| format!("{}/tests/exp/results{q}", env_path("development"));
    for (query, field) in [("?alpha=2", "alpha"), ("?metrics=nope", "metrics"), ("?control=7", "control"), ("?phase=later", "phase")] {
        let error = assert_error(&s.admin("GET", &path(query), None), 400, "invalid_query", &[field]);
        assert_eq!(error["field"], field, "{query}");
    }
    assert_error(&s.admin("GET", &path("?colour=red"), None), 400, "invalid_query", &["colour"]);
    assert_eq!(s.admin("GET", &format!("{}/tests/nope/results", env_path("development")), None).status, 404);
}

#[test]
fn results_are_stored_and_the_first_request_after_a_restart_answers_them_without_recomputing() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut s = Server::start_in(data.path());
    save_test(&s, "exp", &definition("exp", ranges(0.5)));
    let t = crate::support::now_millis();
    post_all(&s, vec![split_exposure("a", 0, t), split_exposure("b", 1, t)]);
    let before = results(&s, "");
    s.stop().expect("a clean stop");
    let s = Server::start_in(data.path());
    let after = results(&s, "");
    assert_eq!(after["asOf"], before["asOf"], "the stored results, not a new computation");
    assert_eq!(after, before);
}

/// The demo in process, with requests that never wait for a computation.
async fn impatient() -> crate::common::Demo {
    let options = avsb_server::Options { results_wait: Duration::ZERO, ..avsb_server::Options::default() };
    crate::common::Demo::start(options).await
}

async fn results_of(d: &crate::common::Demo) -> crate::common::Reply {
    d.admin("GET", &format!("{}/tests/checkout-v2/results", env_path("production")), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_first_computation_answers_202_and_a_recomputation_answers_the_last_results_marked_stale() {
    let d = impatient().await;
    let first = results_of(&d).await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.header("retry-after"), Some("2"));
    assert_eq!(first.json()["computing"], true);
    let ready = loop {
        let reply = results_of(&d).await;
        if reply.status == 200 {
            break reply.json();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(ready["stale"], false);
    let units = ready["variants"][0]["units"].as_u64().expect("units");

    // One more exposure: the last results answer at once, marked stale, until the new ones are in.
    let event = json!({"events": [{"kind": "exposure", "identifiers": {"USER": "late"}, "test": "checkout-v2", "bucket": 0, "reason": "split", "allocation": 0}]});
    let key = d.secrets.sdk_key("production").expect("production key").to_string();
    let posted = d.call("POST", "/sdk/v1/events", Some(&key), Some(&event.to_string()), &[]).await;
    assert_eq!(posted.status, 202);
    let stale = results_of(&d).await.json();
    assert_eq!((stale["stale"].as_bool(), &stale["asOf"]), (Some(true), &ready["asOf"]));
    let fresh = loop {
        let reply = results_of(&d).await.json();
        if reply["stale"] == false {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(fresh["variants"][0]["units"].as_u64(), Some(units + 1));
}
