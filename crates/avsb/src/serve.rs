//! `avsb serve` and `avsb token`: the server's process around `avsb_server::run` (signals,
//! logging, the data directory, the demo project) and admin-token management.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use avsb_server::ops::accounts;
use avsb_server::ops::keys::TokenScope;
use avsb_server::store::{ProjectRole, Role, SqliteStore, Store, TokenOwner};
use avsb_server::{AppState, Options};
use clap::{Args, Subcommand};

/// The database file inside the data directory.
const DATABASE: &str = "avsb.sqlite3";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0 picks a free port; the chosen one is printed).
    #[arg(long, env = "AVSB_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The data directory (created if missing); holds the SQLite database.
    #[arg(long, env = "AVSB_DATA", default_value = "avsb-data")]
    data: PathBuf,
    /// Create the demo project (once) and print where to point a Django app.
    #[arg(long)]
    demo: bool,
    /// Log level or filter (`info`, `debug`, `avsb_server=debug,warn`).
    #[arg(long, env = "AVSB_LOG", default_value = "info")]
    log_level: String,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "AVSB_LOG_JSON")]
    log_json: bool,
    /// Seconds between heartbeats on idle SDK streams.
    #[arg(long, env = "AVSB_HEARTBEAT_SECS", default_value_t = 15)]
    heartbeat_secs: u64,
    /// Mark the console's cookies `Secure` (set this when a proxy serves it over HTTPS; they are
    /// also `Secure` whenever the proxy sends `X-Forwarded-Proto: https`).
    #[arg(long, env = "AVSB_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Seconds a client may take to send a request's head before its connection is closed.
    #[arg(long, env = "AVSB_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait for its next request (keep it above a proxy's
    /// upstream keep-alive timeout). SDK streams are never cut: they are answers, not idle.
    #[arg(long, env = "AVSB_IDLE_TIMEOUT_SECS", default_value_t = 75, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout_secs: u64,
    /// Seconds a request's body may take to arrive in full.
    #[arg(long, env = "AVSB_BODY_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog. Default: 80% of the file
    /// limit (`ulimit -n`, systemd's LimitNOFILE) less 32.
    #[arg(long, env = "AVSB_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: Option<u64>,
    /// The largest admin request body, in MiB (a 10,000-test matrix is about 6 MiB, 12 MiB
    /// pretty-printed).
    #[arg(long, env = "AVSB_MAX_ADMIN_BODY_MIB", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_admin_body_mib: u64,
    /// `/readyz` probes the database at most this often, in seconds.
    #[arg(long, env = "AVSB_READINESS_INTERVAL_SECS", default_value_t = 5)]
    readiness_interval_secs: u64,
    /// Log every request at info: method, route template, status, duration (never a path or a
    /// query string, which may hold an SDK key).
    #[arg(long, env = "AVSB_ACCESS_LOG")]
    access_log: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an admin token; it is printed once and stored hashed.
    Create {
        /// Who the token is for (recorded as the author of its revisions).
        #[arg(long)]
        name: String,
        /// `read` or `write`.
        #[arg(long, default_value = "write")]
        role: String,
        /// The data directory.
        #[arg(long, env = "AVSB_DATA", default_value = "avsb-data")]
        data: PathBuf,
    },
    /// List admin tokens (never the secrets).
    List {
        /// The data directory.
        #[arg(long, env = "AVSB_DATA", default_value = "avsb-data")]
        data: PathBuf,
    },
    /// Revoke an admin token by id.
    Revoke {
        /// The token's id (from `avsb token list`).
        id: i64,
        /// The data directory.
        #[arg(long, env = "AVSB_DATA", default_value = "avsb-data")]
        data: PathBuf,
    },
}

fn open_store(data: &Path) -> anyhow::Result<SqliteStore> {
    avsb_server::store::sqlite::secure_data_dir(data)
        .map_err(|e| anyhow::anyhow!("cannot create the data directory {}: {e}", data.display()))?;
    SqliteStore::open(&data.join(DATABASE)).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", data.join(DATABASE).display()))
}

/// What a data directory held before the server opened it: signs that an empty database there
/// replaced one that had data (a deleted or moved file, a wrong `--data`).
struct PreviousData {
    /// The database file existed.
    database: bool,
    /// Other files of a database or of the demo, by name.
    signs: Vec<String>,
}

impl PreviousData {
    fn look(data: &Path) -> PreviousData {
        let database = data.join(DATABASE).exists();
        let signs = [format!("{DATABASE}-wal"), format!("{DATABASE}-shm"), "demo-secrets.json".to_string()]
            .into_iter()
            .filter(|name| data.join(name).exists())
            .collect();
        PreviousData { database, signs }
    }

    /// Warns, loudly, when the database has no project, no admin token and no user although the
    /// directory shows a database was there (the file existed, or its `-wal` did without it).
    async fn warn_if_lost(&self, store: &dyn avsb_server::store::Store, data: &Path) -> anyhow::Result<()> {
        let empty = store.list_projects().await?.is_empty()
            && store.list_admin_tokens().await?.is_empty()
            && store.user_count().await? == 0;
        let orphans = !self.database && !self.signs.is_empty();
        if !(empty && (self.database || orphans)) {
            return Ok(());
        }
        let found = if orphans {
            format!("{} but no {DATABASE}: the database file was deleted or moved", self.signs.join(", "))
        } else if self.signs.is_empty() {
            format!("{DATABASE} exists but holds no project, no admin token and no user")
        } else {
            format!("{DATABASE} holds no project, no admin token and no user, beside {}", self.signs.join(", "))
        };
        tracing::warn!(
            "THIS DATA DIRECTORY LOOKS EMPTIED: {found} (in {}). If this instance had data, stop the server now,              check --data / AVSB_DATA points where the data lives, or restore {DATABASE} (with its -wal file, if the              backup has one) from the latest backup into that directory, then start again. A new instance can go              on: create the owner with the setup link.",
            data.display()
        );
        Ok(())
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn init_logging(level: &str, json: bool) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("--log-level '{level}' is not a valid filter: {e}"))?;
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = if json { builder.json().try_init() } else { builder.try_init() };
    result.map_err(|e| anyhow::anyhow!("logging: {e}"))
}

/// Installs the SIGINT and SIGTERM handlers now, and resolves when one of the signals arrives.
/// Called before the server prints that it is ready: a signal sent right after those lines must
/// still end it gracefully, not by the signal's default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let terminate = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            tokio::select! {
                _ = wait_for(terminate) => {}
                _ = wait_for(interrupt) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Waits for a registered signal; one that could not be registered never arrives.
#[cfg(unix)]
async fn wait_for(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub fn serve(args: ServeArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    init_logging(&args.log_level, args.log_json)?;
    let before = PreviousData::look(&args.data);
    let store = open_store(&args.data)?;
    runtime()?.block_on(async move {
        let secs = std::time::Duration::from_secs;
        let options = Options {
            heartbeat: secs(args.heartbeat_secs.max(1)),
            secure_cookies: args.secure_cookies,
            header_timeout: secs(args.header_timeout_secs),
            idle_timeout: secs(args.idle_timeout_secs),
            body_timeout: secs(args.body_timeout_secs),
            max_connections: args.max_connections.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            max_admin_body: usize::try_from(args.max_admin_body_mib * 1024 * 1024).unwrap_or(usize::MAX),
            readiness_interval: secs(args.readiness_interval_secs),
            access_log: args.access_log,
            ..Options::default()
        };
        let state = AppState::load(Arc::new(store), options).await?;
        if !args.demo {
            before.warn_if_lost(&*state.store, &args.data).await?;
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
        let address = listener.local_addr()?;
        let base_url = format!("http://{address}");
        let shutdown = shutdown_signal();
        if args.demo {
            let secrets = avsb_server::demo::ensure(&state, &args.data).await?;
            for line in secrets.env_lines(&base_url) {
                writeln!(out, "{line}")?;
            }
        } else {
            writeln!(out, "AVSB_BASE_URL={base_url}")?;
            writeln!(out, "AVSB_CONSOLE_URL={base_url}/")?;
            // A fresh instance without a user: a one-time link that creates the owner.
            if let Some(token) = accounts::setup_token(&*state.store).await? {
                writeln!(out, "AVSB_SETUP_URL={base_url}/setup?token={token}")?;
            }
        }
        out.flush()?;
        tracing::info!(%address, data = %args.data.display(), "serving");
        avsb_server::run(listener, state, shutdown).await?;
        Ok(0)
    })
}

/// `avsb token create|list|revoke`.
pub fn token(command: TokenCommand, out: &mut dyn Write) -> anyhow::Result<u8> {
    runtime()?.block_on(async move {
        match command {
            TokenCommand::Create { name, role, data } => {
                let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("--role must be 'read' or 'write', not '{role}'"))?;
                let store = open_store(&data)?;
                let (secret, info) =
                    avsb_server::ops::keys::create_admin_token(&store, &name, role, TokenOwner::Instance, "avsb token").await?;
                writeln!(out, "{secret}")?;
                eprintln!("created {} token {} for '{}'; it is shown only this once", role.as_str(), info.id, info.name);
            }
            TokenCommand::List { data } => {
                let store = open_store(&data)?;
                for t in store.list_admin_tokens().await? {
                    let state = if t.revoked_at.is_some() { "revoked" } else { "active" };
                    writeln!(out, "{}\t{}\t{}\t{}…\t{}", t.id, t.name, t.role.as_str(), t.prefix, state)?;
                }
            }
            TokenCommand::Revoke { id, data } => {
                let store = open_store(&data)?;
                avsb_server::ops::keys::revoke_admin_token(&store, id, TokenScope::All, "avsb token").await?;
                writeln!(out, "revoked token {id}")?;
            }
        }
        Ok(0)
    })
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from `AVSB_PASSWORD`, or made and printed once.
    Create {
        /// The username they sign in with.
        username: String,
        /// The name shown (default: the username).
        #[arg(long)]
        name: Option<String>,
        /// Make them an owner: an admin of every project, who manages users.
        #[arg(long)]
        owner: bool,
        /// The data directory.
        #[arg(long, env = "AVSB_DATA", default_value = "avsb-data")]
        data: PathBuf,
    },
    /// List users and their roles.
    List {
        /// The data directory.
        #[arg(long, env = "AVSB_DATA", default_value = "avsb-data")]
        data: PathBuf,
    },
    /// Give a user a role in a project (`viewer`, `editor`, `admin`), or `none` to remove them.
    SetRole {
        /// The user.
        username: String,
        /// The project key.
        project: String,
        /// `viewer`, `editor`, `admin` or `none`.
        role: String,
        /// The data directory.
        #[arg(long, env = "AVSB_DATA", default_value = "avsb-data")]
        data: PathBuf,
    },
    /// Set a new password (from `AVSB_PASSWORD`, or made and printed once); ends their sessions.
    ResetPassword {
        /// The user.
        username: String,
        /// The data directory.
        #[arg(long, env = "AVSB_DATA", default_value = "avsb-data")]
        data: PathBuf,
    },
}

/// The password from `AVSB_PASSWORD`, or a new random one (then `true`: print it).
fn password_from_env() -> anyhow::Result<(String, bool)> {
    match std::env::var("AVSB_PASSWORD") {
        Ok(p) if !p.is_empty() => Ok((p, false)),
        _ => Ok((accounts::random_password()?, true)),
    }
}

/// `avsb user create|list|set-role|reset-password`.
pub fn user(command: UserCommand, out: &mut dyn Write) -> anyhow::Result<u8> {
    runtime()?.block_on(async move {
        match command {
            UserCommand::Create { username, name, owner, data } => {
                let store = open_store(&data)?;
                let (password, made) = password_from_env()?;
                let user =
                    accounts::create_user(&store, &username, name.as_deref().unwrap_or(""), &password, owner, "avsb user")
                        .await?;
                if made {
                    writeln!(out, "{password}")?;
                    eprintln!("created user '{}'; the password above is shown only this once", user.username);
                } else {
                    eprintln!("created user '{}'", user.username);
                }
            }
            UserCommand::List { data } => {
                let store = open_store(&data)?;
                let projects = store.list_projects().await?;
                for u in store.list_users().await? {
                    let mut roles: Vec<String> = store
                        .memberships(u.id)
                        .await?
                        .into_iter()
                        .filter_map(|(p, r)| projects.iter().find(|x| x.id == p).map(|x| format!("{}:{}", x.key, r.as_str())))
                        .collect();
                    if u.is_owner {
                        roles.insert(0, "owner".into());
                    }
                    let state = if u.disabled_at.is_some() { "disabled" } else { "active" };
                    writeln!(out, "{}\t{}\t{}\t{}", u.username, u.display_name, roles.join(","), state)?;
                }
            }
            UserCommand::SetRole { username, project, role, data } => {
                let store = open_store(&data)?;
                let role = match role.as_str() {
                    "none" => None,
                    other => Some(ProjectRole::parse(other).ok_or_else(|| {
                        anyhow::anyhow!("the role must be viewer, editor, admin or none, not '{other}'")
                    })?),
                };
                let (user, _) =
                    store.user_by_username(&username).await?.ok_or_else(|| anyhow::anyhow!("no user '{username}'"))?;
                let project =
                    store.project(&project).await?.ok_or_else(|| anyhow::anyhow!("no project '{project}'"))?;
                accounts::set_role(&store, &project, &user, role, "avsb user").await?;
                writeln!(out, "{} is {} of {}", user.username, role.map_or("no longer a member", ProjectRole::as_str), project.key)?;
            }
            UserCommand::ResetPassword { username, data } => {
                let store = open_store(&data)?;
                let (user, _) =
                    store.user_by_username(&username).await?.ok_or_else(|| anyhow::anyhow!("no user '{username}'"))?;
                let (password, made) = password_from_env()?;
                accounts::set_password(&store, &user, &password, "avsb user").await?;
                if made {
                    writeln!(out, "{password}")?;
                }
                eprintln!("the password of '{}' is reset and their sessions are ended", user.username);
            }
        }
        Ok(0)
    })
}
