//! Every GitLab capture and hand-made shape through the parser.

use serde_json::{json, Value};

use super::*;
use crate::lane::event::{CheckSuite, Comment, Issue, MergeGroup, PullRequest};

fn fixture(rel: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitlab").join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_fixture(rel: &str) -> Value {
    serde_json::from_slice(&fixture(rel)).unwrap()
}

fn envelope(body: &[u8]) -> Envelope {
    parse(body).expect("parses").expect("an event the lane reads")
}

fn of(value: &Value) -> Envelope {
    envelope(&serde_json::to_vec(value).unwrap())
}

fn pull(env: &Envelope) -> (PullRequestAction, &PullRequest, Option<&str>, &[String]) {
    match &env.event {
        Event::PullRequest { action, pull, label, also_added } => (*action, pull, label.as_deref(), also_added),
        other => panic!("not a pull request event: {other:?}"),
    }
}

fn hello_world() -> RepoRef {
    RepoRef { id: 4861503, full_name: "gitlab-org/hello-world".into(), default_branch: "master".into() }
}

fn sytses() -> Actor {
    // The 2017 deliveries name the user without an id.
    Actor { id: 0, login: "sytses".into() }
}

#[test]
fn every_fixture_is_covered_here() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitlab");
    let mut on_disk = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        for file in std::fs::read_dir(&dir).unwrap() {
            let name = file.unwrap().file_name().to_string_lossy().to_string();
            on_disk.push(format!("{}/{name}", dir.file_name().unwrap().to_string_lossy()));
        }
    }
    on_disk.sort();
    let mut covered = vec![
        "issue/open.json",
        "issue/update.labels.json",
        "merge_request/close.json",
        "merge_request/merge.json",
        "merge_request/open.json",
        "merge_request/open.with-label-changes.json",
        "merge_request/reopen.json",
        "merge_request/update.draft-toggle.json",
        "merge_request/update.json",
        "note/merge_request.diff-note.json",
        "note/merge_request.json",
        "pipeline/success.json",
        "push/push.json",
    ];
    covered.sort();
    assert_eq!(on_disk, covered);
}

#[test]
fn merge_request_open_close_reopen_and_merge() {
    for (file, action, state) in [
        ("open.json", PullRequestAction::Opened, ItemState::Open),
        ("close.json", PullRequestAction::Closed, ItemState::Closed),
        ("reopen.json", PullRequestAction::Reopened, ItemState::Open),
        ("merge.json", PullRequestAction::Closed, ItemState::Merged),
    ] {
        let env = envelope(&fixture(&format!("merge_request/{file}")));
        assert_eq!(env.forge, Forge::Gitlab);
        assert_eq!(env.repo, Some(hello_world()), "{file}");
        assert_eq!(env.sender, sytses(), "{file}");
        assert_eq!(env.installation_id, None);
        let (got, pr, label, also) = pull(&env);
        assert_eq!((got, pr.state), (action, state), "{file}");
        assert_eq!((label, also.len()), (None, 0), "{file}");
        assert_eq!(pr.number, 1);
        assert_eq!(pr.title, "update readme");
        assert_eq!(pr.body, "adding build instructions to readme");
        // `user` has no id, so it cannot be shown to be the author: the lane asks the API.
        assert_eq!(pr.author, Actor { id: 51764, login: String::new() });
        assert_eq!((pr.head_ref.as_str(), pr.base_ref.as_str()), ("feature", "master"));
        assert!(!pr.from_fork && !pr.draft);
        assert_eq!(pr.merged, state == ItemState::Merged, "{file}");
        assert!(pr.labels.is_empty());
    }
    let merge = envelope(&fixture("merge_request/merge.json"));
    assert_eq!(pull(&merge).1.merge_commit_sha.as_deref(), Some("78a76ee6b4992a6baf64c59fc4c44c7323d60438"));
    let open = envelope(&fixture("merge_request/open.json"));
    assert_eq!(pull(&open).1.head_sha, "c4c79227ed610f1151f05bbc5be33b4f340d39c8");
    assert_eq!(pull(&open).1.merge_commit_sha, None);
}

#[test]
fn merge_request_docs_example_reads_labels_fork_and_user_id() {
    let env = envelope(&fixture("merge_request/open.with-label-changes.json"));
    assert_eq!(
        env.repo,
        Some(RepoRef { id: 1, full_name: "gitlabhq/gitlab-test".into(), default_branch: "master".into() })
    );
    assert_eq!(env.sender, Actor { id: 1, login: "user1".into() });
    let (action, pr, label, _) = pull(&env);
    // `open` stays `Opened` even though this example carries a label change.
    assert_eq!((action, label), (PullRequestAction::Opened, None));
    assert_eq!(pr.labels, ["API"]);
    assert_eq!(pr.head_sha, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
    // Author 51 is not the acting user 1: no login is claimed for them.
    assert_eq!(pr.author, Actor { id: 51, login: String::new() });
    assert_eq!((pr.number, pr.head_ref.as_str()), (1, "ms-viewport"));
    assert!(!pr.from_fork, "source and target project ids are both 14");
}

#[test]
fn merge_request_update_with_oldrev_is_a_push() {
    let env = envelope(&fixture("merge_request/update.json"));
    assert_eq!(env.repo, Some(RepoRef { id: 2, full_name: "test/woodpecker".into(), default_branch: "master".into() }));
    assert_eq!(env.sender, Actor { id: 2, login: "test".into() });
    let (action, pr, label, _) = pull(&env);
    assert_eq!((action, label), (PullRequestAction::Synchronize, None));
    assert_eq!(pr.head_sha, "0ab96a10266b95b4b533dcfd98738015fbe70889");
    assert_eq!(pr.author, Actor { id: 2, login: "test".into() }, "the acting user is the author");
    assert_eq!((pr.number, pr.title.as_str(), pr.body.as_str()), (2, "Update client.go 🎉", ""));
    assert_eq!((pr.head_ref.as_str(), pr.base_ref.as_str()), ("next-feature", "master"));
}

/// The `update` fixture without its push, with `changes.labels` from `previous` to `current`.
fn label_update(previous: &[&str], current: &[&str], keep_oldrev: bool) -> Value {
    let mut hook = json_fixture("merge_request/update.json");
    if !keep_oldrev {
        hook["object_attributes"].as_object_mut().unwrap().remove("oldrev");
    }
    let labels = |titles: &[&str]| titles.iter().map(|t| json!({"id": 1, "title": t})).collect::<Vec<_>>();
    hook["changes"]["labels"] = json!({"previous": labels(previous), "current": labels(current)});
    hook["labels"] = json!(labels(current));
    hook
}

#[test]
fn adding_hotfix_alone_is_labeled_hotfix() {
    let env = of(&label_update(&["backend"], &["backend", "hotfix"], false));
    let (action, pr, label, also) = pull(&env);
    assert_eq!((action, label, also), (PullRequestAction::Labeled, Some("hotfix"), &[][..]));
    assert_eq!(pr.labels, ["backend", "hotfix"]);
}

#[test]
fn adding_two_labels_at_once_reports_the_second_in_also_added() {
    let env = of(&label_update(&[], &["urgent", "hotfix"], false));
    let (action, _, label, also) = pull(&env);
    assert_eq!((action, label), (PullRequestAction::Labeled, Some("urgent")));
    assert_eq!(also, ["hotfix"]);
}

#[test]
fn removing_hotfix_is_unlabeled_hotfix() {
    let env = of(&label_update(&["hotfix", "backend"], &["backend"], false));
    let (action, pr, label, also) = pull(&env);
    assert_eq!((action, label, also.len()), (PullRequestAction::Unlabeled, Some("hotfix"), 0));
    assert_eq!(pr.labels, ["backend"]);
}

#[test]
fn label_names_are_compared_case_sensitively() {
    let env = of(&label_update(&["Hotfix"], &["hotfix"], false));
    assert_eq!(pull(&env).2, Some("hotfix"));
    assert_eq!(pull(&env).0, PullRequestAction::Labeled);
}

#[test]
fn a_push_that_also_changes_labels_is_a_push() {
    let env = of(&label_update(&[], &["hotfix"], true));
    let (action, _, label, also) = pull(&env);
    assert_eq!((action, label, also.len()), (PullRequestAction::Synchronize, None, 0));
}

#[test]
fn an_empty_oldrev_is_no_push_and_unchanged_labels_are_an_edit() {
    let mut hook = label_update(&["hotfix"], &["hotfix"], false);
    hook["object_attributes"]["oldrev"] = json!("");
    assert_eq!(pull(&of(&hook)).0, PullRequestAction::Edited);
    let mut retarget = json_fixture("merge_request/update.json");
    retarget["object_attributes"].as_object_mut().unwrap().remove("oldrev");
    retarget["changes"] = json!({"target_branch": {"previous": "main", "current": "release-1"}});
    assert_eq!(pull(&of(&retarget)).0, PullRequestAction::Edited);
    retarget["changes"] = json!({});
    assert_eq!(pull(&of(&retarget)).0, PullRequestAction::Edited);
}

#[test]
fn draft_toggle_is_an_edit_of_a_draft() {
    let env = envelope(&fixture("merge_request/update.draft-toggle.json"));
    assert_eq!(
        env.repo,
        Some(RepoRef { id: 44067058, full_name: "rathod.meetsatish/meet".into(), default_branch: "main".into() })
    );
    assert_eq!(env.sender, Actor { id: 13900456, login: "rathod.meetsatish".into() });
    let (action, pr, label, _) = pull(&env);
    assert_eq!((action, label), (PullRequestAction::Edited, None));
    assert!(pr.draft);
    assert_eq!((pr.number, pr.title.as_str()), (3, "Draft: Update README.md"));
    assert_eq!(pr.head_sha, "ffd71529ecdfb41a530ee13f91b8fdd3e743c754");
    assert_eq!(pr.author, Actor { id: 13900456, login: "rathod.meetsatish".into() });
    // Old deliveries say `work_in_progress` only.
    let mut old = json_fixture("merge_request/update.draft-toggle.json");
    old["object_attributes"].as_object_mut().unwrap().remove("draft");
    assert!(pull(&of(&old)).1.draft);
}

#[test]
fn approvals_and_unknown_actions_parse_and_are_not_actionable() {
    for action in ["approval", "approved", "unapproval", "unapproved", "something_new"] {
        let mut hook = json_fixture("merge_request/open.json");
        hook["object_attributes"]["action"] = json!(action);
        let env = of(&hook);
        assert_eq!(pull(&env).0, PullRequestAction::Unknown, "{action}");
        assert!(!env.is_actionable(), "{action}");
    }
}

#[test]
fn a_merge_without_an_action_is_closed_and_merged() {
    let mut hook = json_fixture("merge_request/merge.json");
    hook["object_attributes"].as_object_mut().unwrap().remove("action");
    let env = of(&hook);
    let (action, pr, ..) = pull(&env);
    assert_eq!((action, pr.state, pr.merged), (PullRequestAction::Closed, ItemState::Merged, true));
    let mut open = json_fixture("merge_request/open.json");
    open["object_attributes"].as_object_mut().unwrap().remove("action");
    assert_eq!(pull(&of(&open)).0, PullRequestAction::Unknown);
}

#[test]
fn a_merge_request_from_a_fork_says_so() {
    let mut hook = json_fixture("merge_request/open.json");
    hook["object_attributes"]["source_project_id"] = json!(99);
    assert!(pull(&of(&hook)).1.from_fork);
}

fn comment(env: &Envelope) -> (CommentAction, u64, bool, &Comment) {
    match &env.event {
        Event::Comment { action, number, on_pull_request, comment } => (*action, *number, *on_pull_request, comment),
        other => panic!("not a comment: {other:?}"),
    }
}

#[test]
fn notes_on_a_merge_request_are_comments_on_it() {
    for (file, id) in [("merge_request.json", 50772616), ("merge_request.diff-note.json", 50772639)] {
        let env = envelope(&fixture(&format!("note/{file}")));
        assert_eq!(env.repo, Some(hello_world()));
        // No `user.id` in 2017: the note's `author_id` names them.
        let author = Actor { id: 51764, login: "sytses".into() };
        assert_eq!(env.sender, author);
        let (action, number, on_pr, c) = comment(&env);
        assert_eq!((action, number, on_pr), (CommentAction::Created, 1, true), "{file}");
        assert_eq!((c.id, &c.author), (id, &author), "{file}");
        if file == "merge_request.json" {
            assert_eq!(c.body, "lgtm");
        }
    }
}

#[test]
fn a_note_on_an_issue_is_a_comment_on_the_issue() {
    let mut hook = json_fixture("note/merge_request.json");
    hook["object_attributes"]["noteable_type"] = json!("Issue");
    hook.as_object_mut().unwrap().remove("merge_request");
    hook["issue"] = json!({"id": 8131350, "iid": 7, "title": "found a bug"});
    hook["object_attributes"]["action"] = json!("update");
    let (action, number, on_pr, _) = comment(&of(&hook));
    assert_eq!((action, number, on_pr), (CommentAction::Edited, 7, false));
}

#[test]
fn notes_on_commits_and_snippets_and_system_notes_are_ignored() {
    for noteable in ["Commit", "Snippet"] {
        let mut hook = json_fixture("note/merge_request.json");
        hook["object_attributes"]["noteable_type"] = json!(noteable);
        hook.as_object_mut().unwrap().remove("merge_request");
        assert!(parse(&serde_json::to_vec(&hook).unwrap()).unwrap().is_none(), "{noteable}");
    }
    let mut system = json_fixture("note/merge_request.json");
    system["object_attributes"]["system"] = json!(true);
    assert!(parse(&serde_json::to_vec(&system).unwrap()).unwrap().is_none());
}

fn issue(env: &Envelope) -> (IssueAction, &Issue, Option<&str>) {
    match &env.event {
        Event::Issue { action, issue, label } => (*action, issue, label.as_deref()),
        other => panic!("not an issue: {other:?}"),
    }
}

#[test]
fn issues_open_and_get_labeled() {
    let open = envelope(&fixture("issue/open.json"));
    assert_eq!((open.repo.clone(), open.sender.clone()), (Some(hello_world()), sytses()));
    let (action, i, label) = issue(&open);
    assert_eq!((action, label), (IssueAction::Opened, None));
    assert_eq!(
        i,
        &Issue {
            number: 1,
            title: "found a bug".into(),
            body: "everything is broken".into(),
            state: ItemState::Open,
            labels: vec![],
            is_pull_request: false
        }
    );
    let labeled = envelope(&fixture("issue/update.labels.json"));
    let (action, i, label) = issue(&labeled);
    assert_eq!((action, label), (IssueAction::Labeled, Some("critical")));
    assert_eq!(i.labels, ["critical"]);

    let mut unlabeled = json_fixture("issue/update.labels.json");
    let change = unlabeled["changes"]["labels"].clone();
    unlabeled["changes"]["labels"] = json!({"previous": change["current"], "current": []});
    unlabeled["labels"] = json!([]);
    assert_eq!(issue(&of(&unlabeled)).0, IssueAction::Unlabeled);
    assert_eq!(issue(&of(&unlabeled)).2, Some("critical"));

    let mut edited = json_fixture("issue/update.labels.json");
    edited["changes"] = json!({"title": {"previous": "a", "current": "b"}});
    assert_eq!(issue(&of(&edited)).0, IssueAction::Edited);
    let mut closed = json_fixture("issue/open.json");
    closed["object_attributes"]["action"] = json!("close");
    closed["object_attributes"]["state"] = json!("closed");
    assert_eq!((issue(&of(&closed)).0, issue(&of(&closed)).1.state), (IssueAction::Closed, ItemState::Closed));
}

#[test]
fn incident_work_items_are_issues_and_tasks_are_not() {
    let mut incident = json_fixture("issue/open.json");
    incident["object_kind"] = json!("work_item");
    incident["object_attributes"]["type"] = json!("Incident");
    incident["object_attributes"]["confidential"] = json!(true);
    let env = of(&incident);
    assert_eq!(issue(&env).0, IssueAction::Opened);
    assert_eq!(issue(&env).1.number, 1);
    incident["object_attributes"]["type"] = json!("Task");
    assert!(parse(&serde_json::to_vec(&incident).unwrap()).unwrap().is_none());
}

#[test]
fn a_branch_pipeline_is_a_check_suite() {
    let env = envelope(&fixture("pipeline/success.json"));
    assert_eq!(
        env.repo,
        Some(RepoRef { id: 1, full_name: "gitlab-org/gitlab-test".into(), default_branch: "master".into() })
    );
    assert_eq!(env.sender, Actor { id: 42, login: "user1".into() });
    let Event::CheckSuite { action, suite } = &env.event else { panic!("{:?}", env.event) };
    assert_eq!(*action, CheckAction::Completed);
    assert_eq!(
        suite,
        &CheckSuite {
            head_sha: "bcbb5ec396a2c0f828686f14fac9b80b780504f2".into(),
            head_branch: Some("master".into()),
            status: CheckStatus::Completed,
            conclusion: Some(CheckConclusion::Success),
            pull_numbers: vec![1],
        }
    );
    let mut running = json_fixture("pipeline/success.json");
    running["object_attributes"]["status"] = json!("running");
    running.as_object_mut().unwrap().remove("merge_request");
    let Event::CheckSuite { action, suite } = of(&running).event else { panic!() };
    assert_eq!((action, suite.status, suite.conclusion), (CheckAction::Requested, CheckStatus::InProgress, None));
    assert!(suite.pull_numbers.is_empty());
    for (status, conclusion) in [
        ("failed", CheckConclusion::Failure),
        ("canceled", CheckConclusion::Cancelled),
        ("skipped", CheckConclusion::Skipped),
    ] {
        running["object_attributes"]["status"] = json!(status);
        let Event::CheckSuite { action, suite } = of(&running).event else { panic!() };
        assert_eq!((action, suite.conclusion), (CheckAction::Completed, Some(conclusion)), "{status}");
    }
}

#[test]
fn a_merge_train_pipeline_is_a_merge_group() {
    let mut train = json_fixture("pipeline/success.json");
    train["object_attributes"]["ref"] = json!("refs/merge-requests/1/train");
    train["object_attributes"]["status"] = json!("pending");
    let env = of(&train);
    assert_eq!(
        env.event,
        Event::MergeGroup {
            action: MergeGroupAction::ChecksRequested,
            group: MergeGroup {
                head_sha: "bcbb5ec396a2c0f828686f14fac9b80b780504f2".into(),
                head_ref: "refs/merge-requests/1/train".into(),
                base_ref: "master".into(),
            },
        }
    );
    train["object_attributes"]["status"] = json!("success");
    let Event::MergeGroup { action, .. } = of(&train).event else { panic!() };
    assert_eq!(action, MergeGroupAction::Unknown);
    // Merged-results and detached refs are ordinary pipelines.
    train["object_attributes"]["ref"] = json!("refs/merge-requests/1/merge");
    assert!(matches!(of(&train).event, Event::CheckSuite { .. }));
}

#[test]
fn pushes_create_and_delete_branches() {
    let env = envelope(&fixture("push/push.json"));
    assert_eq!(env.repo, Some(hello_world()));
    assert_eq!(env.sender, Actor { id: 51764, login: "sytses".into() });
    assert_eq!(
        env.event,
        Event::Push {
            git_ref: "refs/heads/master".into(),
            before: "0000000000000000000000000000000000000000".into(),
            after: "2adc9465c4edfc33834e173fe89436a7cb899a1d".into(),
            created: true,
            deleted: false,
            forced: false,
        }
    );
    let mut delete = json_fixture("push/push.json");
    delete["before"] = json!("2adc9465c4edfc33834e173fe89436a7cb899a1d");
    delete["after"] = json!("0000000000000000000000000000000000000000");
    let Event::Push { created, deleted, .. } = of(&delete).event else { panic!() };
    assert_eq!((created, deleted), (false, true));
    delete["object_kind"] = json!("tag_push");
    assert!(parse(&serde_json::to_vec(&delete).unwrap()).unwrap().is_none());
}

#[test]
fn bodies_that_are_not_events_are_told_apart_from_bad_shapes() {
    assert!(matches!(parse(b"not json"), Err(PayloadError::NotJson(_))));
    assert!(matches!(parse(b"[1,2]"), Err(PayloadError::NotAnEvent(_))));
    assert!(matches!(parse(br#"{"event_name":"project_create"}"#), Err(PayloadError::NotAnEvent(_))));
    assert!(matches!(parse(br#"{"object_kind":"feature_flag"}"#), Ok(None)));
    let err = parse(br#"{"object_kind":"merge_request","object_attributes":{"iid":"seven"}}"#).unwrap_err();
    assert!(matches!(&err, PayloadError::WrongShape { kind, .. } if kind == "merge_request"), "{err}");
    let mut huge = json_fixture("merge_request/open.json");
    huge["project"]["id"] = json!(u64::MAX);
    assert!(matches!(parse(&serde_json::to_vec(&huge).unwrap()), Err(PayloadError::WrongShape { .. })));
}

#[test]
fn every_listed_kind_is_read() {
    for kind in KINDS {
        let body = format!(r#"{{"object_kind":"{kind}"}}"#);
        assert!(matches!(parse(body.as_bytes()), Err(PayloadError::WrongShape { .. })), "{kind}");
    }
}
