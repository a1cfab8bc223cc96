//! The `crm` binary's serving settings: `SELF_HEALING_ADMIN_TOKEN` is honoured, and a setting
//! that would stop it from serving fails at once, in one line naming it, before the load runs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "crm-test-admin-token-0123456789";

/// The demo in a temp directory (its databases land there), with a clean environment.
fn crm(dir: &tempfile::TempDir, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_crm"));
    c.args(["--duration", "1s"])
        .args(args)
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("SELF_HEALING_ADMIN_TOKEN")
        .stdin(Stdio::null());
    c
}

/// Asserts a refusal before the load: exit code 2, one line on stderr naming `setting`, and
/// nothing of the run on stdout.
fn assert_refused_at_once(o: &Output, took: Duration, setting: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: ") && err.contains(setting), "{err}");
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("CRM demo"),
        "the load did not start"
    );
    assert!(took < Duration::from_secs(10), "at once: {took:?}");
}

#[test]
fn bad_serving_settings_fail_before_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let o = crm(&dir, &["--addr", "0.0.0.0:0"]).output().unwrap();
    assert_refused_at_once(&o, started.elapsed(), "SELF_HEALING_ADMIN_TOKEN");

    let started = Instant::now();
    let o = crm(&dir, &["--addr", "0.0.0.0:0"])
        .env("SELF_HEALING_ADMIN_TOKEN", "tiny-tok")
        .output()
        .unwrap();
    assert_refused_at_once(&o, started.elapsed(), "SELF_HEALING_ADMIN_TOKEN");
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("tiny-tok"),
        "the token is not printed"
    );

    // An address already in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let started = Instant::now();
    let o = crm(&dir, &["--addr", &addr]).output().unwrap();
    assert_refused_at_once(&o, started.elapsed(), "--addr");
}

#[test]
fn the_admin_token_from_the_environment_allows_any_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = crm(&dir, &["--addr", "0.0.0.0:0"])
        .env("SELF_HEALING_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let mut url = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if line.starts_with("Dashboard: http://0.0.0.0:") {
            url = Some(line.clone());
            break;
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(url.is_some(), "it serves: {}", seen.join("\n"));
}
