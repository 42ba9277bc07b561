//! Malformed requests to the SDK-facing APIs (Pipet, OFREP, the datafile, events): bad
//! percent-encoding, huge or deeply nested input, odd headers. None gets a 5xx, none changes
//! anything, and the server stays healthy.

use serde_json::json;

use crate::common::{try_request, Server};
use crate::support::{dev_root, dev_version, sdk_key, stored_events};

/// Method, URL, headers and body.
type RawRequest = (String, String, Vec<(String, String)>, Option<Vec<u8>>);

/// What must not change: the served version, the datafile's ETag and the stored events.
struct Before {
    version: String,
    datafile_etag: String,
    events: usize,
}

impl Before {
    fn now(s: &Server) -> Before {
        let key = sdk_key(s);
        let datafile_etag = s.call("GET", "/sdk/v1/datafile", Some(&key), None).header("etag").expect("etag").to_string();
        Before { version: dev_version(s), datafile_etag, events: stored_events(s).len() }
    }

    /// Asserts that the server is still healthy, nothing changed, and no 5xx was counted.
    #[track_caller]
    fn assert_unchanged(&self, s: &Server) {
        assert_eq!(s.call("GET", "/healthz", None, None).status, 200);
        assert_eq!(dev_version(s), self.version);
        let reply = s.call_with("GET", "/sdk/v1/datafile", Some(&sdk_key(s)), None, &[("If-None-Match", &self.datafile_etag)]);
        assert_eq!(reply.status, 304, "the datafile changed");
        // `[]` is a valid (empty) batch: nothing is stored either way.
        let after = stored_events(s);
        assert_eq!(after.len(), self.events, "malformed event batches stored something: {after:?}");
        let metrics = s.call("GET", "/metrics", None, None).body;
        assert!(!metrics.contains("status=\"5"), "a 5xx was counted: {metrics}");
    }
}

/// Sends every request and asserts that none got a 5xx (or no answer), that an identify answer
/// comes from the served revision, and that afterwards nothing changed.
#[track_caller]
fn assert_refused_without_5xx(s: &Server, requests: &[RawRequest]) {
    let before = Before::now(s);
    for (method, url, headers, body) in requests {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let shown: String = url.chars().take(160).collect();
        match try_request(method, url, &headers, body.as_deref()) {
            Ok(reply) => {
                assert!(reply.status < 500, "{method} {shown} {headers:?}: {} {}", reply.status, reply.body);
                if url.contains("/groups/identify") && reply.status == 200 {
                    assert_eq!(reply.json()["data"]["audit"]["version"], json!(before.version), "{shown}");
                }
            }
            Err(e) => panic!("{method} {shown}: no HTTP answer: {e}"),
        }
    }
    before.assert_unchanged(s);
}

fn get(url: String) -> RawRequest {
    ("GET".into(), url, Vec::new(), None)
}

#[test]
fn an_ofrep_body_over_64_kib_is_refused_with_413_in_ofreps_shape() {
    let s = Server::start_demo();
    let before = Before::now(&s);
    let auth = format!("Bearer {}", sdk_key(&s));
    let oversized = format!(r#"{{"context": {{"targetingKey": "u_1", "pad": "{}"}}}}"#, "x".repeat(70 * 1024));
    for path in ["/ofrep/v1/evaluate/flags/checkout-v2", "/ofrep/v1/evaluate/flags"] {
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        let reply = try_request("POST", &format!("{}{path}", s.base()), &headers, Some(oversized.as_bytes()))
            .expect("an answer to an oversized body");
        assert_eq!(reply.status, 413, "{path}: {}", reply.body);
        let doc = reply.json();
        assert!(doc["errorCode"].is_string() && doc["errorDetails"].is_string(), "{path}: {doc}");
    }
    before.assert_unchanged(&s);
}

#[test]
fn malformed_pipet_queries_and_paths_get_no_5xx_and_change_nothing() {
    let s = Server::start_demo();
    let (base, root) = (s.base().to_string(), dev_root(&s));
    let long = "a".repeat(30_000);
    let too_long = "b".repeat(100_000);
    let commas = ",".repeat(20_000);
    let mut requests: Vec<RawRequest> = Vec::new();
    for query in [
        "id.USER=%ZZ%&ctx.loggedIn=%FF%FE&test=%",
        "id.USER=%00%01%02&ctx.country=%C3%28&prforceGroups=%%%%",
        "id.USER=a&prforceGroups=buttoncolortst99999999999999999999,checkout-v2-99999999999,;;;,%3B",
        "id.USER=a&prforceGroups=checkout-v21;stringValue:%22x%22,checkout-v21;map:{",
        "id.USER=a&test=%E2%82&ctx.plan=%F0%9F%98%80",
        "id.USER=a&&&===&=&id.USER&ctx.=x&id.=y",
        "id.USER=a+b&test=checkout-v2&ctx.loggedIn=%",
        "=&&id.USER",
        "id.USER=a&ctx.loggedIn=true&ctx.loggedIn=%FF",
        "%FF%FE=1&id.USER=a",
    ] {
        requests.push(get(format!("{root}/groups/identify?{query}")));
    }
    requests.push(get(format!("{root}/groups/identify?id.USER={long}&ctx.country={long}")));
    requests.push(get(format!("{root}/groups/identify?id.USER={too_long}")));
    requests.push(get(format!("{root}/groups/identify?id.USER=a&prforceGroups={commas}")));
    requests.push(get(format!("{root}/groups/identify?id.USER=a&test={commas}")));
    requests.push(get(format!("{root}/proctor/matrix/definition/%FF%FE")));
    requests.push(get(format!("{root}/proctor/matrix/definition/{long}")));
    requests.push(get(format!("{root}/proctor/matrix/definition/..%2F..%2Fetc%2Fpasswd")));
    requests.push(get(format!("{root}/proctor/matrix?x=%ZZ")));
    requests.push(get(format!("{base}/pipet/%FF%FE/groups/identify?id.USER=a")));
    requests.push(get(format!("{base}/pipet/{long}/groups/identify?id.USER=a")));
    assert_refused_without_5xx(&s, &requests);
}

#[test]
fn malformed_ofrep_and_event_bodies_get_no_5xx_and_change_nothing() {
    let s = Server::start_demo();
    let auth = format!("Bearer {}", sdk_key(&s));
    let bodies: Vec<Vec<u8>> = vec![
        b"\xff\xfe\x00".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"\"context\"".to_vec(),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        format!(r#"{{"context": {}1{}}}"#, r#"{"a":"#.repeat(5_000), "}".repeat(5_000)).into_bytes(),
        br#"{"context": {"targetingKey": 1e999}}"#.to_vec(),
        br#"{"context": {"targetingKey": 12345678901234567890123}}"#.to_vec(),
        br#"{"context": {"targetingKey": "u", "loggedIn": 1e308, "country": -0.0}}"#.to_vec(),
        br#"{"context": {"targetingKey": "\ud800"}}"#.to_vec(),
        br#"{"context": {"targetingKey": "u\u0000"}}"#.to_vec(),
        br#"{"context": {"targetingKey": "u", "targetingKey": "v"}}"#.to_vec(),
    ];
    let headers = vec![("Authorization".to_string(), auth.clone()), ("Content-Type".to_string(), "application/json".to_string())];
    let mut requests: Vec<RawRequest> = Vec::new();
    for body in &bodies {
        for path in ["/ofrep/v1/evaluate/flags/checkout-v2", "/ofrep/v1/evaluate/flags", "/ofrep/v1/evaluate/flags/%FF", "/sdk/v1/events"] {
            requests.push(("POST".into(), format!("{}{path}", s.base()), headers.clone(), Some(body.clone())));
        }
    }
    assert_refused_without_5xx(&s, &requests);
}

#[test]
fn malformed_headers_get_no_5xx_and_change_nothing() {
    let s = Server::start_demo();
    let auth = format!("Bearer {}", sdk_key(&s));
    let base = s.base().to_string();
    let mut requests: Vec<RawRequest> = Vec::new();
    for (name, value) in [
        ("Authorization", "Bearer"),
        ("Authorization", "Basic Zm9vOmJhcg=="),
        ("Authorization", "Bearer    "),
        ("X-API-Key", ""),
        ("If-None-Match", "\"\\\"'; --\""),
        ("If-None-Match", "*, , ,,W/\"x\""),
        ("Last-Event-ID", "%FF%00"),
    ] {
        let mut headers = vec![(name.to_string(), value.to_string())];
        if name != "Authorization" && name != "X-API-Key" {
            headers.push(("Authorization".into(), auth.clone()));
        }
        requests.push(("GET".into(), format!("{base}/sdk/v1/datafile"), headers.clone(), None));
        requests.push(("POST".into(), format!("{base}/ofrep/v1/evaluate/flags"), headers.clone(), Some(b"{}".to_vec())));
        requests.push(("POST".into(), format!("{base}/sdk/v1/events"), headers, Some(b"[]".to_vec())));
    }
    assert_refused_without_5xx(&s, &requests);
}
