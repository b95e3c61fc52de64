"""The CI recipes in examples/ci: plans never cancel or delay applies."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

RECIPES = Path(__file__).resolve().parents[1] / "examples" / "ci"


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
    recipe = yaml.safe_load((RECIPES / "github-actions.yml").read_text())
    concurrency = recipe["concurrency"]
    push = _github_group(concurrency["group"], "push", 0)
    plans = {_github_group(concurrency["group"], "pull_request", n) for n in (7, 8)}
    assert push == "kestra-promote-production" and push not in plans and len(plans) == 2
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_gitlab_plans_do_not_share_the_apply_resource_group():
    recipe = yaml.safe_load((RECIPES / "gitlab-ci.yml").read_text())
    assert "resource_group" not in recipe["plan"] and recipe["apply"]["resource_group"]
