"""Incremental planning: a flow file the inventory knows is not parsed, and the plan is the
same as reading every file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, GitRepo, Target, flow_yaml, run_cli
from fake_kestra import FakeKestra, rules, serve
from kestra_promote.target import inventory
from kestra_promote.engine import planfile
from kestra_promote.git import source
from kestra_promote.target.client import Connection, connect
from kestra_promote.compare import source_hash
from kestra_promote.config import Config
from kestra_promote.flows.desired import prepare
from kestra_promote.errors import SourceError
from kestra_promote.target.live import read_for
from kestra_promote.models import FlowKey, Reason
from kestra_promote.engine.plan import plan as make_plan
from kestra_promote.engine.promotion import open_promotion

pytestmark = pytest.mark.fake_only


def _counting_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    parsed: list[str] = []
    real = source.parse_flow

    def counting(text: str, rel: str, *rest):  # type: ignore[no-untyped-def]
        parsed.append(rel)
        return real(text, rel, *rest)

    monkeypatch.setattr(source, "parse_flow", counting)
    return parsed


def test_an_unchanged_file_is_not_parsed_again(repo: GitRepo, target: Target,
                                               monkeypatch: pytest.MonkeyPatch):
    repo.write("kestra-promote.yml", "namespaces:\n  rename: {dev: prod}\nlabels: {team: data}\n")
    for name in "abc":
        repo.write(f"flows/{name}.yml", flow_yaml("dev.team", name))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    parsed = _counting_parses(monkeypatch)
    again = run_cli("apply", str(repo.path), env=target.env)
    assert again.code == 0 and "No changes." in again.out
    assert parsed == []  # the inventory knows all three texts, and the live copies match

    repo.write("flows/b.yml", flow_yaml("dev.team", "b", "changed"))
    repo.commit()
    changed = run_cli("apply", str(repo.path), env=target.env)
    assert changed.code == 0 and "~ update    prod.team/b" in changed.out
    assert parsed == ["flows/b.yml"]

    # edited on the target: the live copy no longer gives the text, so that file is parsed
    parsed.clear()
    with target.client() as client:
        client.update_flow("prod.team", "c", flow_yaml("prod.team", "c", "hotfix"))
    drifted = run_cli("plan", str(repo.path), env=target.env)
    assert "company" not in drifted.err and "prod.team/c" in drifted.out
    assert parsed == ["flows/c.yml"]


def test_reordered_labels_are_a_change_as_in_a_full_read(repo: GitRepo, target: Target):
    # labels are added in the settings' order, so their order is part of what is deployed
    repo.write("kestra-promote.yml", "labels:\n  team: data\n  env: prod\n")
    for name in "abc":
        repo.write(f"flows/{name}.yml", flow_yaml("company.team", name))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    repo.write("kestra-promote.yml", "labels:\n  env: prod\n  team: data\n")
    repo.commit()
    planned = run_cli("plan", str(repo.path), env=target.env)
    assert "Plan: 0 to create, 3 to update, 0 to delete." in planned.out, planned.out


def test_a_copy_of_a_known_file_is_reported_as_a_full_read_reports_it(repo: GitRepo,
                                                                      target: Target):
    repo.write("a.yml", flow_yaml("company", "a"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    shutil.copy(repo.path / "a.yml", repo.path / "copy.yml")
    repo.commit()
    result = run_cli("plan", str(repo.path), env=target.env)
    assert result.code == 1
    assert ("the same flow is defined in 2 files (a.yml, copy.yml): keep one" in result.err)


# -- the same plan as a full read, on Kestra's own flows ----------------------------------------


def _usable_fixtures(folder: Path) -> dict[str, str]:
    """Kestra's own valid flows that the fake stores and that read cleanly, one per key."""
    found: dict[str, str] = {}
    keys: set[FlowKey] = set()
    for path in sorted(folder.glob("*.y*ml")):
        text = path.read_text(encoding="utf-8")
        flow, problems = source.parse_flow(text, path.name)
        checked, errors = rules.check(text, version="2.0.3", edition="oss",
                                      plugins=rules.DEFAULT_PLUGINS)
        if flow is None or problems or checked is None or errors or flow.key in keys:
            continue
        keys.add(flow.key)
        found[path.name] = text
    return found


def _comparable(plan) -> dict:  # type: ignore[no-untyped-def]
    data = planfile.dump(plan, url="x", tenant="main")
    for change in data["changes"]:  # a live copy may differ from the file by a revision line
        for side in ("before", "after"):
            if isinstance(change.get(side), dict) and "text" in change[side]:
                change[side] = source_hash(change[side]["text"])
    data.pop("live_fingerprint")  # it includes when the inventory was read
    return data


@pytest.mark.parametrize("settings", [
    Config(),
    Config(rename={"io": "renamed"}),
    Config(rename={"io.kestra.tests": "company"}, labels={"team": "data", "system.readOnly": "true"}),
], ids=["as-is", "renamed", "renamed-and-labelled"])
def test_the_plan_is_the_same_as_reading_every_file(tmp_path: Path, settings: Config):
    fixtures = _usable_fixtures(FIXTURES / "flows" / "kestra-2.0" / "valid")
    assert len(fixtures) > 200
    folder = tmp_path / "flows"
    folder.mkdir()
    for name, text in fixtures.items():
        (folder / name).write_text(text, encoding="utf-8")
    fake = FakeKestra()
    with serve(fake) as url, connect(Connection(url, username=fake.username,
                                                password=fake.password)) as client:
        # as promoted before: every flow deployed, and the inventory recording it
        first = open_promotion(client, folder, settings).plan()
        for change in first.pending:
            fake.seed_flow(change.after)
        assert first.managed_after is not None
        client.kv_put("system", inventory.kv_key("default"), inventory.to_json(first.managed_after))

        names = sorted(fixtures)
        for name in names[:3]:  # changed in Git
            (folder / name).write_text(fixtures[name] + "# changed\n", encoding="utf-8")
        (folder / names[3]).unlink()  # gone from Git
        drifted = [c for c in first.pending if c.path == names[4]][0]
        fake.seed_flow(drifted.after + "# edited on the target\n")

        incremental = open_promotion(client, folder, settings)
        assert len(incremental.source.known) > 150  # most files were not parsed
        fast = incremental.plan()
        full_desired = prepare(source.read_source(folder, config=settings), settings)
        full = make_plan(full_desired, read_for(client, full_desired, settings), settings)
    assert _comparable(fast) == _comparable(full)
    assert [str(w) for w in fast.warnings] == [str(w) for w in full.warnings]
    # three changed in Git, one edited on the target (overwritten), one orphaned
    assert (fast.summary["update"], fast.summary["orphaned"]) == (4, 1)
    assert [c.reason for c in fast.changes if c.path == names[4]] == [Reason.DRIFT_OVERWRITTEN]


def test_a_known_file_that_no_longer_gives_a_valid_flow_is_reported(repo: GitRepo,
                                                                    target: Target):
    """Renaming into an invalid namespace after a promotion: the known files are parsed and the
    problem is the one a full read gives."""
    repo.write("a.yml", flow_yaml("dev", "a"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    # (a flag's invalid namespace is refused before anything is read: this one only leaves
    # the flow no namespace)
    result = run_cli("plan", str(repo.path), "--rename", "dev=", env=target.env)
    assert result.code == 1
    with pytest.raises(SourceError) as full:
        prepare(source.read_source(repo.path), Config().with_overrides(rename={"dev": ""}))
    assert str(full.value) in result.err
