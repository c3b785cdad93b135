//! The pre-authorized merge, end to end, as the server runs it: `serve` in this process (the
//! way the lane tests start it, with their fixed clock for grants), the real GitHub client
//! against the loopback fake GitHub (which answers at once, so the figures are hotfix-lane's own
//! time), and for each lifecycle its own pull request: opened by its author → labelled `hotfix`
//! by another responder (the grant, as in the merge tests) → the pinned smoke check posted green
//! on the fake and its `check_run` webhook delivered → merged.
//!
//! It reports the API calls each lifecycle cost (total and by endpoint, mean and max) and the
//! latency, on a real clock, from the acknowledgement of the green check's delivery to the
//! fake's receipt of `PUT …/merge`. The baselines, measured in the same run between the
//! lifecycles: a bare HTTP round trip to the fake, and the acknowledgement of one signed
//! delivery that only goes through intake (verified, stored durably, acknowledged; its job reads
//! nothing from GitHub). Lifecycles run one after another, so the latency is that of an idle
//! server, not one under load.
//!
//! `BENCH_FORGE=gitlab` runs the same lifecycle on GitLab: the real GitLab client against the
//! fake GitLab, a merge request opened → labelled `hotfix` by a responder → its smoke job turned
//! green in the head pipeline and the Pipeline Hook delivered → `PUT …/merge`. Its merge is seen
//! by polling the fake every millisecond, so that latency is good to a millisecond.
//!
//! `cargo bench --bench lifecycle` — environment: `BENCH_LIFECYCLES` (default 200),
//! `BENCH_BACKEND` (`sqlite`, the default, or `postgres`: `HOTFIX_LANE_TEST_POSTGRES_URL`, default
//! the local test database), `BENCH_JSON=path` to also write the figures as JSON.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::github::{check_event, pr_event};
use common::gitlab::{pipeline_hook, GitLabDriver, API_TOKEN, PROJECT, PROJECT_PATH};
use common::lane::{Lane, REPO};
use common::scenario::{Change, ForgeDriver, NewChange, State, LANE, POSTMORTEM as POSTMORTEM_CHECK};
use common::{Backend, Delivery};
use serde_json::{json, Value};

/// The postmortem issue every hotfix names.
const POSTMORTEM: u64 = 50;
const BODY: &str = "Postmortem: #50";
/// The change's author, and the responder whose label authorizes it (the two-person rule).
const AUTHOR: &str = "Codertocat";
const RESPONDER: &str = "alice";
const SMOKE: &str = "Octocoders-linter";
const MERGE_POLICY: &str = "[responders]\nusers = [\"Codertocat\", \"alice\"]\n[merge]\nsmoke_checks = [\"Octocoders-linter\"]\nmethod = \"squash\"\n";
/// Pull request numbers: the warm-up's, then one per measured lifecycle.
const FIRST_NUMBER: u64 = 100;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn head_of(number: u64) -> String {
    format!("{number:040x}")
}

/// Pull request `number` as the fake serves it: the fixture's, on its own branch and head.
fn pull(number: u64, labels: &[&str]) -> Value {
    let mut pull = common::json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    pull["number"] = number.into();
    pull["id"] = (279_000_000 + number).into();
    pull["head"]["sha"] = head_of(number).into();
    pull["head"]["ref"] = format!("fix-{number}").into();
    pull["labels"] = labels.iter().map(|l| json!({ "name": l })).collect();
    pull["body"] = BODY.into();
    pull
}

/// The tests' `pull_request` delivery for PR #2, moved onto pull request `number`.
fn pr_delivery(number: u64, action: &str, label: Option<&str>, labels: &[&str], sender: &str) -> Value {
    pr_event(action, &pull(number, labels), label, sender)
}

/// The tests' green smoke check, moved onto pull request `number` and its head.
fn check_delivery(number: u64, name: &str) -> Value {
    let head = head_of(number);
    let mut event = check_event(&head, SMOKE, "success");
    let run = &mut event["check_run"];
    run["id"] = (128_000_000 + number).into();
    run["name"] = name.into();
    run["check_suite"]["head_sha"] = head.clone().into();
    for path in ["/pull_requests/0", "/check_suite/pull_requests/0"] {
        let pull = run.pointer_mut(path).expect("the fixture names its pull request");
        pull["number"] = number.into();
        pull["head"]["sha"] = head.clone().into();
        pull["head"]["ref"] = format!("fix-{number}").into();
    }
    event
}

/// "GET /repos/Codertocat/Hello-World/pulls/101" → "GET /repos/{repo}/pulls/{n}", and
/// "GET /api/v4/projects/acme%2Fplatform%2Fpayments/merge_requests/101" →
/// "GET /api/v4/projects/{project}/merge_requests/{n}".
fn endpoint(call: &str) -> String {
    let call = call
        .replace(&format!("/repos/{REPO}"), "/repos/{repo}")
        .replace(&format!("/projects/{}", PROJECT_PATH.replace('/', "%2F")), "/projects/{project}")
        .replace(&format!("/projects/{PROJECT}"), "/projects/{project}");
    let (method, path) = call.split_once(' ').unwrap_or(("", &call));
    let path: Vec<String> = path
        .split('/')
        .map(|segment| {
            if segment.len() == 40 && segment.bytes().all(|b| b.is_ascii_hexdigit()) {
                "{sha}".to_string()
            } else if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                "{n}".to_string()
            } else {
                segment.to_string()
            }
        })
        .collect();
    format!("{method} {}", path.join("/"))
}

/// What one lifecycle cost and how long its merge took.
struct Lifecycle {
    /// Phase → the API calls made while the lane handled it.
    calls: Vec<(&'static str, Vec<String>)>,
    /// From the green check's acknowledgement to the merge request's arrival (negative if the
    /// merge came first).
    ack_to_merge: f64,
    /// From sending the green check's delivery to the merge request's arrival.
    sent_to_merge: f64,
}

impl Lifecycle {
    fn total(&self) -> usize {
        self.calls.iter().map(|(_, c)| c.len()).sum()
    }
}

fn merge_requests(lane: &Lane, number: u64) -> Vec<Instant> {
    lane.fake.repo(REPO, |r| r.merge_requests.iter().filter(|(n, _)| *n == number).map(|(_, at)| *at).collect())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Milliseconds from `from` to `to`, negative when `to` came first.
fn signed_ms(from: Instant, to: Instant) -> f64 {
    if to >= from {
        ms(to - from)
    } else {
        -ms(from - to)
    }
}

async fn lifecycle(lane: &Lane, number: u64) -> Lifecycle {
    let head = head_of(number);
    let mut calls = Vec::new();
    lane.fake.take_calls();

    // Opened by its author: a normal change until a responder labels it.
    lane.fake.repo(REPO, |r| r.pulls.insert(number, pull(number, &[])));
    lane.send("pull_request", pr_delivery(number, "opened", None, &[], AUTHOR)).await;
    calls.push(("opened", lane.fake.take_calls()));

    // Labelled by another responder: in the lane, and authorized.
    lane.fake.repo(REPO, |r| {
        r.pulls.insert(number, pull(number, &["hotfix"]));
        r.label_events.push((number, "hotfix".into(), RESPONDER.into(), "2026-11-26T13:24:00Z".into()));
    });
    lane.send("pull_request", pr_delivery(number, "labeled", Some("hotfix"), &["hotfix"], RESPONDER)).await;
    calls.push(("labelled", lane.fake.take_calls()));
    assert_eq!(lane.status(&head, "hotfix-lane/lane").1, "hotfix: smoke-only", "#{number} is in the lane");
    assert_eq!(lane.status(&head, "hotfix-lane/postmortem").0, "success", "#{number} names its postmortem");
    assert!(merge_requests(lane, number).is_empty(), "#{number} is not merged before its smoke check");

    // CI posts the smoke check green, then its webhook arrives.
    lane.fake.post_check_run(REPO, &head, SMOKE, "success", "github-actions");
    let body = serde_json::to_vec(&check_delivery(number, SMOKE)).unwrap();
    let delivery = Delivery::new("check_run", &format!("lifecycle-{number}-check"), body);
    let request = delivery.request(&lane.client, &lane.base);
    let sent = Instant::now();
    let response = request.send().await.expect("the check delivery is sent");
    let acked = Instant::now();
    assert_eq!(response.status(), 202, "the check delivery is acknowledged");
    let deadline = acked + Duration::from_secs(20);
    let merged = loop {
        if let Some(&at) = merge_requests(lane, number).first() {
            break at;
        }
        assert!(Instant::now() < deadline, "#{number} was not merged within 20 s of its green check");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    lane.settle().await;
    calls.push(("green check → merged", lane.fake.take_calls()));

    // Merged exactly once, pinned to the authorized head, with the policy's method.
    assert_eq!(merge_requests(lane, number).len(), 1, "#{number}: one merge request");
    let merges: Vec<_> = lane.fake.repo(REPO, |r| r.merges.iter().filter(|m| m.0 == number).cloned().collect());
    assert_eq!(merges, vec![(number, head.clone(), "squash".to_string())], "#{number} merged once, on its head");
    let state = lane.store().lane_state("github", 186853002, number as i64).await.unwrap().expect("lane state");
    assert_eq!(state["lane"]["merged"], json!(head), "#{number}: the lane recorded its merge");

    Lifecycle { calls, ack_to_merge: signed_ms(acked, merged), sent_to_merge: signed_ms(sent, merged) }
}

/// The baselines, once between lifecycles: a bare round trip to the fake, and one delivery
/// acknowledged by intake only (a check the policy does not pin: its job stops at the name).
async fn baselines(lane: &Lane, i: u64) -> (f64, f64) {
    let started = Instant::now();
    let response = lane.client.get(format!("{}/user", lane.fake.url)).send().await.expect("fake answers");
    let rtt = ms(started.elapsed());
    assert_eq!(response.status(), 200);
    let body = serde_json::to_vec(&check_delivery(FIRST_NUMBER + 1 + i, "lint")).unwrap();
    let delivery = Delivery::new("check_run", &format!("baseline-{i}"), body);
    let request = delivery.request(&lane.client, &lane.base);
    let started = Instant::now();
    let response = request.send().await.expect("the delivery is sent");
    let ack = ms(started.elapsed());
    assert_eq!(response.status(), 202, "the baseline delivery is acknowledged");
    lane.settle().await;
    assert_eq!(lane.fake.take_calls(), ["GET /user"], "the baseline delivery's job asks GitHub nothing");
    (rtt, ack)
}

/// The GitLab policy: the smoke job must come from GitLab CI.
const GITLAB_POLICY: &str = "[responders]\nusers = [\"codertocat\", \"alice\"]\n[merge]\nsmoke_checks = [{ name = \"smoke\", app = \"gitlab-ci\" }]\nmethod = \"squash\"\n";

fn gitlab_calls(lane: &GitLabDriver) -> Vec<String> {
    lane.fake.take_calls().into_iter().map(|c| format!("{} {}", c.method, c.path)).collect()
}

fn gitlab_merges(lane: &GitLabDriver, iid: u64) -> Vec<common::fake_gitlab::Merge> {
    lane.fake.merges().into_iter().filter(|m| m.iid == iid).collect()
}

async fn gitlab_lifecycle(lane: &mut GitLabDriver, iid: u64) -> Lifecycle {
    let mut calls = Vec::new();
    lane.fake.take_calls();
    let mr = lane.open(NewChange::by("codertocat").number(iid).body(BODY)).await;
    calls.push(("opened", gitlab_calls(lane)));
    lane.label(mr, "hotfix", "alice").await;
    calls.push(("labelled", gitlab_calls(lane)));
    let head = lane.head(mr);
    assert_eq!(lane.check(&head, LANE).map(|c| c.0), Some(State::Success), "!{iid} is in the lane");
    assert_eq!(lane.check(&head, POSTMORTEM_CHECK).map(|c| c.0), Some(State::Success), "!{iid} names its postmortem");
    assert!(gitlab_merges(lane, iid).is_empty(), "!{iid} is not merged before its smoke job");

    // CI turns the smoke job green in the head pipeline, then its Pipeline Hook arrives.
    let (pipeline, of) = lane.ci_pipeline(&head);
    lane.fake.add_job(PROJECT, pipeline, "smoke", "success", false, "gitlab-ci");
    let hook = pipeline_hook(&lane.fake, PROJECT, pipeline, of, "gitlab-ci");
    let sent = Instant::now();
    let status = lane.deliver_to(&lane.base, "Pipeline", &hook).await;
    let acked = Instant::now();
    assert_eq!(status, 202, "the pipeline delivery is acknowledged");
    let deadline = acked + Duration::from_secs(20);
    let merged = loop {
        if !gitlab_merges(lane, iid).is_empty() {
            break Instant::now();
        }
        assert!(Instant::now() < deadline, "!{iid} was not merged within 20 s of its green pipeline");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    lane.settle().await;
    calls.push(("green pipeline → merged", gitlab_calls(lane)));
    let merges = gitlab_merges(lane, iid);
    assert_eq!(merges.len(), 1, "!{iid}: one merge");
    assert_eq!((merges[0].sha.as_deref(), merges[0].squash), (Some(head.as_str()), true), "!{iid} pinned to its head");
    Lifecycle { calls, ack_to_merge: signed_ms(acked, merged), sent_to_merge: signed_ms(sent, merged) }
}

/// GitLab's baselines: a bare round trip to the fake, and the acknowledgement of a Pipeline
/// Hook for a job the policy does not pin.
async fn gitlab_baselines(lane: &mut GitLabDriver, i: u64, last: Change) -> (f64, f64) {
    let started = Instant::now();
    let user = lane.client.get(format!("{}/api/v4/user", lane.fake.url)).header("PRIVATE-TOKEN", API_TOKEN);
    let response = user.send().await.expect("fake answers");
    let rtt = ms(started.elapsed());
    assert_eq!(response.status(), 200);
    let head = lane.head(last);
    let (pipeline, of) = lane.ci_pipeline(&head);
    lane.fake.add_job(PROJECT, pipeline, &format!("lint-{i}"), "success", false, "gitlab-ci");
    let hook = pipeline_hook(&lane.fake, PROJECT, pipeline, of, "gitlab-ci");
    let started = Instant::now();
    let status = lane.deliver_to(&lane.base, "Pipeline", &hook).await;
    let ack = ms(started.elapsed());
    assert_eq!(status, 202, "the baseline delivery is acknowledged");
    lane.settle().await;
    lane.fake.take_calls();
    (rtt, ack)
}

/// Everything one run measured.
struct Measured {
    forge: &'static str,
    warm: Lifecycle,
    results: Vec<Lifecycle>,
    rtts: Vec<f64>,
    acks: Vec<f64>,
}

async fn run_github(backend: Backend, runs: usize) -> Measured {
    let lane = Lane::start(backend, MERGE_POLICY).await;
    lane.fake.repo(REPO, |r| r.issues.insert(POSTMORTEM, (vec!["postmortem".into()], false)));

    // One lifecycle to warm connections and caches (the policy's first, unconditional read).
    let warm = lifecycle(&lane, FIRST_NUMBER).await;
    let (mut results, mut rtts, mut acks) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs as u64 {
        results.push(lifecycle(&lane, FIRST_NUMBER + 1 + i).await);
        let (rtt, ack) = baselines(&lane, i).await;
        rtts.push(rtt);
        acks.push(ack);
    }

    // Every lifecycle merged exactly once, and nothing else was merged.
    let merges = lane.fake.repo(REPO, |r| r.merges.len());
    assert_eq!(merges, runs + 1, "one merge per lifecycle, the warm-up's included");
    assert_one_merge_each(lane.store(), REPO, runs).await;
    let Lane { server, _db, .. } = lane;
    server.shutdown().await.expect("the server stops");
    drop(_db);
    Measured { forge: "GitHub", warm, results, rtts, acks }
}

async fn run_gitlab(backend: Backend, runs: usize) -> Measured {
    let mut lane = GitLabDriver::start(backend, GITLAB_POLICY).await;
    lane.open_issue(POSTMORTEM, &["postmortem"], "alice").await;
    let warm = gitlab_lifecycle(&mut lane, FIRST_NUMBER).await;
    let (mut results, mut rtts, mut acks) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs as u64 {
        let iid = FIRST_NUMBER + 1 + i;
        results.push(gitlab_lifecycle(&mut lane, iid).await);
        let (rtt, ack) = gitlab_baselines(&mut lane, i, Change(iid)).await;
        rtts.push(rtt);
        acks.push(ack);
    }
    assert_eq!(lane.fake.merges().len(), runs + 1, "one merge per lifecycle, the warm-up's included");
    assert_one_merge_each(lane.store(), PROJECT_PATH, runs).await;
    lane.server.shutdown().await.expect("the server stops");
    Measured { forge: "GitLab", warm, results, rtts, acks }
}

/// One `merge.merged` audit entry per lifecycle, and no other.
async fn assert_one_merge_each(store: &hotfix_lane::store::Store, repo: &str, runs: usize) {
    let audit = store.audit(Some(repo), None).await.unwrap();
    let mut merged: BTreeMap<i64, usize> = BTreeMap::new();
    for entry in audit.iter().filter(|e| e.action == "merge.merged") {
        *merged.entry(entry.number.expect("a merge names its change")).or_default() += 1;
    }
    let expected: BTreeMap<i64, usize> = (0..=runs as i64).map(|i| (FIRST_NUMBER as i64 + i, 1)).collect();
    assert_eq!(merged, expected, "one merge.merged audit entry per lifecycle, and no other");
}

struct Summary {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

fn summary(values: &[f64]) -> Summary {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |p: f64| sorted[((sorted.len() as f64 - 1.0) * p).round() as usize];
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    Summary { p50: at(0.50), p90: at(0.90), p99: at(0.99), max: sorted[sorted.len() - 1], mean }
}

fn summary_json(s: &Summary) -> Value {
    json!({ "p50": s.p50, "p90": s.p90, "p99": s.p99, "max": s.max, "mean": s.mean })
}

/// Mean and max per lifecycle of each endpoint kind (a kind a lifecycle did not call counts 0).
fn by_kind<'a>(per_lifecycle: impl Iterator<Item = Vec<&'a str>>, runs: usize) -> BTreeMap<String, (f64, usize)> {
    let mut counts: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, calls) in per_lifecycle.enumerate() {
        for call in calls {
            let kind = counts.entry(endpoint(call)).or_insert_with(|| vec![0; runs]);
            kind[i] += 1;
        }
    }
    counts
        .into_iter()
        .map(|(kind, n)| {
            let mean = n.iter().sum::<usize>() as f64 / runs as f64;
            (kind, (mean, n.into_iter().max().unwrap_or(0)))
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: a short smoke pass.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let runs: usize = if smoke { 3 } else { env_or("BENCH_LIFECYCLES", 200) };
    assert!(runs > 0, "BENCH_LIFECYCLES must be at least 1");
    let backend = match std::env::var("BENCH_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("BENCH_BACKEND={other}: sqlite or postgres"),
    };
    let backend_name = if backend == Backend::Postgres { "postgres" } else { "sqlite" };
    let Measured { forge, warm, results, rtts, acks } = match std::env::var("BENCH_FORGE").as_deref() {
        Ok("github") | Err(_) => run_github(backend, runs).await,
        Ok("gitlab") => run_gitlab(backend, runs).await,
        Ok(other) => panic!("BENCH_FORGE={other}: github or gitlab"),
    };

    let latency = summary(&results.iter().map(|r| r.ack_to_merge).collect::<Vec<_>>());
    let from_send = summary(&results.iter().map(|r| r.sent_to_merge).collect::<Vec<_>>());
    let (rtt, ack) = (summary(&rtts), summary(&acks));
    let totals: Vec<f64> = results.iter().map(|r| r.total() as f64).collect();
    let calls = summary(&totals);
    let kinds =
        by_kind(results.iter().map(|r| r.calls.iter().flat_map(|(_, c)| c.iter().map(String::as_str)).collect()), runs);
    let phases: Vec<(&str, Summary)> = results[0]
        .calls
        .iter()
        .enumerate()
        .map(|(i, (phase, _))| {
            (*phase, summary(&results.iter().map(|r| r.calls[i].1.len() as f64).collect::<Vec<_>>()))
        })
        .collect();

    println!(
        "\nlifecycle: {runs} pre-authorized merges on {backend_name}, one after another, fake {forge} on loopback{}\n",
        if smoke { " (smoke run)" } else { "" }
    );
    println!("| latency, ms | p50 | p90 | p99 | max | p50 vs ack | p50 vs round trip |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let rows = [
        ("round trip to the fake", &rtt),
        ("delivery acknowledged, intake only", &ack),
        ("green check acknowledged → `PUT …/merge` received", &latency),
        ("green check sent → `PUT …/merge` received", &from_send),
    ];
    for (name, s) in rows {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.2}x |",
            s.p50,
            s.p90,
            s.p99,
            s.max,
            s.p50 / ack.p50,
            s.p50 / rtt.p50
        );
    }
    println!("\n| API calls per lifecycle | mean | max |");
    println!("| --- | ---: | ---: |");
    println!("| **total** | **{:.2}** | **{:.0}** |", calls.mean, calls.max);
    for (phase, s) in &phases {
        println!("| phase: {phase} | {:.2} | {:.0} |", s.mean, s.max);
    }
    for (kind, (mean, max)) in &kinds {
        println!("| `{kind}` | {mean:.2} | {max} |");
    }
    println!("\nwarm-up lifecycle (cold caches, not counted): {} API calls", warm.total());
    println!("{} lifecycles merged, each exactly once", runs + 1);

    if let Ok(path) = std::env::var("BENCH_JSON") {
        let phase_json: serde_json::Map<_, _> =
            phases.iter().map(|(p, s)| (p.to_string(), json!({ "mean": s.mean, "max": s.max }))).collect();
        let kind_json: serde_json::Map<_, _> =
            kinds.iter().map(|(k, (mean, max))| (k.clone(), json!({ "mean": mean, "max": max }))).collect();
        let figures = json!({
            "forge": forge,
            "backend": backend_name,
            "lifecycles": runs,
            "smoke_run": smoke,
            "latency_ms": {
                "ack_to_merge": summary_json(&latency),
                "sent_to_merge": summary_json(&from_send),
                "baseline_round_trip": summary_json(&rtt),
                "baseline_intake_ack": summary_json(&ack),
            },
            "ratio_p50": {
                "ack_to_merge_vs_intake_ack": latency.p50 / ack.p50,
                "ack_to_merge_vs_round_trip": latency.p50 / rtt.p50,
            },
            "api_calls_per_lifecycle": {
                "total": { "mean": calls.mean, "max": calls.max },
                "by_phase": phase_json,
                "by_endpoint": kind_json,
                "warm_up": warm.total(),
            },
            "calls_of_the_last_lifecycle": results[runs - 1]
                .calls
                .iter()
                .map(|(phase, calls)| json!({ "phase": phase, "calls": calls }))
                .collect::<Vec<_>>(),
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&figures).unwrap()).unwrap_or_else(|e| panic!("{path}: {e}"));
        println!("figures written to {path}");
    }
}
