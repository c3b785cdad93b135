#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from tests/fixtures/ and from the examples in the
tests and the README. Fixtures are written without whitespace (same data, smaller inputs).
Run from anywhere; it rewrites fuzz/corpus/<target>/seed-*, leaving other inputs alone."""

import base64
import hashlib
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
CORPUS = ROOT / "fuzz" / "corpus"


def compact(path):
    return json.dumps(json.loads(path.read_bytes()), separators=(",", ":"), ensure_ascii=False).encode()


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ("seed-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)


for old in CORPUS.glob("*/seed-*"):
    old.unlink()

# GitHub: `X-GitHub-Event` line, then the body; the directory names the event.
github = sorted((FIXTURES / "github").glob("*/*.json"))
for path in github:
    write("github_webhook", path.parent.name.encode() + b"\n" + compact(path))
write("github_webhook", "deployment_status\n{}")
write("github_webhook", "sha256=" + "0" * 64 + "\n{}")

gitlab = sorted((FIXTURES / "gitlab").glob("*/*.json"))
for path in gitlab:
    write("gitlab_webhook", compact(path))
for kind in ["work_item", "deployment", "pipeline"]:
    write("gitlab_webhook", json.dumps({"object_kind": kind}))
mac = base64.b64encode(bytes(range(32))).decode()
write("gitlab_webhook", f"msg_2f1a\n1790000000\nv1,{mac} v1a,xyz")

# Policies: the example file and the tests' snippets.
write("policy", (ROOT / "examples" / "hotfix-lane.toml").read_text())
for text in [
    "",
    '[lane]\nlabel = "sev1"\nbranch_patterns = ["hotfix/*"]\n[responders]\nusers = ["alice"]\n'
    'teams = ["@acme/oncall"]\nmin_permission = "maintain"\n[postmortem]\nallowed_repos = ["acme/incidents"]\n'
    '[backport]\ntargets = ["main", "release-2"]\nstale_after = "2d"\n[merge]\nmethod = "merge"\n'
    'max_grant = "1h30m"\nsmoke_checks = ["smoke"]\nallow_self_authorize = true\n',
    '[responders]\nteams = ["@acme", "@acme/platform/sre"]\nmin_permission = "maintainer"\n',
    '[merge]\nsmoke_checks = ["lint", { name = "smoke", app = "github-actions" }, { name = "e2e", creator = "ci-bot" }]\n',
    '[merge]\nmax_grant = "soon"\n',
    '[lane]\nlabel = "hotfix"\nlabels = ["x"]\n',
]:
    write("policy", text)

# Comments: commands where they run and where they must not.
for text in [
    "/hotfix authorize 2h DB failover",
    "/hotfix authorize\n/hotfix revoke",
    "/hotfix backport release-2.4",
    "/hotfix backport",
    "/hotfix postmortem",
    "/hotfix revert",
    "/hotfix revert now",
    "/hotfix frobnicate",
    "> /hotfix authorize\n\n```\n/hotfix revoke\n```\n\n    /hotfix revoke\n",
    "<!-- /hotfix revoke -->\n<details>\n\n/hotfix revoke\n\n</details>\n\n/hotfix revoke",
    "- /hotfix authorize\n* `/hotfix revoke`\n\n**/hotfix** authorize\n\n| a |\n|---|\n| /hotfix revoke |",
    "~~~~\n/hotfix revoke\n~~~\n~~~~\n/hotfix authorize 1h30m",
    "Fix the outage.\n/merge\n  /approve\nPostmortem: #12\n",
    "soon` <img src=https://attacker.example/p.png> @acme/everyone",
    "**bold** _em_ ~~gone~~ [link](https://x) ![i](https://x/i.png) <https://x>",
    "$x^2$ and $$y$$ &amp; &#64;team [^1] [x][y] | pipe | trailing backslash\\",
    "90s",
    "1h30m",
]:
    write("commands", text)

# Descriptions: head branch on the first line, then the body.
for text in [
    "hotfix/db\nPostmortem: #50",
    "hotfix/db\n- **Postmortem:** acme/incidents#7",
    "x\nPostmortem: https://github.com/acme/incidents/issues/9#issuecomment-1",
    "x\nPostmortem: https://gitlab.example/group/sub/project/-/issues/3",
    "x\n> Postmortem: #1\n\n`Postmortem: #2`\n\nPostmortem: soon",
    "revert-42-hotfix/db\nReverts acme/app#42",
    "x\nThis reverts merge request !17.",
    "x\nThis reverts commit 0123456789abcdef0123456789ABCDEF01234567.",
    "x\nFixes: #3, acme/app#4 other/repo#5 !6",
    "x\nIncident-Started: 2026-11-26T13:24:00Z",
    "2026-11-26T13:24:00Z",
]:
    write("postmortem_ref", text)

# Action inputs: targets, wait, poll, event name, event file.
for name, path in [
    ("pull_request", "pull_request/labeled.json"),
    ("pull_request_target", "pull_request/closed.json"),
    ("merge_group", "merge_group/checks_requested.json"),
    ("issue_comment", "issue_comment/created.json"),
]:
    write("action_inputs", b"release-2.4,release-2.3\n\x0030m\x0015s\x00" + name.encode() + b"\x00" + compact(FIXTURES / "github" / path))
write("action_inputs", b"\x0030m\x0015s\x00merge_group\x00refs/heads/gh-readonly-queue/main/pr-42-0123abc")
write("action_inputs", b"-bad\x00soon\x001h30m\x00push\x00line\r\n%0A")
