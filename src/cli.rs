//! Command-line interface: argument definitions, settings resolution (flags > environment >
//! config file > defaults) and exit codes (0 success, 1 failure, 2 usage error).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::forge::github::GitHubAuth;
use crate::ingress::Limits;
use crate::jobs::RunnerOptions;
use crate::lane::policy::parse_duration;
use crate::server::{self, GitLabSettings, ServeSettings};
use crate::store::DEFAULT_DATABASE_URL;
use crate::telemetry::{self, LogFormat};

mod ops;

#[derive(Debug, Parser)]
#[command(
    name = "hotfix-lane",
    version,
    about = "The emergency lane for pull requests",
    long_about = "The emergency lane for pull requests: a change labeled `hotfix` runs smoke-only CI, merges on a \
                  responder's time-bound pre-authorization, is backported automatically, and is blocked by the \
                  `hotfix-lane/postmortem` check until a postmortem issue exists."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the webhook server (the full lane). Settings come from flags, HOTFIX_LANE_* variables
    /// and an optional TOML file, in that order of precedence.
    Serve(Box<ServeArgs>),
    /// Work with per-repository policy files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Inspect the job queue and give dead jobs another chance.
    Jobs(JobsArgs),
    /// Read the audit log: every lane decision, who made it, on which commit, and why.
    Audit(AuditArgs),
    /// The hotfix figures from the lane's records: time to patch, merge and deploy, success,
    /// postmortems on time, rework and change failure rates, week by week, and what is overdue.
    Report(ReportArgs),
    /// Run inside a GitHub Actions job (the action in this repository's action.yml), by input
    /// `mode`: `lane` publishes the lane decision as outputs, `postmortem` fails the step unless the
    /// postmortem check passes, `backport` opens the backports of a merged hotfix, `merge` merges
    /// on a responder's authorization once the checks pass. Inputs come from INPUT_* variables,
    /// the event from GITHUB_EVENT_PATH.
    Action,
    /// Run inside a GitLab CI job (the CI/CD component in templates/hotfix-lane/): `lane` writes
    /// the lane decision as a dotenv report, `postmortem` fails the job unless the postmortem
    /// check passes, `backport` opens the backports of a merged hotfix, `merge` merges on a
    /// responder's authorization once the smoke jobs pass. Reads GitLab's predefined CI_*
    /// variables and the token from HOTFIX_LANE_TOKEN. Exit 0 done, 1 the lane says no, 2 usage
    /// error, 3 the job is not set up for it.
    #[command(name = "gitlab-ci")]
    GitlabCi {
        #[arg(value_enum)]
        mode: crate::ci::Mode,
    },
    /// Check a set-up end to end with the settings `serve` takes (flags, HOTFIX_LANE_*, --config):
    /// the webhook secret, the database, the mirror directory, git, the GitHub credentials and,
    /// with --repo, the repository's permissions, policy file and branch rules. Exit 1 when
    /// something would stop the lane.
    Doctor(Box<ops::DoctorArgs>),
    /// Backports: replay commits onto another branch, or list the backports still unmerged.
    Backport {
        #[command(subcommand)]
        command: BackportCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BackportCommand {
    /// Pick commits onto a branch in a local repository, in memory (no work tree touched, no
    /// push): creates BRANCH at the result and prints its commit id. Exit 1 on a conflict, with
    /// the conflicting paths listed.
    Local {
        /// The repository (bare or not).
        #[arg(long)]
        repo: PathBuf,
        /// Where the new branch starts: a branch, tag or commit.
        #[arg(long)]
        onto: String,
        /// The branch to create; an existing branch is never overwritten.
        #[arg(long)]
        branch: String,
        /// The commits to pick, in order (merge commits against their first parent).
        #[arg(required = true)]
        commits: Vec<String>,
    },
    /// List the backport pull requests not merged yet, oldest first; `stale` marks those open
    /// longer than their policy's `backport.stale_after`.
    Pending {
        /// Database URL (see `serve --help`).
        #[arg(long, env = "HOTFIX_LANE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
        /// Only the stale ones.
        #[arg(long)]
        stale: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: AuditFormat,
    },
}

#[derive(Debug, Args)]
struct AuditArgs {
    /// Database URL (see `serve --help`).
    #[arg(long, env = "HOTFIX_LANE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Only this repository (`owner/name`).
    #[arg(long)]
    repo: Option<String>,
    /// Only entries since: `24h`, `2026-11-01` or `2026-11-01T08:00:00Z`.
    #[arg(long)]
    since: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: AuditFormat,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Database URL (see `serve --help`).
    #[arg(long, env = "HOTFIX_LANE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Only this repository (`owner/name`, a GitLab project path).
    #[arg(long)]
    repo: Option<String>,
    /// The window's start: `30d`, `2026-11-01` or `2026-11-01T08:00:00Z`.
    #[arg(long, default_value = "30d")]
    since: String,
    /// The window's end (default now), written as `--since` is.
    #[arg(long)]
    until: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: ReportFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ReportFormat {
    Table,
    Md,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AuditFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a policy file (`.github/hotfix-lane.toml` or `.gitlab/hotfix-lane.toml`) offline;
    /// exit 1 with `line:column` messages when it is invalid.
    Check {
        file: PathBuf,
        /// The forge the file is for; by default the one its folder names (`.gitlab/` is
        /// GitLab, anything else GitHub).
        #[arg(long, value_parser = ["github", "gitlab"])]
        forge: Option<String>,
    },
}

#[derive(Debug, Args)]
struct JobsArgs {
    /// Database URL (see `serve --help`).
    #[arg(long, env = "HOTFIX_LANE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    #[command(subcommand)]
    command: JobsCommand,
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// List jobs that used up their attempts.
    Dead,
    /// Queue a dead job again with a fresh set of attempts.
    Requeue { id: i64 },
}

/// `serve`'s arguments, and which of its secrets came as command-line flags: clap's derive drops
/// where a value came from, the matches keep it.
#[derive(Debug)]
struct ServeArgs {
    options: ServeOptions,
    secret_flags: Vec<&'static str>,
}

/// The settings that hold a secret; each also comes from a file named by its `_file` twin.
const SECRETS: [&str; 6] = [
    "github_webhook_secret",
    "github_webhook_secret_previous",
    "github_token",
    "github_app_private_key",
    "admin_token",
    "dashboard_token",
];

impl clap::FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let secret_flags = SECRETS
            .into_iter()
            .filter(|id| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
            .collect();
        Ok(ServeArgs { options: ServeOptions::from_arg_matches(matches)?, secret_flags })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = ServeArgs::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ServeArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        ServeOptions::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        ServeOptions::augment_args_for_update(cmd)
    }
}

/// `serve` settings. Each is optional here so that the config file can fill what flags and
/// environment leave unset. Every secret can instead be read from a file (`--…-file`,
/// `HOTFIX_LANE_…_FILE`): flags show in process listings to every user of the machine.
#[derive(Debug, Args, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeOptions {
    /// TOML file with any of these settings (keys in snake_case, e.g. `listen = "0.0.0.0:8080"`).
    #[arg(long, env = "HOTFIX_LANE_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "HOTFIX_LANE_LISTEN")]
    listen: Option<SocketAddr>,
    /// `postgres://…` for several replicas, or a SQLite file [default: sqlite://hotfix-lane.db].
    #[arg(long, env = "HOTFIX_LANE_DATABASE_URL")]
    database_url: Option<String>,
    /// Secret of the GitHub webhook or App (X-Hub-Signature-256).
    #[arg(long, env = "HOTFIX_LANE_GITHUB_WEBHOOK_SECRET", hide_env_values = true)]
    github_webhook_secret: Option<Secret>,
    /// File holding the webhook secret (instead of the secret itself).
    #[arg(long, env = "HOTFIX_LANE_GITHUB_WEBHOOK_SECRET_FILE")]
    github_webhook_secret_file: Option<PathBuf>,
    /// The previous secret, still accepted while a rotation is under way.
    #[arg(long, env = "HOTFIX_LANE_GITHUB_WEBHOOK_SECRET_PREVIOUS", hide_env_values = true)]
    github_webhook_secret_previous: Option<Secret>,
    /// File holding the previous webhook secret.
    #[arg(long, env = "HOTFIX_LANE_GITHUB_WEBHOOK_SECRET_PREVIOUS_FILE")]
    github_webhook_secret_previous_file: Option<PathBuf>,
    /// GitHub REST API base URL (GitHub Enterprise: `https://HOST/api/v3`) [default: https://api.github.com].
    #[arg(long, env = "HOTFIX_LANE_GITHUB_API_URL")]
    github_api_url: Option<String>,
    /// Token hotfix-lane acts with on GitHub (commit statuses, comments, reads).
    #[arg(long, env = "HOTFIX_LANE_GITHUB_TOKEN", hide_env_values = true)]
    github_token: Option<Secret>,
    /// File holding the GitHub token.
    #[arg(long, env = "HOTFIX_LANE_GITHUB_TOKEN_FILE")]
    github_token_file: Option<PathBuf>,
    /// GitLab instance [default: https://gitlab.com; self-managed: its address].
    #[arg(long, env = "HOTFIX_LANE_GITLAB_URL")]
    gitlab_url: Option<String>,
    /// Token hotfix-lane acts with on GitLab: a project or group access token (or a bot user's
    /// personal token), role Maintainer, scope `api`.
    #[arg(long, env = "HOTFIX_LANE_GITLAB_TOKEN", hide_env_values = true)]
    gitlab_token: Option<Secret>,
    /// File holding the GitLab token.
    #[arg(long, env = "HOTFIX_LANE_GITLAB_TOKEN_FILE")]
    gitlab_token_file: Option<PathBuf>,
    /// Secret token of the GitLab webhook (X-Gitlab-Token); turns the GitLab endpoint on.
    #[arg(long, env = "HOTFIX_LANE_GITLAB_WEBHOOK_TOKEN", hide_env_values = true)]
    gitlab_webhook_token: Option<Secret>,
    /// File holding the GitLab webhook's secret token.
    #[arg(long, env = "HOTFIX_LANE_GITLAB_WEBHOOK_TOKEN_FILE")]
    gitlab_webhook_token_file: Option<PathBuf>,
    /// The previous secret token, still accepted while a rotation is under way.
    #[arg(long, env = "HOTFIX_LANE_GITLAB_WEBHOOK_TOKEN_PREVIOUS", hide_env_values = true)]
    gitlab_webhook_token_previous: Option<Secret>,
    /// Signing token of the GitLab webhook (`whsec_…`); once set, deliveries must be signed with it.
    #[arg(long, env = "HOTFIX_LANE_GITLAB_SIGNING_TOKEN", hide_env_values = true)]
    gitlab_signing_token: Option<Secret>,
    /// File holding the GitLab webhook's signing token.
    #[arg(long, env = "HOTFIX_LANE_GITLAB_SIGNING_TOKEN_FILE")]
    gitlab_signing_token_file: Option<PathBuf>,
    /// GitHub App id; with the App's private key, hotfix-lane acts as each installation and
    /// reports check runs.
    #[arg(long, env = "HOTFIX_LANE_GITHUB_APP_ID")]
    github_app_id: Option<u64>,
    /// The App's private key: the PEM text, or the path of a PEM file.
    #[arg(long, env = "HOTFIX_LANE_GITHUB_APP_PRIVATE_KEY", hide_env_values = true)]
    github_app_private_key: Option<Secret>,
    /// PEM file of the App's private key.
    #[arg(long, env = "HOTFIX_LANE_GITHUB_APP_PRIVATE_KEY_FILE")]
    github_app_private_key_file: Option<PathBuf>,
    /// Log format: `human`, or `json` (one object per line) [default: human].
    #[arg(long, env = "HOTFIX_LANE_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Directory of the warm git mirrors backports are made on [default: hotfix-lane-mirrors].
    #[arg(long, env = "HOTFIX_LANE_MIRROR_DIR")]
    mirror_dir: Option<PathBuf>,
    /// Disk budget of the mirrors, in MiB; least recently used mirrors go first [default: 20480].
    #[arg(long, env = "HOTFIX_LANE_MIRROR_MAX_MIB")]
    mirror_max_mib: Option<u64>,
    /// Concurrent job workers in this process [default: 4].
    #[arg(long, env = "HOTFIX_LANE_WORKERS")]
    workers: Option<usize>,
    /// Job lease; a job whose process died is picked up again after this [default: 60s].
    #[arg(long, env = "HOTFIX_LANE_JOB_LEASE", value_parser = duration)]
    #[serde(default, deserialize_with = "de_duration")]
    job_lease: Option<Duration>,
    /// Attempts before a job is dead [default: 8].
    #[arg(long, env = "HOTFIX_LANE_JOB_MAX_ATTEMPTS")]
    job_max_attempts: Option<i64>,
    /// A job attempt still running after this is stopped and retried later [default: 10m].
    #[arg(long, env = "HOTFIX_LANE_JOB_TIMEOUT", value_parser = duration)]
    #[serde(default, deserialize_with = "de_duration")]
    job_timeout: Option<Duration>,
    /// How long a client may take to send a webhook body [default: 10s].
    #[arg(long, env = "HOTFIX_LANE_BODY_TIMEOUT", value_parser = duration)]
    #[serde(default, deserialize_with = "de_duration")]
    body_timeout: Option<Duration>,
    /// MiB of webhook bodies held at once, over all requests; beyond it bodies wait [default: 64].
    #[arg(long, env = "HOTFIX_LANE_BODY_BUDGET_MIB")]
    body_budget_mib: Option<usize>,
    /// How long a client may take to send a request's headers, and how long an idle
    /// connection stays open [default: 10s].
    #[arg(long, env = "HOTFIX_LANE_HEADER_TIMEOUT", value_parser = duration)]
    #[serde(default, deserialize_with = "de_duration")]
    header_timeout: Option<Duration>,
    /// Connections served at once; more are answered 503 and closed [default: 512].
    #[arg(long, env = "HOTFIX_LANE_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// On SIGTERM, how long requests in flight and running jobs may take [default: 20s].
    #[arg(long, env = "HOTFIX_LANE_SHUTDOWN_TIMEOUT", value_parser = duration)]
    #[serde(default, deserialize_with = "de_duration")]
    shutdown_timeout: Option<Duration>,
    /// Bearer token for the admin API (`GET /api/audit`); the API is off without one.
    #[arg(long, env = "HOTFIX_LANE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<Secret>,
    /// File holding the admin API's bearer token.
    #[arg(long, env = "HOTFIX_LANE_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Read-only token that logs in to the hotfix page (the admin token does too); the page
    /// is off without either.
    #[arg(long, env = "HOTFIX_LANE_DASHBOARD_TOKEN", hide_env_values = true)]
    dashboard_token: Option<Secret>,
    /// File holding the hotfix page's token.
    #[arg(long, env = "HOTFIX_LANE_DASHBOARD_TOKEN_FILE")]
    dashboard_token_file: Option<PathBuf>,
    /// The page is reached over plain HTTP (local use): its session cookie goes without
    /// `Secure`. Leave unset behind a TLS proxy.
    #[arg(long, env = "HOTFIX_LANE_DASHBOARD_PLAIN_HTTP")]
    #[serde(default)]
    dashboard_plain_http: bool,
    /// Acknowledge deliveries without waiting for the disk. Loses deliveries on power failure;
    /// only for measuring what durability costs.
    #[arg(long, env = "HOTFIX_LANE_UNSAFE_SKIP_FSYNC")]
    #[serde(default)]
    unsafe_skip_fsync: bool,
}

/// A secret string whose `Debug` never shows it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map(Some).map_err(serde::de::Error::custom)
}

impl ServeOptions {
    /// Fills what flags and environment left unset from the config file, then from defaults.
    fn resolve(self) -> anyhow::Result<(ServeSettings, LogFormat)> {
        let file = match &self.config {
            Some(path) => read_config(path)?,
            None => ServeOptions::default(),
        };
        // Flags and environment first, then the config file; either may name a file instead.
        macro_rules! secret {
            ($name:literal, $value:ident, $path:ident) => {
                secret($name, [(self.$value, self.$path), (file.$value, file.$path)])?
            };
        }
        let secrets = [
            secret!("HOTFIX_LANE_GITHUB_WEBHOOK_SECRET", github_webhook_secret, github_webhook_secret_file),
            secret!(
                "HOTFIX_LANE_GITHUB_WEBHOOK_SECRET_PREVIOUS",
                github_webhook_secret_previous,
                github_webhook_secret_previous_file
            ),
        ]
        .into_iter()
        .flatten()
        .map(|s| s.0)
        .collect();
        let github_token = secret!("HOTFIX_LANE_GITHUB_TOKEN", github_token, github_token_file);
        let github_app_private_key =
            secret!("HOTFIX_LANE_GITHUB_APP_PRIVATE_KEY", github_app_private_key, github_app_private_key_file);
        let admin_token = secret!("HOTFIX_LANE_ADMIN_TOKEN", admin_token, admin_token_file);
        let dashboard_token = secret!("HOTFIX_LANE_DASHBOARD_TOKEN", dashboard_token, dashboard_token_file);
        let gitlab_tokens: Vec<String> = [
            secret!("HOTFIX_LANE_GITLAB_WEBHOOK_TOKEN", gitlab_webhook_token, gitlab_webhook_token_file),
            self.gitlab_webhook_token_previous.or(file.gitlab_webhook_token_previous),
        ]
        .into_iter()
        .flatten()
        .map(|s| s.0)
        .collect();
        let gitlab_signing: Vec<String> =
            secret!("HOTFIX_LANE_GITLAB_SIGNING_TOKEN", gitlab_signing_token, gitlab_signing_token_file)
                .into_iter()
                .map(|s| s.0)
                .collect();
        let gitlab_token = secret!("HOTFIX_LANE_GITLAB_TOKEN", gitlab_token, gitlab_token_file);
        let gitlab = (!gitlab_tokens.is_empty() || !gitlab_signing.is_empty()).then(|| GitLabSettings {
            url: self.gitlab_url.clone().or(file.gitlab_url.clone()).unwrap_or_else(|| "https://gitlab.com".into()),
            token: gitlab_token.map(|t| t.0),
            webhook_tokens: gitlab_tokens,
            signing_tokens: gitlab_signing,
        });
        let runner_defaults = RunnerOptions::default();
        let limit_defaults = Limits::default();
        let settings = ServeSettings {
            listen: self.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid address")),
            database_url: self.database_url.or(file.database_url).unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            github_webhook_secrets: secrets,
            github_api_url: self
                .github_api_url
                .or(file.github_api_url)
                .unwrap_or_else(|| "https://api.github.com".into()),
            gitlab,
            github_auth: github_auth(github_token, self.github_app_id.or(file.github_app_id), github_app_private_key)?,
            limits: Limits {
                body_timeout: self.body_timeout.or(file.body_timeout).unwrap_or(limit_defaults.body_timeout),
                body_budget: self
                    .body_budget_mib
                    .or(file.body_budget_mib)
                    .map_or(limit_defaults.body_budget, |mib| mib * 1024 * 1024),
                header_timeout: self.header_timeout.or(file.header_timeout).unwrap_or(limit_defaults.header_timeout),
                max_connections: self
                    .max_connections
                    .or(file.max_connections)
                    .unwrap_or(limit_defaults.max_connections),
                shutdown_grace: self
                    .shutdown_timeout
                    .or(file.shutdown_timeout)
                    .unwrap_or(limit_defaults.shutdown_grace),
                ..limit_defaults
            },
            runner: RunnerOptions {
                workers: self.workers.or(file.workers).unwrap_or(runner_defaults.workers),
                lease: self.job_lease.or(file.job_lease).unwrap_or(runner_defaults.lease),
                job_timeout: self.job_timeout.or(file.job_timeout).unwrap_or(runner_defaults.job_timeout),
                ..runner_defaults
            },
            reconcile_every: Some(crate::server::RECONCILE_EVERY),
            mirrors: crate::backport::mirror::Mirrors::new(
                self.mirror_dir.or(file.mirror_dir).unwrap_or_else(|| "hotfix-lane-mirrors".into()),
                self.mirror_max_mib.or(file.mirror_max_mib).unwrap_or(20 * 1024) * 1024 * 1024,
            ),
            admin_token: admin_token.map(|s| s.0).filter(|t| !t.is_empty()),
            dashboard_token: dashboard_token.map(|s| s.0).filter(|t| !t.is_empty()),
            dashboard_plain_http: self.dashboard_plain_http || file.dashboard_plain_http,
            max_attempts: self.job_max_attempts.or(file.job_max_attempts).unwrap_or(8).max(1),
            durable: !(self.unsafe_skip_fsync || file.unsafe_skip_fsync),
            forge_timeouts: crate::forge::Timeouts::default(),
        };
        Ok((settings, self.log_format.or(file.log_format).unwrap_or(LogFormat::Human)))
    }
}

/// The first of `given` (flags and environment, then the config file) that sets the secret named
/// `name`, either itself or as a file.
fn secret(name: &str, given: [(Option<Secret>, Option<PathBuf>); 2]) -> anyhow::Result<Option<Secret>> {
    for (value, path) in given {
        match (value, path) {
            (Some(_), Some(_)) => anyhow::bail!("set {name} or {name}_FILE, not both"),
            (Some(value), None) => return Ok(Some(value)),
            (None, Some(path)) => return read_secret(&path).map(Some),
            (None, None) => {}
        }
    }
    Ok(None)
}

/// A secret file's text, without the line break editors and `echo` leave at its end.
fn read_secret(path: &Path) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the secret file {}: {e}", path.display()))?;
    Ok(Secret(text.trim_end_matches(['\r', '\n']).to_string()))
}

/// A token, or an App id with its private key (inline PEM or a file path), or neither.
fn github_auth(token: Option<Secret>, app_id: Option<u64>, key: Option<Secret>) -> anyhow::Result<Option<GitHubAuth>> {
    match (token, app_id, key) {
        (None, None, None) => Ok(None),
        (Some(token), None, None) => Ok(Some(GitHubAuth::Token(token.0))),
        (None, Some(app_id), Some(key)) => {
            let private_key_pem = if key.0.trim_start().starts_with("-----BEGIN") {
                key.0
            } else {
                std::fs::read_to_string(&key.0)
                    .map_err(|e| anyhow::anyhow!("cannot read the GitHub App private key file {}: {e}", key.0))?
            };
            Ok(Some(GitHubAuth::App { app_id, private_key_pem }))
        }
        (Some(_), _, _) => anyhow::bail!("set a GitHub token or a GitHub App (id and private key), not both"),
        (None, _, _) => {
            anyhow::bail!("a GitHub App needs both HOTFIX_LANE_GITHUB_APP_ID and HOTFIX_LANE_GITHUB_APP_PRIVATE_KEY")
        }
    }
}

fn read_config(path: &Path) -> anyhow::Result<ServeOptions> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let place = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{}:{column}:", before.matches('\n').count() + 1)
        });
        anyhow::anyhow!("{}:{} {}", path.display(), place.unwrap_or_default(), e.message().trim())
    })
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Config { command: ConfigCommand::Check { file, forge } } => {
            let gitlab = match forge.as_deref() {
                Some(named) => named == "gitlab",
                None => file.components().any(|c| c.as_os_str() == ".gitlab"),
            };
            let forge = if gitlab { crate::lane::event::Forge::Gitlab } else { crate::lane::event::Forge::Github };
            ops::config_check(&file, forge)
        }
        Command::Serve(args) => {
            let ServeArgs { options, secret_flags } = *args;
            let (settings, log_format) = match options.resolve() {
                Ok(resolved) => resolved,
                Err(err) => return fail(err),
            };
            telemetry::init(log_format);
            for id in secret_flags {
                let (flag, var) = (id.replace('_', "-"), format!("HOTFIX_LANE_{}", id.to_uppercase()));
                tracing::warn!(
                    "--{flag} was given on the command line, where every user of this machine can read it: \
                     set {var} or {var}_FILE instead"
                );
            }
            block_on(serve(settings))
        }
        Command::Jobs(args) => {
            telemetry::init(LogFormat::Human);
            block_on(ops::jobs(args))
        }
        Command::Action => crate::ci::github::main(),
        Command::GitlabCi { mode } => crate::ci::gitlab::main(mode),
        Command::Doctor(args) => ops::doctor(*args),
        Command::Backport { command: BackportCommand::Local { repo, onto, branch, commits } } => {
            ops::backport_local(&repo, &onto, &branch, &commits)
        }
        Command::Backport { command: BackportCommand::Pending { database_url, stale, format } } => {
            telemetry::init(LogFormat::Human);
            block_on(ops::backport_pending(database_url, stale, format))
        }
        Command::Audit(args) => {
            telemetry::init(LogFormat::Human);
            block_on(ops::audit(args))
        }
        Command::Report(args) => {
            telemetry::init(LogFormat::Human);
            block_on(ops::report(args))
        }
    }
}

fn block_on(work: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => return fail(err.into()),
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(err),
    }
}

fn fail(err: anyhow::Error) -> ExitCode {
    eprintln!("hotfix-lane: {}", said_once(&err));
    ExitCode::FAILURE
}

/// An error and its causes, each said once: a wrapper whose message already quotes its cause
/// (as most of sqlx's and std's do) is not followed by that cause again.
fn said_once(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain().map(|c| c.to_string()) {
        if !out.contains(cause.trim()) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(cause.trim());
        }
    }
    out
}

async fn serve(settings: ServeSettings) -> anyhow::Result<()> {
    let running = server::start(settings).await?;
    let stop = running.stopper();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    running.wait().await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(args).expect("valid arguments");
        match cli.command {
            Command::Serve(args) => *args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn flags_win_over_the_config_file_which_fills_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serve.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1111\"\nworkers = 3\njob_lease = \"90s\"\ngithub_webhook_secret = \"from-file\"\n",
        )
        .unwrap();
        let args =
            serve_args(&["hotfix-lane", "serve", "--config", file.to_str().unwrap(), "--listen", "127.0.0.1:2222"]);
        let (settings, format) = args.options.resolve().unwrap();
        assert_eq!(settings.listen.port(), 2222, "the flag wins");
        assert_eq!(settings.runner.workers, 3, "the file fills what flags leave unset");
        assert_eq!(settings.runner.lease, Duration::from_secs(90));
        assert_eq!(settings.github_webhook_secrets, vec!["from-file".to_string()]);
        assert_eq!(settings.database_url, DEFAULT_DATABASE_URL, "defaults fill the rest");
        assert!(settings.durable);
        assert_eq!(format, LogFormat::Human);
    }

    #[test]
    fn secrets_come_from_files_and_flags_are_noted() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, token) = (dir.path().join("secret"), dir.path().join("token"));
        std::fs::write(&secret, "s3cret\n").unwrap();
        std::fs::write(&token, "ghp_from_file").unwrap();
        let args = serve_args(&[
            "hotfix-lane",
            "serve",
            "--github-webhook-secret-file",
            secret.to_str().unwrap(),
            "--github-token-file",
            token.to_str().unwrap(),
            "--admin-token",
            "on-the-command-line",
        ]);
        assert_eq!(args.secret_flags, vec!["admin_token"], "only the secret itself counts, not a file's path");
        let (settings, _) = args.options.resolve().unwrap();
        assert_eq!(settings.github_webhook_secrets, vec!["s3cret".to_string()], "the final line break is dropped");
        assert!(matches!(settings.github_auth, Some(GitHubAuth::Token(t)) if t == "ghp_from_file"));

        let both = serve_args(&["hotfix-lane", "serve", "--github-token", "t", "--github-token-file", "/nonexistent"]);
        let err = both.options.resolve().err().expect("refused").to_string();
        assert!(err.contains("HOTFIX_LANE_GITHUB_TOKEN or HOTFIX_LANE_GITHUB_TOKEN_FILE"), "{err}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let args = serve_args(&["hotfix-lane", "serve", "--github-webhook-secret", "hunter2"]);
        assert!(!format!("{args:?}").contains("hunter2"));
    }

    #[test]
    fn the_page_token_comes_from_a_file_and_plain_http_from_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let (token, file) = (dir.path().join("dashboard"), dir.path().join("serve.toml"));
        std::fs::write(&token, "page-token\n").unwrap();
        std::fs::write(&file, "dashboard_plain_http = true\n").unwrap();
        let args = serve_args(&[
            "hotfix-lane",
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--dashboard-token-file",
            token.to_str().unwrap(),
        ]);
        let (settings, _) = args.options.resolve().unwrap();
        assert_eq!(settings.dashboard_token.as_deref(), Some("page-token"));
        assert!(settings.dashboard_plain_http);
        let (settings, _) = serve_args(&["hotfix-lane", "serve"]).options.resolve().unwrap();
        assert_eq!(settings.dashboard_token, None, "off unless set");
        assert!(!settings.dashboard_plain_http, "the cookie is Secure unless told otherwise");
    }
}
