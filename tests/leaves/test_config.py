"""The settings file: every key, its defaults, and clear errors for wrong ones."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from kestra_promote.config import Config, NamespaceFiles, check_name, load_config, parse_config
from kestra_promote.errors import SourceError
from kestra_promote.models import FileKey
from kestra_promote.git.source import read_source

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
                     "allowed: approval, branch, drift, flows, labels, max_deletions, name, namespace_files, "
                     "namespaces, protected_namespaces, prune, state_namespace, tags, windows",
                     id="unknown-key"),
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


# -- namespace patterns: one rule for every namespace setting -----------------------------------

# (pattern, namespace, covered): a pattern covers the namespaces it matches and their children;
# '*' stands for any characters, dots included
PATTERN_CASES = [
    ("company", "company", True),
    ("company", "company.team", True),
    ("company", "company.team.etl", True),
    ("company", "companyx", False),
    ("company", "comp", False),
    ("company", "other.company", False),
    ("company.*", "company", False),
    ("company.*", "company.team", True),
    ("company.*", "company.team.etl", True),
    ("company.*", "companyx.team", False),
    ("company*", "companyx", True),
    ("company*", "company.team", True),
    ("*.team", "company.team", True),
    ("*.team", "a.b.team", True),
    ("*.team", "company.team.etl", True),
    ("*.team", "team", False),
    ("*.team", "company.teams", False),
    ("c*y.core", "company.core.x", True),
    ("*", "anything.at.all", True),
    ("system", "system", True),
    ("system", "systems", False),
]


@pytest.mark.parametrize(("pattern", "namespace", "covered"), [
    pytest.param(p, n, c, id=f"{p}-{n}") for p, n, c in PATTERN_CASES])
def test_include_and_protected_namespaces_read_patterns_the_same_way(
        pattern: str, namespace: str, covered: bool):
    config = parse_config(f"namespaces: {{include: ['{pattern}']}}\n"
                          f"protected_namespaces: ['{pattern}']\n", "kestra-promote.yml")
    assert config.includes(namespace) is covered
    assert config.is_protected(namespace) is covered


def test_a_plain_protected_namespace_still_protects_its_children():
    config = parse_config("protected_namespaces: [company]\n", "kestra-promote.yml")
    assert config.is_protected("company") and config.is_protected("company.team")
    assert Config().is_protected("system.sub") and not Config().is_protected("systemx")


def test_children_only_pattern_protects_the_children_not_the_parent():
    config = parse_config("protected_namespaces: [company.*]\n", "kestra-promote.yml")
    assert config.is_protected("company.team") and config.is_protected("company.team.etl")
    assert not config.is_protected("company")


@pytest.mark.parametrize(
    ("text", "messages"),
    [
        pytest.param("protected_namespaces: [Company]\n", [
            "kestra-promote.yml:1:24: protected_namespaces: pattern 'Company' is invalid: use "
            "lower-case letters, digits, '.', '_', '-' and '*' (any characters), starting with a "
            "letter, a digit or '*'"], id="upper-case"),
        pytest.param("namespaces:\n  include: [ok, 'company.[ab]', '']\n", [
            "kestra-promote.yml:2:17: namespaces.include: pattern 'company.[ab]' is invalid: use "
            "lower-case letters, digits, '.', '_', '-' and '*' (any characters), starting with a "
            "letter, a digit or '*'",
            "kestra-promote.yml:2:33: namespaces.include: pattern is empty"], id="fnmatch-class"),
        pytest.param("protected_namespaces: .company\n", [
            "kestra-promote.yml:1:23: protected_namespaces: pattern '.company' is invalid: use "
            "lower-case letters, digits, '.', '_', '-' and '*' (any characters), starting with a "
            "letter, a digit or '*'"], id="scalar-form"),
        pytest.param("namespaces: {rename: {Dev: company, dev: 'Prod'}}\n", [
            "kestra-promote.yml:1:23: namespaces.rename from: namespace 'Dev' is invalid: use "
            "lower-case letters, digits, '.', '_' and '-', starting with a letter or digit",
            "kestra-promote.yml:1:42: namespaces.rename to: namespace 'Prod' is invalid: use "
            "lower-case letters, digits, '.', '_' and '-', starting with a letter or digit"],
            id="rename"),
        pytest.param("state_namespace: 'My Space'\n", [
            "kestra-promote.yml:1:18: 'state_namespace': namespace 'My Space' is invalid: use "
            "lower-case letters, digits, '.', '_' and '-', starting with a letter or digit"],
            id="state-namespace"),
    ],
)
def test_invalid_namespace_settings_are_reported_where_they_are_written(text: str, messages):
    with pytest.raises(SourceError) as caught:
        parse_config(text, "kestra-promote.yml")
    assert [str(p) for p in caught.value.problems] == messages


def test_a_rename_to_the_root_is_still_allowed():
    assert parse_config("namespaces: {rename: {dev: ''}}\n", "x.yml").rename == {"dev": ""}


# -- values that must match as a whole: a final newline is not allowed -------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param('name: "ops\\n"\n', "kestra-promote.yml: 'name' 'ops\\n' must use letters, "
                     "digits, '_' and '-'", id="source-name"),
        pytest.param('labels: {"team\\n": data}\n', "kestra-promote.yml:1:10: 'labels': label key "
                     "'team\\n' is invalid: use letters, digits, '.', '_' and '-', starting with a "
                     "lower-case letter", id="label-key"),
        pytest.param('state_namespace: "ops\\n"\n', "kestra-promote.yml:1:18: 'state_namespace': "
                     "namespace 'ops\\n' is invalid: use lower-case letters, digits, '.', '_' and "
                     "'-', starting with a letter or digit", id="state-namespace"),
        pytest.param('namespaces: {include: ["company\\n"]}\n', "kestra-promote.yml:1:24: "
                     "namespaces.include: pattern 'company\\n' is invalid: use lower-case letters, "
                     "digits, '.', '_', '-' and '*' (any characters), starting with a letter, a "
                     "digit or '*'", id="include"),
        pytest.param('protected_namespaces: ["system\\n"]\n', "kestra-promote.yml:1:24: "
                     "protected_namespaces: pattern 'system\\n' is invalid: use lower-case "
                     "letters, digits, '.', '_', '-' and '*' (any characters), starting with a "
                     "letter, a digit or '*'", id="protected"),
        pytest.param('namespaces: {rename: {"dev\\n": company}}\n', "kestra-promote.yml:1:23: "
                     "namespaces.rename from: namespace 'dev\\n' is invalid: use lower-case "
                     "letters, digits, '.', '_' and '-', starting with a letter or digit",
                     id="rename"),
    ],
)
def test_a_trailing_newline_is_refused_in_settings(text: str, message: str):
    with pytest.raises(SourceError) as caught:
        parse_config(text, "kestra-promote.yml")
    assert [str(p) for p in caught.value.problems] == [message]


def test_a_trailing_newline_is_refused_in_the_name_that_keys_the_inventory():
    # --name names the inventory, stored under the KV key kestra-promote.<name>
    with pytest.raises(SourceError) as caught:
        check_name("ops\n")
    assert [str(p) for p in caught.value.problems] == [
        "--name: name 'ops\\n' must use letters, digits, '_' and '-'"]
    assert check_name("ops") == "ops"


@pytest.mark.parametrize(
    ("key", "valid"),
    [("team", True), ("system.readOnly", True), ("cost-center_2", True), ("Team", False),
     ("1team", False), ("team name", False), ("team\n", False), ("", False)],
)
def test_label_keys_follow_kestras_rule(key: str, valid: bool):
    text = f"labels: {{{json.dumps(key)}: x}}\n"
    if valid:
        assert parse_config(text, "x.yml").labels == {key: "x"}
    else:
        with pytest.raises(SourceError):
            parse_config(text, "x.yml")


# -- namespace file targets -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "why"),
    [
        pytest.param("/lib/../../etc", "leads outside the namespace root", id="escapes"),
        pytest.param("..", "leads outside the namespace root", id="parent"),
        pytest.param("/lib/../x", "holds a '.' or '..' segment: write the path from the namespace "
                     "root", id="dot-dot"),
        pytest.param("/x/../_flows/a.yml", "holds a '.' or '..' segment: write the path from the "
                     "namespace root", id="dot-dot-to-flows"),
        pytest.param("/_flows/./a", "holds a '.' or '..' segment: write the path from the "
                     "namespace root", id="dot"),
        pytest.param("//_flows/a", "holds an empty segment ('//')", id="leading-double-slash"),
        pytest.param("/lib//x", "holds an empty segment ('//')", id="inner-double-slash"),
        pytest.param("\\\\lib", "holds a backslash: separate folders with '/'", id="backslash"),
        pytest.param("lib\\\\..\\\\..", "holds a backslash: separate folders with '/'",
                     id="backslash-dot-dot"),
    ],
)
@pytest.mark.parametrize("source", ["scripts", "files/*"])
def test_namespace_file_targets_must_be_plain_paths(source: str, target: str, why: str):
    namespace = "" if source.endswith("*") else ", namespace: company"
    text = f'namespace_files:\n  - {{source: {source}{namespace}, target: "{target}"}}\n'
    with pytest.raises(SourceError) as caught:
        parse_config(text, "kestra-promote.yml")
    column = text.splitlines()[1].index('"') + 1
    shown = target.replace("\\\\", "\\")
    assert [str(p) for p in caught.value.problems] == [
        f"kestra-promote.yml:2:{column}: namespace_files target {shown!r} {why}"]


@pytest.mark.parametrize("target", ["/", "", "lib", "/lib/", "/lib/sub", "/.config", "/_flowsx"])
def test_plain_namespace_file_targets_are_accepted(target: str):
    config = parse_config(f'namespace_files: [{{source: s, namespace: c, target: "{target}"}}]\n',
                          "x.yml")
    assert config.namespace_files[0].target == "/" + target.strip("/")


# -- the settings file itself ----------------------------------------------------------------


def test_a_settings_file_that_is_not_a_regular_file_is_an_error_not_a_hang(tmp_path: Path):
    os.mkfifo(tmp_path / "kestra-promote.yml")
    with pytest.raises(SourceError) as caught:
        load_config(tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        "kestra-promote.yml: cannot read the settings file: a named pipe (FIFO), not a regular "
        "file"]
