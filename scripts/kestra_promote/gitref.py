"""`--ref`: promote a given commit, branch or tag of a local Git repository.

The tree of that ref is exported (`git archive`) to a temporary folder, which is then read like
any checkout: this is how a rollback to an earlier commit is done.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import SettingsError


def _git(repo: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except OSError as exc:
        raise SettingsError(f"--ref needs the git command: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise SettingsError(f"git {' '.join(args)}: {message[-1] if message else 'failed'}")
    return done.stdout


@contextlib.contextmanager
def checkout(repo: str, ref: str) -> Iterator[tuple[str, str]]:
    """Yield (folder holding the tree of ``ref``, its full commit id); the folder is temporary.

    ``repo`` may be a subfolder of the repository: the same subfolder of the ref is yielded.
    """
    path = Path(repo).resolve()
    try:
        top = Path(_git(path, "rev-parse", "--show-toplevel").decode().strip())
    except SettingsError:
        raise SettingsError(f"--ref needs SOURCE in a Git repository, and {path} is in none"
                            ) from None
    try:
        commit = _git(path, "rev-parse", "--verify", "--quiet", "--end-of-options",
                      f"{ref}^{{commit}}").decode().strip()
    except SettingsError:
        raise SettingsError(f"no commit, branch or tag named {ref!r} in {top}") from None
    prefix = _git(path, "rev-parse", "--show-prefix").decode().strip()
    # from the top: run from a subfolder, git archive would hold that subfolder alone
    archive = _git(top, "archive", "--format=tar", commit)
    with tempfile.TemporaryDirectory(prefix="kestra-promote-") as tmp:
        root = Path(tmp)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            for member in tar.getmembers():  # git archive is trusted, but stay inside the folder
                target = (root / member.name).resolve()
                if target.is_relative_to(root.resolve()):
                    # symlinks are extracted as they are: reading the source reports any that
                    # lead outside the folder, as it would for a checkout
                    if hasattr(tarfile, "tar_filter"):  # 3.12+ (and late 3.10/3.11) want one
                        tar.extract(member, root, set_attrs=False, filter="tar")
                    else:  # pragma: no cover - older Pythons have no filter argument
                        tar.extract(member, root, set_attrs=False)
        yield str(root / prefix), commit

