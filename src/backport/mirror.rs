//! The mirror cache: one bare repository per forge repository under `HOTFIX_LANE_MIRROR_DIR`,
//! created on first use and fetched incrementally, so a backport never clones.
//!
//! Transport goes through the `git` command (its fetch is the fastest there is, and it speaks
//! every protocol the forge does); picking happens in process with libgit2. Credentials travel
//! only in the child's environment as an HTTP header (never in a URL, the repository config or
//! an argument list that `ps` shows, never logged). A lock file per mirror makes concurrent
//! jobs on one repository take turns, across processes too; mirrors not used for longest are
//! removed once the cache outgrows its budget. A git command still running after its time limit
//! is killed: a host that accepts and never answers must not hold the mirror (and a blocking
//! thread) forever.
//!
//! Each git command holds the mirror's lock too (the lock file is its standard input): a git left
//! running by a lane process that was killed keeps the mirror until it ends, so whoever takes the
//! lock next knows no git is at work in it, and clears the ref locks a git killed halfway left.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("mirror cache: {0}")]
    Io(#[from] std::io::Error),
    #[error("mirror: {0}")]
    Git(#[from] git2::Error),
    #[error("git {action} failed: {detail}")]
    Command { action: &'static str, detail: String },
}

/// The cache directory, its size budget and how long one git command may run.
#[derive(Debug, Clone)]
pub struct Mirrors {
    dir: PathBuf,
    max_bytes: u64,
    git_timeout: Duration,
}

/// One mirror, held exclusively until dropped.
pub struct Mirror {
    path: PathBuf,
    repo: git2::Repository,
    git_timeout: Duration,
    lock: File,
}

/// Who the forge should see: an access token sent as HTTP basic auth, or nothing (local paths).
#[derive(Clone, Default)]
pub struct Credentials(Option<String>);

impl Credentials {
    pub fn token(token: String) -> Credentials {
        Credentials(Some(token))
    }

    /// The child's environment: git reads `http.extraHeader` from `GIT_CONFIG_*` variables.
    fn apply(&self, command: &mut Command) {
        command.env("GIT_TERMINAL_PROMPT", "0").env("GCM_INTERACTIVE", "never");
        if let Some(token) = &self.0 {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
            command
                .env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", format!("Authorization: Basic {basic}"));
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Credentials(token)" } else { "Credentials(none)" })
    }
}

/// What a creating push came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Created,
    /// The branch exists already: it is never overwritten.
    Exists,
}

impl Mirrors {
    /// Git commands get five minutes each, ample for an incremental fetch or a push.
    pub fn new(dir: PathBuf, max_bytes: u64) -> Mirrors {
        Mirrors { dir, max_bytes, git_timeout: Duration::from_secs(5 * 60) }
    }

    pub fn with_git_timeout(self, git_timeout: Duration) -> Mirrors {
        Mirrors { git_timeout, ..self }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether backports can be made here: the directory, or the nearest existing directory it
    /// would be created in, takes a new file. A probe file is made and removed; nothing is
    /// created otherwise, so checking at start-up leaves no trace.
    pub fn check_writable(&self) -> std::io::Result<()> {
        let existing = self
            .dir
            .ancestors()
            .map(|a| if a.as_os_str().is_empty() { Path::new(".") } else { a })
            .find(|a| a.exists())
            .unwrap_or(Path::new("."));
        if !existing.is_dir() {
            return Err(std::io::Error::other(format!("{} is not a directory", existing.display())));
        }
        // Unique per call: servers started at once in one process (tests) must not collide.
        static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let probe = existing.join(format!(".hotfix-lane-probe-{}-{n}", std::process::id()));
        File::options().write(true).create_new(true).open(&probe)?;
        std::fs::remove_file(&probe)
    }

    /// Opens (creating on first use) the mirror named `key`, waiting for other users of it.
    pub fn open(&self, key: &str) -> Result<Mirror, MirrorError> {
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "mirror keys are plain names");
        std::fs::create_dir_all(&self.dir)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.dir.join(format!("{key}.lock")))?;
        lock.lock()?;
        // The lock file's modification time is the mirror's last use, for eviction.
        lock.set_modified(SystemTime::now())?;
        let path = self.dir.join(format!("{key}.git"));
        // No git holds the lock now (each one inherits it), so a lock file in the mirror was
        // left by a git that was killed: git would refuse to touch those refs ever again.
        clear_stale_locks(&path, true)?;
        let repo = match git2::Repository::open_bare(&path) {
            Ok(repo) => repo,
            Err(_) => {
                if path.exists() {
                    // A mirror left half-made by a crash: start it again.
                    std::fs::remove_dir_all(&path)?;
                }
                git2::Repository::init_bare(&path)?
            }
        };
        Ok(Mirror { path, repo, git_timeout: self.git_timeout, lock })
    }

    /// Removes the mirrors used longest ago (and not in use now) until the cache fits its
    /// budget; `keep` is never removed.
    pub fn evict(&self, keep: &str) -> Result<Vec<String>, MirrorError> {
        let mut mirrors = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(key) = name.strip_suffix(".lock") else { continue };
            let used = entry.metadata()?.modified()?;
            let size = dir_size(&self.dir.join(format!("{key}.git")));
            mirrors.push((used, key.to_string(), size));
        }
        let mut total: u64 = mirrors.iter().map(|m| m.2).sum();
        mirrors.sort();
        let mut removed = Vec::new();
        for (_, key, size) in mirrors {
            if total <= self.max_bytes {
                break;
            }
            if key == keep {
                continue;
            }
            let lock = File::options().write(true).open(self.dir.join(format!("{key}.lock")))?;
            if lock.try_lock().is_err() {
                continue;
            }
            std::fs::remove_dir_all(self.dir.join(format!("{key}.git"))).or_else(ignore_missing)?;
            std::fs::remove_file(self.dir.join(format!("{key}.lock"))).or_else(ignore_missing)?;
            total = total.saturating_sub(size);
            removed.push(key);
        }
        Ok(removed)
    }
}

/// Removes git's `*.lock` files at the top of the mirror and under `refs/` (those a fetch
/// takes: `packed-refs.lock`, `shallow.lock`, `refs/heads/x.lock`, …).
fn clear_stale_locks(dir: &Path, top: bool) -> std::io::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if entry.file_type()?.is_dir() {
            if !top || name == "refs" {
                clear_stale_locks(&entry.path(), false)?;
            }
        } else if name.to_string_lossy().ends_with(".lock") {
            tracing::warn!(file = %entry.path().display(), "removing a lock a killed git left in the mirror");
            std::fs::remove_file(entry.path()).or_else(ignore_missing)?;
        }
    }
    Ok(())
}

fn ignore_missing(err: std::io::Error) -> std::io::Result<()> {
    if err.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(err)
    }
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

impl Mirror {
    pub fn repo(&self) -> &git2::Repository {
        &self.repo
    }

    /// Fetches `refspecs` from `url`. Patterns (`*`) that match nothing are not an error.
    pub fn fetch(&self, url: &str, credentials: &Credentials, refspecs: &[String]) -> Result<(), MirrorError> {
        let mut args = vec!["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--prune", url];
        args.extend(refspecs.iter().map(String::as_str));
        self.git("fetch", credentials, &args).map(drop)
    }

    /// Creates `branch` at `tip` on `url`, only if the branch does not exist there.
    pub fn push_new(
        &self,
        url: &str,
        credentials: &Credentials,
        tip: git2::Oid,
        branch: &str,
    ) -> Result<Pushed, MirrorError> {
        let target = format!("refs/heads/{branch}");
        let lease = format!("--force-with-lease={target}:");
        let refspec = format!("{tip}:{target}");
        match self.git("push", credentials, &["push", "--quiet", "--porcelain", &lease, url, &refspec]) {
            Ok(_) => Ok(Pushed::Created),
            // The lease names no commit: git refuses because the branch is there ("stale info").
            Err(MirrorError::Command { detail, .. })
                if detail.contains("stale info") || detail.contains("[rejected]") =>
            {
                Ok(Pushed::Exists)
            }
            Err(err) => Err(err),
        }
    }

    /// `program` in a child that holds the mirror's lock for as long as it runs, whatever
    /// becomes of this process.
    fn command(&self, program: &str) -> std::io::Result<Command> {
        let mut command = Command::new(program);
        command.stdin(Stdio::from(self.lock.try_clone()?));
        Ok(command)
    }

    fn git(&self, action: &'static str, credentials: &Credentials, args: &[&str]) -> Result<String, MirrorError> {
        let failed = |detail: String| MirrorError::Command { action, detail };
        let mut command = self.command("git").map_err(|e| failed(e.to_string()))?;
        command.arg("--git-dir").arg(&self.path).args(args);
        // Only what this call sets: no inherited repository or config from the environment.
        for var in ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT"] {
            command.env_remove(var);
        }
        credentials.apply(&mut command);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| failed(e.to_string()))?;
        let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
        let Some(status) = wait_at_most(&mut child, self.git_timeout).map_err(|e| failed(e.to_string()))? else {
            return Err(failed(format!("killed after {:?} without finishing", self.git_timeout)));
        };
        let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
        if status.success() {
            return Ok(String::from_utf8_lossy(&stdout).into_owned());
        }
        let detail = format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
        Err(failed(detail.trim().to_string()))
    }
}

/// Reads a child's pipe to its end on a thread of its own, so that the child never blocks on a
/// full pipe while it is waited for.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut out);
        }
        out
    })
}

/// Waits for `child` for at most `limit`, then kills it; `None` when it had to be killed.
fn wait_at_most(child: &mut Child, limit: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            child.kill()?;
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized_mirror(mirrors: &Mirrors, key: &str, bytes: usize) {
        let mirror = mirrors.open(key).unwrap();
        std::fs::write(mirror.path.join("objects/filler"), vec![0u8; bytes]).unwrap();
    }

    #[test]
    fn the_least_recently_used_mirrors_go_first_and_never_one_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let mirrors = Mirrors::new(dir.path().to_path_buf(), 2_500_000);
        for key in ["old", "busy", "recent"] {
            sized_mirror(&mirrors, key, 1_000_000);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // `busy` is older than `recent` but in use: it stays, and `recent` too (asked to keep).
        let held = mirrors.open("busy").unwrap();
        let age = |key: &str| File::open(dir.path().join(format!("{key}.lock"))).unwrap();
        age("busy").set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1)).unwrap();
        let removed = mirrors.evict("recent").unwrap();
        assert_eq!(removed, vec!["old"]);
        assert!(!dir.path().join("old.git").exists());
        drop(held);
        assert_eq!(mirrors.evict("recent").unwrap(), Vec::<String>::new(), "within budget now");
    }

    #[test]
    fn one_job_at_a_time_per_mirror() {
        let dir = tempfile::tempdir().unwrap();
        let mirrors = Mirrors::new(dir.path().to_path_buf(), u64::MAX);
        let first = mirrors.open("repo").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let other = mirrors.clone();
        let waiter = std::thread::spawn(move || {
            let _second = other.open("repo").unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(std::time::Duration::from_millis(200)).is_err(), "the second waits");
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(5)).expect("then gets its turn");
        waiter.join().unwrap();
    }

    #[test]
    fn a_git_left_running_by_a_killed_lane_process_keeps_the_mirror_until_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mirrors = Mirrors::new(dir.path().to_path_buf(), u64::MAX);
        let mirror = mirrors.open("repo").unwrap();
        let mut child = mirror.command("sleep").unwrap().arg("1").spawn().unwrap();
        // The lane process's own hold ends (as when it is killed); the child's does not.
        drop(mirror);
        let lock = File::open(dir.path().join("repo.lock")).unwrap();
        assert!(lock.try_lock().is_err(), "the mirror stays locked while its git runs");
        child.wait().unwrap();
        lock.try_lock().expect("and is free once it ends");
    }

    #[test]
    fn ref_locks_a_killed_git_left_do_not_stop_the_next_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let remote = dir.path().join("remote.git");
        let upstream = git2::Repository::init_bare(&remote).unwrap();
        let commit = |message: &str| {
            let tree = upstream.find_tree(upstream.treebuilder(None).unwrap().write().unwrap()).unwrap();
            let parent = upstream.refname_to_id("refs/heads/main").ok().map(|id| upstream.find_commit(id).unwrap());
            let who = git2::Signature::now("Mona", "mona@example.com").unwrap();
            upstream
                .commit(Some("refs/heads/main"), &who, &who, message, &tree, &parent.iter().collect::<Vec<_>>())
                .unwrap()
        };
        commit("first");
        let mirrors = Mirrors::new(dir.path().join("cache"), u64::MAX);
        let url = format!("file://{}", remote.display());
        let refspecs = ["+refs/heads/*:refs/heads/*".to_string()];
        let mirror = mirrors.open("repo").unwrap();
        mirror.fetch(&url, &Credentials::default(), &refspecs).unwrap();
        // What a git killed in the middle of its fetch leaves behind.
        std::fs::write(mirror.path.join("refs/heads/main.lock"), "").unwrap();
        std::fs::write(mirror.path.join("packed-refs.lock"), "").unwrap();
        drop(mirror);
        let second = commit("second");
        let mirror = mirrors.open("repo").unwrap();
        mirror.fetch(&url, &Credentials::default(), &refspecs).unwrap();
        assert_eq!(mirror.repo().refname_to_id("refs/heads/main").unwrap(), second);
    }

    #[test]
    fn credentials_stay_out_of_the_mirror_and_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let remote = dir.path().join("remote.git");
        git2::Repository::init_bare(&remote).unwrap();
        let mirrors = Mirrors::new(dir.path().join("cache"), u64::MAX);
        let mirror = mirrors.open("repo").unwrap();
        let credentials = Credentials::token("ghs_very_secret".into());
        let url = format!("file://{}", remote.display());
        mirror.fetch(&url, &credentials, &["+refs/heads/*:refs/heads/*".into()]).unwrap();
        let config = std::fs::read_to_string(mirror.path.join("config")).unwrap();
        assert!(!config.contains("ghs_very_secret") && !config.contains("extraHeader"), "{config}");
        assert_eq!(format!("{credentials:?}"), "Credentials(token)");
    }
}
