//! Smoke checks as the lane counts them: only results from the source the policy names, only
//! the latest result of each source, and `neutral`/`skipped` only where the policy allows.

use super::policy::{Policy, SmokeCheck};
use super::report::CheckState;

/// Who reported a result: the App that created a check run (its slug), or the user who posted
/// a commit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    App(String),
    User(String),
}

/// How a check run or status ended, as the forge said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    Success,
    Neutral,
    Skipped,
    Failure,
    /// Still running, or queued.
    Pending,
}

/// One result on a commit, read from the forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    /// `None` when the forge did not say (the result then counts only for unpinned checks).
    pub source: Option<Source>,
    /// The run it belongs to (a check run's check suite: one workflow run and its re-runs).
    /// Within a run the newest result stands; across runs every one must pass, so a second
    /// run of the same App — a workflow added on another branch runs as GitHub Actions too —
    /// cannot paper over a failure.
    pub run: Option<u64>,
    pub conclusion: Conclusion,
}

/// The state of each of the policy's smoke checks, from results listed newest first.
pub fn states(policy: &Policy, seen: &[Seen]) -> Vec<(String, CheckState)> {
    policy.merge.smoke_checks.iter().map(|check| (check.name.clone(), state(check, policy, seen))).collect()
}

fn state(check: &SmokeCheck, policy: &Policy, seen: &[Seen]) -> CheckState {
    let mut latest: Vec<&Seen> = Vec::new();
    for s in seen.iter().filter(|s| s.name == check.name && counts(check, s.source.as_ref())) {
        if !latest.iter().any(|l| l.source == s.source && l.run == s.run) {
            latest.push(s);
        }
    }
    let pass = |c: Conclusion| match c {
        Conclusion::Success => Some(true),
        Conclusion::Neutral => Some(policy.merge.neutral_passes),
        Conclusion::Skipped => Some(policy.merge.skipped_passes),
        Conclusion::Failure => Some(false),
        Conclusion::Pending => None,
    };
    let verdicts: Vec<Option<bool>> = latest.iter().map(|s| pass(s.conclusion)).collect();
    if verdicts.contains(&Some(false)) {
        CheckState::Failure
    } else if verdicts.is_empty() || verdicts.contains(&None) {
        CheckState::Pending
    } else {
        CheckState::Success
    }
}

fn counts(check: &SmokeCheck, source: Option<&Source>) -> bool {
    match (&check.app, &check.creator, source) {
        (Some(app), _, Some(Source::App(slug))) => app.eq_ignore_ascii_case(slug),
        (_, Some(creator), Some(Source::User(login))) => creator.eq_ignore_ascii_case(login),
        (None, None, _) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, source: Source, conclusion: Conclusion) -> Seen {
        Seen { name: name.into(), source: Some(source), run: Some(1), conclusion }
    }

    fn app(slug: &str) -> Source {
        Source::App(slug.into())
    }

    fn user(login: &str) -> Source {
        Source::User(login.into())
    }

    fn policy(text: &str) -> Policy {
        Policy::parse(text).unwrap()
    }

    #[test]
    fn a_pinned_check_counts_only_from_its_source() {
        let p = policy("[merge]\nsmoke_checks = [{ name = \"smoke\", app = \"github-actions\" }]");
        let forged =
            [seen("smoke", user("mallory"), Conclusion::Success), seen("smoke", app("evil-app"), Conclusion::Success)];
        assert_eq!(states(&p, &forged), [("smoke".to_string(), CheckState::Pending)]);
        let real = [seen("smoke", app("github-actions"), Conclusion::Success)];
        assert_eq!(states(&p, &real), [("smoke".to_string(), CheckState::Success)]);
        let p = policy("[merge]\nsmoke_checks = [{ name = \"smoke\", creator = \"ci-bot\" }]");
        assert_eq!(states(&p, &forged)[0].1, CheckState::Pending);
        assert_eq!(states(&p, &[seen("smoke", user("CI-bot"), Conclusion::Success)])[0].1, CheckState::Success);
    }

    #[test]
    fn the_latest_result_of_each_source_decides() {
        let p = policy("[merge]\nsmoke_checks = [\"smoke\"]");
        let rerun = [seen("smoke", app("a"), Conclusion::Success), seen("smoke", app("a"), Conclusion::Failure)];
        assert_eq!(states(&p, &rerun)[0].1, CheckState::Success);
        let two_sources = [seen("smoke", app("a"), Conclusion::Success), seen("smoke", user("u"), Conclusion::Failure)];
        assert_eq!(states(&p, &two_sources)[0].1, CheckState::Failure, "an unpinned name needs every source green");
        let running = [seen("smoke", app("a"), Conclusion::Pending), seen("smoke", app("a"), Conclusion::Success)];
        assert_eq!(states(&p, &running)[0].1, CheckState::Pending);
        assert_eq!(states(&p, &[])[0].1, CheckState::Pending);
    }

    #[test]
    fn a_green_run_of_the_same_app_does_not_hide_a_red_one() {
        let p = policy("[merge]\nsmoke_checks = [{ name = \"smoke\", app = \"github-actions\" }]");
        let forged = Seen { run: Some(2), ..seen("smoke", app("github-actions"), Conclusion::Success) };
        let real = seen("smoke", app("github-actions"), Conclusion::Failure);
        assert_eq!(states(&p, &[forged, real])[0].1, CheckState::Failure);
    }

    #[test]
    fn neutral_and_skipped_pass_only_when_the_policy_says_so() {
        for (conclusion, key) in [(Conclusion::Neutral, "neutral_passes"), (Conclusion::Skipped, "skipped_passes")] {
            let results = [seen("smoke", app("a"), conclusion)];
            let strict = policy("[merge]\nsmoke_checks = [\"smoke\"]");
            assert_eq!(states(&strict, &results)[0].1, CheckState::Failure, "{conclusion:?}");
            let lenient = policy(&format!("[merge]\nsmoke_checks = [\"smoke\"]\n{key} = true"));
            assert_eq!(states(&lenient, &results)[0].1, CheckState::Success, "{conclusion:?}");
        }
    }
}
