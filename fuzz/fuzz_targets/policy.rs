//! The policy file (`.github/hotfix-lane.toml`, `.gitlab/hotfix-lane.toml`), read from the
//! default branch: anyone who can push there writes it, and `hotfix-lane check` reads it too.
#![no_main]

use hotfix_lane::lane::event::Forge;
use hotfix_lane::lane::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for forge in [Forge::Github, Forge::Gitlab] {
        let checked = Policy::check_for(text, forge);
        let parsed = Policy::parse_for(text, forge);
        match (&checked, &parsed) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(all), Err(first)) => {
                assert_eq!(all.first().map(|e| (&e.location, &e.message)), Some((&first.location, &first.message)));
                let lines = text.split('\n').count();
                for e in all {
                    if let Some((line, column)) = e.location {
                        assert!(line >= 1 && line <= lines && column >= 1, "{:?} outside the file", e.location);
                    }
                }
            }
            _ => panic!("check_for and parse_for disagree"),
        }
        if let Ok(policy) = checked {
            let _ = policy.warnings();
            // What the lane accepted, written out, is accepted again as the same policy.
            let written = toml::to_string(&policy).expect("a policy serializes");
            assert_eq!(Policy::check_for(&written, forge).ok().as_ref(), Some(&policy), "{written}");
        }
    }
});
