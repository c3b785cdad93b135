//! What the Action and the GitLab CI job read from their environment: the `targets`, `wait` and
//! `poll-interval` inputs (`INPUT_*`, `HOTFIX_LANE_*`), the event file `GITHUB_EVENT_PATH`
//! names, the merge queue's branch names, and the escapes that keep text from a change inside
//! one line of the job's log.
//!
//! Input: `targets`, `wait`, `poll`, `GITHUB_EVENT_NAME` and the event file, separated by NUL.
#![no_main]

use std::path::PathBuf;

use hotfix_lane::ci::Settings;
use hotfix_lane::forge::github::payload;
use hotfix_lane::forge::github::queue_pull_number;
use hotfix_lane::fuzzing::{actions_escape_data, gitlab_escape_log};
use hotfix_lane::lane::command::valid_branch;
use hotfix_lane::lane::event::Event;
use hotfix_lane::lane::policy::{format_duration, parse_duration};
use hotfix_lane_fuzz::check_envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut fields = data.splitn(5, |&b| b == 0);
    let mut text = || fields.next().map(String::from_utf8_lossy).unwrap_or_default();
    let (targets, wait, poll, event_name) = (text(), text(), text(), text());
    let event_file = fields.next().unwrap_or_default();

    match Settings::parse(
        ("input `targets`", &targets),
        ("input `wait`", &wait),
        ("input `poll-interval`", &poll),
        PathBuf::from("/tmp"),
    ) {
        Ok(settings) => {
            for target in &settings.targets {
                assert!(valid_branch(target) && !target.contains([',', '\n']), "{target:?}");
            }
            assert_eq!(parse_duration(&format_duration(settings.wait)), Ok(settings.wait));
            assert_eq!(parse_duration(&format_duration(settings.poll)), Ok(settings.poll));
        }
        Err(message) => assert!(message.starts_with("input `")),
    }

    // The event names the Action runs on, and the payload shape each is read as.
    let shape = match event_name.as_ref() {
        "pull_request" | "pull_request_target" => "pull_request",
        "issue_comment" => "issue_comment",
        _ => "merge_group",
    };
    if let Ok(Some(envelope)) = payload::parse(shape, event_file) {
        check_envelope(&envelope);
        if let Event::MergeGroup { group, .. } = &envelope.event {
            let _ = queue_pull_number(&group.head_ref);
        }
    }
    if let Ok(head_ref) = std::str::from_utf8(event_file) {
        let _ = queue_pull_number(head_ref);
    }

    // Text from a change in a workflow command or the job log stays on its line.
    let message = String::from_utf8_lossy(event_file);
    let escaped = actions_escape_data(&message);
    assert!(!escaped.contains(['\r', '\n']));
    assert_eq!(escaped.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%"), message);
    assert!(!gitlab_escape_log(&message).contains(char::is_control));
});
