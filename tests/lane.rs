//! The hotfix lane end to end: real webhooks through the real router, the real GitHub client
//! against a stateful fake GitHub on loopback, every comment the lane writes snapshotted.

mod common;

use std::sync::Arc;

use common::fake_github::FakeGitHub;
use common::lane::{Lane, NOW, POLICY, REPO};
use common::{base_url, eventually, Backend, Delivery, TestDb};
use hotfix_lane::clock::ManualClock;
use hotfix_lane::forge::github::GitHubAuth;
use serde_json::{json, Value};

const HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";

/// A `pull_request` delivery for PR #2 of the fixture repository.
fn pr_event(action: &str, label: Option<&str>, labels: &[&str], body: &str, sender: &str) -> Value {
    let mut event = common::json_fixture("github/pull_request/labeled.json");
    event["action"] = action.into();
    event["label"] = label.map_or(Value::Null, |l| json!({ "name": l }));
    event["pull_request"]["labels"] = labels.iter().map(|l| json!({ "name": l })).collect();
    event["pull_request"]["body"] = body.into();
    event["sender"]["login"] = sender.into();
    event
}

fn issue_event(action: &str, number: u64, labels: &[&str]) -> Value {
    let mut event = common::json_fixture("github/issues/labeled.json");
    event["action"] = action.into();
    event["issue"]["number"] = number.into();
    event["issue"]["labels"] = labels.iter().map(|l| json!({ "name": l })).collect();
    event
}

const RESPONDERS: &str = "[responders]\nusers = [\"Codertocat\"]\n";

/// A comment on PR #2, as `author`.
fn comment_event(body: &str, author: &str) -> Value {
    common::github::comment_event(2, body, author)
}

/// Serves PR #2 from the fake, labelled `hotfix`, with `body`.
fn serve_pull(lane: &Lane, body: &str) {
    let mut pull = common::json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    pull["labels"] = json!([{ "name": "hotfix" }]);
    pull["body"] = body.into();
    lane.fake.repo(REPO, |r| r.pulls.insert(2, pull));
}

fn pull_body(lane: &Lane) -> String {
    lane.fake.repo(REPO, |r| r.pulls[&2]["body"].as_str().unwrap_or_default().to_string())
}

async fn slash_postmortem_opens_and_links_the_issue_once(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    serve_pull(&lane, "Fix the outage.");
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "Fix the outage.", "Codertocat")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem").0, "failure");

    lane.send("issue_comment", comment_event("/hotfix postmortem", "Codertocat")).await;
    let issues = lane.fake.repo(REPO, |r| r.issue_texts.clone());
    assert_eq!(issues.len(), 1, "one postmortem issue");
    let (&number, (title, body)) = issues.iter().next().unwrap();
    assert_eq!(title, "Postmortem: Update the README with new information.");
    assert_eq!(lane.fake.repo(REPO, |r| r.issues[&number].0.clone()), vec!["postmortem".to_string()]);
    insta::assert_snapshot!("postmortem_issue_body", body);
    assert_eq!(pull_body(&lane), format!("Fix the outage.\n\nPostmortem: #{number}"));
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem"), ("success".into(), format!("postmortem #{number}")));

    // Asking again changes nothing.
    lane.send("issue_comment", comment_event("/hotfix postmortem", "Codertocat")).await;
    assert_eq!(lane.fake.repo(REPO, |r| r.issue_texts.len()), 1);
    let actions: Vec<String> =
        lane.store().audit(Some(REPO), None).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions.iter().filter(|a| *a == "postmortem.opened").count(), 1, "{actions:?}");
}

async fn a_retried_postmortem_command_finds_the_issue_it_opened(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    serve_pull(&lane, "");
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    // An earlier attempt opened the issue, then died before linking it.
    lane.fake.repo(REPO, |r| {
        r.issues.insert(40, (vec!["postmortem".into()], false));
        r.issue_texts
            .insert(40, ("Postmortem".into(), "<!-- hotfix-lane:postmortem-for Codertocat/Hello-World#2 -->".into()));
        r.issue_authors.insert(40, common::fake_github::TOKEN_LOGIN.into());
    });
    lane.send("issue_comment", comment_event("/hotfix postmortem", "Codertocat")).await;
    assert_eq!(lane.fake.repo(REPO, |r| r.issue_texts.len()), 1, "no second issue");
    assert_eq!(pull_body(&lane), "Postmortem: #40");
}

async fn only_responders_and_the_author_open_postmortems(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    serve_pull(&lane, "");
    lane.send("issue_comment", comment_event("/hotfix postmortem", "drive-by")).await;
    assert!(lane.fake.repo(REPO, |r| r.issue_texts.is_empty()));
    let audit = lane.store().audit(Some(REPO), None).await.unwrap();
    assert_eq!((audit[0].action.as_str(), audit[0].actor.as_str()), ("postmortem.command_refused", "drive-by"));
    // An edited comment never runs a command.
    let mut edited = comment_event("/hotfix postmortem", "Codertocat");
    edited["action"] = "edited".into();
    lane.send("issue_comment", edited).await;
    assert!(lane.fake.repo(REPO, |r| r.issue_texts.is_empty()));
}

async fn the_policy_can_open_the_postmortem_when_the_label_is_applied(backend: Backend) {
    let lane = Lane::start(backend, &format!("{RESPONDERS}[postmortem]\nopen_on_label = true\n")).await;
    serve_pull(&lane, "Fix.");
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "Fix.", "Codertocat")).await;
    let number = lane.fake.repo(REPO, |r| *r.issue_texts.keys().next().expect("an issue was opened"));
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem"), ("success".into(), format!("postmortem #{number}")));
}

async fn a_normal_pull_request_passes_without_a_comment(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    lane.send("pull_request", pr_event("opened", None, &[], "Small fix.", "Codertocat")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/lane"), ("success".into(), "normal".into()));
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem"), ("success".into(), "not a hotfix".into()));
    assert!(lane.comments().is_empty());
}

async fn a_hotfix_without_a_postmortem_is_blocked_until_the_issue_exists(backend: Backend) {
    // A smoke check that never reports keeps the lane from merging while the check flips.
    let lane = Lane::start(backend, &format!("{RESPONDERS}[merge]\nsmoke_checks = [\"smoke\"]\n")).await;
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "Fix the outage.", "Codertocat")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/lane"), ("success".into(), "hotfix: smoke-only".into()));
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem"), ("failure".into(), "no postmortem referenced".into()));
    insta::assert_snapshot!("hotfix_without_postmortem", lane.comments().join("\n---\n"));

    // The description names an issue that does not exist yet.
    let body = "Fix the outage.\n\nPostmortem: #50";
    lane.send("pull_request", pr_event("edited", None, &["hotfix"], body, "Codertocat")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem"), ("failure".into(), "#50 does not exist".into()));

    // The issue is opened, labelled: the check flips without touching the pull request.
    lane.fake.repo(REPO, |r| r.issues.insert(50, (vec!["postmortem".into()], false)));
    lane.send("issues", issue_event("opened", 50, &["postmortem"])).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem"), ("success".into(), "postmortem #50".into()));

    // It loses its label: blocked again.
    lane.fake.repo(REPO, |r| r.issues.insert(50, (vec![], false)));
    lane.send("issues", issue_event("unlabeled", 50, &[])).await;
    assert_eq!(
        lane.status(HEAD, "hotfix-lane/postmortem"),
        ("failure".into(), "#50 lacks the `postmortem` label".into())
    );

    let comments = lane.comments();
    assert_eq!(comments.len(), 1, "one comment, kept up to date");
    insta::assert_snapshot!("hotfix_postmortem_unlabelled", comments[0]);
    let audit: Vec<String> =
        lane.store().audit(Some(REPO), None).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(
        audit,
        ["lane.hotfix", "grant.refused", "postmortem.failure", "postmortem.success", "postmortem.failure"],
        "each lane decision is audited once"
    );
}

async fn each_bad_reference_has_its_own_message(backend: Backend) {
    let lane = Lane::start(backend, &format!("{RESPONDERS}[postmortem]\nallowed_repos = [\"acme/incidents\"]\n")).await;
    lane.fake.repo(REPO, |r| {
        r.issues.insert(7, (vec!["postmortem".into()], true));
        r.issues.insert(8, (vec!["bug".into()], false));
    });
    lane.fake.repo("acme/incidents", |r| r.issues.insert(3, (vec!["postmortem".into()], false)));
    let cases = [
        ("Postmortem: #99", "#99 does not exist"),
        ("Postmortem: #7", "#7 is a pull request"),
        ("Postmortem: #8", "#8 lacks the `postmortem` label"),
        ("Postmortem: other/repo#3", "other/repo#3: repository not allowed"),
        ("Postmortem: tomorrow", "postmortem reference unreadable"),
        ("Postmortem: https://github.com/acme/incidents/issues/3", "postmortem acme/incidents#3"),
    ];
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    for (body, expected) in cases {
        lane.send("pull_request", pr_event("edited", None, &["hotfix"], body, "Codertocat")).await;
        assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem").1, expected, "{body}");
    }
}

async fn a_label_from_a_non_responder_is_refused_and_explained(backend: Backend) {
    let lane = Lane::start(backend, "[responders]\nusers = [\"alice\"]\nteams = [\"@acme/oncall\"]\n").await;
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "mallory")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/lane"), ("failure".into(), "hotfix label not authorized".into()));
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem"), ("success".into(), "not a hotfix".into()));
    insta::assert_snapshot!("label_by_non_responder", lane.comments().join("\n---\n"));
    let audit = lane.store().audit(Some(REPO), None).await.unwrap();
    assert_eq!((audit[0].action.as_str(), audit[0].actor.as_str()), ("lane.not_authorized", "mallory"));
}

async fn a_team_member_is_a_responder(backend: Backend) {
    let lane = Lane::start(backend, "[responders]\nteams = [\"@acme/oncall\"]\n").await;
    lane.fake.with(|w| w.teams.insert(("acme".into(), "oncall".into()), vec!["bob".into()]));
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "bob")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/lane").1, "hotfix: smoke-only");
}

async fn an_invalid_policy_is_reported_and_the_last_good_one_kept(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    // The default branch gets a broken policy, announced by a push.
    lane.fake.repo(REPO, |r| r.files.insert(("master".into(), POLICY.into()), "[responders]\nuser = [\"x\"]\n".into()));
    let mut push = common::json_fixture("github/push/payload.json");
    push["ref"] = "refs/heads/master".into();
    lane.send("push", push).await;
    lane.send("pull_request", pr_event("edited", None, &["hotfix"], "still broken", "Codertocat")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/lane").1, "hotfix: smoke-only", "the last good policy still applies");
    let comments = lane.comments();
    assert_eq!(comments.len(), 1);
    assert!(comments[0].contains("is invalid (2:1: unknown field `user`"), "{}", comments[0]);
}

async fn the_merge_queue_enforces_the_postmortem_check(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    let queue_repo = "octo-org/octo-repo";
    let group = common::json_fixture("github/merge_group/checks_requested.json");
    let group_head = group["merge_group"]["head_sha"].as_str().unwrap().to_string();
    let mut pull = common::json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    pull["number"] = 104.into();
    pull["labels"] = json!([{ "name": "hotfix" }]);
    pull["body"] = "no reference".into();
    lane.fake.repo(queue_repo, |r| {
        r.pulls.insert(104, pull.clone());
        r.default_branch = Some("main".into());
        r.files.insert(("main".into(), POLICY.into()), RESPONDERS.into());
        r.merge_queue.insert("main".into(), vec![(104, group_head.clone())]);
    });
    // The lane learnt who labelled #104 when it happened.
    let mut labeled = pr_event("labeled", Some("hotfix"), &["hotfix"], "no reference", "Codertocat");
    labeled["pull_request"] = pull.clone();
    labeled["repository"] = group["repository"].clone();
    lane.send("pull_request", labeled).await;

    lane.send("merge_group", group.clone()).await;
    let status = lane.fake.status(queue_repo, &group_head, "hotfix-lane/postmortem").expect("status on the group head");
    assert_eq!((status.state.as_str(), status.description.as_str()), ("failure", "no postmortem referenced"));

    lane.fake.repo(queue_repo, |r| {
        r.pulls.get_mut(&104).unwrap()["body"] = "Postmortem: #9".into();
        r.issues.insert(9, (vec!["postmortem".into()], false));
        // The queue builds a new group for the edited change.
        r.merge_queue.insert("main".into(), vec![(104, "1111111111111111111111111111111111111111".into())]);
    });
    let mut again = group;
    again["merge_group"]["head_sha"] = "1111111111111111111111111111111111111111".into();
    lane.send("merge_group", again).await;
    let status =
        lane.fake.status(queue_repo, "1111111111111111111111111111111111111111", "hotfix-lane/postmortem").unwrap();
    assert_eq!((status.state.as_str(), status.description.as_str()), ("success", "postmortem #9"));
}

async fn the_reconcile_sweep_reports_on_merge_groups_whose_webhook_was_missed(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    serve_pull(&lane, "no reference");
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "no reference", "Codertocat")).await;
    let group_ref = format!("refs/heads/gh-readonly-queue/master/pr-2-{HEAD}");
    let (missed, reported) = ("2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333");
    let mut ahead = common::json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    (ahead["number"], ahead["labels"]) = (3.into(), json!([]));
    lane.fake.repo(REPO, |r| {
        r.queue_refs.push((group_ref.clone(), missed.into()));
        r.queue_refs.push((format!("refs/heads/gh-readonly-queue/master/pr-3-{HEAD}"), reported.into()));
        // #3 is ahead of #2 in the queue; its group has its report already.
        r.pulls.insert(3, ahead);
        r.merge_queue.insert("master".into(), vec![(3, reported.into()), (2, missed.into())]);
        r.statuses.push(common::fake_github::Status {
            sha: reported.into(),
            context: "hotfix-lane/postmortem".into(),
            state: "failure".into(),
            description: "no postmortem referenced".into(),
            by: "ci".into(),
            suite: 0,
        });
    });
    hotfix_lane::dispatch::reconcile(lane.store(), hotfix_lane::lane::event::Forge::Github, NOW).await.unwrap();
    lane.settle().await;
    assert_eq!(lane.status(missed, "hotfix-lane/postmortem"), ("failure".into(), "no postmortem referenced".into()));
    let on_reported = lane.fake.repo(REPO, |r| r.statuses.iter().filter(|s| s.sha == reported).count());
    assert_eq!(on_reported, 1, "a group that has its report is left alone");
}

async fn redelivered_events_never_double_comment(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    let delivery = Delivery::new(
        "pull_request",
        "same-delivery",
        serde_json::to_vec(&pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).unwrap(),
    );
    lane.deliver(&delivery).await;
    lane.deliver(&delivery).await;
    // A different delivery with the same content (GitHub's "redeliver" gives a new id too).
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    assert_eq!(lane.comments().len(), 1);
    let statuses = lane.fake.repo(REPO, |r| r.statuses.len());
    assert_eq!(statuses, 2, "unchanged reports are not posted again");
}

async fn one_hotfix_lifecycle_costs_few_api_calls(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    lane.fake.repo(REPO, |r| r.issues.insert(50, (vec!["postmortem".into()], false)));
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    lane.send("pull_request", pr_event("edited", None, &["hotfix"], "Postmortem: #50", "Codertocat")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem").1, "postmortem #50");
    let calls = lane.fake.take_calls();
    insta::assert_snapshot!("api_calls_label_to_green", calls.join("\n"));
    assert!(calls.len() <= 9, "{calls:#?}");
}

async fn a_label_applied_while_not_listening_is_attributed_by_the_forge(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    lane.fake
        .repo(REPO, |r| r.label_events.push((2, "hotfix".into(), "Codertocat".into(), "2026-11-26T13:00:00Z".into())));
    lane.send("pull_request", pr_event("synchronize", None, &["hotfix"], "", "someone-else")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/lane").1, "hotfix: smoke-only");
    let state = lane.store().lane_state("github", 186853002, 2).await.unwrap().unwrap();
    assert_eq!(state["lane"]["labeler"]["login"], "Codertocat");
}

async fn the_reconcile_sweep_catches_what_webhooks_missed(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    serve_pull(&lane, "Postmortem: #50");
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "Postmortem: #50", "Codertocat")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem").1, "#50 does not exist");
    // The issue appears, but its webhook never arrives.
    lane.fake.repo(REPO, |r| r.issues.insert(50, (vec!["postmortem".into()], false)));
    let queued =
        hotfix_lane::dispatch::reconcile(lane.store(), hotfix_lane::lane::event::Forge::Github, NOW).await.unwrap();
    assert_eq!(queued, 2, "the open change the lane watches, and its repository's merge queue");
    lane.settle().await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem"), ("success".into(), "postmortem #50".into()));
}

async fn a_change_to_the_policy_file_is_validated_on_the_change(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    lane.fake.repo(REPO, |r| {
        r.pull_files.insert(2, vec![POLICY.into(), "README.md".into()]);
        r.files.insert((HEAD.into(), POLICY.into()), "[lane]\nlabell = \"sev1\"\n".into());
    });
    lane.send("pull_request", pr_event("synchronize", None, &[], "", "Codertocat")).await;
    assert_eq!(
        lane.status(HEAD, "hotfix-lane/policy"),
        (
            "failure".into(),
            "policy file invalid: 2:1: unknown field `labell`, expected `label` or `branch_patterns`".into()
        )
    );
    insta::assert_snapshot!("policy_edit_invalid", lane.comments().join("\n---\n"));
    lane.fake.repo(REPO, |r| r.files.insert((HEAD.into(), POLICY.into()), "[lane]\nlabel = \"sev1\"\n".into()));
    lane.send("pull_request", pr_event("synchronize", None, &[], "", "Codertocat")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/policy"), ("success".into(), "policy file valid".into()));
}

/// A throwaway RSA key for the App-mode test, made by the openssl command.
fn app_private_key() -> String {
    let out = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .expect("the openssl command (CI installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

async fn as_a_github_app_it_acts_per_installation_and_reports_check_runs(backend: Backend) {
    let auth = GitHubAuth::App { app_id: 4242, private_key_pem: app_private_key() };
    let lane = Lane::start_as(backend, RESPONDERS, auth).await;
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem"), ("failure".into(), "no postmortem referenced".into()));
    let auth = lane.fake.with(|w| w.auth.clone());
    let (_, jwt) =
        auth.iter().find(|(path, _)| path == "/app/installations/1/access_tokens").expect("a token was bought");
    let claims = jwt.strip_prefix("Bearer ").and_then(|t| t.split('.').nth(1)).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], 4242);
    let repo_calls: Vec<&String> = auth.iter().filter(|(p, _)| p.starts_with("/repos/")).map(|(_, a)| a).collect();
    assert!(!repo_calls.is_empty());
    assert!(repo_calls.iter().all(|a| a.ends_with("ghs_installation_1")), "{repo_calls:?}");
    let calls = lane.fake.take_calls();
    assert!(calls.iter().any(|c| c == "POST /repos/Codertocat/Hello-World/check-runs"), "{calls:?}");
    assert!(!calls.iter().any(|c| c.contains("/statuses/")), "check runs, not statuses, in App mode");
}

async fn the_audit_api_needs_its_token(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    let get = |auth: Option<&str>, query: &str| {
        let mut req = lane.client.get(format!("{}/api/audit{query}", lane.base));
        if let Some(token) = auth {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    assert_eq!(get(Some("anything"), "").await.unwrap().status(), 404, "off without a configured token");
    drop(lane);

    let fake = FakeGitHub::start().await;
    fake.repo(REPO, |r| r.files.insert(("master".into(), POLICY.into()), RESPONDERS.into()));
    let db = TestDb::new(backend).await;
    let mut settings = common::settings(&db);
    settings.github_api_url = fake.url.clone();
    settings.github_auth = Some(GitHubAuth::Token("t".into()));
    settings.admin_token = Some("s3cret-admin".into());
    let server = common::start_server_with(settings, Arc::new(ManualClock::new(NOW))).await;
    let base = base_url(&server);
    let client = reqwest::Client::new();
    let body = serde_json::to_vec(&pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).unwrap();
    assert_eq!(Delivery::new("pull_request", "a1", body).send(&client, &base).await.0, 202);
    let store = server.store.clone();
    eventually("the decision is audited", || async { !store.audit(None, None).await.unwrap().is_empty() }).await;

    let url = |q: &str| format!("{base}/api/audit{q}");
    assert_eq!(client.get(url("")).send().await.unwrap().status(), 401);
    assert_eq!(client.get(url("")).bearer_auth("wrong").send().await.unwrap().status(), 401);
    let entries: Value = client.get(url("")).bearer_auth("s3cret-admin").send().await.unwrap().json().await.unwrap();
    assert_eq!(entries[0]["action"], "lane.hotfix");
    assert_eq!(entries[0]["actor"], "Codertocat");
    assert_eq!(entries[0]["sha"], HEAD);
    let other: Value =
        client.get(url("?repo=acme/other")).bearer_auth("s3cret-admin").send().await.unwrap().json().await.unwrap();
    assert_eq!(other, json!([]));
    assert_eq!(client.get(url("?since=someday")).bearer_auth("s3cret-admin").send().await.unwrap().status(), 400);
}

/// Responders, plus the fixture's check run as the smoke check.
const MERGE_POLICY: &str = "[responders]\nusers = [\"Codertocat\", \"alice\"]\n[merge]\nsmoke_checks = [\"Octocoders-linter\"]\nmethod = \"squash\"\n";

fn check_event(conclusion: &str, sha: &str) -> Value {
    let mut event = common::json_fixture("github/check_run/completed.json");
    event["check_run"]["conclusion"] = conclusion.into();
    event["check_run"]["head_sha"] = sha.into();
    event
}

/// CI reports the smoke check on `sha`: the check run the forge lists, and its webhook.
async fn ci(lane: &Lane, conclusion: &str, sha: &str) {
    lane.fake.post_check_run(REPO, sha, "Octocoders-linter", conclusion, "github-actions");
    lane.send("check_run", check_event(conclusion, sha)).await;
}

/// A hotfix by Codertocat, labelled by the responder alice, naming an existing postmortem:
/// waiting for smoke only.
async fn authorized_hotfix(backend: Backend) -> Lane {
    let lane = Lane::start(backend, MERGE_POLICY).await;
    lane.fake.repo(REPO, |r| r.issues.insert(50, (vec!["postmortem".into()], false)));
    serve_pull(&lane, "Postmortem: #50");
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "Postmortem: #50", "alice")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem").0, "success");
    lane
}

fn merges(lane: &Lane) -> Vec<(u64, String, String)> {
    lane.fake.repo(REPO, |r| r.merges.clone())
}

async fn audit_actions(lane: &Lane) -> Vec<String> {
    lane.store().audit(Some(REPO), None).await.unwrap().into_iter().map(|e| e.action).collect()
}

async fn a_granted_hotfix_merges_when_its_smoke_check_turns_green(backend: Backend) {
    let lane = authorized_hotfix(backend).await;
    assert!(merges(&lane).is_empty(), "not before the smoke check");
    ci(&lane, "failure", HEAD).await;
    assert!(merges(&lane).is_empty(), "not on a red smoke check");
    assert!(lane.comments()[0].contains("smoke checks failed: `Octocoders-linter`"), "{}", lane.comments()[0]);
    ci(&lane, "success", HEAD).await;
    assert_eq!(merges(&lane), vec![(2, HEAD.to_string(), "squash".to_string())], "merged once, pinned to the head");
    insta::assert_snapshot!("merged", lane.comments()[0]);
    // Whatever arrives again, it never merges twice, nor grants again: a `labeled` delivered
    // late shows the change open, which it no longer is.
    ci(&lane, "success", HEAD).await;
    lane.send("pull_request", pr_event("edited", None, &["hotfix"], "Postmortem: #50", "Codertocat")).await;
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "Postmortem: #50", "alice")).await;
    assert_eq!(merges(&lane).len(), 1);
    let actions = audit_actions(&lane).await;
    assert_eq!(actions.iter().filter(|a| *a == "merge.merged").count(), 1, "{actions:?}");
    let once = ["lane.hotfix", "grant.created"].map(|a| actions.iter().filter(|x| *x == a).count());
    assert_eq!(once, [1, 1], "{actions:?}");
    let metrics = lane.client.get(format!("{}/metrics", lane.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("hotfix_lane_grants_total{outcome=\"created\"} 1"), "{metrics}");
    assert!(metrics.contains("hotfix_lane_time_to_merge_seconds_count 1"), "{metrics}");
    assert!(metrics.contains("hotfix_lane_authorization_seconds_count 1"), "{metrics}");
}

async fn a_push_after_the_grant_voids_it(backend: Backend) {
    let lane = authorized_hotfix(backend).await;
    let new_head = "1234567890123456789012345678901234567890";
    let mut push = pr_event("synchronize", None, &["hotfix"], "Postmortem: #50", "Codertocat");
    push["pull_request"]["head"]["sha"] = new_head.into();
    lane.send("pull_request", push).await;
    ci(&lane, "success", new_head).await;
    assert!(merges(&lane).is_empty(), "the grant covered the old commit only");
    assert!(lane.comments()[0].contains("new commits since the authorization"), "{}", lane.comments()[0]);
    assert!(audit_actions(&lane).await.contains(&"grant.voided".to_string()));
    // Re-authorized for the new commit, it merges.
    let mut pull = lane.fake.repo(REPO, |r| r.pulls[&2].clone());
    pull["head"]["sha"] = new_head.into();
    lane.fake.repo(REPO, |r| r.pulls.insert(2, pull));
    lane.send("issue_comment", comment_event("/hotfix authorize 1h db failover", "alice")).await;
    assert_eq!(merges(&lane), vec![(2, new_head.to_string(), "squash".to_string())]);
}

async fn an_expired_grant_does_not_merge(backend: Backend) {
    let lane = authorized_hotfix(backend).await;
    lane.clock.advance(4 * 3600 * 1000 + 1);
    ci(&lane, "success", HEAD).await;
    assert!(merges(&lane).is_empty());
    assert!(lane.comments()[0].contains("the authorization expired"), "{}", lane.comments()[0]);
}

async fn a_revoked_grant_does_not_merge(backend: Backend) {
    let lane = authorized_hotfix(backend).await;
    lane.send("issue_comment", comment_event("/hotfix revoke", "alice")).await;
    ci(&lane, "success", HEAD).await;
    assert!(merges(&lane).is_empty());
    assert!(audit_actions(&lane).await.contains(&"grant.revoked".to_string()));
}

async fn only_responders_authorize_and_edits_never_do(backend: Backend) {
    let lane = authorized_hotfix(backend).await;
    lane.send("issue_comment", comment_event("/hotfix revoke", "mallory")).await;
    let refusal = lane.comments().into_iter().find(|c| c.contains("hotfix-lane:refused")).expect("a refusal comment");
    assert!(
        refusal.contains(
            "@mallory is not a responder. Responders who can put a change in the lane: `@Codertocat`, `@alice`."
        ),
        "{refusal}"
    );
    lane.send("issue_comment", comment_event("/hotfix revoke", "alice")).await;
    let mut edited = comment_event("/hotfix authorize", "alice");
    edited["action"] = "edited".into();
    lane.send("issue_comment", edited).await;
    ci(&lane, "success", HEAD).await;
    assert!(merges(&lane).is_empty(), "an edited comment grants nothing");
}

async fn forks_need_the_policy_to_opt_in(backend: Backend) {
    let lane = Lane::start(backend, MERGE_POLICY).await;
    let mut event = pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat");
    event["pull_request"]["head"]["repo"]["id"] = 999.into();
    lane.send("pull_request", event).await;
    let actions = audit_actions(&lane).await;
    assert!(actions.contains(&"grant.refused".to_string()), "{actions:?}");
}

async fn a_moved_base_is_retried_and_a_refusal_explained(backend: Backend) {
    let lane = authorized_hotfix(backend).await;
    lane.fake.repo(REPO, |r| {
        r.merge_answers.push_back((409, "Head branch was modified. Review and try the merge again.".into()))
    });
    ci(&lane, "success", HEAD).await;
    assert!(merges(&lane).is_empty());
    assert!(
        lane.comments()[0].contains("GitHub refused to merge `ec26c3e`: Head branch was modified."),
        "{}",
        lane.comments()[0]
    );
    assert!(audit_actions(&lane).await.contains(&"merge.refused".to_string()));

    let lane = authorized_hotfix(Backend::Sqlite).await;
    lane.fake.repo(REPO, |r| {
        r.merge_answers.push_back((405, "Base branch was modified. Review and try the merge again.".into()))
    });
    lane.fake.post_check_run(REPO, HEAD, "Octocoders-linter", "success", "github-actions");
    let delivery = Delivery::new("check_run", "moved-base", serde_json::to_vec(&check_event("success", HEAD)).unwrap());
    assert_eq!(delivery.send(&lane.client, &lane.base).await.0, 202);
    let store = lane.store().clone();
    eventually("the merge is deferred", || async {
        store
            .jobs_in_state("queued")
            .await
            .unwrap()
            .iter()
            .any(|j| j.last_error.as_deref() == Some("the base branch moved during the merge"))
    })
    .await;
    lane.clock.advance(6_000);
    eventually("the retry merges", || async { !merges(&lane).is_empty() }).await;
    assert_eq!(merges(&lane).len(), 1);
}

async fn a_merge_queue_branch_gets_the_hotfix_at_its_front(backend: Backend) {
    let lane = authorized_hotfix(backend).await;
    let rule = "Repository rule violations found\n\nChanges must be made through the merge queue";
    lane.fake.repo(REPO, |r| r.merge_answers.push_back((405, rule.into())));
    ci(&lane, "success", HEAD).await;
    let enqueued = lane.fake.with(|w| w.enqueued.clone());
    assert_eq!(enqueued, vec![("PR_Codertocat_Hello-World_2".to_string(), HEAD.to_string(), true)]);
    assert!(lane.comments()[0].contains("`ec26c3e` is at the front of the merge queue"), "{}", lane.comments()[0]);
    ci(&lane, "success", HEAD).await;
    assert_eq!(lane.fake.with(|w| w.enqueued.len()), 1, "never enqueued twice");
    assert!(audit_actions(&lane).await.contains(&"merge.enqueued".to_string()));
}

/// The common case during an incident: the fix is pushed, CI goes green, then a responder says
/// "ship it". The lane reads the commit's checks when the grant arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hotfix_whose_ci_went_green_before_the_label_merges_when_a_responder_labels_it() {
    let lane = Lane::start(Backend::Sqlite, MERGE_POLICY).await;
    lane.fake.repo(REPO, |r| r.issues.insert(50, (vec!["postmortem".into()], false)));
    serve_pull(&lane, "Postmortem: #50");
    ci(&lane, "success", HEAD).await;
    assert!(merges(&lane).is_empty(), "not in the lane yet");
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "Postmortem: #50", "alice")).await;
    assert_eq!(merges(&lane), vec![(2, HEAD.to_string(), "squash".to_string())]);
}

/// Stored facts that no longer read stop the change's jobs with the reason, instead of being
/// taken for a change never seen (which would forget its grant's lapse or its merge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_state_that_does_not_read_fails_its_job_loudly() {
    let lane = Lane::start(Backend::Sqlite, RESPONDERS).await;
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    let db = sqlx::SqlitePool::connect(&lane._db.url).await.unwrap();
    sqlx::query("UPDATE lane_state SET state = '{\"number\": \"two\"}'").execute(&db).await.unwrap();
    let body = serde_json::to_vec(&pr_event("edited", None, &["hotfix"], "", "Codertocat")).unwrap();
    assert_eq!(Delivery::new("pull_request", "unreadable", body).send(&lane.client, &lane.base).await.0, 202);
    let store = lane.store().clone();
    eventually("the job fails with the reason", || async {
        store
            .jobs_in_state("queued")
            .await
            .unwrap()
            .iter()
            .any(|j| j.last_error.as_deref().is_some_and(|e| e.contains("the stored lane state of #2 does not read")))
    })
    .await;
}

/// A secondary rate limit answers `Retry-After: 1`: the job waits a second, not until the end
/// of the hourly window that `x-ratelimit-reset` names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_rate_limit_waits_for_retry_after_not_the_hourly_reset() {
    let lane = Lane::start(Backend::Sqlite, RESPONDERS).await;
    lane.fake.with(|w| w.throttled.push(("/statuses/".into(), 1)));
    let body = serde_json::to_vec(&pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).unwrap();
    assert_eq!(Delivery::new("pull_request", "throttled", body).send(&lane.client, &lane.base).await.0, 202);
    let store = lane.store().clone();
    eventually("the job is deferred", || async {
        store.jobs_in_state("queued").await.unwrap().iter().any(|j| j.last_error.is_some())
    })
    .await;
    lane.clock.advance(2_000);
    eventually("the retry reports", || async { lane.fake.status(REPO, HEAD, "hotfix-lane/lane").is_some() }).await;
}

/// A job posts its reports, then fails (the comment's POST answers 502) and is retried: the
/// retry posts the comment, not the same reports a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_job_does_not_post_its_reports_again() {
    let lane = Lane::start(Backend::Sqlite, RESPONDERS).await;
    lane.fake.with(|w| w.failures.push(("POST /repos/Codertocat/Hello-World/issues/2/comments".into(), 502)));
    let body = serde_json::to_vec(&pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).unwrap();
    assert_eq!(Delivery::new("pull_request", "retried", body).send(&lane.client, &lane.base).await.0, 202);
    let store = lane.store().clone();
    eventually("the first attempt fails", || async {
        store.jobs_in_state("queued").await.unwrap().iter().any(|j| j.last_error.is_some())
    })
    .await;
    lane.clock.advance(10 * 60 * 1000);
    eventually("the retry comments", || async { !lane.comments().is_empty() }).await;
    lane.settle().await;
    let posted =
        lane.fake.take_calls().into_iter().filter(|c| c.starts_with("POST") && c.contains("/statuses/")).count();
    assert_eq!(posted, 2, "hotfix-lane/lane and hotfix-lane/postmortem, once each");
}

/// Two `serve` replicas on one PostgreSQL, each receiving its own copy of the green smoke check
/// at the same moment: the change is merged exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_racing_merge_once() {
    let lane = authorized_hotfix(Backend::Postgres).await;
    let mut settings = common::settings(&lane._db);
    settings.github_api_url = lane.fake.url.clone();
    settings.github_auth = Some(GitHubAuth::Token("test-token".into()));
    let second = common::start_server_with(settings, lane.clock.clone()).await;
    let second_base = base_url(&second);
    lane.fake.post_check_run(REPO, HEAD, "Octocoders-linter", "success", "github-actions");
    let body = serde_json::to_vec(&check_event("success", HEAD)).unwrap();
    let (a, b) = (Delivery::new("check_run", "race-a", body.clone()), Delivery::new("check_run", "race-b", body));
    let (ra, rb) = tokio::join!(a.send(&lane.client, &lane.base), b.send(&lane.client, &second_base));
    assert_eq!((ra.0, rb.0), (202, 202));
    lane.settle().await;
    assert_eq!(merges(&lane).len(), 1, "merged exactly once");
    let actions = audit_actions(&lane).await;
    assert_eq!(actions.iter().filter(|a| *a == "merge.merged").count(), 1, "{actions:?}");
    second.shutdown().await.unwrap();
}

on_both_backends!(
    the_reconcile_sweep_reports_on_merge_groups_whose_webhook_was_missed,
    a_merge_queue_branch_gets_the_hotfix_at_its_front,
    a_granted_hotfix_merges_when_its_smoke_check_turns_green,
    a_push_after_the_grant_voids_it,
    an_expired_grant_does_not_merge,
    a_revoked_grant_does_not_merge,
    only_responders_authorize_and_edits_never_do,
    forks_need_the_policy_to_opt_in,
    a_moved_base_is_retried_and_a_refusal_explained,
    the_audit_api_needs_its_token,
    as_a_github_app_it_acts_per_installation_and_reports_check_runs,
    a_change_to_the_policy_file_is_validated_on_the_change,
    a_label_applied_while_not_listening_is_attributed_by_the_forge,
    the_reconcile_sweep_catches_what_webhooks_missed,
    slash_postmortem_opens_and_links_the_issue_once,
    a_retried_postmortem_command_finds_the_issue_it_opened,
    only_responders_and_the_author_open_postmortems,
    the_policy_can_open_the_postmortem_when_the_label_is_applied,
    a_normal_pull_request_passes_without_a_comment,
    a_hotfix_without_a_postmortem_is_blocked_until_the_issue_exists,
    each_bad_reference_has_its_own_message,
    a_label_from_a_non_responder_is_refused_and_explained,
    a_team_member_is_a_responder,
    an_invalid_policy_is_reported_and_the_last_good_one_kept,
    the_merge_queue_enforces_the_postmortem_check,
    redelivered_events_never_double_comment,
    one_hotfix_lifecycle_costs_few_api_calls,
);
