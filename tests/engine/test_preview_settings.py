"""The pure part of previews: ids, the settings a preview deploys with, ages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from kestra_promote.config import Config
from kestra_promote.engine import preview
from kestra_promote.errors import SettingsError
from kestra_promote.flows.renaming import rename_namespace
from kestra_promote.models import FlowKey, Inventory, Managed


def test_the_settings_move_every_namespace_and_rename_under_the_preview():
    config = Config(name="team", rename={"dev.company": "company", "old": ""},
                    include=("company.*",), windows=(), approval="required", prune=False,
                    explicit=frozenset({"name", "approval", "rename"}))
    mine = preview.preview_config(config, "preview.42", ["dev.company.team", "dev.other", "old.x"],
                                  name="preview-42", state_namespace="system")
    assert mine.name == "preview-42" and mine.prune and mine.disable_triggers
    assert mine.approval == "off" and "approval" not in mine.explicit
    assert mine.include == ("preview.42.company.*",)
    assert [rename_namespace(ns, mine.rename) for ns in
            ("dev.company.team", "dev.other", "old.x", "dev", "billing")] == [
        "preview.42.company.team", "preview.42.dev.other", "preview.42.x", "preview.42.dev",
        "billing"]


def test_ids_and_names():
    assert preview.root_of("preview", "42") == "preview.42"
    assert preview.id_of("preview-pr_7") == "pr_7" and preview.id_of("team") is None
    with pytest.raises(SettingsError, match="--prefix: namespace 'Pre' is invalid"):
        preview.root_of("Pre", "1")


def test_ages():
    now = datetime(2026, 1, 10, tzinfo=timezone.utc)
    managed = {FlowKey("preview.1.a", "f"): Managed("h")}
    inventories = {
        "preview-1": Inventory("preview-1", managed, history=(
            {"time": "2026-01-01T00:00:00+00:00", "commit": "c1", "preview": "preview.1"},)),
        "preview-2": Inventory("preview-2", history=(
            {"time": "2026-01-09T23:00:00+00:00", "commit": "c2", "preview": "preview.2"},)),
        "preview-3": Inventory("preview-3", history=({"time": "2026-01-01T00:00:00+00:00"},)),
        "team": Inventory("team", history=({"preview": "x"},)),
    }
    found = preview.previews(inventories)
    assert [(p.id, p.commit, p.flows) for p in found] == [("1", "c1", 1), ("2", "c2", 0)]
    assert [p.id for p in preview.stale(found, now, preview.parse_age("7d"))] == ["1"]
    assert preview.describe_age(found[0].age(now)) == "9d0h"
    assert preview.parse_age("1d12h") == timedelta(days=1, hours=12)
    for bad in ("", "0d", "7 days", "1w"):
        with pytest.raises(SettingsError, match="--older-than"):
            preview.parse_age(bad)


def test_the_policy_setting_that_forbids_previews():
    from kestra_promote.errors import SourceError
    from kestra_promote.gates.policy import parse_policy
    from kestra_promote.gates.policy_store import Stored

    assert parse_policy("max_deletions: 2\n").previews is True
    forbidding = parse_policy("previews: false\n")
    assert forbidding.describe() == {"previews": False}
    assert "previews: false, in KV system/kestra_promote_policy" in str(
        preview.forbidden(Stored("system", forbidding, pinned=False)))
    assert preview.forbidden(Stored("system", None, pinned=False)) is None
    with pytest.raises(SourceError) as caught:
        parse_policy("previews: sometimes\n", "p.yml")
    assert "'previews' must be true or false" in str(caught.value.problems[0])
