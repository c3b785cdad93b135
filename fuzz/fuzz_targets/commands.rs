//! Comment Markdown and the `/hotfix` commands read from it; the Markdown writers that put a
//! change's text into the lane's comments; GitLab quick actions made inert.
#![no_main]

use hotfix_lane::fuzzing::gitlab_inert;
use hotfix_lane::lane::command::{self, valid_branch, Command};
use hotfix_lane::lane::markdown;
use hotfix_lane::lane::policy::{format_duration, parse_duration};
use hotfix_lane_fuzz::plain_line;
use libfuzzer_sys::fuzz_target;
use pulldown_cmark::{Event, Parser, Tag, TagEnd};

/// The comment that carries `command`, written plainly.
fn render(command: &Command) -> String {
    match command {
        Command::Authorize { duration, reason } => {
            let mut line = "/hotfix authorize".to_string();
            if let Some(d) = duration {
                line = format!("{line} {}", format_duration(*d));
            }
            if let Some(r) = reason {
                line = format!("{line} {}", markdown::text(r));
            }
            line
        }
        Command::Revoke => "/hotfix revoke".into(),
        Command::Backport { branch } => format!("/hotfix backport {}", markdown::text(branch)),
        Command::Postmortem => "/hotfix postmortem".into(),
        Command::Revert => "/hotfix revert".into(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };

    let lines = markdown::paragraph_lines(text);
    let commands = command::parse(text);
    assert!(commands.len() <= lines.len());
    for parsed in commands.iter().flatten() {
        if let Command::Backport { branch } = parsed {
            assert!(valid_branch(branch));
        }
        let plain = match parsed {
            Command::Authorize { reason: Some(r), .. } => plain_line(r),
            _ => true,
        };
        if plain {
            let comment = render(parsed);
            assert_eq!(command::parse(&comment), vec![Ok(parsed.clone())], "{comment:?}");
        }
    }

    // Durations (`/hotfix authorize 4h`, the policy's) read back as written.
    if let Ok(d) = parse_duration(text) {
        assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }

    // Text from a change, written into a comment, renders as itself.
    if plain_line(text) && !text.is_empty() {
        let span = markdown::code(text);
        let events: Vec<Event> = Parser::new(&span).collect();
        assert!(
            matches!(&events[..], [Event::Start(Tag::Paragraph), Event::Code(c), Event::End(TagEnd::Paragraph)] if **c == *text),
            "{text:?} -> {span:?} -> {events:?}"
        );
    }
    let block = markdown::fence(text);
    let events: Vec<Event> = Parser::new(&block).collect();
    assert!(
        matches!(events.first(), Some(Event::Start(Tag::CodeBlock(_))))
            && events.last() == Some(&Event::End(TagEnd::CodeBlock))
            && events[1..events.len() - 1].iter().all(|e| matches!(e, Event::Text(_))),
        "{text:?} escapes its fence: {events:?}"
    );

    // GitLab quick actions: made inert once, nothing is left to make inert.
    let inert = gitlab_inert(text);
    assert_eq!(gitlab_inert(&inert), inert);
    assert_eq!(inert.replace("\\/", "/"), text.replace("\\/", "/"));
});
