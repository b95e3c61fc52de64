"""The promotion's own code is sealed: no plan writes the package's namespace files in the
promotion namespace, except bootstrap's own installation of the package."""

from __future__ import annotations

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli
from kestra_promote.config import Config, parse_config
from kestra_promote.engine.plan import plan, refusals
from kestra_promote.errors import SourceError
from kestra_promote.flows.desired import Desired
from kestra_promote.gates.sealed_namespace import is_package_path
from kestra_promote.kestra_task.bootstrap import bootstrap_config
from kestra_promote.models import (
    Action, Change, DesiredFile, FileKey, LiveFile, LiveState, Reason, Scope,
)

FILES = "name: team\nflows: [flows]\nnamespace_files:\n  - source: files/*\n"


def _files(*files: DesiredFile) -> Desired:
    return Desired(flows={}, files={f.key: f for f in files})


def _live(*files: LiveFile) -> LiveState:
    return LiveState(flows={}, files={f.key: f for f in files}, inventory=None,
                     scope=Scope((), (), "system"))


def _sealed_refusals(found: tuple[str, ...] | list[str]) -> list[str]:
    return [r for r in found if "promotion's own code" in r]


# -- which paths are the package's --------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/kestra_promote/__init__.py", "kestra_promote/cli/main.py", "/Kestra_Promote/x.py",
    "/KESTRA_PROMOTE/__init__.py", "/./kestra_promote/x.py", "//kestra_promote//x.py",
    "/a/../kestra_promote/x.py", "\\kestra_promote\\x.py", "/ｋｅｓｔｒａ＿ｐｒｏｍｏｔｅ/x.py",
    "/kestra_promote/__pycache__/__init__.cpython-311.pyc", "/dev/kestra_promote/x.py",
    "/DEV/Kestra_promote/x.py",
])
def test_the_package_paths_however_written(path: str):
    assert is_package_path(path)


@pytest.mark.parametrize("path", [
    "/kestra_promote", "/kestra_promote_extra/x.py", "/scripts/kestra_promote/x.py",
    "/x/kestra_promote.py", "/dev/other/kestra_promote/x.py", "/etl.py",
])
def test_other_paths_are_not_the_package(path: str):
    assert not is_package_path(path)


# -- planned ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/kestra_promote/__init__.py", "/Kestra_Promote/engine/x.py",
                                  "/dev/kestra_promote/kestra_task/runtime.py"])
def test_a_plan_writing_the_package_in_the_promotion_namespace_is_refused(path: str):
    key = FileKey("system", path)
    planned = plan(_files(DesiredFile(key, b"import os\n", f"files/system{path}")), _live(),
                   Config(name="team"))
    assert [c.action for c in planned.changes] == [Action.CREATE]
    [refusal] = _sealed_refusals(planned.refusals)
    assert refusal.startswith(f"system:{path} (from files/system{path}): the namespace files "
                              "under kestra_promote/ of the promotion namespace 'system' are the "
                              "promotion's own code")
    assert "no repository may create them" in refusal


def test_updates_and_deletions_of_the_package_are_refused_too():
    key = FileKey("system", "/kestra_promote/__init__.py")
    changes = [Change(key, Action.UPDATE, Reason.CHANGED_IN_GIT, b"a", b"b", "files/x"),
               Change(FileKey("system", "/kestra_promote/x.py"), Action.DELETE, Reason.LEFT_GIT,
                      b"a", None, "files/y")]
    found = _sealed_refusals(refusals(changes, source_empty=False, config=Config(), others={},
                                      own=None))
    assert len(found) == 2 and "may update them" in found[0] and "may delete them" in found[1]


def test_the_package_elsewhere_and_other_files_of_the_promotion_namespace_are_fine():
    planned = plan(_files(DesiredFile(FileKey("company", "/kestra_promote/x.py"), b"x", "a"),
                          DesiredFile(FileKey("system", "/scripts/etl.py"), b"x", "b")),
                   _live(), Config(name="team"))
    assert _sealed_refusals(planned.refusals) == []


def test_the_promotion_namespace_is_the_one_the_run_gives():
    desired = _files(DesiredFile(FileKey("ops.promotion", "/kestra_promote/x.py"), b"x", "a"),
                     DesiredFile(FileKey("system", "/kestra_promote/x.py"), b"x", "b"))
    planned = plan(desired, _live(), Config(name="team", promotion_namespace="ops.promotion"))
    assert [r.split(" ")[0] for r in _sealed_refusals(planned.refusals)] == [
        "ops.promotion:/kestra_promote/x.py"]


def test_only_bootstraps_own_configuration_installs_the_package():
    config = bootstrap_config("prod", "ops.promotion")
    assert config.installs_promotion and config.promotion_namespace == "ops.promotion"
    key = FileKey("ops.promotion", "/kestra_promote/__init__.py")
    planned = plan(_files(DesiredFile(key, b"", "scripts/kestra_promote/__init__.py")), _live(),
                   config)
    assert _sealed_refusals(planned.refusals) == []


@pytest.mark.parametrize("key", ["installs_promotion", "promotion_namespace"])
def test_no_settings_file_can_set_the_bootstrap_flag_or_the_promotion_namespace(key: str):
    value = "true" if key == "installs_promotion" else "elsewhere"
    with pytest.raises(SourceError) as caught:
        parse_config(f"{key}: {value}\n", "kestra-promote.yml")
    assert "unknown key" in str(caught.value.problems[0])


# -- end to end ---------------------------------------------------------------------------------

@pytest.mark.fake_only
def test_a_repository_cannot_upload_the_promotions_package(repo: GitRepo, target: Target):
    repo.write("kestra-promote.yml", FILES)
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    repo.write("files/system/kestra_promote/__init__.py", "import os  # runs in the promote task\n")
    repo.write("files/system/kestra_promote/__pycache__/__init__.cpython-311.pyc", "\x00payload")
    repo.commit("overwrite the promotion")
    assert target.fake is not None
    result = run_cli("apply", str(repo.path), env=target.env)
    assert result.code != 0
    assert "system:/kestra_promote/__init__.py (from files/system/kestra_promote/__init__.py): " \
           "the namespace files under kestra_promote/ of the promotion namespace 'system'" \
           in result.out + result.err
    assert "__pycache__" not in result.out + result.err  # never read at all
    assert target.fake.writes() == []


@pytest.mark.fake_only
def test_the_policy_namespace_is_the_promotion_namespace(repo: GitRepo, target: Target):
    repo.write("kestra-promote.yml", FILES)
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    repo.write("files/ops/kestra_promote/__init__.py", "\n")
    repo.commit("into the promotion namespace ops")
    env = {**target.env, "KESTRA_PROMOTE_POLICY_NAMESPACE": "ops"}
    result = run_cli("plan", str(repo.path), env=env)
    assert "ops:/kestra_promote/__init__.py (from files/ops/kestra_promote/__init__.py)" in \
        result.out
    assert run_cli("apply", str(repo.path), env=env).code != 0


@pytest.mark.fake_only
def test_bootstrap_still_installs_the_package(target: Target):
    assert target.fake is not None
    result = run_cli("bootstrap", env=target.env)
    assert result.code == 0, result.err
    assert "/kestra_promote/engine/plan.py" in target.fake.files[("main", "system")]


@pytest.mark.fake_only
def test_renaming_into_the_promotion_namespace_is_refused_too(repo: GitRepo, target: Target):
    # files are checked where they land, after renaming
    repo.write("kestra-promote.yml", FILES)
    repo.write("flows/a.yml", flow_yaml("dev.team", "a"))
    repo.write("files/dev/KESTRA_PROMOTE/__main__.py", "print('hi')\n")
    repo.commit("renamed into system")
    result = run_cli("plan", str(repo.path), "--rename", "dev=system", env=target.env)
    assert "system:/KESTRA_PROMOTE/__main__.py (from files/dev/KESTRA_PROMOTE/__main__.py): " \
           "the namespace files under kestra_promote/" in result.out
