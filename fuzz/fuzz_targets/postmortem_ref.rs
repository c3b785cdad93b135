//! What a change's description says about other changes and issues: its `Postmortem:` line
//! (`#50`, `owner/repo#50`, an issue URL), the change it reverts (`Reverts …`, `This reverts
//! merge request !N`, `This reverts commit <sha>`, a `revert-N-…` branch), its `Fixes:` line,
//! and a postmortem's `Incident-Started:` line and forge timestamps.
//!
//! Input: the head branch on the first line, the description after it.
#![no_main]

use hotfix_lane::lane::conventions::Conventions;
use hotfix_lane::lane::event::Forge;
use hotfix_lane::lane::incident::{format_utc, parse_utc};
use hotfix_lane::lane::lineage::{fixes, incident_started, reverted, Reverted};
use hotfix_lane::lane::postmortem::find_reference;
use libfuzzer_sys::fuzz_target;

const REPO: &str = "acme/app";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (head_ref, body) = text.split_once('\n').unwrap_or(("", text));

    for this_repo in [REPO, "group/sub/project"] {
        match find_reference(body, this_repo) {
            Ok(Some(found)) => {
                // The reference as the lane writes it names the same issue.
                let written = format!("Postmortem: {}#{}", found.repo, found.number);
                assert_eq!(find_reference(&written, this_repo), Ok(Some(found.clone())), "{written:?}");
                assert!(!found.repo.contains(char::is_whitespace));
            }
            Ok(None) => {}
            // The hint goes into a comment: one line, bounded.
            Err(hint) => assert!(!hint.contains('\n') && hint.chars().count() < 400, "{hint:?}"),
        }
    }

    for forge in [Forge::Github, Forge::Gitlab] {
        let conventions = Conventions::of(forge);
        match reverted(body, head_ref, REPO, conventions) {
            Some(Reverted::Change(n)) => assert!(n > 0),
            Some(Reverted::Commit(sha)) => {
                assert!(sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            }
            None => {}
        }
        let fixed = fixes(body, REPO, conventions);
        for (i, n) in fixed.iter().enumerate() {
            assert!(*n > 0 && !fixed[..i].contains(n), "{fixed:?}");
        }
    }

    let _ = incident_started(body);
    if let Some(ms) = parse_utc(body) {
        // A well-formed date in range formats back as itself.
        let digits = |r: std::ops::Range<usize>| body.get(r).is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()));
        let num = |r: std::ops::Range<usize>| body[r].parse::<u32>().unwrap_or(99);
        if [0..4, 5..7, 8..10, 11..13, 14..16, 17..19].into_iter().all(digits)
            && (1..=12).contains(&num(5..7))
            && (1..=28).contains(&num(8..10))
            && num(11..13) < 24
            && num(14..16) < 60
            && num(17..19) < 60
        {
            // Separators are not checked: forges write them, and only the digits are read.
            let expected =
                format!("{}-{}-{} {}:{} UTC", &body[0..4], &body[5..7], &body[8..10], &body[11..13], &body[14..16]);
            assert_eq!(format_utc(ms), expected, "{body:?}");
        }
    }
});
