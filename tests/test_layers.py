"""The package's layers hold: imports only go down, no cycles, nothing imports the package root.

The contract itself is declared in ``pyproject.toml`` (``[tool.importlinter]``) and checked here
with import-linter, so the suite fails on an upward import or a cycle; a test of our own covers
what a layers contract cannot say (the package ``__init__`` is nobody's dependency) and the size
of modules.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import grimp

from conftest import ROOT

PACKAGE = ROOT / "scripts" / "kestra_promote"


def test_the_import_contracts_in_pyproject_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_contract_catches_an_upward_import(tmp_path):
    """The contract is not vacuous: a leaf that imports the engine breaks it."""
    copy = tmp_path / "scripts" / "kestra_promote"
    _copy_tree(PACKAGE, copy)
    (copy / "compare.py").write_text((copy / "compare.py").read_text()
                                     + "\nfrom kestra_promote.engine import plan  # noqa\n")
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(tmp_path / "scripts")})
    assert done.returncode != 0
    assert "kestra_promote.compare is not allowed to import kestra_promote.engine" in done.stdout


def test_nothing_imports_the_package_root():
    graph = grimp.build_graph("kestra_promote")
    assert graph.find_modules_that_directly_import("kestra_promote") == set()


def test_every_subpackage_says_what_it_owns():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.split()) >= 20, f"{init.parent.name}/ has no docstring"


MAX_MODULE_LINES = 620  # "about 600": a module past this wants splitting along its concerns


def test_every_module_is_about_600_lines_or_less():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def _copy_tree(source: Path, dest: Path) -> None:
    for path in source.rglob("*.py"):
        target = dest / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
