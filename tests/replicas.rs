//! Two `serve` replicas on one PostgreSQL schema behind a round-robin proxy, one of them killed
//! with SIGKILL at random moments and restarted, while hotfix lifecycles run through them: the
//! acknowledged deliveries' effects must happen exactly once, and every lifecycle must finish.
//!
//! Each lifecycle plays what people and GitHub do: the pull request is opened onto
//! `release-1` (its head a real commit), a responder labels it `hotfix` (the grant), its author
//! comments `/hotfix postmortem` (the lane opens the issue and links it; GitHub sends the
//! `edited` delivery for the description), CI posts the smoke check green (the lane merges),
//! GitHub lands the squash commit in git and sends `closed`, and the lane opens the backport to
//! `master`. Deliveries are signed and sent through the proxy; one not acknowledged with a 2xx
//! is sent again with the same delivery id, as GitHub's redelivery does.
//!
//! The first lifecycles run before any kill: what they leave on the fake (comments, issues,
//! statuses) is what a fault-free lifecycle leaves, and every later one must leave the same.
//!
//! Environment: `REPLICAS_LIFECYCLES` (default 200), `REPLICAS_SEED` (default 11, a seed whose kills
//! land mid-backport; set another to explore),
//! `HOTFIX_LANE_TEST_POSTGRES_URL`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_github::FakeGitHub;
use common::git::{remote_git, GitWorld};
use common::github::{check_event, comment_event, pr_event, rfc3339};
use common::lane::{POLICY, REPO};
use common::{Backend, Delivery, TestDb, SECRET};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_hotfix-lane");
const AUTHOR: &str = "Codertocat";
const RESPONDER: &str = "alice";
const SMOKE: &str = "Octocoders-linter";
const LANE_POLICY: &str = "[responders]\nusers = [\"Codertocat\", \"alice\"]\n[merge]\nsmoke_checks = [\"Octocoders-linter\"]\nmethod = \"squash\"\n";
const FIRST_NUMBER: u64 = 1000;
/// Lifecycles run before the first kill: the fault-free reference.
const REFERENCE: u64 = 4;
/// Lifecycles in flight at once.
const CONCURRENT: usize = 12;
/// How long one step of a lifecycle may take to show its effect, kills and lease expiries
/// included.
const STEP_DEADLINE: Duration = Duration::from_secs(60);

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

// The replicas.

/// One `serve` process; its log is kept for the report when something goes wrong.
struct Replica {
    child: Child,
    addr: SocketAddr,
}

/// A failing test must not leave its replicas running (and holding database connections).
impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_replica(database_url: &str, api: &str, mirrors: &Path, log: Arc<Mutex<Vec<String>>>) -> Replica {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--database-url", database_url])
        .env("HOTFIX_LANE_GITHUB_WEBHOOK_SECRET", SECRET)
        .env("HOTFIX_LANE_GITHUB_API_URL", api)
        .env("HOTFIX_LANE_GITHUB_TOKEN", "test-token")
        .env("HOTFIX_LANE_MIRROR_DIR", mirrors)
        // A killed replica's leases lapse soon, so the other takes its jobs over quickly.
        .env("HOTFIX_LANE_JOB_LEASE", "2s")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hotfix-lane serve");
    let (addr, lines) = common::listening(&mut child);
    let addr = addr.parse().unwrap();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if line.contains("\"level\":\"WARN\"") || line.contains("\"level\":\"ERROR\"") || line.contains("panicked")
            {
                log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        }
    });
    Replica { child, addr }
}

// The proxy: per connection, the next replica in turn; a replica that is down (or refuses the
// connection) is passed over for the other.

type Upstreams = Arc<Mutex<[Option<SocketAddr>; 2]>>;

async fn start_proxy(upstreams: Upstreams) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut turn = 0usize;
        loop {
            let Ok((mut client, _)) = listener.accept().await else { continue };
            turn += 1;
            let order = [turn % 2, (turn + 1) % 2];
            let upstreams = upstreams.clone();
            tokio::spawn(async move {
                for i in order {
                    let Some(addr) = upstreams.lock().unwrap()[i] else { continue };
                    if let Ok(mut server) = TcpStream::connect(addr).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        return;
                    }
                }
                // Neither is up: the connection closes unanswered, and the sender tries again.
            });
        }
    });
    addr
}

// GitHub's API: the fake, with merges landing in git as on GitHub. The fake's own merge gives
// the pull request a made-up merge commit; here `PUT …/merge` lands the real squash commit on
// `release-1` first and then records the merge on the fake in one step, so no reader ever sees
// a merged pull request whose merge commit git lacks.

#[derive(Clone)]
struct Api {
    fake: FakeGitHub,
    remote: PathBuf,
    client: reqwest::Client,
    /// GitHub lands one merge at a time on a branch.
    landing: Arc<tokio::sync::Mutex<()>>,
}

async fn start_api(api: Api) -> String {
    let app = axum::Router::new()
        .route("/repos/{owner}/{repo}/pulls/{number}/merge", axum::routing::put(merge))
        .fallback(forward)
        .with_state(api);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn merge(
    axum::extract::State(api): axum::extract::State<Api>,
    axum::extract::Path((_, _, n)): axum::extract::Path<(String, String, u64)>,
    axum::Json(body): axum::Json<Value>,
) -> axum::response::Response {
    // Once GitHub has the request, the merge happens whether or not the caller is still there
    // for the answer (a replica killed mid-request): a task of its own, never cancelled.
    tokio::spawn(land(api, n, body)).await.unwrap()
}

async fn land(api: Api, n: u64, body: Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    let _one_at_a_time = api.landing.lock().await;
    let sha = body["sha"].as_str().unwrap_or_default().to_string();
    let (merged, head) = api.fake.repo(REPO, |r| {
        r.merge_requests.push((n, Instant::now()));
        let p = &r.pulls[&n];
        (p["merged"] == json!(true), p["head"]["sha"].as_str().unwrap_or_default().to_string())
    });
    if merged {
        let message = json!({ "message": "Pull Request is not mergeable" });
        return (axum::http::StatusCode::METHOD_NOT_ALLOWED, axum::Json(message)).into_response();
    }
    if sha != head {
        let message = json!({ "message": "Head branch was modified. Review and try the merge again." });
        return (axum::http::StatusCode::CONFLICT, axum::Json(message)).into_response();
    }
    let remote = api.remote.clone();
    let commit = tokio::task::spawn_blocking(move || squash_onto_release(&remote, n)).await.unwrap();
    api.fake.repo(REPO, |r| {
        let p = r.pulls.get_mut(&n).unwrap();
        p["merged"] = json!(true);
        p["state"] = json!("closed");
        p["merge_commit_sha"] = commit.as_str().into();
        r.history.push(commit.clone());
        r.merges.push((n, sha, body["merge_method"].as_str().unwrap_or_default().into()));
    });
    axum::Json(json!({ "sha": commit, "merged": true, "message": "Pull Request successfully merged" })).into_response()
}

async fn forward(
    axum::extract::State(api): axum::extract::State<Api>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forward = api.client.request(parts.method.clone(), format!("{}{path}", api.fake.url));
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" && name != "connection" {
            forward = forward.header(name, value);
        }
    }
    let answer = forward.body(body).send().await.expect("the fake answers");
    let mut response = axum::response::Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
            response = response.header(name, value);
        }
    }
    response.body(axum::body::Body::from(answer.bytes().await.unwrap())).unwrap()
}

// Git: what GitHub's side of the repository does.

/// Creates `fix-N` (one new file on `release-1`) and `refs/pull/N/head` for every change, in one
/// `git fast-import`; returns each change's head commit.
fn fix_branches(remote: &Path, numbers: &[u64]) -> BTreeMap<u64, String> {
    let base = remote_git(remote, &["rev-parse", "release-1"]);
    let mut stream = String::new();
    for (i, n) in numbers.iter().enumerate() {
        let message = format!("Fix crash {n}\n");
        let content = format!("fixed {n}\n");
        stream.push_str(&format!(
            "commit refs/heads/fix-{n}\nmark :{mark}\nauthor Octo Cat <octocat@example.com> {t} +0000\n\
             committer Octo Cat <octocat@example.com> {t} +0000\ndata {}\n{message}from {base}\n\
             M 100644 inline fixes/{n}.txt\ndata {}\n{content}\nreset refs/pull/{n}/head\nfrom :{mark}\n\n",
            message.len(),
            content.len(),
            mark = i + 1,
            t = 1_790_100_000 + i,
        ));
    }
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(remote)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), stream.as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "git fast-import");
    numbers.iter().map(|n| (*n, remote_git(remote, &["rev-parse", &format!("fix-{n}")]))).collect()
}

/// Lands change `n` on `release-1` as GitHub's squash merge does; returns the new commit.
fn squash_onto_release(remote: &Path, n: u64) -> String {
    let tip = remote_git(remote, &["rev-parse", "release-1"]);
    let tree = remote_git(remote, &["merge-tree", "--write-tree", &tip, &format!("fix-{n}")]);
    let tree = tree.lines().next().unwrap().to_string();
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(remote)
        .args(["commit-tree", &tree, "-p", &tip, "-m", &format!("Fix crash {n} (#{n})")])
        .env("GIT_AUTHOR_NAME", "Octo Cat")
        .env("GIT_AUTHOR_EMAIL", "octocat@example.com")
        .env("GIT_COMMITTER_NAME", "GitHub")
        .env("GIT_COMMITTER_EMAIL", "noreply@github.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
    remote_git(remote, &["update-ref", "refs/heads/release-1", &commit, &tip]);
    commit
}

// Payloads.

fn pull(number: u64, head: &str, labels: &[&str], body: &str) -> Value {
    let mut pull = common::json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    pull["number"] = number.into();
    pull["id"] = (279_000_000 + number).into();
    pull["head"]["sha"] = head.into();
    pull["head"]["ref"] = format!("fix-{number}").into();
    pull["base"]["ref"] = "release-1".into();
    pull["title"] = format!("Fix crash {number}").into();
    pull["user"]["login"] = AUTHOR.into();
    pull["labels"] = labels.iter().map(|l| json!({ "name": l })).collect();
    pull["body"] = body.into();
    pull
}

fn check_delivery(number: u64, head: &str) -> Value {
    let mut event = check_event(head, SMOKE, "success");
    let run = &mut event["check_run"];
    run["id"] = (128_000_000 + number).into();
    run["check_suite"]["head_sha"] = head.into();
    for path in ["/pull_requests/0", "/check_suite/pull_requests/0"] {
        let pull = run.pointer_mut(path).expect("the fixture names its pull request");
        pull["number"] = number.into();
        pull["head"]["sha"] = head.into();
        pull["head"]["ref"] = format!("fix-{number}").into();
        pull["base"]["ref"] = "release-1".into();
    }
    event
}

// The deliveries, as GitHub sends them.

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    redelivered: AtomicU64,
    acked_ids: Mutex<Vec<String>>,
}

struct World {
    fake: FakeGitHub,
    proxy: String,
    client: reqwest::Client,
    counts: Counts,
    heads: BTreeMap<u64, String>,
}

impl World {
    /// Sends until a 2xx comes back, with the same delivery id each time.
    async fn deliver(&self, event: &str, id: String, body: &Value) {
        let delivery = Delivery::new(event, &id, serde_json::to_vec(body).unwrap());
        self.counts.sent.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + STEP_DEADLINE;
        loop {
            match delivery.request(&self.client, &self.proxy).send().await {
                Ok(r) if r.status().is_success() => break,
                Ok(r) if r.status().is_client_error() => panic!("{id} refused: {}", r.status()),
                _ => {
                    assert!(Instant::now() < deadline, "{id} never acknowledged");
                    self.counts.redelivered.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        self.counts.acked_ids.lock().unwrap().push(id);
    }

    async fn until(&self, what: String, mut done: impl FnMut(&FakeGitHub) -> bool) {
        let deadline = Instant::now() + STEP_DEADLINE;
        while !done(&self.fake) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn lane_status(&self, sha: &str, context: &str) -> Option<String> {
        self.fake.status(REPO, sha, context).map(|s| s.state)
    }

    /// One hotfix from opening to its backport.
    async fn lifecycle(&self, n: u64) {
        let head = self.heads[&n].clone();
        let id = |step: &str| format!("replicas-{n}-{step}");

        let opened = pull(n, &head, &[], "The crash on start-up.");
        self.fake.repo(REPO, |r| r.pulls.insert(n, opened.clone()));
        self.deliver("pull_request", id("opened"), &pr_event("opened", &opened, None, AUTHOR)).await;
        self.until(format!("#{n}: the postmortem check"), |_| {
            self.lane_status(&head, "hotfix-lane/postmortem").is_some()
        })
        .await;

        let labelled = pull(n, &head, &["hotfix"], "The crash on start-up.");
        self.fake.repo(REPO, |r| {
            r.pulls.insert(n, labelled.clone());
            r.issues.insert(n, (vec!["hotfix".into()], true));
            r.label_events.push((n, "hotfix".into(), RESPONDER.into(), rfc3339(now_ms())));
        });
        let event = pr_event("labeled", &labelled, Some("hotfix"), RESPONDER);
        self.deliver("pull_request", id("labeled"), &event).await;
        self.until(format!("#{n}: in the lane"), |f| {
            f.status(REPO, &head, "hotfix-lane/lane").is_some_and(|s| s.description.starts_with("hotfix"))
        })
        .await;

        let mut event = comment_event(n, "/hotfix postmortem", AUTHOR);
        event["comment"]["id"] = (3_000_000_000 + n).into();
        let comment = common::fake_github::Comment {
            id: 3_000_000_000 + n,
            number: n,
            body: "/hotfix postmortem".into(),
            author: AUTHOR.into(),
        };
        self.fake.repo(REPO, |r| r.comments.push(comment));
        self.deliver("issue_comment", id("postmortem"), &event).await;
        // Linked: reported, and written into the description (the report may come first).
        self.until(format!("#{n}: the postmortem linked"), |f| {
            self.lane_status(&head, "hotfix-lane/postmortem").as_deref() == Some("success")
                && f.repo(REPO, |r| r.pulls[&n]["body"].as_str().is_some_and(|b| b.contains("Postmortem: #")))
        })
        .await;
        // GitHub tells of the lane's own edit of the description, with the description it left.
        let served = self.fake.repo(REPO, |r| r.pulls[&n].clone());
        let mut event = pr_event("edited", &served, None, common::fake_github::LANE_TOKEN_USER);
        event["changes"] = json!({ "body": { "from": "The crash on start-up." } });
        self.deliver("pull_request", id("edited"), &event).await;

        self.fake.post_check_run(REPO, &head, SMOKE, "success", "github-actions");
        self.deliver("check_run", id("smoke"), &check_delivery(n, &head)).await;
        self.until(format!("#{n}: merged"), |f| f.repo(REPO, |r| r.merges.iter().any(|m| m.0 == n))).await;

        // GitHub sends `closed` for the merge the lane made.
        let closed = self.fake.repo(REPO, |r| r.pulls[&n].clone());
        let merged = closed["merge_commit_sha"].as_str().unwrap().to_string();
        let mut event = pr_event("closed", &closed, None, RESPONDER);
        event["label"] = Value::Null;
        self.deliver("pull_request", id("closed"), &event).await;
        let branch = format!("hotfix-lane/backport/{n}-to-master");
        self.until(format!("#{n}: backported"), |f| {
            f.repo(REPO, |r| r.pulls.values().any(|p| p["head"]["ref"] == branch.as_str()))
                && self.lane_status(&merged, "hotfix-lane/backport").as_deref() == Some("success")
        })
        .await;
    }
}

/// What one lifecycle left on the fake: the lane's comments and issues, and the reports it
/// posted, in order, each context's repeats of the same state collapsed.
#[derive(Debug, PartialEq, Eq)]
struct Trace {
    comments: usize,
    postmortem_issues: usize,
    merges: usize,
    backports: usize,
    reports: BTreeMap<String, Vec<String>>,
}

fn traces(fake: &FakeGitHub, numbers: &[u64], heads: &BTreeMap<u64, String>) -> (BTreeMap<u64, Trace>, usize) {
    fake.repo(REPO, |r| {
        let mut raw_reports = 0;
        let traces = numbers
            .iter()
            .map(|&n| {
                let head = &heads[&n];
                let merge_commit = r.pulls[&n]["merge_commit_sha"].as_str().unwrap_or_default().to_string();
                let mut reports: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for s in r
                    .statuses
                    .iter()
                    .filter(|s| (s.sha == *head || s.sha == merge_commit) && s.context.starts_with("hotfix-lane/"))
                {
                    raw_reports += 1;
                    let states = reports.entry(s.context.clone()).or_default();
                    if states.last() != Some(&s.state) {
                        states.push(s.state.clone());
                    }
                }
                let title = format!("Postmortem: Fix crash {n}");
                let postmortem_issues = r.issue_texts.values().filter(|(t, _)| *t == title).count();
                let branch = format!("hotfix-lane/backport/{n}-to-master");
                let trace = Trace {
                    comments: r.comments.iter().filter(|c| c.number == n && c.author != AUTHOR).count(),
                    postmortem_issues,
                    merges: r.merges.iter().filter(|m| m.0 == n).count(),
                    backports: r.pulls.values().filter(|p| p["head"]["ref"] == branch.as_str()).count(),
                    reports,
                };
                (n, trace)
            })
            .collect();
        (traces, raw_reports)
    })
}

/// How many attempts the jobs took, by kind and state, and how long the finished ones took.
async fn attempts_by_kind(url: &str) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let rows: Vec<(String, String, i64, i64, Option<f64>)> = sqlx::query_as(
        "SELECT kind, state, attempts, COUNT(*), AVG(finished_at - created_at)::FLOAT8 FROM jobs \
         GROUP BY kind, state, attempts ORDER BY kind, state, attempts",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (kind, state, attempts, count, ms) in rows {
        println!(
            "jobs: {kind} {state} after {attempts} attempt(s): {count}, mean {:.0} ms from queued to done",
            ms.unwrap_or(f64::NAN)
        );
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_killed_at_random_lose_and_repeat_nothing() {
    let started = Instant::now();
    let lifecycles: u64 = std::env::var("REPLICAS_LIFECYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let seed: u64 = std::env::var("REPLICAS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(11);
    println!("REPLICAS_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);

    let db = TestDb::new(Backend::Postgres).await;
    let git = GitWorld::new();
    let numbers: Vec<u64> = (FIRST_NUMBER..FIRST_NUMBER + lifecycles).collect();
    let heads = fix_branches(&git.remote, &numbers);
    let fake = FakeGitHub::start().await;
    fake.repo(REPO, |r| {
        r.files.insert(("master".into(), POLICY.into()), LANE_POLICY.into());
        r.git_dir = Some(git.remote.clone());
        // Every pull request exists from the start, so that the numbers GitHub gives the
        // issues and backports the lane opens never collide with them.
        for &n in &numbers {
            r.pulls.insert(n, pull(n, &heads[&n], &[], "The crash on start-up."));
            r.issues.insert(n, (vec![], true));
        }
    });

    let api = Api {
        fake: fake.clone(),
        remote: git.remote.clone(),
        client: reqwest::Client::new(),
        landing: Arc::new(tokio::sync::Mutex::new(())),
    };
    let api = start_api(api).await;

    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mirrors = |k: usize| dir.path().join(format!("mirrors-{k}"));
    let first = spawn_replica(&db.url, &api, &mirrors(0), log.clone());
    let second = spawn_replica(&db.url, &api, &mirrors(1), log.clone());
    let upstreams: Upstreams = Arc::new(Mutex::new([Some(first.addr), Some(second.addr)]));
    let replicas = Arc::new(Mutex::new([Some(first), Some(second)]));
    let proxy = start_proxy(upstreams.clone()).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        // A new connection per delivery: the proxy spreads them over both replicas.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let world = Arc::new(World {
        fake: fake.clone(),
        proxy: format!("http://{proxy}"),
        client,
        counts: Counts::default(),
        heads: heads.clone(),
    });

    // The fault-free reference.
    for &n in &numbers[..REFERENCE as usize] {
        world.lifecycle(n).await;
    }
    let reference_done = started.elapsed();

    // The kills: one replica at a time, at random moments, restarted at once.
    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let (replicas, upstreams, done, db_url, api, log) =
            (replicas.clone(), upstreams.clone(), done.clone(), db.url.clone(), api.clone(), log.clone());
        let dirs = [mirrors(0), mirrors(1)];
        tokio::spawn(async move {
            let (mut kills, mut killed_at) = (0u64, Vec::new());
            while !done.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(rng.u64(500..2000))).await;
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let k = rng.usize(0..2);
                upstreams.lock().unwrap()[k] = None;
                let mut victim = replicas.lock().unwrap()[k].take().unwrap();
                victim.child.kill().expect("kill -9");
                victim.child.wait().unwrap();
                drop(victim);
                kills += 1;
                killed_at.push(k);
                let (api, dir, log) = (api.clone(), dirs[k].clone(), log.clone());
                let fresh = tokio::task::block_in_place(|| spawn_replica(&db_url, &api, &dir, log));
                upstreams.lock().unwrap()[k] = Some(fresh.addr);
                replicas.lock().unwrap()[k] = Some(fresh);
            }
            (kills, killed_at)
        })
    };

    let gate = Arc::new(tokio::sync::Semaphore::new(CONCURRENT));
    let mut runs = tokio::task::JoinSet::new();
    for &n in &numbers[REFERENCE as usize..] {
        let (world, gate) = (world.clone(), gate.clone());
        runs.spawn(async move {
            let _slot = gate.acquire_owned().await.unwrap();
            world.lifecycle(n).await;
        });
    }
    while let Some(run) = runs.join_next().await {
        if let Err(e) = run {
            done.store(true, Ordering::SeqCst);
            attempts_by_kind(&db.url).await;
            // What the lane and the fake knew of the change that stalled.
            let message = format!("{e}");
            if let Some(n) =
                message.split('#').nth(1).and_then(|r| r.split(':').next()).and_then(|n| n.parse::<u64>().ok())
            {
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                let jobs: Vec<(i64, String, String, i64, Option<String>, String)> = sqlx::query_as(
                    "SELECT id, kind, state, attempts, last_error, payload FROM jobs WHERE ordering_key LIKE $1 ORDER BY id",
                )
                .bind(format!("%:pr:{n}"))
                .fetch_all(&pool)
                .await
                .unwrap();
                for job in jobs {
                    eprintln!("#{n} job: {job:?}");
                }
                let state: Option<(String,)> = sqlx::query_as("SELECT state FROM lane_state WHERE number = $1")
                    .bind(n as i64)
                    .fetch_optional(&pool)
                    .await
                    .unwrap_or(None);
                eprintln!("#{n} lane state: {state:?}");
                let pull = fake.repo(REPO, |r| r.pulls[&n].clone());
                eprintln!("#{n} on the fake: merged {} as {}", pull["merged"], pull["merge_commit_sha"]);
                for s in fake.repo(REPO, |r| r.statuses.clone()) {
                    if s.sha == heads[&n] || pull["merge_commit_sha"] == s.sha.as_str() {
                        eprintln!("#{n} status: {} {} {} {}", s.sha, s.context, s.state, s.description);
                    }
                }
            }
            let log = log.lock().unwrap().clone();
            let tail = &log[log.len().saturating_sub(20)..];
            panic!("a lifecycle failed: {e}\nlast warnings and errors of the replicas:\n{}", tail.join("\n"));
        }
    }
    done.store(true, Ordering::SeqCst);
    let (kills, killed) = killer.await.unwrap();
    let lifecycles_done = started.elapsed();

    // Quiet: every job finished, none dead, none left leased.
    let store = db.store().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = store.job_counts().await.unwrap();
        if c.queued == 0 && c.running == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "jobs never drained: {c:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = store.job_counts().await.unwrap();
    attempts_by_kind(&db.url).await;
    let dead = store.jobs_in_state("dead").await.unwrap();
    assert!(dead.is_empty(), "{} dead jobs: {dead:?}", dead.len());
    let (leased,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM jobs WHERE lease_owner IS NOT NULL")
        .fetch_one(&sqlx::PgPool::connect(&db.url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(leased, 0, "jobs left leased");

    // Every acknowledged delivery was stored, once.
    let acked: Vec<String> = world.counts.acked_ids.lock().unwrap().clone();
    let distinct: BTreeSet<&String> = acked.iter().collect();
    assert_eq!(distinct.len(), acked.len(), "each delivery acknowledged once by the driver");
    for id in &acked {
        assert!(
            store.delivery_by_forge_id("github", id).await.unwrap().is_some(),
            "delivery {id} acknowledged, then lost"
        );
    }
    assert_eq!(store.delivery_count().await.unwrap() as usize, acked.len(), "one stored delivery per delivery id");

    // Every lifecycle left what a fault-free one leaves.
    let (traces, raw_reports) = traces(&fake, &numbers, &heads);
    let reference = &traces[&numbers[0]];
    assert_eq!(
        (reference.comments, reference.postmortem_issues, reference.merges, reference.backports),
        (2, 1, 1, 1),
        "{reference:?}"
    );
    for &n in &numbers[1..REFERENCE as usize] {
        assert_eq!(&traces[&n], reference, "#{n}: the fault-free lifecycles agree");
    }
    let differing: Vec<(u64, &Trace)> = traces.iter().filter(|(_, t)| *t != reference).map(|(n, t)| (*n, t)).collect();
    for (n, _) in &differing {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let jobs: Vec<(i64, String, i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT id, kind, attempts, expiries, last_error FROM jobs WHERE ordering_key LIKE $1 ORDER BY id",
        )
        .bind(format!("%:pr:{n}"))
        .fetch_all(&pool)
        .await
        .unwrap();
        eprintln!("#{n}: jobs (id, kind, attempts, expiries, last error): {jobs:?}");
        for s in fake.repo(REPO, |r| r.statuses.clone()) {
            if s.sha == heads[n] && s.context.starts_with("hotfix-lane/") {
                eprintln!("#{n}: {} {} {}", s.context, s.state, s.description);
            }
        }
    }
    assert!(differing.is_empty(), "lifecycles unlike the fault-free one ({reference:?}): {differing:#?}");
    let merges = fake.repo(REPO, |r| r.merges.len());
    assert_eq!(merges as u64, lifecycles, "one merge per change");
    let merge_requests = fake.repo(REPO, |r| r.merge_requests.len());
    let issues_opened = fake.repo(REPO, |r| r.issue_texts.len());
    assert_eq!(issues_opened as u64, lifecycles, "one postmortem issue per change");
    let backports = fake.repo(REPO, |r| r.pulls.values().filter(|p| p["opened_here"] == json!(true)).count());
    assert_eq!(backports as u64, lifecycles, "one backport pull request per merged change");
    // Each backport branch carries the change's one file, picked onto master.
    for &n in &numbers {
        let files =
            remote_git(&git.remote, &["diff", "--name-only", "master", &format!("hotfix-lane/backport/{n}-to-master")]);
        assert_eq!(files, format!("fixes/{n}.txt"), "#{n}'s backport");
    }

    drop(replicas.lock().unwrap().iter_mut().filter_map(Option::take).collect::<Vec<_>>());
    println!(
        "replicas: {lifecycles} lifecycles ({REFERENCE} fault-free first, in {:.1} s), all done in {:.1} s, quiet after {:.1} s; \
         {kills} kills and restarts (replica 0: {}, replica 1: {}); {} deliveries acknowledged, {} redeliveries; \
         {merges} merges from {merge_requests} merge requests; {issues_opened} postmortem issues; {backports} backports; \
         {} jobs done, 0 dead; {raw_reports} reports posted; {} warnings/errors logged",
        reference_done.as_secs_f64(),
        lifecycles_done.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        killed.iter().filter(|k| **k == 0).count(),
        killed.iter().filter(|k| **k == 1).count(),
        acked.len(),
        world.counts.redelivered.load(Ordering::Relaxed),
        counts.done,
        log.lock().unwrap().len(),
    );
    assert!(kills >= 10, "only {kills} kills: the run was too short to tell anything");
}
