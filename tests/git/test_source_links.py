"""Symlinks and file-system oddities met while reading a source folder.

What is never read (hidden files and folders, paths .kestraignore excludes, the settings file,
the files of another namespace_files folder, anything outside the folder) stays unread whatever
path leads to it, and every oddity is a problem naming the path, never a traceback or a hang.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from conftest import flow_yaml
from kestra_promote.errors import SourceError
from kestra_promote.models import FileKey, FlowKey
from kestra_promote.git.source import read_source

FILES = "namespace_files:\n  - {source: files, namespace: company}\n"


def write(folder: Path, relative: str, text: str = "x") -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def link(folder: Path, relative: str, target: str) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(SourceError) as caught:
        read_source(folder)
    return [str(p) for p in caught.value.problems]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with a secret in .git/config, a flow, and files/ uploaded to 'company'."""
    root = tmp_path / "repo"
    write(root, ".git/config", "[http] extraheader = AUTHORIZATION: basic c2VjcmV0")
    write(root, ".env", "TOKEN=secret")
    write(root, "kestra-promote.yml", FILES)
    write(root, "flows/a.yml", flow_yaml("company", "a"))
    write(root, "files/ok.txt", "ok")
    return root


# -- symlinks to files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link_path", "target", "ignore", "message"),
    [
        pytest.param("files/x", "../.git/config", "",
                     "files/x: symlink to '.git/config', which is hidden; refusing to read it",
                     id="file-to-hidden-folder"),
        pytest.param("files/env", "../.env", "",
                     "files/env: symlink to '.env', which is hidden; refusing to read it",
                     id="file-to-hidden-file"),
        pytest.param("files/x", "../secrets/key.pem", "secrets/\n",
                     "files/x: symlink to 'secrets/key.pem', which .kestraignore excludes; "
                     "refusing to read it", id="file-to-ignored-folder"),
        pytest.param("files/x", "../notes/key.pem", "*.pem\n",
                     "files/x: symlink to 'notes/key.pem', which .kestraignore excludes; refusing "
                     "to read it", id="file-to-ignored-file"),
        pytest.param("files/settings", "../kestra-promote.yml", "",
                     "files/settings: symlink to the settings file 'kestra-promote.yml'; refusing "
                     "to read it", id="file-to-settings"),
        pytest.param("flows/x.yml", "../.git/config", "",
                     "flows/x.yml: symlink to '.git/config', which is hidden; refusing to read it",
                     id="flow-to-hidden"),
        pytest.param("flows/x.yml", "../secrets/key.pem", "secrets/\n",
                     "flows/x.yml: symlink to 'secrets/key.pem', which .kestraignore excludes; "
                     "refusing to read it", id="flow-to-ignored"),
        pytest.param("flows/settings.yml", "../kestra-promote.yml", "",
                     "flows/settings.yml: symlink to the settings file 'kestra-promote.yml'; "
                     "refusing to read it", id="flow-to-settings"),
        pytest.param("flows/x.yml", "../files/ok.txt", "",
                     "flows/x.yml: symlink to 'files/ok.txt', in the namespace_files folder "
                     "'files'; refusing to read it as a flow", id="flow-to-namespace-files"),
    ],
)
def test_a_symlink_to_what_is_never_read_is_refused(repo: Path, link_path: str, target: str,
                                                    ignore: str, message: str):
    write(repo, "secrets/key.pem", "-----BEGIN PRIVATE KEY-----")
    write(repo, "notes/key.pem", "-----BEGIN PRIVATE KEY-----")
    if ignore:
        write(repo, ".kestraignore", ignore)
    link(repo, link_path, target)
    assert problems_of(repo) == [message]


def test_a_symlink_into_another_namespace_files_folder_is_refused(repo: Path):
    write(repo, "kestra-promote.yml", FILES + "  - {source: team, namespace: company.team}\n")
    write(repo, "team/lib.py", "team = 1")
    link(repo, "files/lib.py", "../team/lib.py")
    assert problems_of(repo) == [
        "files/lib.py: symlink to 'team/lib.py', in another namespace_files folder ('team'); "
        "refusing to read it"]


def test_symlinks_to_allowed_files_are_still_read_under_their_own_path(repo: Path):
    write(repo, "shared/util.py", "util = 1")
    write(repo, "shared/common.yml", flow_yaml("company", "common"))
    link(repo, "files/util.py", "../shared/util.py")
    link(repo, "flows/common.yml", "../shared/common.yml")
    write(repo, "kestra-promote.yml", FILES + "flows: [flows]\n")
    source = read_source(repo)
    assert sorted(source.flows) == [FlowKey("company", "a"), FlowKey("company", "common")]
    assert source.flows[FlowKey("company", "common")].path == "flows/common.yml"
    assert {k: v.content for k, v in source.files.items()} == {
        FileKey("company", "/ok.txt"): b"ok", FileKey("company", "/util.py"): b"util = 1"}


def test_every_refused_symlink_is_reported_at_once(repo: Path):
    link(repo, "files/a", "../.git/config")
    link(repo, "files/b", "../.env")
    link(repo, "flows/c.yml", "../.git/config")
    assert problems_of(repo) == [
        "files/a: symlink to '.git/config', which is hidden; refusing to read it",
        "files/b: symlink to '.env', which is hidden; refusing to read it",
        "flows/c.yml: symlink to '.git/config', which is hidden; refusing to read it",
    ]


# -- symlinked folders ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link_path", "target", "message"),
    [
        pytest.param("files/git", "../.git",
                     "files/git: symlink to '.git', which is hidden; refusing to read it",
                     id="files-to-hidden"),
        pytest.param("files/secrets", "../secrets",
                     "files/secrets: symlink to 'secrets', which .kestraignore excludes; refusing "
                     "to read it", id="files-to-ignored"),
        pytest.param("flows/git", "../.git",
                     "flows/git: symlink to '.git', which is hidden; refusing to read it",
                     id="flows-to-hidden"),
        pytest.param("flows/files", "../files",
                     "flows/files: symlink to 'files', in the namespace_files folder 'files'; "
                     "refusing to read it as a flow", id="flows-to-namespace-files"),
    ],
)
def test_a_symlinked_folder_leading_to_what_is_never_read_is_refused(
        repo: Path, link_path: str, target: str, message: str):
    write(repo, ".kestraignore", "/secrets/\n")  # anchored: the links' own paths are not ignored
    write(repo, "secrets/key.pem", "-----BEGIN PRIVATE KEY-----")
    link(repo, link_path, target)
    assert problems_of(repo) == [message]


def test_a_symlinked_folder_inside_is_not_followed(repo: Path):
    # its files are read where they really are (or not at all): never twice
    write(repo, "shared/b.yml", flow_yaml("company", "b"))
    link(repo, "flows/shared", "../shared")
    link(repo, "files/more", "../shared")
    source = read_source(repo)
    assert sorted(source.flows) == [FlowKey("company", "a"), FlowKey("company", "b")]
    assert list(source.files) == [FileKey("company", "/ok.txt")]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param("flows: [.github]\n", "kestra-promote.yml: flows folder '.github' is hidden: "
                     "hidden files and folders are never read", id="hidden-flows-folder"),
        pytest.param("flows: [ci]\n", "kestra-promote.yml: flows folder 'ci' is excluded by "
                     ".kestraignore", id="ignored-flows-folder"),
        pytest.param("flows: [gitlink]\n", "kestra-promote.yml: flows folder 'gitlink' leads to "
                     "'.git', which is hidden: hidden files and folders are never read",
                     id="flows-folder-linked-to-hidden"),
        pytest.param("flows: [flows]\nnamespace_files: [{source: gitlink, namespace: company}]\n",
                     "kestra-promote.yml: namespace_files folder 'gitlink' leads to '.git', which "
                     "is hidden: hidden files and folders are never read",
                     id="files-folder-linked-to-hidden"),
        pytest.param("flows: [flows]\nnamespace_files: [{source: a/../.git, namespace: c}]\n",
                     "kestra-promote.yml: namespace_files folder 'a/../.git' is hidden: hidden "
                     "files and folders are never read", id="files-folder-written-around"),
    ],
)
def test_a_settings_folder_that_is_hidden_or_ignored_is_refused(repo: Path, settings: str,
                                                                message: str):
    write(repo, ".github/workflows/ci.yml", "on: push\n")
    write(repo, ".kestraignore", "ci/\n")
    write(repo, "ci/pipeline.yml", "stages: []\n")
    (repo / "a").mkdir()
    link(repo, "gitlink", ".git")
    write(repo, "kestra-promote.yml", settings)
    assert problems_of(repo) == [message]


def test_a_namespace_folder_of_a_per_namespace_layout_may_be_a_symlink(tmp_path: Path):
    write(tmp_path, "kestra-promote.yml", "flows: [flows]\nnamespace_files: [{source: files/*}]\n")
    write(tmp_path, "flows/a.yml", flow_yaml("company", "a"))
    write(tmp_path, "shared/company/etl.py", "etl")
    link(tmp_path, "files/company", "../shared/company")
    source = read_source(tmp_path)
    assert {k: v.path for k, v in source.files.items()} == {
        FileKey("company", "/etl.py"): "shared/company/etl.py"}


@pytest.mark.parametrize(
    ("target", "message"),
    [
        pytest.param("../.git", "files/company: symlink to '.git', which is hidden; refusing to "
                     "read it", id="hidden"),
        pytest.param("..", "files/company: symlink to '.', a folder holding it: a loop; refusing "
                     "to follow it", id="parent"),
        pytest.param("other", "files/company: symlink to 'files/other', in another "
                     "namespace_files folder ('files/other'); refusing to read it",
                     id="another-namespace"),
        pytest.param("../../outside", "files/company: symlink to a folder outside the source "
                     "folder", id="outside"),
        pytest.param("company", "files/company: symlink loop; refusing to follow it", id="self"),
    ],
)
def test_a_symlinked_namespace_folder_is_judged_by_where_it_leads(tmp_path: Path, target: str,
                                                                  message: str):
    root = tmp_path / "repo"
    write(tmp_path, "outside/stolen.txt")
    write(root, ".git/config", "secret")
    write(root, "kestra-promote.yml", "namespace_files: [{source: files/*}]\n")
    write(root, "a.yml", flow_yaml("company", "a"))
    write(root, "files/other/x.txt")
    link(root, "files/company", target)
    assert problems_of(root) == [message]


# -- loops -----------------------------------------------------------------------------------------


def test_symlink_loops_are_problems_naming_the_link(repo: Path):
    link(repo, "flows/a-loop.yml", "b-loop.yml")
    link(repo, "flows/b-loop.yml", "a-loop.yml")
    link(repo, "flows/sub/up", "..")
    link(repo, "files/self", "self")
    assert problems_of(repo) == [
        "files/self: symlink loop; refusing to follow it",
        "flows/a-loop.yml: symlink loop; refusing to follow it",
        "flows/b-loop.yml: symlink loop; refusing to follow it",
        "flows/sub/up: symlink to 'flows', a folder holding it: a loop; refusing to follow it",
    ]


def test_a_settings_folder_that_loops_is_a_problem(repo: Path):
    link(repo, "loop", "loop")
    write(repo, "kestra-promote.yml", "flows: [loop]\n")
    assert problems_of(repo) == ["kestra-promote.yml: flows folder 'loop' is a symlink loop"]


# -- oddities -------------------------------------------------------------------------------------


RELEASE_AFTER = 3.0  # seconds: a read still waiting then was blocked on a FIFO


@pytest.fixture
def unblock() -> Iterator[list[Path]]:
    """FIFOs to open for writing (then close) after RELEASE_AFTER seconds, should a reader wait
    on them: a reader that blocks gets an empty file late instead of hanging the tests."""
    fifos: list[Path] = []
    stop = threading.Event()

    def release() -> None:
        if stop.wait(RELEASE_AFTER):
            return
        deadline = time.monotonic() + 10
        while not stop.is_set() and time.monotonic() < deadline:
            for fifo in fifos:
                try:
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass
            time.sleep(0.05)

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    yield fifos
    stop.set()
    thread.join()


def test_fifos_and_sockets_are_refused_not_read(repo: Path, unblock: list[Path],
                                               monkeypatch: pytest.MonkeyPatch):
    os.mkfifo(repo / "flows/pipe.yml")
    os.mkfifo(repo / "files/pipe")
    os.mkfifo(repo / "notes.fifo")
    link(repo, "flows/to-pipe.yml", "../notes.fifo")
    unblock += [repo / "flows/pipe.yml", repo / "files/pipe", repo / "notes.fifo"]
    with socket.socket(socket.AF_UNIX) as server:
        monkeypatch.chdir(repo / "files")  # socket paths must be short: bind a relative one
        server.bind("app.sock")
        monkeypatch.undo()
        started = time.monotonic()
        found = problems_of(repo)
        assert time.monotonic() - started < RELEASE_AFTER - 1  # nothing waited on a FIFO
    assert found == [
        "files/app.sock: a socket, not a regular file; refusing to read it",
        "files/pipe: a named pipe (FIFO), not a regular file; refusing to read it",
        "flows/pipe.yml: a named pipe (FIFO), not a regular file; refusing to read it",
        "flows/to-pipe.yml: symlink to 'notes.fifo', a named pipe (FIFO), not a regular "
        "file; refusing to read it",
    ]


def test_a_fifo_that_is_not_a_flow_is_left_alone(repo: Path, unblock: list[Path]):
    os.mkfifo(repo / "flows/build.fifo")
    unblock.append(repo / "flows/build.fifo")
    assert list(read_source(repo).flows) == [FlowKey("company", "a")]


def test_an_unreadable_folder_is_a_problem(repo: Path, monkeypatch: pytest.MonkeyPatch):
    # chmod does not stop root: make the listing itself fail, as it does for other users
    write(repo, "flows/locked/b.yml", flow_yaml("company", "b"))
    real_scandir = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert problems_of(repo) == ["flows/locked: cannot read folder: Permission denied"]


def test_a_file_that_vanishes_during_the_walk_is_a_problem(repo: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    write(repo, "files/tmp.txt", "soon gone")
    write(repo, "flows/gone.yml", flow_yaml("company", "gone"))
    real_scandir = os.scandir

    class Listing:
        """A listing made before its files were deleted."""

        def __init__(self, path) -> None:  # type: ignore[no-untyped-def]
            with real_scandir(path) as listing:
                self.entries = list(listing)
            for entry in self.entries:
                if entry.name in ("tmp.txt", "gone.yml"):
                    os.unlink(entry.path)

        def __enter__(self) -> Iterator[os.DirEntry]:
            return iter(self.entries)

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(os, "scandir", Listing)
    assert problems_of(repo) == [
        "files/tmp.txt: cannot read: No such file or directory",
        "flows/gone.yml: cannot read: No such file or directory",
    ]


def test_an_unreadable_kestraignore_is_a_problem(repo: Path):
    (repo / ".kestraignore").mkdir()
    assert problems_of(repo) == [
        ".kestraignore: cannot read file: a folder, not a regular file"]


def test_an_odd_git_folder_gives_no_commit_rather_than_a_hang(tmp_path: Path,
                                                              unblock: list[Path]):
    write(tmp_path, "a.yml", flow_yaml("company", "a"))
    (tmp_path / ".git").mkdir()
    os.mkfifo(tmp_path / ".git/HEAD")
    unblock.append(tmp_path / ".git/HEAD")
    started = time.monotonic()
    assert read_source(tmp_path).commit is None
    assert time.monotonic() - started < RELEASE_AFTER - 1  # nothing waited on a FIFO


def test_a_git_file_that_is_not_text_gives_no_commit(tmp_path: Path):
    write(tmp_path, "a.yml", flow_yaml("company", "a"))
    (tmp_path / ".git").write_bytes(b"gitdir: \xff\xfe\n")
    assert read_source(tmp_path).commit is None
