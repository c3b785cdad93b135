//! `hotfix-lane doctor`: the set-up `serve` would run with, checked end to end against the live
//! services, each finding said in words with what to do about it. It reads and probes; the only
//! thing it may write is the database schema, as `serve` would at its start.

use std::fmt::Write as _;

use octocrab::models::{AppId, InstallationId};
use octocrab::Octocrab;
use serde_json::Value;

use crate::forge::github::GitHubAuth;
use crate::ingress::signature::{sign, Secrets, Signature};
use crate::lane::policy::Policy;
use crate::server::ServeSettings;
use crate::store::{Store, StoreError, StoreOptions};

/// What to check beyond the settings themselves.
pub struct Checks {
    /// `owner/name`: its permissions, policy file and branch rules.
    pub repo: Option<String>,
    /// A delivery as GitHub shows it under *Recent Deliveries*: its body and its
    /// `X-Hub-Signature-256`, to learn whether GitHub signs with the configured secret.
    pub delivery: Option<(Vec<u8>, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Note,
    Warn,
    Fail,
}

/// The findings, in the order they were made.
#[derive(Default)]
pub struct Findings(Vec<(Level, String)>);

impl Findings {
    fn add(&mut self, level: Level, what: &str, detail: impl std::fmt::Display) {
        self.0.push((level, format!("{what}: {detail}")));
    }
    fn ok(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.add(Level::Ok, what, detail);
    }
    fn note(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.add(Level::Note, what, detail);
    }
    fn warn(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.add(Level::Warn, what, detail);
    }
    fn fail(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.add(Level::Fail, what, detail);
    }

    /// Whether anything would stop the lane from working.
    pub fn failed(&self) -> bool {
        self.0.iter().any(|(level, _)| *level == Level::Fail)
    }

    /// One line per finding, then the count.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (level, line) in &self.0 {
            let tag = match level {
                Level::Ok => "ok  ",
                Level::Note => "note",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            let _ = writeln!(out, "{tag}  {line}");
        }
        let count = |l| self.0.iter().filter(|(level, _)| *level == l).count();
        let (fails, warns) = (count(Level::Fail), count(Level::Warn));
        let _ = match (fails, warns) {
            (0, 0) => writeln!(out, "\neverything checked is in order"),
            (0, w) => writeln!(out, "\nno problem that stops the lane; {w} warning(s) above"),
            (f, w) => writeln!(out, "\n{f} problem(s) to fix (FAIL), {w} warning(s)"),
        };
        out
    }
}

/// The GitHub App permissions the lane uses: `(name as the API spells it, as the settings page
/// says it, access, required)`. What is not required is needed only by some set-ups.
const APP_PERMISSIONS: [(&str, &str, &str, bool); 9] = [
    ("checks", "Checks", "write", true),
    ("statuses", "Commit statuses", "write", true),
    ("issues", "Issues", "write", true),
    ("pull_requests", "Pull requests", "write", true),
    ("contents", "Contents", "write", true),
    ("metadata", "Metadata", "read", true),
    ("members", "Members (organisation)", "read", false),
    ("merge_queues", "Merge queues", "write", false),
    ("workflows", "Workflows", "write", false),
];

/// The webhook events an App subscribes to for the lane: every event the parser knows, but
/// those GitHub sends without a subscription (`ping`, `installation`) and the optional ones.
fn subscribed_events() -> impl Iterator<Item = &'static str> {
    crate::forge::github::payload::EVENTS
        .iter()
        .copied()
        .filter(|e| !matches!(*e, "ping" | "installation") && !OPTIONAL_EVENTS.contains(e))
}

/// Events only the hotfix figures read: without them the lane works, and says what is missing.
const OPTIONAL_EVENTS: &[&str] = &["deployment_status"];

/// The body of the sample delivery the secret is tried on.
const SAMPLE: &[u8] = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;

pub async fn run(settings: &ServeSettings, checks: &Checks) -> Findings {
    let mut f = Findings::default();
    webhook_secret(&mut f, &settings.github_webhook_secrets, checks.delivery.as_ref());
    if settings.listen.ip().is_loopback() {
        f.note(
            "listen",
            format!(
                "{} takes connections from this machine only: fine behind a reverse proxy here; otherwise \
                 listen on 0.0.0.0 and put TLS in front",
                settings.listen
            ),
        );
    } else {
        f.ok("listen", format!("{} (GitHub needs it reachable over https)", settings.listen));
    }
    database(&mut f, &settings.database_url).await;
    match settings.mirrors.check_writable() {
        Ok(()) => f.ok("mirror directory", format!("{} can be written", settings.mirrors.dir().display())),
        Err(e) => f.fail(
            "mirror directory",
            format!(
                "{}: {e}; set HOTFIX_LANE_MIRROR_DIR to a directory this user may write",
                settings.mirrors.dir().display()
            ),
        ),
    }
    match std::process::Command::new("git").arg("--version").output() {
        Ok(out) if out.status.success() => f.ok("git", String::from_utf8_lossy(&out.stdout).trim()),
        _ => f.fail("git", "not found on PATH: backports fetch and push with the git command; install git"),
    }
    github(&mut f, settings, checks.repo.as_deref()).await;
    f
}

fn webhook_secret(f: &mut Findings, secrets: &[String], delivery: Option<&(Vec<u8>, String)>) {
    let Some(current) = secrets.first() else {
        f.fail(
            "webhook secret",
            "none is set: set HOTFIX_LANE_GITHUB_WEBHOOK_SECRET (or _FILE), the value GitHub signs with",
        );
        return;
    };
    let verifies = |secret: &str, body: &[u8], header: &str| {
        let signature = Signature::parse(Some(header.as_bytes())).map_err(|e| e.to_string())?;
        let secrets = Secrets::new([secret]).map_err(str::to_string)?;
        secrets.verify(&signature, body).map_err(|e| e.to_string())
    };
    let sample = sign(current.as_bytes(), SAMPLE);
    match verifies(current, SAMPLE, &sample) {
        // The signature itself is not shown: with the body known, it would let anyone who reads
        // this output try guesses at a weak secret offline.
        Ok(()) => f.ok(
            "webhook secret",
            "a sample delivery signed with it verifies; GitHub must sign with this same value (compare with \
             --delivery-body and --delivery-signature)",
        ),
        Err(e) => f.fail("webhook secret", e),
    }
    if current.len() < 20 {
        f.warn("webhook secret", "shorter than 20 characters: use a random one, e.g. `openssl rand -hex 32`");
    }
    let Some((body, header)) = delivery else { return };
    let which = secrets.iter().position(|s| verifies(s, body, header.trim()).is_ok());
    match which {
        Some(0) => f.ok("delivery signature", "matches the current secret"),
        Some(_) => f.warn(
            "delivery signature",
            "matches the previous secret only: GitHub still signs with the old one; set the new one in the webhook",
        ),
        None => f.fail(
            "delivery signature",
            "matches no configured secret: the webhook's secret in GitHub differs from \
             HOTFIX_LANE_GITHUB_WEBHOOK_SECRET (or the body was not saved exactly as GitHub sent it)",
        ),
    }
}

async fn database(f: &mut Findings, url: &str) {
    match Store::open_existing(url, &StoreOptions { max_connections: 1, ..Default::default() }).await {
        Ok(store) => {
            let detail = match store.ping().await {
                Ok(()) => format!("{} answers, its schema is up to date", crate::store::redact(url)),
                Err(e) => format!("opened, but a query failed: {e}"),
            };
            store.close().await;
            f.ok("database", detail);
        }
        Err(StoreError::Missing(path)) => {
            f.note("database", format!("{path} does not exist yet: `serve` creates it on its first start"))
        }
        Err(e) => f.fail("database", e),
    }
}

/// A GET, answered with its status, scopes header and JSON body; `Err` when GitHub did not answer.
async fn get(client: &Octocrab, route: &str) -> Result<(u16, Option<String>, Value), String> {
    use http_body_util::BodyExt;
    let response = client._get_with_headers(route, None).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let scopes = response.headers().get("x-oauth-scopes").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, scopes, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or("no message")
}

async fn github(f: &mut Findings, settings: &ServeSettings, repo: Option<&str>) {
    let api = settings.github_api_url.as_str();
    let unreachable = |e: String| {
        format!(
            "no answer from {api}: {e}; check HOTFIX_LANE_GITHUB_API_URL (GitHub Enterprise: https://HOST/api/v3) \
             and that this machine reaches it"
        )
    };
    let client = match &settings.github_auth {
        None => {
            f.fail(
                "GitHub credentials",
                "none are set: deliveries would be stored but nothing reported; set HOTFIX_LANE_GITHUB_APP_ID and \
                 HOTFIX_LANE_GITHUB_APP_PRIVATE_KEY (an App), or HOTFIX_LANE_GITHUB_TOKEN",
            );
            return;
        }
        Some(GitHubAuth::Token(token)) => {
            let built = Octocrab::builder()
                .base_uri(api)
                .map_err(|e| e.to_string())
                .and_then(|b| b.personal_token(token.clone()).build().map_err(|e| e.to_string()));
            let client = match built {
                Ok(client) => client,
                Err(e) => {
                    f.fail("GitHub credentials", format!("`{api}` is not a usable API URL: {e}"));
                    return;
                }
            };
            match get(&client, "/user").await {
                Ok((200, scopes, user)) => {
                    let login = user["login"].as_str().unwrap_or("?");
                    match scopes {
                        Some(scopes) => {
                            f.ok("GitHub token", format!("a classic token of @{login}, scopes `{scopes}`"));
                            if !scopes.split(',').any(|s| matches!(s.trim(), "repo" | "public_repo")) {
                                f.fail(
                                    "GitHub token",
                                    "lacks the `repo` scope (`public_repo` for public repositories only)",
                                );
                            }
                            if !scopes.split(',').any(|s| matches!(s.trim(), "read:org" | "admin:org")) {
                                f.warn(
                                    "GitHub token",
                                    "lacks `read:org`: responders listed as `@org/team` are not found",
                                );
                            }
                        }
                        None => f.ok(
                            "GitHub token",
                            format!("a fine-grained token of @{login}; its repository permissions are checked below"),
                        ),
                    }
                }
                Ok((401, _, body)) => {
                    f.fail(
                        "GitHub token",
                        format!(
                            "GitHub refused it ({}): it is wrong, expired or revoked; set HOTFIX_LANE_GITHUB_TOKEN \
                             to a valid one",
                            message(&body)
                        ),
                    );
                    return;
                }
                Ok((403, _, _)) => f.ok("GitHub token", "an installation token (it acts as an App, not a user)"),
                Ok((status, _, body)) => {
                    f.fail("GitHub token", format!("GET /user answered {status}: {}", message(&body)));
                    return;
                }
                Err(e) => {
                    f.fail("GitHub", unreachable(e));
                    return;
                }
            }
            client
        }
        Some(GitHubAuth::App { app_id, private_key_pem }) => {
            let built =
                Octocrab::builder().base_uri(api).map_err(|e| format!("`{api}` is not a URL: {e}")).and_then(|b| {
                    b.app_from_rsa_pem(AppId(*app_id), private_key_pem.as_bytes())
                        .map_err(|e| format!("the private key does not read as an RSA PEM key: {e}"))?
                        .build()
                        .map_err(|e| e.to_string())
                });
            let root = match built {
                Ok(root) => root,
                Err(e) => {
                    f.fail("GitHub App", e);
                    return;
                }
            };
            match get(&root, "/app").await {
                Ok((200, _, app)) => {
                    let slug = app["slug"].as_str().unwrap_or("?");
                    f.ok("GitHub App", format!("`{slug}` (id {app_id}); it acts as {slug}[bot]"));
                    permissions(f, "GitHub App", &app["permissions"], "its settings (Permissions & events)");
                    let missing: Vec<&str> = subscribed_events()
                        .filter(|e| !app["events"].as_array().is_some_and(|a| a.iter().any(|x| x == e)))
                        .collect();
                    if app["events"].is_array() && !missing.is_empty() {
                        f.fail(
                            "GitHub App",
                            format!("not subscribed to {}: tick them under Permissions & events", missing.join(", ")),
                        );
                    }
                    let subscribed = |e: &&str| app["events"].as_array().is_some_and(|a| a.iter().any(|x| x == *e));
                    let optional: Vec<&str> = OPTIONAL_EVENTS.iter().copied().filter(|e| !subscribed(e)).collect();
                    if app["events"].is_array() && !optional.is_empty() {
                        f.warn(
                            "GitHub App",
                            format!(
                                "not subscribed to {} (needs Deployments: read): the time to deploy reads \"not \
                                 reported\" until it is",
                                optional.join(", ")
                            ),
                        );
                    }
                }
                Ok((401, _, body)) => {
                    f.fail(
                        "GitHub App",
                        format!(
                            "GitHub refused its JWT ({}): HOTFIX_LANE_GITHUB_APP_ID does not match the private key, or \
                             this machine's clock is off",
                            message(&body)
                        ),
                    );
                    return;
                }
                Ok((status, _, body)) => {
                    f.fail("GitHub App", format!("GET /app answered {status}: {}", message(&body)));
                    return;
                }
                Err(e) => {
                    f.fail("GitHub", unreachable(e));
                    return;
                }
            }
            let Some(repo) = repo else {
                f.note("repository", "pass --repo OWNER/NAME to check an installation, its policy and branch rules");
                return;
            };
            match get(&root, &format!("/repos/{repo}/installation")).await {
                Ok((200, _, installation)) => {
                    let id = installation["id"].as_u64().unwrap_or_default();
                    f.ok("installation", format!("installed on {repo} (installation {id})"));
                    permissions(
                        f,
                        "installation",
                        &installation["permissions"],
                        "the installation's page (accept the new permissions)",
                    );
                    match root.installation(InstallationId(id)) {
                        Ok(client) => client,
                        Err(e) => {
                            f.fail("installation", e);
                            return;
                        }
                    }
                }
                Ok((404, _, _)) => {
                    f.fail(
                        "installation",
                        format!("the App is not installed on {repo}: install it from the App's page"),
                    );
                    return;
                }
                Ok((status, _, body)) => {
                    f.fail("installation", format!("answered {status}: {}", message(&body)));
                    return;
                }
                Err(e) => {
                    f.fail("GitHub", unreachable(e));
                    return;
                }
            }
        }
    };
    match repo {
        Some(repo) => repository(f, &client, repo, matches!(settings.github_auth, Some(GitHubAuth::Token(_)))).await,
        None if matches!(settings.github_auth, Some(GitHubAuth::Token(_))) => {
            f.note("repository", "pass --repo OWNER/NAME to check its permissions, policy and branch rules")
        }
        None => {}
    }
}

/// `granted` against [`APP_PERMISSIONS`].
fn permissions(f: &mut Findings, what: &str, granted: &Value, where_to: &str) {
    if !granted.is_object() {
        return;
    }
    let rank = |access: &str| match access {
        "write" | "admin" => 2,
        "read" => 1,
        _ => 0,
    };
    for (name, label, access, required) in APP_PERMISSIONS {
        let has = granted[name].as_str().unwrap_or("none");
        if rank(has) >= rank(access) {
            continue;
        }
        let why = match name {
            "members" => "team responders (`@org/team`) are not found",
            "merge_queues" => "the lane cannot put a hotfix at the front of a merge queue",
            "workflows" => "backports of changes under .github/workflows are refused",
            _ => "the lane needs it",
        };
        let line = format!("{label}: {access} is missing (has {has}): {why}; grant it in {where_to}");
        if required {
            f.fail(what, line);
        } else {
            f.warn(what, line);
        }
    }
}

async fn repository(f: &mut Findings, client: &Octocrab, repo: &str, token: bool) {
    let default_branch = match get(client, &format!("/repos/{repo}")).await {
        Ok((200, _, info)) => {
            if token && info["permissions"]["push"] == Value::Bool(false) {
                f.fail(
                    "repository",
                    format!("the token's user cannot push to {repo}: merges and backports need write access"),
                );
            } else {
                f.ok("repository", format!("{repo} is readable"));
            }
            info["default_branch"].as_str().unwrap_or("main").to_string()
        }
        Ok((404, _, _)) => {
            f.fail(
                "repository",
                format!(
                    "{repo} is not visible with these credentials: no access, or a fine-grained token not granted it"
                ),
            );
            return;
        }
        Ok((status, _, body)) => {
            f.fail("repository", format!("GET /repos/{repo} answered {status}: {}", message(&body)));
            return;
        }
        Err(e) => {
            f.fail("repository", e);
            return;
        }
    };
    policy(f, client, repo, &default_branch).await;
    rules(f, client, repo, &default_branch).await;
}

async fn policy(f: &mut Findings, client: &Octocrab, repo: &str, branch: &str) {
    const PATH: &str = ".github/hotfix-lane.toml";
    let route = format!("/repos/{repo}/contents/{PATH}?ref={branch}");
    let text = match get(client, &route).await {
        Ok((200, _, file)) => {
            use base64::Engine;
            let encoded: String = file["content"].as_str().unwrap_or_default().split_whitespace().collect();
            match base64::engine::general_purpose::STANDARD.decode(encoded).ok().and_then(|b| String::from_utf8(b).ok())
            {
                Some(text) => text,
                None => return f.fail("policy", format!("{PATH} on {branch} is not UTF-8 text")),
            }
        }
        Ok((404, _, _)) => {
            return f.warn(
                "policy",
                format!("no {PATH} on {branch}: the defaults apply, with no responders, so nobody can enter the lane"),
            )
        }
        Ok((status, _, body)) => {
            return f.fail("policy", format!("reading {PATH} answered {status}: {}", message(&body)))
        }
        Err(e) => return f.fail("policy", e),
    };
    match Policy::check(&text) {
        Ok(policy) => {
            f.ok("policy", format!("{PATH} on {branch} is valid"));
            for warning in policy.warnings() {
                f.warn("policy", warning);
            }
        }
        Err(errors) => {
            for e in errors {
                f.fail("policy", format!("{PATH}:{e} (the lane keeps the last valid policy it read, or the defaults)"));
            }
        }
    }
}

async fn rules(f: &mut Findings, client: &Octocrab, repo: &str, branch: &str) {
    let rules = match get(client, &format!("/repos/{repo}/rules/branches/{branch}")).await {
        Ok((200, _, Value::Array(rules))) => rules,
        Ok((status, _, body)) => {
            return f.note("branch rules", format!("cannot read the rules of {branch} ({status}: {})", message(&body)))
        }
        Err(e) => return f.note("branch rules", e),
    };
    let of = |kind: &'static str| rules.iter().filter(move |r| r["type"] == kind);
    let required: Vec<&str> = of("required_status_checks")
        .flat_map(|r| r["parameters"]["required_status_checks"].as_array().into_iter().flatten())
        .filter_map(|c| c["context"].as_str())
        .collect();
    if required.contains(&"hotfix-lane/postmortem") {
        f.ok("branch rules", format!("{branch} requires hotfix-lane/postmortem"));
    } else {
        f.warn(
            "branch rules",
            format!(
                "{branch}'s rulesets do not require hotfix-lane/postmortem: a hotfix can merge without its postmortem; \
                 add it as a required status check (classic branch protection is not visible here)"
            ),
        );
    }
    let reviews = of("pull_request").filter_map(|r| r["parameters"]["required_approving_review_count"].as_u64()).max();
    if let Some(n) = reviews.filter(|n| *n > 0) {
        f.note(
            "branch rules",
            format!(
                "{branch} requires {n} approving review(s): the lane merges past them only with its App (or the token's \
                 user) in that ruleset's bypass list, which needs admin access to read, so it is not checked here"
            ),
        );
    }
    if of("merge_queue").next().is_some() {
        f.note(
            "branch rules",
            format!("{branch} merges through a merge queue: hotfixes go to its front (App: Merge queues: write)"),
        );
    }
}
