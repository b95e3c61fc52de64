"""Compiled Python code is never read from a source: a committed ``__pycache__`` or ``*.pyc``
would otherwise be uploaded as a namespace file, and run in place of its source by whatever
imports the package from there (the promote task runs the package from its namespace files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import flow_yaml
from kestra_promote.errors import SourceError
from kestra_promote.git.source import read_source
from kestra_promote.kestra_task.bootstrap import bootstrap_config, project_root
from kestra_promote.models import FileKey, FlowKey

SETTINGS = "flows: [flows]\nnamespace_files:\n  - source: files/*\n"


def write(folder: Path, relative: str, content: bytes | str) -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def repository(folder: Path) -> Path:
    write(folder, "kestra-promote.yml", SETTINGS)
    write(folder, "flows/company/a.yml", flow_yaml("company", "a"))
    write(folder, "files/company/scripts/etl.py", "print('etl')\n")
    return folder


def test_a_committed_pyc_in_the_promotions_own_namespace_files_is_not_uploaded(tmp_path: Path):
    # the reproduced attack: compiled code for the package, in the promotion's namespace
    repository(tmp_path)
    write(tmp_path, "files/system/kestra_promote/__pycache__/__init__.cpython-311.pyc",
          b"\xa7\r\r\n\x00\x00\x00\x00payload")
    write(tmp_path, "files/system/notes.txt", "kept\n")
    source = read_source(tmp_path)
    assert set(source.files) == {FileKey("company", "/scripts/etl.py"),
                                 FileKey("system", "/notes.txt")}


@pytest.mark.parametrize("relative", [
    "files/company/scripts/__pycache__/etl.cpython-312.pyc",
    "files/company/scripts/etl.pyc",
    "files/company/scripts/etl.pyo",
    "files/company/scripts/ETL.PYC",
    "files/company/scripts/__PyCache__/etl.py",
    "files/company/__pycache__/anything.txt",
])
def test_compiled_files_and_pycache_folders_are_left_out_in_any_case(tmp_path: Path,
                                                                      relative: str):
    repository(tmp_path)
    write(tmp_path, relative, b"\x00compiled")
    assert set(read_source(tmp_path).files) == {FileKey("company", "/scripts/etl.py")}


def test_a_pycache_folder_among_the_namespace_folders_is_no_problem(tmp_path: Path):
    # files/* names namespaces: __pycache__ is not one, and is not read (nor reported)
    repository(tmp_path)
    write(tmp_path, "files/__pycache__/x.cpython-311.pyc", b"\x00")
    assert set(read_source(tmp_path).files) == {FileKey("company", "/scripts/etl.py")}


def test_flows_under_pycache_are_not_read(tmp_path: Path):
    repository(tmp_path)
    write(tmp_path, "flows/__pycache__/b.yml", flow_yaml("company", "b"))
    assert set(read_source(tmp_path).flows) == {FlowKey("company", "a")}


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_symlink_to_compiled_code_is_refused(tmp_path: Path):
    repository(tmp_path)
    write(tmp_path, "build/mod.pyc", b"\x00")
    link = tmp_path / "files/company/scripts/mod.py"
    link.symlink_to(tmp_path / "build/mod.pyc")
    with pytest.raises(SourceError) as caught:
        read_source(tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        "files/company/scripts/mod.py: symlink to 'build/mod.pyc', which is compiled Python "
        "code; refusing to read it"]


def test_a_settings_folder_inside_pycache_is_refused(tmp_path: Path):
    write(tmp_path, "kestra-promote.yml", "flows: [__pycache__]\n")
    write(tmp_path, "__pycache__/a.yml", flow_yaml("company", "a"))
    with pytest.raises(SourceError) as caught:
        read_source(tmp_path)
    assert "flows folder '__pycache__' holds compiled Python code (__pycache__), which is " \
           "never read" in str(caught.value.problems[0])


def test_bootstrap_never_reads_compiled_code_of_the_package(tmp_path: Path):
    # the package folder as a developer's checkout has it, without the project's .kestraignore
    project = project_root()
    config = bootstrap_config("prod", "system")
    write(tmp_path, "flows/prod/promote.yml", (project / "flows/prod/promote.yml").read_text())
    write(tmp_path, "scripts/kestra_promote/__init__.py", "")
    write(tmp_path, "scripts/kestra_promote/__pycache__/__init__.cpython-311.pyc", b"\x00")
    write(tmp_path, "scripts/kestra_promote/engine/plan.pyc", b"\x00")
    source = read_source(tmp_path, config=config)
    assert set(source.files) == {FileKey("system", "/kestra_promote/__init__.py")}


@pytest.mark.parametrize(("name", "is_dir", "expected"), [
    ("__pycache__", True, True), ("__pycache__", False, True), ("x.pyc", False, True),
    ("x.PYO", False, True), ("x.pyc", True, False), ("x.py", False, False),
    ("pycache", True, False), ("x.pyc.txt", False, False),
])
def test_what_counts_as_compiled(name: str, is_dir: bool, expected: bool):
    from kestra_promote.git.sourcetree import is_compiled

    assert is_compiled(name, is_dir=is_dir) is expected
