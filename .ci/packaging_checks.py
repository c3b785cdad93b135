"""Checks of the packaging files that the schema validators cannot do; run by .ci/lint-packaging.

  split-gitlab FILE OUTDIR      write FILE's two YAML documents (spec header, jobs) to OUTDIR
  check-gitlab FILE             header holds only `spec`, inputs declared == inputs used, and the
                                lane job's label match agrees with the full job's rule
  check-gate FILE               the workflow template's `hotfix-lane-gate` passes exactly when it
                                should, for each combination of job results
  extract-scripts OUTDIR FILE…  write every shell script of GitHub workflows/actions (`run:`) and
                                GitLab templates (`script:`) to OUTDIR for shellcheck; refuses
                                `${{ }}` and `$[[ ]]` expressions inside shell text
  extract-step FILE JOB NAME    print the `run:` script of the step called NAME in JOB, for tests
                                that run it
"""

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


def lane_decision(script, labels, label):
    """Runs the lane job's script as the runner would and returns its dotenv report."""
    with tempfile.TemporaryDirectory() as work:
        env = {"PATH": os.environ["PATH"], "HOTFIX_LANE_LABEL": label, "CI_PIPELINE_SOURCE": "merge_request_event"}
        if labels is not None:
            env["CI_MERGE_REQUEST_LABELS"] = labels
        subprocess.run(["sh", "-e", "-c", script], cwd=work, env=env, check=True, capture_output=True)
        report = Path(work, "hotfix-lane.env").read_text()
    return dict(line.split("=", 1) for line in report.splitlines())


def rule_skips_full(rule, labels, label):
    """Evaluates `$CI_MERGE_REQUEST_LABELS =~ /…/` after input interpolation (RE2 and Python agree
    on this subset). An unset variable never matches."""
    condition = INPUT_USE.sub(lambda m: label if m.group(1) == "label" else m.group(0), rule)
    m = re.fullmatch(r"\$CI_MERGE_REQUEST_LABELS =~ /(.*)/", condition)
    if not m:
        sys.exit(f"unexpected rule in hotfix-lane-full: {rule}")
    return labels is not None and re.search(m.group(1), labels) is not None


def check_gitlab(path):
    _, jobs_text, header, jobs = gitlab_documents(path)
    if set(header) != {"spec"}:
        error(f"{path}: the header document must hold only `spec`, found {sorted(header)}")
    inputs = header.get("spec", {}).get("inputs", {})
    used = set(INPUT_USE.findall(jobs_text))
    for name in sorted(set(inputs) - used):
        error(f"{path}: input `{name}` is declared but never used")
    for name in sorted(used - set(inputs)):
        error(f"{path}: input `{name}` is used but not declared")

    if "default" not in inputs.get("label", {}):
        error(f"{path}: input `label` with a default is missing")
        return
    label = inputs["label"]["default"]
    pattern = inputs["label"].get("regex")
    script = "\n".join(jobs["hotfix-lane"]["script"])
    rule = jobs["hotfix-lane-full"]["rules"][0]["if"]
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
    }
    for other in ["priority::hotfix", "hotfix_2"]:
        if pattern and not re.fullmatch(pattern, other):
            error(f"{path}: the label regex refuses `{other}`")
        cases_other = {other: "hotfix", f"a,{other}": "hotfix", f"{other}s": "normal"}
        for labels, want in cases_other.items():
            check_case(path, script, rule, labels, other, want)
    for labels, want in cases.items():
        check_case(path, script, rule, labels, label, want)


def check_case(path, script, rule, labels, label, want):
    got = lane_decision(script, labels, label)
    suite = "smoke" if want == "hotfix" else "full"
    if got != {"HOTFIX_LANE": want, "HOTFIX_SUITE": suite}:
        error(f"{path}: labels {labels!r}, label {label!r}: lane job reports {got}, expected {want}/{suite}")
    if rule_skips_full(rule, labels, label) != (want == "hotfix"):
        error(f"{path}: labels {labels!r}, label {label!r}: the full job's rule disagrees with the lane job")


def check_gate(path):
    """Runs the gate job's script for job results the runner can report."""
    job = yaml.load(Path(path).read_text())["jobs"]["hotfix-lane-gate"]
    if job.get("if") != "always()" or sorted(job.get("needs", [])) != ["full", "lane", "postmortem", "smoke"]:
        error(f"{path}: hotfix-lane-gate must run `if: always()` and need lane, smoke, full and postmortem")
    script = job["steps"][0]["run"]
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
        if "gitlab" in path:
            _, _, _, jobs = gitlab_documents(path)
            for job_id, job in jobs.items():
                lines = job.get("script") if isinstance(job, dict) else None
                if not isinstance(lines, list):
                    continue  # an input (`$[[ inputs.x ]]`): the adopter's own commands
                text = "\n".join(lines)
                if "$[[" in text:
                    error(f"{path}: job {job_id}: pass inputs through `variables:`, not into script text")
                Path(outdir, f"{slug}--{job_id}.sh").write_text(f"#!/bin/sh\nset -e\n{text}\n")
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
        for path in args:
            check_gate(path)
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
