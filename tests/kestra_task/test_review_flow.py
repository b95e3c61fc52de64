"""The promote flow's pull-request runs, emulated against the fake production: a request's plan
is made as production knows the repository, and its comment shows nothing of production that
did not come from it. The bootstrap's own inventory records where its objects came from."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, flow_yaml
from test_flows import (  # noqa: F401 (fixtures)
    GITHUB_PR,
    _promotion_writes,
    _pull_request_head,
    _record,
    _set,
    _signed,
    production,
    reviewing,
)

from kestra_promote.target.client import Connection, connect
from kestra_promote.target.live import read_inventories

pytestmark = pytest.mark.fake_only


def _request(reviewing, name: str, flow: str) -> tuple:
    """A pull request (#2, into the followed branch) whose head sets ``name`` and holds
    ``flow``, planned by the promote flow; its execution and the fake GitHub."""
    fake, repo, emulator, providers, urls = reviewing
    _set(fake, "promote_review_repo", "acme/flows")
    _set(fake, "promote_review_api", urls["github"])
    repo.git("checkout", "-q", "-B", "feature", "master")
    repo.write("kestra-promote.yml", f"name: {name}\n")
    repo.write("flows/extra.yml", flow)
    head = repo.commit("the request")
    repo.git("update-ref", "refs/pull/2/head", head)
    repo.git("checkout", "-q", "master")
    body = (FIXTURES / "webhooks/github/pull_request-1.json").read_bytes()
    execution = emulator.webhook("hook-key-0123456789",
                                 _signed(GITHUB_PR, "X-Hub-Signature-256", "sha256=", body), body)
    assert execution is not None
    assert execution.outputs["decide"]["vars"]["checkout"] == head
    return execution, providers["github"]


def test_the_bootstraps_inventory_records_where_its_objects_came_from(production):
    fake, repo, emulator = production
    url = _record(fake).settings["promote_target_url"]
    from conftest import FAKE_PASSWORD, FAKE_USER, ROOT
    from kestra_promote.kestra_task.bootstrap import project_origin

    with connect(Connection(url, username=FAKE_USER, password=FAKE_PASSWORD)) as client:
        own, _ = read_inventories(client, "system", "kestra-promote-prod")
    assert own is not None and own.origin == project_origin(ROOT)


def test_a_pull_request_naming_the_promotions_own_inventory_gets_none_of_it(reviewing):
    fake = reviewing[0]
    execution, github = _request(reviewing, "kestra-promote-prod",
                                 flow_yaml("system", "promote", "mine now"))
    (comment,) = github.comments
    assert "kestra_promote task decide" not in comment["body"]  # production's promote flow
    assert "is another source's on production" in comment["body"]
    assert github.statuses[-1]["state"] == "failure"
    assert execution.state == "FAILED"  # refused, as any refused plan
    assert _promotion_writes(fake) == []


def test_a_pull_requests_comment_lists_none_of_productions_unmanaged_flows(reviewing):
    fake = reviewing[0]
    fake.seed_flow(flow_yaml("company.team", "quarterly_bonus_run"))
    execution, github = _request(reviewing, "demo", flow_yaml("company.team", "extra"))
    assert execution.state == "SUCCESS", execution.logs
    (comment,) = github.comments
    assert "company.team/extra" in comment["body"]
    assert "quarterly_bonus_run" not in comment["body"]
    assert github.statuses[-1]["state"] == "success"
