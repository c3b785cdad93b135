use std::sync::Arc;

use super::*;
use crate::clock::ManualClock;
use crate::lane::lifecycle::{Detail, LifecycleEvent, Milestone};
use crate::store::{Store, StoreOptions};
use crate::web::{ForgeLinks, Web};

const NOW: Millis = 1_795_699_440_000;
const MARKUP: &str = "<script>alert(1)</script>";

fn event(number: u64, milestone: Milestone, at: Millis, detail: Detail) -> LifecycleEvent {
    LifecycleEvent {
        forge: "github".into(),
        repo: "o/r".into(),
        number,
        milestone,
        key: String::new(),
        at,
        actor: "<b>mallory</b>".into(),
        detail,
    }
}

/// A store holding one merged hotfix whose title and actor are markup.
async fn web(dir: &tempfile::TempDir) -> Web {
    let url = format!("sqlite://{}", dir.path().join("lane.db").display());
    let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
    let title = Detail { title: Some(MARKUP.into()), ..Detail::default() };
    let merged = Detail { title: Some(MARKUP.into()), hotfix: true, due_at: Some(NOW - DAY), ..Detail::default() };
    store
        .record_lifecycle(&[
            event(5, Milestone::Entered, NOW - 3 * DAY, title),
            event(5, Milestone::Merged, NOW - 2 * DAY, merged),
        ])
        .await
        .unwrap();
    Web {
        store,
        clock: Arc::new(ManualClock::new(NOW)),
        keys: None,
        secure_cookie: true,
        links: ForgeLinks::new("https://api.github.com", None),
    }
}

fn assert_escaped(html: &str) {
    assert!(!html.contains(MARKUP), "the title is printed as markup");
    assert!(!html.contains("<b>mallory"), "the actor is printed as markup");
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;") || html.contains("&lt;script&gt;"), "{html}");
}

#[tokio::test]
async fn untrusted_text_is_escaped_on_every_view() {
    let dir = tempfile::tempdir().unwrap();
    let web = web(&dir).await;
    let timeline = timeline(&web, "github", "o/r", 5).await.unwrap().unwrap().unwrap();
    assert_escaped(&timeline);
    assert!(timeline.contains("mallory"), "the actor is shown, as text");
    // Overdue postmortem and no deployment: the title is listed twice on the on-call view.
    assert_escaped(&oncall(&web).await.unwrap().unwrap());
    assert!(!not_found("github", "o/r\"><script>", 1).unwrap().contains("<script>"));
}

#[tokio::test]
async fn the_executive_view_counts_the_hotfix_with_its_universe() {
    let dir = tempfile::tempdir().unwrap();
    let web = web(&dir).await;
    let html = executive(&web, 7, None).await.unwrap().unwrap();
    assert!(html.contains(r#"data-figure="merged">1<"#), "{html}");
    assert!(html.contains(r#"data-universe="success">1 of 1<"#), "{html}");
    assert!(html.contains(r#"data-figure="time-to-deploy">not reported<"#), "{html}");
    assert!(html.contains(r#"data-figure="time-to-restore">not observable from the forge<"#), "{html}");
    assert!(html.contains(r#"role="img""#) && html.contains("<desc"), "charts state their values");
}
