//! `hotfix-lane action` (mode `lane`) from process start to published decision, as a workflow
//! step pays it: the release binary started the way the runner starts it, reading the event
//! file, asking the GitHub API (here a fake on loopback that answers at once, so the figure is
//! hotfix-lane's own time, not the network's) and writing `$GITHUB_OUTPUT`. The baseline, in the
//! same run, is the same binary doing nothing (`hotfix-lane --version`): the floor of starting
//! this process at all.
//!
//! `cargo bench --bench action` — environment: `BENCH_RUNS` (default 200).

#[path = "../tests/common/fake_github.rs"]
#[allow(dead_code)]
mod fake_github;
// What the fake is served through (nothing, here).
#[path = "../tests/common/faults.rs"]
#[allow(dead_code)]
mod faults;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hotfix-lane");
const REPO: &str = "Codertocat/Hello-World";

fn time(runs: usize, mut command: impl FnMut() -> Command) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let mut cmd = command();
            let started = Instant::now();
            let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("runs");
            let took = started.elapsed();
            assert!(status.success(), "{cmd:?} failed");
            took
        })
        .collect();
    times.sort();
    times
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let fake = runtime.block_on(fake_github::FakeGitHub::start());
    fake.repo(REPO, |r| {
        let policy = "[responders]\nusers = [\"Codertocat\"]\n";
        r.files.insert(("master".into(), ".github/hotfix-lane.toml".into()), policy.into());
        r.label_events.push((2, "hotfix".into(), "Codertocat".into(), "2026-11-26T13:00:00Z".into()));
        r.issues.insert(10, (vec!["postmortem".into()], false));
    });
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/pull_request/labeled.json");
    let mut event: serde_json::Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    event["pull_request"]["labels"] = serde_json::json!([{ "name": "hotfix" }]);
    event["pull_request"]["body"] = "Fix.\n\nPostmortem: #10".into();
    let event_path = dir.path().join("event.json");
    std::fs::write(&event_path, serde_json::to_vec(&event).unwrap()).unwrap();
    let (output, summary) = (dir.path().join("output"), dir.path().join("summary"));

    let floor = time(runs, || {
        let mut cmd = Command::new(BIN);
        cmd.arg("--version");
        cmd
    });
    fake.take_calls();
    let lane = time(runs, || {
        let mut cmd = Command::new(BIN);
        cmd.arg("action")
            .env_clear()
            .env("INPUT_TOKEN", "ghs_bench")
            .env("INPUT_MODE", "lane")
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", &event_path)
            .env("GITHUB_API_URL", &fake.url)
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary);
        cmd
    });
    let calls = fake.take_calls().len() as f64 / runs as f64;
    let decision = std::fs::read_to_string(&output).unwrap();
    assert!(decision.contains("hotfix"), "the decision was published: {decision}");

    let pct = |t: &[Duration], p: f64| t[((t.len() as f64 * p) as usize).min(t.len() - 1)];
    println!("hotfix-lane action (mode lane), {runs} runs each, API on loopback ({calls:.0} calls per run)");
    println!("{:<34} {:>9} {:>9} {:>9} {:>10}", "", "p50 ms", "p90 ms", "min ms", "vs floor");
    for (name, t) in [("process start (--version): floor", &floor), ("mode lane: start → decision", &lane)] {
        let ratio = ms(pct(t, 0.5)) / ms(pct(&floor, 0.5));
        println!("{name:<34} {:>9.2} {:>9.2} {:>9.2} {:>9.2}x", ms(pct(t, 0.5)), ms(pct(t, 0.9)), ms(t[0]), ratio);
    }
    let size = std::fs::metadata(BIN).map(|m| m.len()).unwrap_or(0);
    println!("binary: {BIN} ({:.1} MiB)", size as f64 / (1024.0 * 1024.0));
}
