//! Interleavings of everything that can happen to one change, checked against a reference
//! model of the pre-authorized merge.
//!
//! The change is hotfix #2 of `Codertocat/Hello-World`, written by Codertocat, naming postmortem
//! #50. alice is the only responder; mallory can label, comment and post statuses; the smoke
//! check counts only from GitHub Actions. Each sequence draws 6–12 steps from a seeded PRNG —
//! labels by alice and by mallory, the label removed, `/hotfix authorize` and `revoke`, pushes,
//! retargets, smoke results, a forged status, duplicate and stale deliveries, a merge answer
//! lost in a 502, time passing beyond a grant's expiry — and applies each to the fake GitHub as
//! GitHub would, sends its signed webhook to the real server and waits for the lane to finish.
//! Then the model (the README's "Pre-authorized merge", in a few lines) says what must hold:
//!
//! 1. a merge happens only on a live grant for the head and base of that moment (and with the
//!    change in the lane by a responder and the App's smoke check green on that head);
//! 2. never two merges;
//! 3. a change that is ready is merged;
//! 4. every merge has exactly one `merge.merged` audit entry;
//! 5. the lane never holds a grant the model did not give;
//! 6. `hotfix-lane/lane` on the head says whether a responder put the change in the lane.
//!
//! `HOTFIX_LANE_INTERLEAVINGS` sets how many sequences run (40 by default) and
//! `HOTFIX_LANE_INTERLEAVINGS_SEED` the first seed. A failure prints its seed, its steps, the
//! model and the audit log.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake_github::LANE_TOKEN_USER;
use common::github::{pr_event, rfc3339};
use common::lane::{Lane, REPO};
use common::{Backend, Delivery};
use hotfix_lane::clock::Clock;
use serde_json::{json, Value};

const POLICY: &str = "[responders]\nusers = [\"alice\"]\n\
                      [merge]\nsmoke_checks = [{ name = \"smoke\", app = \"github-actions\" }]\n";
const HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const REPO_ID: i64 = 186853002;
/// `merge.max_grant` by default; authorizations here name no duration.
const GRANT_MS: i64 = 4 * 3600 * 1000;
/// How long a test waits for the retry of a job whose merge answer was lost.
const RETRY_WAIT_MS: i64 = 10 * 60 * 1000;
const DEFAULT_SEED: u64 = 20261126;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    LabelByAlice,
    LabelByMallory,
    Unlabel,
    AuthorizeByAlice,
    RevokeByAlice,
    AuthorizeByMallory,
    Push,
    /// The base branch from `master` to `release-1`, or back.
    Retarget,
    /// GitHub Actions reports `smoke` on the head: green or red.
    Smoke(bool),
    /// mallory posts a green `smoke` commit status.
    ForgedStatus,
    /// The previous delivery again, with its delivery id.
    Duplicate,
    /// An earlier delivery (by index) again, under a new delivery id.
    Stale(usize),
    /// GitHub performs the next merge and answers 502.
    LoseNextMergeAnswer,
    /// The clock moves past any grant's expiry.
    Expire,
}

/// What a replayed delivery can do to the lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// alice's label or `/hotfix authorize`: a replay must not give the grant again.
    Grant,
    /// Another `pull_request` event, or alice's revoke: the lane reads the change from it.
    Facts,
    /// A check or status, or a refused command: the lane only looks again.
    Hint,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    by: String,
    sha: String,
    base: String,
    expires_at: i64,
}

/// The change as GitHub shows it, and what the lane has been told to do with it.
#[derive(Debug)]
struct Model {
    head: String,
    base: String,
    /// While the label is on: whether a responder put the change in the lane (by applying the
    /// label, or by authorizing the change, which vouches for it).
    label: Option<bool>,
    grant: Option<Grant>,
    /// A delivery was replayed since the grant was given: the lane may have believed its old
    /// facts and dropped the grant (taking authority away is allowed), so it need not merge.
    doubted_grant: bool,
    /// A delivery was replayed since the label last changed: the lane may have believed its
    /// old facts about who put the change in the lane.
    doubted_lane: bool,
    /// The latest result of GitHub Actions' `smoke` on each commit.
    smoke: HashMap<String, bool>,
    merged: Option<String>,
}

impl Model {
    fn new() -> Model {
        Model {
            head: HEAD.into(),
            base: "master".into(),
            label: None,
            grant: None,
            doubted_grant: false,
            doubted_lane: false,
            smoke: HashMap::new(),
            merged: None,
        }
    }

    fn open(&self) -> bool {
        self.merged.is_none()
    }

    fn grant_now(&mut self, at: i64) {
        let (sha, base) = (self.head.clone(), self.base.clone());
        self.grant = Some(Grant { by: "alice".into(), sha, base, expires_at: at + GRANT_MS });
        self.doubted_grant = false;
        self.doubted_lane = false;
    }

    /// The step's effect, as the README describes the lane: `at` is when the lane handles it.
    fn apply(&mut self, step: Step, at: i64, replay: Option<Replay>) {
        match step {
            Step::LabelByAlice => {
                self.label = Some(true);
                self.doubted_lane = false;
                if self.open() {
                    self.grant_now(at);
                }
            }
            Step::LabelByMallory => {
                self.label = Some(false);
                self.doubted_lane = false;
            }
            Step::Unlabel => {
                self.label = None;
                self.doubted_lane = false;
                self.grant = None;
            }
            Step::AuthorizeByAlice if self.label.is_some() && self.open() => {
                self.label = Some(true);
                self.grant_now(at);
            }
            Step::AuthorizeByAlice => {}
            Step::RevokeByAlice => self.grant = None,
            Step::Push => {
                self.head = fresh_sha(&self.head);
                self.grant = None;
            }
            Step::Retarget => {
                self.base = if self.base == "master" { "release-1" } else { "master" }.into();
                self.grant = None;
            }
            Step::Smoke(green) => {
                self.smoke.insert(self.head.clone(), green);
            }
            Step::Stale(_) if replay != Some(Replay::Hint) => {
                self.doubted_grant |= self.grant.is_some();
                self.doubted_lane = true;
            }
            Step::AuthorizeByMallory
            | Step::ForgedStatus
            | Step::Duplicate
            | Step::Stale(_)
            | Step::LoseNextMergeAnswer
            | Step::Expire => {}
        }
    }

    /// The grant, if it covers the change as it is at `at`.
    fn live(&self, at: i64) -> Option<&Grant> {
        self.grant.as_ref().filter(|g| g.sha == self.head && g.base == self.base && g.expires_at > at)
    }

    /// Everything the lane needs to merge at `at`: open, in the lane by a responder, a live grant,
    /// the App's smoke check green on the head (the postmortem is always in place here).
    fn ready(&self, at: i64) -> bool {
        self.open()
            && self.label == Some(true)
            && self.live(at).is_some()
            && self.smoke.get(&self.head).copied() == Some(true)
    }
}

/// The commit a push makes: deterministic, so sequences replay exactly.
fn fresh_sha(previous: &str) -> String {
    let n = u128::from_str_radix(&previous[..32], 16).unwrap();
    format!("{:032x}{}", n.wrapping_add(1), &previous[32..])
}

/// One delivery as sent, for duplicates and replays.
struct Sent {
    event: String,
    id: String,
    body: Vec<u8>,
    replay: Replay,
}

#[derive(Debug, Default, Clone, Copy)]
struct Coverage {
    steps: u64,
    merges: u64,
    lost_answers: u64,
    /// Steps after which the change was ready but a replay excused the lane from merging it.
    ready_after_replay: u64,
    stale: u64,
}

/// One sequence: the lane, the model, and what was sent.
struct Run {
    lane: Lane,
    model: Model,
    rng: fastrand::Rng,
    sent: Vec<Sent>,
    /// The fake will lose the next merge answer.
    losing: bool,
    trail: Arc<Mutex<Vec<String>>>,
    coverage: Coverage,
}

impl Run {
    async fn start(seed: u64, trail: Arc<Mutex<Vec<String>>>) -> Run {
        let lane = Lane::start(Backend::Sqlite, POLICY).await;
        let mut pull = common::json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
        pull["labels"] = json!([]);
        pull["body"] = "Postmortem: #50".into();
        // Backports are not what this test is about: without a merge commit to pick they end at
        // once, as failed, without any git.
        pull["merge_commit_sha"] = Value::Null;
        lane.fake.repo(REPO, |r| {
            r.issues.insert(50, (vec!["postmortem".into()], false));
            r.pulls.insert(2, pull);
        });
        Run {
            lane,
            model: Model::new(),
            rng: fastrand::Rng::with_seed(seed),
            sent: Vec::new(),
            losing: false,
            trail,
            coverage: Coverage::default(),
        }
    }

    fn pull(&self) -> Value {
        self.lane.fake.repo(REPO, |r| r.pulls[&2].clone())
    }

    fn edit_pull(&self, edit: impl FnOnce(&mut Value)) {
        self.lane.fake.repo(REPO, |r| edit(r.pulls.get_mut(&2).unwrap()));
    }

    fn note(&self, line: String) {
        self.trail.lock().unwrap().push(line);
    }

    async fn fail(&self, what: String) -> ! {
        let audit = self.lane.store().audit(Some(REPO), None).await.unwrap_or_default();
        let audit: Vec<String> = audit
            .into_iter()
            .map(|e| format!("{} {} {} {}", e.actor, e.action, e.sha.unwrap_or_default(), e.detail))
            .collect();
        panic!("{what}\nmodel: {:#?}\naudit:\n  {}", self.model, audit.join("\n  "))
    }

    /// A step that can happen now: GitHub sends no `labeled` for a label already on, and a
    /// merged change takes no pushes and no new base.
    fn draw(&mut self) -> Step {
        loop {
            let step = match self.rng.u32(0..25) {
                0..=2 => Step::LabelByAlice,
                3 => Step::LabelByMallory,
                4 => Step::Unlabel,
                5..=7 => Step::AuthorizeByAlice,
                8 => Step::RevokeByAlice,
                9 => Step::AuthorizeByMallory,
                10 | 11 => Step::Push,
                12 => Step::Retarget,
                13..=16 => Step::Smoke(true),
                17 => Step::Smoke(false),
                18 => Step::ForgedStatus,
                19 => Step::Duplicate,
                20 | 21 => Step::Stale(self.rng.usize(0..self.sent.len().max(1))),
                22 => Step::LoseNextMergeAnswer,
                _ => Step::Expire,
            };
            let possible = match step {
                Step::LabelByAlice | Step::LabelByMallory => self.model.label.is_none(),
                Step::Unlabel => self.model.label.is_some(),
                Step::Push | Step::Retarget | Step::LoseNextMergeAnswer => self.model.open(),
                Step::Duplicate => !self.sent.is_empty(),
                Step::Stale(_) => !self.sent.is_empty(),
                _ => true,
            };
            if possible {
                return step;
            }
        }
    }

    async fn step(&mut self, step: Step) {
        let mut replay = None;
        match step {
            Step::LabelByAlice | Step::LabelByMallory => {
                let by = if step == Step::LabelByAlice { "alice" } else { "mallory" };
                let at = rfc3339(self.lane.clock.now_ms());
                self.edit_pull(|p| p["labels"] = json!([{ "name": "hotfix" }]));
                self.lane.fake.repo(REPO, |r| r.label_events.push((2, "hotfix".into(), by.into(), at)));
                let replay = if step == Step::LabelByAlice { Replay::Grant } else { Replay::Facts };
                self.send("pull_request", pr_event("labeled", &self.pull(), Some("hotfix"), by), replay).await;
            }
            Step::Unlabel => {
                self.edit_pull(|p| p["labels"] = json!([]));
                let event = pr_event("unlabeled", &self.pull(), Some("hotfix"), "Codertocat");
                self.send("pull_request", event, Replay::Facts).await;
            }
            Step::AuthorizeByAlice => self.comment("/hotfix authorize", "alice", Replay::Grant).await,
            Step::RevokeByAlice => self.comment("/hotfix revoke", "alice", Replay::Facts).await,
            Step::AuthorizeByMallory => self.comment("/hotfix authorize", "mallory", Replay::Hint).await,
            Step::Push => {
                let before = self.model.head.clone();
                let after = fresh_sha(&before);
                self.edit_pull(|p| p["head"]["sha"] = after.clone().into());
                let mut event = pr_event("synchronize", &self.pull(), None, "Codertocat");
                event["before"] = before.into();
                event["after"] = after.into();
                self.send("pull_request", event, Replay::Facts).await;
            }
            Step::Retarget => {
                let from = self.model.base.clone();
                let to = if from == "master" { "release-1" } else { "master" };
                self.edit_pull(|p| p["base"]["ref"] = to.into());
                let mut event = pr_event("edited", &self.pull(), None, "Codertocat");
                event["changes"] = json!({ "base": { "ref": { "from": from } } });
                self.send("pull_request", event, Replay::Facts).await;
            }
            Step::Smoke(green) => {
                let conclusion = if green { "success" } else { "failure" };
                let head = self.model.head.clone();
                self.lane.fake.post_check_run(REPO, &head, "smoke", conclusion, "github-actions");
                let event = check_event(&self.pull(), conclusion);
                self.send("check_run", event, Replay::Hint).await;
            }
            Step::ForgedStatus => {
                let head = self.model.head.clone();
                self.lane.fake.post_status(REPO, &head, "smoke", "success", "mallory");
                self.send("status", status_event(&head, "mallory"), Replay::Hint).await;
            }
            Step::Duplicate => {
                let last = self.sent.last().unwrap();
                let (status, answer) = Delivery::new(&last.event, &last.id, last.body.clone())
                    .send(&self.lane.client, &self.lane.base)
                    .await;
                if status != 200 {
                    self.fail(format!("a duplicate delivery was answered {status}: {answer}")).await;
                }
            }
            Step::Stale(index) => {
                let old = &self.sent[index];
                let (event, body, kind) = (old.event.clone(), old.body.clone(), old.replay);
                replay = Some(kind);
                self.coverage.stale += 1;
                self.deliver(&event, body, kind).await;
            }
            Step::LoseNextMergeAnswer => {
                self.losing = true;
                self.lane.fake.repo(REPO, |r| r.lost_merge_answers = 1);
            }
            Step::Expire => self.lane.clock.advance(GRANT_MS + 1),
        }
        let at = self.lane.clock.now_ms();
        self.model.apply(step, at, replay);
        self.settle().await;
        self.check(at).await;
        self.coverage.steps += 1;
    }

    async fn comment(&mut self, body: &str, author: &str, replay: Replay) {
        let event = common::github::comment_event(2, body, author);
        self.send("issue_comment", event, replay).await;
    }

    async fn send(&mut self, event: &str, body: Value, replay: Replay) {
        self.deliver(event, serde_json::to_vec(&body).unwrap(), replay).await;
    }

    /// Sends a delivery under a new id and remembers it.
    async fn deliver(&mut self, event: &str, body: Vec<u8>, replay: Replay) {
        let id = format!("model-{}", self.sent.len());
        let (status, answer) = Delivery::new(event, &id, body.clone()).send(&self.lane.client, &self.lane.base).await;
        if status != 202 {
            self.fail(format!("delivery {id} ({event}) was answered {status}: {answer}")).await;
        }
        self.sent.push(Sent { event: event.into(), id, body, replay });
    }

    /// Waits until every job ran. A job may fail only on a lost merge answer: GitHub merged
    /// and said 502, so the job is retried later — ten minutes later, on the lane's clock.
    async fn settle(&mut self) {
        let store = self.lane.store().clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut retried = std::collections::HashSet::new();
        loop {
            let counts = store.job_counts().await.unwrap();
            if counts.dead > 0 {
                self.fail(format!("a job died: {:?}", store.jobs_in_state("dead").await.unwrap())).await;
            }
            if counts.queued == 0 && counts.running == 0 {
                return;
            }
            for job in store.jobs_in_state("queued").await.unwrap() {
                let Some(error) = &job.last_error else { continue };
                if !retried.insert((job.id, job.attempts)) {
                    continue;
                }
                let lost = self.losing && self.lane.fake.repo(REPO, |r| r.lost_merge_answers == 0);
                if !lost {
                    self.fail(format!("a job failed: {} ({}): {error}", job.kind, job.id)).await;
                }
                self.losing = false;
                self.coverage.lost_answers += 1;
                self.lane.clock.advance(RETRY_WAIT_MS);
            }
            if tokio::time::Instant::now() > deadline {
                self.fail(format!("the queue did not drain: {:?}", store.jobs_in_state("queued").await.unwrap())).await;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The invariants, after a step handled at `at`.
    async fn check(&mut self, at: i64) {
        let merges = self.lane.fake.repo(REPO, |r| r.merges.clone());
        if merges.len() > 1 {
            self.fail(format!("invariant 2: two merges: {merges:?}")).await;
        }
        let ready = self.model.ready(at);
        if let (Some((number, sha, method)), None) = (merges.first(), &self.model.merged) {
            let covered = self.model.live(at).is_some_and(|g| g.sha == *sha);
            if *number != 2 || !covered || *sha != self.model.head {
                self.fail(format!("invariant 1: merged {sha} of #{number} without a live grant for it")).await;
            }
            if !ready {
                self.fail(format!("invariant 1: merged {sha} ({method}) while the change was not ready")).await;
            }
            self.model.merged = Some(sha.clone());
            self.coverage.merges += 1;
            // GitHub tells of the merge.
            let event = pr_event("closed", &self.pull(), None, LANE_TOKEN_USER);
            self.send("pull_request", event, Replay::Facts).await;
            self.settle().await;
        } else if ready && !self.model.doubted_grant {
            self.fail("invariant 3: the change is ready and was not merged".into()).await;
        } else if ready {
            self.coverage.ready_after_replay += 1;
        }
        let audit = self.lane.store().audit(Some(REPO), None).await.unwrap();
        let recorded = audit.iter().filter(|e| e.number == Some(2) && e.action == "merge.merged").count();
        let merged = self.lane.fake.repo(REPO, |r| r.merges.len());
        if recorded != merged {
            self.fail(format!("invariant 4: {merged} merge(s), {recorded} `merge.merged` audit entries")).await;
        }
        if self.model.open() {
            self.check_stored_grant().await;
        }
        if self.model.open() && !self.model.doubted_lane {
            self.check_membership().await;
        }
    }

    /// Invariant 6, once the lane has reported on the head.
    async fn check_membership(&self) {
        let Some(reported) = self.lane.fake.status(REPO, &self.model.head, "hotfix-lane/lane") else { return };
        let expected = match self.model.label {
            None => "normal",
            Some(true) => "hotfix: smoke-only",
            Some(false) => "hotfix label not authorized",
        };
        if reported.description != expected {
            self.fail(format!("invariant 6: `hotfix-lane/lane` says {:?}", reported.description)).await;
        }
    }

    /// Invariant 5: the lane's grant is the model's, or (after replays) none at all.
    async fn check_stored_grant(&self) {
        let state = self.lane.store().lane_state("github", REPO_ID, 2).await.unwrap();
        let stored = state.map(|s| s["lane"]["grant"].clone()).filter(|g| !g.is_null()).map(|g| Grant {
            by: g["by"].as_str().unwrap().into(),
            sha: g["sha"].as_str().unwrap().into(),
            base: g["base"].as_str().unwrap().into(),
            expires_at: g["expires_at"].as_i64().unwrap(),
        });
        let allowed = stored == self.model.grant || (stored.is_none() && self.model.doubted_grant);
        if !allowed {
            self.fail(format!("invariant 5: the lane holds the grant {stored:?}")).await;
        }
    }
}

fn check_event(pull: &Value, conclusion: &str) -> Value {
    let mut event = common::json_fixture("github/check_run/completed.json");
    let run = &mut event["check_run"];
    run["name"] = "smoke".into();
    run["head_sha"] = pull["head"]["sha"].clone();
    run["conclusion"] = conclusion.into();
    run["app"]["slug"] = "github-actions".into();
    run["pull_requests"][0]["head"]["sha"] = pull["head"]["sha"].clone();
    run["pull_requests"][0]["base"]["ref"] = pull["base"]["ref"].clone();
    event
}

fn status_event(sha: &str, sender: &str) -> Value {
    let mut event = common::json_fixture("github/status/payload.json");
    event["sha"] = sha.into();
    event["context"] = "smoke".into();
    event["state"] = "success".into();
    event["sender"]["login"] = sender.into();
    event
}

async fn sequence(seed: u64, trail: Arc<Mutex<Vec<String>>>) -> Coverage {
    let mut run = Run::start(seed, trail).await;
    let length = run.rng.usize(6..=12);
    for _ in 0..length {
        let step = run.draw();
        let shown = match step {
            Step::Stale(i) => format!("Stale({i}: {} {})", run.sent[i].event, run.sent[i].id),
            other => format!("{other:?}"),
        };
        run.note(shown);
        run.step(step).await;
    }
    run.coverage
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_interleavings_on_one_change_keep_the_merge_promises() {
    let count = env_u64("HOTFIX_LANE_INTERLEAVINGS", 40);
    let first = env_u64("HOTFIX_LANE_INTERLEAVINGS_SEED", DEFAULT_SEED);
    let mut total = Coverage::default();
    for seed in first..first + count {
        let trail = Arc::new(Mutex::new(Vec::new()));
        match tokio::spawn(sequence(seed, trail.clone())).await {
            Ok(c) => {
                total.steps += c.steps;
                total.merges += c.merges;
                total.lost_answers += c.lost_answers;
                total.ready_after_replay += c.ready_after_replay;
                total.stale += c.stale;
            }
            Err(failure) => {
                let steps = trail.lock().unwrap().join("\n  ");
                eprintln!(
                    "sequence {seed} failed; replay it with HOTFIX_LANE_INTERLEAVINGS_SEED={seed} \
                     HOTFIX_LANE_INTERLEAVINGS=1\nsteps:\n  {steps}"
                );
                std::panic::resume_unwind(failure.into_panic());
            }
        }
    }
    eprintln!("{count} sequences from seed {first}: {total:?}");
    // Half the sequences merge: a long walk that never does would have checked nothing.
    assert!(count < 20 || (total.merges > 0 && total.stale > 0), "the walk never merged: {total:?}");
}
