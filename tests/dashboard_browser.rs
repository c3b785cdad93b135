//! The hotfix page in a real headless Chromium, driven over WebDriver: log in, read the seeded
//! hotfixes and figures off the on-call and executive views, follow a link to a timeline, log
//! out. Screenshots of each view go to `target/artifacts/` for people to look at; the
//! assertions read the DOM.
//!
//! Needs `chromium` and `chromium-driver` (Debian: `/usr/bin/chromium`, `/usr/bin/chromedriver`).
//! Without them the test fails, saying so: a skipped browser test would pass unseen.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::fake_github::FakeGitHub;
use common::github::GitHubDriver;
use common::hotfixes::{self, expect, MIN};
use common::lane::{Lane, NOW};
use common::scenario::{ForgeDriver, NewChange};
use common::Backend;
use fantoccini::{Client, ClientBuilder, Locator};
use hotfix_lane::forge::github::GitHubAuth;

const TOKEN: &str = "browser-dashboard-token";
const POLICY: &str = "[responders]\nusers = [\"Codertocat\", \"alice\"]\n[merge]\nsmoke_checks = [\"smoke\"]\n";
const LIVE_TITLE: &str = "Stop the <b>login</b> loop";

/// `name` on the `PATH`, or what `env` names.
fn program(env: &str, name: &str, fallback: &str) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
        .unwrap_or_else(|| PathBuf::from(fallback))
}

/// chromedriver on a free loopback port, stopped when dropped.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_chromedriver() -> ChromeDriver {
    let driver = program("CHROMEDRIVER", "chromedriver", "/usr/bin/chromedriver");
    assert!(
        driver.is_file(),
        "chromedriver is missing ({}): install it (`apt-get install -y chromium chromium-driver`) \
         or set CHROMEDRIVER; this test does not skip",
        driver.display()
    );
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "chromedriver did not listen on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    ChromeDriver { child, url: format!("http://127.0.0.1:{port}") }
}

async fn browser(driver: &ChromeDriver, profile: &Path) -> Client {
    let chromium = program("CHROME_BIN", "chromium", "/usr/bin/chromium");
    assert!(
        chromium.is_file(),
        "chromium is missing ({}): install it (`apt-get install -y chromium chromium-driver`) or set CHROME_BIN; \
         this test does not skip",
        chromium.display()
    );
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
    ]
    .into_iter()
    .map(String::from)
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), "chrome".into());
    caps.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": chromium, "args": args }));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("chromium did not start under chromedriver: {e}"))
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(artifacts().join(name), png).unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}")).text().await.unwrap()
}

async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}

/// The path once a click's navigation has landed on `expected` (a click returns before the
/// next page loads, the more so on a busy machine), or the path after 10 s.
async fn arrived(c: &Client, expected: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = path(c).await;
        let ready = c.execute("return document.readyState", vec![]).await.ok();
        if (now == expected && ready.as_ref().and_then(|r| r.as_str()) == Some("complete"))
            || std::time::Instant::now() > deadline
        {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The cells of the table row whose header says `name`.
async fn row(c: &Client, table: &str, name: &str) -> Vec<String> {
    for tr in c.find_all(Locator::Css(&format!("table#{table} tbody tr"))).await.unwrap() {
        let cells = tr.find_all(Locator::Css("th, td")).await.unwrap();
        let mut texts = Vec::new();
        for cell in cells {
            texts.push(cell.text().await.unwrap());
        }
        if texts.first().is_some_and(|t| t.contains(name)) {
            return texts;
        }
    }
    panic!("no row {name} in table {table}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_reads_the_page_in_a_real_browser() {
    let driver = start_chromedriver();
    let profile = tempfile::tempdir().unwrap();

    // A change in the lane the way the server gets one: alice opens the postmortem, Codertocat
    // opens the fix naming it, alice (a responder) labels it: authorized, waiting for smoke.
    let lane = Lane::start_configured(
        FakeGitHub::start().await,
        Backend::Sqlite,
        POLICY,
        GitHubAuth::Token("test-token".into()),
        |s| {
            s.dashboard_token = Some(TOKEN.into());
            s.dashboard_plain_http = true;
        },
    )
    .await;
    let mut gh = GitHubDriver::on(lane);
    gh.open_issue(50, &["postmortem"], "alice").await;
    let mut change = NewChange::by("Codertocat").body("Postmortem: #50");
    change.title = Some(LIVE_TITLE.into());
    let pr = gh.open(change).await;
    gh.label(pr, "hotfix", "alice").await;
    gh.lane.clock.advance(45 * MIN);
    // And the week's hotfixes, as their milestones.
    gh.store().record_lifecycle(&hotfixes::scripted(NOW, "Patch the auth header")).await.unwrap();
    let base = gh.server_url();

    let c = browser(&driver, profile.path()).await;
    c.goto(&format!("{base}/executive")).await.unwrap();
    assert_eq!(path(&c).await, "/login", "no view without logging in");
    assert_eq!(text(&c, "h1").await, "Log in to hotfix-lane");
    assert_eq!(text(&c, "label[for=token]").await, "Dashboard or admin token");
    let input = c.find(Locator::Id("token")).await.unwrap();
    assert_eq!(input.attr("type").await.unwrap().as_deref(), Some("password"));

    // A wrong token first: the form again, with the reason.
    input.send_keys("not-the-token").await.unwrap();
    c.find(Locator::Css("main form button[type=submit]")).await.unwrap().click().await.unwrap();
    // The answer is a new page: wait for it before typing into its form.
    let alert = c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("[role=alert]")).await.unwrap();
    assert!(alert.text().await.unwrap().contains("not valid"));
    c.find(Locator::Id("token")).await.unwrap().send_keys(TOKEN).await.unwrap();
    c.find(Locator::Css("main form button[type=submit]")).await.unwrap().click().await.unwrap();
    assert_eq!(arrived(&c, "/").await, "/");

    // On call: the live change, who labelled and authorized it, what it waits for.
    assert_eq!(text(&c, "h1").await, "On call");
    assert_eq!(text(&c, "nav a[aria-current=page]").await, "On call");
    let live = row(&c, "live", "Codertocat/Hello-World#2").await;
    assert_eq!(live[1], LIVE_TITLE, "the title as text, markup and all");
    assert_eq!(live[2], "alice", "labelled by");
    assert_eq!(live[3], "alice", "authorized by");
    assert_eq!(live[4], "green smoke checks");
    assert_eq!(live[5], "Codertocat/Hello-World#50");
    assert_eq!(live[7], "45 min");
    let overdue = row(&c, "overdue-postmortems", &format!("acme/payments#{}", expect::OVERDUE)).await;
    assert!(overdue[4].starts_with("overdue by"), "{overdue:?}");
    row(&c, "pending-postmortems", &format!("acme/payments#{}", expect::PENDING)).await;
    row(&c, "undeployed", &format!("acme/payments#{}", expect::UNDEPLOYED)).await;
    let backport = row(&c, "backports", "acme/payments#12").await;
    assert_eq!((backport[1].as_str(), backport[5].as_str()), ("release-1.2", "stale"));
    screenshot(&c, "dashboard-oncall.png").await;

    // Executive, the scripted repository's last 7 days.
    c.find(Locator::LinkText("Executive")).await.unwrap().click().await.unwrap();
    assert_eq!(arrived(&c, "/executive").await, "/executive");
    c.goto(&format!("{base}/executive?days=7&repo=acme%2Fpayments")).await.unwrap();
    let figure = |id: &'static str| {
        let c = c.clone();
        async move { text(&c, &format!("[data-figure={id}]")).await }
    };
    let universe = |id: &'static str| {
        let c = c.clone();
        async move { text(&c, &format!("[data-universe={id}]")).await }
    };
    assert_eq!(figure("entered").await, expect::ENTERED.to_string());
    assert_eq!(figure("merged").await, expect::MERGED.to_string());
    assert_eq!(figure("abandoned").await, expect::ABANDONED.to_string());
    assert_eq!(figure("success").await, expect::SUCCESS_RATE);
    assert_eq!(universe("success").await, expect::SUCCESS);
    assert_eq!(universe("postmortems").await, expect::POSTMORTEMS);
    assert_eq!(universe("change-failure").await, expect::CHANGE_FAILURE);
    assert_eq!(universe("rework").await, expect::REWORK);
    assert_eq!(figure("time-to-patch").await, expect::TIME_TO_PATCH_MEDIAN);
    assert_eq!(universe("time-to-deploy").await, expect::TIME_TO_DEPLOY);
    assert_eq!(figure("time-to-restore").await, "not observable from the forge");
    let chart = c.find(Locator::Css("svg#chart-per-week")).await.unwrap();
    assert_eq!(chart.attr("role").await.unwrap().as_deref(), Some("img"));
    let desc = c.find(Locator::Css("svg#chart-per-week desc")).await.unwrap().html(true).await.unwrap();
    // #10 and #11 merged on the weekend of 21 November, #12 on Monday 23.
    assert_eq!(desc, "week of 2026-11-16: 2; week of 2026-11-23: 1.", "the chart states each week's count");
    screenshot(&c, "dashboard-executive.png").await;

    // Follow the on-call view's link to #12's timeline.
    c.find(Locator::LinkText("On call")).await.unwrap().click().await.unwrap();
    assert_eq!(arrived(&c, "/").await, "/");
    c.find(Locator::LinkText("acme/payments#12")).await.unwrap().click().await.unwrap();
    assert_eq!(arrived(&c, "/timeline").await, "/timeline");
    assert_eq!(text(&c, "h1").await, "Timeline of acme/payments#12");
    let whats = c.find_all(Locator::Css("table#entries tbody th")).await.unwrap();
    let mut names = Vec::new();
    for w in whats {
        names.push(w.text().await.unwrap());
    }
    assert_eq!(
        names,
        ["entered", "merged", "backport_opened", "postmortem_opened", "deployed", "postmortem_closed"],
        "every milestone, oldest first"
    );
    assert_eq!(names.len(), expect::TIMELINE_12);
    screenshot(&c, "dashboard-timeline.png").await;

    // Logged out, the browser holds no session: every view is the login form.
    c.find(Locator::Css("form.logout button")).await.unwrap().click().await.unwrap();
    assert_eq!(arrived(&c, "/login").await, "/login");
    for view in ["/", "/executive", "/timeline?forge=github&repo=acme%2Fpayments&number=12"] {
        c.goto(&format!("{base}{view}")).await.unwrap();
        assert_eq!(path(&c).await, "/login", "{view} after logout");
        let html = c.source().await.unwrap();
        assert!(!html.contains("acme/payments") && !html.contains("Hello-World"), "{view} shows data after logout");
    }
    c.close().await.unwrap();
}
