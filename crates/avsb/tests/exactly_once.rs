//! Nothing acknowledged is lost and nothing is counted twice: a client sends batches of events
//! (each with its `batchId`) and retries every batch until it is acknowledged, while the server
//! is killed with SIGKILL and restarted on the same data directory; afterwards every batch is
//! stored exactly once, and the results count every unit once.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::http::try_request;
use common::Server;
use serde_json::{json, Value};

const BATCHES: usize = 120;
const PER_BATCH: usize = 100;

fn batch(i: usize) -> String {
    let events: Vec<Value> = (0..PER_BATCH)
        .map(|j| {
            let user = format!("u{i}-{j}");
            json!({"kind": "exposure", "identifiers": {"USER": user}, "test": "checkout-v2", "bucket": (i + j) % 2, "reason": "split", "allocation": 0})
        })
        .collect();
    json!({"batchId": format!("00000000-0000-4000-8000-{i:012}"), "events": events}).to_string()
}

#[test]
fn batches_retried_across_kill_9_restarts_are_stored_exactly_once() {
    let data = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in(data.path(), &["--demo"]);
    let key = server.var("AVSB_SDK_KEY").to_string();
    let base = Arc::new(Mutex::new(server.base().to_string()));
    let done = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(0usize));

    let client = {
        let (base, done, acknowledged) = (Arc::clone(&base), Arc::clone(&done), Arc::clone(&acknowledged));
        std::thread::spawn(move || {
            for i in 0..BATCHES {
                let body = batch(i);
                loop {
                    let url = format!("{}/sdk/v1/events", base.lock().unwrap());
                    let headers = [("authorization", format!("Bearer {key}")), ("content-type", "application/json".into())];
                    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    match try_request("POST", &url, &headers, Some(body.as_bytes())) {
                        Ok(reply) if reply.status == 202 => {
                            *acknowledged.lock().unwrap() += 1;
                            break;
                        }
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    // Kill the server twice while the client sends, each time restarting it on the same data.
    let mut server = server;
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(400));
        let _ = Command::new("kill").args(["-KILL", &server.pid().to_string()]).status();
        std::thread::sleep(Duration::from_millis(50));
        server = Server::start_in(data.path(), &["--demo"]);
        *base.lock().unwrap() = server.base().to_string();
    }
    client.join().expect("the client");
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(*acknowledged.lock().unwrap(), BATCHES);

    let mut stored = Vec::new();
    let mut after = 0i64;
    loop {
        let reply = server.admin("GET", &format!("/projects/demo/environments/development/events?after={after}&limit=1000"), None);
        assert_eq!(reply.status, 200, "{}", reply.body);
        let page = reply.json()["events"].as_array().expect("events").clone();
        let Some(last) = page.last() else { break };
        after = last["id"].as_i64().expect("id");
        stored.extend(page);
    }
    assert_eq!(stored.len(), BATCHES * PER_BATCH, "every batch stored, none twice");
    let results = server.admin("GET", "/projects/demo/environments/development/tests/checkout-v2/results?phase=all", None).json();
    let units: u64 = results["variants"].as_array().expect("variants").iter().filter_map(|v| v["units"].as_u64()).sum();
    assert_eq!(units, (BATCHES * PER_BATCH) as u64, "{}", results["excluded"]);
}
