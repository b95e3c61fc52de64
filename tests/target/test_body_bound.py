"""The request body bound: the probe of the largest body is exactly that large, at the bound's
edges and at scale."""

from __future__ import annotations

import time

import pytest
from conftest import FAKE_PASSWORD, FAKE_USER, flow_yaml
from fake_kestra import FakeKestra, serve
from kestra_promote.engine import apply
from kestra_promote.errors import RequestTooLarge
from kestra_promote.models import Action, Change, FlowKey, Plan, Reason
from kestra_promote.target import bulk
from kestra_promote.target.client import Connection, connect

pytestmark = pytest.mark.fake_only
LIMIT = 100_000
IMPORTS = "1.3.4"  # flows are imported in bulk on Kestra 1.x only


def _connection(url: str, limit: int = LIMIT) -> Connection:
    return Connection(url, username=FAKE_USER, password=FAKE_PASSWORD, retries=0,
                      max_body=limit)


def _validations(fake: FakeKestra) -> list:
    return [r for r in fake.requests if r.path.endswith("/flows/validate")]


@pytest.mark.parametrize("largest", [LIMIT - 1, LIMIT], ids=["limit-1", "limit"])
def test_the_padded_validation_is_exactly_the_largest_body(largest: int):
    fake = FakeKestra(version=IMPORTS)
    sources = [(f"f{i}.yml", flow_yaml("company.team", f"f{i}")) for i in range(20)]
    with serve(fake) as url, connect(_connection(url)) as client:
        results = client.validate_flows(sources, at_least=largest)
        assert client.largest_sent == largest  # as the guard counts it: no more, no less
        client.probe(largest)  # done by the validation already: nothing more is sent
    assert len(results) == 20 and len(_validations(fake)) == 1


@pytest.mark.parametrize("largest", [LIMIT - 1, LIMIT], ids=["limit-1", "limit"])
def test_a_probe_alone_is_exactly_the_largest_body(largest: int):
    fake = FakeKestra(version=IMPORTS)
    with serve(fake) as url, connect(_connection(url)) as client:
        client.probe(largest)
        assert client.largest_sent == largest
    assert len(_validations(fake)) == 1


def test_a_validation_just_short_of_the_largest_body_is_followed_by_an_exact_probe():
    # too little missing for a padding part of its own: the probe goes alone, exactly that large
    fake = FakeKestra(version=IMPORTS)
    with serve(fake) as url, connect(_connection(url)) as client:
        client.validate_flows([("f.yml", flow_yaml("company.team", "f"))])
        short = client.largest_sent
        client.validate_flows([("f.yml", flow_yaml("company.team", "f"))], at_least=short + 10)
        client.probe(short + 10)
        assert client.largest_sent == short + 10


def test_a_body_one_byte_over_the_limit_is_refused_at_its_exact_size():
    fake = FakeKestra(version=IMPORTS)
    with serve(fake) as url, connect(_connection(url)) as client:
        with pytest.raises(RequestTooLarge, match=f"would send {LIMIT + 1} bytes, more than "
                                                  f"the limit of {LIMIT}"):
            client.probe(LIMIT + 1)
    assert not _validations(fake)  # refused before it was sent


def _creates(count: int, namespaces: int) -> list[Change]:
    changes = []
    for i in range(count):
        namespace = f"company.team{i % namespaces}"
        changes.append(Change(FlowKey(namespace, f"f{i:05}"), Action.CREATE, Reason.NEW_IN_GIT,
                              after=flow_yaml(namespace, f"f{i:05}"),
                              path=f"flows/f{i:05}.yml"))
    return changes


def test_the_preflight_of_30000_flows_in_10_namespaces_stays_within_the_limit():
    # the scale of the issue, built in memory (no repository): the default limit, Kestra 1.3
    changes = tuple(sorted(_creates(30_000, 10), key=lambda c: str(c.key)))
    plan = Plan(changes)
    fake = FakeKestra(version=IMPORTS)
    started = time.monotonic()
    with serve(fake) as url, connect(Connection(url, username=FAKE_USER,
                                                password=FAKE_PASSWORD, retries=0)) as client:
        steps = bulk.plan_steps(client, plan.pending)
        largest = apply.largest_body(plan, client.max_body, steps)
        assert client.max_body - 2048 < largest <= client.max_body  # imports near the limit
        apply.preflight(client, plan)
        assert client.largest_sent == largest
        for step in steps:
            assert bulk.write(client, plan.pending, step) == []
        assert client.largest_sent <= client.max_body
    validations = _validations(fake)
    imports = [r for r in fake.requests if r.path.endswith("/flows/import")]
    # about 2,600 of these flows per validation, the last one padded as the probe: no other
    assert (len(validations), len(imports), len(steps)) == (12, 8, 8)
    assert len(fake.current()) == 30_000
    assert time.monotonic() - started < 120
