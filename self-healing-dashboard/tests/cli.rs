//! The `self-healing` binary: every command on a seeded SQLite store, `serve` answering HTTP, and
//! errors that are one line with a non-zero exit code.

#![cfg(feature = "cli")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{TOKEN, TestDb, seed};

/// The binary with a clean environment (no URL, token or secret from the caller's shell).
fn cli(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_self-healing"));
    c.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("SELF_HEALING_ADMIN_TOKEN")
        .env_remove("CRON_SECRET")
        .stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    cli(args).output().expect("run self-healing")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a failure: exit code 1 and one line on stderr starting with `error: `.
fn assert_one_line_error(o: &Output, contains: &str) -> String {
    assert_error_with_code(o, 1, contains)
}

/// Asserts a usage error: exit code 2 and one line on stderr starting with `error: `.
fn assert_usage_error(o: &Output, contains: &str) -> String {
    assert_error_with_code(o, 2, contains)
}

fn assert_error_with_code(o: &Output, code: i32, contains: &str) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "exit code; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(contains), "`{contains}` in {err}");
    err
}

fn sites() -> Vec<&'static self_healing_runtime::Site> {
    vec![
        test_site!("createContact", Database),
        test_site!("sendInvoice", Api),
        test_site!("neverCalled", Runtime),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_on_a_seeded_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());

    let o = run(&["--database-url", &url, "migrate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("migrated: the store at "));

    let store = self_healing_store::DieselStore::connect(&url)
        .await
        .unwrap();
    seed(&store, &sites()).await;

    let o = run(&["--database-url", &url, "events"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let header = out.lines().next().unwrap();
    for column in [
        "TIME (UTC)",
        "SOURCE",
        "OUTCOME",
        "STRATEGY",
        "DURATION",
        "MESSAGE",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert_eq!(out.lines().count(), 13, "a header and 12 events:\n{out}");
    assert!(out.contains("createContact") && out.contains("healed"));

    let o = run(&[
        "--database-url",
        &url,
        "events",
        "--source",
        "createContact",
        "--outcome",
        "healed",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["events"].as_array().unwrap().len(), 5);

    let o = run(&["--database-url", &url, "events", "--limit", "5"]);
    let out = stdout(&o);
    let more = out.lines().last().unwrap();
    assert!(
        more.starts_with("more: self-healing events --after "),
        "{out}"
    );
    let cursor = more.split_whitespace().nth(4).unwrap();
    let o = run(&[
        "--database-url",
        &url,
        "events",
        "--limit",
        "5",
        "--after",
        cursor,
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["events"].as_array().unwrap().len(), 5);

    // DATABASE_URL works as well as the flag.
    let o = cli(&["sites"]).env("DATABASE_URL", &url).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("neverCalled") && out.contains("not seen"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("failed") && l.contains("createContact")),
        "{out}"
    );

    let o = run(&["--database-url", &url, "patterns"]);
    assert!(stdout(&o).contains("retry"), "{}", stdout(&o));
    let o = run(&["--database-url", &url, "patterns", "--json"]);
    assert!(serde_json::from_slice::<serde_json::Value>(&o.stdout).is_ok());

    let o = run(&["--database-url", &url, "health"]);
    let out = stdout(&o);
    assert!(out.contains("memory") && out.contains("degraded"), "{out}");

    let o = run(&["--database-url", &url, "prune", "--older-than", "30d"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("pruned 0 events"), "{}", stdout(&o));
    let o = run(&["--database-url", &url, "prune", "--older-than", "90m"]);
    assert!(stdout(&o).starts_with("pruned 2 events"), "{}", stdout(&o));
}

#[test]
fn errors_are_one_line_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", dir.path().join("missing.db").display());
    let o = run(&["--database-url", &missing, "events"]);
    assert_one_line_error(&o, "no database at");
    assert!(
        !dir.path().join("missing.db").exists(),
        "a read does not create a database"
    );

    let o = run(&["--database-url", &missing, "events", "--outcome", "fixed"]);
    assert_usage_error(&o, "invalid --outcome fixed: expected one of healed");

    let o = run(&["--database-url", "mysql://root@db/app", "sites"]);
    assert_one_line_error(&o, "unsupported scheme");

    let o = run(&[
        "--database-url",
        "postgres://app:hunter2-secret@127.0.0.1:1/app",
        "migrate",
    ]);
    let err = assert_one_line_error(&o, "127.0.0.1:1");
    assert!(
        !err.contains("hunter2-secret"),
        "the password is masked: {err}"
    );

    let o = run(&["--database-url", &missing, "serve", "--addr", "0.0.0.0:0"]);
    assert_one_line_error(
        &o,
        "refusing to serve the self-healing dashboard on 0.0.0.0:0 without an admin token",
    );

    let o = cli(&["--database-url", &missing, "serve"])
        .env("SELF_HEALING_ADMIN_TOKEN", "tiny-tok")
        .output()
        .unwrap();
    let err = assert_one_line_error(&o, "SELF_HEALING_ADMIN_TOKEN` is too short");
    assert!(!err.contains("tiny-tok"), "the value is not printed: {err}");

    let o = run(&["prune", "--older-than", "soon"]);
    assert_eq!(o.status.code(), Some(2), "usage errors exit with 2");
}

/// A seeded store in a temp directory, and its URL.
async fn seeded() -> (tempfile::TempDir, String, self_healing_store::DieselStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let store = self_healing_store::DieselStore::connect(&url)
        .await
        .unwrap();
    seed(&store, &sites()).await;
    (dir, url, store)
}

fn event_count(url: &str) -> usize {
    let o = run(&["--database-url", url, "events", "--limit", "1000", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    json["events"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_under_an_hour_needs_yes() {
    let (_dir, url, _store) = seeded().await;
    assert_eq!(event_count(&url), 12);

    // No terminal to ask on (stdin is /dev/null): refused as a usage error, nothing deleted.
    let o = run(&["--database-url", &url, "prune", "--older-than", "0s"]);
    let err = assert_usage_error(&o, "pass --yes");
    assert!(err.contains("--older-than 0s"), "{err}");
    assert_eq!(event_count(&url), 12, "nothing was deleted");
    let o = run(&["--database-url", &url, "prune", "--older-than", "59m"]);
    assert_usage_error(&o, "pass --yes");

    let o = run(&[
        "--database-url",
        &url,
        "prune",
        "--older-than",
        "0s",
        "--yes",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("pruned 12 events"), "{}", stdout(&o));
    assert_eq!(event_count(&url), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_and_a_bad_url_creates_nothing() {
    let (dir, url, _store) = seeded().await;
    let o = run(&["--database-url", &url, "events", "--limit", "0"]);
    assert_usage_error(&o, "invalid --limit 0");
    let o = run(&["--database-url", &url, "events", "--since", "yesterday-ish"]);
    assert_usage_error(&o, "invalid --since");

    for command in [
        &["migrate"][..],
        &["events"],
        &["serve", "--addr", "127.0.0.1:0"],
    ] {
        let o = cli(&[&["--database-url", "::::"][..], command].concat())
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_usage_error(&o, "invalid --database-url (or DATABASE_URL) `::::`");
    }
    let o = cli(&["migrate"])
        .env("DATABASE_URL", "db:5432/app")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_usage_error(&o, "DATABASE_URL");
    assert!(
        !dir.path().join("::::").exists() && !dir.path().join("db:5432").exists(),
        "no file was created for a bad URL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invisible_characters_are_escaped_in_tables_and_json() {
    use self_healing_runtime::event::EventStore as _;
    let (_dir, url, store) = seeded().await;
    // Right-to-left override (shows `exe.txt` as `txt.exe`), zero-width space, C1 control,
    // isolate, byte-order mark.
    let message = "invoice\u{202e}txt.exe\u{200b} paid\u{85}\u{2066}x\u{feff}";
    let event = common::event(
        "renderInvoice",
        self_healing_runtime::Outcome::Failed,
        "retry",
        message,
        5,
    );
    store.write_batch(&[event]).await.unwrap();
    store.flush().await.unwrap();
    store
        .record_health_check(&self_healing_store::HealthCheckRecord {
            time: common::ago(1),
            name: "partner_api".into(),
            status: self_healing_store::HealthStatus::Degraded,
            latency: Duration::from_millis(1),
            message: "slow\u{202e}kaerb".into(),
            details: None,
        })
        .await
        .unwrap();
    let invisible = ['\u{202e}', '\u{200b}', '\u{85}', '\u{2066}', '\u{feff}'];

    let o = run(&[
        "--database-url",
        &url,
        "events",
        "--source",
        "renderInvoice",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        !out.contains(invisible),
        "raw invisible characters in the table: {out:?}"
    );
    assert!(
        out.contains(r"invoice\u{202e}txt.exe\u{200b} paid\u{85}\u{2066}x\u{feff}"),
        "{out}"
    );

    let o = run(&[
        "--database-url",
        &url,
        "events",
        "--source",
        "renderInvoice",
        "--json",
    ]);
    let out = stdout(&o);
    assert!(
        !out.contains(invisible),
        "raw invisible characters in the JSON: {out:?}"
    );
    assert!(
        out.contains(r"invoice\u202etxt.exe\u200b paid\u0085\u2066x\ufeff"),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json["events"][0]["message"], message,
        "the same string once parsed"
    );

    for args in [&["health"][..], &["health", "--json"]] {
        let o = run(&[&["--database-url", &url][..], args].concat());
        let out = stdout(&o);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!out.contains('\u{202e}'), "{out:?}");
        assert!(
            out.contains(r"slow\u{202e}kaerb") || out.contains(r"slow\u202ekaerb"),
            "{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_commands_reach_running_instances() {
    use self_healing_runtime::circuit_control::CircuitCommand;
    use self_healing_runtime::fleet::{CircuitNotice, NoticeKind};
    use self_healing_runtime::{CircuitState, Healer};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fleet.db").display());
    let o = run(&["--database-url", &url, "migrate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["--database-url", &url, "circuit", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("no circuit news in this store yet"));

    let store = self_healing_store::DieselStore::connect(&url)
        .await
        .unwrap();
    seed(&store, &sites()).await;
    // A running instance of the application, sharing the store.
    let web = Healer::builder()
        .instance_id("web-1")
        .store(store.clone())
        .build()
        .unwrap();
    let site = sites()[0];
    assert_eq!(site.source(), "createContact");
    // Its worker learns where the log stands first (older news is not acted on).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // A typo is a usage error, with a did-you-mean.
    let o = run(&["--database-url", &url, "circuit", "open", "createContat"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "usage errors exit with 2: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("unknown source `createContat`: did you mean `createContact`?"),
        "{err}"
    );
    let o = run(&[
        "--database-url",
        &url,
        "circuit",
        "explode",
        "createContact",
    ]);
    assert_eq!(o.status.code(), Some(2), "clap's usage error");

    let o = run(&[
        "--database-url",
        &url,
        "circuit",
        "open",
        "createContact",
        "--by",
        "alice",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o)
            .starts_with("asked every instance to open the circuit of `createContact` (by alice)"),
        "{}",
        stdout(&o)
    );
    let notices = store.circuit_notices(0, 10).await.unwrap();
    assert!(
        notices.iter().any(|n| n.instance == "cli"
            && n.kind
                == NoticeKind::Command {
                    command: CircuitCommand::Open,
                    by: "alice".into()
                }),
        "{notices:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while web.circuit_of(site) != CircuitState::Open {
        assert!(
            std::time::Instant::now() < deadline,
            "the running instance applies the command"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The list shows what the instance published, with its time.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let o = run(&["--database-url", &url, "circuit", "list", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let body: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let rows = body["circuits"].as_array().unwrap().clone();
        if !rows.is_empty() {
            break rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "web-1 published its state"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["instance"], "web-1");
    assert_eq!(listed[0]["source"], "createContact");
    assert_eq!(listed[0]["state"], "open");
    assert_eq!(listed[0]["held_open"], true);
    assert!(
        listed[0]["since"].as_str().unwrap().ends_with('Z'),
        "RFC 3339: {listed:?}"
    );
    store
        .publish_circuit_notice(&CircuitNotice::new(
            "web-2",
            "sendInvoice",
            NoticeKind::Moved {
                state: CircuitState::HalfOpen,
                held_open: false,
            },
        ))
        .await
        .unwrap();
    let o = run(&["--database-url", &url, "circuit", "list"]);
    let out = stdout(&o);
    let header = out.lines().next().unwrap();
    for column in ["SOURCE", "INSTANCE", "STATE", "BY HAND", "SINCE (UTC)"] {
        assert!(header.contains(column), "{column} in {header}");
    }
    assert!(
        out.lines().any(|l| l.contains("createContact")
            && l.contains("web-1")
            && l.contains("open")
            && l.contains("yes")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("sendInvoice") && l.contains("web-2") && l.contains("half_open")),
        "{out}"
    );
}

/// A GET over plain TCP: the status line and the body.
fn http_get(addr: &str, path: &str, bearer: Option<&str>) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_its_url_and_answers() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    seed(&store, &sites()).await;
    let mut child = cli(&["--database-url", &db.url, "serve", "--addr", "127.0.0.1:0"])
        .env("SELF_HEALING_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("self-healing dashboard: http://")
        .unwrap_or_else(|| panic!("{first}"));
    let (addr, path) = url.split_once('/').unwrap();
    assert_eq!(path, "platform/system-health");
    let second = lines.next().unwrap().unwrap();
    assert!(second.starts_with("store: sqlite://"), "{second}");

    let (status, body) = tokio::task::spawn_blocking({
        let addr = addr.to_owned();
        move || http_get(&addr, "/health", None)
    })
    .await
    .unwrap();
    assert!(status.contains("200"), "{status}: {body}");
    let (status, _) = tokio::task::spawn_blocking({
        let addr = addr.to_owned();
        move || http_get(&addr, "/platform/system-health/api/events", None)
    })
    .await
    .unwrap();
    assert!(status.contains("401"), "{status}");
    let (status, body) = tokio::task::spawn_blocking({
        let addr = addr.to_owned();
        move || {
            http_get(
                &addr,
                "/platform/system-health/api/events?limit=1",
                Some(TOKEN),
            )
        }
    })
    .await
    .unwrap();
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("renderProfile"), "{body}");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_commands_list_retry_and_drop() {
    use self_healing_runtime::event::EventStore as _;
    use self_healing_runtime::outbox::{OutboxEntry, OutboxSettle, OutboxStatus};
    let (_dir, url, store) = seeded().await;
    let o = run(&["--database-url", &url, "queue", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("no outbox entries (0 pending, 0 delivered, 0 dead)"),
        "{}",
        stdout(&o)
    );

    let (pending, dead, delivered) = (
        "0123456789abcdef0123456789abcd01",
        "0123456789abcdef0123456789abcd02",
        "0123456789abcdef0123456789abcd03",
    );
    let now = std::time::SystemTime::now();
    for key in [delivered, dead, pending] {
        let e = OutboxEntry::new(key, "createContact", r#"{"name":"Ada"}"#, now);
        assert!(store.outbox_put(&e).await.unwrap());
    }
    assert_eq!(
        store
            .outbox_claim(now, Duration::from_secs(60), 2)
            .await
            .unwrap()
            .len(),
        2
    );
    store
        .outbox_settle(delivered, &OutboxSettle::Delivered, now)
        .await
        .unwrap();
    // A stored error that tries to reorder the terminal's text, over two lines.
    let hostile = "503 from crm\u{202e}txt.exe\nretry later";
    store
        .outbox_settle(
            dead,
            &OutboxSettle::Dead {
                error: hostile.into(),
            },
            now,
        )
        .await
        .unwrap();

    let o = run(&["--database-url", &url, "queue", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let header = out.lines().next().unwrap();
    for column in [
        "KEY",
        "SOURCE",
        "STATUS",
        "TRIES",
        "NEXT ATTEMPT (UTC)",
        "LAST ERROR",
    ] {
        assert!(header.contains(column), "{column} in {header}");
    }
    let rows: Vec<&str> = out.lines().skip(1).take(3).collect();
    assert!(rows[0].starts_with(pending), "newest first: {out}");
    assert!(
        rows[1].starts_with(dead) && rows[1].contains(" dead "),
        "{out}"
    );
    assert!(
        rows[2].starts_with(delivered) && rows[2].contains("delivered"),
        "{out}"
    );
    assert!(!out.contains('\u{202e}'), "raw bidi override: {out:?}");
    assert!(
        out.contains(r"503 from crm\u{202e}txt.exe retry later"),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("1 pending, 1 delivered, 1 dead"));

    let o = run(&[
        "--database-url",
        &url,
        "queue",
        "list",
        "--status",
        "dead",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains('\u{202e}'), "{}", stdout(&o));
    let body: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["key"], dead);
    assert_eq!(
        entries[0]["last_error"], hostile,
        "the same text once parsed"
    );
    assert_eq!(entries[0]["payload"]["name"], "Ada");
    assert_eq!(entries[0]["attempts"], 1);
    assert!(
        entries[0]["next_attempt_at"].is_null(),
        "a dead entry waits for nothing"
    );
    assert_eq!(body["counts"]["pending"], 1);

    let o = run(&[
        "--database-url",
        &url,
        "queue",
        "list",
        "--status",
        "queued",
    ]);
    assert_usage_error(
        &o,
        "invalid --status queued: expected pending, delivered or dead",
    );
    let o = run(&["--database-url", &url, "queue", "list", "--limit", "0"]);
    assert_usage_error(&o, "invalid --limit 0: expected 1 to 1000");

    // Retry: the dead entry is pending again, due now, tries counted afresh.
    let o = run(&["--database-url", &url, "queue", "retry", dead]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with(&format!(
            "the dead outbox entry `{dead}` of createContact is due now"
        )),
        "{}",
        stdout(&o)
    );
    let revived = store.outbox_entry(dead).await.unwrap().unwrap();
    assert_eq!(
        (revived.status, revived.attempts),
        (OutboxStatus::Pending, 0)
    );
    let o = run(&["--database-url", &url, "queue", "retry", delivered]);
    let err = assert_one_line_error(&o, "was delivered at");
    assert!(err.contains("a delivered call is never replayed"), "{err}");
    let o = run(&["--database-url", &url, "queue", "retry", "ffff\u{202e}0000"]);
    let err = assert_usage_error(&o, "no outbox entry with the key `ffff\\u{202e}0000`");
    assert!(err.contains("self-healing queue list"), "{err}");

    // Drop: refused without a terminal or --yes, nothing deleted; then done.
    let o = run(&["--database-url", &url, "queue", "drop", pending]);
    let err = assert_usage_error(&o, "pass --yes");
    assert!(
        err.contains(&format!(
            "the pending outbox entry `{pending}` of createContact"
        )),
        "{err}"
    );
    assert!(store.outbox_entry(pending).await.unwrap().is_some());
    let o = run(&["--database-url", &url, "queue", "drop", pending, "--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("dropped the pending outbox entry"),
        "{}",
        stdout(&o)
    );
    assert_eq!(store.outbox_entry(pending).await.unwrap(), None);
    let o = run(&["--database-url", &url, "queue", "drop", pending, "--yes"]);
    assert_usage_error(&o, "no outbox entry with the key");
    let o = run(&["--database-url", &url, "queue", "drop", " ", "--yes"]);
    assert_usage_error(&o, "the key is empty");
}
