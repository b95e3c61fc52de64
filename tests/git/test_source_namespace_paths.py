"""Where namespace files land: never under /_flows (Kestra imports files written there as flows,
bypassing validation and ownership), never outside the namespace root, however the path is
written."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import flow_yaml
from kestra_promote.config import Config, NamespaceFiles
from kestra_promote.errors import SourceError
from kestra_promote.models import FileKey
from kestra_promote.git.source import read_source

UNDER_FLOWS = "namespace files may not be written under /_flows/"


def write(folder: Path, relative: str, text: str = "x") -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def problems_of(folder: Path, config: Config | None = None) -> list[str]:
    with pytest.raises(SourceError) as caught:
        read_source(folder, config=config)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("target", "file"),
    [
        pytest.param("/_flows", "x.yml", id="target-is-the-folder"),
        pytest.param("/", "_flows", id="a-file-named-_flows"),
        pytest.param("/", "_flows/x.yml", id="a-folder-named-_flows"),
        pytest.param("/", "_FLOWS/x.yml", id="upper-case"),
        pytest.param("/", "_Flows", id="mixed-case-file"),
        pytest.param("/", "\uff3fflows/x.yml", id="unicode-compatibility-form"),
    ],
)
@pytest.mark.parametrize("per_namespace", [False, True], ids=["one-namespace", "files-per-namespace"])
def test_nothing_is_written_under_flows(tmp_path: Path, target: str, file: str,
                                        per_namespace: bool):
    folder = "files/company" if per_namespace else "files"
    source = "files/*" if per_namespace else "files, namespace: company"
    write(tmp_path, "kestra-promote.yml",
          f"flows: [flows]\nnamespace_files: [{{source: {source}, target: '{target}'}}]\n")
    write(tmp_path, "flows/a.yml", flow_yaml("company", "a"))
    write(tmp_path, f"{folder}/{file}", flow_yaml("company", "smuggled"))
    write(tmp_path, f"{folder}/ok.txt")
    refused = sorted([file, "ok.txt"] if target == "/_flows" else [file])
    assert problems_of(tmp_path) == [f"{folder}/{name}: {UNDER_FLOWS}" for name in refused]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        pytest.param("/x/../_flows", UNDER_FLOWS, id="dot-dot"),
        pytest.param("//_flows", UNDER_FLOWS, id="double-slash"),
        pytest.param("/_flows/./a", UNDER_FLOWS, id="dot"),
        pytest.param("\\_flows", UNDER_FLOWS, id="backslash"),
        pytest.param("/../../etc", "namespace file path '/../../etc/x.py' leads outside the "
                     "namespace root", id="escapes"),
        pytest.param("/lib//sub", "namespace file path '/lib//sub/x.py' holds an empty segment "
                     "('//')", id="empty-segment"),
    ],
)
def test_settings_built_in_code_get_the_same_checks(tmp_path: Path, target: str, message: str):
    # settings read from a file never get this far (see test_config); these are built in code
    write(tmp_path, "files/x.py")
    config = Config(flows=(), namespace_files=(NamespaceFiles("files", "company", target),))
    assert problems_of(tmp_path, config) == [f"files/x.py: {message}"]


def test_similar_names_are_fine(tmp_path: Path):
    write(tmp_path, "kestra-promote.yml", "flows: []\nnamespace_files: [{source: files/*}]\n")
    for name in ("_flowsx/a.yml", "flows/a.yml", "x/_flows/a.yml"):
        write(tmp_path, f"files/company/{name}")
    assert sorted(k.path for k in read_source(tmp_path).files) == [
        "/_flowsx/a.yml", "/flows/a.yml", "/x/_flows/a.yml"]


def test_a_file_name_with_a_backslash_is_refused(tmp_path: Path):
    write(tmp_path, "kestra-promote.yml", "flows: []\nnamespace_files: [{source: files/*}]\n")
    write(tmp_path, "files/company/lib\\..\\..\\x.py")  # one name, on POSIX file systems
    assert problems_of(tmp_path) == [
        "files/company/lib\\..\\..\\x.py: namespace file path '/lib\\\\..\\\\..\\\\x.py' "
        "holds a backslash: separate folders with '/'"]


def test_namespace_files_folders_exclude_the_settings_file_and_each_other(tmp_path: Path):
    write(tmp_path, "kestra-promote.yml", "flows: []\nnamespace_files:\n"
                    "  - {source: ., namespace: company}\n  - {source: team, namespace: company.team}\n")
    write(tmp_path, "root.py")
    write(tmp_path, "team/lib.py")
    files = read_source(tmp_path).files
    assert sorted(files) == [FileKey("company", "/root.py"), FileKey("company.team", "/lib.py")]
