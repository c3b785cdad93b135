//! `step` without a server: a deterministic driver answers each need from a table of forge
//! facts and feeds the answers to effects back in, as the glue does.

use super::*;
use crate::lane::approval;
use crate::lane::event::{Actor, ItemState};
use crate::lane::grant::Grant;
use crate::lane::membership::Membership;
use crate::lane::report::CheckState;
use crate::lane::smoke::{Conclusion, Seen, Source};

const HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const PUSHED: &str = "1111111111111111111111111111111111111111";
const NOW: Millis = 1_800_000_000_000;
const POLICY: &str = "[responders]\nusers = [\"alice\"]\n\
                      [merge]\nsmoke_checks = [{ name = \"smoke\", app = \"github-actions\" }]\n";

fn repo() -> RepoRef {
    RepoRef { id: 7, full_name: "o/r".into(), default_branch: "main".into() }
}

fn change(head: &str, labels: &[&str]) -> PullRequest {
    PullRequest {
        number: 2,
        title: "Fix the outage".into(),
        body: "Postmortem: #50".into(),
        author: Actor { id: 1, login: "codertocat".into() },
        state: ItemState::Open,
        draft: false,
        merged: false,
        merge_commit_sha: None,
        base_sha: None,
        head_sha: head.into(),
        head_ref: "fix".into(),
        base_ref: "main".into(),
        from_fork: false,
        labels: labels.iter().map(|l| l.to_string()).collect(),
    }
}

/// What the forge says, as a test sets it up.
struct World {
    change: PullRequest,
    responders: Vec<&'static str>,
    smoke: Option<Conclusion>,
    /// The answer to the next merge.
    merge: MergeAnswer,
    /// Whether the change shows as merged once a merge was asked for.
    merge_lands: bool,
    merge_asked: bool,
    /// Who with write access approved which commit.
    approvals: Vec<(&'static str, &'static str)>,
    policy: String,
    /// Whether the lane acts as a GitHub App (its check runs pinned to it), not with a token.
    app: bool,
}

impl World {
    fn new(change: PullRequest) -> World {
        World {
            change,
            responders: vec!["alice"],
            smoke: Some(Conclusion::Success),
            merge: MergeAnswer::Merged,
            merge_lands: true,
            merge_asked: false,
            approvals: vec![],
            policy: POLICY.into(),
            app: false,
        }
    }

    fn answer(&self, need: &Need) -> Answer {
        match need {
            Need::Responder(login) => Answer::Responder(self.responders.contains(&login.as_str())),
            Need::Labeler => Answer::Labeler(None),
            Need::HeadAuthor(_) => Answer::HeadAuthor(Some("codertocat".into())),
            Need::Issue { .. } => {
                Answer::Issue(IssueLookup::Found { is_pull_request: false, labels: vec!["postmortem".into()] })
            }
            Need::Checks(sha) => Answer::Checks(
                self.smoke
                    .filter(|_| *sha == self.change.head_sha)
                    .map(|conclusion| Seen {
                        name: "smoke".into(),
                        source: Some(Source::App("github-actions".into())),
                        run: Some(1),
                        conclusion,
                    })
                    .into_iter()
                    .collect(),
            ),
            Need::Change => {
                let merged = self.merge_asked && self.merge_lands;
                let state = if merged { ItemState::Merged } else { self.change.state };
                Answer::Change(Some(PullRequest { merged, state, ..self.change.clone() }))
            }
            Need::ChangedFiles => Answer::ChangedFiles(vec!["src/lib.rs".into()]),
            Need::File { .. } | Need::Template(_) => Answer::File(None),
            Need::Approvers(sha) => Answer::Approvers(
                self.approvals.iter().filter(|(_, on)| on == sha).map(|(who, _)| who.to_string()).collect(),
            ),
        }
    }
}

/// Everything one input led to.
#[derive(Default)]
struct Run {
    facts: Option<PullFacts>,
    effects: Vec<Effect>,
    audit: Vec<String>,
    needs: Vec<Need>,
}

impl Run {
    fn actions(&self) -> Vec<&str> {
        self.audit.iter().map(|a| a.split(' ').next().unwrap()).collect()
    }

    fn merges(&self) -> usize {
        self.effects.iter().filter(|e| matches!(e, Effect::Merge { .. })).count()
    }

    fn retried(&self) -> Option<(&str, bool)> {
        self.effects.iter().find_map(|e| match e {
            Effect::Retry { reason, failed } => Some((reason.as_str(), *failed)),
            _ => None,
        })
    }
}

fn ctx<'a>(repo: &'a RepoRef, policy: &'a Policy, now: Millis) -> Ctx<'a> {
    let conventions = &crate::lane::conventions::GITHUB;
    Ctx { repo, installation_id: None, policy, policy_error: None, conventions, pinned_reports: false, now }
}

fn drive(world: &mut World, prior: Option<PullFacts>, input: Input, now: Millis) -> Run {
    let (repo, policy) = (repo(), Policy::parse(&world.policy).unwrap());
    let ctx = Ctx { pinned_reports: world.app, ..ctx(&repo, &policy, now) };
    let mut run = Run { facts: prior, ..Run::default() };
    let mut inputs = vec![input];
    while let Some(input) = inputs.pop() {
        let mut seen = Observed::default();
        let step = loop {
            match step(run.facts.as_ref(), &input, &seen, &ctx) {
                Ok(step) => break step,
                Err(need) => {
                    assert!(!seen.has(&need), "{need:?} asked for twice");
                    assert_eq!(needs(run.facts.as_ref(), &input, &seen, &ctx), Some(need.clone()));
                    seen.record(need.clone(), world.answer(&need));
                    run.needs.push(need);
                }
            }
        };
        if step.facts.is_some() {
            run.facts = step.facts;
        }
        run.audit.extend(step.audit.iter().map(|a| format!("{} {}", a.action, a.detail)));
        for effect in step.effects {
            match &effect {
                Effect::Merge { sha, method, .. } => {
                    world.merge_asked = true;
                    inputs.push(Input::MergeAnswered {
                        sha: sha.clone(),
                        method: *method,
                        answer: world.merge.clone(),
                    });
                }
                Effect::LaneComment { .. } => inputs.push(Input::CommentWritten { id: 99 }),
                Effect::OpenPostmortem { opening } => {
                    inputs.push(Input::PostmortemOpened { issue: 50, opening: opening.clone() })
                }
                _ => {}
            }
            run.effects.push(effect);
        }
    }
    run
}

fn label(by: &str) -> Input {
    Input::Change {
        action: PullRequestAction::Labeled,
        change: Box::new(change(HEAD, &["hotfix"])),
        added: vec!["hotfix".into()],
        actor: by.into(),
    }
}

fn event(action: PullRequestAction, change: PullRequest) -> Input {
    Input::Change { action, change: Box::new(change), added: vec![], actor: "codertocat".into() }
}

/// A change in the lane with alice's grant on `HEAD`, its reports posted.
fn granted(world: &mut World) -> PullFacts {
    world.smoke = None;
    let run = drive(world, None, label("alice"), NOW);
    let facts = run.facts.unwrap();
    assert!(facts.lane.grant.is_some(), "{:?}", run.audit);
    world.smoke = Some(Conclusion::Success);
    facts
}

#[test]
fn ci_green_before_the_label_merges_as_a_responder_labels() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let run = drive(&mut world, None, label("alice"), NOW);
    assert_eq!(run.actions(), ["lane.hotfix", "grant.created", "postmortem.success", "merge.merged"]);
    assert_eq!(run.merges(), 1);
    assert!(run.needs.contains(&Need::Checks(HEAD.into())), "the grant reads the commit's checks");
    assert_eq!(run.facts.unwrap().lane.merged.as_deref(), Some(HEAD));
}

#[test]
fn a_green_check_after_the_grant_merges() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let facts = granted(&mut world);
    let run = drive(&mut world, Some(facts), Input::ChecksMoved { sha: HEAD.into(), new_run: false }, NOW + 1);
    assert_eq!(run.merges(), 1);
    assert_eq!(run.actions(), ["merge.merged"]);
}

#[test]
fn a_check_on_another_commit_or_an_unknown_change_decides_nothing() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let facts = granted(&mut world);
    let run = drive(&mut world, Some(facts), Input::ChecksMoved { sha: PUSHED.into(), new_run: false }, NOW);
    assert!(run.effects.is_empty() && run.audit.is_empty() && run.needs.is_empty());
    let run = drive(&mut world, None, Input::ChecksMoved { sha: HEAD.into(), new_run: false }, NOW);
    assert!(run.facts.is_none() && run.effects.is_empty());
}

#[test]
fn merge_answers_are_settled_by_what_the_forge_shows() {
    // (answer, whether the merge landed) → (audit detail ends with, retried as a failure)
    let table: [(MergeAnswer, bool, Option<&str>, Option<bool>); 5] = [
        (MergeAnswer::Merged, true, Some("squash merge on @alice's authorization"), None),
        (MergeAnswer::Lost("502".into()), true, Some("; the answer was lost, read back from the forge"), None),
        (MergeAnswer::Lost("502".into()), false, None, Some(true)),
        (MergeAnswer::Refused("Pull Request is not mergeable".into()), true, Some("on @alice's authorization"), None),
        (MergeAnswer::BaseModified, false, None, Some(false)),
    ];
    for (answer, lands, detail, retried) in table {
        let mut world = World::new(change(HEAD, &["hotfix"]));
        let facts = granted(&mut world);
        (world.merge, world.merge_lands) = (answer.clone(), lands);
        let run = drive(&mut world, Some(facts), Input::ChecksMoved { sha: HEAD.into(), new_run: false }, NOW + 1);
        let merged: Vec<&String> = run.audit.iter().filter(|a| a.starts_with("merge.merged")).collect();
        match detail {
            Some(end) => assert!(merged.len() == 1 && merged[0].ends_with(end), "{answer:?}: {:?}", run.audit),
            None => assert!(merged.is_empty(), "{answer:?}: {:?}", run.audit),
        }
        assert_eq!(run.retried().map(|(_, failed)| failed), retried, "{answer:?}");
        if detail.is_some() {
            assert_eq!(run.facts.unwrap().lane.merged.as_deref(), Some(HEAD), "{answer:?}");
        }
    }
}

#[test]
fn a_refusal_of_an_unmerged_change_is_recorded_and_not_asked_again() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let facts = granted(&mut world);
    (world.merge, world.merge_lands) = (MergeAnswer::Refused("conflicts".into()), false);
    let run = drive(&mut world, Some(facts), Input::ChecksMoved { sha: HEAD.into(), new_run: false }, NOW + 1);
    assert_eq!(run.actions(), ["merge.refused"]);
    let again = drive(&mut world, run.facts, Input::ChecksMoved { sha: HEAD.into(), new_run: false }, NOW + 2);
    assert_eq!(again.merges(), 0);
}

#[test]
fn what_takes_a_grant_away() {
    // (the change as an event shows it) → the audit action and why
    let mut retargeted = change(HEAD, &["hotfix"]);
    retargeted.base_ref = "release-1".into();
    let mut closed = change(HEAD, &["hotfix"]);
    closed.state = ItemState::Closed;
    let table = [
        (PullRequestAction::Synchronize, change(PUSHED, &["hotfix"]), "grant.voided new commits since"),
        (PullRequestAction::Edited, retargeted, "grant.voided the base changed from main to release-1"),
        (PullRequestAction::Unlabeled, change(HEAD, &[]), "grant.cleared the `hotfix` label was removed"),
        (PullRequestAction::Closed, closed, "grant.cleared the change was closed"),
    ];
    for (action, shown, expected) in table {
        let mut world = World::new(change(HEAD, &["hotfix"]));
        let facts = granted(&mut world);
        world.change = shown.clone();
        let run = drive(&mut world, Some(facts.clone()), event(action, shown.clone()), NOW + 1);
        assert!(run.audit.iter().any(|a| a.starts_with(expected)), "{action:?}: {:?}", run.audit);
        assert_eq!(run.merges(), 0, "{action:?}");
        assert!(run.facts.unwrap().lane.grant.is_none(), "{action:?}");
        // Kept even when the rest of the evaluation cannot be made.
        let (repo, policy) = (repo(), Policy::parse(POLICY).unwrap());
        let ctx = ctx(&repo, &policy, NOW + 1);
        let kept = withdrawn(Some(&facts), &event(action, shown), &Observed::default(), &ctx).unwrap();
        assert!(kept.facts.unwrap().lane.grant.is_none(), "{action:?}");
    }
}

#[test]
fn pushing_back_to_the_authorized_commit_does_not_revive_the_grant() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let facts = granted(&mut world);
    world.change = change(PUSHED, &["hotfix"]);
    let pushed =
        drive(&mut world, Some(facts), event(PullRequestAction::Synchronize, change(PUSHED, &["hotfix"])), NOW);
    world.change = change(HEAD, &["hotfix"]);
    let back = drive(&mut world, pushed.facts, event(PullRequestAction::Synchronize, change(HEAD, &["hotfix"])), NOW);
    assert_eq!(back.merges(), 0);
    assert!(back.facts.unwrap().lane.grant.is_none());
}

#[test]
fn an_expired_grant_does_not_merge() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let facts = granted(&mut world);
    let expires = facts.lane.grant.as_ref().unwrap().expires_at;
    let run = drive(&mut world, Some(facts), Input::ChecksMoved { sha: HEAD.into(), new_run: false }, expires);
    assert_eq!(run.merges(), 0);
    // The smoke checks are read for the time to patch; nothing a merge would need is.
    assert_eq!(run.needs, [Need::Checks(HEAD.into())], "only the smoke checks are read for a grant that cannot merge");
}

#[test]
fn a_label_redelivered_or_late_after_the_merge_decides_nothing() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let run = drive(&mut world, None, label("alice"), NOW);
    let merged = run.facts.unwrap();
    assert_eq!(merged.state, ItemState::Merged);
    let late = drive(&mut world, Some(merged.clone()), label("alice"), NOW + 1);
    assert!(late.audit.is_empty() && late.effects.is_empty() && late.needs.is_empty());
    assert_eq!(late.facts, Some(merged), "nothing recorded");
}

#[test]
fn a_label_the_change_already_carries_grants_nothing_again() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let mut facts = granted(&mut world);
    facts.lane.grant = None; // revoked since
    let run = drive(&mut world, Some(facts), label("alice"), NOW + 1);
    assert!(!run.actions().contains(&"grant.created"), "{:?}", run.audit);
}

#[test]
fn only_a_responder_applying_the_label_grants_and_never_for_their_own_change() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let run = drive(&mut world, None, label("mallory"), NOW);
    assert_eq!(run.actions(), ["lane.not_authorized", "postmortem.success"]);
    world.responders.push("codertocat");
    let own = drive(&mut world, None, label("codertocat"), NOW);
    assert!(own.audit.iter().any(|a| a.starts_with("grant.refused @codertocat wrote this change")), "{:?}", own.audit);
    assert_eq!(own.merges(), 0);
}

#[test]
fn an_outsiders_authorize_costs_one_look_up_and_is_answered_once() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let facts = granted(&mut world);
    let authorize = |id| Input::Commands {
        comment_id: id,
        actor: "mallory".into(),
        commands: vec![Command::Authorize { duration: None, reason: None }],
    };
    let first = drive(&mut world, Some(facts), authorize(10), NOW);
    assert_eq!(first.needs, [Need::Responder("mallory".into())]);
    assert_eq!(first.actions(), ["grant.refused"]);
    let answers = |run: &Run| run.effects.iter().filter(|e| matches!(e, Effect::Comment { .. })).count();
    assert_eq!(answers(&first), 1);
    let second = drive(&mut world, first.facts, authorize(11), NOW);
    assert_eq!((second.actions(), answers(&second)), (vec!["grant.refused"], 0));
    // The same comment delivered again runs nothing.
    let replay = drive(&mut world, second.facts.clone(), authorize(11), NOW);
    assert!(replay.audit.is_empty() && replay.effects.is_empty() && replay.needs.is_empty());
    assert_eq!(replay.facts, second.facts, "nothing recorded");
}

#[test]
fn a_responders_authorize_covers_the_change_as_they_saw_it() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let facts = granted(&mut world);
    let mut facts = facts;
    facts.lane.grant = None;
    // The forge already serves a push the lane has not heard of.
    world.change = change(PUSHED, &["hotfix"]);
    let input = Input::Commands {
        comment_id: 10,
        actor: "alice".into(),
        commands: vec![Command::Authorize { duration: None, reason: None }],
    };
    let run = drive(&mut world, Some(facts), input, NOW);
    assert!(run.audit.iter().any(|a| a.starts_with("grant.created")), "{:?}", run.audit);
    assert!(run.audit.iter().any(|a| a.starts_with("grant.voided")), "the push voids it: {:?}", run.audit);
    assert_eq!(run.merges(), 0);
}

#[test]
fn an_unchanged_report_or_comment_is_not_written_again() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    world.smoke = Some(Conclusion::Pending);
    let first = drive(&mut world, None, label("alice"), NOW);
    assert!(first.effects.iter().any(|e| matches!(e, Effect::Report { .. })));
    let again = drive(&mut world, first.facts, event(PullRequestAction::Edited, change(HEAD, &["hotfix"])), NOW);
    let writes: Vec<&Effect> =
        again.effects.iter().filter(|e| matches!(e, Effect::Report { .. } | Effect::LaneComment { .. })).collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[test]
fn a_self_authorized_merge_is_noted_on_the_postmortem_issue() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let mut facts = granted(&mut world);
    let grant: &mut Grant = facts.lane.grant.as_mut().unwrap();
    grant.self_authorized = true;
    let run = drive(&mut world, Some(facts), Input::ChecksMoved { sha: HEAD.into(), new_run: false }, NOW + 1);
    let noted =
        run.effects.iter().any(|e| matches!(e, Effect::Comment { number: 50, body, .. } if body.contains("own")));
    assert!(noted, "{:?}", run.effects);
}

#[test]
fn a_responder_removed_from_the_policy_loses_the_grant_before_the_merge() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let facts = granted(&mut world);
    world.responders.clear();
    let run = drive(&mut world, Some(facts), Input::ChecksMoved { sha: HEAD.into(), new_run: false }, NOW + 1);
    assert_eq!(run.merges(), 0);
    assert_eq!(run.actions(), ["grant.cleared"]);
    assert!(matches!(run.facts.unwrap().lane.membership, Membership::Hotfix { .. }));
}

#[test]
fn a_new_ci_run_on_the_head_gets_the_reports_posted_again() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let facts = granted(&mut world);
    world.smoke = None;
    let quiet =
        drive(&mut world, Some(facts.clone()), Input::ChecksMoved { sha: HEAD.into(), new_run: false }, NOW + 1);
    assert!(!quiet.effects.iter().any(|e| matches!(e, Effect::Report { .. })), "{:?}", quiet.effects);
    let run = drive(&mut world, Some(facts), Input::ChecksMoved { sha: HEAD.into(), new_run: true }, NOW + 1);
    let reposted: Vec<&str> = run
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Report { sha, report } if sha == HEAD => Some(report.context.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(reposted, ["hotfix-lane/lane", "hotfix-lane/postmortem"]);
}

// The approval check (`[approval] reviews = N`).

fn approval_world() -> World {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    world.policy = format!("{POLICY}[approval]\nreviews = 1\n");
    world.app = true;
    world
}

/// The approval reports the run posted as reports of their own, in order.
fn approval_reports(run: &Run) -> Vec<(CheckState, String)> {
    run.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Report { report, .. } if report.context == approval::APPROVAL_CONTEXT => {
                Some((report.state, report.description.clone()))
            }
            _ => None,
        })
        .collect()
}

fn merge_approval(run: &Run) -> Option<&crate::lane::effect::MergeApproval> {
    run.effects.iter().find_map(|e| match e {
        Effect::Merge { approval, .. } => approval.as_deref(),
        _ => None,
    })
}

#[test]
fn the_approval_check_passes_on_a_grant_only_inside_the_merge_and_is_taken_back_otherwise() {
    let mut world = approval_world();
    let facts = granted(&mut world);
    let run = drive(&mut world, Some(facts), Input::ChecksMoved { sha: HEAD.into(), new_run: false }, NOW + 1);
    assert!(approval_reports(&run).is_empty(), "no pass of its own: {:?}", approval_reports(&run));
    let around = merge_approval(&run).expect("the merge carries the approval check");
    assert_eq!(around.pass.state, CheckState::Success);
    assert!(around.pass.description.starts_with("merging on @alice's hotfix grant (until "), "{:?}", around.pass);
    assert_eq!(around.otherwise.state, CheckState::Pending, "what reviews say, for any outcome but a merge");
}

#[test]
fn a_grant_waiting_for_its_smoke_check_leaves_the_approval_check_pending() {
    let mut world = approval_world();
    world.smoke = None;
    let run = drive(&mut world, None, label("alice"), NOW);
    assert!(run.facts.as_ref().unwrap().lane.grant.is_some());
    assert_eq!(run.merges(), 0);
    let states: Vec<CheckState> = approval_reports(&run).into_iter().map(|r| r.0).collect();
    assert_eq!(states, [CheckState::Pending], "a live grant alone never turns it green");
}

#[test]
fn an_approval_of_the_head_passes_and_one_of_an_earlier_commit_does_not() {
    let mut world = approval_world();
    world.smoke = None;
    let facts = drive(&mut world, None, event(PullRequestAction::Opened, change(HEAD, &[])), NOW).facts;
    world.approvals = vec![("bob", PUSHED)];
    let run = drive(&mut world, facts.clone(), Input::Reviewed { sha: HEAD.into() }, NOW + 1);
    assert!(approval_reports(&run).is_empty(), "still pending: an approval of another commit counts for nothing");
    world.approvals.push(("carol", HEAD));
    let run = drive(&mut world, facts, Input::Reviewed { sha: HEAD.into() }, NOW + 2);
    assert_eq!(approval_reports(&run), [(CheckState::Success, "approved by @carol".to_string())]);
}

#[test]
fn a_sweep_posts_the_approval_check_again_though_nothing_changed_and_an_event_does_not() {
    let mut world = approval_world();
    world.smoke = None;
    let facts = drive(&mut world, None, event(PullRequestAction::Opened, change(HEAD, &[])), NOW).facts;
    let edited = drive(&mut world, facts.clone(), event(PullRequestAction::Edited, change(HEAD, &[])), NOW + 1);
    assert!(approval_reports(&edited).is_empty(), "unchanged: not posted again");
    let swept = drive(&mut world, facts, Input::Swept { change: Box::new(change(HEAD, &[])) }, NOW + 2);
    let states: Vec<CheckState> = approval_reports(&swept).into_iter().map(|r| r.0).collect();
    assert_eq!(states, [CheckState::Pending], "a pass the lane never recorded may stand on the forge");
}

#[test]
fn with_a_token_the_approval_check_is_not_reported_since_anyone_who_can_push_could_post_it() {
    let mut world = approval_world();
    world.app = false;
    let facts = granted(&mut world);
    world.approvals = vec![("carol", HEAD)];
    let run = drive(&mut world, Some(facts), Input::ChecksMoved { sha: HEAD.into(), new_run: false }, NOW + 1);
    assert_eq!(run.merges(), 1);
    assert!(approval_reports(&run).is_empty() && merge_approval(&run).is_none());
}

const MERGE_COMMIT: &str = "2222222222222222222222222222222222222222";
const BOT: &str = "hotfix-lane[bot]";

/// A hotfix merged in the lane on alice's label.
fn merged_hotfix(world: &mut World) -> PullFacts {
    world.change.merge_commit_sha = Some(MERGE_COMMIT.into());
    let facts = drive(world, None, label("alice"), NOW).facts.unwrap();
    assert_eq!(facts.state, ItemState::Merged);
    facts
}

fn revert_by(actor: &str, comment_id: u64) -> Input {
    Input::Commands { comment_id, actor: actor.into(), commands: vec![Command::Revert] }
}

fn revert_jobs(run: &Run) -> Vec<&crate::lane::job::Job> {
    run.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Enqueue(job @ crate::lane::job::Job::Revert { .. }) => Some(job),
            _ => None,
        })
        .collect()
}

#[test]
fn a_responders_revert_of_a_merged_hotfix_queues_its_revert() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let facts = merged_hotfix(&mut world);
    let run = drive(&mut world, Some(facts), revert_by("alice", 10), NOW + 1);
    assert_eq!(run.actions().first(), Some(&"revert.requested"), "{:?}", run.audit);
    let jobs = revert_jobs(&run);
    assert!(
        matches!(jobs[..], [crate::lane::job::Job::Revert { change, by }] if change.number == 2 && by == "alice"),
        "{jobs:?}"
    );
    assert_eq!(run.facts.unwrap().lane.revert_requested.as_deref(), Some("alice"));
}

#[test]
fn a_non_responder_cannot_revert() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let facts = merged_hotfix(&mut world);
    let run = drive(&mut world, Some(facts), revert_by("mallory", 10), NOW + 1);
    assert_eq!(run.actions(), ["revert.refused"]);
    assert!(revert_jobs(&run).is_empty());
    assert!(run.effects.iter().any(|e| matches!(e, Effect::Comment { body, .. } if body.contains("not a responder"))));
    assert!(run.facts.unwrap().lane.revert_requested.is_none());
}

#[test]
fn reverting_twice_opens_one_change() {
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let facts = merged_hotfix(&mut world);
    let first = drive(&mut world, Some(facts), revert_by("alice", 10), NOW + 1);
    assert_eq!(revert_jobs(&first).len(), 1);
    let again = drive(&mut world, first.facts.clone(), revert_by("alice", 11), NOW + 2);
    assert!(revert_jobs(&again).is_empty() && !again.actions().contains(&"revert.requested"), "{:?}", again.audit);
    let redelivered = drive(&mut world, again.facts.clone(), revert_by("alice", 10), NOW + 3);
    assert!(redelivered.effects.is_empty() && redelivered.audit.is_empty());
}

#[test]
fn only_a_hotfix_merged_in_the_lane_is_reverted() {
    // Open, in the lane: not merged yet.
    let mut world = World::new(change(HEAD, &["hotfix"]));
    world.smoke = None;
    let open = drive(&mut world, None, label("alice"), NOW).facts.unwrap();
    let run = drive(&mut world, Some(open), revert_by("alice", 10), NOW + 1);
    assert!(revert_jobs(&run).is_empty());
    assert!(run.audit.iter().any(|a| a.starts_with("revert.refused only a merged pull request")), "{:?}", run.audit);
    // Merged, but never in the lane.
    let mut world = World::new(PullRequest {
        state: ItemState::Merged,
        merged: true,
        merge_commit_sha: Some(MERGE_COMMIT.into()),
        ..change(HEAD, &[])
    });
    let run = drive(&mut world, None, revert_by("alice", 10), NOW + 1);
    assert!(revert_jobs(&run).is_empty());
    assert!(run.audit.iter().any(|a| a.contains("did not merge in the lane")), "{:?}", run.audit);
}

/// The revert as the revert job leaves it: alice's label and grant on `HEAD`, the lane's label
/// to count once as hers. `opened`: the change's opening event (no label yet) was seen.
fn seeded_revert() -> PullFacts {
    let mut facts = crate::lane::track::first_seen(&change(HEAD, &["hotfix"]));
    let grant = Grant {
        by: "alice".into(),
        sha: HEAD.into(),
        base: "main".into(),
        label: "hotfix".into(),
        granted_at: NOW,
        expires_at: NOW + 4 * 3600 * 1000,
        reason: Some("revert of #1".into()),
        self_authorized: false,
    };
    facts.author = Some(BOT.into());
    facts.lane.labeler = Some(crate::lane::membership::Labeler { login: "alice".into(), responder: true, at: NOW });
    facts.lane.grant = Some(grant.clone());
    facts.lane.revert_for = Some(grant);
    facts
}

fn bot_event(action: PullRequestAction, change: PullRequest, added: &[&str]) -> Input {
    let added = added.iter().map(|l| l.to_string()).collect();
    Input::Change { action, change: Box::new(change), added, actor: BOT.into() }
}

/// Its opening (which shows no label) and then the lane's label, as the forge sends them.
fn opened_and_labelled(world: &mut World, facts: PullFacts) -> Run {
    world.smoke = None;
    world.change = change(HEAD, &[]);
    let opened = drive(world, Some(facts), bot_event(PullRequestAction::Opened, change(HEAD, &[]), &[]), NOW + 1);
    world.change = change(HEAD, &["hotfix"]);
    let labeled = bot_event(PullRequestAction::Labeled, change(HEAD, &["hotfix"]), &["hotfix"]);
    drive(world, opened.facts, labeled, NOW + 2)
}

#[test]
fn the_lanes_label_on_its_revert_counts_as_the_responders_and_the_seeded_grant_merges() {
    let mut world = World::new(change(HEAD, &[]));
    let run = opened_and_labelled(&mut world, seeded_revert());
    let facts = run.facts.clone().unwrap();
    assert!(matches!(facts.lane.membership, Membership::Hotfix { .. }), "{:?}", run.audit);
    let grant = facts.lane.grant.clone().expect("the seeded grant stands");
    assert_eq!((grant.by.as_str(), grant.reason.as_deref()), ("alice", Some("revert of #1")), "never the bot's");
    assert!(facts.lane.revert_for.is_none(), "one shot");
    world.smoke = Some(Conclusion::Success);
    let green = drive(&mut world, Some(facts), Input::ChecksMoved { sha: HEAD.into(), new_run: false }, NOW + 3);
    assert_eq!(green.merges(), 1, "{:?}", green.audit);
}

#[test]
fn a_revoke_on_the_revert_is_not_undone_by_relabelling() {
    // Revoked once the label counted: removing and re-applying it gives nothing back.
    let mut world = World::new(change(HEAD, &[]));
    let labelled = opened_and_labelled(&mut world, seeded_revert()).facts.unwrap();
    let revoke = Input::Commands { comment_id: 20, actor: "alice".into(), commands: vec![Command::Revoke] };
    let revoked = drive(&mut world, Some(labelled), revoke.clone(), NOW + 3).facts.unwrap();
    assert!(revoked.lane.grant.is_none());
    world.change = change(HEAD, &[]);
    let unlabeled =
        drive(&mut world, Some(revoked), bot_event(PullRequestAction::Unlabeled, change(HEAD, &[]), &[]), NOW + 4);
    world.change = change(HEAD, &["hotfix"]);
    for by in [BOT, "mallory"] {
        let relabel = Input::Change {
            action: PullRequestAction::Labeled,
            change: Box::new(change(HEAD, &["hotfix"])),
            added: vec!["hotfix".into()],
            actor: by.into(),
        };
        let run = drive(&mut world, unlabeled.facts.clone(), relabel, NOW + 5);
        let facts = run.facts.clone().unwrap();
        assert!(facts.lane.grant.is_none() && run.merges() == 0, "{by}: {:?}", run.audit);
        assert!(!matches!(facts.lane.membership, Membership::Hotfix { .. }), "{by}");
    }
    // Revoked before the lane's label event arrived (the forge shows the label already): the
    // label then counts for no one.
    let mut world = World::new(change(HEAD, &["hotfix"]));
    let early = drive(&mut world, Some(seeded_revert()), revoke, NOW + 1).facts.unwrap();
    assert!(early.lane.revert_for.is_none());
    let run = opened_and_labelled(&mut world, early);
    assert!(run.facts.as_ref().unwrap().lane.grant.is_none(), "{:?}", run.audit);
}

#[test]
fn a_push_to_the_revert_voids_its_grant() {
    let mut world = World::new(change(PUSHED, &[]));
    let pushed =
        drive(&mut world, Some(seeded_revert()), event(PullRequestAction::Synchronize, change(PUSHED, &[])), NOW + 1);
    let facts = pushed.facts.unwrap();
    assert!(facts.lane.grant.is_none() && facts.lane.revert_for.is_none());
    // Pushing the lane's commit back and labelling it again does not revive it.
    world.change = change(HEAD, &[]);
    let back = drive(&mut world, Some(facts), event(PullRequestAction::Synchronize, change(HEAD, &[])), NOW + 2);
    world.change = change(HEAD, &["hotfix"]);
    let labeled = bot_event(PullRequestAction::Labeled, change(HEAD, &["hotfix"]), &["hotfix"]);
    let run = drive(&mut world, back.facts, labeled, NOW + 3);
    assert!(run.facts.as_ref().unwrap().lane.grant.is_none() && run.merges() == 0, "{:?}", run.audit);
}

#[test]
fn the_revert_keeps_its_grant_when_its_webhooks_arrive_after_its_reconcile() {
    // The lane's reconcile reads the revert first, labelled; its opening event and the lane's
    // label event come after.
    let mut world = World::new(change(HEAD, &["hotfix"]));
    world.smoke = None;
    let reconciled =
        drive(&mut world, Some(seeded_revert()), event(PullRequestAction::Edited, change(HEAD, &["hotfix"])), NOW + 1);
    let run = opened_and_labelled(&mut world, reconciled.facts.unwrap());
    let facts = run.facts.unwrap();
    assert_eq!(facts.lane.grant.map(|g| g.by), Some("alice".to_string()), "{:?}", run.audit);
    assert!(facts.lane.revert_for.is_none());
}
