"""The inventory's stored form: small enough for large sources, and older forms still read."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli
from kestra_promote.target import inventory
from kestra_promote.compare import normalize, source_hash
from kestra_promote.errors import KestraError
from kestra_promote.models import FlowKey, Inventory, Managed


def _legacy(text: str) -> str:
    return "sha256:" + hashlib.sha256(normalize(text).encode()).hexdigest()


def test_an_inventory_of_the_first_format_reads_as_the_same_hashes():
    text = flow_yaml("company", "a")
    old = {"format": 1, "name": "default", "flows": {
        "company/a": {"hash": _legacy(text), "commit": "c" * 40, "path": "a.yml"}},
        "files": {"company:/x.py": {"hash": "sha256:" + hashlib.sha256(b"x").hexdigest()}},
        "history": []}
    read = inventory.from_json(old, where="system/kestra-promote.default")
    assert read.flows[FlowKey("company", "a")] == Managed(source_hash(text), "a.yml")


@pytest.mark.fake_only
def test_a_target_promoted_by_the_previous_format_shows_no_change(repo: GitRepo, target: Target):
    repo.write("a.yml", flow_yaml("company", "a"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    with target.client() as client:  # as the previous version wrote it
        client.kv_put("system", "kestra-promote.default", {
            "format": 1, "name": "default",
            "flows": {"company/a": {"hash": _legacy(flow_yaml("company", "a")), "path": "a.yml"}},
            "files": {}, "history": []})
    planned = run_cli("plan", str(repo.path), env=target.env)
    # no drift, no write of the flow: only the inventory learns the new fields
    assert planned.code == 0 and "No changes to flows or files" in planned.out, planned.out
    assert "1 unchanged" in planned.out


def test_a_flow_takes_52_bytes_besides_its_name_and_file():
    flows = {FlowKey(f"company.team{n % 10}", f"flow_{n:05}"):
             Managed(source_hash(str(n)), f"flows/team{n % 10}/flow_{n:05}.yml",
                     source_hash(f"source {n}")) for n in range(10_000)}
    stored = json.dumps(inventory.to_json(Inventory("default", flows)), separators=(",", ":"))
    names = sum(len(f"{key.namespace}/{key.id}") + len(managed.path or "")
                for key, managed in flows.items())
    assert len(stored) <= names + 52 * len(flows) + 100  # two 22-character hashes, quotes...
    assert len(stored) / len(flows) < 103  # here: about a hundred bytes a flow
    assert inventory.from_json(json.loads(stored), where="x").flows == flows


@pytest.mark.parametrize("entry", ["", " - a.yml", 5, None])
def test_an_entry_that_is_not_as_written_is_a_clean_error(entry):
    with pytest.raises(KestraError, match="is not readable"):
        inventory.from_json({"format": 2, "name": "default", "flows": {"company/a": entry}},
                            where="system/kestra-promote.default")
