//! The lane on GitLab where GitLab differs: merge trains, the head pipeline that gates the
//! merge, who may post what. The rules both forges share run in `tests/lane.rs`.

mod common;

use common::gitlab::{GitLabDriver, PROJECT};
use common::scenario::{Change, NewChange, Scenario, Source, State, POSTMORTEM};
use common::Backend;

/// alice and bob are responders; `smoke` must come from GitLab CI.
const POLICY: &str =
    "[responders]\nusers = [\"alice\", \"bob\"]\n[merge]\nsmoke_checks = [{ name = \"smoke\", app = \"gitlab-ci\" }]\n";
const CI: Source = Source::App("gitlab-ci");

/// codertocat's fix naming postmortem #50, labelled (and so authorized) by alice.
async fn authorized(backend: Backend) -> (Scenario<GitLabDriver>, Change) {
    let mut s = Scenario::<GitLabDriver>::start(backend, POLICY).await;
    s.open_issue(50, &["postmortem"], "alice").await;
    let mr = s.open(NewChange::by("codertocat").body("Postmortem: #50")).await;
    s.label(mr, "hotfix", "alice").await;
    assert_eq!(s.expect_check(mr, POSTMORTEM, State::Success), "postmortem #50");
    s.allow_unread_comments("these tests are about what reaches GitLab, not the comment");
    (s, mr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hotfix_skips_the_merge_train_where_the_project_allows_it() {
    let (mut s, mr) = authorized(Backend::Sqlite).await;
    s.forge.fake.project(PROJECT, |p| (p.merge_trains_enabled, p.merge_trains_skip_train_allowed) = (true, true));
    let head = s.head(mr);
    s.report(mr, "smoke", State::Success, CI).await;
    let merges = s.forge.fake.merges();
    assert_eq!(merges.len(), 1, "{merges:?}");
    assert!(merges[0].skip_merge_train, "merged past the train, which is not restarted");
    assert_eq!(merges[0].sha.as_deref(), Some(head.as_str()), "pinned to the authorized head");
    assert!(s.forge.fake.train_adds().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_train_enforcement_a_hotfix_joins_the_train_pinned_to_its_head() {
    let (mut s, mr) = authorized(Backend::Sqlite).await;
    s.require_merge_queue("main");
    let head = s.head(mr);
    s.report(mr, "smoke", State::Success, CI).await;
    assert!(s.forge.fake.merges().is_empty(), "GitLab refuses a direct merge under enforcement");
    let adds = s.forge.fake.train_adds();
    assert_eq!(adds.len(), 1, "{adds:?}");
    assert_eq!(adds[0].sha.as_deref(), Some(head.as_str()));
    assert!(adds[0].auto_merge, "merged once its train pipeline passes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_a_green_smoke_status_as_a_developer_does_not_count_for_a_ci_pinned_check() {
    let (mut s, mr) = authorized(Backend::Sqlite).await;
    s.report(mr, "smoke", State::Success, Source::User("mallory")).await;
    assert!(s.forge.fake.merges().is_empty(), "a commit status is not a GitLab CI job");
    s.report(mr, "smoke", State::Success, CI).await;
    assert_eq!(s.forge.fake.merges().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerunning_the_pipeline_does_not_leave_the_new_head_pipeline_without_the_postmortem_verdict() {
    let mut s = Scenario::<GitLabDriver>::start(Backend::Sqlite, POLICY).await;
    let mr = s.open(NewChange::by("codertocat").body("Fix the outage.")).await;
    s.label(mr, "hotfix", "alice").await;
    assert_eq!(s.expect_check(mr, POSTMORTEM, State::Failure), "no postmortem referenced");
    s.allow_unread_comments("this test is about the statuses in each pipeline");
    let first = s.forge.fake.head_pipeline(PROJECT, mr.0).expect("the status made a pipeline");
    // A new pipeline on the same commit becomes the head pipeline: "Pipelines must succeed"
    // looks only there, so the failing verdict must be posted into it too.
    let head = s.head(mr);
    let newest = s.forge.run_pipeline(mr).await;
    assert_ne!(newest, first);
    assert_eq!(s.forge.fake.head_pipeline(PROJECT, mr.0), Some(newest));
    let in_newest = s
        .forge
        .fake
        .statuses()
        .into_iter()
        .any(|st| st.sha == head && st.name == POSTMORTEM && st.pipeline_id == newest && st.state == "failed");
    assert!(in_newest, "{:?}", s.forge.fake.statuses());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_authorizing_their_own_merge_request_after_someone_elses_edit_is_refused() {
    let mut s = Scenario::<GitLabDriver>::start(Backend::Sqlite, POLICY).await;
    s.open_issue(50, &["postmortem"], "bob").await;
    // Opened while the lane was not listening: the first hook it sees is bob's.
    s.forge.deliver = false;
    let mr = s.open(NewChange::by("alice").body("Postmortem: #50")).await;
    s.forge.deliver = true;
    // bob's edit: GitLab's hook names bob, not the author.
    s.edit_description(mr, "Postmortem: #50\n\nRoll back the cache change.", "bob").await;
    s.label(mr, "hotfix", "bob").await;
    // bob writes the head commit too: only the merge request's author is alice.
    s.push(mr, "bob").await;
    s.allow_unread_comments("this test is about whether the merge happens");
    s.comment(mr, "/hotfix authorize", "alice").await;
    s.report(mr, "smoke", State::Success, CI).await;
    assert!(s.forge.fake.merges().is_empty(), "alice wrote it: a second person must authorize");
}

/// Two `serve` replicas on one PostgreSQL, each handed its own copy of the Pipeline Hook that
/// turns the smoke job green (GitLab sends one per hook, and a retry looks new): the merge
/// request is merged exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_racing_on_the_green_pipeline_merge_once() {
    let (s, mr) = authorized(Backend::Postgres).await;
    let second = s.forge.replica().await;
    let second_base = common::base_url(&second);
    let head = s.head(mr);
    let (pipeline, iid) = s.forge.ci_pipeline(&head);
    s.forge.fake.add_job(PROJECT, pipeline, "smoke", "success", false, "gitlab-ci");
    let hook = common::gitlab::pipeline_hook(&s.forge.fake, PROJECT, pipeline, iid, "gitlab-ci");
    let (a, b) = tokio::join!(
        s.forge.deliver_to(&s.forge.base, "Pipeline", &hook),
        s.forge.deliver_to(&second_base, "Pipeline", &hook)
    );
    assert_eq!((a, b), (202, 202));
    s.forge.settle().await;
    let merges = s.forge.fake.merges();
    assert_eq!(merges.len(), 1, "merged exactly once: {merges:?}");
    let merged = s.audit().await.into_iter().filter(|a| a == "merge.merged").count();
    assert_eq!(merged, 1);
    second.shutdown().await.unwrap();
}

/// GitLab runs quick actions in a description saved through the API, as whoever saves it: the
/// lane links the postmortem into the author's description with its own Maintainer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_action_in_the_description_does_not_run_when_the_lane_links_the_postmortem() {
    let mut s = Scenario::<GitLabDriver>::start(Backend::Sqlite, POLICY).await;
    let mr = s.open(NewChange::by("codertocat").body("Fix the outage.\n/merge\n/approve")).await;
    s.label(mr, "hotfix", "alice").await;
    s.comment(mr, "/hotfix postmortem", "codertocat").await;
    s.allow_unread_comments("this test is about the description the lane writes");
    let description = s.description(mr);
    assert!(description.contains("Postmortem: #"), "{description}");
    assert!(description.contains("\\/merge\n\\/approve"), "{description}");
    assert!(!description.lines().any(|l| l.trim_start().starts_with('/')), "{description}");
}
