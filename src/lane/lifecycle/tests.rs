use super::*;
use crate::lane::grant::Grant;
use crate::lane::membership::Membership;
use crate::lane::report::CheckState;
use crate::lane::track::{CheckResult, LaneRecord};

fn policy() -> Policy {
    let mut p = Policy::default();
    p.merge.smoke_checks = vec![crate::lane::policy::SmokeCheck { name: "smoke".into(), app: None, creator: None }];
    p
}

fn facts() -> PullFacts {
    PullFacts {
        number: 7,
        title: "Fix the outage".into(),
        head_sha: "a".repeat(40),
        head_ref: "fix".into(),
        base_ref: "main".into(),
        labels: vec!["hotfix".into(), "severity::1".into()],
        state: ItemState::Open,
        from_fork: false,
        author: Some("dev".into()),
        events: 1,
        repo: None,
        installation_id: None,
        lane: LaneRecord::default(),
    }
}

fn in_lane(mut f: PullFacts) -> PullFacts {
    f.lane.membership = Membership::Hotfix { by: "oncall".into(), since: 1_000 };
    f
}

fn kinds(passed: &[Passed]) -> Vec<Milestone> {
    passed.iter().map(|p| p.milestone).collect()
}

#[test]
fn entering_the_lane_is_recorded_at_the_label_with_its_severity() {
    let now = in_lane(facts());
    let passed = transitions(Some(&facts()), &now, &policy(), 5_000);
    assert_eq!(kinds(&passed), [Milestone::Entered]);
    assert_eq!((passed[0].at, passed[0].actor.as_str()), (1_000, "oncall"));
    assert_eq!(passed[0].detail.severity.as_deref(), Some("1"));
    // Already in the lane: nothing new.
    assert!(transitions(Some(&now), &now, &policy(), 6_000).is_empty());
}

#[test]
fn smoke_green_counts_only_on_the_head_and_once() {
    let mut now = in_lane(facts());
    let prior = now.clone();
    now.lane.checks.insert("smoke".into(), CheckResult { sha: "b".repeat(40), state: CheckState::Success });
    assert!(transitions(Some(&prior), &now, &policy(), 2_000).is_empty(), "green on another commit");
    now.lane.checks.insert("smoke".into(), CheckResult { sha: now.head_sha.clone(), state: CheckState::Success });
    let passed = transitions(Some(&prior), &now, &policy(), 2_000);
    assert_eq!(kinds(&passed), [Milestone::SmokeGreen]);
    assert_eq!(passed[0].key, now.head_sha);
    assert!(transitions(Some(&now), &now, &policy(), 3_000).is_empty());
}

#[test]
fn a_merge_is_recorded_for_every_change_and_marks_hotfixes() {
    let mut normal = facts();
    let prior = normal.clone();
    normal.state = ItemState::Merged;
    let passed = transitions(Some(&prior), &normal, &policy(), 9_000);
    assert_eq!(kinds(&passed), [Milestone::Merged]);
    assert!(!passed[0].detail.hotfix);
    assert_eq!(passed[0].detail.due_at, None);

    let prior = in_lane(facts());
    let mut merged = prior.clone();
    merged.state = ItemState::Merged;
    merged.lane.merged_at = Some(10_000);
    merged.lane.grant = Some(Grant {
        by: "dev".into(),
        sha: merged.head_sha.clone(),
        base: "main".into(),
        label: "hotfix".into(),
        granted_at: 3_000,
        expires_at: 99_000,
        reason: None,
        self_authorized: true,
    });
    let passed = transitions(Some(&prior), &merged, &policy(), 12_000);
    let merge = passed.iter().find(|p| p.milestone == Milestone::Merged).expect("merged");
    assert!(merge.detail.hotfix && merge.detail.self_authorized);
    assert_eq!(merge.at, 10_000);
    assert_eq!(merge.detail.due_at, Some(10_000 + 7 * 24 * 3600 * 1000));
    assert!(passed.iter().any(|p| p.milestone == Milestone::Granted && p.at == 3_000));
}

#[test]
fn a_hotfix_closed_unmerged_is_abandoned_a_normal_change_is_not() {
    let prior = in_lane(facts());
    let mut closed = prior.clone();
    closed.state = ItemState::Closed;
    assert_eq!(kinds(&transitions(Some(&prior), &closed, &policy(), 1)), [Milestone::Abandoned]);
    let mut normal = facts();
    normal.state = ItemState::Closed;
    assert!(transitions(Some(&facts()), &normal, &policy(), 1).is_empty());
}

#[test]
fn severity_reads_both_label_styles_and_nothing_else() {
    let p = policy();
    let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(severity(&labels(&["severity:2"]), &p).as_deref(), Some("2"));
    assert_eq!(severity(&labels(&["severity::high"]), &p).as_deref(), Some("high"));
    assert_eq!(severity(&labels(&["severityx:1", "severity:", "sev:1"]), &p), None);
}
