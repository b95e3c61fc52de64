"""The settings file: every key, its defaults, and clear errors for wrong ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from kestra_promote.config import Config, NamespaceFiles, load_config, parse_config
from kestra_promote.errors import SourceError
from kestra_promote.models import FileKey
from kestra_promote.source import read_source

FULL = """
name: analytics-flows
flows: [flows/]
namespace_files:
  - {source: scripts/company.team, namespace: company.team, target: /}
  - source: sql
    namespace: company.data
    target: /queries/
namespaces:
  include: [company, company.*]
  rename: {dev.company: company}
prune: true
max_deletions: 3
protected_namespaces: [system, company.core]
drift: keep
labels: {"system.readOnly": "true"}
branch: release
state_namespace: ops
"""


def test_every_key_is_read():
    config = parse_config(FULL, "kestra-promote.yml")
    assert config == Config(
        name="analytics-flows", flows=("flows/",),
        namespace_files=(NamespaceFiles("scripts/company.team", "company.team", "/"),
                         NamespaceFiles("sql", "company.data", "/queries")),
        include=("company", "company.*"), rename={"dev.company": "company"}, prune=True,
        max_deletions=3, protected_namespaces=("system", "company.core"), drift="keep",
        labels={"system.readOnly": "true"}, branch="release", state_namespace="ops",
        path="kestra-promote.yml")
    assert config.includes("company.team") and not config.includes("other")
    assert config.is_protected("company.core.x") and not config.is_protected("company.corex")


def test_defaults_without_a_file(tmp_path: Path):
    assert load_config(tmp_path) == Config()
    assert parse_config("", "x.yml") == Config(path="x.yml")
    assert Config().drift == "overwrite" and Config().max_deletions == 10
    assert Config().protected_namespaces == ("system",) and not Config().prune


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("prnue: true\n", "kestra-promote.yml:1:1: unknown key 'prnue' in the settings "
                     "(did you mean 'prune'?)", id="misspelt-key"),
        pytest.param("colour: red\n", "kestra-promote.yml:1:1: unknown key 'colour' in the settings; "
                     "allowed: branch, drift, flows, labels, max_deletions, name, namespace_files, "
                     "namespaces, protected_namespaces, prune, state_namespace, tags", id="unknown-key"),
        pytest.param("prune: yes please\n", "kestra-promote.yml:1:8: 'prune' must be true or false",
                     id="prune-not-bool"),
        pytest.param("max_deletions: -1\n", "kestra-promote.yml:1:16: 'max_deletions' must be a "
                     "whole number, 0 or more", id="negative-max"),
        pytest.param("max_deletions: ten\n", "kestra-promote.yml:1:16: 'max_deletions' must be a "
                     "whole number, 0 or more", id="max-not-int"),
        pytest.param("drift: ignore\n", "kestra-promote.yml: 'drift' must be one of overwrite, "
                     "fail, keep, not 'ignore'", id="bad-drift"),
        pytest.param("labels: [a, b]\n", "kestra-promote.yml:1:9: 'labels' must be a mapping of "
                     "text to text", id="labels-list"),
        pytest.param("namespaces: {rename: [a]}\n", "kestra-promote.yml:1:22: 'namespaces.rename' "
                     "must be a mapping of text to text", id="rename-list"),
        pytest.param("namespaces: {exclude: [a]}\n", "kestra-promote.yml:1:14: unknown key "
                     "'exclude' in 'namespaces' (did you mean 'include'?)", id="namespaces-key"),
        pytest.param("namespace_files: [{source: s}]\n", "kestra-promote.yml:1:19: "
                     "namespace_files entry without 'namespace'", id="files-missing-namespace"),
        pytest.param("namespace_files: [{source: s, namespace: n, targte: /}]\n",
                     "kestra-promote.yml:1:45: unknown key 'targte' in a namespace_files entry "
                     "(did you mean 'target'?)", id="files-misspelt"),
        pytest.param("flows: {a: b}\n", "kestra-promote.yml:1:8: 'flows' must be a list of text "
                     "values", id="flows-map"),
        pytest.param("name: 'my source'\n", "kestra-promote.yml: 'name' 'my source' must use "
                     "letters, digits, '_' and '-'", id="bad-name"),
        pytest.param("branch: main\ntags: v*\n", "kestra-promote.yml: give either 'branch' or "
                     "'tags', not both", id="branch-and-tags"),
        pytest.param("prune: true\nprune: false\n", "kestra-promote.yml:2:1: duplicate key 'prune'",
                     id="duplicate"),
        pytest.param("- prune\n", "kestra-promote.yml: expected one mapping of settings",
                     id="not-a-mapping"),
        pytest.param("prune: [\n", "kestra-promote.yml:2:1: YAML syntax error", id="syntax"),
    ],
)
def test_bad_settings_are_reported_with_file_line_and_key(text: str, message: str):
    with pytest.raises(SourceError) as caught:
        parse_config(text, "kestra-promote.yml")
    assert any(str(p).startswith(message) for p in caught.value.problems), [
        str(p) for p in caught.value.problems]


def test_overrides_replace_settings_and_merge_renames():
    config = Config(rename={"dev": ""}, prune=False)
    changed = config.with_overrides(prune=True, rename={"qa": "prod"}, drift=None)
    assert changed.prune and changed.rename == {"dev": "", "qa": "prod"}
    assert changed.drift == "overwrite"


def test_namespace_files_are_read_from_their_folders(tmp_path: Path):
    (tmp_path / "kestra-promote.yml").write_text(
        "namespace_files:\n  - {source: scripts, namespace: company.team, target: /lib}\n")
    (tmp_path / "scripts/pkg").mkdir(parents=True)
    (tmp_path / "scripts/pkg/etl.py").write_bytes(b"print('etl')\n")
    (tmp_path / "scripts/query.yml").write_text("not: a flow\n")  # files, not flows
    (tmp_path / "scripts/.cache").write_text("hidden")
    (tmp_path / "flow.yml").write_text("id: a\nnamespace: company\ntasks: [{id: t}]\n")
    source = read_source(tmp_path)
    assert list(source.flows) and len(source.flows) == 1
    assert {k: v.content for k, v in source.files.items()} == {
        FileKey("company.team", "/lib/pkg/etl.py"): b"print('etl')\n",
        FileKey("company.team", "/lib/query.yml"): b"not: a flow\n",
    }


def test_a_folder_per_namespace(tmp_path: Path):
    # the layout commit-to-git writes: files/<namespace>/...
    (tmp_path / "kestra-promote.yml").write_text(
        "flows: [flows]\nnamespace_files:\n  - {source: files/*, target: /lib}\n")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows/a.yml").write_text("id: a\nnamespace: dev.company\ntasks: [{id: t}]\n")
    for namespace, name in (("dev.company", "x.txt"), ("dev.company.team", "scripts/etl.py")):
        (tmp_path / "files" / namespace / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "files" / namespace / name).write_text(name)
    (tmp_path / "files/.hidden").mkdir()
    source = read_source(tmp_path)
    assert source.config.namespace_files == (NamespaceFiles("files", "*", "/lib", True),)
    assert sorted(source.files) == [FileKey("dev.company", "/lib/x.txt"),
                                    FileKey("dev.company.team", "/lib/scripts/etl.py")]
    (tmp_path / "files/README.md").write_text("loose")
    (tmp_path / "files/Not A Namespace").mkdir()
    with pytest.raises(SourceError) as caught:
        read_source(tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        "files/Not A Namespace: folder name is not a namespace: namespace 'Not A Namespace' is "
        "invalid: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit",
        "files/README.md: belongs to no namespace: files of files/* go in a folder named after "
        "their namespace",
    ]


def test_a_folder_per_namespace_names_no_namespace():
    with pytest.raises(SourceError) as caught:
        parse_config("namespace_files: [{source: files/*, namespace: a}]\n", "kestra-promote.yml")
    assert [str(p) for p in caught.value.problems] == [
        "kestra-promote.yml:1:19: namespace_files entry 'files/*' names its namespaces after its "
        "folders: remove 'namespace'"]


def test_missing_folders_in_settings_are_reported(tmp_path: Path):
    (tmp_path / "kestra-promote.yml").write_text(
        "flows: [nope]\nnamespace_files:\n  - {source: gone, namespace: c}\n"
        "  - {source: ., namespace: BAD}\n")
    with pytest.raises(SourceError) as caught:
        read_source(tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        "kestra-promote.yml: flows folder 'nope' does not exist",
        "kestra-promote.yml: namespace_files folder 'gone' does not exist",
        "kestra-promote.yml: namespace_files: namespace 'BAD' is invalid: use lower-case letters, "
        "digits, '.', '_' and '-', starting with a letter or digit",
    ]


def test_the_settings_file_is_not_read_as_a_flow(tmp_path: Path):
    (tmp_path / "kestra-promote.yml").write_text("prune: false\n")
    (tmp_path / "a.yml").write_text("id: a\nnamespace: company\ntasks: [{id: t}]\n")
    assert len(read_source(tmp_path).flows) == 1
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci/promote.yml").write_text("name: other\n")
    explicit = read_source(tmp_path, config_file=str(tmp_path / "ci/promote.yml"))
    assert explicit.config.name == "other" and len(explicit.flows) == 1
