//! Operations: the health check and the Prometheus metrics, which name route templates and
//! never a secret.

use serde_json::json;

use crate::common::{try_request, Server};
use crate::support::{dev_root, dev_version, exposure, float_flag, identify, ofrep, post_events, save_test, sdk_key, track};

/// The value of the metric line named exactly `line_prefix` (name and labels).
fn metric_value(metrics: &str, line_prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(line_prefix) && l[line_prefix.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn metrics(s: &Server) -> String {
    let reply = s.call("GET", "/metrics", None, None);
    assert_eq!(reply.status, 200);
    reply.body
}

const VERSION_LINE: &str = r#"avsb_matrix_version{project="demo",environment="development"}"#;

#[test]
fn healthz_answers_ok() {
    let s = Server::start_demo();
    let reply = s.call("GET", "/healthz", None, None);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "ok");
}

#[test]
fn metrics_count_requests_by_route_template_method_and_status() {
    let s = Server::start_demo();
    assert_eq!(identify(&s, "id.USER=u_1").status, 200);
    assert_eq!(identify(&s, "test=x").status, 400);
    assert_eq!(ofrep(&s, Some("checkout-v2"), Some(r#"{"context":{"targetingKey":"u"}}"#)).status, 200);
    assert_eq!(s.call("GET", "/sdk/v1/datafile", Some(&sdk_key(&s)), None).status, 200);
    let metrics = metrics(&s);
    assert!(
        metrics.contains(r#"avsb_http_requests_total{route="/pipet/{sdk_key}/groups/identify",method="GET",status="200"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"avsb_http_requests_total{route="/pipet/{sdk_key}/groups/identify",method="GET",status="400"} 1"#));
    assert!(metrics.contains(r#"route="/ofrep/v1/evaluate/flags/{key}""#));
    assert!(metrics.contains(r#"route="/sdk/v1/datafile""#));
}

#[test]
fn metrics_never_show_a_secret_even_of_unrouted_requests() {
    let s = Server::start_demo();
    let key = sdk_key(&s);
    assert_eq!(identify(&s, "id.USER=u_1").status, 200);
    assert_eq!(s.call("GET", "/sdk/v1/datafile", Some(&key), None).status, 200);
    // Paths holding the key that match no route, and a bad key in the Pipet root.
    assert_eq!(s.call("GET", &format!("/nowhere/{key}"), None, None).status, 404);
    assert_eq!(s.call("GET", &format!("/pipet/{key}x/groups/identify?id.USER=a"), None, None).status, 401);
    assert_eq!(try_request("POST", &format!("{}/groups/identify", dev_root(&s)), &[], Some(b"")).expect("answer").status, 405);
    assert_eq!(s.admin("GET", "/projects", None).status, 200);
    let metrics = metrics(&s);
    assert!(!metrics.contains(&key), "the SDK key leaked into /metrics");
    assert!(!metrics.contains(s.var("AVSB_ADMIN_TOKEN")));
}

#[test]
fn metrics_report_each_environments_matrix_version_and_follow_edits() {
    let s = Server::start_demo();
    let metrics = metrics(&s);
    let version: f64 = dev_version(&s).parse().expect("numeric version");
    assert_eq!(metric_value(&metrics, VERSION_LINE), Some(version), "{metrics}");
    assert!(metric_value(&metrics, r#"avsb_matrix_version{project="demo",environment="staging"}"#).is_some());
    let new_version: f64 = save_test(&s, "float-flag", &float_flag()).parse().expect("numeric");
    let metrics = self::metrics(&s);
    assert_eq!(metric_value(&metrics, VERSION_LINE), Some(new_version), "{metrics}");
    assert_ne!(new_version, version);
}

#[test]
fn metrics_count_accepted_events_by_kind_and_rejected_ones() {
    let s = Server::start_demo();
    assert_eq!(post_events(&s, &json!([exposure("u"), track("u")]).to_string()).status, 202);
    assert_eq!(post_events(&s, &json!([exposure("u"), {"kind": "nope"}]).to_string()).status, 400);
    let metrics = metrics(&s);
    assert_eq!(metric_value(&metrics, r#"avsb_events_accepted_total{kind="exposure"}"#), Some(1.0), "{metrics}");
    assert_eq!(metric_value(&metrics, r#"avsb_events_accepted_total{kind="track"}"#), Some(1.0), "{metrics}");
    assert_eq!(metric_value(&metrics, "avsb_events_rejected_total"), Some(2.0), "{metrics}");
}
