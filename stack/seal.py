"""The demo production's seal, worked out before production starts.

Production's promotion flows run only when their settings record matches the seal in the Kestra
server's environment (ENV_KESTRA_PROMOTE_SEAL; see the package's gates/seal.py), and that
environment is read once, when Kestra starts. The credentials service writes it into
production's kestra.env before production starts: the record the stack's bootstrap will write
(the demo's settings, no policy, the package of this project), in the same canonical form.

The credentials service has no network, so no packages: this module uses the standard library
only, and tests/test_stack.py checks that its seal is the one `kestra-promote bootstrap` prints
for the same settings.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Mapping

PROJECT = Path(__file__).resolve().parents[1]
GITEA_URL = "http://gitea:3000"  # the Git server as the Kestra containers reach it
OWNER_REPO = "flows"
BRANCH = "main"
PROVIDER = "gitea"  # promote_webhook_provider: a request claiming another provider is refused
# what bootstrap never reads: hidden files and folders, compiled code in any letter case (the
# package's git/sourcetree.py), and the project's .kestraignore (__pycache__/, *.pyc, *.egg-info/,
# the last for folders only); tests/test_stack.py compares both on an odd tree
COMPILED = (".pyc", ".pyo")


def prod_settings(gitea_url: str, owner: str) -> dict[str, str]:
    """Production's settings in the demo (the repository belongs to the Git server's admin)."""
    return {"promote_repo_url": f"{gitea_url}/{owner}/{OWNER_REPO}.git",
            "promote_branch": BRANCH, "promote_webhook_provider": PROVIDER}


def package_files(project: Path) -> list[tuple[str, bytes]]:
    """The package files bootstrap installs, by path relative to the namespace's root."""
    root = project / "scripts"
    found = []
    for folder, folders, names in os.walk(root / "kestra_promote"):
        folders[:] = sorted(f for f in folders if not f.startswith(".")
                            and f.lower() != "__pycache__" and not f.endswith(".egg-info"))
        for name in names:
            if name.startswith(".") or name.lower().endswith(COMPILED):
                continue
            path = Path(folder) / name
            found.append((path.relative_to(root).as_posix(), path.read_bytes()))
    return found


def package_digest(files: list[tuple[str, bytes]]) -> str:
    total = hashlib.sha256()
    for path, data in sorted(files, key=lambda item: item[0]):
        total.update(path.encode("utf-8") + b"\0"
                     + hashlib.sha256(data).hexdigest().encode("ascii") + b"\n")
    return "sha256:" + total.hexdigest()


def record_text(settings: Mapping[str, str], package: str, policy: str = "none") -> str:
    return json.dumps({"version": 1, "settings": dict(sorted(settings.items())),
                       "policy": policy, "package": package},
                      sort_keys=True, separators=(",", ":"))


def seal(settings: Mapping[str, str], project: Path = PROJECT) -> str:
    text = record_text(settings, package_digest(package_files(project)))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
