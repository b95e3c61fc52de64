"""Settings files above SOURCE: the repository root's, which a subfolder SOURCE does not read.

A promotion source is a folder: its settings (``kestra-promote.yml``) and ignore rules
(``.kestraignore``) are the files in it. Those of a folder above, up to the repository's root (the
folder holding ``.git``), belong to another source: their paths (``flows:``, ``namespace_files``,
anchored patterns) are relative to that folder, and their ``name`` is that source's, whose
inventory a run with them would take as its own. So they are never read for a subfolder, and
``unread_settings`` names each one, nearest first, that SOURCE has no file of its own in place of.
"""

from __future__ import annotations

import os
from pathlib import Path

from kestra_promote.config import CONFIG_FILE
from kestra_promote.git.ignore import IGNORE_FILE

_WHAT = {CONFIG_FILE: "settings", IGNORE_FILE: "ignore rules"}


def _repository_root(folder: Path) -> Path | None:
    """The nearest folder above ``folder`` (not itself) holding ``.git``."""
    for parent in folder.parents:
        if os.path.lexists(parent / ".git"):
            return parent
    return None


def unread_settings(source: str, config_file: str | None) -> list[str]:
    """Warnings naming the settings and ignore files between SOURCE and its repository's root
    that are not read, when SOURCE is a subfolder without files of its own (with ``--config``,
    the settings are the ones given)."""
    folder = Path(os.path.realpath(source))
    if not folder.is_dir() or os.path.lexists(folder / ".git"):
        return []
    root = _repository_root(folder)
    if root is None:
        return []
    names = [IGNORE_FILE] if config_file else [CONFIG_FILE, IGNORE_FILE]
    warnings = []
    for name in names:
        if os.path.lexists(folder / name):
            continue
        above = next((parent / name for parent in folder.parents
                      if parent.is_relative_to(root) and os.path.lexists(parent / name)), None)
        if above is None:
            continue
        what = _WHAT[name]
        warnings.append(
            f"{above} is not read: SOURCE ({source}) is a folder inside the repository {root}, "
            f"and {what} are read from SOURCE only (their paths and name are those of the "
            f"folder holding them). To use them, promote the repository root; for {what} of "
            f"this folder, write {name} in SOURCE")
    return warnings
