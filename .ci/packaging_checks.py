"""Checks of the packaging files that the schema validators cannot do; run by .ci/lint-packaging.

  split-gitlab FILE OUTDIR      write FILE's two YAML documents (spec header, jobs) to OUTDIR
  check-gitlab FILE             the component: its path (templates/<name>[/template].yml), a header
                                holding only `spec`, inputs declared == inputs used, no script
                                reading what a merge request's author writes; the label-only
                                fallback over label sets (lane job's report, the full job's skip,
                                its warning); with a token, each job running `hotfix-lane
                                gitlab-ci <mode>` and nothing else; the checksum-verified download
  check-gate FILE JOB           the verdict step of a gate job (JOB in FILE) passes exactly when
                                it should, for each combination of job results
  check-gate-status FILE        the `pull_request_target` gate's suites and status steps, with a
                                stand-in `gh`: what it waits for, and the status it reports
  check-pull-request-target FILE…  each `pull_request_target` workflow checks out nothing, keeps
                                the change's data out of scripts and inputs, holds only read
                                tokens and keeps secrets behind an environment; every mutation
                                that breaks one of these is caught
  extract-scripts OUTDIR FILE…  write every shell script of GitHub workflows/actions (`run:`) and
                                GitLab templates (`before_script:`, `script:`) to OUTDIR for shellcheck; refuses
                                `${{ }}` and `$[[ ]]` expressions inside shell text
  extract-step FILE JOB NAME    print the `run:` script of the step called NAME in JOB, for tests
                                that run it
"""

import copy
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from ruamel.yaml import YAML

yaml = YAML(typ="safe")
INPUT_USE = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")
errors = []


def error(message):
    errors.append(message)


def gitlab_documents(path):
    """The spec header and the jobs document, as text and as data."""
    text = Path(path).read_text()
    docs = list(yaml.load_all(text))
    if len(docs) != 2:
        sys.exit(f"{path}: expected 2 YAML documents (spec header, ---, jobs), found {len(docs)}")
    lines = text.splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if line.rstrip() == "---")
    return "".join(lines[:cut]), "".join(lines[cut + 1 :]), docs[0], docs[1]


def split_gitlab(path, outdir):
    header, jobs, _, _ = gitlab_documents(path)
    stem = Path(path).name
    Path(outdir, f"{stem}.spec.yml").write_text(header)
    Path(outdir, f"{stem}.jobs.yml").write_text(jobs)


COMPONENT_PATH = re.compile(r"^templates/([a-z0-9_-]+)(/template)?\.yml$")
# CI variables a merge request's author writes: no script of the template may read them (the
# fallback's exact label match is the one exception, quoted in a `case`).
CHANGE_TEXT = re.compile(r"\bCI_(MERGE_REQUEST_(TITLE|DESCRIPTION|SOURCE_BRANCH_NAME|DIFF_BASE_SHA|ASSIGNEES|"
                         r"MILESTONE)|COMMIT_(MESSAGE|TITLE|DESCRIPTION|BRANCH|REF_NAME|REF_SLUG|TAG_MESSAGE|AUTHOR)|"
                         r"EXTERNAL_PULL_REQUEST_\w+)\b")
HOSTILE = "$(touch pwned) `touch pwned`; touch pwned\nHOTFIX_SUITE=smoke"
STUB = "#!/bin/sh\nprintf '%s\\n' \"$*\" >>\"$STUB_CALLS\"\n"


def job_lines(job, key):
    lines = job.get(key) if isinstance(job, dict) else None
    return "\n".join(lines) if isinstance(lines, list) else None


def run_job(jobs, job_id, env, work, after=""):
    """Runs a job's before_script and script in one shell, as the runner does; returns the result."""
    job = jobs[job_id]
    parts = [job_lines(jobs.get(job.get("extends")), "before_script"), job_lines(job, "before_script"),
             job_lines(job, "script"), after]
    script = "\n".join(p for p in parts if p)
    full_env = {"PATH": f"{work}/bin:{os.environ['PATH']}", "STUB_CALLS": f"{work}/calls",
                "CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_TITLE": HOSTILE,
                "CI_MERGE_REQUEST_DESCRIPTION": HOSTILE, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "$(touch pwned)",
                "CI_COMMIT_MESSAGE": HOSTILE, **env}
    return subprocess.run(["sh", "-e", "-c", script], cwd=work, env=full_env, capture_output=True, text=True)


def job_variables(jobs, job_id, label):
    merged = {**jobs.get(jobs[job_id].get("extends"), {}).get("variables", {}), **jobs[job_id].get("variables", {})}
    return {k: INPUT_USE.sub(lambda m: label if m.group(1) == "label" else "", str(v)) for k, v in merged.items()}


def lane_decision(path, jobs, labels, label):
    """The fallback (no token): the lane job's dotenv report, and whether the full job ran its suite."""
    with tempfile.TemporaryDirectory() as work:
        env = job_variables(jobs, "hotfix-lane", label)
        if labels is not None:
            env["CI_MERGE_REQUEST_LABELS"] = labels
        done = run_job(jobs, "hotfix-lane", env, work)
        if done.returncode != 0:
            sys.exit(f"{path}: the lane job failed for labels {labels!r}: {done.stderr}")
        if "anyone who can label merge requests gets smoke-only CI" not in done.stdout:
            error(f"{path}: labels {labels!r}: the fallback gives no warning that the label alone decides")
        report = dict(line.split("=", 1) for line in Path(work, "hotfix-lane.env").read_text().splitlines())
        if Path(work, "pwned").exists():
            error(f"{path}: labels {labels!r}: the lane job ran text of the merge request")
        mr = {**env, **report, "CI_PIPELINE_SOURCE": "merge_request_event"}
        full = run_job(jobs, "hotfix-lane-full", mr, work, after="echo FULL-SUITE-RAN")
        # A branch pipeline run with HOTFIX_SUITE=smoke as a variable has no lane job: full suite.
        branch = {**env, "HOTFIX_SUITE": "smoke", "CI_PIPELINE_SOURCE": "push"}
        if "FULL-SUITE-RAN" not in run_job(jobs, "hotfix-lane-full", branch, work, after="echo FULL-SUITE-RAN").stdout:
            error(f"{path}: a branch pipeline given HOTFIX_SUITE=smoke skipped the full suite")
        return report, "FULL-SUITE-RAN" in full.stdout


def check_token_path(path, jobs, label):
    """With a token every lane job runs the binary, with exactly its mode, and nothing else."""
    with tempfile.TemporaryDirectory() as work:
        Path(work, "bin").mkdir()
        Path(work, "bin", "hotfix-lane").write_text(STUB)
        Path(work, "bin", "hotfix-lane").chmod(0o755)
        for job_id, mode, source in [("hotfix-lane", "lane", "merge_request_event"),
                                     ("hotfix-lane-postmortem", "postmortem", "merge_request_event"),
                                     ("hotfix-lane-merge", "merge", "merge_request_event"),
                                     ("hotfix-lane-backport", "backport", "push")]:
            Path(work, "calls").write_text("")
            env = {**job_variables(jobs, job_id, label), "HOTFIX_LANE_TOKEN": "glpat-x",
                   "CI_MERGE_REQUEST_LABELS": f"{label},{HOSTILE}", "CI_PIPELINE_SOURCE": source}
            done = run_job(jobs, job_id, env, work)
            calls = Path(work, "calls").read_text()
            if done.returncode != 0 or calls != f"gitlab-ci {mode}\n":
                error(f"{path}: job {job_id} with a token: exit {done.returncode}, ran {calls!r}, expected "
                      f"`hotfix-lane gitlab-ci {mode}` ({done.stderr.strip()})")
            if Path(work, "hotfix-lane.env").exists():
                error(f"{path}: job {job_id} with a token wrote a report of its own beside the binary's")
            if Path(work, "pwned").exists():
                error(f"{path}: job {job_id} ran text of the merge request")


def check_installer(path, jobs):
    """The download: only with a token, only over https (or loopback), only if the archive's sha256
    is the pinned one; then the archive's hotfix-lane is on PATH."""
    import hashlib
    import http.server
    import io
    import tarfile
    import threading

    binary = b"#!/bin/sh\necho verified-binary \"$@\"\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("hotfix-lane")
        info.size, info.mode = len(binary), 0o755
        archive.addfile(info, io.BytesIO(binary))
    asset = buffer.getvalue()
    good = hashlib.sha256(asset).hexdigest()
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(asset)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hotfix-lane-x86_64-unknown-linux-gnu.tar.gz"
    cases = [
        ("the pinned archive", {"HOTFIX_LANE_BINARY_URL": url, "HOTFIX_LANE_BINARY_SHA256": good}, 0, True),
        ("another archive", {"HOTFIX_LANE_BINARY_URL": url, "HOTFIX_LANE_BINARY_SHA256": "0" * 64}, 3, False),
        ("no checksum", {"HOTFIX_LANE_BINARY_URL": url, "HOTFIX_LANE_BINARY_SHA256": ""}, 3, False),
        ("plain http", {"HOTFIX_LANE_BINARY_URL": "http://example.com/a.tar.gz", "HOTFIX_LANE_BINARY_SHA256": good},
         3, False),
        ("an image without the binary", {"HOTFIX_LANE_BINARY_URL": "", "HOTFIX_LANE_BINARY_SHA256": ""}, 3, False),
    ]
    try:
        for name, env, want_code, want_run in cases:
            with tempfile.TemporaryDirectory() as work:
                Path(work, "bin").mkdir()
                done = run_job(jobs, "hotfix-lane", {**env, "HOTFIX_LANE_TOKEN": "glpat-x",
                                                     "PATH": f"{work}/bin:/usr/bin:/bin"}, work)
                ran = "verified-binary gitlab-ci lane" in done.stdout
                if done.returncode != want_code or ran != want_run:
                    error(f"{path}: installer, {name}: exit {done.returncode}, ran the binary: {ran}; expected "
                          f"exit {want_code}, ran: {want_run} ({done.stderr.strip()})")
        requests.clear()
        with tempfile.TemporaryDirectory() as work:
            run_job(jobs, "hotfix-lane", {"HOTFIX_LANE_BINARY_URL": url, "HOTFIX_LANE_BINARY_SHA256": good}, work)
        if requests:
            error(f"{path}: installer downloads without a token, where the fallback needs no binary")
    finally:
        server.shutdown()


def check_gitlab(path):
    if not COMPONENT_PATH.match(path):
        error(f"{path}: a CI/CD component lives at templates/<name>.yml or templates/<name>/template.yml")
    _, jobs_text, header, jobs = gitlab_documents(path)
    if set(header) != {"spec"}:
        error(f"{path}: the header document must hold only `spec`, found {sorted(header)}")
    inputs = header.get("spec", {}).get("inputs", {})
    used = set(INPUT_USE.findall(jobs_text))
    for name in sorted(set(inputs) - used):
        error(f"{path}: input `{name}` is declared but never used")
    for name in sorted(used - set(inputs)):
        error(f"{path}: input `{name}` is used but not declared")
    for job_id, job in jobs.items():
        for key in ("before_script", "script"):
            text = job_lines(job, key) or ""
            for found in CHANGE_TEXT.finditer(text):
                error(f"{path}: job {job_id} reads {found.group(0)}, text the merge request's author writes")

    if "default" not in inputs.get("label", {}):
        error(f"{path}: input `label` with a default is missing")
        return
    label = inputs["label"]["default"]
    pattern = inputs["label"].get("regex")
    cases = {
        None: "normal",
        "": "normal",
        label: "hotfix",
        f"bug,{label}": "hotfix",
        f"{label},p1": "hotfix",
        f"a,{label},b": "hotfix",
        f"not-{label}": "normal",
        f"{label}-later": "normal",
        f"{label}x,x{label}": "normal",
        label.upper(): "normal",
        f"{HOSTILE},{label}": "hotfix",
        HOSTILE: "normal",
    }
    for other in ["priority::hotfix", "hotfix_2"]:
        if pattern and not re.fullmatch(pattern, other):
            error(f"{path}: the label regex refuses `{other}`")
        for labels, want in {other: "hotfix", f"a,{other}": "hotfix", f"{other}s": "normal"}.items():
            check_case(path, jobs, labels, other, want)
    for labels, want in cases.items():
        check_case(path, jobs, labels, label, want)
    check_token_path(path, jobs, label)
    check_installer(path, jobs)


def check_case(path, jobs, labels, label, want):
    report, full_ran = lane_decision(path, jobs, labels, label)
    suite = "smoke" if want == "hotfix" else "full"
    if report != {"HOTFIX_LANE": want, "HOTFIX_SUITE": suite}:
        error(f"{path}: labels {labels!r}, label {label!r}: lane job reports {report}, expected {want}/{suite}")
    if full_ran != (want == "normal"):
        error(f"{path}: labels {labels!r}, label {label!r}: the full job {'ran' if full_ran else 'skipped'} "
              f"its suite for a {want} change")


GATE_STEP = "Check the lane's jobs"
GATE_ENV = {"LANE", "SUITE", "SMOKE", "FULL", "POSTMORTEM"}


def check_gate(path, job_id):
    """Runs a gate job's verdict step for the job results the runner can report."""
    job = yaml.load(Path(path).read_text())["jobs"][job_id]
    if job_id == "hotfix-lane-gate" and (
        job.get("if") != "always()" or sorted(job.get("needs", [])) != ["full", "lane", "postmortem", "smoke"]
    ):
        error(f"{path}: hotfix-lane-gate must run `if: always()` and need lane, smoke, full and postmortem")
    steps = [step for step in job["steps"] if step.get("name") == GATE_STEP]
    if len(steps) != 1 or set(steps[0].get("env", {})) != GATE_ENV:
        error(f"{path}: job {job_id} needs one step {GATE_STEP!r} with env {sorted(GATE_ENV)}")
        return
    script = steps[0]["run"]
    results = ["success", "failure", "cancelled", "skipped"]
    for lane in results:
        for suite in ["smoke", "full", ""]:
            for smoke in results:
                for full in results:
                    for postmortem in results:
                        want = (
                            lane == smoke == postmortem == "success"
                            and (full == "success" or (full == "skipped" and suite == "smoke"))
                        )
                        env = {"PATH": os.environ["PATH"], "LANE": lane, "SUITE": suite, "SMOKE": smoke,
                               "FULL": full, "POSTMORTEM": postmortem}
                        done = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True)
                        if (done.returncode == 0) != want:
                            error(f"{path}: gate with lane={lane} suite={suite!r} smoke={smoke} full={full} "
                                  f"postmortem={postmortem}: exit {done.returncode}, expected {'pass' if want else 'fail'}")


# Stand-in for `gh api`: records its arguments; answers a check-runs query from <check name>.json
# through the caller's --jq filter (with the real jq).
FAKE_GH = r"""#!/bin/sh
printf '%s\n' "$*" >>"$FAKE_GH_DIR/calls"
name= filter=
while [ $# -gt 0 ]; do
    case $1 in
        -f) case $2 in check_name=*) name=${2#check_name=} ;; esac; shift ;;
        --jq) filter=$2; shift ;;
    esac
    shift
done
if [ -n "$filter" ]; then jq -r "$filter" "$FAKE_GH_DIR/$name.json"; fi
"""


def check_runs(*runs):
    """A check-runs answer: (app slug, status, conclusion) for each run."""
    return {"check_runs": [{"app": {"slug": app}, "status": status, "conclusion": conclusion}
                           for app, status, conclusion in runs]}


def run_step(step, workflow_env, env, work):
    """Runs a `run:` step as the runner does, with `gh` replaced; returns (exit code, outputs, gh calls)."""
    output = Path(work, "output")
    output.write_text("")
    Path(work, "calls").write_text("")
    full_env = {"PATH": f"{work}/bin:{os.environ['PATH']}", "FAKE_GH_DIR": work, "GITHUB_OUTPUT": str(output),
                "GITHUB_REPOSITORY": "acme/shop", "GITHUB_SERVER_URL": "https://github.example",
                "GITHUB_RUN_ID": "7", **workflow_env, **step.get("env", {}), **env}
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                          env=full_env, capture_output=True, text=True)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return done.returncode, outputs, Path(work, "calls").read_text()


def check_gate_status(path):
    """The suites step waits for GitHub Actions' check runs of both suites and sums them up; the
    status step reports the verdict as `hotfix-lane/gate` on the head commit."""
    data = yaml.load(Path(path).read_text())
    steps = {step.get("name"): step for step in data["jobs"]["gate"]["steps"]}
    workflow_env = {key: str(value) for key, value in data.get("env", {}).items()}
    smoke, full = workflow_env["SMOKE_CHECK"], workflow_env["FULL_CHECK"]
    ok = ("github-actions", "completed", "success")
    cases = [
        ("both passed", [ok], [ok], {}, {"smoke": "success", "full": "success"}),
        ("full skipped", [ok], [("github-actions", "completed", "skipped")], {}, {"smoke": "success", "full": "skipped"}),
        ("a failing run beside a passing one of the same name", [ok, ("github-actions", "completed", "failure"), ok],
         [ok], {}, {"smoke": "failure", "full": "success"}),
        ("passed and skipped runs of one name", [ok, ("github-actions", "completed", "skipped")], [ok], {},
         {"smoke": "mixed", "full": "success"}),
        ("a run by another app does not count", [("mallory-app", "completed", "success")], [ok],
         {"WAIT_MINUTES": "0"}, {"smoke": "missing", "full": "success"}),
        ("still running when the wait is over", [("github-actions", "in_progress", None)], [ok],
         {"WAIT_MINUTES": "0"}, {"smoke": "pending", "full": "success"}),
    ]
    with tempfile.TemporaryDirectory() as work:
        Path(work, "bin").mkdir()
        Path(work, "bin", "gh").write_text(FAKE_GH)
        Path(work, "bin", "gh").chmod(0o755)
        for name, smoke_runs, full_runs, env, want in cases:
            Path(work, f"{smoke}.json").write_text(json.dumps(check_runs(*smoke_runs)))
            Path(work, f"{full}.json").write_text(json.dumps(check_runs(*full_runs)))
            code, outputs, calls = run_step(steps["Wait for the suites"], workflow_env,
                                            {"GH_TOKEN": "t", "HEAD_SHA": "abc123", **env}, work)
            if code != 0 or outputs != want or "commits/abc123/check-runs" not in calls:
                error(f"{path}: suites step, {name}: exit {code}, outputs {outputs}, expected {want}")
        for verdict, state in [("success", "success"), ("failure", "failure"), ("skipped", "failure"), ("", "failure")]:
            code, _, calls = run_step(steps["Report the verdict"], workflow_env,
                                      {"GH_TOKEN": "t", "HEAD_SHA": "abc123", "VERDICT": verdict}, work)
            posted = "repos/acme/shop/statuses/abc123" in calls and "context=hotfix-lane/gate" in calls \
                and f"state={state}" in calls
            if not posted or (code == 0) != (state == "success"):
                error(f"{path}: status step with verdict {verdict!r}: exit {code}, gh {calls.strip()!r}, "
                      f"expected state={state}")


EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
# Context a pull request's author writes: its title, body, branch names, labels, commit messages...
CHANGE_DATA = re.compile(r"\bgithub\.(event\b|head_ref\b)|\bgithub\[")
SAFE_CHANGE_DATA = re.compile(r"^\s*github\.event\.pull_request\.number\s*$")
FETCH_IN_SHELL = re.compile(r"\bgit\s+(fetch|checkout|clone|switch|pull|worktree)\b|\bgh\s+pr\s+checkout\b|refs/pull/")


def strings(node, keys=()):
    """(keys leading to it, value) for every string in a loaded YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, keys + (str(key),))
    elif isinstance(node, list):
        for value in node:
            yield from strings(value, keys)
    elif isinstance(node, str):
        yield keys, node


def triggers(data):
    on = data.get("on")
    return {on} if isinstance(on, str) else set(on or [])


def pull_request_target_problems(data):
    """Why a `pull_request_target` workflow could run or trust what the change wrote. It runs with
    the default branch's token and secrets, so: nothing is checked out (not even the base: nothing
    here needs files), no script fetches refs, the change's data reaches steps only as `env:`
    values (the number may name the concurrency group), the token only reads, and secrets live in
    an environment that only the default branch may use."""
    problems = []
    if data.get("permissions") != {}:
        problems.append("the top-level `permissions` must be `{}`")
    for job_id, job in (data.get("jobs") or {}).items():
        permissions = job.get("permissions")
        if not isinstance(permissions, dict) or any(v not in ("read", "none") for v in permissions.values()):
            problems.append(f"job {job_id}: list its `permissions`, each `read` or `none` (write with an App token)")
        if "uses" in job:
            problems.append(f"job {job_id}: calls a reusable workflow, which this check cannot see into")
        if any("secrets." in value for _, value in strings(job)) and not job.get("environment"):
            problems.append(f"job {job_id}: uses secrets outside an `environment`")
        for number, step in enumerate(job.get("steps") or [], 1):
            where = f"job {job_id}, step {step.get('name') or step.get('id') or number}"
            action = str(step.get("uses", "")).split("@")[0]
            if action == "actions/checkout":
                problems.append(f"{where}: checks out code")
            if action.startswith("./"):
                problems.append(f"{where}: runs a local action from a checkout")
            script = str(step.get("run", ""))
            if "${{" in script:
                problems.append(f"{where}: an expression inside `run:` (pass it through `env:`)")
            if FETCH_IN_SHELL.search(script):
                problems.append(f"{where}: fetches or checks out refs")
    for keys, value in strings(data):
        for expression in EXPRESSION.findall(value):
            if not CHANGE_DATA.search(expression) or "env" in keys:
                continue
            if keys[:2] == ("concurrency", "group") and SAFE_CHANGE_DATA.match(expression):
                continue
            problems.append(f"{'.'.join(keys)}: the change's data `{expression.strip()}` outside `env:`")
    return problems


def mutations(data):
    """(what, a copy of data broken that way) for each property pull_request_target_problems checks."""
    job_id = next(iter(data["jobs"]))

    def broken(what, change):
        copied = copy.deepcopy(data)
        change(copied, copied["jobs"][job_id])
        return what, copied

    def add_step(step):
        return lambda _, job: job["steps"].insert(0, step)

    head = "${{ github.event.pull_request.head.sha }}"
    yield broken("checks out the head", add_step({"uses": "actions/checkout@v6", "with": {"ref": head}}))
    yield broken("checks out the base", add_step({"uses": "actions/checkout@v6"}))
    yield broken("runs a local action", add_step({"uses": "./.github/actions/x"}))
    yield broken("fetches the change", add_step({"run": 'gh pr checkout "$PR"'}))
    yield broken("fetches the merge ref", add_step({"run": 'git fetch origin "refs/pull/$PR/merge"'}))
    yield broken("title in a script", add_step({"run": 'echo "${{ github.event.pull_request.title }}"'}))
    yield broken("branch in a script", add_step({"run": "echo ${{ github.head_ref }}"}))
    yield broken("body in an input", add_step({"uses": "x/y@v1", "with": {"text": "${{ github.event.pull_request.body }}"}}))
    yield broken("title in a step name", add_step({"name": "${{ github.event.pull_request.title }}", "run": "true"}))
    yield broken("a write token", lambda _, job: job["permissions"].update({"pull-requests": "write"}))
    yield broken("no job permissions", lambda _, job: job.pop("permissions"))
    yield broken("write-all at the top", lambda d, _: d.update({"permissions": "write-all"}))
    yield broken("secrets outside an environment", lambda _, job: (job.pop("environment", None), job.update(
        {"env": {"KEY": "${{ secrets.KEY }}"}})))


def check_pull_request_target(paths):
    checked = 0
    for path in paths:
        data = yaml.load(Path(path).read_text())
        if "pull_request_target" not in triggers(data):
            continue
        checked += 1
        for problem in pull_request_target_problems(data):
            error(f"{path}: {problem}")
        for what, broken in mutations(data):
            if not pull_request_target_problems(broken):
                error(f"{path}: check-pull-request-target does not notice a workflow that {what}")
    if not checked:
        error(f"check-pull-request-target: none of {' '.join(paths)} runs on pull_request_target")


def github_scripts(path, data):
    """(name, shell, script) of every `run:` in a workflow or a composite action."""
    defaults = ((data.get("defaults") or {}).get("run") or {}).get("shell")
    if "jobs" in data:
        for job_id, job in data["jobs"].items():
            job_shell = ((job.get("defaults") or {}).get("run") or {}).get("shell") or defaults
            for i, step in enumerate(job.get("steps") or []):
                if "run" in step:
                    yield f"{job_id}-step{i + 1}", step.get("shell") or job_shell, step["run"]
    for i, step in enumerate((data.get("runs") or {}).get("steps") or []):
        if "run" in step:
            yield f"step{i + 1}", step.get("shell"), step["run"]


def extract_scripts(outdir, files):
    for path in files:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
        if COMPONENT_PATH.match(path):
            _, _, _, jobs = gitlab_documents(path)
            for job_id, job in jobs.items():
                for key in ("before_script", "script"):
                    text = job_lines(job, key)
                    if text is None:
                        continue  # none, or an input (`$[[ inputs.x ]]`): the adopter's own commands
                    if "$[[" in text:
                        error(f"{path}: job {job_id}: pass inputs through `variables:`, not into script text")
                    name = re.sub(r"[^A-Za-z0-9-]+", "_", job_id).strip("_")
                    Path(outdir, f"{slug}--{name}--{key}.sh").write_text(f"#!/bin/sh\nset -e\n{text}\n")
            continue
        data = yaml.load(Path(path).read_text())
        for name, shell, script in github_scripts(path, data):
            if "${{" in script:
                error(f"{path}: {name}: pass expressions through `env:`, not into the script text")
            if shell not in (None, "bash"):
                error(f"{path}: {name}: shell `{shell}` is not checked; use bash")
                continue
            Path(outdir, f"{slug}--{name}.sh").write_text(f"#!/usr/bin/env bash\nset -eo pipefail\n{script}")


def step_script(path, job_id, name):
    steps = yaml.load(Path(path).read_text())["jobs"][job_id]["steps"]
    runs = [step["run"] for step in steps if step.get("name") == name and "run" in step]
    if len(runs) != 1:
        sys.exit(f"{path}: job {job_id} has {len(runs)} `run:` steps named {name!r}, expected 1")
    return runs[0]


def main(argv):
    command, args = argv[1], argv[2:]
    if command == "split-gitlab":
        split_gitlab(*args)
    elif command == "check-gitlab":
        for path in args:
            check_gitlab(path)
    elif command == "check-gate":
        check_gate(*args)
    elif command == "check-gate-status":
        check_gate_status(*args)
    elif command == "check-pull-request-target":
        check_pull_request_target(args)
    elif command == "extract-scripts":
        extract_scripts(args[0], args[1:])
    elif command == "extract-step":
        sys.stdout.write(step_script(*args))
    else:
        sys.exit(f"unknown command {command}")
    for message in errors:
        print(message, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
