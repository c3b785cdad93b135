//! A forge-neutral language for end-to-end lane tests.
//!
//! A test says what people do on the forge — open a change, label it, comment, push, report a
//! check — and reads what the lane did there: the checks it reported, the comments it wrote,
//! the issues it opened, the merges it made. It never sees a webhook payload nor the fake
//! forge's state: a [`ForgeDriver`] turns each move into the forge's own webhooks (built from
//! its real payload fixtures) and keeps its fake API in step, so the same test body runs on
//! every forge the lane serves, and on both store backends.
//!
//! Like rust-lang/bors's `BorsTester`, a [`Scenario`] is strict when it ends: a test fails if
//! the lane wrote a comment (or a new version of one) that the test never read with
//! [`Scenario::next_comment`]. A test that does not care says why, with
//! [`Scenario::allow_unread_comments`].

use std::time::Duration;

use hotfix_lane::clock::ManualClock;
use hotfix_lane::store::{AuditEntry, Store};

use super::Backend;

/// The checks the lane reports on a change's head commit.
pub const LANE: &str = "hotfix-lane/lane";
pub const POSTMORTEM: &str = "hotfix-lane/postmortem";
pub const POLICY: &str = "hotfix-lane/policy";

/// A check's state, as the lane and CI report it. Each driver maps it to its forge's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Success,
    Failure,
    Neutral,
    Skipped,
}

/// Who reports a check: a CI App (a check run, pinned with `app = …`), or a user posting a
/// commit status (pinned with `creator = …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    App(&'static str),
    User(&'static str),
}

/// A change (pull or merge request) by its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change(pub u64);

impl From<Change> for u64 {
    fn from(change: Change) -> u64 {
        change.0
    }
}

/// An issue by its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IssueRef(pub u64);

impl From<IssueRef> for u64 {
    fn from(issue: IssueRef) -> u64 {
        issue.0
    }
}

/// A comment a person wrote, to edit later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Said {
    pub change: Change,
    pub id: u64,
}

/// A change to open. What is left unset the driver fills in: the next number, the fixture's
/// author and title, a head commit, the default branch as its base.
#[derive(Debug, Clone, Default)]
pub struct NewChange {
    pub number: Option<u64>,
    pub author: Option<String>,
    pub title: Option<String>,
    pub body: String,
    pub base: Option<String>,
}

impl NewChange {
    pub fn by(author: &str) -> NewChange {
        NewChange { author: Some(author.into()), ..NewChange::default() }
    }

    pub fn body(mut self, body: &str) -> NewChange {
        self.body = body.into();
        self
    }

    pub fn number(mut self, number: u64) -> NewChange {
        self.number = Some(number);
        self
    }

    pub fn base(mut self, base: &str) -> NewChange {
        self.base = Some(base.into());
        self
    }
}

/// One write of a comment by the lane: its creation, or an edit with the text it left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The repository (project) the comment is in.
    pub repo: String,
    /// The change or issue it is on.
    pub on: u64,
    /// The comment's id: one comment edited in place keeps it.
    pub id: u64,
    pub body: String,
}

/// An issue the lane opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
}

/// What the lane did to land a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    /// Merged, pinned to `sha`, with the merge method the policy names.
    Merged { change: Change, sha: String, method: String },
    /// Put into the base branch's merge queue, expecting `sha`; `front` when it jumped the queue.
    Enqueued { change: Change, sha: String, front: bool },
}

/// One forge as the lane sees it: its webhooks in, its API out. Every move sends the forge's
/// own webhook for it, after updating what the fake API serves the way the forge would, and
/// returns once every job the webhook caused has run.
// The drivers are used within one test crate, awaited in place: no `Send` bound is needed.
#[allow(async_fn_in_trait)]
pub trait ForgeDriver: Sized {
    /// A lane serving one repository on this forge, with `policy` on its default branch.
    async fn start(backend: Backend, policy: &str) -> Self;

    /// The repository's full name, as the audit log keys it.
    fn repo(&self) -> String;
    fn store(&self) -> &Store;
    fn clock(&self) -> &ManualClock;
    /// Where the lane's server listens.
    fn server_url(&self) -> String;

    // What people do.

    async fn open(&mut self, change: NewChange) -> Change;
    async fn label(&mut self, change: Change, label: &str, by: &str);
    async fn unlabel(&mut self, change: Change, label: &str, by: &str);
    async fn comment(&mut self, change: Change, text: &str, by: &str) -> Said;
    async fn edit_comment(&mut self, said: Said, text: &str, by: &str);
    async fn edit_description(&mut self, change: Change, text: &str, by: &str);
    /// Pushes a new head commit to the change; returns it.
    async fn push(&mut self, change: Change, by: &str) -> String;
    /// `source` reports check `name` on commit `sha`: the result the forge lists, and its webhook.
    async fn report(&mut self, sha: &str, name: &str, state: State, source: Source);
    async fn open_issue(&mut self, number: u64, labels: &[&str], by: &str);
    async fn label_issue(&mut self, number: u64, label: &str, by: &str);
    async fn unlabel_issue(&mut self, number: u64, label: &str, by: &str);
    /// Commits `text` as the policy on the default branch, and pushes it.
    async fn push_policy(&mut self, text: &str, by: &str);
    /// From now on, `base` takes changes only through its merge queue.
    fn require_merge_queue(&mut self, base: &str);
    /// The merge queue of the change's base builds a group for it (the change alone) and asks
    /// for its checks; returns the group's head commit.
    async fn queue(&mut self, change: Change) -> String;
    /// `by` merges the change by hand (not the lane); returns the commit it landed as.
    async fn merge_by_hand(&mut self, change: Change, by: &str) -> String;
    /// `by` closes issue `number`, whose description now reads `body`.
    async fn close_issue(&mut self, number: u64, body: &str, by: &str);
    /// A deployment of commit `sha` to `environment` succeeded, as `by` ran it.
    async fn deploy(&mut self, sha: &str, environment: &str, by: &str);
    /// The default branch's head commit.
    fn default_head(&self) -> String;

    // What the forge shows.

    fn head(&self, change: Change) -> String;
    fn description(&self, change: Change) -> String;
    /// The latest report of `context` on `sha`: its state and description.
    fn check(&self, sha: &str, context: &str) -> Option<(State, String)>;
    /// Every comment write by the lane so far, in order.
    fn written(&self) -> Vec<Written>;
    fn issues_opened(&self) -> Vec<Issue>;
    fn landed(&self) -> Vec<Landed>;
}

/// A test's run of the lane on one forge: people's moves, then what the lane did.
pub struct Scenario<D: ForgeDriver> {
    pub forge: D,
    /// Which of the writes [`ForgeDriver::written`] lists the test has read.
    read: Vec<bool>,
    unread_allowed: Option<&'static str>,
}

impl<D: ForgeDriver> Scenario<D> {
    pub async fn start(backend: Backend, policy: &str) -> Scenario<D> {
        Scenario { forge: D::start(backend, policy).await, read: Vec::new(), unread_allowed: None }
    }

    pub async fn open(&mut self, change: NewChange) -> Change {
        self.forge.open(change).await
    }

    pub async fn label(&mut self, change: Change, label: &str, by: &str) {
        self.forge.label(change, label, by).await
    }

    pub async fn unlabel(&mut self, change: Change, label: &str, by: &str) {
        self.forge.unlabel(change, label, by).await
    }

    pub async fn comment(&mut self, change: Change, text: &str, by: &str) -> Said {
        self.forge.comment(change, text, by).await
    }

    pub async fn edit_comment(&mut self, said: Said, text: &str, by: &str) {
        self.forge.edit_comment(said, text, by).await
    }

    pub async fn edit_description(&mut self, change: Change, text: &str, by: &str) {
        self.forge.edit_description(change, text, by).await
    }

    pub async fn push(&mut self, change: Change, by: &str) -> String {
        self.forge.push(change, by).await
    }

    /// `source` reports `name` on the change's head commit.
    pub async fn report(&mut self, change: Change, name: &str, state: State, source: Source) {
        let sha = self.forge.head(change);
        self.forge.report(&sha, name, state, source).await
    }

    /// `source` reports `name` on commit `sha`.
    pub async fn report_on(&mut self, sha: &str, name: &str, state: State, source: Source) {
        self.forge.report(sha, name, state, source).await
    }

    pub async fn open_issue(&mut self, number: u64, labels: &[&str], by: &str) -> IssueRef {
        self.forge.open_issue(number, labels, by).await;
        IssueRef(number)
    }

    pub async fn label_issue(&mut self, issue: IssueRef, label: &str, by: &str) {
        self.forge.label_issue(issue.0, label, by).await
    }

    pub async fn unlabel_issue(&mut self, issue: IssueRef, label: &str, by: &str) {
        self.forge.unlabel_issue(issue.0, label, by).await
    }

    pub async fn push_policy(&mut self, text: &str, by: &str) {
        self.forge.push_policy(text, by).await
    }

    pub fn require_merge_queue(&mut self, base: &str) {
        self.forge.require_merge_queue(base)
    }

    pub async fn queue(&mut self, change: Change) -> String {
        self.forge.queue(change).await
    }

    /// Time passes (the lane's clock is fixed otherwise).
    pub async fn merge_by_hand(&mut self, change: Change, by: &str) -> String {
        self.forge.merge_by_hand(change, by).await
    }

    pub async fn close_issue(&mut self, issue: IssueRef, body: &str, by: &str) {
        self.forge.close_issue(issue.0, body, by).await
    }

    pub async fn deploy(&mut self, sha: &str, environment: &str, by: &str) {
        self.forge.deploy(sha, environment, by).await
    }

    pub fn default_head(&self) -> String {
        self.forge.default_head()
    }

    pub fn advance(&self, by: Duration) {
        self.forge.clock().advance(by.as_millis() as i64)
    }

    pub fn head(&self, change: Change) -> String {
        self.forge.head(change)
    }

    pub fn description(&self, change: Change) -> String {
        self.forge.description(change)
    }

    /// Asserts the lane's latest report of `context` on the change's head is `state`; returns
    /// its description.
    #[track_caller]
    pub fn expect_check(&self, change: Change, context: &str, state: State) -> String {
        self.expect_check_on(&self.forge.head(change), context, state)
    }

    #[track_caller]
    pub fn expect_check_on(&self, sha: &str, context: &str, state: State) -> String {
        let (got, description) =
            self.forge.check(sha, context).unwrap_or_else(|| panic!("no {context} report on {sha}"));
        assert_eq!(got, state, "{context} on {sha}: {description}");
        description
    }

    /// The next comment text the lane wrote on `on` (a change or an issue number) that the test
    /// has not read yet: a new comment, or a new version of one it edits in place.
    #[track_caller]
    pub fn next_comment(&mut self, on: impl Into<u64>) -> String {
        let on = on.into();
        let written = self.forge.written();
        self.read.resize(written.len(), false);
        let repo = self.forge.repo();
        let Some(i) = (0..written.len()).find(|&i| !self.read[i] && written[i].on == on && written[i].repo == repo)
        else {
            panic!("the lane wrote nothing new on #{on}; all it wrote: {written:#?}")
        };
        self.read[i] = true;
        written[i].body.clone()
    }

    /// Asserts the lane wrote nothing on `on` that the test has not read.
    #[track_caller]
    pub fn expect_no_new_comment(&mut self, on: impl Into<u64>) {
        let on = on.into();
        let unread: Vec<Written> = self.unread().into_iter().filter(|w| w.on == on).collect();
        assert!(unread.is_empty(), "the lane wrote on #{on}: {unread:#?}");
    }

    /// The comments the lane keeps on `change`, as they read now, oldest first.
    pub fn comments(&self, change: Change) -> Vec<String> {
        let mut ids: Vec<u64> = Vec::new();
        let written = self.forge.written();
        for w in written.iter().filter(|w| w.on == change.0 && w.repo == self.forge.repo()) {
            if !ids.contains(&w.id) {
                ids.push(w.id);
            }
        }
        ids.iter().map(|id| written.iter().rev().find(|w| w.id == *id).unwrap().body.clone()).collect()
    }

    pub fn issues_opened(&self) -> Vec<Issue> {
        self.forge.issues_opened()
    }

    pub fn landed(&self) -> Vec<Landed> {
        self.forge.landed()
    }

    /// The audit log's entries for the repository, oldest first.
    pub async fn audit_log(&self) -> Vec<AuditEntry> {
        self.forge.store().audit(Some(&self.forge.repo()), None).await.unwrap()
    }

    /// The actions of [`Scenario::audit_log`].
    pub async fn audit(&self) -> Vec<String> {
        self.audit_log().await.into_iter().map(|e| e.action).collect()
    }

    /// The lane's `/metrics` page.
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.forge.server_url());
        reqwest::get(url).await.unwrap().text().await.unwrap()
    }

    /// Ends the scenario without the check for unread comments; `why` says what the test is
    /// about instead.
    pub fn allow_unread_comments(&mut self, why: &'static str) {
        assert!(!why.trim().is_empty(), "say why the comments need not be read");
        self.unread_allowed = Some(why);
    }

    fn unread(&self) -> Vec<Written> {
        let written = self.forge.written();
        written
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !self.read.get(*i).copied().unwrap_or(false))
            .map(|(_, w)| w)
            .collect()
    }
}

impl<D: ForgeDriver> Drop for Scenario<D> {
    /// The strict teardown: every comment the lane wrote was read.
    fn drop(&mut self) {
        if std::thread::panicking() || self.unread_allowed.is_some() {
            return;
        }
        let unread = self.unread();
        assert!(
            unread.is_empty(),
            "the lane wrote {} comment(s) the test never read (read them with `next_comment`, or \
             say why not with `allow_unread_comments`): {unread:#?}",
            unread.len()
        );
    }
}
