//! One HTTP request at a time over loopback, with ureq: what the tests of the in-process server
//! and of the real binary (`crates/avsb/tests/common`, which includes this file) send.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

/// A response: status, headers (lower-case names) and body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Reply {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// A header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// One HTTP request; `auth` is a bearer secret; non-2xx statuses are returned, not raised.
pub fn request(method: &str, url: &str, auth: Option<&str>, body: Option<&str>, headers: &[(&str, &str)]) -> Reply {
    let bearer = auth.map(|secret| format!("Bearer {secret}"));
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if let Some(bearer) = &bearer {
        all.push(("Authorization", bearer));
    }
    if body.is_some() {
        all.push(("Content-Type", "application/json"));
    }
    try_request(method, url, &all, body.map(str::as_bytes)).unwrap_or_else(|e| panic!("{e}"))
}

/// One HTTP request with raw headers and body; an error only when no HTTP answer came back
/// (the server may close a connection it refuses).
pub fn try_request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Result<Reply, String> {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
    let mut req = agent.request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("{method} {url}: {e}")),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|n| response.header(&n).map(|v| (n.to_ascii_lowercase(), v.to_string())))
        .collect();
    let body = response.into_string().unwrap_or_default();
    Ok(Reply { status, headers, body })
}
