#!/usr/bin/env python3
"""Backport benchmark: `hotfix-lane backport local` against the ways CI tools cherry-pick.

For each commit to backport, four approaches are timed in the same run, each as whole
processes (time.perf_counter around the subprocess calls):

  hotfix-lane      `hotfix-lane backport local --repo MIRROR --onto ONTO --branch B COMMIT` on a
                   warm bare mirror: one process, cherry-pick in memory, no work tree.
  fresh clone      what popular backport Actions do: `git clone file://MIRROR` (pack protocol,
                   like a network clone; no hardlinks) + `git switch -c B origin/ONTO-BRANCH`
                   + `git cherry-pick -x COMMIT`.
  cached worktree  the best a git-CLI tool can do: a non-bare clone made once before timing;
                   per run `git switch -C B origin/ONTO-BRANCH` + `git cherry-pick -x COMMIT`.
  floor            plumbing on the same bare mirror: `git merge-tree --write-tree
                   --merge-base=COMMIT^1 ONTO COMMIT` + `git commit-tree TREE -p ONTO -m MSG`
                   + `git update-ref refs/heads/B NEW`.

Merge commits are picked against their first parent (`cherry-pick -m 1`, merge base COMMIT^1).
Every run's resulting tree (`TIP^{tree}`) must equal the one `git cherry-pick` produced in the
cached work tree, and the new tip's only parent must be ONTO; a mismatch, a conflict or a failed
command stops the benchmark with the details. Each approach runs once as a warm-up per commit,
then R times (--reps, default 5; the fresh clone --clone-reps, default 3), the approaches taking
turns in a rotating order. Outside the timed region, the branch a run created is deleted (and
the cached work tree is put back at ONTO) so every run does the same work, and `sync` runs so no
writeback from the previous run is pending. Each fresh clone goes to a new directory, and all of
them are removed at the end: on ext4, deleting a tree of tens of thousands of files makes the next
few minutes of file creation several times slower, which no fresh CI machine sees (for the same
reason, wait a few minutes after deleting big trees before running this). Reported per commit and
approach: median and min in milliseconds and the ratio of the median to the floor's median from
the same run; then a summary with hotfix-lane / floor (target <= 1.5x) and fresh clone /
hotfix-lane, both as sums of the per-commit medians and per commit.

Usage

  python3 benches/backport.py [options]
      Generates (once, then cached) a repository with `git fast-import` and backports its
      hotfixes onto `main`. The repository is deterministic for given --files, --commits,
      --seed, --releases and --release-commits; it is stored under
      $CARGO_TARGET_DIR/bench-backport-repo/ (default target/) keyed by those parameters.
      Default size: ~25,000 files of a few KB in nested directories, ~20,000 commits (pull
      request merges among them, small line edits, adds, renames, deletes, binary edits), release
      branches release-1.0..release-1.3 cut at 60..95% of the history, each with three dozen
      commits of its own. The hotfixes are commits made on a release branch after its cut, of
      mixed kinds - a single-file fix, a multi-file change, a rename, a binary file edit, a merge
      commit - touching only paths that main left alone after the cut, so they apply cleanly.

  python3 benches/backport.py --repo PATH-OR-URL --onto REF COMMIT...
      Backports the given commits onto REF of an existing repository, e.g. a clone of
      rust-lang/cargo:  --repo ~/src/cargo --onto origin/rust-1.80.0 <commit> <commit>
      The repository is first mirrored into a temporary directory (`git clone --mirror`,
      hardlinked for a local path; the source is never written to). In that mirror every
      refs/remotes/origin/X without a refs/heads/X also becomes refs/heads/X, so the mirror looks
      like the hosting server to the clones; REF may therefore be `origin/X` or `X`. REF is
      passed unchanged to hotfix-lane and to the floor.

Options

  --hotfix-lane PATH   binary to time (default $CARGO_TARGET_DIR/release/hotfix-lane, i.e.
                       target/release/hotfix-lane; build it with `cargo build --release`)
  --no-hotfix-lane     time only the three git approaches
  --reps N             timed runs per commit (default 5); --clone-reps N for the fresh clone (3)
  --json PATH          also write every sample and the summary as JSON
  --files N --commits N --seed N --releases N --release-commits N --hotfixes N
                       shape of the generated repository and how many hotfixes to backport
  --generate-only      generate (or find) the cached repository, print it and exit
  --tmpdir DIR         where the mirror and the clones go (default $CARGO_TARGET_DIR)
  --keep-temp          leave the temporary directory in place for inspection

Requires Python 3.11 and git >= 2.40 (`merge-tree --write-tree` came in 2.38, its
`--merge-base` option in 2.40). git runs with the system and global configuration ignored
(GIT_CONFIG_NOSYSTEM, GIT_CONFIG_GLOBAL=/dev/null) and with gc.auto=0 and maintenance.auto=false,
so local settings and background repacks cannot land in a timed region. The figures are wall
clock times on whatever else the machine is doing: the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ["CARGO_TARGET_DIR"]).resolve() if os.environ.get("CARGO_TARGET_DIR") else ROOT / "target"
MIN_GIT = (2, 40)
GEN_VERSION = 1
TARGET_RATIO = 1.5


class BenchError(Exception):
    pass


def fail(message: str) -> None:
    raise BenchError(message)


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
        LANGUAGE="C",
        GIT_COMMITTER_NAME="Backport Bench",
        GIT_COMMITTER_EMAIL="backport-bench@example.invalid",
        GIT_CONFIG_COUNT="2",
        GIT_CONFIG_KEY_0="gc.auto",
        GIT_CONFIG_VALUE_0="0",
        GIT_CONFIG_KEY_1="maintenance.auto",
        GIT_CONFIG_VALUE_1="false",
    )
    return env


ENV = _git_env()


def show(argv) -> str:
    return " ".join(shlex.quote(str(a)) for a in argv)


def describe(p: subprocess.CompletedProcess) -> str:
    out = (p.stderr or b"").decode("utf-8", "replace").strip()
    if not out:
        out = (p.stdout or b"").decode("utf-8", "replace").strip()
    return f"`{show(p.args)}` exited with {p.returncode}" + (f":\n{out}" if out else "")


def run(argv, *, input: bytes | None = None, env=None, check: bool = True) -> subprocess.CompletedProcess:
    argv = [str(a) for a in argv]
    try:
        p = subprocess.run(argv, input=input, env=env or ENV, capture_output=True)
    except OSError as e:
        fail(f"cannot run `{show(argv)}`: {e}")
    if check and p.returncode != 0:
        fail(describe(p))
    return p


def out(p: subprocess.CompletedProcess) -> str:
    return p.stdout.decode("utf-8", "surrogateescape").rstrip("\n")


def git(repo, *args, input: bytes | None = None, env=None, check: bool = True) -> str:
    return out(run(["git", "-C", repo, *args], input=input, env=env, check=check))


def git_version() -> tuple[int, int, str]:
    text = out(run(["git", "--version"]))
    m = re.search(r"(\d+)\.(\d+)", text)
    if not m:
        fail(f"cannot read the git version from {text!r}")
    return int(m.group(1)), int(m.group(2)), text


# ---------------------------------------------------------------------------------------------
# Repository generator
# ---------------------------------------------------------------------------------------------

WORDS = """access account action adapter address agent alert alias anchor answer apply archive
argument array asset attempt audit author backoff backup badge balance batch binding block body
bound branch bucket buffer build bundle cache callback cancel capacity channel chunk claim client
clock cluster codec column command comment commit config connect context counter cursor cycle
deadline decode default delay delta digest dispatch domain draft driver entry epoch error event
expire export extent factor fetch field filter flag flush format frame gauge grant graph group
guard handle handler hash header health heap hint hook host index inline input issue item job
journal key label latch layer lease ledger level limit link listener local lock lookup mailbox
manifest mapping marker member merge message metric mirror mode module monitor mount name node
notify offset option order origin output owner packet page parser patch path payload peer pending
permit pipe plan policy poll pool port prefix probe process proxy queue quota range reader realm
reason record region registry release replica report request resolve retry review revision route
rule sample schema scope secret segment selector sender sequence server session shard signal slot
snapshot socket source span split stage state status store stream subject summary sweep switch
table target task template tenant thread ticket timer token topic trace track tree trigger tunnel
update upload user value vector verify version view volume watch window worker writer zone""".split()
VERBS = """get set load store parse build apply check find resolve update remove insert read write
open close flush encode decode validate compute merge split emit record refresh reset sync spawn
drain fold render lookup collect prune rotate schedule cancel acquire release""".split()
STD_TYPES = ["u8", "u16", "u32", "u64", "usize", "i64", "bool", "String", "&str", "Vec<u8>",
             "Option<u64>", "Duration", "Instant", "PathBuf", "&[u8]", "Option<&str>", "f64"]
STD_USES = ["collections::HashMap", "collections::BTreeMap", "sync::Arc", "time::Duration",
            "path::PathBuf", "fmt", "io::{self, Read, Write}", "sync::Mutex", "ops::Range"]
AUTHORS = [
    ("Ada Lindqvist", "ada.lindqvist", "+0100"), ("Bruno Carvalho", "bcarvalho", "-0300"),
    ("Chen Wei", "chen.wei", "+0800"), ("Dara Okafor", "dokafor", "+0100"),
    ("Elif Yilmaz", "elif", "+0300"), ("Farid Haddad", "fhaddad", "+0200"),
    ("Greta Novak", "gnovak", "+0200"), ("Hiro Tanaka", "hiro", "+0900"),
    ("Ines Moreau", "imoreau", "+0100"), ("Jonas Berg", "jberg", "+0100"),
    ("Kavya Raman", "kavya", "+0530"), ("Liam O'Connor", "liamoc", "+0000"),
    ("Maya Goldberg", "mgoldberg", "-0500"), ("Nils Petersen", "nilsp", "+0100"),
    ("Olivia Brooks", "obrooks", "-0800"), ("Pavel Sokolov", "psokolov", "+0300"),
    ("Quinn Harper", "qharper", "-0600"), ("Rosa Jimenez", "rjimenez", "+0100"),
    ("Sven Aalto", "saalto", "+0200"), ("Tomasz Wrobel", "twrobel", "+0100"),
    ("Uma Patel", "upatel", "+0000"), ("Victor Lemaire", "vlemaire", "+0100"),
    ("Wen Zhou", "wzhou", "+0800"), ("Yara Costa", "ycosta", "-0300"),
]
BINARY_HEADERS = {".png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ".woff2": b"wOF2\x00\x01\x00\x00",
                  ".bin": b"\x7fBIN\x02\x00\x00\x01", ".ico": b"\x00\x00\x01\x00\x01\x00\x10\x10"}
TEXT_EXTS = (".rs", ".md", ".toml", ".yml", ".json")
DIR_EXTS = {
    "code": ([".rs", ".md", ".json", ".bin", ".toml"], [90, 3, 3, 2, 2]),
    "docs": ([".md", ".png"], [85, 15]),
    "assets": ([".png", ".woff2", ".ico", ".bin"], [60, 15, 10, 15]),
    "config": ([".toml", ".yml", ".json"], [50, 30, 20]),
}
SUBJECTS = [
    "{verb} {a} {b} before {c}", "handle empty {a} in {verb}_{b}", "avoid double {verb} of {a} {b}",
    "{verb} {a} under {b} lock", "make {a} {b} configurable", "cap {a} {b} at the {c} limit",
    "report {a} errors from {b}", "keep {a} order stable across {b}", "drop unused {a} {b}",
    "rename {a}_{b} to {b}_{c}", "document {a} {b}", "cover {a} {b} with tests",
    "speed up {a} {b} lookups", "retry {a} on {b} timeout", "move {a} helpers into {b}",
]
PREFIXES = ["fix", "fix", "feat", "refactor", "docs", "test", "perf", "chore"]


def _camel(r: random.Random) -> str:
    return r.choice(WORDS).capitalize() + r.choice(WORDS).capitalize()


def _sentence(r: random.Random) -> str:
    a, b, c, d = (r.choice(WORDS) for _ in range(4))
    v = r.choice(VERBS)
    return r.choice([
        f"The {a} {b} must be ready before the {c} {d} is read",
        f"Returns the {a} for a {b}, or none when the {c} is closed",
        f"Calls `{v}` on every {a} whose {b} has passed its {c}",
        f"Keeps the {a} {b} in step with the {c} {d}",
        f"Owns its {b} and hands out {c} handles for each {a}",
        f"Called once per {a}; `{v}` the {b} {c} first",
        f"Fails with `{d}` when the {a} {b} is already taken",
    ])


def _rs_line(r: random.Random) -> str:
    a, b, c = r.choice(WORDS), r.choice(WORDS), r.choice(WORDS)
    v, n = r.choice(VERBS), r.randrange(1, 4096)
    ind = "        " if r.random() < 0.75 else "            "
    t = r.randrange(16)
    if t == 0:
        s = f"let {a} = self.{b}.{v}(&{c})?;"
    elif t == 1:
        s = f"let mut {a}_{b} = {_camel(r)}::with_capacity({n});"
    elif t == 2:
        s = f"if {a}.is_empty() {{ return Ok({b}_{c}); }}"
    elif t == 3:
        s = f"// {_sentence(r)}."
    elif t == 4:
        s = f"self.{a}_{b} = self.{a}_{b}.saturating_add({n});"
    elif t == 5:
        s = f"for {a} in {b}.iter().filter(|{c}| {c}.{v}_{a}()) {{"
    elif t == 6:
        s = f"{a}.{v}({b}, {c}.{r.choice(VERBS)}_{r.choice(WORDS)}())?;"
    elif t == 7:
        s = f"debug_assert!({a}.len() <= {n}, \"{b} {c} overflow\");"
    elif t == 8:
        s = f"let {a}: {r.choice(STD_TYPES)} = {b}.{c}.unwrap_or_default();"
    elif t == 9:
        s = f"match {a}.{v}() {{ Some({b}) => {b}, None => return Err(Error::{_camel(r)}) }};"
    elif t == 10:
        s = f"tracing::debug!({a} = %{b}, \"{v} {c}\");"
    elif t == 11:
        s = f"{a}.push({_camel(r)} {{ {b}, {c}: {n} }});"
    elif t == 12:
        s = f"let {a} = {b}.{v}_{c}().map_err(|e| Error::{_camel(r)}(e.to_string()))?;"
    elif t == 13:
        s = f"}} else if {a} > {n} {{"
    elif t == 14:
        s = f"{a}.insert({b}.clone(), {c});"
    else:
        s = f"return Ok(self.{a}.{v}({b}, {n}));"
    return ind + s


def _md_line(r: random.Random) -> str:
    t = r.randrange(10)
    if t == 0:
        return f"## {r.choice(WORDS).capitalize()} {r.choice(WORDS)}"
    if t < 3:
        return f"- `{r.choice(WORDS)}_{r.choice(WORDS)}`: {_sentence(r).lower()}."
    if t == 3:
        return ""
    return f"{_sentence(r)}. {_sentence(r)}."


def _cfg_line(r: random.Random, ext: str) -> str:
    k = f"{r.choice(WORDS)}_{r.choice(WORDS)}"
    v = r.choice([f'"{r.choice(WORDS)}-{r.choice(WORDS)}"', str(r.randrange(1, 100000)), "true", "false"])
    if ext == ".toml":
        return f"[{r.choice(WORDS)}.{r.choice(WORDS)}]" if r.random() < 0.1 else f"{k} = {v}"
    if ext == ".yml":
        return f"{'  ' * r.randrange(3)}{k}: {v}"
    return f'  "{k}": {v},'


class Pools:
    """Pools of lines that files are assembled from and edits draw on (seeded, so deterministic)."""

    def __init__(self, r: random.Random):
        self.rs = [_rs_line(r).encode() for _ in range(24000)]
        self.md = [_md_line(r).encode() for _ in range(6000)]
        self.cfg = {e: [_cfg_line(r, e).encode() for _ in range(3000)] for e in (".toml", ".yml", ".json")}

    def for_ext(self, ext: str) -> list[bytes]:
        if ext == ".rs":
            return self.rs
        if ext == ".md":
            return self.md
        return self.cfg[ext]


def gen_file(r: random.Random, pools: Pools, ext: str) -> bytes:
    size = int(min(24000, max(400, r.lognormvariate(8.0, 0.6))))
    if ext in BINARY_HEADERS:
        return BINARY_HEADERS[ext] + r.randbytes(max(64, size))
    if ext == ".rs":
        t = _camel(r)
        lines = [f"//! {_sentence(r)}.", "", f"use crate::{r.choice(WORDS)}::{{{_camel(r)}, {_camel(r)}}};",
                 f"use std::{r.choice(STD_USES)};", "", f"pub struct {t} {{"]
        lines += [f"    {r.choice(WORDS)}_{r.choice(WORDS)}: {r.choice(STD_TYPES)}," for _ in range(r.randint(2, 6))]
        lines += ["}", "", f"impl {t} {{"]
        head = ("\n".join(lines) + "\n").encode()
        parts, total = [head], len(head)
        while total < size:
            name = f"{r.choice(VERBS)}_{r.choice(WORDS)}"
            sig = (f"    /// {_sentence(r)}.\n    pub fn {name}(&mut self, {r.choice(WORDS)}: {r.choice(STD_TYPES)})"
                   f" -> Result<{r.choice(STD_TYPES)}> {{\n").encode()
            body = b"\n".join(r.choices(pools.rs, k=r.randint(3, 12)))
            chunk = sig + body + f"\n        Ok({r.choice(WORDS)})\n    }}\n\n".encode()
            parts.append(chunk)
            total += len(chunk)
        parts.append(b"}\n")
        return b"".join(parts)
    pool = pools.for_ext(ext)
    lines: list[bytes] = []
    total = 0
    if ext == ".md":
        lines.append(f"# {_camel(r)}".encode())
    elif ext == ".json":
        lines.append(b"{")
    while total < size:
        line = r.choice(pool)
        lines.append(line)
        total += len(line) + 1
    if ext == ".json":
        lines.append(b'  "version": 1\n}')
    return b"\n".join(lines) + b"\n"


def edit_file(r: random.Random, pools: Pools, path: str, data: bytes, hunks: int) -> bytes:
    ext = os.path.splitext(path)[1]
    if ext in BINARY_HEADERS:
        for _ in range(hunks):
            span = r.randint(16, 256)
            i = r.randrange(16, max(17, len(data) - span))
            data = data[:i] + r.randbytes(span) + data[i + span:]
        return data
    pool = pools.for_ext(ext)
    lines = data.split(b"\n")
    for _ in range(hunks):
        n = len(lines) - 1
        i = r.randrange(min(6, n // 2) or 1, max(2, n))
        op = r.random()
        if op < 0.55 or n < 12:
            lines[i] = r.choice(pool)
        elif op < 0.85:
            lines[i:i] = r.choices(pool, k=r.randint(1, 4))
        else:
            del lines[i:i + r.randint(1, 2)]
    return b"\n".join(lines)


class Files:
    """A branch's files: contents plus an indexable list for seeded random picks."""

    def __init__(self, content: dict[str, bytes]):
        self.content = content
        self.paths = list(content)
        self.pos = {p: i for i, p in enumerate(self.paths)}

    def get(self, path):
        return self.content.get(path)

    def pick(self, r: random.Random, exclude, accept=None):
        for _ in range(40):
            # Skewed towards the front of the list: a few hot files, a long cold tail.
            p = self.paths[int(len(self.paths) * (r.random() ** 1.7))]
            if p not in exclude and (accept is None or accept(p)):
                return p
        return None

    def apply(self, change: dict):
        for path, data in change.items():
            if data is None:
                del self.content[path]
                i = self.pos.pop(path)
                last = self.paths.pop()
                if i < len(self.paths):
                    self.paths[i] = last
                    self.pos[last] = i
            else:
                if path not in self.content:
                    self.pos[path] = len(self.paths)
                    self.paths.append(path)
                self.content[path] = data


class Overlay:
    """A topic branch forked from a Files: its changes on top of the fork point."""

    def __init__(self, base: Files):
        self.base = base
        self.changes: dict[str, bytes | None] = {}

    def get(self, path):
        return self.changes[path] if path in self.changes else self.base.get(path)

    def pick(self, r, exclude, accept=None):
        return self.base.pick(r, exclude, lambda p: self.changes.get(p, b"") is not None and (accept is None or accept(p)))

    def apply(self, change: dict):
        self.changes.update(change)


class FastImport:
    def __init__(self, repo: Path, marks: Path, errlog: Path):
        self.errlog = open(errlog, "wb")
        self.proc = subprocess.Popen(
            ["git", "-C", str(repo), "fast-import", "--quiet", "--done", f"--export-marks={marks}"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.errlog, env=ENV)
        self.mark = 0
        self.bytes = 0

    def commit(self, ref: str, *, author, when: int, message: str, changes: dict,
               from_mark: int | None = None, merge_mark: int | None = None, committer: str | None = None) -> int:
        """committer: "Name <email>" when it differs from the author (merges made by the forge)."""
        self.mark += 1
        name, login, tz = author
        who = f"{name} <{login}@example.com> {when} {tz}"
        by = who if committer is None else f"{committer} {when} +0000"
        msg = message.encode()
        parts = [f"commit {ref}\nmark :{self.mark}\nauthor {who}\ncommitter {by}\n".encode(),
                 b"data %d\n" % len(msg), msg, b"\n"]
        if from_mark is not None:
            parts.append(b"from :%d\n" % from_mark)
        if merge_mark is not None:
            parts.append(b"merge :%d\n" % merge_mark)
        for path, data in changes.items():
            if data is None:
                parts.append(f"D {path}\n".encode())
            else:
                parts.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode())
                parts.append(data)
                parts.append(b"\n")
        parts.append(b"\n")
        blob = b"".join(parts)
        self.bytes += len(blob)
        try:
            self.proc.stdin.write(blob)
        except BrokenPipeError:
            self.finish()
        return self.mark

    def finish(self):
        try:
            self.proc.stdin.write(b"done\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        rc = self.proc.wait()
        self.errlog.close()
        if rc != 0:
            fail(f"git fast-import exited with {rc}:\n{Path(self.errlog.name).read_text(errors='replace')[-4000:]}")


HOTFIX_KINDS = ["single-file fix", "multi-file change", "rename", "binary file edit", "merge commit"]


class Generator:
    def __init__(self, files: int, commits: int, seed: int, releases: int, release_commits: int, hotfixes: int):
        self.n_files, self.n_commits, self.seed = files, commits, seed
        self.n_releases, self.n_release_commits, self.n_hotfixes = releases, release_commits, hotfixes
        self.r = random.Random(seed)
        self.pools = Pools(self.r)
        self.known: set[str] = set()  # every path ever used, so new names are never reused
        self.clock = 1_577_836_800  # 2020-01-01
        self.pr = 1000

    # -- names and messages ------------------------------------------------------------------

    def make_dirs(self, n_dirs: int) -> list[tuple[str, str]]:
        r = self.r
        dirs: list[tuple[str, str]] = []
        seen: set[str] = set()

        def add(path, kind):
            if path not in seen:
                seen.add(path)
                dirs.append((path, kind))

        for _ in range(max(3, n_dirs // 25)):
            crate = f"{r.choice(WORDS)}-{r.choice(WORDS)}"
            add(f"crates/{crate}/src", "code")
            add(f"crates/{crate}/tests", "code")
            if r.random() < 0.3:
                add(f"crates/{crate}/benches", "code")
        for d, k in [("docs", "docs"), ("docs/guide", "docs"), ("docs/design", "docs"), ("assets/images", "assets"),
                     ("assets/fonts", "assets"), ("config", "config"), ("config/deploy", "config"),
                     ("tools/xtask/src", "code"), ("tests/fixtures", "assets"), ("tests/integration", "code")]:
            add(d, k)
        by_kind: dict[str, list[str]] = {}
        for d, k in dirs:
            by_kind.setdefault(k, []).append(d)
        kinds, weights = ["code", "docs", "assets", "config"], [85, 8, 3, 4]
        while len(dirs) < n_dirs:
            kind = r.choices(kinds, weights)[0]
            parent = r.choice(by_kind[kind])
            if parent.count("/") >= 6:
                continue
            child = f"{parent}/{r.choice(WORDS)}"
            if child not in seen:
                add(child, kind)
                by_kind[kind].append(child)
        return dirs

    def new_path(self, directory: str, kind: str, ext: str | None = None) -> str:
        r = self.r
        if ext is None:
            exts, weights = DIR_EXTS[kind]
            ext = r.choices(exts, weights)[0]
        while True:
            stem = r.choice(WORDS) if r.random() < 0.4 else f"{r.choice(WORDS)}_{r.choice(WORDS)}"
            path = f"{directory}/{stem}{ext}"
            if path in self.known:
                path = f"{directory}/{stem}_{r.randrange(2, 1000)}{ext}"
            if path not in self.known:
                self.known.add(path)
                return path

    @staticmethod
    def area(path: str | None) -> str:
        if not path:
            return "core"
        return path.split("/")[1] if path.startswith("crates/") else path.split("/")[0]

    def subject(self, path: str | None) -> str:
        r = self.r
        s = r.choice(SUBJECTS).format(verb=r.choice(VERBS), a=r.choice(WORDS), b=r.choice(WORDS), c=r.choice(WORDS))
        return f"{r.choice(PREFIXES)}({self.area(path)}): {s}"

    def hotfix_subject(self, path: str) -> str:
        r = self.r
        return f"fix({self.area(path)}): {r.choice(VERBS)} {r.choice(WORDS)} {r.choice(WORDS)} without panicking"

    def message(self, subject: str) -> str:
        r = self.r
        if r.random() < 0.5:
            return subject + "\n"
        body = " ".join(_sentence(r) + "." for _ in range(r.randint(1, 4)))
        return f"{subject}\n\n{body}\n"

    def tick(self) -> int:
        self.clock += self.r.randint(300, 9000)
        return self.clock

    # -- changes -----------------------------------------------------------------------------

    def kind_of(self, path: str) -> str:
        d = os.path.dirname(path)
        return self.dir_kind.get(d, "code")

    def change(self, view, exclude=frozenset(), accept=None) -> dict:
        r = self.r
        change: dict[str, bytes | None] = {}
        skip = _Union(exclude, change)
        for _ in range(r.choices([1, 2, 3, 4, 5, 6], [40, 25, 15, 10, 6, 4])[0]):
            p = view.pick(r, skip, accept)
            if p is None:
                break
            change[p] = edit_file(r, self.pools, p, view.get(p), r.choices([1, 2, 3], [60, 30, 10])[0])
        first = next(iter(change), None)
        roll = r.random()
        if roll < 0.08:
            if first is not None and r.random() < 0.6:
                d = os.path.dirname(first)
                kind = self.kind_of(first)
            else:
                d, kind = r.choice(self.dirs)
            p = self.new_path(d, kind)
            change[p] = gen_file(r, self.pools, os.path.splitext(p)[1])
        elif roll < 0.11:
            p = view.pick(r, skip, accept)
            if p is not None:
                ext = os.path.splitext(p)[1]
                if r.random() < 0.6:
                    d = os.path.dirname(p)
                else:
                    d = r.choice(self.dirs)[0]
                q = self.new_path(d, self.kind_of(p), ext)
                data = view.get(p)
                change[p] = None
                change[q] = edit_file(r, self.pools, q, data, 1) if r.random() < 0.5 else data
        elif roll < 0.12:
            p = view.pick(r, skip, accept)
            if p is not None:
                change[p] = None
        return change

    # -- the history -------------------------------------------------------------------------

    def generate(self, repo: Path, work: Path) -> dict:
        r = self.r
        n_rel_total = self.n_releases * self.n_release_commits
        main_target = self.n_commits - n_rel_total - 4
        if main_target < 100:
            fail("--commits is too small for the release branches (need about 100 more than "
                 "--releases x --release-commits)")
        n_dirs = max(20, self.n_files // 14)
        self.dirs = self.make_dirs(n_dirs)
        self.dir_kind = dict(self.dirs)
        initial = max(50, self.n_files - round(0.07 * main_target))
        content: dict[str, bytes] = {}
        for _ in range(initial):
            d, kind = r.choice(self.dirs)
            p = self.new_path(d, kind)
            content[p] = gen_file(r, self.pools, os.path.splitext(p)[1])
        main = Files(content)

        fi = FastImport(repo, work / "marks", work / "fast-import.log")
        who = AUTHORS[0]
        main_mark = fi.commit("refs/heads/main", author=who, when=self.tick(), message="Initial import\n",
                              changes=content)
        seq = 0  # first-parent commits on main so far
        produced = 1
        last_touch: dict[str, int] = {}
        cuts = [(round(main_target * (0.60 + 0.35 * k / max(1, self.n_releases - 1))), k)
                for k in range(self.n_releases)]
        snapshots = []

        def main_commit(change, merge_mark=None, message=None, author=None):
            nonlocal main_mark, seq
            author = author or r.choice(AUTHORS)
            if message is None:
                message = self.message(self.subject(next(iter(change), None)))
            committer = "GitHub <noreply@github.com>" if merge_mark is not None else None
            main_mark = fi.commit("refs/heads/main", author=author, when=self.tick(), message=message,
                                  changes=change, merge_mark=merge_mark, committer=committer)
            main.apply(change)
            seq += 1
            for p in change:
                last_touch[p] = seq

        def cut(force=False):
            # Between loop iterations main's files are exactly main_mark's tree.
            while cuts and (force or produced >= cuts[0][0]):
                _, k = cuts.pop(0)
                snapshots.append({"release": f"release-1.{k}", "mark": main_mark, "seq": seq,
                                  "when": self.clock, "content": dict(main.content)})

        while produced < main_target:
            if r.random() < 0.3 and main_target - produced >= 4:
                topic = Overlay(main)
                fork = main_mark
                author = r.choice(AUTHORS)
                tmark, title = None, None
                for i in range(r.choice([1, 1, 2, 2, 3, 4])):
                    ch = self.change(topic)
                    if not ch:
                        continue
                    subject = self.subject(next(iter(ch)))
                    title = title or subject
                    tmark = fi.commit("refs/heads/topic", author=author, when=self.tick(),
                                      message=self.message(subject), changes=ch,
                                      from_mark=fork if tmark is None else None)
                    topic.apply(ch)
                    produced += 1
                for _ in range(r.choice([0, 0, 1, 2])):
                    ch = self.change(main, exclude=topic.changes)
                    if ch:
                        main_commit(ch)
                        produced += 1
                if tmark is not None:
                    self.pr += r.randint(1, 7)
                    branch = f"{author[1]}/{r.choice(WORDS)}-{r.choice(WORDS)}"
                    main_commit(topic.changes, merge_mark=tmark, author=author,
                                message=f"Merge pull request #{self.pr} from {branch}\n\n{title}\n")
                    produced += 1
            else:
                ch = self.change(main)
                if ch:
                    main_commit(ch)
                    produced += 1
            cut()
        cut(force=True)

        # Release branches, each with its own commits and some hotfixes made after the cut.
        plan = [[] for _ in range(self.n_releases)]
        for i in range(self.n_hotfixes):
            plan[(self.n_releases - 1 - i) % self.n_releases].append(HOTFIX_KINDS[i % len(HOTFIX_KINDS)])
        hotfixes = []
        for snap, kinds in zip(snapshots, plan):
            hotfixes += self.release_branch(fi, snap, kinds, last_touch)
        fi.finish()
        return {"fast_import_bytes": fi.bytes, "hotfixes": hotfixes,
                "releases": [{"branch": s["release"], "cut_mark": s["mark"]} for s in snapshots]}

    def release_branch(self, fi: FastImport, snap: dict, kinds: list[str], last_touch: dict) -> list[dict]:
        r = self.r
        ref = f"refs/heads/{snap['release']}"
        rel = Files(dict(snap["content"]))
        touched: set[str] = set()
        cut_seq = snap["seq"]
        clock = snap["when"]
        tip: int | None = None
        n = self.n_release_commits
        slots = sorted(r.sample(range(max(2, n // 3), n), min(len(kinds), n - max(2, n // 3))))
        at = dict(zip(slots, kinds))
        hotfixes = []

        def commit(change, message, merge_mark=None, author=None, committer=None):
            nonlocal tip, clock
            clock += r.randint(3600, 4 * 86400)
            tip = fi.commit(ref, author=author or r.choice(AUTHORS), when=clock, message=message, changes=change,
                            from_mark=snap["mark"] if tip is None else None, merge_mark=merge_mark,
                            committer=committer)
            rel.apply(change)
            return tip

        def clean(p):  # untouched on main after the cut and on this branch so far
            return last_touch.get(p, -1) <= cut_seq and p not in touched

        def clean_text(p):
            return clean(p) and p.endswith(TEXT_EXTS)

        def candidates(accept, need=1):
            c = [p for p in rel.paths if accept(p)]
            if len(c) < need:
                fail(f"not enough paths that main left alone after {snap['release']} was cut; "
                     "use more --files or fewer --commits")
            return c

        for j in range(n):
            kind = at.get(j)
            if kind is None:
                ch = self.change(rel)
                if ch:
                    commit(ch, self.message(self.subject(next(iter(ch)))))
                    touched.update(ch)
                continue
            who = r.choice(AUTHORS)
            if kind == "single-file fix":
                p = r.choice(candidates(lambda p: clean(p) and p.endswith(".rs")))
                ch = {p: edit_file(r, self.pools, p, rel.get(p), 1)}
            elif kind == "multi-file change":
                ps = r.sample(candidates(clean_text, 4), 4)
                ch = {p: edit_file(r, self.pools, p, rel.get(p), r.randint(1, 3)) for p in ps}
                d = os.path.dirname(ps[0])
                q = self.new_path(d, self.kind_of(ps[0]), ".rs")
                ch[q] = gen_file(r, self.pools, ".rs")
            elif kind == "rename":
                p, other = r.sample(candidates(lambda p: clean(p) and p.endswith(".rs"), 2), 2)
                q = self.new_path(os.path.dirname(other), self.kind_of(other), ".rs")
                ch = {p: None, q: edit_file(r, self.pools, q, rel.get(p), 1)}
            elif kind == "binary file edit":
                p = r.choice(candidates(lambda p: clean(p) and p.endswith(tuple(BINARY_HEADERS))))
                ch = {p: edit_file(r, self.pools, p, rel.get(p), 2)}
            else:  # merge commit: a topic of two commits, merged after one more release commit
                ps = r.sample(candidates(clean_text, 3), 3)
                fork = tip if tip is not None else snap["mark"]
                topic = Overlay(rel)
                tmark = None
                for group in (ps[:2], ps[2:]):
                    tch = {p: edit_file(r, self.pools, p, topic.get(p), r.randint(1, 2)) for p in group}
                    clock += r.randint(600, 7200)
                    tmark = fi.commit("refs/heads/topic", author=who, when=clock,
                                      message=self.message(self.hotfix_subject(group[0])),
                                      changes=tch, from_mark=fork if tmark is None else None)
                    topic.apply(tch)
                ch = self.change(rel, exclude=topic.changes)
                if ch:
                    commit(ch, self.message(self.subject(next(iter(ch)))))
                    touched.update(ch)
                self.pr += 1
                mark = commit(topic.changes, f"Merge pull request #{self.pr} from {who[1]}/hotfix-{self.pr}\n\n"
                              f"Hotfix for {snap['release']}\n", merge_mark=tmark, author=who,
                              committer="GitHub <noreply@github.com>")
                touched.update(topic.changes)
                hotfixes.append({"mark": mark, "kind": kind, "branch": snap["release"], "paths": list(topic.changes)})
                continue
            mark = commit(ch, self.message(self.hotfix_subject(next(iter(ch)))), author=who)
            touched.update(ch)
            hotfixes.append({"mark": mark, "kind": kind, "branch": snap["release"], "paths": list(ch)})
        return hotfixes


class _Union:
    """Membership in either of two containers, without building a new set per pick."""

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __contains__(self, x):
        return x in self.a or x in self.b


def generated_repo(args) -> tuple[Path, dict]:
    params = {"version": GEN_VERSION, "files": args.files, "commits": args.commits, "seed": args.seed,
              "releases": args.releases, "release_commits": args.release_commits, "hotfixes": args.hotfixes}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    base = TARGET / "bench-backport-repo"
    final = base / f"files{args.files}-commits{args.commits}-seed{args.seed}-{key}"
    meta_path = final / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        print(f"generated repository: {final} (cached; generation took {meta['generation_seconds']:.1f} s)")
        return final / "repo.git", meta

    base.mkdir(parents=True, exist_ok=True)
    for stale in base.glob(f"{final.name}.tmp*"):
        shutil.rmtree(stale, ignore_errors=True)
    build = base / f"{final.name}.tmp{os.getpid()}"
    build.mkdir()
    repo = build / "repo.git"
    print(f"generating a repository of ~{args.files} files and ~{args.commits} commits (seed {args.seed}) ...",
          flush=True)
    t0 = time.perf_counter()
    git(build, "init", "--quiet", "--bare", "--initial-branch=main", repo)
    gen = Generator(args.files, args.commits, args.seed, args.releases, args.release_commits, args.hotfixes)
    info = gen.generate(repo, build)
    del gen
    t_import = time.perf_counter() - t0
    marks = {}
    for line in (build / "marks").read_text().splitlines():
        m, sha = line.split()
        marks[int(m[1:])] = sha
    git(repo, "update-ref", "-d", "refs/heads/topic")
    hotfixes = []
    for h in info["hotfixes"]:
        sha = marks[h["mark"]]
        p = run(["git", "-C", repo, "merge-tree", "--write-tree", "--name-only", f"--merge-base={sha}^1", "main", sha],
                check=False)
        if p.returncode != 0:
            fail(f"generated hotfix {sha} ({h['kind']}) does not apply cleanly to main:\n{describe(p)}")
        hotfixes.append({"commit": sha, "kind": h["kind"], "branch": h["branch"], "paths": h["paths"]})
    t1 = time.perf_counter()
    # What a hosting server's copy looks like: one pack with bitmaps, a commit-graph, packed refs.
    git(repo, "gc", "--quiet", "--prune=now")
    t_gc = time.perf_counter() - t1
    n_files = sum(1 for _ in git(repo, "ls-tree", "-r", "--name-only", "main").splitlines())
    n_commits = int(git(repo, "rev-list", "--count", "--all"))
    pack_bytes = sum(f.stat().st_size for f in (repo / "objects" / "pack").glob("*.pack"))
    elapsed = time.perf_counter() - t0
    meta = {"params": params, "onto": "main", "hotfixes": hotfixes, "files_at_main": n_files,
            "commits": n_commits, "pack_bytes": pack_bytes, "generation_seconds": elapsed,
            "fast_import_seconds": t_import, "gc_seconds": t_gc, "fast_import_stream_bytes": info["fast_import_bytes"],
            "releases": [r["branch"] for r in info["releases"]]}
    (build / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    for leftover in ("marks", "fast-import.log"):
        (build / leftover).unlink(missing_ok=True)
    try:
        os.rename(build, final)
    except OSError:  # generated meanwhile by another run
        shutil.rmtree(build, ignore_errors=True)
        meta = json.loads(meta_path.read_text())
    print(f"generated repository: {final}\n"
          f"  generation took {elapsed:.1f} s (stream + fast-import {t_import:.1f} s, gc {t_gc:.1f} s); "
          f"{n_files} files at main, {n_commits} commits, pack {pack_bytes / 2**20:.0f} MiB")
    return final / "repo.git", meta


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------

class Commit:
    def __init__(self, mirror: Path, sha: str, label: str):
        self.sha = sha
        self.short = sha[:10]
        raw = run(["git", "-C", mirror, "cat-file", "commit", sha]).stdout.decode("utf-8", "surrogateescape")
        head, _, message = raw.partition("\n\n")
        self.parents = [line[7:] for line in head.splitlines() if line.startswith("parent ")]
        if not self.parents:
            fail(f"{sha} is a root commit; there is nothing to cherry-pick it against")
        author = next(line[7:] for line in head.splitlines() if line.startswith("author "))
        m = re.fullmatch(r"(.*) <(.*)> (\d+ [+-]\d{4})", author)
        self.author_env = dict(ENV)
        if m:
            self.author_env.update(GIT_AUTHOR_NAME=m.group(1), GIT_AUTHOR_EMAIL=m.group(2), GIT_AUTHOR_DATE=m.group(3))
        self.pick_message = message.rstrip("\n") + f"\n\n(cherry picked from commit {sha})\n"
        self.subject = message.split("\n", 1)[0]
        self.mainline = ["-m", "1"] if len(self.parents) > 1 else []
        self.branch = f"bench/backport-{self.short}"
        files = adds = dels = binary = renames = 0
        for line in git(mirror, "diff-tree", "-r", "-M", "--numstat", f"{sha}^1", sha).splitlines():
            a, d, path = line.split("\t", 2)
            files += 1
            renames += "=>" in path
            if a == "-":
                binary += 1
            else:
                adds, dels = adds + int(a), dels + int(d)
        stats = f"{files} file{'s' * (files != 1)}, +{adds} -{dels}"
        stats += f", {binary} binary" if binary else ""
        stats += f", {renames} renamed" if renames else ""
        kind = f"merge ({len(self.parents)} parents), " if len(self.parents) > 1 else ""
        self.label = f"{label} ({kind}{stats})" if label else f"{self.subject[:60]} ({kind}{stats})"


class Setup:
    def __init__(self, mirror: Path, onto: str, onto_oid: str, clone_branch: str, tmp: Path):
        self.mirror, self.onto, self.onto_oid, self.clone_branch, self.tmp = mirror, onto, onto_oid, clone_branch, tmp
        self.url = mirror.resolve().as_uri()


def timed_sequence(commands: list[list[str]]) -> tuple[list[subprocess.CompletedProcess], float]:
    """Runs the commands in order until one fails; returns what ran and the seconds it took."""
    done = []
    t0 = time.perf_counter()
    for argv in commands:
        p = subprocess.run(argv, env=ENV, capture_output=True)
        done.append(p)
        if p.returncode:
            break
    return done, time.perf_counter() - t0


def check_tip(what: str, lines: list[str], s: Setup) -> str:
    """lines: output of `rev-parse TIP^{tree} TIP^@`; returns the tree."""
    tree, parents = lines[0], lines[1:]
    if parents != [s.onto_oid]:
        fail(f"{what}: the new tip's parents are {parents or 'none'}, expected only {s.onto} ({s.onto_oid})")
    return tree


class HotfixLane:
    key, title = "hotfix_lane", "hotfix-lane backport local"

    def __init__(self, s: Setup, binary: Path, reps: int):
        self.s, self.binary, self.reps = s, binary, reps

    def command(self, c: Commit) -> list[str]:
        return [str(self.binary), "backport", "local", "--repo", str(self.s.mirror), "--onto", self.s.onto,
                "--branch", c.branch, c.sha]

    def run(self, c: Commit) -> float:
        argv = self.command(c)
        t0 = time.perf_counter()
        self.p = subprocess.run(argv, env=ENV, capture_output=True)
        return time.perf_counter() - t0

    def finish(self, c: Commit) -> str:
        p, s = self.p, self.s
        if p.returncode == 1:
            fail(f"hotfix-lane reported a conflict backporting {c.sha} onto {s.onto}, which git cherry-pick "
                 f"applied cleanly:\n{describe(p)}")
        if p.returncode != 0:
            fail(describe(p))
        tip = p.stdout.decode().strip()
        if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", tip):
            fail(f"hotfix-lane printed {tip!r} on stdout, expected the new tip's commit id\n{describe(p)}")
        lines = git(s.mirror, "rev-parse", "--verify", f"refs/heads/{c.branch}", check=False).split()
        if lines != [tip]:
            fail(f"hotfix-lane: refs/heads/{c.branch} is {lines or 'missing'}, expected {tip}")
        tree = check_tip("hotfix-lane", git(s.mirror, "rev-parse", f"{tip}^{{tree}}", f"{tip}^@").split(), s)
        git(s.mirror, "update-ref", "-d", f"refs/heads/{c.branch}")
        return tree


class FreshClone:
    """Each run clones into a new directory; all of them are removed at the end. Deleting a clone
    of tens of thousands of files right before the next one is not what a fresh CI machine sees,
    and it slows the next clone down severely: ext4's inode allocator skips recently deleted
    inodes one by one for minutes after such a deletion (seen here as 3x the clone time)."""

    key, title = "fresh_clone", "fresh clone + cherry-pick"

    def __init__(self, s: Setup, reps: int, planned: int):
        self.s, self.reps, self.planned = s, reps, planned
        self.n = 0
        self.dest = s.tmp / "fresh-clone-0"

    def commands(self, c: Commit) -> list[list[str]]:
        d = str(self.dest)
        return [["git", "clone", "--quiet", self.s.url, d],
                ["git", "-C", d, "switch", "--quiet", "-c", c.branch, f"origin/{self.s.clone_branch}"],
                ["git", "-C", d, "cherry-pick", "-x", *c.mainline, c.sha]]

    def run(self, c: Commit) -> float:
        self.n += 1
        self.dest = self.s.tmp / f"fresh-clone-{self.n}"
        self.free_before = shutil.disk_usage(self.s.tmp).free
        self.done, took = timed_sequence(self.commands(c))
        return took

    def finish(self, c: Commit) -> str:
        if self.done[-1].returncode:
            fail(f"fresh clone: {describe(self.done[-1])}")
        tree = check_tip("fresh clone", git(self.dest, "rev-parse", "HEAD^{tree}", "HEAD^@").split(), self.s)
        if self.n == 1:
            free = shutil.disk_usage(self.s.tmp).free
            need = (self.free_before - free) * (self.planned - 1) + 2**30
            if free < need:
                fail(f"the fresh clones are kept until the end and need about {need / 2**30:.1f} GiB; "
                     f"{free / 2**30:.1f} GiB is free under {self.s.tmp.parent} (see --tmpdir, --clone-reps)")
        return tree


class CachedWorktree:
    key, title = "cached_worktree", "cached work tree + cherry-pick"

    def __init__(self, s: Setup, reps: int):
        self.s, self.reps = s, reps
        self.wt = s.tmp / "worktree"
        git(s.tmp, "clone", "--quiet", s.mirror, self.wt)
        identity(self.wt)
        git(self.wt, "switch", "--quiet", "--force", "--detach", s.onto_oid)

    def commands(self, c: Commit) -> list[list[str]]:
        w = str(self.wt)
        return [["git", "-C", w, "switch", "--quiet", "-C", c.branch, f"origin/{self.s.clone_branch}"],
                ["git", "-C", w, "cherry-pick", "-x", *c.mainline, c.sha]]

    def run(self, c: Commit) -> float:
        self.done, took = timed_sequence(self.commands(c))
        return took

    def reset(self, c: Commit):
        git(self.wt, "switch", "--quiet", "--force", "--detach", self.s.onto_oid)
        git(self.wt, "branch", "--quiet", "-D", c.branch, check=False)

    def finish(self, c: Commit) -> str:
        last = self.done[-1]
        if last.returncode:
            conflicted = git(self.wt, "diff", "--name-only", "--diff-filter=U", check=False)
            git(self.wt, "cherry-pick", "--abort", check=False)
            git(self.wt, "reset", "--quiet", "--hard", check=False)
            self.reset(c)
            detail = f"\nconflicting paths:\n{conflicted}" if conflicted else ""
            fail(f"git cherry-pick of {c.sha} onto {self.s.onto} failed; pick commits that apply cleanly.\n"
                 f"{describe(last)}{detail}")
        tree = check_tip("cached work tree", git(self.wt, "rev-parse", "HEAD^{tree}", "HEAD^@").split(), self.s)
        self.reset(c)
        return tree


class Floor:
    key, title = "floor", "floor: merge-tree + commit-tree"

    def __init__(self, s: Setup, reps: int):
        self.s, self.reps = s, reps

    def run(self, c: Commit) -> float:
        m, onto = str(self.s.mirror), self.s.onto
        merge = ["git", "-C", m, "merge-tree", "--write-tree", f"--merge-base={c.sha}^1", onto, c.sha]
        ref = f"refs/heads/{c.branch}"
        self.done = []
        self.new = None
        t0 = time.perf_counter()
        p = subprocess.run(merge, env=ENV, capture_output=True)
        self.done.append(p)
        if p.returncode == 0:
            self.tree = p.stdout.split(b"\n", 1)[0].decode()
            p = subprocess.run(["git", "-C", m, "commit-tree", self.tree, "-p", onto, "-m", c.pick_message],
                               env=c.author_env, capture_output=True)
            self.done.append(p)
            if p.returncode == 0:
                self.new = p.stdout.strip().decode()
                p = subprocess.run(["git", "-C", m, "update-ref", ref, self.new], env=ENV, capture_output=True)
                self.done.append(p)
        return time.perf_counter() - t0

    def finish(self, c: Commit) -> str:
        last = self.done[-1]
        if last.returncode:
            fail(f"floor: {describe(last)}")
        s = self.s
        if git(s.mirror, "rev-parse", "--verify", f"refs/heads/{c.branch}") != self.new:
            fail(f"floor: refs/heads/{c.branch} does not point at {self.new}")
        tree = check_tip("floor", git(s.mirror, "rev-parse", f"{self.new}^{{tree}}", f"{self.new}^@").split(), s)
        if tree != self.tree:
            fail(f"floor: commit {self.new} has tree {tree}, merge-tree wrote {self.tree}")
        git(s.mirror, "update-ref", "-d", f"refs/heads/{c.branch}")
        return tree


def prepare_mirror(source: str, tmp: Path) -> Path:
    mirror = tmp / "mirror.git"
    print(f"mirroring {source} ...", flush=True)
    git(tmp, "clone", "--quiet", "--mirror", source, mirror)
    # Make the mirror look like the hosting server: remote-tracking branches of a work clone
    # become branches, so the clones (which fetch refs/heads/*) see them.
    refs = git(mirror, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/", "refs/remotes/origin/")
    heads, remotes = {}, []
    for line in refs.splitlines():
        name, oid = line.split(" ")
        if name.startswith("refs/heads/"):
            heads[name[len("refs/heads/"):]] = oid
        elif name != "refs/remotes/origin/HEAD":
            remotes.append((name[len("refs/remotes/origin/"):], oid))
    todo = "".join(f"create refs/heads/{b} {oid}\n" for b, oid in remotes if b not in heads)
    if todo:
        git(mirror, "update-ref", "--stdin", input=todo.encode())
    identity(mirror)
    return mirror


def identity(repo: Path):
    """A committer identity in the repository's own config, for git and libgit2 alike."""
    git(repo, "config", "user.name", ENV["GIT_COMMITTER_NAME"])
    git(repo, "config", "user.email", ENV["GIT_COMMITTER_EMAIL"])


def resolve(mirror: Path, onto: str, commits: list[str]) -> tuple[str, str, list[str]]:
    for name in [onto, *commits]:
        if name.startswith("-"):
            fail(f"{name!r} is not a revision")
    p = run(["git", "-C", mirror, "rev-parse", "--verify", "--quiet", f"{onto}^{{commit}}"],
            check=False)
    if p.returncode:
        fail(f"--onto {onto!r} does not name a commit in the repository")
    onto_oid = out(p)
    full = git(mirror, "rev-parse", "--symbolic-full-name", onto, check=False)
    name = None
    if full.startswith("refs/heads/"):
        name = full[len("refs/heads/"):]
    elif full.startswith("refs/remotes/"):
        candidate = full.split("/", 3)[3]
        head = git(mirror, "rev-parse", "--verify", "--quiet", f"refs/heads/{candidate}", check=False)
        if head == onto_oid:
            name = candidate
    if name is None:
        name = "bench/onto"
        git(mirror, "update-ref", f"refs/heads/{name}", onto_oid)
    shas = []
    for i, c in enumerate(commits):
        p = run(["git", "-C", mirror, "rev-parse", "--verify", "--quiet", f"{c}^{{commit}}"],
                check=False)
        if p.returncode:
            fail(f"{c!r} does not name a commit in the repository")
        sha = out(p)
        if sha in shas:
            fail(f"{c} is given twice")
        # The clones fetch branches and tags only: keep every commit reachable from one.
        if git(mirror, "rev-list", "-n1", sha, "--not", "--branches", "--tags"):
            git(mirror, "update-ref", f"refs/heads/bench/keep-{i}", sha)
        shas.append(sha)
    return onto_oid, name, shas


def ms(seconds: float) -> float:
    return seconds * 1000.0


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x" if x < 1000 else f"{x:.0f}x"


def benchmark(args, mirror: Path, onto: str, commits: list[tuple[str, str]], tmp: Path, source_note: dict) -> dict:
    onto_oid, clone_branch, shas = resolve(mirror, onto, [c for c, _ in commits])
    s = Setup(mirror, onto, onto_oid, clone_branch, tmp)
    files_at_onto = sum(1 for _ in git(mirror, "ls-tree", "-r", "--name-only", onto_oid).splitlines())
    history = int(git(mirror, "rev-list", "--count", onto_oid))
    cs = [Commit(mirror, sha, label) for sha, (_, label) in zip(shas, commits)]
    print(f"onto {onto} ({onto_oid[:10]}): {files_at_onto} files, {history} commits in its history")
    print("preparing the cached work tree ...", flush=True)
    worktree = CachedWorktree(s, args.reps)
    floor = Floor(s, args.reps)
    approaches = [] if args.no_hotfix_lane else [HotfixLane(s, args.hotfix_lane, args.reps)]
    approaches += [FreshClone(s, args.clone_reps, len(cs) * (args.clone_reps + 1)), worktree, floor]
    warmup_order = [worktree, floor] + [a for a in approaches if a not in (worktree, floor)]
    load_before = os.getloadavg()
    print(f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; "
          f"{os.cpu_count()} CPUs; {args.reps} runs each, fresh clone {args.clone_reps}, after one warm-up\n")

    results = []
    for n, c in enumerate(cs, 1):
        print(f"[{n}/{len(cs)}] {c.short}  {c.label}", flush=True)
        reference = None
        for a in warmup_order:
            os.sync()
            a.run(c)
            tree = a.finish(c)
            if reference is None:
                reference = tree
            elif tree != reference:
                mismatch(a, c, tree, reference, mirror)
        samples: dict[str, list[float]] = {a.key: [] for a in approaches}
        for rep in range(max(a.reps for a in approaches)):
            k = rep % len(approaches)
            for a in approaches[k:] + approaches[:k]:
                if rep >= a.reps:
                    continue
                os.sync()  # no writeback left over from the previous run
                dt = a.run(c)
                tree = a.finish(c)
                if tree != reference:
                    mismatch(a, c, tree, reference, mirror)
                samples[a.key].append(ms(dt))
            if sys.stderr.isatty():
                print(f"  run {rep + 1} done", end="\r", file=sys.stderr, flush=True)
        if sys.stderr.isatty():
            print(" " * 20, end="\r", file=sys.stderr, flush=True)
        floor_median = statistics.median(samples[floor.key])
        row = {"commit": c.sha, "label": c.label, "parents": c.parents, "tree": reference, "approaches": {}}
        print(f"    {'approach':32} {'runs':>4} {'median ms':>11} {'min ms':>10} {'vs floor':>9}")
        for a in approaches:
            xs = samples[a.key]
            med = statistics.median(xs)
            row["approaches"][a.key] = {"title": a.title, "samples_ms": [round(x, 3) for x in xs],
                                        "median_ms": round(med, 3), "min_ms": round(min(xs), 3),
                                        "ratio_to_floor": round(med / floor_median, 3)}
            print(f"    {a.title:32} {len(xs):>4} {med:>11.1f} {min(xs):>10.1f} {fmt_ratio(med / floor_median):>9}")
        print()
        results.append(row)

    load_after = os.getloadavg()
    summary = summarize(results, approaches, floor)
    return {
        "repository": source_note, "onto": onto, "onto_commit": onto_oid, "files_at_onto": files_at_onto,
        "commits_in_onto_history": history, "reps": args.reps, "clone_reps": args.clone_reps,
        "commands": {
            "hotfix_lane": None if args.no_hotfix_lane else show(approaches[0].command(cs[0])),
            "fresh_clone": [show(x) for x in next(a for a in approaches if a.key == "fresh_clone").commands(cs[0])],
            "cached_worktree": [show(x) for x in worktree.commands(cs[0])],
            "floor": [f"git -C {mirror} merge-tree --write-tree --merge-base=COMMIT^1 {onto} COMMIT",
                      f"git -C {mirror} commit-tree TREE -p {onto} -m MESSAGE",
                      f"git -C {mirror} update-ref refs/heads/BRANCH NEW"],
        },
        "git": git_version()[2], "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "results": results, "summary": summary,
    }


def mismatch(a, c: Commit, tree: str, reference: str, mirror: Path):
    detail = ""
    have = run(["git", "-C", mirror, "cat-file", "-e", reference], check=False).returncode == 0 and \
        run(["git", "-C", mirror, "cat-file", "-e", tree], check=False).returncode == 0
    if have:
        detail = "\n" + git(mirror, "diff", "--stat", reference, tree, check=False)
    fail(f"{a.title}: backporting {c.sha} gave tree {tree}, but git cherry-pick gave {reference}{detail}\n"
         "(--keep-temp leaves the mirror and the work tree in place)")


def summarize(results: list[dict], approaches, floor) -> dict:
    total = {a.key: sum(r["approaches"][a.key]["median_ms"] for r in results) for a in approaches}
    per = {a.key: [r["approaches"][a.key]["median_ms"] for r in results] for a in approaches}
    print(f"summary over {len(results)} commit{'s' * (len(results) != 1)} (sums of the per-commit medians):")
    print("    " + " · ".join(f"{a.title.split(':')[0]} {total[a.key]:.1f} ms" for a in approaches))
    summary: dict = {"sum_of_medians_ms": {k: round(v, 3) for k, v in total.items()}}

    def ratio_line(num: str, den: str):
        overall = total[num] / total[den]
        each = [x / y for x, y in zip(per[num], per[den])]
        worst = max(range(len(each)), key=lambda i: each[i])
        summary[f"{num}_over_{den}"] = {"overall": round(overall, 3), "per_commit": [round(x, 3) for x in each]}
        return overall, each, worst

    keys = {a.key for a in approaches}
    if "hotfix_lane" in keys:
        overall, each, worst = ratio_line("hotfix_lane", "floor")
        met = overall <= TARGET_RATIO and max(each) <= TARGET_RATIO
        summary["target_hotfix_lane_over_floor"] = TARGET_RATIO
        summary["target_met"] = met
        print(f"hotfix-lane / floor: {fmt_ratio(overall)} overall, per commit {fmt_ratio(min(each))}..{fmt_ratio(max(each))}"
              f" (worst {results[worst]['commit'][:10]}); target <= {TARGET_RATIO}x: {'met' if met else 'NOT met'}")
        overall, each, _ = ratio_line("fresh_clone", "hotfix_lane")
        print(f"fresh clone / hotfix-lane: {fmt_ratio(overall)} overall, per commit "
              f"{fmt_ratio(min(each))}..{fmt_ratio(max(each))}")
        overall, each, _ = ratio_line("cached_worktree", "hotfix_lane")
        print(f"cached work tree / hotfix-lane: {fmt_ratio(overall)} overall, per commit "
              f"{fmt_ratio(min(each))}..{fmt_ratio(max(each))}")
    else:
        for num in ("fresh_clone", "cached_worktree"):
            overall, each, _ = ratio_line(num, "floor")
            title = next(a.title for a in approaches if a.key == num)
            print(f"{title} / floor: {fmt_ratio(overall)} overall, per commit {fmt_ratio(min(each))}..{fmt_ratio(max(each))}")
    return summary


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="Time backporting commits: hotfix-lane, a fresh clone + cherry-pick, a cached work tree "
                    "+ cherry-pick, and the merge-tree/commit-tree floor. See the module docstring for details.")
    ap.add_argument("commit_ids", nargs="*", metavar="COMMIT", help="commits to backport (with --repo)")
    ap.add_argument("--repo", help="repository path or URL; without it a repository is generated")
    ap.add_argument("--onto", help="ref to backport onto (with --repo)")
    ap.add_argument("--hotfix-lane", type=Path, default=TARGET / "release" / "hotfix-lane", metavar="PATH")
    ap.add_argument("--no-hotfix-lane", action="store_true", help="time only the git approaches")
    ap.add_argument("--reps", type=int, default=5, metavar="N")
    ap.add_argument("--clone-reps", type=int, default=3, metavar="N")
    ap.add_argument("--json", type=Path, metavar="PATH")
    ap.add_argument("--files", type=int, default=25000, metavar="N")
    ap.add_argument("--commits", type=int, default=20000, metavar="N")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--releases", type=int, default=4, metavar="N")
    ap.add_argument("--release-commits", type=int, default=36, metavar="N")
    ap.add_argument("--hotfixes", type=int, default=5, metavar="N")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--tmpdir", type=Path, default=None, metavar="DIR")
    ap.add_argument("--keep-temp", action="store_true")
    args = ap.parse_args(argv)
    if args.repo:
        if not args.onto or not args.commit_ids:
            ap.error("--repo needs --onto REF and at least one COMMIT")
    elif args.onto or args.commit_ids:
        ap.error("--onto and COMMITs go with --repo")
    if args.reps < 1 or args.clone_reps < 1:
        ap.error("--reps and --clone-reps must be at least 1")
    if not (1 <= args.releases <= 10) or args.release_commits < 6 or args.hotfixes < 1:
        ap.error("need 1..10 --releases, --release-commits >= 6 and --hotfixes >= 1")
    if args.hotfixes > args.releases * (args.release_commits - max(2, args.release_commits // 3)):
        ap.error("too many --hotfixes for the release branches")
    if args.files < 500:
        ap.error("--files must be at least 500")
    return args


def main(argv=None) -> int:
    sys.stdout.reconfigure(line_buffering=True)
    args = parse_args(argv)
    major, minor, text = git_version()
    if (major, minor) < MIN_GIT:
        fail(f"{text} is too old: this benchmark needs git >= {MIN_GIT[0]}.{MIN_GIT[1]} "
             "(`merge-tree --write-tree` came in 2.38, its `--merge-base` option in 2.40)")
    if not args.no_hotfix_lane and not args.generate_only:
        args.hotfix_lane = args.hotfix_lane.resolve()
        if not (args.hotfix_lane.is_file() and os.access(args.hotfix_lane, os.X_OK)):
            fail(f"no hotfix-lane binary at {args.hotfix_lane}: build it with `cargo build --release`, "
                 "pass --hotfix-lane PATH, or --no-hotfix-lane to time only the git approaches")

    if args.repo:
        source, onto = args.repo, args.onto
        if Path(source).exists():
            source = str(Path(source).resolve())
        commits = [(c, "") for c in args.commit_ids]
        source_note = {"source": args.repo}
    else:
        repo, meta = generated_repo(args)
        if args.generate_only:
            print(f"onto {meta['onto']}; hotfixes:")
            for h in meta["hotfixes"]:
                print(f"  {h['commit']}  {h['kind']} on {h['branch']}")
            return 0
        source, onto = str(repo), meta["onto"]
        commits = [(h["commit"], f"{h['kind']} on {h['branch']}") for h in meta["hotfixes"]]
        source_note = {"generated": str(repo), **{k: meta[k] for k in (
            "params", "files_at_main", "commits", "pack_bytes", "generation_seconds")}}

    base = args.tmpdir or TARGET
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-backport-", dir=base)).resolve()
    try:
        mirror = prepare_mirror(source, tmp)
        report = benchmark(args, mirror, onto, commits, tmp, source_note)
    finally:
        if args.keep_temp:
            print(f"left in place: {tmp}")
        else:
            print("removing the temporary directory ...", flush=True)
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
