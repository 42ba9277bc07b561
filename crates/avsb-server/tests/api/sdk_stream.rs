//! The SDK stream (`GET /sdk/v1/stream`, Server-Sent Events): the current datafile, then every
//! change to the key's environment within a second; resumable with `Last-Event-ID`; heartbeats
//! while idle; ended when the key is revoked or the server shuts down.

use std::time::{Duration, Instant};

use avsb_server::Options;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::common::{Demo, Server};
use crate::support::{env_path, float_flag, save_test, sdk_key};

#[test]
fn a_stream_starts_with_the_current_datafile() {
    let s = Server::start_demo();
    let key = sdk_key(&s);
    let datafile = s.call("GET", "/sdk/v1/datafile", Some(&key), None);
    let mut stream = s.stream(&key, None);
    assert_eq!(stream.status, 200);
    assert!(stream.headers.get("content-type").is_some_and(|t| t.starts_with("text/event-stream")), "{:?}", stream.headers);
    let first = stream.next_event(Duration::from_secs(5));
    assert_eq!(first.event, "datafile");
    assert_eq!(first.id, datafile.header("etag").expect("etag").trim_matches('"'));
    let doc: Value = serde_json::from_str(&first.data).expect("data is JSON");
    assert_eq!(doc, datafile.json());
}

#[test]
fn every_change_reaches_the_stream_within_a_second() {
    let s = Server::start_demo();
    let mut stream = s.stream(&sdk_key(&s), None);
    stream.next_event(Duration::from_secs(5));
    for round in 0..3 {
        let started = Instant::now();
        let version = save_test(&s, &format!("pushed-{round}"), &float_flag());
        let event = stream.next_event(Duration::from_secs(5));
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(1), "round {round}: the new datafile took {elapsed:?}");
        assert_eq!(event.event, "datafile");
        let doc: Value = serde_json::from_str(&event.data).expect("data is JSON");
        assert_eq!(doc["version"], json!(version));
        assert!(doc["matrix"]["tests"][format!("pushed-{round}")].is_object());
        assert_eq!(event.id, format!("{version}.1"));
    }
}

#[test]
fn edits_to_other_environments_are_not_sent() {
    let s = Server::start_demo();
    let mut stream = s.stream(&sdk_key(&s), None);
    stream.next_event(Duration::from_secs(5));
    let body = json!({"definition": float_flag()}).to_string();
    let reply = s.admin("PUT", &format!("{}/tests/elsewhere", env_path("staging")), Some(&body));
    assert_eq!(reply.status, 200);
    stream.assert_no_event(Duration::from_millis(500));
}

#[test]
fn an_open_stream_is_counted_in_the_metrics_until_it_closes() {
    let s = Server::start_demo();
    let metrics = s.call("GET", "/metrics", None, None).body;
    assert!(metrics.lines().any(|l| l == "avsb_stream_clients 0"), "{metrics}");
    let mut stream = s.stream(&sdk_key(&s), None);
    stream.next_event(Duration::from_secs(5));
    let metrics = s.call("GET", "/metrics", None, None).body;
    assert!(metrics.lines().any(|l| l == "avsb_stream_clients 1"), "{metrics}");
    stream.close();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = s.call("GET", "/metrics", None, None).body;
        if metrics.lines().any(|l| l == "avsb_stream_clients 0") {
            break;
        }
        assert!(Instant::now() < deadline, "the closed stream is still counted: {metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The next frame of a streamed body, as text.
async fn next_frame(body: &mut Body) -> String {
    let frame = body.frame().await.expect("the stream goes on").expect("a readable frame");
    String::from_utf8(frame.into_data().expect("a data frame").to_vec()).expect("UTF-8")
}

#[tokio::test(start_paused = true)]
async fn an_idle_stream_sends_a_heartbeat_every_interval() {
    let demo = Demo::start(Options::default()).await;
    let interval = demo.state.options.heartbeat;
    let request = Request::get("/sdk/v1/stream")
        .header("authorization", format!("Bearer {}", demo.sdk_key()))
        .body(Body::empty())
        .expect("request");
    let response = demo.oneshot(request).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = next_frame(&mut body).await;
    assert!(first.lines().any(|l| l == "event: datafile"), "{first:?}");
    // Time is paused: it moves only to the next timer, so the heartbeat's time is exact.
    for heartbeat in 1..=2 {
        let started = tokio::time::Instant::now();
        let frame = next_frame(&mut body).await;
        assert!(frame.starts_with(':') && frame.ends_with("\n\n"), "heartbeat {heartbeat} is no comment: {frame:?}");
        assert_eq!(started.elapsed(), interval, "heartbeat {heartbeat} came after {:?}", started.elapsed());
    }
}

#[test]
fn a_stream_resumed_at_the_current_id_sends_nothing_until_the_next_change() {
    let s = Server::start_demo();
    let key = sdk_key(&s);
    let current_id = s.stream(&key, None).next_event(Duration::from_secs(5)).id;
    let mut resumed = s.stream(&key, Some(&current_id));
    assert_eq!(resumed.status, 200);
    resumed.assert_no_event(Duration::from_millis(800));
    let version = save_test(&s, "after-resume", &float_flag());
    let event = resumed.next_event(Duration::from_secs(2));
    assert_eq!(event.id, format!("{version}.1"), "the first event must be the new revision");
}

#[test]
fn a_stream_resumed_at_an_older_id_gets_the_current_datafile_at_once() {
    let s = Server::start_demo();
    let key = sdk_key(&s);
    let old_id = s.stream(&key, None).next_event(Duration::from_secs(5)).id;
    let version = save_test(&s, "after-resume", &float_flag());
    let new_id = format!("{version}.1");
    let started = Instant::now();
    let mut behind = s.stream(&key, Some(&old_id));
    let event = behind.next_event(Duration::from_secs(2));
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(event.id, new_id);
    let doc: Value = serde_json::from_str(&event.data).expect("JSON");
    assert!(doc["matrix"]["tests"]["after-resume"].is_object());
    // The current id: nothing.
    let mut current = s.stream(&key, Some(&new_id));
    current.assert_no_event(Duration::from_millis(500));
}

#[test]
fn a_stream_resumed_at_an_id_the_server_never_issued_gets_the_current_datafile() {
    let s = Server::start_demo();
    let key = sdk_key(&s);
    let current_id = s.stream(&key, None).next_event(Duration::from_secs(5)).id;
    let mut unknown = s.stream(&key, Some("garbage-id"));
    assert_eq!(unknown.next_event(Duration::from_secs(2)).id, current_id);
}

#[test]
fn a_stream_with_a_wrong_key_is_refused() {
    let s = Server::start_demo();
    let refused = s.stream("sdk-not-a-real-key", None);
    assert_eq!(refused.status, 401);
}

#[test]
fn a_stream_ends_when_its_key_is_revoked() {
    let s = Server::start_demo();
    let dev = env_path("development");
    let reply = s.admin("POST", &format!("{dev}/sdk-keys"), Some("{}"));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let created = reply.json();
    let key = created["key"].as_str().expect("key").to_string();
    let mut stream = s.stream(&key, None);
    stream.next_event(Duration::from_secs(5));
    let reply = s.admin("DELETE", &format!("{dev}/sdk-keys/{}", created["id"]), None);
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(s.call("GET", "/sdk/v1/datafile", Some(&key), None).status, 401);
    // A revoked key receives no datafile, not even this one.
    save_test(&s, "after-revocation", &float_flag());
    stream.assert_ends(Duration::from_secs(2));
}

#[test]
fn open_streams_end_when_the_server_shuts_down_and_it_stops_promptly() {
    let mut s = Server::start_demo();
    let key = sdk_key(&s);
    let mut streams: Vec<_> = (0..3).map(|_| s.stream(&key, None)).collect();
    for stream in &mut streams {
        stream.next_event(Duration::from_secs(5));
    }
    let started = Instant::now();
    s.stop().expect("a clean stop");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "the server took {elapsed:?} to stop with open streams");
    for stream in &mut streams {
        stream.assert_ends(Duration::from_secs(2));
    }
}
