//! `avsb validate` and `avsb eval`: check matrices and evaluate requests as Pipet would.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use avsb_core::pipet::{self, IdentifyParams};
use avsb_core::{Compilation, ContextSchema, CompiledMatrix, Severity, MatrixDocument};
use clap::{Args, Parser, Subcommand};

/// A vs B: self-hosted A/B testing and feature flags, compatible with Proctor.
#[derive(Debug, Parser)]
#[command(name = "avsb", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a matrix: one line per diagnostic; exit 1 if a test was dropped, 2 if the
    /// document cannot be read.
    Validate(ValidateArgs),
    /// Evaluate one request and print the `data` object Pipet's `/groups/identify` returns.
    Eval(EvalArgs),
    /// Print the valid tests of a matrix as Proctor writes it (`GET /proctor/matrix`).
    Export(ExportArgs),
    /// Run the server: admin API, Pipet-compatible API, OFREP, SDK datafile and stream, events.
    Serve(crate::serve::ServeArgs),
    /// Create, list or revoke admin API tokens.
    #[command(subcommand)]
    Token(crate::serve::TokenCommand),
    /// Create and list console users, set their roles, reset their passwords.
    #[command(subcommand)]
    User(crate::serve::UserCommand),
    /// A test's experiment results from a running server: per metric and variant, units,
    /// value, lift with its interval, p-value or chance to win; the sample-ratio check.
    Results(crate::results::ResultsArgs),
    /// Create and change tests on a running server without writing JSON: create, rollout,
    /// target, kill, rollback, promote, show, list, history. Every change shows the server's
    /// preview (the diff and who changes bucket) and asks first.
    Flag(crate::flag::FlagArgs),
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// The matrix, or a stored single-test definition (`test-definitions/<name>/definition.json`).
    matrix: PathBuf,
    /// The context schema the tests are validated against.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Leave out A vs B's extensions and write boolean payloads as `json`, for Proctor itself.
    #[arg(long)]
    proctor: bool,
}

#[derive(Debug, Args)]
struct ValidateArgs {
    /// The matrix (Proctor's TestMatrixArtifact JSON), or a stored single-test definition.
    matrix: PathBuf,
    /// The context schema (Pipet's configuration JSON); without it any variable is accepted.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Print diagnostics as JSON lines.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// The matrix (Proctor's TestMatrixArtifact JSON).
    #[arg(long)]
    matrix: PathBuf,
    /// The context schema (Pipet's configuration JSON). Without it, context values are strings
    /// and any identifier type is accepted.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// An identifier, keyed by identifier type (`USER=abc`); repeatable.
    #[arg(long = "id", value_name = "TYPE=VALUE", value_parser = key_value)]
    ids: Vec<(String, String)>,
    /// A context value, keyed by variable name (`country=US`); repeatable.
    #[arg(long = "ctx", value_name = "NAME=VALUE", value_parser = key_value)]
    ctx: Vec<(String, String)>,
    /// Only these tests (comma-separated, as Pipet's `test` parameter).
    #[arg(long = "test", value_name = "a,b")]
    tests: Option<String>,
    /// Force groups, as Pipet's `prforceGroups` parameter (`buttoncolortst2,othertest0`).
    #[arg(long, value_name = "STRING")]
    force: Option<String>,
    /// Also honour forced payloads and `default_to_*` options (Pipet ignores them).
    #[arg(long)]
    full_force: bool,
    /// The request time in epoch milliseconds for `proctor:now()` (default: now).
    #[arg(long, value_name = "MILLIS")]
    now: Option<i64>,
    /// The random number for RANDOM tests (default: drawn at random).
    #[arg(long, value_name = "U64")]
    seed: Option<u64>,
    /// Also print, on stderr, how each test's result was reached.
    #[arg(long)]
    explain: bool,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// Runs a parsed command line, writing to `out` and `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let result = match cli.command {
        Command::Validate(args) => validate(&args, out, err),
        Command::Eval(args) => eval(&args, out, err),
        Command::Export(args) => export(&args, out, err),
        Command::Serve(args) => crate::serve::serve(args, out),
        Command::Token(command) => crate::serve::token(command, out),
        Command::User(command) => crate::serve::user(command, out),
        Command::Results(args) => crate::results::results(&args, out),
        Command::Flag(args) => crate::flag::run(args, out, err),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let _ = writeln!(err, "avsb: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read the {what} {}: {e}", path.display()))
}

fn load_schema(path: Option<&Path>) -> anyhow::Result<ContextSchema> {
    match path {
        None => Ok(ContextSchema::permissive()),
        Some(path) => {
            let text = read(path, "schema")?;
            ContextSchema::from_json(&text).map_err(|e| anyhow::anyhow!("the schema {} is invalid: {e}", path.display()))
        }
    }
}

/// Compiles a matrix file, or a stored single-test definition named after its folder (Proctor
/// keeps `test-definitions/<name>/definition.json`) or else its file. `None`: unreadable, and
/// the reason was written to `err`.
fn compile_file(path: &Path, schema: &ContextSchema, err: &mut dyn Write) -> anyhow::Result<Option<Compilation>> {
    let text = read(path, "matrix")?;
    let matrix_error = match CompiledMatrix::compile_json(&text, schema) {
        Ok(c) => return Ok(Some(c)),
        Err(e) => e,
    };
    let looks_stored = avsb_core::json::parse_lenient_json::<serde_json::Value>(&text)
        .is_ok_and(|doc| doc.get("testType").is_some() && doc.get("tests").is_none());
    if !looks_stored {
        writeln!(err, "avsb: {}: {matrix_error}", path.display())?;
        return Ok(None);
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("test");
    let name = if stem == "definition" {
        path.parent().and_then(|p| p.file_name()).and_then(|s| s.to_str()).unwrap_or(stem)
    } else {
        stem
    };
    match avsb_core::reader::read_stored_test(&text) {
        Ok(test) => {
            let mut matrix = MatrixDocument::default();
            matrix.tests.insert(name.to_string(), test);
            Ok(Some(CompiledMatrix::compile(matrix, schema)))
        }
        Err(e) => {
            writeln!(err, "avsb: {}: tests.{name}.{e}", path.display())?;
            Ok(None)
        }
    }
}

fn validate(args: &ValidateArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let schema = load_schema(args.schema.as_deref())?;
    let Some(compilation) = compile_file(&args.matrix, &schema, err)? else { return Ok(2) };
    for d in &compilation.diagnostics {
        if args.json {
            writeln!(out, "{}", d.to_json())?;
        } else {
            writeln!(out, "{d}")?;
        }
    }
    let dropped = compilation.dropped_tests().len();
    if !args.json {
        writeln!(
            err,
            "{} test(s) usable, {dropped} dropped, {} warning(s)",
            compilation.matrix.len(),
            compilation.diagnostics.iter().filter(|d| d.severity == Severity::Warning).count()
        )?;
    }
    Ok(u8::from(dropped > 0))
}

fn eval(args: &EvalArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let mut schema = load_schema(args.schema.as_deref())?;
    if schema.permissive {
        for (type_name, _) in &args.ids {
            schema.allow_identifier_type(type_name);
        }
    }
    let Some(compilation) = compile_file(&args.matrix, &schema, err)? else { return Ok(2) };
    for d in &compilation.diagnostics {
        writeln!(err, "{d}")?;
    }
    let params = IdentifyParams {
        identifiers: args.ids.clone(),
        context: args.ctx.clone(),
        tests: args.tests.clone(),
        force_groups: args.force.clone(),
        full_force: args.full_force,
        now_millis: Some(args.now.unwrap_or_else(now_millis)),
        random_seed: Some(args.seed.unwrap_or_else(random_seed)),
    };
    let matrix = &compilation.matrix;
    match pipet::identify_explained(matrix, &params) {
        Ok((data, reasons)) => {
            writeln!(out, "{}", serde_json::to_string_pretty(&data)?)?;
            if args.explain {
                for (test, reason) in reasons {
                    writeln!(err, "{test}: {reason}")?;
                }
            }
            Ok(0)
        }
        Err(e) => {
            writeln!(err, "{}", e.message)?;
            Ok(2)
        }
    }
}

fn export(args: &ExportArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let schema = load_schema(args.schema.as_deref())?;
    let Some(compilation) = compile_file(&args.matrix, &schema, err)? else { return Ok(2) };
    for d in &compilation.diagnostics {
        writeln!(err, "{d}")?;
    }
    let json = compilation.matrix.to_document().to_json(args.proctor);
    writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
    Ok(0)
}

/// The command line reads the clock; the engine never does.
fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A random number from the standard library's randomly keyed hasher.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_millis());
    h.finish()
}
