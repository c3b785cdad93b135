//! What the CLI says to the person at the terminal: `config check`, the operator commands and
//! `serve`'s refusals to start, each message snapshotted as the operator reads it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hotfix-lane");

/// Runs the binary in `dir` with no HOTFIX_LANE_* settings from the caller's environment.
fn run_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("HOTFIX_LANE_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    let out = command.args(args).current_dir(dir).stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn example_policy() -> String {
    format!("{}/examples/hotfix-lane.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_example_policy_is_valid_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run_in(dir.path(), &["config", "check", &example_policy()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().ends_with("hotfix-lane.toml: ok"), "{out}");
    assert_eq!(err, "", "the example must not need a warning");
}

#[test]
fn the_example_policy_sets_every_key() {
    let text = std::fs::read_to_string(example_policy()).unwrap();
    let example: toml::Table = toml::from_str(&text).unwrap();
    let defaults = toml::Value::try_from(hotfix_lane::lane::policy::Policy::default()).unwrap();
    for (section, keys) in defaults.as_table().unwrap() {
        for key in keys.as_table().unwrap().keys() {
            assert!(example.get(section).and_then(|s| s.get(key)).is_some(), "the example leaves out {section}.{key}");
        }
    }
    // `template` and `min_permission` have no default value to serialize: checked by name.
    assert!(example["postmortem"].get("template").is_some() && example["responders"].get("min_permission").is_some());
}

#[test]
fn config_check_lists_every_problem_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        "[lane]\nlabel = \"\"\ncolour = \"red\"\n[responders]\nteams = [\"oncall\"]\n[merge]\nmax_grant = \"soon\"\n\
         smoke_checks = [{ name = \"smoke\", ap = \"ci\" }]\n",
    )
    .unwrap();
    let (code, out, err) = run_in(dir.path(), &["config", "check", "policy.toml"]);
    assert_eq!((code, out.as_str()), (1, ""));
    insta::assert_snapshot!("config_check_errors", err);
}

#[test]
fn config_check_warns_about_responders_nobody_can_be() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("at.toml"), "[responders]\nusers = [\"@alice\"]\n").unwrap();
    std::fs::write(dir.path().join("empty.toml"), "[responders]\nusers = []\nteams = []\n").unwrap();
    let (code, _, at) = run_in(dir.path(), &["config", "check", "at.toml"]);
    assert_eq!(code, 0, "a warning is not a failure");
    let (code, _, empty) = run_in(dir.path(), &["config", "check", "empty.toml"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("config_check_warnings", format!("{at}{empty}"));
}

#[test]
fn reading_commands_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut said = String::new();
    for args in [
        &["audit"][..],
        &["jobs", "dead"],
        &["backport", "pending"],
        &["report"],
        &["audit", "--database-url", "sqlite://elsewhere/lane.db"],
    ] {
        let (code, out, err) = run_in(dir.path(), args);
        assert_eq!((code, out.as_str()), (1, ""), "{args:?}: {err}");
        let err = err.replace(&dir.path().canonicalize().unwrap().display().to_string(), "[DIR]");
        said.push_str(&format!("$ hotfix-lane {}\n{err}", args.join(" ")));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no database file was created");
    insta::assert_snapshot!("reading_commands_without_a_database", said);
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_refused_database_port_fails_fast_naming_the_url_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let url = format!("postgres://hl:s3cret@127.0.0.1:{port}/lane");
    let started = Instant::now();
    let (code, _, err) = run_in(dir.path(), &["audit", "--database-url", &url]);
    assert_eq!(code, 1);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(!err.contains("s3cret"), "{err}");
    insta::assert_snapshot!("database_port_refused", err.replace(&port.to_string(), "PORT"));
}

#[test]
fn serve_refuses_a_database_it_cannot_open_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "s").unwrap();
    let (code, _, err) = run_in(
        dir.path(),
        &[
            "serve",
            "--github-webhook-secret-file",
            "secret",
            "--database-url",
            "sqlite://no-such-dir/lane.db",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(code, 1, "{err}");
    insta::assert_snapshot!("serve_database_unopenable", err);
}

#[test]
fn serve_refuses_an_unusable_mirror_directory_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "s").unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let (code, _, err) = run_in(
        dir.path(),
        &[
            "serve",
            "--github-webhook-secret-file",
            "secret",
            "--mirror-dir",
            "a-file/mirrors",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(!dir.path().join("hotfix-lane.db").exists(), "refused before the database is made");
    insta::assert_snapshot!("serve_mirror_dir_unusable", err);
}

#[test]
fn serve_refuses_a_port_in_use_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "s").unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = run_in(dir.path(), &["serve", "--github-webhook-secret-file", "secret", "--listen", &addr]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(err.contains("another process listens there"), "{err}");
}

#[test]
fn logs_carry_no_colour_codes_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    // A secret given as a flag is warned about in the log before the start is refused.
    let (code, _, err) = run_in(
        dir.path(),
        &["serve", "--github-webhook-secret", "s", "--mirror-dir", "a-file/m", "--listen", "127.0.0.1:0"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("WARN") && err.contains("--github-webhook-secret was given on the command line"), "{err}");
    assert!(!err.contains('\u{1b}'), "colour codes in a log that is not a terminal: {err:?}");
}

#[test]
fn a_refused_delivery_is_logged_once_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", "lane.db"])
        .env("HOTFIX_LANE_GITHUB_WEBHOOK_SECRET", "s")
        .env_remove("HOTFIX_LANE_LOG_FORMAT")
        .env("RUST_LOG", "info")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited before listening").unwrap();
        if let Some(rest) = line.split("listening addr=").nth(1) {
            break rest.trim().to_string();
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("http://{addr}/webhooks/github"))
            .header("X-GitHub-Event", "ping")
            .header("X-GitHub-Delivery", "d-1")
            .body("{}")
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 401);
    let refused = lines.map(|l| l.unwrap()).find(|l| l.contains("delivery refused")).expect("a refusal is logged");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(refused.matches("outcome=").count(), 1, "{refused}");
    assert!(refused.contains("outcome=\"unauthorized\"") || refused.contains("outcome=unauthorized"), "{refused}");
    assert!(refused.contains("status=401") && refused.contains("X-Hub-Signature-256"), "{refused}");
}

#[test]
fn help_texts_say_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run_in(dir.path(), &["action", "--help"]);
    assert_eq!(code, 0);
    for mode in ["`lane`", "`postmortem`", "`backport`", "`merge`"] {
        assert!(out.contains(mode), "action --help names mode {mode}: {out}");
    }
    let (code, out, _) = run_in(dir.path(), &["serve", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("[default: human]"), "{out}");
}

#[test]
fn a_bad_serve_config_file_names_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("serve.toml"), "listen = \"127.0.0.1:0\"\nworkers = \"many\"\n").unwrap();
    let (code, _, err) = run_in(dir.path(), &["serve", "--config", "serve.toml"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("hotfix-lane: serve.toml:2:11: invalid type"), "{err}");
}

/// `report` on a database that recorded one hotfix and one ordinary merge, in each format.
#[test]
fn report_prints_the_same_figures_in_every_format() {
    use hotfix_lane::lane::lifecycle::{Detail, LifecycleEvent, Milestone};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/lane.db", dir.path().display());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let (hour, min) = (3_600_000, 60_000);
    let event = |number, milestone, at, detail| LifecycleEvent {
        forge: "github".into(),
        repo: "acme/shop".into(),
        number,
        milestone,
        key: String::new(),
        at,
        actor: "alice".into(),
        detail,
    };
    let hotfix = Detail { hotfix: true, title: Some("Fix *checkout* <now>".into()), ..Detail::default() };
    let events = [
        event(7, Milestone::Entered, now - 2 * hour, Detail::default()),
        event(7, Milestone::SmokeGreen, now - 2 * hour + 30 * min, Detail::default()),
        event(7, Milestone::Merged, now - hour, hotfix),
        event(8, Milestone::Merged, now - hour, Detail::default()),
    ];
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = hotfix_lane::store::Store::open(&url, &Default::default()).await.unwrap();
        store.record_lifecycle(&events).await.unwrap();
        store.close().await;
    });
    let report = |format: &str| {
        let (code, out, err) = run_in(dir.path(), &["report", "--database-url", &url, "--format", format]);
        assert_eq!(code, 0, "{format}: {err}");
        out
    };
    let json: serde_json::Value = serde_json::from_str(&report("json")).unwrap();
    assert_eq!((json["merged"].as_u64(), json["time_to_patch"]["median_s"].as_f64()), (Some(1), Some(1800.0)));
    assert_eq!((json["rework"]["hits"].as_u64(), json["rework"]["of"].as_u64()), (Some(1), Some(2)));
    assert!(report("csv").lines().any(|l| l == ",time_to_patch,1,1,1800,1800,"), "{}", report("csv"));
    let table = report("table");
    assert!(table.contains("median 30m, p90 30m (1 of 1)") && table.contains("not reported (0 of 1)"), "{table}");
    let md = report("md");
    assert!(md.contains("| Time to patch \\(M3\\): entry → smoke green | median 30m, p90 30m \\(1 of 1\\) |"), "{md}");
    // A title from a change adds no markup to a page the report is pasted into.
    assert!(md.contains("Fix \\*checkout\\* \\<now\\>"), "{md}");
    let (code, _, err) = run_in(dir.path(), &["report", "--database-url", &url, "--since", "1d", "--until", "2d"]);
    assert_eq!(code, 1);
    assert!(err.contains("--since must come before --until"), "{err}");
}
