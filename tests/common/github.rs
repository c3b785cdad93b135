//! GitHub for the test language: the webhook payloads the lane receives, built from the real
//! fixtures, and [`GitHubDriver`], which plays people's moves on the fake GitHub and sends the
//! webhook GitHub would send for each.

use serde_json::{json, Value};

use super::fake_github::Status;
use super::lane::{Lane, POLICY, REPO};
use super::scenario::{Change, ForgeDriver, Issue, Landed, NewChange, Said, Source, State, Written};
use super::{json_fixture, Backend};
use hotfix_lane::clock::{Clock, ManualClock};
use hotfix_lane::store::Store;

/// The head commit of the fixtures' pull request #2.
pub const FIXTURE_HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";

/// A throwaway GitHub App private key.
pub fn app_private_key() -> String {
    let out = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .expect("the openssl command (CI installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

// Payloads.

/// Pull request `number` as GitHub serves it and sends it in webhooks: the fixture's #2, by
/// `author`, onto `base`, with `labels` and `body`.
pub fn pull(number: u64, author: &str, base: &str, labels: &[&str], body: &str) -> Value {
    let mut pull = json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    pull["number"] = number.into();
    pull["user"]["login"] = author.into();
    pull["base"]["ref"] = base.into();
    pull["labels"] = labels.iter().map(|l| json!({ "name": l })).collect();
    pull["body"] = body.into();
    pull
}

/// A `pull_request` delivery about `pull`, for `label` if the action is about one, by `sender`.
pub fn pr_event(action: &str, pull: &Value, label: Option<&str>, sender: &str) -> Value {
    let mut event = json_fixture("github/pull_request/labeled.json");
    event["action"] = action.into();
    event["number"] = pull["number"].clone();
    event["pull_request"] = pull.clone();
    event["label"] = label.map_or(Value::Null, |l| json!({ "name": l }));
    event["sender"]["login"] = sender.into();
    event
}

/// A fresh comment id: GitHub's only grow, and the lane acts on a comment id once.
pub fn next_comment_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(2_000_000_000);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

/// A new comment by `author` on pull request `number` of the fixture repository.
pub fn comment_event(number: u64, body: &str, author: &str) -> Value {
    comment_event_with_id(next_comment_id(), number, body, author)
}

fn comment_event_with_id(id: u64, number: u64, body: &str, author: &str) -> Value {
    let mut event = json_fixture("github/issue_comment/created.json");
    event["comment"]["id"] = id.into();
    event["issue"]["number"] = number.into();
    event["issue"]["pull_request"] = json!({ "url": format!("https://api.github.com/repos/{REPO}/pulls/{number}") });
    event["comment"]["body"] = body.into();
    event["comment"]["user"]["login"] = author.into();
    event["sender"]["login"] = author.into();
    event
}

/// An `issues` delivery about issue `number`, now carrying `labels`.
pub fn issue_event(action: &str, number: u64, labels: &[&str], sender: &str) -> Value {
    let mut event = json_fixture("github/issues/labeled.json");
    event["action"] = action.into();
    event["issue"]["number"] = number.into();
    event["issue"]["labels"] = labels.iter().map(|l| json!({ "name": l })).collect();
    event["sender"]["login"] = sender.into();
    event
}

/// A completed `check_run` delivery: `name` concluded `conclusion` on `sha`.
pub fn check_event(sha: &str, name: &str, conclusion: &str) -> Value {
    let mut event = json_fixture("github/check_run/completed.json");
    event["check_run"]["name"] = name.into();
    event["check_run"]["head_sha"] = sha.into();
    event["check_run"]["conclusion"] = conclusion.into();
    event
}

/// A `status` delivery: `sender` set `context` to `state` on `sha`.
pub fn status_event(sha: &str, context: &str, state: &str, sender: &str) -> Value {
    let mut event = json_fixture("github/status/payload.json");
    event["sha"] = sha.into();
    event["context"] = context.into();
    event["state"] = state.into();
    event["sender"]["login"] = sender.into();
    event
}

/// A `push` delivery to `branch` of the fixture repository.
pub fn push_event(branch: &str, before: &str, after: &str, sender: &str) -> Value {
    let mut event = json_fixture("github/push/payload.json");
    event["ref"] = format!("refs/heads/{branch}").into();
    (event["before"], event["after"]) = (before.into(), after.into());
    // The fixture deletes a tag; this one moves a branch on.
    (event["created"], event["deleted"], event["forced"]) = (false.into(), false.into(), false.into());
    event["sender"]["login"] = sender.into();
    event["pusher"]["name"] = sender.into();
    event
}

/// `2026-11-26T13:24:00Z`, as GitHub writes times in issue events.
pub fn rfc3339(ms: i64) -> String {
    let text = hotfix_lane::lane::incident::format_utc(ms);
    format!("{}T{}:00Z", &text[..10], &text[11..16])
}

fn github_state(state: State) -> &'static str {
    match state {
        State::Pending => "pending",
        State::Success => "success",
        State::Failure => "failure",
        State::Neutral => "neutral",
        State::Skipped => "skipped",
    }
}

fn lane_state(word: &str) -> State {
    match word {
        "pending" | "queued" | "in_progress" => State::Pending,
        "success" => State::Success,
        "failure" | "error" | "cancelled" | "timed_out" | "action_required" => State::Failure,
        "neutral" => State::Neutral,
        "skipped" => State::Skipped,
        other => panic!("no such GitHub state: {other}"),
    }
}

// The driver.

/// The lane on GitHub: the real server, the real GitHub client, the fake GitHub, the
/// fixtures' repository `Codertocat/Hello-World` (default branch `master`).
pub struct GitHubDriver {
    pub lane: Lane,
    /// Commits made up so far, for distinct, repeatable ids.
    commits: u64,
}

impl GitHubDriver {
    /// On a lane the test started itself.
    pub fn on(lane: Lane) -> GitHubDriver {
        GitHubDriver { lane, commits: 0 }
    }

    /// A commit id no test has seen yet.
    fn new_sha(&mut self) -> String {
        self.commits += 1;
        let n = self.commits as u128;
        format!("{:032x}{:08x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835), n)
    }

    fn served(&self, change: Change) -> Value {
        self.lane.fake.repo(REPO, |r| r.pulls.get(&change.0).cloned()).unwrap_or_else(|| panic!("no {change:?}"))
    }

    /// Serves `change` changed by `edit`, as GitHub does after the move; returns it.
    fn update(&self, change: Change, edit: impl FnOnce(&mut Value)) -> Value {
        self.lane.fake.repo(REPO, |r| {
            let pull = r.pulls.get_mut(&change.0).unwrap_or_else(|| panic!("no {change:?}"));
            edit(pull);
            let labels: Vec<String> = pull["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["name"].as_str().map(String::from))
                .collect();
            r.issues.insert(change.0, (labels, true));
            pull.clone()
        })
    }

    async fn relabel_issue(&mut self, number: u64, action: &str, label: &str, by: &str) {
        let labels = self.lane.fake.repo(REPO, |r| {
            let issue = r.issues.get_mut(&number).unwrap_or_else(|| panic!("no issue #{number}"));
            issue.0.retain(|l| l != label);
            if action == "labeled" {
                issue.0.push(label.into());
            }
            issue.0.clone()
        });
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        let mut event = issue_event(action, number, &labels, by);
        event["label"] = json!({ "name": label });
        self.lane.send("issues", event).await;
    }
}

impl ForgeDriver for GitHubDriver {
    async fn start(backend: Backend, policy: &str) -> GitHubDriver {
        GitHubDriver { lane: Lane::start(backend, policy).await, commits: 0 }
    }

    fn repo(&self) -> String {
        REPO.into()
    }

    fn store(&self) -> &Store {
        self.lane.store()
    }

    fn clock(&self) -> &ManualClock {
        &self.lane.clock
    }

    fn server_url(&self) -> String {
        self.lane.base.clone()
    }

    async fn open(&mut self, change: NewChange) -> Change {
        let first = self.lane.fake.repo(REPO, |r| r.pulls.is_empty());
        // Numbers are shared with issues; the first change is the fixtures' #2 if it is free.
        let number = change.number.unwrap_or_else(|| {
            self.lane.fake.repo(REPO, |r| match r.issues.contains_key(&2) {
                false if first => 2,
                _ => r.issues.keys().chain(r.pulls.keys()).max().map_or(2, |n| n + 1),
            })
        });
        let author = change.author.unwrap_or_else(|| "Codertocat".into());
        let base = change.base.unwrap_or_else(|| "master".into());
        let mut pull = pull(number, &author, &base, &[], &change.body);
        if let Some(title) = change.title {
            pull["title"] = title.into();
        }
        // The first change has the fixtures' head commit.
        if !first {
            pull["head"]["sha"] = self.new_sha().into();
            pull["head"]["ref"] = format!("fix-{number}").into();
        }
        self.lane.fake.repo(REPO, |r| {
            r.pulls.insert(number, pull.clone());
            r.issues.insert(number, (vec![], true));
        });
        self.lane.send("pull_request", pr_event("opened", &pull, None, &author)).await;
        Change(number)
    }

    async fn label(&mut self, change: Change, label: &str, by: &str) {
        let pull = self.update(change, |p| {
            let labels = p["labels"].as_array_mut().unwrap();
            labels.retain(|l| l["name"] != label);
            labels.push(json!({ "name": label }));
        });
        let at = rfc3339(self.lane.clock.now_ms());
        self.lane.fake.repo(REPO, |r| r.label_events.push((change.0, label.into(), by.into(), at)));
        self.lane.send("pull_request", pr_event("labeled", &pull, Some(label), by)).await;
    }

    async fn unlabel(&mut self, change: Change, label: &str, by: &str) {
        let pull = self.update(change, |p| p["labels"].as_array_mut().unwrap().retain(|l| l["name"] != label));
        self.lane.send("pull_request", pr_event("unlabeled", &pull, Some(label), by)).await;
    }

    async fn comment(&mut self, change: Change, text: &str, by: &str) -> Said {
        let id = next_comment_id();
        let comment = super::fake_github::Comment { id, number: change.0, body: text.into(), author: by.into() };
        self.lane.fake.repo(REPO, |r| r.comments.push(comment));
        self.lane.send("issue_comment", comment_event_with_id(id, change.0, text, by)).await;
        Said { change, id }
    }

    async fn edit_comment(&mut self, said: Said, text: &str, by: &str) {
        let old = self.lane.fake.repo(REPO, |r| {
            let c = r.comments.iter_mut().find(|c| c.id == said.id).expect("a comment the test wrote");
            std::mem::replace(&mut c.body, text.into())
        });
        let mut event = comment_event_with_id(said.id, said.change.0, text, by);
        event["action"] = "edited".into();
        event["changes"] = json!({ "body": { "from": old } });
        self.lane.send("issue_comment", event).await;
    }

    async fn edit_description(&mut self, change: Change, text: &str, by: &str) {
        let mut old = Value::Null;
        let pull = self.update(change, |p| old = std::mem::replace(&mut p["body"], text.into()));
        let mut event = pr_event("edited", &pull, None, by);
        event["changes"] = json!({ "body": { "from": old } });
        self.lane.send("pull_request", event).await;
    }

    async fn push(&mut self, change: Change, by: &str) -> String {
        let (before, after) = (self.head(change), self.new_sha());
        let pull = self.update(change, |p| p["head"]["sha"] = after.as_str().into());
        let mut event = pr_event("synchronize", &pull, None, by);
        (event["before"], event["after"]) = (before.into(), after.as_str().into());
        self.lane.send("pull_request", event).await;
        after
    }

    async fn report(&mut self, sha: &str, name: &str, state: State, source: Source) {
        let word = github_state(state);
        match source {
            Source::App(app) => {
                self.lane.fake.post_check_run(REPO, sha, name, word, app);
                let mut event = check_event(sha, name, word);
                let run = &mut event["check_run"];
                run["app"]["slug"] = app.into();
                if state == State::Pending {
                    (run["status"], run["conclusion"]) = ("in_progress".into(), Value::Null);
                    event["action"] = "created".into();
                }
                // GitHub lists the open pull requests whose head the commit is.
                let pulls: Vec<Value> = self.lane.fake.repo(REPO, |r| {
                    r.pulls.values().filter(|p| p["head"]["sha"] == sha && p["state"] == "open").cloned().collect()
                });
                let listed: Vec<Value> = pulls
                    .iter()
                    .map(|p| {
                        let mut entry = event["check_run"]["pull_requests"][0].clone();
                        entry["number"] = p["number"].clone();
                        entry["head"]["sha"] = p["head"]["sha"].clone();
                        entry["head"]["ref"] = p["head"]["ref"].clone();
                        entry["base"]["ref"] = p["base"]["ref"].clone();
                        entry
                    })
                    .collect();
                event["check_run"]["pull_requests"] = listed.into();
                self.lane.send("check_run", event).await;
            }
            Source::User(user) => {
                let word = match state {
                    State::Neutral | State::Skipped => panic!("a commit status is never {state:?}"),
                    _ => word,
                };
                self.lane.fake.post_status(REPO, sha, name, word, user);
                self.lane.send("status", status_event(sha, name, word, user)).await;
            }
        }
    }

    async fn open_issue(&mut self, number: u64, labels: &[&str], by: &str) {
        self.lane.fake.repo(REPO, |r| {
            r.issues.insert(number, (labels.iter().map(|l| l.to_string()).collect(), false));
            r.issue_authors.insert(number, by.into());
        });
        let mut event = json_fixture("github/issues/opened.json");
        event["issue"]["number"] = number.into();
        event["issue"]["labels"] = labels.iter().map(|l| json!({ "name": l })).collect();
        event["issue"]["user"]["login"] = by.into();
        event["sender"]["login"] = by.into();
        self.lane.send("issues", event).await;
    }

    async fn label_issue(&mut self, number: u64, label: &str, by: &str) {
        self.relabel_issue(number, "labeled", label, by).await
    }

    async fn unlabel_issue(&mut self, number: u64, label: &str, by: &str) {
        self.relabel_issue(number, "unlabeled", label, by).await
    }

    async fn push_policy(&mut self, text: &str, by: &str) {
        self.lane.fake.repo(REPO, |r| r.files.insert(("master".into(), POLICY.into()), text.into()));
        let (before, after) = (self.new_sha(), self.new_sha());
        self.lane.send("push", push_event("master", &before, &after, by)).await;
    }

    fn require_merge_queue(&mut self, base: &str) {
        self.lane.fake.repo(REPO, |r| r.queue_only.push(base.into()));
    }

    async fn queue(&mut self, change: Change) -> String {
        let group = self.new_sha();
        let pull = self.served(change);
        let base = pull["base"]["ref"].as_str().unwrap().to_string();
        let head = pull["head"]["sha"].as_str().unwrap().to_string();
        self.lane.fake.repo(REPO, |r| r.merge_queue.insert(base.clone(), vec![(change.0, group.clone())]));
        let mut event = json_fixture("github/merge_group/checks_requested.json");
        event["repository"] = json_fixture("github/pull_request/labeled.json")["repository"].clone();
        let group_body = &mut event["merge_group"];
        group_body["head_sha"] = group.as_str().into();
        group_body["head_ref"] = format!("refs/heads/gh-readonly-queue/{base}/pr-{}-{head}", change.0).into();
        group_body["base_ref"] = format!("refs/heads/{base}").into();
        self.lane.send("merge_group", event).await;
        group
    }

    async fn merge_by_hand(&mut self, change: Change, by: &str) -> String {
        let sha = self.lane.fake.repo(REPO, |r| r.land(change.0));
        let pull = self.served(change);
        self.lane.send("pull_request", pr_event("closed", &pull, None, by)).await;
        sha
    }

    async fn close_issue(&mut self, number: u64, body: &str, by: &str) {
        let labels = self.lane.fake.repo(REPO, |r| r.issues.get(&number).map(|i| i.0.clone()).unwrap_or_default());
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        let mut event = issue_event("closed", number, &labels, by);
        (event["issue"]["state"], event["issue"]["body"]) = ("closed".into(), body.into());
        event["label"] = Value::Null;
        self.lane.send("issues", event).await;
    }

    async fn deploy(&mut self, sha: &str, environment: &str, by: &str) {
        let base = json_fixture("github/pull_request/labeled.json");
        let event = json!({
            "action": "created",
            "deployment_status": { "id": 1, "state": "success", "environment": environment },
            "deployment": { "id": 1, "sha": sha, "ref": "master", "environment": environment, "task": "deploy" },
            "repository": base["repository"],
            "sender": { "login": by, "id": 1, "type": "User" },
        });
        self.lane.send("deployment_status", event).await;
    }

    fn default_head(&self) -> String {
        self.lane.fake.repo(REPO, |r| r.history.last().cloned()).expect("something merged")
    }

    fn head(&self, change: Change) -> String {
        self.served(change)["head"]["sha"].as_str().unwrap().to_string()
    }

    fn description(&self, change: Change) -> String {
        self.served(change)["body"].as_str().unwrap_or_default().to_string()
    }

    fn check(&self, sha: &str, context: &str) -> Option<(State, String)> {
        let Status { state, description, .. } = self.lane.fake.status(REPO, sha, context)?;
        Some((lane_state(&state), description))
    }

    fn written(&self) -> Vec<Written> {
        self.lane.fake.with(|w| {
            w.written
                .iter()
                .map(|(repo, c)| Written { repo: repo.clone(), on: c.number, id: c.id, body: c.body.clone() })
                .collect()
        })
    }

    /// The fake keeps a title and body for the issues opened through its API only.
    fn issues_opened(&self) -> Vec<Issue> {
        self.lane.fake.repo(REPO, |r| {
            r.issue_texts
                .iter()
                .map(|(&number, (title, body))| Issue {
                    number,
                    title: title.clone(),
                    body: body.clone(),
                    labels: r.issues.get(&number).map(|i| i.0.clone()).unwrap_or_default(),
                })
                .collect()
        })
    }

    fn landed(&self) -> Vec<Landed> {
        let merged = self.lane.fake.repo(REPO, |r| r.merges.clone());
        let enqueued = self.lane.fake.with(|w| w.enqueued.clone());
        let merged = merged.into_iter().map(|(n, sha, method)| Landed::Merged { change: Change(n), sha, method });
        // The fake names pull requests `PR_<owner>_<repo>_<number>` over GraphQL.
        let enqueued = enqueued.into_iter().map(|(node, sha, front)| {
            let number = node.rsplit('_').next().and_then(|n| n.parse().ok()).expect("a pull request node id");
            Landed::Enqueued { change: Change(number), sha, front }
        });
        merged.chain(enqueued).collect()
    }
}
