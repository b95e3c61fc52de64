"""The CI recipes in examples/ci.

- Plans never cancel or delay applies.
- A job that a pull (merge) request can start holds no credential that writes to production:
  a request's branch may change the workflow and print whatever its jobs receive. Only the apply
  job, on a push to main and in a deployment environment, reads it.
- kestra-promote is installed pinned, never from the checkout under review.
- A request's jobs plan only with --post or --public, whose output (log, job summary) shows what
  the comment shows, withholding production content that did not come from this repository;
  they never save a plan (--out, which holds everything) nor keep artifacts.
- Previews go to the development instance: every `kestra-promote preview` command is given its
  URL (never production's KESTRA_URL) and its credentials only.

The checkers below read the recipes as YAML; each is also run on small hand-made recipes that
leak, so that a check which could never fail is caught.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

RECIPES = Path(__file__).resolve().parents[1] / "examples" / "ci"

# what writes to production: held only by the apply job (GitHub: secrets of its environment;
# GitLab: protected variables scoped to its environment)
WRITE_CREDENTIALS = ("KESTRA_USERNAME", "KESTRA_PASSWORD", "KESTRA_API_TOKEN")
# GitHub events whose runs a pull request's author starts, or that run a request's code
PULL_REQUEST_EVENTS = frozenset({"pull_request", "pull_request_target", "pull_request_review",
                                 "pull_request_review_comment"})
GITLAB_MERGE_REQUEST = "merge_request_event"


def _load(name: str) -> Any:
    return yaml.safe_load((RECIPES / name).read_text())


def _strings(node: Any) -> Iterator[str]:
    """Every string value in a YAML tree (mapping keys left out: they name, they do not read)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _conjuncts(condition: object) -> list[str] | None:
    """The parts of an `a && b && c` condition; None when it is anything else (an `||`, a
    parenthesis), which the checkers then treat as "may be true"."""
    if not isinstance(condition, str):
        return None
    text = condition.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2].strip()
    if "||" in text or "(" in text or ")" in text:
        return None
    return [part.strip() for part in text.split("&&")]


# -- pip install: from a pinned spec, never from the checkout -------------------------------------

_INSTALL = re.compile(r"\b(?:pip[x3]?|uv tool)\s+install\b([^\n;&|]*)")


def local_installs(script: str) -> list[str]:
    """The install commands in ``script`` that take something from the checkout: a path
    (`.`, `./`, `/...`), an editable install (`-e`), or a requirements file (`-r`), which a
    request can change like any other file."""
    found = []
    for match in _INSTALL.finditer(script.replace("\\\n", " ")):
        try:
            args = shlex.split(match.group(1))
        except ValueError:
            args = match.group(1).split()
        if any(arg in ("-e", "--editable", "-r", "--requirement")
               or arg.startswith(("--editable=", "--requirement=", ".", "/", "~", "file:"))
               for arg in args):
            found.append(match.group(0).strip())
    return found


def _plan_commands(script: str) -> list[str]:
    """The `kestra-promote plan` commands in a script, each on one line."""
    joined = script.replace("\\\n", " ")
    return [line for line in joined.splitlines() if re.search(r"\bkestra-promote\s+plan\b", line)]


def _unfiltered_plans(script: str) -> list[str]:
    """Plan commands that show the unfiltered plan (every diff, production's side included):
    neither --post nor --public, or saving the plan with --out."""
    filtered = re.compile(r"\s--(?:post|public)(?:[\s=]|$)")
    return [command.strip() for command in _plan_commands(script)
            if not filtered.search(command) or re.search(r"\s--out(?:[\s=]|$)", command)]


_PREVIEW = re.compile(r"\bkestra-promote\s+preview\b")


def preview_url_problem(name: str, url: object) -> str | None:
    """Why a preview command's KESTRA_URL (``url``: what the job sets it to) is not the
    development instance's: unset (production's project or workflow variable would reach it), or
    production's own variable."""
    text = str(url or "")
    if not text:
        return f"{name}: runs `kestra-promote preview` without setting KESTRA_URL to the " \
               "development instance's"
    if re.search(r"\bvars\.KESTRA_URL\b|\$\{?KESTRA_URL(?![A-Za-z0-9_])", text):
        return f"{name}: runs `kestra-promote preview` against production's URL ({text})"
    return None


# -- GitHub Actions -------------------------------------------------------------------------------


def _github_triggers(workflow: dict[Any, Any]) -> set[str]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    if isinstance(on, str):
        return {on}
    if isinstance(on, list):
        return set(on)
    return set(on or {})


def _github_excludes(condition: object, event: str) -> bool:
    """Whether a job-level `if:` is false on every run started by ``event``."""
    parts = _conjuncts(condition)
    for part in parts or ():
        if match := re.fullmatch(r"github\.event_name\s*(==|!=)\s*'([^']*)'", part):
            operator, name = match.groups()
            if (operator == "==") != (name == event):
                return True
    return False


def _github_events(workflow: dict[Any, Any], job: dict[str, Any]) -> set[str]:
    return {event for event in _github_triggers(workflow)
            if not _github_excludes(job.get("if"), event)}


def _github_secret_reads(node: Any) -> set[str]:
    """Write credentials read from the secrets context; "secrets" for the whole context."""
    found = set()
    for text in _strings(node):
        for name in WRITE_CREDENTIALS:
            if re.search(rf"\bsecrets\s*(\.\s*{name}\b|\[\s*'{name}'\s*\])", text):
                found.add(name)
        if re.search(r"\btojson\s*\(\s*secrets\s*\)|\bsecrets\s*\[\s*[^'\s]", text,
                     re.IGNORECASE):
            found.add("secrets")
    if isinstance(node, dict) and node.get("secrets") == "inherit":  # a reusable workflow's call
        found.add("secrets")
    return found


def _environment(job: dict[str, Any]) -> str | None:
    environment = job.get("environment")
    return environment.get("name") if isinstance(environment, dict) else environment


def _github_scripts(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job.get("steps") or ())


def github_problems(workflow: dict[Any, Any]) -> list[str]:
    """What in a GitHub Actions workflow lets a pull request reach a write credential or the
    unfiltered plan, or runs the checkout's own kestra-promote."""
    problems = []
    jobs = workflow.get("jobs") or {}
    workflow_reads = _github_secret_reads({k: v for k, v in workflow.items() if k != "jobs"})
    apply_environments = set()
    for name, job in jobs.items():
        if _github_secret_reads(job) or "kestra-promote apply" in _github_scripts(job):
            apply_environments.add(_environment(job))
    apply_environments.discard(None)
    for name, job in jobs.items():
        script = _github_scripts(job)
        problems += [f"{name}: installs from the checkout: {command}"
                     for command in local_installs(script)]
        reads = workflow_reads | _github_secret_reads(job)
        writes = bool(reads) or "kestra-promote apply" in script
        events = _github_events(workflow, job)
        if events & PULL_REQUEST_EVENTS:
            trigger = ", ".join(sorted(events & PULL_REQUEST_EVENTS))
            if reads:
                problems.append(f"{name}: runs on {trigger} and reads {', '.join(sorted(reads))}")
            if "kestra-promote apply" in script:
                problems.append(f"{name}: runs on {trigger} and applies")
            if _environment(job) in apply_environments:
                problems.append(f"{name}: runs on {trigger} in the environment "
                                f"{_environment(job)!r}, which holds the write credential")
            problems += [f"{name}: runs on {trigger} and shows the unfiltered plan: {command}"
                         for command in _unfiltered_plans(script)]
            if any("upload-artifact" in str(step.get("uses", ""))
                   for step in job.get("steps") or ()):
                problems.append(f"{name}: runs on {trigger} and uploads an artifact")
        for step in job.get("steps") or ():
            if _PREVIEW.search(str(step.get("run", ""))):
                why = preview_url_problem(name, (step.get("env") or {}).get("KESTRA_URL"))
                problems += [why] if why else []
        if writes:
            if not _environment(job):
                problems.append(f"{name}: writes to production without an environment (whose "
                                "secrets only main may use)")
            parts = _conjuncts(job.get("if")) or []
            if "github.event_name == 'push'" not in parts or \
                    "github.ref == 'refs/heads/main'" not in parts:
                problems.append(f"{name}: writes to production, but not only on a push to main")
    return problems


# -- GitLab CI ------------------------------------------------------------------------------------

_GITLAB_KEYWORDS = {"image", "services", "stages", "variables", "default", "include", "workflow",
                    "before_script", "after_script", "cache"}


def _gitlab_jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The jobs, each merged with what it extends (hidden jobs are templates, not jobs)."""

    def resolved(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        job = config[name]
        parents = job.get("extends") or []
        merged: dict[str, Any] = {}
        for parent in [parents] if isinstance(parents, str) else parents:
            assert parent not in seen, f"extends loop at {parent}"
            base = resolved(parent, (*seen, name))
            merged.update(base)
            merged["variables"] = {**base.get("variables", {}), **job.get("variables", {})}
        merged.update({k: v for k, v in job.items() if k != "variables"})
        merged["variables"] = {**merged.get("variables", {}), **job.get("variables", {})}
        return merged

    return {name: resolved(name) for name, job in config.items()
            if name not in _GITLAB_KEYWORDS and not name.startswith(".") and isinstance(job, dict)}


def _gitlab_excludes_merge_requests(condition: object) -> bool:
    for part in _conjuncts(condition) or ():
        if match := re.fullmatch(r'\$CI_PIPELINE_SOURCE\s*(==|!=)\s*"([^"]*)"', part):
            operator, source = match.groups()
            if (operator == "==") != (source == GITLAB_MERGE_REQUEST):
                return True
        # not set in merge-request pipelines
        if re.fullmatch(r"\$CI_COMMIT_BRANCH(\s*==\s*\S+)?", part):
            return True
    return False


def _gitlab_allows_merge_requests(job: dict[str, Any]) -> bool:
    """Whether the job may run in a merge-request pipeline (when unsure: yes)."""
    if "rules" not in job:
        only = job.get("only")
        return only is None or "merge_requests" in (only if isinstance(only, list) else
                                                     (only or {}).get("refs", []))
    for rule in job["rules"] or ():
        condition = rule.get("if")
        if condition is not None and _gitlab_excludes_merge_requests(condition):
            continue  # never matches a merge request
        if rule.get("when") == "never":
            if _conjuncts(condition) == [f'$CI_PIPELINE_SOURCE == "{GITLAB_MERGE_REQUEST}"']:
                return False  # every merge request stops here
            continue  # may or may not match: the next rules decide
        return True
    return False


def _gitlab_reads(node: Any) -> set[str]:
    found = set()
    for text in _strings(node):
        for name in WRITE_CREDENTIALS:
            if re.search(rf"\$\{{?{name}(?![A-Za-z0-9_])|%{name}%", text):
                found.add(name)
    return found


def _gitlab_scripts(config: dict[str, Any], job: dict[str, Any]) -> str:
    default = config.get("default") or {}
    parts = []
    for key in ("before_script", "script", "after_script"):
        value = job.get(key, default.get(key, config.get(key)))
        parts += [value] if isinstance(value, str) else list(value or ())
    return "\n".join(map(str, parts))


def _gitlab_rules_restrict_to_default_branch(job: dict[str, Any]) -> bool:
    if "rules" not in job or "only" in job or "except" in job:
        return False
    for rule in job["rules"] or ():
        if rule.get("when") == "never":
            continue
        parts = _conjuncts(rule.get("if")) or []
        if "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" not in parts or \
                '$CI_PIPELINE_SOURCE == "push"' not in parts:
            return False
    return bool(job["rules"])


def gitlab_problems(config: dict[str, Any]) -> list[str]:
    """What in a .gitlab-ci.yml lets a merge request reach a write credential or the unfiltered
    plan, runs the checkout's own kestra-promote, or applies from another branch."""
    problems = []
    if "include" in config:
        problems.append("include: configuration the check cannot see")
    shared = {key: config.get(key) for key in ("variables", "default")}
    jobs = _gitlab_jobs(config)
    applies = {name for name, job in jobs.items()
               if "kestra-promote apply" in _gitlab_scripts(config, job)}
    apply_environments = {_environment(jobs[name]) for name in applies} - {None}
    for name, job in jobs.items():
        script = _gitlab_scripts(config, job)
        problems += [f"{name}: installs from the checkout: {command}"
                     for command in local_installs(script)]
        if _gitlab_allows_merge_requests(job):
            reads = _gitlab_reads(shared) | _gitlab_reads({**job, "script": script})
            if reads:
                problems.append(f"{name}: runs for merge requests and reads "
                                f"{', '.join(sorted(reads))}")
            if name in applies:
                problems.append(f"{name}: runs for merge requests and applies")
            if _environment(job) in apply_environments:
                problems.append(f"{name}: runs for merge requests in the environment "
                                f"{_environment(job)!r}, which holds the write credential")
            problems += [f"{name}: runs for merge requests and shows the unfiltered plan: "
                         f"{command}" for command in _unfiltered_plans(script)]
            if "artifacts" in job:
                problems.append(f"{name}: runs for merge requests and keeps artifacts")
        for command in re.split(r"\n(?=\S)", script):
            if _PREVIEW.search(command):
                set_to = re.search(r'(?:^|\s)KESTRA_URL=("[^"]*"|\S*)', command)
                why = preview_url_problem(name, set_to.group(1) if set_to else None)
                problems += [why] if why else []
        if name in applies:
            if not _gitlab_rules_restrict_to_default_branch(job):
                problems.append(f"{name}: applies, but not only on a push to the default branch")
            if not _environment(job):
                problems.append(f"{name}: applies without an environment (to which the write "
                                "credential is scoped)")
            if not job.get("resource_group"):
                problems.append(f"{name}: applies without a resource group")
    return problems


# -- the recipes ----------------------------------------------------------------------------------


def _github_group(expression: str, event: str, number: int) -> str:
    """The value of the recipe's concurrency group expression for an event (the one form it
    uses: `${{ cond && 'a' || format('b-{0}', n) }}`)."""
    match = re.fullmatch(r"\$\{\{ github\.event_name == '(\w+)' && '([^']+)' \|\| "
                         r"format\('([^']+)', github\.event\.pull_request\.number\) \}\}",
                         expression)
    assert match, expression
    when, group, other = match.groups()
    return group if event == when else other.format(number)


def test_github_plans_have_their_own_group_and_never_cancel_an_apply():
    recipe = _load("github-actions.yml")
    concurrency = recipe["concurrency"]
    push = _github_group(concurrency["group"], "push", 0)
    plans = {_github_group(concurrency["group"], "pull_request", n) for n in (7, 8)}
    assert push == "kestra-promote-production" and push not in plans and len(plans) == 2
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_gitlab_plans_do_not_share_the_apply_resource_group():
    recipe = _load("gitlab-ci.yml")
    assert "resource_group" not in recipe["plan"] and recipe["apply"]["resource_group"]


def test_github_recipe_gives_pull_requests_no_write_credential():
    recipe = _load("github-actions.yml")
    assert github_problems(recipe) == []
    jobs = recipe["jobs"]
    # the plan job is the one pull requests run, and it is checked as such
    assert _github_events(recipe, jobs["plan"]) == {"pull_request"}
    assert _github_events(recipe, jobs["apply"]) == {"push"}
    assert _github_secret_reads(jobs["apply"]) == set(WRITE_CREDENTIALS)
    assert _environment(jobs["apply"]) == "production"
    assert recipe[True]["push"] == {"branches": ["main"]}
    assert "pull_request_target" not in _github_triggers(recipe)


def test_github_recipe_plans_with_the_read_only_token_only():
    plan = _load("github-actions.yml")["jobs"]["plan"]
    secrets = {match for text in _strings(plan) for match in re.findall(r"secrets\.(\w+)", text)}
    assert secrets == {"KESTRA_PLAN_API_TOKEN", "GITHUB_TOKEN"}
    step = next(s for s in plan["steps"] if "kestra-promote plan" in s.get("run", ""))
    assert step["env"]["KESTRA_API_TOKEN"] == "${{ secrets.KESTRA_PLAN_API_TOKEN }}"
    assert step["if"] == "vars.KESTRA_PROMOTE_PLAN_IN_CI == 'true'"  # B; else validate only (A)
    assert "kestra-promote validate --offline ." in _github_scripts(plan)


def test_github_permissions_are_per_job_and_minimal():
    recipe = _load("github-actions.yml")
    assert recipe["permissions"] == {}
    assert recipe["jobs"]["plan"]["permissions"] == {
        "contents": "read", "pull-requests": "write", "statuses": "write"}
    assert recipe["jobs"]["apply"]["permissions"] == {"contents": "read"}


def test_github_actions_and_python_are_pinned():
    for job in _load("github-actions.yml")["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
            if "setup-python" in step.get("uses", ""):
                assert re.fullmatch(r"\d+\.\d+\.\d+", step["with"]["python-version"])
            if "checkout" in step.get("uses", ""):
                assert step["with"]["persist-credentials"] is False
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim", _load("gitlab-ci.yml")["default"]["image"])


def test_gitlab_recipe_gives_merge_requests_no_write_credential():
    recipe = _load("gitlab-ci.yml")
    assert gitlab_problems(recipe) == []
    jobs = _gitlab_jobs(recipe)
    assert {name for name, job in jobs.items() if _gitlab_allows_merge_requests(job)} == {
        "validate", "plan", "preview", "preview-down"}
    assert not _gitlab_allows_merge_requests(jobs["apply"])
    assert _environment(jobs["apply"]) == "production"
    assert _gitlab_rules_restrict_to_default_branch(jobs["apply"])


def test_recipes_install_kestra_promote_pinned_not_from_the_checkout():
    github = _load("github-actions.yml")
    gitlab = _load("gitlab-ci.yml")
    scripts = [_github_scripts(job) for job in github["jobs"].values()]
    scripts += [_gitlab_scripts(gitlab, job) for job in _gitlab_jobs(gitlab).values()]
    for script in scripts:
        assert local_installs(script) == []
        installs = _INSTALL.findall(script)
        assert [args.strip() for args in installs] == ['"$KESTRA_PROMOTE_SPEC"'], script
    shell = (RECIPES / "promote.sh").read_text().splitlines()
    assert local_installs("\n".join(line for line in shell if not line.lstrip().startswith("#"))) \
        == []


# -- the checkers catch what they are for -------------------------------------------------------

LEAKY_GITHUB = """
on: [pull_request, push]
jobs:
  promote:
    runs-on: ubuntu-latest
    env:
      KESTRA_PASSWORD: ${{ secrets.KESTRA_PASSWORD }}
    steps:
      - run: kestra-promote plan .
"""


def test_the_github_check_flags_a_password_given_to_a_pull_request_job():
    problems = github_problems(yaml.safe_load(LEAKY_GITHUB))
    assert "promote: runs on pull_request and reads KESTRA_PASSWORD" in problems
    assert any("without an environment" in p for p in problems)
    assert any("shows the unfiltered plan" in p for p in problems)


@pytest.mark.parametrize("workflow, expected", [
    # the workflow's env reaches every job
    ("on: pull_request\nenv: {KESTRA_USERNAME: '${{ secrets.KESTRA_USERNAME }}'}\n"
     "jobs: {plan: {steps: [{run: 'true'}]}}",
     "plan: runs on pull_request and reads KESTRA_USERNAME"),
    # a step's env, and the bracket form
    ("on: {pull_request_target: {}}\njobs: {plan: {steps: [{run: 'true', env: "
     "{T: \"${{ secrets['KESTRA_API_TOKEN'] }}\"}}]}}",
     "plan: runs on pull_request_target and reads KESTRA_API_TOKEN"),
    # the whole secrets context
    ("on: pull_request\njobs: {plan: {steps: [{run: 'echo ${{ toJSON(secrets) }}'}]}}",
     "plan: runs on pull_request and reads secrets"),
    # a job-level condition that does not keep pull requests out
    ("on: [pull_request, push]\njobs: {apply: {if: \"github.event_name != 'push'\", "
     "environment: production, steps: [{run: kestra-promote apply .}]}}",
     "apply: runs on pull_request and applies"),
    # a pull-request job in the apply job's environment
    ("on: [pull_request, push]\njobs: {plan: {environment: production, steps: [{run: 'true'}]},"
     " apply: {if: \"github.event_name == 'push' && github.ref == 'refs/heads/main'\", "
     "environment: production, steps: [{run: kestra-promote apply .}]}}",
     "plan: runs on pull_request in the environment 'production', which holds the write "
     "credential"),
    # an apply that a push to any branch starts
    ("on: push\njobs: {apply: {if: \"github.event_name == 'push'\", environment: production, "
     "steps: [{run: kestra-promote apply .}]}}",
     "apply: writes to production, but not only on a push to main"),
    # a plan neither posted nor public, even thrown away (the job summary still gets it)
    ("on: pull_request\njobs: {plan: {steps: [{run: 'kestra-promote plan . > /dev/null'}]}}",
     "plan: runs on pull_request and shows the unfiltered plan: kestra-promote plan . > "
     "/dev/null"),
    # --post-repo is not --post
    ("on: pull_request\njobs: {plan: {steps: [{run: 'kestra-promote plan . --post-repo a/b'}]}}",
     "plan: runs on pull_request and shows the unfiltered plan: kestra-promote plan . "
     "--post-repo a/b"),
    # a saved plan holds everything
    ("on: pull_request\njobs: {plan: {steps: [{run: 'kestra-promote plan . --post github "
     "--out plan.json'}]}}",
     "plan: runs on pull_request and shows the unfiltered plan: kestra-promote plan . --post "
     "github --out plan.json"),
    ("on: push\njobs: {x: {steps: [{run: 'pip install -e .'}]}}",
     "x: installs from the checkout: pip install -e ."),
])
def test_the_github_check_flags(workflow: str, expected: str):
    assert expected in github_problems(yaml.safe_load(workflow))


def test_the_github_check_lets_a_push_only_job_read_its_environment_secret():
    workflow = yaml.safe_load(
        "on: [pull_request, push]\njobs: {apply: {if: \"github.event_name == 'push' && "
        "github.ref == 'refs/heads/main'\", environment: production, steps: [{run: "
        "kestra-promote apply ., env: {KESTRA_PASSWORD: '${{ secrets.KESTRA_PASSWORD }}'}}]}}")
    assert github_problems(workflow) == []


@pytest.mark.parametrize("command", [
    "kestra-promote plan . --post github --post-repo a/b --post-request 1 --post-sha c",
    "kestra-promote plan . --public --format markdown | tee -a plan.md",
    "kestra-promote plan . --public",
])
def test_a_posted_or_public_plan_may_be_shown(command: str):
    workflow = {"on": "pull_request", "jobs": {"plan": {"steps": [{"run": command}]}}}
    assert github_problems(workflow) == []
    config = {"plan": {"rules": [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}],
                       "script": [command]}}
    assert gitlab_problems(config) == []


LEAKY_GITLAB = """
plan:
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
  script:
    - echo "$KESTRA_PASSWORD"
    - kestra-promote plan . | tee plan.md
  artifacts: {paths: [plan.md]}
apply:
  rules:
    - if: $CI_COMMIT_BRANCH
  script:
    - pip install .
    - kestra-promote apply .
"""


def test_the_gitlab_check_flags_a_password_given_to_a_merge_request_job():
    problems = gitlab_problems(yaml.safe_load(LEAKY_GITLAB))
    assert "plan: runs for merge requests and reads KESTRA_PASSWORD" in problems
    assert "plan: runs for merge requests and keeps artifacts" in problems
    assert "plan: runs for merge requests and shows the unfiltered plan: kestra-promote plan . " \
           "| tee plan.md" in problems
    assert "apply: applies, but not only on a push to the default branch" in problems
    assert "apply: installs from the checkout: pip install ." in problems
    assert "apply: applies without an environment (to which the write credential is scoped)" \
        in problems


@pytest.mark.parametrize("config, expected", [
    # shared variables reach every job
    ({"variables": {"T": "${KESTRA_API_TOKEN}"},
      "plan": {"rules": [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}],
               "script": ["true"]}},
     "plan: runs for merge requests and reads KESTRA_API_TOKEN"),
    # a job without rules, through a template it extends
    ({".creds": {"variables": {"P": "$KESTRA_PASSWORD"}},
      "plan": {"extends": ".creds", "script": ["true"]}},
     "plan: runs for merge requests and reads KESTRA_PASSWORD"),
    # an apply in a merge request pipeline
    ({"apply": {"environment": "production", "resource_group": "p",
                "rules": [{"when": "always"}], "script": ["kestra-promote apply ."]}},
     "apply: runs for merge requests and applies"),
    ({"include": "other.yml"}, "include: configuration the check cannot see"),
])
def test_the_gitlab_check_flags(config: dict[str, Any], expected: str):
    assert expected in gitlab_problems(config)


@pytest.mark.parametrize("script, local", [
    ('pip install "$KESTRA_PROMOTE_SPEC"', False),
    ("python -m pip install kestra-promote==1.4.0", False),
    ("pip install .", True),
    ("pip install ./", True),
    ("pip install -q -e '.[test]'", True),
    ("python3 -m pip install --editable=.", True),
    ("pip install -r requirements.txt", True),
    ("pipx install .", True),
    ("uv tool install ./kestra-promote", True),
])
def test_local_installs(script: str, local: bool):
    assert bool(local_installs(script)) is local


# -- the recipes' shell, run with a stand-in kestra-promote -----------------------------------

LEAK = "PRODUCTION-ONLY-DIFF"
FILTERED = "THE-PLAN-AS-THE-COMMENT-SHOWS-IT"
# as kestra-promote does: only what the comment shows with --post or --public, else everything
STUB = f"""#!/bin/sh
echo "$0 $*" >> "$STUB_LOG"
echo "token=${{KESTRA_API_TOKEN:-}} basic=${{KESTRA_USERNAME:-}}" >> "$STUB_LOG"
case " $* " in *" --post "* | *" --public "*) shown="{FILTERED}" ;; *) shown="{LEAK}" ;; esac
echo "$shown"
if [ -n "${{GITHUB_STEP_SUMMARY:-}}" ]; then echo "$shown" >> "$GITHUB_STEP_SUMMARY"; fi
"""


@pytest.fixture
def stubs(tmp_path: Path) -> dict[str, str]:
    """An environment whose `kestra-promote` and `python` only record how they were called:
    no CI variable of the machine running the tests leaks in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("kestra-promote", "python"):
        (bin_dir / name).write_text(STUB)
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path),
            "STUB_LOG": str(tmp_path / "calls.log")}


def _run(shell: list[str], script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # in the stubs' temporary home: whatever a script writes stays out of the repository
    return subprocess.run([*shell, script], env=env, cwd=env["HOME"], capture_output=True,
                          text=True, timeout=30, check=False)


GITHUB_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]  # as Actions runs run:


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_github_plan_step_shows_only_what_the_comment_shows(stubs: dict[str, str],
                                                           tmp_path: Path):
    plan = _load("github-actions.yml")["jobs"]["plan"]
    step = next(s for s in plan["steps"] if "kestra-promote plan" in s.get("run", ""))
    summary = tmp_path / "summary.md"
    env = {**stubs, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_REPOSITORY": "acme/flows",
           "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "1", "PR_NUMBER": "7",
           "PR_HEAD_SHA": "a" * 40, "KESTRA_API_TOKEN": "read-only"}
    result = _run(GITHUB_BASH, step["run"], env)
    assert result.returncode == 0, result.stderr
    assert LEAK not in result.stdout + result.stderr and FILTERED in result.stdout
    assert LEAK not in summary.read_text() and FILTERED in summary.read_text()
    calls = Path(stubs["STUB_LOG"]).read_text()
    assert "plan . --post github --post-repo acme/flows --post-request 7" in calls


@pytest.mark.skipif(not shutil.which("sh"), reason="needs sh")
def test_gitlab_plan_job_uses_the_read_only_token_and_shows_only_the_filtered_plan(
        stubs: dict[str, str]):
    recipe = _load("gitlab-ci.yml")
    # even were a write token in the job's environment (a variable left unscoped), the plan
    # runs with the read-only one
    env = {**stubs, "KESTRA_PLAN_API_TOKEN": "read-only", "KESTRA_API_TOKEN": "WRITE",
           "CI_API_V4_URL": "https://gitlab.example.com/api/v4", "CI_PROJECT_PATH": "acme/flows",
           "CI_MERGE_REQUEST_IID": "7", "CI_COMMIT_SHA": "a" * 40, "CI_JOB_URL": "https://j/1"}
    for line in recipe["plan"]["script"]:
        result = _run(["sh", "-ec"], line, env)
        assert result.returncode == 0, result.stderr
        assert LEAK not in result.stdout + result.stderr and FILTERED in result.stdout
    calls = Path(stubs["STUB_LOG"]).read_text()
    assert "token=read-only" in calls and "WRITE" not in calls


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
@pytest.mark.parametrize("spec, ok", [
    ("kestra-promote==1.4.0", True),
    ("git+https://github.com/acme/kestra-promote@" + "0123456789abcdef" * 2 + "01234567", True),
    ("https://files.example.com/kestra_promote-1.4.0-py3-none-any.whl#sha256=" + "0" * 64, True),
    ("", False), (".", False), ("-e .", False), ("kestra-promote", False),
    ("kestra-promote==1.*", False), ("git+https://github.com/acme/kestra-promote@main", False),
    ("./dist/kestra_promote-1.4.0-py3-none-any.whl#sha256=" + "0" * 64, False),
])
def test_install_steps_take_only_a_pinned_spec(stubs: dict[str, str], spec: str, ok: bool):
    github = _load("github-actions.yml")
    gitlab = _load("gitlab-ci.yml")
    steps = [next(s for s in job["steps"] if "pip install" in s.get("run", ""))
             for job in github["jobs"].values()]
    runs = [(GITHUB_BASH, step["run"], step["env"]) for step in steps]
    runs.append((["sh", "-ec"], "\n".join(gitlab["default"]["before_script"]), {}))
    for shell, script, step_env in runs:
        env = {**stubs, **{k: v for k, v in step_env.items() if k != "KESTRA_PROMOTE_SPEC"},
               "KESTRA_PROMOTE_SPEC": spec}
        Path(stubs["STUB_LOG"]).write_text("")
        result = _run(shell, script, env)
        assert (result.returncode == 0) is ok, (script, result.stdout, result.stderr)
        installed = Path(stubs["STUB_LOG"]).read_text()
        assert (f"-m pip install {spec}\n" in installed) is ok


@pytest.mark.parametrize("ci, refused", [
    ({}, False),
    ({"GITHUB_EVENT_NAME": "push"}, False),
    ({"GITHUB_EVENT_NAME": "pull_request"}, True),
    ({"GITHUB_EVENT_NAME": "pull_request_target"}, True),
    ({"CI_PIPELINE_SOURCE": "merge_request_event"}, True),
    ({"CI_MERGE_REQUEST_IID": "7"}, True),
    ({"CI_PIPELINE_SOURCE": "push"}, False),
    ({"BUILDKITE_PULL_REQUEST": "false"}, False),
    ({"BUILDKITE_PULL_REQUEST": "12"}, True),
    ({"BUILD_REASON": "PullRequest"}, True),
    ({"CHANGE_ID": "12"}, True),
])
def test_promote_sh_refuses_pull_request_runs(stubs: dict[str, str], ci: dict[str, str],
                                              refused: bool):
    result = _run(["sh"], str(RECIPES / "promote.sh"), {**stubs, **ci})
    log = Path(stubs["STUB_LOG"])
    if refused:
        assert result.returncode == 1 and "refusing to promote" in result.stderr
        assert not log.exists()
    else:
        assert result.returncode == 0, result.stderr
        assert "kestra-promote apply . --trigger shell" in log.read_text()
