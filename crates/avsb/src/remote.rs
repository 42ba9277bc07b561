//! The commands that talk to a running server over its admin API (`avsb results`, `avsb flag`):
//! where the server is, the admin token, and calls that keep the API's error object so callers
//! can turn it into sentences.

use clap::Args;
use serde_json::Value;

/// Where the server is and how to sign the calls.
#[derive(Debug, Clone, Args)]
pub struct RemoteArgs {
    /// The server's address.
    #[arg(long, env = "AVSB_BASE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An admin token (`avsb token create`, or a user's token from the console).
    #[arg(long, env = "AVSB_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The project (default: the only one, if the server has one).
    #[arg(long, env = "AVSB_PROJECT")]
    pub project: Option<String>,
    /// The environment.
    #[arg(long = "env", env = "AVSB_ENVIRONMENT", default_value = "production")]
    pub environment: String,
}

/// A connection to the admin API.
pub struct Remote {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// Percent-encodes a path segment or query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A call that got no usable answer, or an answer refusing it.
#[derive(Debug)]
pub enum RemoteError {
    /// The server answered with an error status; `error` is the API's error object (`code`,
    /// `message` and details such as `field`, `diagnostics` or `currentRevision`).
    Refused {
        /// The method called.
        method: String,
        /// The path called, under `/api/v1`.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The API's error object, or `{"message": <body>}` when the body was not the API's.
        error: Value,
    },
    /// The server could not be reached.
    Unreachable {
        /// The server's address.
        base: String,
        /// Why.
        reason: String,
    },
    /// The server answered with something other than JSON.
    NotJson {
        /// The method called.
        method: String,
        /// The path called.
        path: String,
        /// The parser's complaint.
        reason: String,
    },
}

impl RemoteError {
    /// The API's error code (`invalid_matrix`, `conflict`...), when the server refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            RemoteError::Refused { error, .. } => error["code"].as_str(),
            _ => None,
        }
    }

    /// The HTTP status, when the server refused.
    pub fn status(&self) -> Option<u16> {
        match self {
            RemoteError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The API's error object, when the server refused.
    pub fn error(&self) -> Option<&Value> {
        match self {
            RemoteError::Refused { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteError::Refused { method, path, status, error } => {
                let message = error["message"].as_str().unwrap_or("");
                write!(f, "the server refused {method} {path} ({status}): {message}")
            }
            RemoteError::Unreachable { base, reason } => write!(f, "cannot reach the server at {base}: {reason}"),
            RemoteError::NotJson { method, path, reason } => {
                write!(f, "the server's answer to {method} {path} is not JSON: {reason}")
            }
        }
    }
}

impl std::error::Error for RemoteError {}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The JSON body (`null` when empty).
    pub body: Value,
    /// The `ETag` header, if any.
    pub etag: Option<String>,
}

impl Remote {
    /// A connection from the arguments; no token is an error saying where to get one.
    pub fn new(args: &RemoteArgs) -> anyhow::Result<Remote> {
        let token = args.token.clone().filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            anyhow::anyhow!("an admin token is needed: pass --token or set AVSB_ADMIN_TOKEN (`avsb token create` makes one)")
        })?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(120))
            .build();
        Ok(Remote { base: args.url.trim_end_matches('/').to_string(), token, agent })
    }

    /// The server's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `METHOD /api/v1{path}` with an optional JSON body and extra headers.
    pub fn send(&self, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Result<Reply, RemoteError> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = self.agent.request(method, &url).set("Authorization", &format!("Bearer {}", self.token));
        for (name, value) in headers {
            request = request.set(name, value);
        }
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match response {
            Ok(r) => {
                let etag = r.header("ETag").map(str::to_string);
                let text = r.into_string().map_err(|e| RemoteError::Unreachable { base: self.base.clone(), reason: e.to_string() })?;
                let body = if text.trim().is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&text).map_err(|e| RemoteError::NotJson {
                        method: method.to_string(),
                        path: path.to_string(),
                        reason: e.to_string(),
                    })?
                };
                Ok(Reply { body, etag })
            }
            Err(ureq::Error::Status(status, r)) => {
                let text = r.into_string().unwrap_or_default();
                let error = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v.get("error").filter(|e| e.is_object()).cloned())
                    .unwrap_or_else(|| serde_json::json!({ "message": text }));
                Err(RemoteError::Refused { method: method.to_string(), path: path.to_string(), status, error })
            }
            Err(e) => Err(RemoteError::Unreachable { base: self.base.clone(), reason: e.to_string() }),
        }
    }

    /// `GET /api/v1{path}` as JSON.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.send("GET", path, None, &[])?.body)
    }

    /// `GET /api/v1{path}`, keeping the error for the caller to inspect.
    pub fn fetch(&self, path: &str) -> Result<Value, RemoteError> {
        self.send("GET", path, None, &[]).map(|r| r.body)
    }

    /// `POST /api/v1{path}` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, RemoteError> {
        self.send("POST", path, Some(body), &[]).map(|r| r.body)
    }

    /// `PUT /api/v1{path}` with a JSON body.
    pub fn put(&self, path: &str, body: &Value) -> Result<Value, RemoteError> {
        self.send("PUT", path, Some(body), &[]).map(|r| r.body)
    }

    /// `PATCH /api/v1{path}` with a JSON body.
    pub fn patch(&self, path: &str, body: &Value) -> Result<Value, RemoteError> {
        self.send("PATCH", path, Some(body), &[]).map(|r| r.body)
    }

    /// `DELETE /api/v1{path}`.
    pub fn delete(&self, path: &str) -> Result<Value, RemoteError> {
        self.send("DELETE", path, None, &[]).map(|r| r.body)
    }

    /// The project named, or the server's only project.
    pub fn project(&self, args: &RemoteArgs) -> anyhow::Result<String> {
        if let Some(p) = &args.project {
            return Ok(p.clone());
        }
        let projects = self.get("/projects")?;
        let keys: Vec<&str> =
            projects["projects"].as_array().into_iter().flatten().filter_map(|p| p["key"].as_str()).collect();
        match keys.as_slice() {
            [only] => Ok((*only).to_string()),
            [] => Err(anyhow::anyhow!("the server has no project yet")),
            many => Err(anyhow::anyhow!("the server has several projects ({}); name one with --project", many.join(", "))),
        }
    }
}
