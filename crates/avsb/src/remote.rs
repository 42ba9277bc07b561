//! The commands that talk to a running server over its admin API (`avsb results`): where the
//! server is, the admin token, and calls that turn the API's errors into sentences.

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

    /// `GET /api/v1{path}` as JSON.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let response = self.agent.get(&url).set("Authorization", &format!("Bearer {}", self.token)).call();
        match response {
            Ok(r) => r.into_json().map_err(|e| anyhow::anyhow!("the server's answer to GET {path} is not JSON: {e}")),
            Err(ureq::Error::Status(status, r)) => {
                let body = r.into_string().unwrap_or_default();
                let message = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                    .unwrap_or(body);
                Err(anyhow::anyhow!("the server refused GET {path} ({status}): {message}"))
            }
            Err(e) => Err(anyhow::anyhow!("cannot reach the server at {}: {e}", self.base)),
        }
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
