//! `avsb flag`: create and change tests on a running server without writing JSON. Every change
//! is the server's own per-test operation (put a test, one allocation's ranges, targets, kill,
//! roll back one test, promote); before it, the server's preview shows the diff and the share of
//! units that would change bucket, and a person confirms on a terminal (`--yes` in scripts).
//! The command line turns percentages into ranges and names into values; the server validates,
//! diffs and counts, so nothing here re-implements bucketing.
//!
//! Exit codes: 0 done (or nothing to do), 1 refused (by the server or its validation; nothing
//! changed), 2 could not run (arguments, connection, an unknown project, environment or test),
//! 3 not confirmed (no terminal and no `--yes`, or the answer was no; nothing changed).

mod build;
mod render;

use std::io::{BufRead, IsTerminal, Write};

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::remote::{encode, Remote, RemoteArgs, RemoteError};

const REFUSED: u8 = 1;
const FAILED: u8 = 2;
const NOT_CONFIRMED: u8 = 3;

/// `avsb flag`.
#[derive(Debug, Args)]
pub struct FlagArgs {
    #[command(subcommand)]
    command: FlagCommand,
}

#[derive(Debug, Subcommand)]
enum FlagCommand {
    /// Create a test from a template: boolean, string, json, abn (A/B/n) or rollout.
    Create(CreateArgs),
    /// Give a bucket ("on", or the last) a share of an allocation (`10%`), or split it
    /// (`--split 50/50`): only the boundary next to the bucket's range moves.
    Rollout(RolloutArgs),
    /// Set the eligibility rule (`--rule`, or an allocation's with `--allocation`), or give
    /// identifiers a bucket (`--id u_1,u_2 --bucket on`).
    Target(TargetArgs),
    /// The kill switch: serve one bucket to everyone.
    Kill(KillArgs),
    /// Restore one test as it was at an earlier revision of its environment.
    Rollback(RollbackArgs),
    /// Copy a test to a later environment (`--from staging --to production`).
    Promote(PromoteArgs),
    /// A test in every environment: buckets, allocations with percentages and rules, targets.
    Show(ShowArgs),
    /// Every test of the project and its split in each environment.
    List(ListArgs),
    /// The revisions that changed a test, newest first, in every environment.
    History(HistoryArgs),
}

/// How a change is confirmed and recorded.
#[derive(Debug, Args)]
struct Confirm {
    /// Why: recorded in the revision's audit. Required in protected environments and the last
    /// one (as the console requires it); asked for on a terminal.
    #[arg(long)]
    comment: Option<String>,
    /// Apply without asking (needed without a terminal).
    #[arg(long, short = 'y')]
    yes: bool,
    /// When a rule needs a context variable the project's schema lacks, add it:
    /// NAME:TYPE[=DEFAULT] with TYPE boolean, string, integer, long, double... (repeatable).
    #[arg(long = "add-variable", value_name = "NAME:TYPE[=DEFAULT]")]
    add_variables: Vec<String>,
    /// Print JSON for scripts: the server's preview and the committed revision.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The test's name.
    name: String,
    /// boolean (off/on, created off), string, json, abn (inactive + variants split equally),
    /// rollout (off/on, on for --percent).
    #[arg(long, default_value = "boolean")]
    template: String,
    /// The variants, in order (string, json, abn): `control,blue,green`.
    #[arg(long, value_delimiter = ',')]
    variants: Vec<String>,
    /// A variant's payload: `on=true`, `blue=#00f`, `control={"limit": 10}` (repeatable).
    /// Defaults: boolean off=false, on=true; string the variant's name; json `{}`.
    #[arg(long = "value", value_name = "VARIANT=VALUE", value_parser = key_value)]
    values: Vec<(String, String)>,
    /// A description.
    #[arg(long)]
    description: Option<String>,
    /// The identifier type (default: the project's default).
    #[arg(long = "type", value_name = "TYPE")]
    identifier_type: Option<String>,
    /// For `--template rollout`: the share of "on" (default 0%).
    #[arg(long)]
    percent: Option<String>,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    confirm: Confirm,
}

#[derive(Debug, Args)]
struct RolloutArgs {
    /// The test.
    name: String,
    /// The bucket's share: `10%`.
    percent: Option<String>,
    /// Every bucket's share instead: `50/50`, `34/33/33`, or `control=50,treatment=50`.
    #[arg(long, conflicts_with = "percent")]
    split: Option<String>,
    /// The bucket that gets the share (default: "on", else the last bucket).
    #[arg(long)]
    bucket: Option<String>,
    /// The allocation, for tests with several (0 is the first).
    #[arg(long)]
    allocation: Option<usize>,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    confirm: Confirm,
}

#[derive(Debug, Args)]
struct TargetArgs {
    /// The test.
    name: String,
    /// The eligibility rule, in Proctor's syntax: `${staff}`; empty removes it.
    #[arg(long)]
    rule: Option<String>,
    /// Set this allocation's rule instead of the test's eligibility rule.
    #[arg(long, requires = "rule")]
    allocation: Option<usize>,
    /// Identifiers (of the test's identifier type) that always get --bucket: `u_1,u_2`.
    #[arg(long = "id", value_delimiter = ',', requires = "bucket")]
    ids: Vec<String>,
    /// The bucket the identifiers get (name or value).
    #[arg(long)]
    bucket: Option<String>,
    /// Identifiers to take out of the targets: `u_1,u_2`.
    #[arg(long, value_delimiter = ',')]
    remove: Vec<String>,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    confirm: Confirm,
}

#[derive(Debug, Args)]
struct KillArgs {
    /// The test.
    name: String,
    /// The bucket everyone gets (name or value).
    #[arg(long)]
    bucket: String,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    confirm: Confirm,
}

#[derive(Debug, Args)]
struct RollbackArgs {
    /// The test.
    name: String,
    /// The earlier revision of the environment (see `avsb flag history`).
    #[arg(long = "to", value_name = "REVISION")]
    to: String,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    confirm: Confirm,
}

#[derive(Debug, Args)]
struct PromoteArgs {
    /// The test.
    name: String,
    /// The environment to copy from.
    #[arg(long)]
    from: String,
    /// The environment to copy to (later in promotion order).
    #[arg(long)]
    to: String,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    confirm: Confirm,
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// The test.
    name: String,
    #[command(flatten)]
    remote: RemoteArgs,
    /// Print JSON: the definition in each environment (null where absent).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// Print JSON: each test's definition in each environment.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct HistoryArgs {
    /// The test.
    name: String,
    /// How many revisions of each environment to look through.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[command(flatten)]
    remote: RemoteArgs,
    /// Print JSON: each revision with the test's change.
    #[arg(long)]
    json: bool,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected VARIANT=VALUE, got '{s}'")),
    }
}

/// Runs `avsb flag`.
pub fn run(args: FlagArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let mut io = Io { out, err };
    match args.command {
        FlagCommand::Create(a) => create(&a, &mut io),
        FlagCommand::Rollout(a) => rollout(&a, &mut io),
        FlagCommand::Target(a) => target(&a, &mut io),
        FlagCommand::Kill(a) => kill(&a, &mut io),
        FlagCommand::Rollback(a) => rollback(&a, &mut io),
        FlagCommand::Promote(a) => promote(&a, &mut io),
        FlagCommand::Show(a) => show(&a, &mut io),
        FlagCommand::List(a) => list(&a, &mut io),
        FlagCommand::History(a) => history(&a, &mut io),
    }
}

/// Where output and questions go.
struct Io<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
}

impl Io<'_> {
    /// Asks on the terminal (the question on stderr) and reads one line.
    fn ask(&mut self, question: &str) -> anyhow::Result<String> {
        write!(self.err, "{question}")?;
        self.err.flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim().to_string())
    }

    /// Shows a refusal as sentences; its exit code.
    fn fail(&mut self, e: &RemoteError) -> anyhow::Result<u8> {
        writeln!(self.err, "avsb: {}", render::refusal(e))?;
        Ok(match e.status() {
            Some(400 | 403 | 409 | 422) => REFUSED,
            _ => FAILED,
        })
    }
}

/// A connection and the project it works on.
struct Session {
    remote: Remote,
    key: String,
    /// The project as the API shows it, with its environments in promotion order.
    project: Value,
}

impl Session {
    fn open(args: &RemoteArgs) -> anyhow::Result<Session> {
        let remote = Remote::new(args)?;
        let key = remote.project(args)?;
        let project = remote.get(&format!("/projects/{}", encode(&key)))?;
        Ok(Session { remote, key, project })
    }

    fn environments(&self) -> Vec<&Value> {
        self.project["environments"].as_array().map(|a| a.iter().collect()).unwrap_or_default()
    }

    fn environment(&self, key: &str) -> anyhow::Result<&Value> {
        let envs = self.environments();
        envs.iter().copied().find(|e| e["key"] == key).ok_or_else(|| {
            let names: Vec<&str> = envs.iter().filter_map(|e| e["key"].as_str()).collect();
            anyhow::anyhow!("project '{}' has no environment '{key}' (its environments: {})", self.key, names.join(", "))
        })
    }

    /// The revision an environment serves now.
    fn current_revision(&self, env: &str) -> anyhow::Result<String> {
        Ok(self.environment(env)?["currentRevision"].as_str().unwrap_or("").to_string())
    }

    /// Whether the console asks for a comment here: a protected environment, or the last one.
    fn careful(&self, env: &str) -> bool {
        let envs = self.environments();
        envs.iter().any(|e| e["key"] == env && e["protected"] == true) || envs.last().is_some_and(|e| e["key"] == env)
    }

    fn env_path(&self, env: &str) -> String {
        format!("/projects/{}/environments/{}", encode(&self.key), encode(env))
    }

    fn test_path(&self, env: &str, test: &str) -> String {
        format!("{}/tests/{}", self.env_path(env), encode(test))
    }
}

/// A proposed change: the edit as the preview takes it, and the write that commits it.
struct Change {
    environment: String,
    /// `{"kind": ..., ...}` for `POST .../preview`.
    edit: Value,
    /// The revision the edit was built from, when it was built from what was read: a change to
    /// the test since then conflicts instead of being overwritten.
    base: Option<String>,
    method: &'static str,
    path: String,
    /// The write's body, without `comment` and `baseRevision`.
    body: Value,
}

/// A context variable to add to the schema.
#[derive(Debug, Clone)]
struct Variable {
    name: String,
    ty: avsb_core::ContextType,
    default: Option<String>,
}

impl Variable {
    fn describe(&self) -> String {
        let ty = type_word(self.ty);
        match &self.default {
            Some(d) => format!("'{}' ({ty}, default {})", self.name, if d.is_empty() { "empty".to_string() } else { d.clone() }),
            None => format!("'{}' ({ty}, no default: requests must carry it)", self.name),
        }
    }
}

const TYPE_WORDS: &str = "boolean, string, integer, long, double, float, char, ReleaseVersion, UserAgent";

fn type_word(ty: avsb_core::ContextType) -> &'static str {
    use avsb_core::ContextType as T;
    match ty {
        T::Byte => "byte",
        T::Short => "short",
        T::Integer => "integer",
        T::Long => "long",
        T::Float => "float",
        T::Double => "double",
        T::Boolean => "boolean",
        T::Character => "char",
        T::String => "string",
        T::UserAgent => "UserAgent",
        T::ReleaseVersion => "ReleaseVersion",
    }
}

/// A type as people write it: Pipet's names (`int`, `Integer`, `java.lang.Integer`) and a few
/// words (`integer`, `bool`, `version`).
fn parse_type(text: &str) -> Option<avsb_core::ContextType> {
    let lower = text.trim().to_ascii_lowercase();
    let alias = match lower.as_str() {
        "integer" => "int",
        "bool" => "boolean",
        "str" | "text" => "string",
        "character" => "char",
        "version" | "releaseversion" => "ReleaseVersion",
        "useragent" | "user-agent" | "ua" => "UserAgent",
        other => other,
    };
    avsb_core::ContextType::from_name(text.trim()).or_else(|| avsb_core::ContextType::from_name(alias))
}

/// The default a new variable gets, so requests that do not carry it yet keep working.
fn default_for(ty: avsb_core::ContextType) -> Option<String> {
    use avsb_core::ContextType as T;
    match ty {
        T::Boolean => Some("false".into()),
        T::String | T::UserAgent => Some(String::new()),
        T::Byte | T::Short | T::Integer | T::Long | T::Float | T::Double => Some("0".into()),
        T::Character | T::ReleaseVersion => None,
    }
}

/// Parses `--add-variable NAME:TYPE[=DEFAULT]`.
fn parse_variable(text: &str) -> Result<Variable, String> {
    let (name, rest) = text.split_once(':').ok_or_else(|| format!("--add-variable {text}: expected NAME:TYPE, e.g. staff:boolean"))?;
    let (ty_text, default) = match rest.split_once('=') {
        Some((t, d)) => (t, Some(d.to_string())),
        None => (rest, None),
    };
    let name = name.trim();
    if !avsb_core::rule::is_variable_name(name) {
        return Err(format!("--add-variable {text}: '{name}' cannot be a variable's name in a rule"));
    }
    let ty = parse_type(ty_text).ok_or_else(|| format!("--add-variable {text}: '{ty_text}' is not a type ({TYPE_WORDS})"))?;
    Ok(Variable { name: name.to_string(), ty, default: default.or_else(|| default_for(ty)) })
}

/// Adds a context variable to the project's schema, guarded by the schema's version.
fn add_variable(s: &Session, v: &Variable) -> Result<(), RemoteError> {
    let path = format!("/projects/{}/schema", encode(&s.key));
    let reply = s.remote.send("GET", &path, None, &[])?;
    let mut schema = reply.body;
    if !schema["context"].is_object() {
        schema["context"] = json!({});
    }
    if schema["context"].get(&v.name).is_some() {
        return Ok(());
    }
    let mut entry = json!({"source": "QUERY", "sourceKey": v.name, "type": v.ty.canonical_name()});
    if let Some(d) = &v.default {
        entry["defaultValue"] = json!(d);
    }
    schema["context"][&v.name] = entry;
    let headers: Vec<(&str, &str)> = reply.etag.as_deref().map(|t| ("If-Match", t)).into_iter().collect();
    s.remote.send("PUT", &path, Some(&schema), &headers).map(|_| ())
}

/// Previews a change, shows it, asks, and writes it on the previewed revision.
fn apply(s: &Session, change: Change, c: &Confirm, io: &mut Io) -> anyhow::Result<u8> {
    let env = change.environment.clone();
    let mut comment = c.comment.clone().filter(|t| !t.trim().is_empty());
    if comment.is_none() && c.yes && s.careful(&env) {
        writeln!(io.err, "avsb: nothing was changed: a comment is required in {env} (say why with --comment)")?;
        return Ok(FAILED);
    }
    let mut request = json!({ "edit": change.edit });
    if let Some(base) = &change.base {
        request["baseRevision"] = json!(base);
    }
    let preview = match s.remote.post(&format!("{}/preview", s.env_path(&env)), &request) {
        Ok(p) => p,
        Err(e) => return io.fail(&e),
    };
    let errors: Vec<&Value> = preview["diagnostics"].as_array().into_iter().flatten().filter(|d| d["severity"] == "error").collect();
    let mut variables: Vec<Variable> = Vec::new();
    let terminal = std::io::stdin().is_terminal();
    if preview["valid"] != true {
        let mut unknown: Vec<String> = Vec::new();
        for name in errors.iter().filter_map(|d| render::unknown_variable(d)) {
            if !unknown.contains(&name) {
                unknown.push(name);
            }
        }
        let others = errors.iter().filter(|d| render::unknown_variable(d).is_none()).count();
        if unknown.is_empty() || others > 0 {
            writeln!(io.err, "avsb: the server would refuse this change (it would drop a test); nothing was changed:")?;
            for d in &errors {
                writeln!(io.err, "{}", render::diagnostic(d))?;
            }
            return Ok(REFUSED);
        }
        for name in unknown {
            writeln!(io.err, "The rule needs the context variable '{name}', which the schema of project '{}' does not have.", s.key)?;
            let given = c.add_variables.iter().map(|t| parse_variable(t)).find(|v| v.as_ref().map_or(true, |v| v.name == name));
            let variable = match given {
                Some(Ok(v)) => Some(v),
                Some(Err(e)) => anyhow::bail!(e),
                None if terminal && !c.yes => loop {
                    let answer = io.ask(&format!("Add '{name}' to the schema as which type? ({TYPE_WORDS}; empty: do not add) "))?;
                    if answer.is_empty() {
                        break None;
                    }
                    match parse_variable(&format!("{name}:{answer}")) {
                        Ok(v) => break Some(v),
                        Err(e) => writeln!(io.err, "{e}")?,
                    }
                },
                None => None,
            };
            match variable {
                Some(v) => variables.push(v),
                None => {
                    for d in errors.iter().filter(|d| render::unknown_variable(d).as_deref() == Some(name.as_str())) {
                        writeln!(io.err, "{}", render::diagnostic(d))?;
                    }
                    writeln!(io.err, "avsb: nothing was changed; add the variable with --add-variable {name}:TYPE ({TYPE_WORDS})")?;
                    return Ok(REFUSED);
                }
            }
        }
    }
    if !c.json {
        write!(io.out, "{}", render::preview(&preview))?;
        for v in &variables {
            writeln!(io.out, "  The schema of project '{}' gets the context variable {}.", s.key, v.describe())?;
        }
    }
    let not_confirmed = |io: &mut Io, why: &str| -> anyhow::Result<u8> {
        writeln!(io.err, "avsb: nothing was changed: {why}")?;
        if c.json {
            writeln!(io.out, "{}", serde_json::to_string_pretty(&json!({"preview": preview, "committed": null}))?)?;
        }
        Ok(NOT_CONFIRMED)
    };
    if !c.yes && !terminal {
        return not_confirmed(io, "there is no terminal to confirm on; pass --yes to apply without asking");
    }
    if comment.is_none() && s.careful(&env) {
        let answer = io.ask(&format!("A comment is required in {env}. Why this change? "))?;
        if answer.is_empty() {
            return not_confirmed(io, &format!("a comment is required in {env}"));
        }
        comment = Some(answer);
    }
    if !c.yes {
        let answer = io.ask(&format!("Apply this change to {env}? [y/N] "))?;
        if !matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
            return not_confirmed(io, "not confirmed");
        }
    }
    for v in &variables {
        if let Err(e) = add_variable(s, v) {
            writeln!(io.err, "avsb: the context variable '{}' could not be added:", v.name)?;
            return io.fail(&e);
        }
        if !c.json {
            writeln!(io.out, "Added the context variable {} to the schema of project '{}'.", v.describe(), s.key)?;
        }
    }
    let mut body = change.body;
    body["baseRevision"] = preview["baseRevision"].clone();
    if let Some(comment) = comment {
        body["comment"] = json!(comment);
    }
    let committed = match s.remote.send(change.method, &change.path, Some(&body), &[]) {
        Ok(r) => r.body,
        Err(e) => return io.fail(&e),
    };
    if c.json {
        let added: Vec<Value> = variables
            .iter()
            .map(|v| json!({"name": v.name, "type": v.ty.canonical_name(), "defaultValue": v.default}))
            .collect();
        let doc = json!({"preview": preview, "variablesAdded": added, "committed": committed});
        writeln!(io.out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        let revision = &committed["revision"];
        writeln!(
            io.out,
            "Saved: revision {} of {} ({}).",
            revision["version"].as_str().unwrap_or("?"),
            env,
            revision["comment"].as_str().unwrap_or("")
        )?;
        for w in committed["warnings"].as_array().into_iter().flatten() {
            writeln!(io.out, "{}", render::diagnostic(w))?;
        }
    }
    Ok(0)
}

/// The test's definition at `revision`, or the refusal shown.
fn read_test(s: &Session, env: &str, test: &str, revision: &str, io: &mut Io) -> anyhow::Result<Result<Value, u8>> {
    match s.remote.fetch(&format!("{}?revision={}", s.test_path(env, test), encode(revision))) {
        Ok(d) => Ok(Ok(d)),
        Err(e) => Ok(Err(io.fail(&e)?)),
    }
}

/// A bucket named by name or value; an error lists the test's buckets.
fn bucket_value(definition: &Value, test: &str, text: &str) -> anyhow::Result<i64> {
    let buckets = definition["buckets"].as_array().cloned().unwrap_or_default();
    let found = buckets
        .iter()
        .find(|b| b["name"] == text)
        .or_else(|| text.parse::<i64>().ok().and_then(|n| buckets.iter().find(|b| b["value"].as_i64() == Some(n))));
    match found.and_then(|b| b["value"].as_i64()) {
        Some(v) => Ok(v),
        None => {
            let names: Vec<String> = buckets.iter().map(|b| format!("{} ({})", b["name"].as_str().unwrap_or("?"), b["value"])).collect();
            anyhow::bail!("test '{test}' has no bucket '{text}'; its buckets are {}", names.join(", "))
        }
    }
}

/// Which allocation: the one named, or the only one.
fn allocation_index(definition: &Value, test: &str, asked: Option<usize>) -> anyhow::Result<usize> {
    let allocations = definition["allocations"].as_array().cloned().unwrap_or_default();
    let listing = || {
        allocations
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let rule = a["rule"].as_str().filter(|r| !r.is_empty()).map_or_else(|| "no rule".to_string(), |r| format!("rule {r}"));
                format!("\n  allocation {i} ({rule}): {}", render::ranges_text(definition, a))
            })
            .collect::<String>()
    };
    match asked {
        Some(i) if i < allocations.len() => Ok(i),
        Some(i) => anyhow::bail!("test '{test}' has no allocation {i}; its allocations:{}", listing()),
        None if allocations.len() == 1 => Ok(0),
        None => anyhow::bail!("test '{test}' has {} allocations; choose one with --allocation N:{}", allocations.len(), listing()),
    }
}

fn create(a: &CreateArgs, io: &mut Io) -> anyhow::Result<u8> {
    let s = Session::open(&a.remote)?;
    let env = a.remote.environment.as_str();
    s.environment(env)?;
    let mut taken = Vec::new();
    for e in s.environments().iter().filter_map(|e| e["key"].as_str()) {
        match s.remote.fetch(&s.test_path(e, &a.name)) {
            Ok(_) => taken.push(e.to_string()),
            Err(err) if err.status() == Some(404) => {}
            Err(err) => return io.fail(&err),
        }
    }
    if !taken.is_empty() {
        writeln!(
            io.err,
            "avsb: test '{}' already exists in {}; change it with `avsb flag rollout/target/kill`, or copy it with `avsb flag promote`",
            a.name,
            taken.join(", ")
        )?;
        return Ok(REFUSED);
    }
    let percent = match &a.percent {
        Some(p) if a.template == "rollout" => build::parse_percent(p).map_err(anyhow::Error::msg)?,
        Some(_) => anyhow::bail!("--percent is for --template rollout; use `avsb flag rollout` afterwards"),
        None => 0.0,
    };
    let new = build::NewTest {
        template: a.template.clone(),
        variants: a.variants.iter().map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect(),
        values: a.values.clone(),
        identifier_type: a
            .identifier_type
            .clone()
            .unwrap_or_else(|| s.project["defaultIdentifierType"].as_str().unwrap_or("USER").to_string()),
        description: a.description.clone(),
        percent,
    };
    let definition = build::template_definition(&a.name, &new).map_err(anyhow::Error::msg)?;
    let change = Change {
        environment: env.to_string(),
        edit: json!({"kind": "putTest", "test": a.name, "definition": definition}),
        base: None,
        method: "PUT",
        path: s.test_path(env, &a.name),
        body: json!({ "definition": definition }),
    };
    apply(&s, change, &a.confirm, io)
}

fn rollout(a: &RolloutArgs, io: &mut Io) -> anyhow::Result<u8> {
    let s = Session::open(&a.remote)?;
    let env = a.remote.environment.as_str();
    let revision = s.current_revision(env)?;
    let definition = match read_test(&s, env, &a.name, &revision, io)? {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let index = allocation_index(&definition, &a.name, a.allocation)?;
    let allocation = &definition["allocations"][index];
    let ranges = build::ranges_of(allocation);
    let buckets: Vec<(i64, String)> = definition["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| (b["value"].as_i64().unwrap_or(0), b["name"].as_str().unwrap_or("").to_string()))
        .collect();
    let new = match (&a.split, &a.percent) {
        (Some(split), _) => build::split(&ranges, &build::parse_split(split, &buckets).map_err(anyhow::Error::msg)?),
        (None, Some(p)) => {
            let share = build::parse_percent(p).map_err(anyhow::Error::msg)?;
            let target = match &a.bucket {
                Some(b) => bucket_value(&definition, &a.name, b)?,
                None => buckets.iter().find(|(_, n)| n == "on").or(buckets.last()).map(|(v, _)| *v).unwrap_or(1),
            };
            let fallback = buckets
                .iter()
                .find(|(v, n)| n == "off" && *v != target)
                .or_else(|| buckets.iter().find(|(v, _)| *v >= 0 && *v != target))
                .or_else(|| buckets.iter().find(|(v, _)| *v != target))
                .map_or(0, |(v, _)| *v);
            build::rollout(&ranges, target, share, fallback).map_err(anyhow::Error::msg)?
        }
        (None, None) => anyhow::bail!("say how much: `avsb flag rollout {} 10%`, or --split 50/50", a.name),
    };
    if new == ranges {
        writeln!(io.out, "Nothing to change: allocation {index} of '{}' in {env} already is {}.", a.name, render::ranges_text(&definition, allocation))?;
        return Ok(0);
    }
    let ranges = build::ranges_json(&new);
    let change = Change {
        environment: env.to_string(),
        edit: json!({"kind": "setRanges", "test": a.name, "allocation": index, "ranges": ranges}),
        base: Some(revision),
        method: "PUT",
        path: format!("{}/allocations/{index}/ranges", s.test_path(env, &a.name)),
        body: json!({ "ranges": ranges }),
    };
    apply(&s, change, &a.confirm, io)
}

fn target(a: &TargetArgs, io: &mut Io) -> anyhow::Result<u8> {
    if a.rule.is_none() && a.ids.is_empty() && a.remove.is_empty() {
        anyhow::bail!("say what to change: --rule '${{...}}', --id u_1,u_2 --bucket on, or --remove u_1");
    }
    let s = Session::open(&a.remote)?;
    let env = a.remote.environment.as_str();
    let revision = s.current_revision(env)?;
    let definition = match read_test(&s, env, &a.name, &revision, io)? {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let bucket = a.bucket.as_deref().map(|b| bucket_value(&definition, &a.name, b)).transpose()?;
    let targets_changed = !a.ids.is_empty() || !a.remove.is_empty();
    let targets = build::retarget(&definition["targets"], bucket, &a.ids, &a.remove);
    let path = s.test_path(env, &a.name);
    let change = match &a.rule {
        Some(rule) => {
            let rule = if rule.trim().is_empty() { Value::Null } else { json!(rule) };
            let mut new = definition.clone();
            match a.allocation {
                Some(_) => {
                    let i = allocation_index(&definition, &a.name, a.allocation)?;
                    new["allocations"][i]["rule"] = rule;
                }
                None => new["rule"] = rule,
            }
            if targets_changed {
                new["targets"] = targets;
            }
            Change {
                environment: env.to_string(),
                edit: json!({"kind": "putTest", "test": a.name, "definition": new}),
                base: Some(revision),
                method: "PUT",
                path,
                body: json!({ "definition": new }),
            }
        }
        None => Change {
            environment: env.to_string(),
            edit: json!({"kind": "setTargets", "test": a.name, "targets": targets}),
            base: Some(revision),
            method: "PUT",
            path: format!("{path}/targets"),
            body: json!({ "targets": targets }),
        },
    };
    apply(&s, change, &a.confirm, io)
}

/// A bucket as the kill switch takes it: a value when it is a number, else a name.
fn bucket_ref(text: &str) -> Value {
    text.parse::<i64>().map_or_else(|_| json!(text), |n| json!(n))
}

fn kill(a: &KillArgs, io: &mut Io) -> anyhow::Result<u8> {
    let s = Session::open(&a.remote)?;
    let env = a.remote.environment.as_str();
    s.environment(env)?;
    let bucket = bucket_ref(&a.bucket);
    let change = Change {
        environment: env.to_string(),
        edit: json!({"kind": "kill", "test": a.name, "bucket": bucket}),
        base: None,
        method: "POST",
        path: format!("{}/kill", s.test_path(env, &a.name)),
        body: json!({ "bucket": bucket }),
    };
    apply(&s, change, &a.confirm, io)
}

fn rollback(a: &RollbackArgs, io: &mut Io) -> anyhow::Result<u8> {
    let s = Session::open(&a.remote)?;
    let env = a.remote.environment.as_str();
    s.environment(env)?;
    let revision = a.to.trim().trim_start_matches(['r', 'R']).to_string();
    let change = Change {
        environment: env.to_string(),
        edit: json!({"kind": "rollbackTest", "test": a.name, "revision": revision}),
        base: None,
        method: "POST",
        path: format!("{}/rollback", s.test_path(env, &a.name)),
        body: json!({ "revision": revision }),
    };
    apply(&s, change, &a.confirm, io)
}

fn promote(a: &PromoteArgs, io: &mut Io) -> anyhow::Result<u8> {
    let s = Session::open(&a.remote)?;
    // The source as it was read: a change there before the write conflicts.
    let source = s.current_revision(&a.from)?;
    s.environment(&a.to)?;
    let change = Change {
        environment: a.to.clone(),
        edit: json!({"kind": "promote", "from": a.from, "tests": [a.name], "sourceRevision": source}),
        base: None,
        method: "POST",
        path: format!("/projects/{}/promote", encode(&s.key)),
        body: json!({"from": a.from, "to": a.to, "tests": [a.name], "sourceRevision": source}),
    };
    apply(&s, change, &a.confirm, io)
}

fn show(a: &ShowArgs, io: &mut Io) -> anyhow::Result<u8> {
    let s = Session::open(&a.remote)?;
    let mut found = serde_json::Map::new();
    for env in s.environments() {
        let key = env["key"].as_str().unwrap_or("");
        let definition = match s.remote.fetch(&s.test_path(key, &a.name)) {
            Ok(d) => d,
            Err(e) if e.status() == Some(404) => Value::Null,
            Err(e) => return io.fail(&e),
        };
        found.insert(key.to_string(), definition);
    }
    if found.values().all(Value::is_null) {
        writeln!(io.err, "avsb: project '{}' has no test '{}' in any environment", s.key, a.name)?;
        return Ok(FAILED);
    }
    if a.json {
        let doc = json!({"project": s.key, "test": a.name, "environments": found});
        writeln!(io.out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(0);
    }
    writeln!(io.out, "{} in project {}", a.name, s.key)?;
    for env in s.environments() {
        let key = env["key"].as_str().unwrap_or("");
        let definition = &found[key];
        writeln!(io.out)?;
        if definition.is_null() {
            writeln!(io.out, "{key}: not there")?;
            continue;
        }
        writeln!(
            io.out,
            "{key} (revision {}; the test's version {}):",
            env["currentRevision"].as_str().unwrap_or("?"),
            definition["version"].as_str().unwrap_or("?")
        )?;
        for line in render::definition_lines(definition) {
            writeln!(io.out, "  {line}")?;
        }
    }
    Ok(0)
}

fn list(a: &ListArgs, io: &mut Io) -> anyhow::Result<u8> {
    let s = Session::open(&a.remote)?;
    let envs: Vec<String> = s.environments().iter().filter_map(|e| e["key"].as_str().map(str::to_string)).collect();
    let mut matrices = Vec::new();
    for env in &envs {
        match s.remote.fetch(&format!("{}/matrix", s.env_path(env))) {
            Ok(m) => matrices.push(m),
            Err(e) => return io.fail(&e),
        }
    }
    let mut names: Vec<String> =
        matrices.iter().flat_map(|m| m["tests"].as_object().into_iter().flat_map(|t| t.keys().cloned())).collect();
    names.sort();
    names.dedup();
    if a.json {
        let tests: Vec<Value> = names
            .iter()
            .map(|name| {
                let per_env: serde_json::Map<String, Value> =
                    envs.iter().zip(&matrices).map(|(env, m)| (env.clone(), m["tests"][name].clone())).collect();
                json!({"test": name, "environments": per_env})
            })
            .collect();
        let doc = json!({"project": s.key, "environments": envs, "tests": tests});
        writeln!(io.out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(0);
    }
    let mut rows = vec![std::iter::once("test".to_string()).chain(envs.iter().cloned()).collect::<Vec<_>>()];
    for name in &names {
        let mut row = vec![name.clone()];
        for m in &matrices {
            let d = &m["tests"][name];
            row.push(if d.is_null() { "-".to_string() } else { render::cell(d) });
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        writeln!(io.out, "{}", line.join("  ").trim_end())?;
    }
    Ok(0)
}

fn history(a: &HistoryArgs, io: &mut Io) -> anyhow::Result<u8> {
    let s = Session::open(&a.remote)?;
    let mut entries: Vec<(i64, String, Value, Value)> = Vec::new();
    for env in s.environments() {
        let key = env["key"].as_str().unwrap_or("").to_string();
        let list = match s.remote.fetch(&format!("{}/revisions?limit={}", s.env_path(&key), a.limit)) {
            Ok(l) => l,
            Err(e) => return io.fail(&e),
        };
        for revision in list["revisions"].as_array().into_iter().flatten() {
            let version = revision["version"].as_str().unwrap_or("");
            let change = match revision["parent"].as_str() {
                Some(parent) => {
                    let path = format!("/projects/{}/diff?from={}&to={}", encode(&s.key), encode(parent), encode(version));
                    let diff = match s.remote.fetch(&path) {
                        Ok(d) => d,
                        Err(e) => return io.fail(&e),
                    };
                    let named = |list: &str| diff[list].as_array().into_iter().flatten().find(|c| c["test"] == a.name.as_str()).cloned();
                    if let Some(c) = named("changed") {
                        c
                    } else if let Some(c) = named("added") {
                        json!({"test": a.name, "change": "added", "to": c["definition"]})
                    } else if let Some(c) = named("removed") {
                        json!({"test": a.name, "change": "removed", "from": c["definition"]})
                    } else {
                        continue;
                    }
                }
                None => match s.remote.fetch(&format!("{}?revision={}", s.test_path(&key, &a.name), encode(version))) {
                    Ok(d) => json!({"test": a.name, "change": "added", "to": d}),
                    Err(e) if e.status() == Some(404) => continue,
                    Err(e) => return io.fail(&e),
                },
            };
            entries.push((version.parse().unwrap_or(0), key.clone(), revision.clone(), change));
        }
    }
    // Revision ids are one sequence across environments: their order is the order of events.
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    if a.json {
        let changes: Vec<Value> =
            entries.iter().map(|(_, env, revision, change)| json!({"environment": env, "revision": revision, "change": change})).collect();
        let doc = json!({"project": s.key, "test": a.name, "changes": changes});
        writeln!(io.out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(0);
    }
    if entries.is_empty() {
        writeln!(io.out, "No change to '{}' in the last {} revisions of any environment.", a.name, a.limit)?;
    }
    for (_, env, revision, change) in &entries {
        write!(io.out, "{}", render::history_entry(env, revision, Some(change)))?;
    }
    Ok(0)
}
