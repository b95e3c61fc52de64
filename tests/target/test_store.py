"""Inventories larger than a request body are stored in parts, and every body stays under the
limit."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli
from kestra_promote.target import store
from kestra_promote.compare import source_hash
from kestra_promote.errors import KestraError
from kestra_promote.models import FlowKey, Inventory, Managed

pytestmark = pytest.mark.fake_only
LIMIT = 65_536


def _inventory(count: int) -> Inventory:
    return Inventory("big", {FlowKey(f"company.team{n % 7}", f"flow_{n:05}"):
                             Managed(source_hash(str(n)), f"flows/flow_{n:05}.yml",
                                     source_hash(f"file {n}")) for n in range(count)},
                     history=({"time": "2026-01-01T00:00:00+00:00", "result": "applied"},))


def test_an_inventory_over_the_limit_is_split_into_parts_that_fit():
    big = _inventory(3000)  # about 300 kB
    head, parts = store.to_values(big, LIMIT)
    assert len(parts) >= 4 and head["parts"] == sorted(parts)
    assert store.size_of(head) <= LIMIT and all(store.size_of(p) <= LIMIT for p in parts.values())
    assert store.from_values(head, parts, where="x") == big
    # the same content gives the same parts: an unchanged part is never written again
    assert store.to_values(big, LIMIT)[1].keys() == parts.keys()
    small = _inventory(10)
    assert store.to_values(small, LIMIT)[1] == {}


def test_a_missing_part_is_an_error_never_an_empty_inventory():
    head, parts = store.to_values(_inventory(3000), LIMIT)
    missing = sorted(parts)[0]
    with pytest.raises(KestraError, match=f"names part '{missing}', which is missing"):
        store.from_values(head, {k: v for k, v in parts.items() if k != missing}, where="x")


def _apply(repo: GitRepo, target: Target, *args: str) -> str:
    result = run_cli("apply", str(repo.path), "--max-request-bytes", str(LIMIT), *args,
                     env=target.env)
    assert result.code == 0, result.err
    return result.out


def test_a_large_source_keeps_every_request_under_the_limit(repo: GitRepo, target: Target):
    assert target.fake is not None
    for n in range(1200):
        repo.write(f"flows/f{n:04}.yml", flow_yaml(f"company.team{n % 3}", f"flow_{n:04}"))
    repo.commit()
    _apply(repo, target)
    fake = target.fake
    assert max(len(r.body or b"") for r in fake.requests) <= LIMIT
    keys = sorted(fake.kv[("main", "system")])
    parts = [k for k in keys if k.startswith(store.PART_PREFIX)]
    assert len(parts) >= 2 and "kestra-promote.default" in keys

    again = run_cli("plan", str(repo.path), "--max-request-bytes", str(LIMIT), env=target.env)
    assert "No changes." in again.out

    fake.requests.clear()
    repo.write("flows/f0003.yml", flow_yaml("company.team0", "flow_0003", "changed"))
    repo.commit()
    _apply(repo, target)
    part_puts = [r for r in fake.requests if r.method == "PUT" and store.PART_PREFIX in r.path]
    assert len(part_puts) == 1  # only the part holding that flow, then the head
    now = sorted(k for k in fake.kv[("main", "system")] if k.startswith(store.PART_PREFIX))
    assert len(now) == len(parts) and now != parts  # the replaced part is gone
    assert max(len(r.body or b"") for r in fake.requests) <= LIMIT


def test_a_flow_larger_than_the_limit_is_refused_before_any_write(repo: GitRepo,
                                                                  target: Target):
    assert target.fake is not None
    repo.write("big.yml", flow_yaml("company", "big", "x" * (LIMIT + 10)))
    repo.write("small.yml", flow_yaml("company", "small"))
    repo.commit()
    result = run_cli("apply", str(repo.path), "--max-request-bytes", str(LIMIT), env=target.env)
    assert result.code == 1
    assert "big.yml: company/big" in result.err and "--max-request-bytes" in result.err
    assert target.fake.writes() == []


def test_a_proxy_refusing_large_bodies_is_found_before_any_write(repo: GitRepo,
                                                                 target: Target):
    """The largest body comes last (the inventory): a probe of that size comes first."""
    assert target.fake is not None
    for n in range(300):
        repo.write(f"f{n:03}.yml", flow_yaml("company", f"flow_{n:03}"))
    repo.commit()
    target.fake.max_body = 20_000  # what a proxy before it accepts
    result = run_cli("apply", str(repo.path), env=target.env)
    assert result.code == 1 and "HTTP 413" in result.err and "--max-request-bytes" in result.err
    assert target.fake.writes() == []


def test_a_proxy_refusing_the_inventory_is_found_before_any_write(repo: GitRepo,
                                                                   target: Target):
    """One flow changes (a small validation), but the inventory written last is large: a probe
    of its size comes before any write."""
    assert target.fake is not None
    for n in range(300):
        repo.write(f"f{n:03}.yml", flow_yaml("company", f"flow_{n:03}"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    repo.write("f001.yml", flow_yaml("company", "flow_001", "changed"))
    repo.commit()
    writes = len(target.fake.writes())
    target.fake.max_body = 20_000  # the inventory is about 30 kB
    result = run_cli("apply", str(repo.path), env=target.env)
    assert result.code == 1 and "HTTP 413" in result.err, result.err
    assert len(target.fake.writes()) == writes
    probes = [r for r in target.fake.requests if r.path.endswith("/flows/validate")]
    assert len(probes[-1].body) > 20_000  # the probe, refused


def test_parts_read_earlier_in_the_run_are_not_read_again(target: Target):
    # the read right before the writes, and the one before the inventory is written, read the
    # head only when it names the same parts (a part's name is its content's digest)
    fake = target.fake
    assert fake is not None
    inventory = _inventory(3000)
    key = "kestra-promote.big"
    with target.client() as client:
        client.max_body = LIMIT
        store.write(client, "system", inventory)
        first = store.read(client, "system", key)
        assert first == inventory and len(first.parts) >= 4
        count = len(fake.requests)
        assert store.read(client, "system", key, first) == first
        assert len(fake.requests) == count + 1
        # a head naming other parts: they are read
        changed = dataclasses.replace(inventory, flows={
            **inventory.flows, FlowKey("company.x", "new"): Managed(source_hash("x"), "x.yml")})
        store.write(client, "system", changed, first)
        count = len(fake.requests)
        assert store.read(client, "system", key, first) == changed
        assert len(fake.requests) > count + 1
