//! The hotfix page over real HTTP on loopback, on both store backends, from the side of
//! someone who should not see it: no cookie, a forged or expired one, a token in the URL, a
//! login posted from another site, a title written to run script. Then a responder who logs
//! in and reads the figures seeded for them.

mod common;

use std::sync::Arc;

use common::hotfixes::{self, expect, DAY, HOUR};
use common::lane::NOW;
use common::{Backend, TestDb};
use hotfix_lane::clock::ManualClock;
use hotfix_lane::server::Running;
use hotfix_lane::store::Store;
use hotfix_lane::web::session::Keys;

const DASHBOARD: &str = "dashboard-test-token";
const ADMIN: &str = "admin-test-token";
const MARKUP: &str = "<script>alert(1)</script>";
const VIEWS: [&str; 3] = ["/", "/executive?days=7", "/timeline?forge=github&repo=acme%2Fpayments&number=12"];

struct Page {
    server: Running,
    base: String,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    _db: TestDb,
}

impl Page {
    async fn start(backend: Backend, tokens: bool) -> Page {
        let db = TestDb::new(backend).await;
        let mut settings = common::settings(&db);
        if tokens {
            settings.admin_token = Some(ADMIN.into());
            settings.dashboard_token = Some(DASHBOARD.into());
        }
        let clock = Arc::new(ManualClock::new(NOW));
        let server = common::start_server_with(settings, clock.clone()).await;
        let base = common::base_url(&server);
        // No redirects followed and no cookie jar: each test says what it sends.
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Page { server, base, http, clock, _db: db }
    }

    fn store(&self) -> &Store {
        &self.server.store
    }

    async fn seed(&self, title_12: &str) {
        self.store().record_lifecycle(&hotfixes::scripted(NOW, title_12)).await.unwrap();
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            req = req.header("Cookie", format!("hotfix_lane_session={c}"));
        }
        req.send().await.unwrap()
    }

    async fn post(&self, path: &str, body: String, headers: &[(&str, String)]) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.send().await.unwrap()
    }

    fn origin(&self) -> String {
        self.base.clone()
    }

    /// Logs in with `token` the way the form does; returns the cookie's value.
    async fn login(&self, token: &str) -> String {
        let res = self.post("/login", form_body(token), &[("Origin", self.origin())]).await;
        assert_eq!(res.status(), 303, "a valid token logs in");
        assert_eq!(res.headers()["location"], "/");
        let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
        let value = set.strip_prefix("hotfix_lane_session=").unwrap().split(';').next().unwrap().to_string();
        value
    }
}

fn form_body(token: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new()).append_pair("token", token).finish()
}

fn assert_page_headers(res: &reqwest::Response) {
    let h = res.headers();
    assert_eq!(
        h["content-security-policy"],
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
}

/// Sent to the login form, with an empty body: nothing seeded shows.
async fn assert_no_data(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), 303, "{what}");
    assert_eq!(res.headers()["location"], "/login", "{what}");
    assert_page_headers(&res);
    assert_eq!(res.text().await.unwrap(), "", "{what}: no data in the body");
}

async fn a_view_requested_without_the_cookie_gets_no_data(backend: Backend) {
    let page = Page::start(backend, true).await;
    page.seed("Patch the auth header").await;
    for view in VIEWS {
        assert_no_data(page.get(view, None).await, view).await;
    }
    // Another cookie of the same site is no session.
    let res = page.http.get(format!("{}/", page.base)).header("Cookie", "other=1").send().await.unwrap();
    assert_no_data(res, "another cookie").await;
}

async fn a_forged_or_expired_cookie_gets_no_data(backend: Backend) {
    let page = Page::start(backend, true).await;
    page.seed("Patch the auth header").await;
    let valid = page.login(DASHBOARD).await;
    assert_eq!(page.get("/", Some(&valid)).await.status(), 200);

    let (_, mac) = valid.rsplit_once('.').unwrap();
    let far = NOW + 365 * DAY;
    let forged = [
        // Made with a token the server does not have.
        Keys::new(["guessed-token"]).unwrap().login("guessed-token", NOW).unwrap(),
        // The valid mac on a later expiry.
        format!("v1.{far}.{mac}"),
        format!("v1.{far}.{}", "00".repeat(32)),
        format!("v1.{far}"),
        DASHBOARD.to_string(),
    ];
    for cookie in &forged {
        for view in VIEWS {
            assert_no_data(page.get(view, Some(cookie)).await, &format!("{cookie} on {view}")).await;
        }
    }
    // The valid cookie, once its 12 hours are over.
    page.clock.advance(12 * HOUR);
    for view in VIEWS {
        assert_no_data(page.get(view, Some(&valid)).await, &format!("expired on {view}")).await;
    }
}

async fn a_token_in_the_url_is_refused(backend: Backend) {
    let page = Page::start(backend, true).await;
    page.seed("Patch the auth header").await;
    for path in [format!("/login?token={DASHBOARD}"), format!("/login?admin_token={ADMIN}")] {
        let res = page.get(&path, None).await;
        assert_eq!(res.status(), 400, "{path}");
        assert_page_headers(&res);
        assert!(res.headers().get("set-cookie").is_none(), "{path} logs nobody in");
    }
    let res = page.post(&format!("/login?token={DASHBOARD}"), form_body(DASHBOARD), &[("Origin", page.origin())]).await;
    assert_eq!(res.status(), 400, "not even beside a valid form");
    assert!(res.headers().get("set-cookie").is_none());
    // A view never reads a token from its URL.
    assert_no_data(page.get(&format!("/?token={DASHBOARD}"), None).await, "token on /").await;
}

async fn a_login_from_another_origin_is_refused(backend: Backend) {
    let page = Page::start(backend, true).await;
    let refused: [&[(&str, String)]; 3] = [
        &[("Origin", "https://evil.example".into())],
        &[("Origin", "null".into())],
        &[("Sec-Fetch-Site", "cross-site".into())],
    ];
    for headers in refused {
        let res = page.post("/login", form_body(DASHBOARD), headers).await;
        assert_eq!(res.status(), 403, "{headers:?}");
        assert_page_headers(&res);
        assert!(res.headers().get("set-cookie").is_none(), "{headers:?}");
        let res = page.post("/logout", String::new(), headers).await;
        assert_eq!(res.status(), 403, "logout {headers:?}");
    }
    // A wrong token from the right place: the form again, with a message, and no cookie.
    let res = page.post("/login", form_body("dashboard-test-tokeN"), &[("Origin", page.origin())]).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("set-cookie").is_none());
    let html = res.text().await.unwrap();
    assert!(html.contains("not valid") && html.contains(r#"<label for="token">"#), "{html}");
    // The right token from the right place logs in, with the cookie's rules.
    let res = page
        .post("/login", form_body(ADMIN), &[("Origin", page.origin()), ("Sec-Fetch-Site", "same-origin".into())])
        .await;
    assert_eq!(res.status(), 303);
    let set = res.headers()["set-cookie"].to_str().unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200", "Secure"] {
        assert!(set.split("; ").any(|p| p == part), "{part} in {set}");
    }
    assert!(!set.contains(ADMIN), "the cookie carries no token");
}

async fn a_title_with_markup_is_shown_as_text(backend: Backend) {
    let page = Page::start(backend, true).await;
    page.seed(MARKUP).await;
    let cookie = page.login(DASHBOARD).await;
    // #12's title is on its timeline (and its own page title); the other views list it by
    // number only, and must not print it raw either.
    for view in VIEWS {
        let res = page.get(view, Some(&cookie)).await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert!(!html.contains(MARKUP), "{view} prints the title as markup");
        assert!(!html.contains("<script"), "{view}");
    }
    let html = page.get(VIEWS[2], Some(&cookie)).await.text().await.unwrap();
    let shown = r#"<dd class="title" id="hotfix-title">&#60;script&#62;alert(1)&#60;/script&#62;</dd>"#;
    assert!(html.contains(shown), "the title is shown as text: {html}");
}

/// Reads `data-figure`/`data-universe` cells: `<td … data-figure="id">value</td>`.
fn cell(html: &str, attr: &str, id: &str) -> String {
    let marker = format!(r#"{attr}="{id}">"#);
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {attr}={id} in the page")) + marker.len();
    html[start..].split('<').next().unwrap().to_string()
}

async fn a_responder_logs_in_and_sees_the_seeded_figures(backend: Backend) {
    let page = Page::start(backend, true).await;
    page.seed("Patch the auth header").await;
    let cookie = page.login(DASHBOARD).await;

    let res = page.get("/executive?days=7", Some(&cookie)).await;
    assert_eq!(res.status(), 200);
    assert_page_headers(&res);
    let html = res.text().await.unwrap();
    assert_eq!(cell(&html, "data-figure", "entered"), expect::ENTERED.to_string());
    assert_eq!(cell(&html, "data-figure", "merged"), expect::MERGED.to_string());
    assert_eq!(cell(&html, "data-figure", "abandoned"), expect::ABANDONED.to_string());
    assert_eq!(cell(&html, "data-figure", "success"), expect::SUCCESS_RATE);
    assert_eq!(cell(&html, "data-universe", "success"), expect::SUCCESS);
    assert_eq!(cell(&html, "data-universe", "postmortems"), expect::POSTMORTEMS);
    assert_eq!(cell(&html, "data-universe", "change-failure"), expect::CHANGE_FAILURE);
    assert_eq!(cell(&html, "data-universe", "rework"), expect::REWORK);
    assert_eq!(cell(&html, "data-universe", "time-to-patch"), expect::TIME_TO_PATCH);
    assert_eq!(cell(&html, "data-figure", "time-to-patch"), expect::TIME_TO_PATCH_MEDIAN);
    assert_eq!(cell(&html, "data-universe", "time-to-deploy"), expect::TIME_TO_DEPLOY);
    assert_eq!(cell(&html, "data-figure", "time-to-restore"), "not observable from the forge");
    assert_eq!(html.matches("<h1>").count(), 1);

    let html = page.get("/", Some(&cookie)).await.text().await.unwrap();
    let table =
        |id: &str| html.split(&format!(r#"<table id="{id}">"#)).nth(1).unwrap().split("</table>").next().unwrap();
    assert!(table("overdue-postmortems").contains(&format!("payments#{}", expect::OVERDUE)));
    assert!(table("pending-postmortems").contains(&format!("payments#{}", expect::PENDING)));
    assert!(table("undeployed").contains(&format!("payments#{}", expect::UNDEPLOYED)));
    assert!(table("backports").contains("release-1.2") && table("backports").contains("stale"));
    assert!(html.contains(r#"href="http://127.0.0.1:9/acme/payments/pull/11""#), "a link to the forge");

    let html = page.get(VIEWS[2], Some(&cookie)).await.text().await.unwrap();
    let entries = html.split(r#"<table id="entries">"#).nth(1).unwrap();
    assert_eq!(entries.matches(r#"<th scope="row" class="what">"#).count(), expect::TIMELINE_12);
    let res = page.get("/timeline?forge=github&repo=acme%2Fpayments&number=999", Some(&cookie)).await;
    assert_eq!(res.status(), 404, "an unknown change");

    // Logged out, the same cookie is cleared and the views answer nothing.
    let res = page.post("/logout", String::new(), &[("Origin", page.origin())]).await;
    assert_eq!(res.status(), 303);
    assert!(res.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
}

async fn without_a_token_the_page_is_off(backend: Backend) {
    let page = Page::start(backend, false).await;
    for path in ["/", "/login", "/executive", "/static/hotfix-lane.css"] {
        assert_eq!(page.get(path, None).await.status(), 404, "{path}");
    }
    assert_eq!(page.post("/login", form_body(""), &[]).await.status(), 404);
}

on_both_backends!(
    a_view_requested_without_the_cookie_gets_no_data,
    a_forged_or_expired_cookie_gets_no_data,
    a_token_in_the_url_is_refused,
    a_login_from_another_origin_is_refused,
    a_title_with_markup_is_shown_as_text,
    a_responder_logs_in_and_sees_the_seeded_figures,
    without_a_token_the_page_is_off,
);
