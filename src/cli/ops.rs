//! The operator's commands: `config check`, `audit`, `report`, `jobs`, `backport pending` and
//! `backport local`. Those that read what the server stored never create a database.

use std::path::Path;
use std::process::ExitCode;

use std::path::PathBuf;

use super::{block_on, fail, AuditArgs, AuditFormat, JobsArgs, JobsCommand, ReportArgs, ReportFormat, ServeOptions};
use crate::audit_view;
use crate::lane::policy::Policy;
use crate::store::{Store, StoreOptions};

pub(super) async fn backport_pending(
    database_url: String,
    stale_only: bool,
    format: AuditFormat,
) -> anyhow::Result<()> {
    let store = Store::open_existing(&database_url, &StoreOptions::default()).await?;
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let mut pending = crate::dispatch::pending_backports(&store, now).await?;
    pending.retain(|p| p.backport.stale || !stale_only);
    match format {
        AuditFormat::Json => println!("{}", serde_json::to_string_pretty(&pending)?),
        AuditFormat::Table => {
            println!(
                "{:<32} {:>6} {:<24} {:>6} {:<9} {:>8}",
                "repository", "change", "target", "pull", "state", "open"
            );
            for p in &pending {
                let b = &p.backport;
                let pull = b.pull.map_or_else(|| "-".into(), |n| format!("#{n}"));
                let state = serde_json::to_value(b.state)?.as_str().unwrap_or_default().to_string();
                let age =
                    crate::lane::policy::format_duration(std::time::Duration::from_millis(b.age_ms.max(0) as u64));
                let stale = if b.stale { "  stale" } else { "" };
                println!(
                    "{:<32} {:>6} {:<24} {:>6} {:<9} {:>8}{stale}",
                    p.repo,
                    format!("#{}", p.number),
                    b.target,
                    pull,
                    state,
                    age
                );
            }
        }
    }
    Ok(())
}

pub(super) fn backport_local(repo: &Path, onto: &str, branch: &str, commits: &[String]) -> ExitCode {
    use crate::backport::Picked;
    match crate::backport::local(repo, onto, branch, commits) {
        Ok((Picked::Conflict { commit, paths, .. }, _)) => {
            eprintln!("hotfix-lane: {commit} conflicts with {onto}; no branch was created. Conflicting paths:");
            for p in paths {
                eprintln!("  {}\t{}", p.path, p.kind.describe());
            }
            ExitCode::FAILURE
        }
        Ok((picked, tip)) => {
            match picked {
                Picked::Clean { skipped, .. } => {
                    skipped.iter().for_each(|id| eprintln!("hotfix-lane: {id} is already on {onto}: skipped"))
                }
                _ => eprintln!("hotfix-lane: every commit is already on {onto}: `{branch}` starts there"),
            }
            println!("{tip}");
            ExitCode::SUCCESS
        }
        Err(message) => fail(anyhow::anyhow!(message)),
    }
}

pub(super) fn config_check(file: &Path, forge: crate::lane::event::Forge) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) => return fail(anyhow::anyhow!("cannot read {}: {err}", file.display())),
    };
    match Policy::check_for(&text, forge) {
        Ok(policy) => {
            // Valid but weaker than it looks: said, not refused.
            for warning in policy.warnings() {
                eprintln!("{}: warning: {warning}", file.display());
            }
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for err in &errors {
                match err.location {
                    Some(_) => eprintln!("{}:{err}", file.display()),
                    None => eprintln!("{}: {err}", file.display()),
                }
            }
            ExitCode::FAILURE
        }
    }
}

pub(super) async fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let since =
        args.since.as_deref().map(|s| audit_view::parse_since(s, now)).transpose().map_err(anyhow::Error::msg)?;
    let store = Store::open_existing(&args.database_url, &StoreOptions::default()).await?;
    let entries = store.audit(args.repo.as_deref(), since).await?;
    match args.format {
        AuditFormat::Table => println!("{}", audit_view::table(&entries)),
        AuditFormat::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
    }
    Ok(())
}

pub(super) async fn report(args: ReportArgs) -> anyhow::Result<()> {
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let since = audit_view::parse_since(&args.since, now).map_err(anyhow::Error::msg)?;
    let until =
        args.until.as_deref().map(|u| audit_view::parse_since(u, now)).transpose().map_err(anyhow::Error::msg)?;
    let until = until.unwrap_or(now);
    anyhow::ensure!(since < until, "the window is empty: --since must come before --until");
    let store = Store::open_existing(&args.database_url, &StoreOptions::default()).await?;
    let scope = crate::report::model::Scope { repo: args.repo, since, until };
    let figures = crate::report::figures(&store, &scope, now).await?;
    use crate::report::text;
    match args.format {
        ReportFormat::Table => print!("{}", text::table(&figures)),
        ReportFormat::Md => print!("{}", text::markdown(&figures)),
        ReportFormat::Csv => print!("{}", text::csv(&figures)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&figures)?),
    }
    Ok(())
}

pub(super) async fn jobs(args: JobsArgs) -> anyhow::Result<()> {
    let store = Store::open_existing(&args.database_url, &StoreOptions::default()).await?;
    match args.command {
        JobsCommand::Dead => {
            let dead = store.jobs_in_state("dead").await?;
            if dead.is_empty() {
                println!("no dead jobs");
            }
            for job in dead {
                println!(
                    "{}\t{}\t{}\tattempts={}\t{}",
                    job.id,
                    job.kind,
                    job.ordering_key,
                    job.attempts,
                    job.last_error.unwrap_or_default()
                );
            }
        }
        JobsCommand::Requeue { id } => {
            if !store.requeue_dead(id, crate::clock::Clock::now_ms(&crate::clock::SystemClock)).await? {
                anyhow::bail!("no dead job with id {id}");
            }
            println!("job {id} queued again");
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(super) struct DoctorArgs {
    /// The repository to check (`owner/name`): the App's installation or the token's access,
    /// the policy file on its default branch, and that branch's rules.
    #[arg(long)]
    repo: Option<String>,
    /// A delivery's body, saved from the webhook's *Recent Deliveries* page, to check the
    /// signature GitHub sent with it (--delivery-signature) against the configured secret.
    #[arg(long, requires = "delivery_signature")]
    delivery_body: Option<PathBuf>,
    /// That delivery's `X-Hub-Signature-256` header: `sha256=…`.
    #[arg(long, requires = "delivery_body")]
    delivery_signature: Option<String>,
    #[command(flatten)]
    options: ServeOptions,
}

pub(super) fn doctor(args: DoctorArgs) -> ExitCode {
    let (settings, _) = match args.options.resolve() {
        Ok(resolved) => resolved,
        Err(err) => return fail(err),
    };
    let delivery = match (&args.delivery_body, args.delivery_signature) {
        (Some(path), Some(signature)) => match std::fs::read(path) {
            Ok(body) => Some((body, signature)),
            Err(e) => return fail(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        },
        _ => None,
    };
    let checks = crate::doctor::Checks { repo: args.repo, delivery };
    let mut failed = false;
    let code = block_on(async {
        let findings = crate::doctor::run(&settings, &checks).await;
        print!("{}", findings.render());
        failed = findings.failed();
        Ok(())
    });
    if failed {
        ExitCode::FAILURE
    } else {
        code
    }
}
