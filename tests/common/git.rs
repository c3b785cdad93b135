//! Real git repositories for backport tests: a bare "remote" the fake GitHub serves as the
//! repository's clone URL, and a work tree that builds its history with the git command.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct GitWorld {
    _dir: tempfile::TempDir,
    pub remote: PathBuf,
    pub work: PathBuf,
    /// Commits made so far, for distinct, repeatable commit dates.
    tick: std::cell::Cell<u64>,
}

impl GitWorld {
    /// A repository with `master` and `release-1` (cut from master), both moved on since.
    pub fn new() -> GitWorld {
        let dir = tempfile::tempdir().unwrap();
        let remote = dir.path().join("remote.git");
        let work = dir.path().join("work");
        run(dir.path(), &["init", "-q", "--bare", "-b", "master", remote.to_str().unwrap()]);
        run(dir.path(), &["init", "-q", "-b", "master", work.to_str().unwrap()]);
        let world = GitWorld { _dir: dir, remote, work, tick: 0.into() };
        world.git(&["remote", "add", "origin", world.remote.to_str().unwrap()]);
        let lines: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        world.write("app/server.rs", &lines);
        world.write("app/config.toml", "retries = 3\ntimeout = 10\n");
        world.write("docs/guide.md", "# Guide\n\nHow to run it.\n");
        world.commit("Initial import", "Mona <mona@example.com>");
        world.git(&["branch", "release-1"]);
        world.write("docs/guide.md", "# Guide\n\nHow to run it, in more words.\n");
        world.commit("Improve the guide", "Mona <mona@example.com>");
        world.git(&["switch", "-q", "release-1"]);
        world.write("RELEASE", "1.0\n");
        world.commit("Release 1.0", "Mona <mona@example.com>");
        world.git(&["switch", "-q", "master"]);
        world.push(&["master", "release-1"]);
        world
    }

    pub fn git(&self, args: &[&str]) -> String {
        let n = self.tick.get() + 1;
        self.tick.set(n);
        let date = format!("@{} +0000", 1_790_000_000 + n * 60);
        let out = Command::new("git")
            .current_dir(&self.work)
            .args(args)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .env("GIT_AUTHOR_NAME", "GitHub")
            .env("GIT_AUTHOR_EMAIL", "noreply@github.com")
            .env("GIT_COMMITTER_NAME", "GitHub")
            .env("GIT_COMMITTER_EMAIL", "noreply@github.com")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn write(&self, path: &str, content: &str) {
        self.write_bytes(path, content.as_bytes());
    }

    pub fn write_bytes(&self, path: &str, content: &[u8]) {
        let file = self.work.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }

    /// Stages everything and commits as `author` ("Name <email>"); returns the commit id.
    pub fn commit(&self, message: &str, author: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--author", author, "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    pub fn push(&self, refspecs: &[&str]) {
        let mut args = vec!["push", "-q", "-f", "origin"];
        args.extend(refspecs);
        self.git(&args);
    }

    /// A branch's tip on the remote, if the branch exists there.
    pub fn remote_tip(&self, branch: &str) -> Option<String> {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&self.remote)
            .args(["rev-parse", "--verify", "-q", &format!("refs/heads/{branch}")])
            .output()
            .unwrap();
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// What `git cherry-pick -x` makes of `commits` on `onto` (merge commits with `-m 1`):
    /// the tree id every backport must match.
    pub fn cherry_pick_tree(&self, onto: &str, commits: &[&str]) -> String {
        self.git(&["switch", "-q", "--detach", onto]);
        for commit in commits {
            let parents = self.git(&["rev-list", "--parents", "-n", "1", commit]).split(' ').count() - 1;
            if parents > 1 {
                self.git(&["cherry-pick", "-x", "-m", "1", commit]);
            } else {
                self.git(&["cherry-pick", "-x", commit]);
            }
        }
        let tree = self.git(&["rev-parse", "HEAD^{tree}"]);
        self.git(&["switch", "-q", "master"]);
        tree
    }

    /// Mona resolves the backport conflict on `branch` over line 5 of `app/server.rs` (the fix's
    /// line against master's rewording) and pushes it; returns the resolving commit.
    pub fn resolve_reworded_line_5(&self, branch: &str) -> String {
        self.git(&["fetch", "-q", "origin", branch]);
        self.git(&["switch", "-q", "-c", "resolve", "FETCH_HEAD"]);
        let text = std::fs::read_to_string(self.work.join("app/server.rs")).unwrap();
        let resolved: String = text
            .lines()
            .filter(|l| !l.starts_with("<<<<<<<") && !l.starts_with("=======") && !l.starts_with(">>>>>>>"))
            .filter(|l| *l != "line 5" && *l != "line five, reworded on master")
            .map(|l| format!("{l}\n"))
            .collect();
        self.write("app/server.rs", &resolved);
        let fixed = self.commit("Resolve the backport", "Mona <mona@example.com>");
        self.push(&[&format!("resolve:{branch}")]);
        fixed
    }

    pub fn tree_of(&self, commit: &str) -> String {
        remote_git(&self.remote, &["rev-parse", &format!("{commit}^{{tree}}")])
    }
}

pub fn remote_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("--git-dir").arg(dir).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn run(dir: &Path, args: &[&str]) {
    let out = Command::new("git").current_dir(dir).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}
