"""What bytes are promoted: those Git holds in the commit, whatever the checkout's conversions.

A namespace file is uploaded as the commit's blob, not as a clone's working tree wrote it
(``core.autocrlf``, ``eol`` and ``ident`` attributes), so two clones of one commit promote the
same bytes; only a file that differs from the commit (``--allow-dirty``) is read from the
working tree. ``--ref`` reads the ``.gitattributes`` of the commit it promotes.
"""

from __future__ import annotations

import pytest
from conftest import FAKE_PASSWORD, FAKE_USER, GitRepo, flow_yaml, run_cli
from fake_kestra import FakeKestra, serve

pytestmark = pytest.mark.fake_only
NS = "company.team"
SETTINGS = f"flows: [flows/]\nnamespace_files:\n  - {{source: files, namespace: {NS}}}\n"


def _env(url: str) -> dict[str, str]:
    return {"KESTRA_URL": url, "KESTRA_USERNAME": FAKE_USER, "KESTRA_PASSWORD": FAKE_PASSWORD}


def test_ref_reads_the_gitattributes_of_the_commit_it_promotes(repo: GitRepo):
    """A rollback to a commit without line-ending or ident rules ships its scripts as that
    commit holds them, whatever rules the working tree has gained since."""
    repo.write("kestra-promote.yml", SETTINGS)
    repo.write("flows/a.yml", flow_yaml(NS, "a"))
    repo.write("files/run.sh", "#!/bin/sh\necho hi\n")
    repo.write("files/id.txt", "$Id$\n")
    repo.commit("v1")
    repo.git("tag", "v1")
    repo.write(".gitattributes", "*.sh text eol=crlf\n*.txt ident\n")
    repo.commit("later rules")

    fake = FakeKestra()
    with serve(fake) as url:
        run = run_cli("apply", str(repo.path), "--ref", "v1", env=_env(url))
        assert run.code == 0, run.out + run.err
    assert fake.files[("main", NS)] == {"/run.sh": b"#!/bin/sh\necho hi\n", "/id.txt": b"$Id$\n"}


def _origin(repo: GitRepo) -> None:
    repo.write("kestra-promote.yml", SETTINGS)
    repo.write("flows/a.yml", flow_yaml(NS, "a"))
    repo.write("files/run.sh", "#!/bin/sh\necho hi\n")
    repo.write("files/data.bin", "")
    (repo.path / "files" / "data.bin").write_bytes(b"\x00\x01\r\n\x02")  # binary: as it is
    repo.commit("first")


def _clone(repo: GitRepo, tmp_path, name: str, *config: str) -> GitRepo:
    options = [f"--config={c}" for c in config]
    repo.git("clone", "-q", *options, str(repo.path), str(tmp_path / name))
    clone = GitRepo.__new__(GitRepo)
    clone.path = tmp_path / name
    return clone


def test_a_crlf_clone_and_an_lf_clone_promote_the_same_bytes(repo: GitRepo, tmp_path):
    """core.autocrlf=true writes CRLF into the working tree: each clone used to upload its own
    line endings, and the other then planned updates while saying the target matched Git."""
    _origin(repo)
    crlf = _clone(repo, tmp_path, "crlf", "core.autocrlf=true")
    lf = _clone(repo, tmp_path, "lf", "core.autocrlf=false")
    assert (crlf.path / "files" / "run.sh").read_bytes() == b"#!/bin/sh\r\necho hi\r\n"
    fake = FakeKestra()
    with serve(fake) as url:
        first = run_cli("apply", str(crlf.path), env=_env(url))
        assert first.code == 0, first.out + first.err
        assert fake.files[("main", NS)] == {"/run.sh": b"#!/bin/sh\necho hi\n",
                                            "/data.bin": b"\x00\x01\r\n\x02"}
        assert "\r" not in fake.current()[(NS, "a")]
        for clone, ref in ((lf, ()), (crlf, ()), (crlf, ("--ref", "main"))):
            again = run_cli("apply", str(clone.path), *ref, env=_env(url))
            assert again.code == 0, again.out + again.err
            assert "No changes. The target matches Git" in again.out, again.out


def test_uncommitted_files_are_promoted_from_the_working_tree_with_allow_dirty(repo: GitRepo,
                                                                               tmp_path):
    _origin(repo)
    crlf = _clone(repo, tmp_path, "crlf", "core.autocrlf=true")
    (crlf.path / "files" / "run.sh").write_bytes(b"echo edited\r\n")
    fake = FakeKestra()
    with serve(fake) as url:
        refused = run_cli("apply", str(crlf.path), env=_env(url))
        assert refused.code == 1 and "files/run.sh" in refused.err, refused.err
        dirty = run_cli("apply", str(crlf.path), "--allow-dirty", env=_env(url))
        assert dirty.code == 0, dirty.out + dirty.err
        assert "plus uncommitted changes" in dirty.out
    # the edit as the working tree holds it; the files that do not differ, as Git holds them
    assert fake.files[("main", NS)] == {"/run.sh": b"echo edited\r\n",
                                        "/data.bin": b"\x00\x01\r\n\x02"}
    assert "\r" not in fake.current()[(NS, "a")]


def test_a_filtered_file_is_promoted_as_its_filter_gives_it(repo: GitRepo):
    """A filter (Git LFS, git-crypt) stores a pointer or a ciphertext in the commit: the
    content is what the filter writes into the working tree."""
    repo.git("config", "filter.rot.clean", "tr a-z n-za-m")
    repo.git("config", "filter.rot.smudge", "tr a-z n-za-m")
    repo.write(".gitattributes", "*.secret filter=rot\n")
    repo.write("kestra-promote.yml", SETTINGS)
    repo.write("flows/a.yml", flow_yaml(NS, "a"))
    repo.write("files/key.secret", "hello\n")
    repo.commit()
    assert repo.git("cat-file", "-p", "HEAD:files/key.secret") == "uryyb"
    fake = FakeKestra()
    with serve(fake) as url:
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
        assert fake.files[("main", NS)] == {"/key.secret": b"hello\n"}
        assert "No changes" in run_cli("plan", str(repo.path), env=_env(url)).out


def test_a_flow_committed_with_crlf_is_promoted_with_crlf_and_stays_in_sync(repo: GitRepo):
    repo.git("config", "core.autocrlf", "false")
    repo.write("kestra-promote.yml", "flows: [flows/]\n")
    (repo.path / "flows").mkdir()
    (repo.path / "flows" / "a.yml").write_bytes(flow_yaml(NS, "a").replace("\n", "\r\n").encode())
    repo.commit()
    fake = FakeKestra()
    with serve(fake) as url:
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
        assert fake.current()[(NS, "a")] == flow_yaml(NS, "a").replace("\n", "\r\n")
        again = run_cli("apply", str(repo.path), env=_env(url))
        assert "No changes. The target matches Git" in again.out, again.out
    assert fake.revision_count(NS, "a") == 1


def test_a_flow_the_target_holds_with_other_line_endings_is_an_update(repo: GitRepo):
    """Kestra compares sources line ending for line ending (a new revision for CRLF -> LF):
    a target holding CRLF where Git holds LF is not in sync, and the diff says why."""
    repo.write("kestra-promote.yml", "flows: [flows/]\n")
    repo.write("flows/a.yml", flow_yaml(NS, "a"))
    repo.commit()
    fake = FakeKestra()
    fake.seed_flow(flow_yaml(NS, "a").replace("\n", "\r\n"))
    with serve(fake) as url:
        plan = run_cli("plan", str(repo.path), env=_env(url))
        assert plan.code == 0, plan.err
        assert "update" in plan.out and "matches Git" not in plan.out, plan.out
        assert "Line endings differ: target: company.team/a has CRLF, git: flows/a.yml has LF" \
            in plan.out, plan.out
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
        assert fake.current()[(NS, "a")] == flow_yaml(NS, "a")
        again = run_cli("apply", str(repo.path), env=_env(url))
        assert "No changes. The target matches Git" in again.out, again.out


def test_a_preview_of_a_ref_promotes_the_commits_bytes(repo: GitRepo, tmp_path):
    _origin(repo)
    crlf = _clone(repo, tmp_path, "crlf", "core.autocrlf=true")
    fake = FakeKestra()
    with serve(fake) as url:
        up = run_cli("preview", "up", str(crlf.path), "--id", "42", "--ref", "main",
                     env=_env(url))
        assert up.code == 0, up.out + up.err
    (files,) = fake.files.values()
    assert files["/run.sh"] == b"#!/bin/sh\necho hi\n"
    assert all("\r" not in source for source in fake.current().values())
