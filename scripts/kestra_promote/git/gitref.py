"""`--ref`: promote a given commit, branch or tag of a local Git repository.

The files of that commit are checked out, as `git checkout` would write them, into a temporary
folder, which is then read like any checkout: this is how a rollback to an earlier commit is done.

Git does the writing: the commit's tree is read into a temporary index (`git read-tree`, which
refuses paths such as `/etc/x`, `../x` or `.git/x`), and `git checkout-index --prefix` writes the
files under SOURCE from it, with the filters and line-ending rules a checkout of that commit
applies (Git LFS content included; the commit's own ``.gitattributes``, not the working tree's:
the temporary folder is the working tree of that checkout) and never through a symlink. `git archive` is not used:
`.gitattributes` may leave files out of it (export-ignore) or rewrite them (export-subst), and
what is promoted must be what was reviewed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, Mapping

from kestra_promote.errors import KestraPromoteError, SettingsError
from kestra_promote.git import blobs
from kestra_promote.git.blobs import Committed

_SUBMODULE = "160000"


def _git(repo: Path, *args: str, stdin: bytes | None = None,
         env: Mapping[str, str] | None = None) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], input=stdin, env=env,
                              capture_output=True, check=False)
    except OSError as exc:
        raise SettingsError(f"--ref needs the git command: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise SettingsError(f"git {args[0]}: {message[-1] if message else 'failed'}")
    return done.stdout


def _line(output: bytes) -> str:
    """One line of git's output: only the newline goes (a folder may end in a space)."""
    return os.fsdecode(output[:-1] if output.endswith(b"\n") else output)


def _entries(top: Path, prefix: str, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(mode, path) of every index entry under ``prefix``, paths relative to the top."""
    listing = _git(top, "ls-files", "-z", "--stage", "--", prefix or ".", env=env)
    entries = []
    for record in listing.split(b"\0"):
        if record:
            meta, _, name = record.partition(b"\t")
            entries.append((meta.split(b" ")[0].decode(), os.fsdecode(name)))
    return entries


@contextlib.contextmanager
def checkout(repo: str, ref: str) -> Iterator[tuple[str, str, Committed | None]]:
    """Yield (folder holding the files of ``ref``, its full commit id, how to read them as the
    commit holds them: ``read_source(committed=...)``); the folder is temporary.

    ``repo`` may be a subfolder of the repository: the same subfolder of the ref is yielded.
    """
    if not ref.strip():
        raise SettingsError("--ref needs a commit, branch or tag name")
    path = Path(repo).resolve()
    try:
        top = Path(_line(_git(path, "rev-parse", "--show-toplevel")))
    except SettingsError:
        raise SettingsError(f"--ref needs SOURCE in a Git repository, and {path} is in none"
                            ) from None
    try:
        commit = _line(_git(path, "rev-parse", "--verify", "--quiet", "--end-of-options",
                            f"{ref}^{{commit}}"))
    except SettingsError:
        raise SettingsError(f"no commit, branch or tag named {ref!r} in {top}") from None
    prefix = _line(_git(path, "rev-parse", "--show-prefix"))
    with tempfile.TemporaryDirectory(prefix="kestra-promote-") as tmp:
        # the index lives next to the files, never in the repository: its own index and
        # working tree are left as they are
        env = {**os.environ, "GIT_INDEX_FILE": os.path.join(tmp, "index"),
               "GIT_LITERAL_PATHSPECS": "1"}
        _git(top, "read-tree", commit, env=env)
        entries = _entries(top, prefix, env)
        if prefix and not entries:
            raise SettingsError(f"{prefix.rstrip('/')} holds no file at {ref} ({commit[:12]}) "
                                f"in {top}")
        submodules = [name for mode, name in entries if mode == _SUBMODULE]
        if submodules:
            # their files are another repository's, which a commit of this one does not hold:
            # reading without them would plan their flows as deleted
            raise SettingsError(f"--ref cannot read submodule {submodules[0]} (another "
                                "repository) under SOURCE: promote from a checkout with the "
                                "submodule, or leave it out of SOURCE")
        root = Path(tmp) / "tree"
        root.mkdir()
        # the temporary folder is the working tree: the attributes (line endings, ident,
        # filters) are read from it, where the commit's own .gitattributes is written, and
        # from the commit's tree, never from the repository's working tree
        git_dir = _line(_git(top, "rev-parse", "--absolute-git-dir"))
        _git(root, f"--git-dir={git_dir}", f"--work-tree={root}", "checkout-index", "-z",
             "--stdin", stdin=b"".join(os.fsencode(name) + b"\0" for _, name in entries),
             env=env)
        folder = root / prefix
        folder.mkdir(parents=True, exist_ok=True)
        committed = blobs.exactly(root, Path(git_dir), commit,
                                  git=[f"--git-dir={git_dir}", f"--work-tree={root}"],
                                  env={"GIT_INDEX_FILE": env["GIT_INDEX_FILE"]})
        try:
            yield str(folder), commit, committed
        except KestraPromoteError as error:  # shown once the temporary folder is gone
            if error.args and isinstance(error.args[0], str):
                where = f"{ref} ({commit[:12]})"
                error.args = (named(error.args[0], [(str(folder), repo), (str(root), str(top)),
                                                     (tmp, str(top))], where),
                              *error.args[1:])
            raise


def named(message: str, folders: list[tuple[str, str]], where: str) -> str:
    """``message`` naming the repository and the ref instead of the temporary folders."""
    named = message
    for temporary, real in folders:
        named = named.replace(temporary + os.sep, real.rstrip(os.sep) + os.sep)
        named = named.replace(temporary, f"{real} at {where}")
    if named != message and where not in named:
        named += f" (at {where})"
    return named
