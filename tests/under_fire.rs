//! Hotfix lifecycles through a forge that fails the way forges fail: a share of the API calls
//! answered 5xx, timed out after the write, dropped, rate limited (secondary and primary), or
//! carried out and then answered 5xx ([`common::faults`]). Hundreds of changes go through the
//! whole lane at once — labelled by a responder (in the lane, authorized), the postmortem issue
//! opened, the smoke check green, merged, backported to the default branch — and what the fake
//! forge holds afterwards is what a fault-free run leaves: one merge per change, one backport,
//! one postmortem issue, the same comments, reports that took the same values, no job dead,
//! and every retry after a rate limit no sooner than the forge allowed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake_github::FakeGitHub;
use common::fake_gitlab::FakeGitLab;
use common::faults::{Fault, Faults};
use common::git::GitWorld;
use common::github::GitHubDriver;
use common::gitlab::{GitLabDriver, PROJECT};
use common::lane::{Lane, REPO};
use common::scenario::{Change, ForgeDriver, NewChange, Source, State, Written, LANE, POSTMORTEM};
use common::Backend;
use hotfix_lane::clock::{Clock, ManualClock};
use hotfix_lane::forge::github::GitHubAuth;
use hotfix_lane::forge::Timeouts;
use hotfix_lane::jobs::Backoff;
use hotfix_lane::server::ServeSettings;

/// Two responders (one authorizes the other's change), the smoke check, squash merges, the
/// postmortem opened with the label, backports to the default branch.
const POLICY: &str = "[responders]\nusers = [\"Codertocat\", \"alice\"]\n[merge]\nsmoke_checks = [\"smoke\"]\nmethod = \"squash\"\n[postmortem]\nopen_on_label = true\n";
const CI: Source = Source::App("github-actions");
const SEED: u64 = 0x5eed_0ff1;
/// The share of API calls hurt.
const SHARE: f64 = 0.2;
/// How long the lane's clients wait for an answer here; a timeout holds its answer longer.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(800);
/// Changes driven together: each wave's moves are delivered, then its jobs run concurrently.
const WAVE: usize = 100;

/// The lane's knobs for a forge that fails often: short client deadlines and retry delays
/// (their production values are minutes), attempts enough to outlast a bad streak.
fn configure(settings: &mut ServeSettings) {
    settings.forge_timeouts = Timeouts { connect: CLIENT_TIMEOUT, request: CLIENT_TIMEOUT };
    settings.runner.backoff = Backoff { base: Duration::from_millis(40), cap: Duration::from_millis(400) };
    settings.runner.workers = 16;
    settings.runner.poll = Duration::from_millis(20);
    settings.max_attempts = 40;
}

fn faults() -> Faults {
    Faults::new(SEED, SHARE).hold(CLIENT_TIMEOUT + Duration::from_millis(400))
}

/// A forge the lane serves, with its faults and the git side backports are made on.
#[allow(async_fn_in_trait)]
trait UnderFire: ForgeDriver {
    const NAME: &'static str;
    /// Where the forge keeps a change's own commits.
    const CHANGE_REFS: &'static str;
    async fn under_fire(backend: Backend, faults: Faults, world: &GitWorld) -> Self;
    fn faults(&self) -> Faults;
    fn shared_clock(&self) -> Arc<ManualClock>;
    fn settle_each(&mut self, settle: bool);
    /// A merge of `change` lands as `sha`.
    fn land_as(&self, change: Change, sha: &str);
    /// The forge's webhook for the merge the lane made.
    async fn merged(&mut self, change: Change);
    fn merges(&self, change: Change) -> usize;
    /// The backport changes the lane opened for `change`.
    fn backports(&self, change: Change) -> usize;
    /// Every report the lane posted: `(sha, context, state, description)`.
    fn reports(&self) -> Vec<(String, String, String, String)>;
}

impl UnderFire for GitHubDriver {
    const NAME: &'static str = "GitHub";
    const CHANGE_REFS: &'static str = "refs/pull";

    async fn under_fire(backend: Backend, faults: Faults, world: &GitWorld) -> GitHubDriver {
        let fake = FakeGitHub::start_with(faults).await;
        let auth = GitHubAuth::Token("test-token".into());
        let lane = Lane::start_configured(fake, backend, POLICY, auth, configure).await;
        lane.fake.repo(REPO, |r| r.git_dir = Some(world.remote.clone()));
        GitHubDriver::on(lane)
    }

    fn faults(&self) -> Faults {
        self.lane.fake.faults.clone()
    }

    fn shared_clock(&self) -> Arc<ManualClock> {
        self.lane.clock.clone()
    }

    fn settle_each(&mut self, settle: bool) {
        self.lane.settle_each = settle;
    }

    fn land_as(&self, change: Change, sha: &str) {
        self.lane.fake.repo(REPO, |r| r.landings.insert(change.0, sha.into()));
    }

    async fn merged(&mut self, change: Change) {
        let pull = self.lane.fake.repo(REPO, |r| r.pulls[&change.0].clone());
        let by = common::fake_github::LANE_TOKEN_USER;
        self.lane.send("pull_request", common::github::pr_event("closed", &pull, None, by)).await;
    }

    fn merges(&self, change: Change) -> usize {
        self.lane.fake.repo(REPO, |r| r.merges.iter().filter(|m| m.0 == change.0).count())
    }

    fn backports(&self, change: Change) -> usize {
        let branch = format!("hotfix-lane/backport/{}-to-master", change.0);
        self.lane.fake.repo(REPO, |r| r.pulls.values().filter(|p| p["head"]["ref"] == branch.as_str()).count())
    }

    fn reports(&self) -> Vec<(String, String, String, String)> {
        self.lane.fake.repo(REPO, |r| {
            r.statuses
                .iter()
                .filter(|s| s.by == common::fake_github::LANE_TOKEN_USER)
                .map(|s| (s.sha.clone(), s.context.clone(), s.state.clone(), s.description.clone()))
                .collect()
        })
    }
}

impl UnderFire for GitLabDriver {
    const NAME: &'static str = "GitLab";
    const CHANGE_REFS: &'static str = "refs/merge-requests";

    async fn under_fire(backend: Backend, faults: Faults, world: &GitWorld) -> GitLabDriver {
        let fake = FakeGitLab::start_with(faults).await;
        let lane = GitLabDriver::start_configured(fake, backend, POLICY, configure).await;
        lane.fake.project(PROJECT, |p| {
            p.git_dir = Some(world.remote.clone());
            p.default_branch = "master".into();
        });
        lane.fake.set_file(PROJECT, "master", common::gitlab::POLICY, POLICY);
        lane
    }

    fn faults(&self) -> Faults {
        self.fake.faults.clone()
    }

    fn shared_clock(&self) -> Arc<ManualClock> {
        self.clock.clone()
    }

    fn settle_each(&mut self, settle: bool) {
        self.settle_each = settle;
    }

    fn land_as(&self, change: Change, sha: &str) {
        self.fake.project(PROJECT, |p| p.landings.insert(change.0, sha.into()));
    }

    async fn merged(&mut self, change: Change) {
        let mr = self.fake.mr(PROJECT, change.0);
        let bot = self.fake.with(|w| w.username(w.bot));
        let hook = common::gitlab::mr_hook(&self.fake, PROJECT, &mr, "merge", &bot, serde_json::json!({}));
        self.send("Merge Request", hook).await;
    }

    fn merges(&self, change: Change) -> usize {
        self.fake.merges().iter().filter(|m| m.iid == change.0).count()
    }

    fn backports(&self, change: Change) -> usize {
        let branch = format!("hotfix-lane/backport/{}-to-master", change.0);
        self.fake.project(PROJECT, |p| p.merge_requests.values().filter(|m| m.source_branch == branch).count())
    }

    fn reports(&self) -> Vec<(String, String, String, String)> {
        let bot = self.fake.with(|w| w.username(w.bot));
        self.fake
            .statuses()
            .into_iter()
            .filter(|s| s.by == bot)
            .map(|s| (s.sha, s.name, s.state, s.description))
            .collect()
    }
}

/// Moves the lane's clock with real time, so that retries fall due (the harness's clock is
/// fixed) and a wait the forge asked for is waited in real time.
async fn run_clock(clock: Arc<ManualClock>) {
    let start = Instant::now();
    let at_start = clock.now_ms();
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let due = at_start + start.elapsed().as_millis() as i64;
        let now = clock.now_ms();
        if due > now {
            clock.advance(due - now);
        }
    }
}

/// Waits until the queue is drained, retries and all; fails on a dead job.
async fn drain(store: &hotfix_lane::store::Store, faults: &Faults, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let counts = store.job_counts().await.unwrap();
        if counts.dead > 0 {
            let dead = store.jobs_in_state("dead").await.unwrap();
            let number = dead[0].ordering_key.rsplit(':').next().unwrap().to_string();
            let calls: Vec<String> = faults
                .served()
                .iter()
                .filter(|s| {
                    s.uri.contains(&number)
                        || !(1001..1400).any(|n: u64| n.to_string() != number && s.uri.contains(&n.to_string()))
                })
                .map(|s| format!("{} {} {:?}", s.method, s.uri, s.fault))
                .collect();
            panic!("a job died: {dead:?}\ncalls about it: {calls:#?}");
        }
        if counts.queued == 0 && counts.running == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the queue did not drain within {within:?}: {counts:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The fix for change `n` as it lands on `release-1`: one commit of its own file, on the
/// forge's ref for the change so that the mirror fetches it.
fn landings(world: &GitWorld, changes: &[u64], refs: &str) -> BTreeMap<u64, String> {
    let mut landed = BTreeMap::new();
    let mut refspecs = Vec::new();
    for &n in changes {
        world.git(&["checkout", "-q", "--detach", "release-1"]);
        world.write(&format!("fixes/{n}.txt"), &format!("the fix of change {n}\n"));
        let sha = world.commit(&format!("Fix {n}"), "Octo Cat <octocat@example.com>");
        refspecs.push(format!("{sha}:{refs}/{n}/merge"));
        landed.insert(n, sha);
    }
    world.git(&["checkout", "-q", "master"]);
    let refspecs: Vec<&str> = refspecs.iter().map(String::as_str).collect();
    world.push(&refspecs);
    landed
}

/// What the lane left on the forge about one change, to compare with a fault-free run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Left {
    merges: usize,
    backports: usize,
    /// Comments the lane keeps on the change: how many, and what they read now.
    comments: Vec<String>,
    /// Reports on the change's head and its merge commit, per context: the values it took, in
    /// order. A report is a value on the commit, not an object: posting the same value again
    /// (a post whose answer was lost, repeated) changes nothing anyone sees, so repeats of a
    /// value collapse; a report that went back to an earlier value would show.
    reports: BTreeMap<String, Vec<String>>,
}

fn left<D: UnderFire>(forge: &D, change: Change, landed: &str, written: &[Written]) -> Left {
    let mut ids: Vec<u64> = Vec::new();
    for w in written.iter().filter(|w| w.on == change.0 && w.repo == forge.repo()) {
        if !ids.contains(&w.id) {
            ids.push(w.id);
        }
    }
    let comments = ids.iter().map(|id| written.iter().rev().find(|w| w.id == *id).unwrap().body.clone()).collect();
    let head = forge.head(change);
    let mut reports = BTreeMap::new();
    for (sha, context, state, description) in forge.reports() {
        let on = if sha == head {
            "head"
        } else if sha == landed {
            "merge"
        } else {
            continue;
        };
        let values: &mut Vec<String> = reports.entry(format!("{on} {context}")).or_default();
        let value = format!("{state}: {}", shape(&description));
        if values.last() != Some(&value) {
            values.push(value);
        }
    }
    Left { merges: forge.merges(change), backports: forge.backports(change), comments, reports }
}

/// A text with its numbers and commit ids blanked, so that two changes' comments compare.
fn shape(text: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once('\n')) {
        if c.is_ascii_alphanumeric() {
            word.push(c);
            continue;
        }
        let numeric = !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit());
        let commit = word.len() >= 7 && word.bytes().all(|b| b.is_ascii_hexdigit());
        out.push_str(if numeric || commit { "N" } else { &word });
        word.clear();
        out.push(c);
    }
    out.trim_end().to_string()
}

/// `count` lifecycles (plus a few fault-free ones first, the yardstick) on forge `D`.
async fn lifecycles_under_fire<D: UnderFire>(backend: Backend, count: usize) {
    let started = Instant::now();
    let world = GitWorld::new();
    let faults = faults();
    let mut forge = D::under_fire(backend, faults.clone(), &world).await;
    forge.settle_each(false);
    let yardstick: Vec<u64> = (1001..1004).collect();
    let numbers: Vec<u64> = (1101..1101 + count as u64).collect();
    let all: Vec<u64> = yardstick.iter().chain(&numbers).copied().collect();
    let landed = landings(&world, &all, D::CHANGE_REFS);

    let ticker = tokio::spawn(run_clock(forge.shared_clock()));

    let changes = |numbers: &[u64]| numbers.iter().map(|&n| Change(n)).collect::<Vec<_>>();
    faults.pause(true);
    run_wave(&mut forge, &changes(&yardstick), &landed).await;
    faults.pause(false);
    let before = faults.served().len();
    // The highest numbers first: a fake forge numbers a new pull or merge request (a backport)
    // above every number in use, so it never takes a number a later wave opens.
    for wave in numbers.rchunks(WAVE) {
        run_wave(&mut forge, &changes(wave), &landed).await;
    }
    ticker.abort();
    let _ = ticker.await;

    // What a fault-free run leaves, per change.
    let written = forge.written();
    let expected = left(&forge, Change(yardstick[0]), &landed[&yardstick[0]], &written);
    assert_eq!((expected.merges, expected.backports), (1, 1), "{expected:#?}");
    let expected_shapes: Vec<String> = expected.comments.iter().map(|c| shape(c)).collect();
    let mut wrong = Vec::new();
    for &n in &numbers {
        let got = left(&forge, Change(n), &landed[&n], &written);
        let shapes: Vec<String> = got.comments.iter().map(|c| shape(c)).collect();
        if got.merges != 1 || got.backports != 1 || shapes != expected_shapes || got.reports != expected.reports {
            wrong.push((n, got));
        }
        assert_eq!(forge.check(&forge.head(Change(n)), LANE).map(|c| c.0), Some(State::Success), "#{n} in the lane");
        assert_eq!(forge.check(&forge.head(Change(n)), POSTMORTEM).map(|c| c.0), Some(State::Success), "#{n}");
    }
    assert!(wrong.is_empty(), "expected per change: {expected:#?}\n{} changes differ: {wrong:#?}", wrong.len());

    // One postmortem issue per change, each named by its change; none twice.
    let issues = forge.issues_opened();
    assert_eq!(issues.len(), all.len(), "one postmortem issue per change: {issues:#?}");
    let named: BTreeSet<String> =
        all.iter().map(|&n| forge.description(Change(n))).filter_map(|d| reference(&d)).collect();
    assert_eq!(named.len(), all.len(), "every change names an issue of its own");

    let store = forge.store();
    assert_eq!(store.job_counts().await.unwrap().dead, 0);
    // The lane's clock here steps along with real time every 5 ms and falls behind under load,
    // so its waits are measured up to a few steps short; the retry delays (40–400 ms) and the
    // waits asked for (a second or more) are far apart, so a retry that ignored one still shows.
    let early = faults.early_retries(Duration::from_millis(50));
    assert!(early.is_empty(), "retried sooner than the forge allowed: {early:#?}");

    let hurt = faults.served()[before..].iter().filter(|s| s.fault.is_some()).count();
    let counts = faults.counts();
    println!(
        "{} on {backend:?}: {count} lifecycles in {:.1} s; {} calls, {hurt} hurt ({counts:?}); {} rate limits retried, none early",
        D::NAME,
        started.elapsed().as_secs_f64(),
        faults.served().len() - before,
        faults.limit_retries(),
    );
    assert!(counts.len() == Fault::ALL.len(), "every kind of fault was injected: {counts:?}");
}

/// `Postmortem: #12` → `12`.
fn reference(description: &str) -> Option<String> {
    let at = description.find("Postmortem:")?;
    let rest = description[at + "Postmortem:".len()..].trim_start();
    Some(rest.split_whitespace().next()?.to_string())
}

/// Each change of the wave opened, labelled by a responder, its smoke check green; waits for
/// the lane after each move of the whole wave.
async fn run_wave<D: UnderFire>(forge: &mut D, wave: &[Change], landed: &BTreeMap<u64, String>) {
    let within = Duration::from_secs(120);
    for &change in wave {
        forge.land_as(change, &landed[&change.0]);
        let opened = forge.open(NewChange::by("Codertocat").number(change.0).base("release-1").body("Fix.")).await;
        assert_eq!(opened, change);
    }
    drain(forge.store(), &forge.faults(), within).await;
    for &change in wave {
        forge.label(change, "hotfix", "alice").await;
    }
    drain(forge.store(), &forge.faults(), within).await;
    for &change in wave {
        let head = forge.head(change);
        forge.report(&head, "smoke", State::Success, CI).await;
    }
    drain(forge.store(), &forge.faults(), within).await;
    for &change in wave {
        assert_eq!(forge.merges(change), 1, "#{} merged", change.0);
        forge.merged(change).await;
    }
    drain(forge.store(), &forge.faults(), within).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_github_lifecycles_under_fire_leave_no_duplicates() {
    lifecycles_under_fire::<GitHubDriver>(Backend::Sqlite, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_gitlab_lifecycles_under_fire_leave_no_duplicates() {
    lifecycles_under_fire::<GitLabDriver>(Backend::Sqlite, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_lifecycles_under_fire_on_postgres() {
    lifecycles_under_fire::<GitHubDriver>(Backend::Postgres, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_lifecycles_under_fire_on_postgres() {
    lifecycles_under_fire::<GitLabDriver>(Backend::Postgres, 40).await;
}
