"""The previews of the CI recipes: up on every push of a pull (merge) request, down when it is
closed, to the development instance with its own URL and credentials, never production's."""

from __future__ import annotations

import re

import pytest
import yaml
from test_ci_recipes import (
    _environment,
    _github_events,
    _github_scripts,
    _gitlab_jobs,
    _gitlab_scripts,
    _load,
    _strings,
    github_problems,
    gitlab_problems,
)

DEV_SECRETS = {"KESTRA_DEV_USERNAME", "KESTRA_DEV_PASSWORD", "KESTRA_DEV_API_TOKEN"}


def test_github_previews_go_up_on_each_push_and_down_on_close_with_development_credentials():
    recipe = _load("github-actions.yml")
    assert github_problems(recipe) == []
    assert set(recipe[True]["pull_request"]["types"]) == {"opened", "synchronize", "reopened",
                                                          "closed"}
    jobs = recipe["jobs"]
    up, down, prune = jobs["preview"], jobs["preview-down"], jobs["preview-prune"]
    assert 'kestra-promote preview up . --id "$PR_NUMBER"' in _github_scripts(up)
    assert 'kestra-promote preview down --id "$PR_NUMBER"' in _github_scripts(down)
    assert "kestra-promote preview down --older-than 7d" in _github_scripts(prune)
    assert "github.event.action != 'closed'" in up["if"] and "github.event.action != 'closed'" \
        in jobs["plan"]["if"] and "github.event.action == 'closed'" in down["if"]
    assert _github_events(recipe, up) == _github_events(recipe, down) == {"pull_request"}
    assert _github_events(recipe, prune) == {"schedule"}
    for job in (up, down, prune):
        secrets = {m for text in _strings(job) for m in re.findall(r"secrets\.(\w+)", text)}
        assert secrets == DEV_SECRETS
        assert _environment(job) is None  # production's environment and its secrets: never
        step = next(s for s in job["steps"] if "kestra-promote preview" in s.get("run", ""))
        assert step["env"]["KESTRA_URL"] == "${{ vars.KESTRA_DEV_URL }}"
        assert "vars.KESTRA_DEV_URL != ''" in job["if"]  # previews are opt-in


def test_gitlab_previews_stop_with_the_merge_request_and_use_development_credentials():
    recipe = _load("gitlab-ci.yml")
    assert gitlab_problems(recipe) == []
    jobs = _gitlab_jobs(recipe)
    up, down = jobs["preview"], jobs["preview-down"]
    assert up["environment"] == {"name": "preview/$CI_MERGE_REQUEST_IID",
                                 "on_stop": "preview-down", "auto_stop_in": "1 week"}
    assert down["environment"] == {"name": "preview/$CI_MERGE_REQUEST_IID", "action": "stop"}
    for job, command in ((up, 'preview up . --id "$CI_MERGE_REQUEST_IID"'),
                         (down, 'preview down --id "$CI_MERGE_REQUEST_IID"')):
        script = _gitlab_scripts(recipe, job)
        assert command in script
        assert 'KESTRA_URL="$KESTRA_DEV_URL"' in script
        (line,) = [item for item in job["script"] if "kestra-promote preview" in item]
        assert set(re.findall(r"\$(KESTRA_\w+)", line)) == {"KESTRA_DEV_URL", *DEV_SECRETS}


GITHUB_PREVIEW = """
on: [pull_request]
jobs:
  preview:
    runs-on: ubuntu-latest
    steps:
      - run: kestra-promote preview up . --id 1
        env: {env}
"""


@pytest.mark.parametrize("env, expected", [
    ("{}", "preview: runs `kestra-promote preview` without setting KESTRA_URL"),
    ("{KESTRA_URL: '${{ vars.KESTRA_URL }}'}", "preview: runs `kestra-promote preview` against "
                                               "production's URL"),
    ("{KESTRA_URL: '${{ vars.KESTRA_DEV_URL }}', KESTRA_PASSWORD: '${{ secrets.KESTRA_PASSWORD }}'}",
     "preview: runs on pull_request and reads KESTRA_PASSWORD"),
])
def test_the_github_check_flags_a_preview_that_may_reach_production(env: str, expected: str):
    problems = github_problems(yaml.safe_load(GITHUB_PREVIEW.replace("{env}", env)))
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize("script, expected", [
    ("kestra-promote preview up . --id 1", "without setting KESTRA_URL"),
    ('KESTRA_URL="$KESTRA_URL" kestra-promote preview up . --id 1', "against production's URL"),
    ('KESTRA_URL="$KESTRA_DEV_URL" KESTRA_PASSWORD="$KESTRA_PASSWORD" kestra-promote preview '
     "down --id 1", "runs for merge requests and reads KESTRA_PASSWORD"),
])
def test_the_gitlab_check_flags_a_preview_that_may_reach_production(script: str, expected: str):
    config = {"preview": {"rules": [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}],
                          "script": [script]}}
    problems = gitlab_problems(config)
    assert any(expected in p for p in problems), problems
