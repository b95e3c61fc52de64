"""Whether a commit is in a branch's history, read from `.git` without git: clones as Kestra's
Clone leaves them (packs), loose objects, deltas, shallow clones."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import GitRepo
from kestra_promote.git.history import HistoryError, contains


def _history(tmp_path: Path) -> tuple[GitRepo, list[str], str]:
    repo = GitRepo(tmp_path / "source")
    commits = []
    for number in range(12):
        repo.write("flows/a.yml", "".join(f"line {i} of {number}\n" for i in range(300)))
        commits.append(repo.commit(f"commit {number}"))
    repo.git("checkout", "-q", "-b", "kestra-dev")
    repo.write("flows/b.yml", "id: b\n")
    unmerged = repo.commit("not merged")
    repo.git("checkout", "-q", "main")
    return repo, commits, unmerged


def _clone(source: Path, target: Path, *args: str) -> Path:
    subprocess.run(["git", "clone", "-q", *args, f"file://{source}", str(target)], check=True)
    return target


def test_a_commit_is_found_in_a_whole_clone_of_the_branch_and_another_branch_is_not(tmp_path):
    repo, commits, unmerged = _history(tmp_path)
    clone = _clone(repo.path, tmp_path / "followed", "--depth", "2147483647", "--branch", "main")
    assert not (clone / ".git/shallow").exists()  # Git's infinite depth: the whole history
    assert all(contains(clone, commit) for commit in commits)
    assert contains(clone, unmerged) is False


def test_packed_deltified_and_loose_objects_are_read(tmp_path):
    repo, commits, unmerged = _history(tmp_path)
    repo.git("gc", "-q", "--aggressive")  # one pack, objects stored as deltas of others
    assert list((repo.path / ".git/objects/pack").glob("*.idx"))
    assert contains(repo.path, commits[0]) and not contains(repo.path, unmerged)
    repo.write("flows/c.yml", "id: c\n")
    loose = repo.commit("a loose commit on top of the pack")
    assert contains(repo.path, loose) and contains(repo.path, commits[3])


def test_a_version_1_pack_index_is_read(tmp_path):
    repo, commits, unmerged = _history(tmp_path)
    repo.git("-c", "pack.indexVersion=1", "repack", "-q", "-a", "-d", "-f")
    (index,) = (repo.path / ".git/objects/pack").glob("*.idx")
    assert index.read_bytes()[:4] != b"\xfftOc"  # no version-2 signature
    assert contains(repo.path, commits[1]) and not contains(repo.path, unmerged)


def test_a_shallow_clone_cannot_say_no(tmp_path):
    repo, commits, unmerged = _history(tmp_path)
    clone = _clone(repo.path, tmp_path / "shallow", "--depth", "3", "--branch", "main")
    assert contains(clone, commits[-1])  # within the clone's depth: found
    with pytest.raises(HistoryError, match="shallow"):
        contains(clone, unmerged)


def test_what_is_not_a_commit_or_not_a_clone_is_an_error(tmp_path):
    with pytest.raises(HistoryError, match="not a full commit id"):
        contains(tmp_path, "abc123")
    with pytest.raises(HistoryError, match="not a clone"):
        contains(tmp_path, "a" * 40)
