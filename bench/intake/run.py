#!/usr/bin/env python3
"""Webhook intake against the peer, in one sitting on one harness.

Loads each server with wrk: the same real 28 KB GitHub `pull_request` body, signed, a fresh
`X-GitHub-Delivery` per request, 64 keep-alive connections, a warm-up and then 3 runs of 15 s
on the same process. The servers:

* @octokit/webhooks on Node (its own Node middleware: verify + parse, storing nothing),
  installed with `npm ci` from the lockfile beside this script;
* `hotfix-lane serve` on SQLite and on PostgreSQL, durable: a 2xx is committed to disk.
  Its GitHub API is unreachable, so every stored delivery queues a job that keeps failing and
  the job backlog grows through the runs (hundreds of thousands of jobs by the last one).

Prints each run, then the medians with ratios against the peer and against SQLite, and the
backlog each hotfix-lane run ended on. `--json FILE` keeps the raw figures.

    python3 bench/intake/run.py            # installs wrk and Node's packages when missing
    BENCH_SECONDS=15 BENCH_RUNS=3 BENCH_CONNECTIONS=64 python3 bench/intake/run.py
"""

import argparse
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BODY = os.path.join(ROOT, "tests/fixtures/github/pull_request/opened.json")
SECRET = "bench-secret"
PG_URL = os.environ.get("HOTFIX_LANE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def env_int(name, default):
    return int(os.environ.get(name, default))


def ensure_tools(build):
    missing = [pkg for tool, pkg in (("wrk", "wrk"), ("node", "nodejs"), ("npm", "npm"), ("psql", "postgresql-client"))
               if shutil.which(tool) is None]
    if missing:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, stdout=subprocess.DEVNULL)
    if not os.path.isdir(os.path.join(HERE, "node_modules", "@octokit", "webhooks")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    if build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "hotfix-lane"], cwd=ROOT, check=True)


def read_line_until(proc, predicate, what):
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"{what} exited before it was listening")
        found = predicate(line)
        if found:
            return found
    raise SystemExit(f"{what} did not start listening within 60 s")


def drain(proc):
    import threading
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()


def start_peer():
    proc = subprocess.Popen(["node", "peer.mjs"], cwd=HERE, env={**os.environ, "SECRET": SECRET},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    port = read_line_until(proc, lambda l: l.split()[1] if l.startswith("listening ") else None, "the peer")
    drain(proc)
    return proc, f"http://127.0.0.1:{port}"


def start_lane(database_url):
    binary = os.path.join(ROOT, "target/release/hotfix-lane")
    env = {**os.environ,
           "HOTFIX_LANE_GITHUB_WEBHOOK_SECRET": SECRET,
           # The forge is down: every job fails and is retried later, so the backlog only grows.
           "HOTFIX_LANE_GITHUB_API_URL": "http://127.0.0.1:9",
           "HOTFIX_LANE_GITHUB_TOKEN": "ghp_bench",
           "RUST_LOG": "warn,hotfix_lane::server=info"}
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--log-format", "json",
                             "--database-url", database_url],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    proc.stdout = proc.stderr

    def listening(line):
        try:
            log = json.loads(line)
        except ValueError:
            return None
        return log.get("addr") if log.get("message") == "listening" else None

    addr = read_line_until(proc, listening, "hotfix-lane serve")
    drain(proc)
    return proc, f"http://{addr}"


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid):
    """User + system CPU time the process (all its threads) has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url, seconds, connections, signature, run):
    env = {**os.environ, "BODY": BODY, "SIGNATURE": signature, "EVENT": "pull_request", "RUN": run}
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                          "-s", os.path.join(HERE, "deliver.lua"), url],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


class Backlog:
    """Counts the jobs a hotfix-lane server has not finished, straight from its database."""

    def __init__(self, database_url):
        self.url = database_url

    def queued(self):
        sql = "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')"
        if self.url.startswith("sqlite:"):
            path = self.url.split("sqlite://", 1)[-1].split("?", 1)[0]
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
                return db.execute(sql).fetchone()[0]
        schema = self.url.split("options[search_path]=", 1)[-1] if "options[search_path]=" in self.url else None
        query = f"SET search_path = {schema}; {sql}" if schema else sql
        out = subprocess.run(["psql", PG_URL, "-Atq", "-c", query], check=True, capture_output=True, text=True)
        return int(out.stdout.split()[-1])


def measure(name, proc, url, backlog, seconds, runs, connections, signature):
    wrk(url, 5, connections, signature, f"warm-{uuid.uuid4().hex[:8]}")
    results = []
    for i in range(runs):
        cpu = cpu_seconds(proc.pid)
        r = wrk(url, seconds, connections, signature, f"{i}-{uuid.uuid4().hex[:8]}")
        # The server's CPU per delivery does not depend on what else the machine runs.
        r["cpu_us"] = (cpu_seconds(proc.pid) - cpu) / r["requests"] * 1e6
        if backlog:
            r["backlog"] = backlog.queued()
        results.append(r)
        print(f"  {name:22} run {i + 1}: {r['rps']:8.0f} req/s  p99 {r['p99_ms']:7.2f} ms  "
              f"CPU {r['cpu_us']:5.0f} us/req  non-2xx {r['non2xx']}  errors {r['errors']}"
              + (f"  backlog {r['backlog']:,} jobs" if backlog else ""), flush=True)
    return {"name": name, "runs": results, "peak_rss_mib": peak_rss_mib(proc.pid),
            "rps": statistics.median(r["rps"] for r in results),
            "p99_ms": statistics.median(r["p99_ms"] for r in results),
            "cpu_us": statistics.median(r["cpu_us"] for r in results)}


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the raw figures here")
    parser.add_argument("--only", choices=["peer", "sqlite", "postgres"], action="append")
    args = parser.parse_args()
    seconds, runs = env_int("BENCH_SECONDS", 15), env_int("BENCH_RUNS", 3)
    connections = env_int("BENCH_CONNECTIONS", 64)
    only = args.only or ["peer", "sqlite", "postgres"]
    ensure_tools(build=only != ["peer"])
    with open(BODY, "rb") as f:
        body = f.read()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    print(f"body {len(body):,} bytes, {connections} connections, warm-up 5 s, {runs} x {seconds} s", flush=True)

    rows = []
    if "peer" in only:
        proc, url = start_peer()
        try:
            rows.append(measure("@octokit/webhooks", proc, url, None, seconds, runs, connections, signature))
        finally:
            stop(proc)
    with tempfile.TemporaryDirectory(prefix="hl-intake-") as tmp:
        setups = []
        if "sqlite" in only:
            setups.append(("hotfix-lane, SQLite", f"sqlite://{tmp}/lane.db?mode=rwc"))
        if "postgres" in only:
            schema = f"hl_bench_{uuid.uuid4().hex[:10]}"
            subprocess.run(["psql", PG_URL, "-q", "-c", f"CREATE SCHEMA {schema}"], check=True)
            setups.append(("hotfix-lane, PostgreSQL", f"{PG_URL}?options[search_path]={schema}"))
        try:
            for name, database_url in setups:
                proc, url = start_lane(database_url)
                try:
                    rows.append(measure(name, proc, url, Backlog(database_url), seconds, runs, connections, signature))
                finally:
                    stop(proc)
        finally:
            for name, database_url in setups:
                if "options[search_path]=" in database_url:
                    schema = database_url.split("options[search_path]=", 1)[-1]
                    subprocess.run(["psql", PG_URL, "-q", "-c", f"DROP SCHEMA {schema} CASCADE"], check=False,
                                   env={**os.environ, "PGOPTIONS": "-c client_min_messages=warning"})

    peer = next((r for r in rows if r["name"].startswith("@octokit")), None)
    sqlite = next((r for r in rows if r["name"].endswith("SQLite")), None)
    print()
    print(f"{'server':26} {'req/s (median)':>15} {'p99 ms':>8} {'peak RSS':>9} {'CPU/req':>8} {'vs peer':>8} {'vs SQLite':>10}  first -> last run")
    for r in rows:
        vs_peer = f"{r['rps'] / peer['rps']:.2f}x" if peer else "-"
        vs_sqlite = f"{r['rps'] / sqlite['rps']:.2f}x" if sqlite and "hotfix-lane" in r["name"] else "-"
        trend = f"{r['runs'][0]['rps']:.0f} -> {r['runs'][-1]['rps']:.0f} req/s"
        if "backlog" in r["runs"][-1]:
            trend += f" (backlog {r['runs'][-1]['backlog']:,})"
        print(f"{r['name']:26} {r['rps']:15.0f} {r['p99_ms']:8.2f} {r['peak_rss_mib']:6.1f} MiB {r['cpu_us']:5.0f} us {vs_peer:>8} {vs_sqlite:>10}  {trend}")
    bad = [r["name"] for r in rows for run in r["runs"] if run["non2xx"] or run["errors"]]
    if bad:
        print(f"some requests were not answered 2xx: {sorted(set(bad))}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
