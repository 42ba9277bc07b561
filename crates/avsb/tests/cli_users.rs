//! `avsb user create|list|set-role|reset-password` on a real data directory, beside a running
//! server (SQLite in WAL mode takes the command's writes while the server runs).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn avsb(data: &Path, args: &[&str], password: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_avsb"));
    command.args(args).arg("--data").arg(data).env_remove("AVSB_DATA").env_remove("AVSB_PASSWORD");
    if let Some(password) = password {
        command.env("AVSB_PASSWORD", password);
    }
    command.output().expect("run avsb")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Starts `avsb serve --demo` on the data directory and waits for its lines (so the demo project
/// exists), then stops it.
fn make_demo(data: &Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_avsb"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env_remove("AVSB_LISTEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start avsb serve");
    let stdout = child.stdout.take().expect("stdout");
    let ready = BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.starts_with("AVSB_ADMIN_TOKEN="));
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    assert!(ready, "the demo server printed no admin token");
}

#[test]
fn users_are_created_listed_given_roles_and_reset_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    make_demo(data);

    // A password from AVSB_PASSWORD is not printed; a made one is printed once.
    let out = avsb(data, &["user", "create", "ana", "--owner", "--name", "Ana"], Some("a long enough password"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    let out = avsb(data, &["user", "create", "bo"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let made = text(&out.stdout).trim().to_string();
    assert!(made.len() >= 20, "a made password is printed: {made:?}");

    let out = avsb(data, &["user", "set-role", "bo", "demo", "editor"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "bo is editor of demo");

    let out = avsb(data, &["user", "list"], None);
    let listing = text(&out.stdout);
    assert!(listing.contains("ana\tAna\towner\tactive"), "{listing}");
    assert!(listing.contains("bo\tbo\tdemo:editor\tactive"), "{listing}");

    // Refusals say what is wrong and change nothing.
    let out = avsb(data, &["user", "create", "Bo"], Some("a long enough password"));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("already exists"), "{}", text(&out.stderr));
    let out = avsb(data, &["user", "create", "cy"], Some("short"));
    assert!(text(&out.stderr).contains("at least 10 characters"), "{}", text(&out.stderr));
    let out = avsb(data, &["user", "set-role", "bo", "demo", "emperor"], None);
    assert!(text(&out.stderr).contains("viewer, editor, admin or none"), "{}", text(&out.stderr));
    let out = avsb(data, &["user", "set-role", "bo", "nope", "viewer"], None);
    assert!(text(&out.stderr).contains("no project 'nope'"), "{}", text(&out.stderr));

    let out = avsb(data, &["user", "reset-password", "bo"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let new = text(&out.stdout).trim().to_string();
    assert!(new.len() >= 20 && new != made, "a new password is printed");
    let out = avsb(data, &["user", "set-role", "bo", "demo", "none"], None);
    assert_eq!(text(&out.stdout).trim(), "bo is no longer a member of demo");
    let listing = text(&avsb(data, &["user", "list"], None).stdout);
    assert!(listing.contains("bo\tbo\t\tactive"), "{listing}");
}
