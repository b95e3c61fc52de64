"""One commit's files fetched over Git's smart HTTP protocol with no git on the client side:
against Git's own http-backend (the files and their executable bits are those `git archive`
gives), and against crafted answers for what a real Git server would never send."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import tarfile
import zlib
from pathlib import Path

import httpx
import pytest
from conftest import GitRepo
from git_http_server import GitHttpServer
from kestra_promote.errors import SettingsError
from kestra_promote.git.smarthttp import pkt
from kestra_promote.git.treefetch import checked_out, checkout_commit

LINES = "".join(f"  - id: task{i}\n    type: io.kestra.plugin.core.log.Log\n" for i in range(80))


def _fetch(server: GitHttpServer, commit: str, dest: Path, **options) -> None:
    options.setdefault("password", server.password)
    assert checkout_commit(server.url(), commit, dest, username=server.username,
                           **options) is None  # the commit's own bytes: nothing more to read


def _archive(repo: GitRepo, commit: str) -> dict[str, tuple[bytes, bool]]:
    """path -> (bytes, executable) as `git archive` gives the commit."""
    tar = subprocess.run(["git", "-C", str(repo.path), "archive", "--format=tar", commit],
                         capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        return {m.name: (archive.extractfile(m).read(), bool(m.mode & 0o100))
                for m in archive.getmembers() if m.isfile()}


def _written(folder: Path) -> dict[str, tuple[bytes, bool]]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), os.access(p, os.X_OK))
            for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def history(repo: GitRepo) -> tuple[str, str]:
    """(an older commit with nested folders, an executable and binary bytes; the branch tip)."""
    repo.write("kestra-promote.yml", "name: demo\n")
    repo.write("flows/a.yml", "id: a\nnamespace: company.team\ntasks:\n" + LINES)
    repo.write("flows/b.yml", "id: b\nnamespace: company.team\ntasks:\n" + LINES + "# b\n")
    repo.write("flows/deep/er/c.yml", "id: c\r\nnamespace: company.team\r\n")
    script = repo.write("files/run.sh", "#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    (repo.path / "files" / "blob.bin").write_bytes(bytes(range(256)) * 40)
    (repo.path / "files" / "empty").write_bytes(b"")
    older = repo.commit("older")
    repo.write("flows/a.yml", "id: a\nnamespace: company.team\n")
    (repo.path / "files" / "run.sh").unlink()
    return older, repo.commit("tip")


def test_an_older_commit_is_written_as_git_archive_gives_it_in_two_requests(
        git_http_server, repo, history, tmp_path):
    older, tip = history
    git_http_server.serve(repo.path)
    dest = tmp_path / "out"
    _fetch(git_http_server, older, dest)
    assert _written(dest) == _archive(repo, older)
    assert _written(dest)["files/run.sh"][1] and not _written(dest)["flows/a.yml"][1]
    assert git_http_server.requests == [
        ("GET", "/flows.git/info/refs?service=git-upload-pack"),
        ("POST", "/flows.git/git-upload-pack")]
    tip_dest = tmp_path / "tip"
    _fetch(git_http_server, tip, tip_dest)
    assert _written(tip_dest) == _archive(repo, tip)


def test_only_the_folder_asked_for_is_written(git_http_server, repo, history, tmp_path):
    older, _ = history
    git_http_server.serve(repo.path)
    _fetch(git_http_server, older, tmp_path / "out", under="flows/")
    assert sorted(_written(tmp_path / "out")) == ["flows/a.yml", "flows/b.yml",
                                                  "flows/deep/er/c.yml"]
    with pytest.raises(SettingsError, match=r"nowhere holds no file at commit"):
        _fetch(git_http_server, older, tmp_path / "none", under="nowhere")


def test_an_error_about_the_fetched_files_names_the_clone_folder(git_http_server, repo, history,
                                                               tmp_path):
    older, _ = history
    git_http_server.serve(repo.path)
    with pytest.raises(SettingsError) as raised:
        with checked_out(git_http_server.url(), older, "flows", shown_as="/work/repo/flows",
                         username=git_http_server.username,
                         password=git_http_server.password) as (tree, commit, committed):
            assert commit == older and committed is None
            assert sorted(p.name for p in Path(tree).iterdir()) == ["a.yml", "b.yml", "deep"]
            raise SettingsError(f"{tree}/a.yml: not a flow")
    assert str(raised.value) == f"/work/repo/flows/a.yml: not a flow (at {older[:12]})"
    assert not Path(tree).exists()  # the temporary folder is gone


def test_a_wrong_password_is_named_and_never_shown(git_http_server, repo, history, tmp_path):
    git_http_server.serve(repo.path)
    with pytest.raises(SettingsError) as raised:
        _fetch(git_http_server, history[0], tmp_path / "out", password="wrong-secret-9")
    assert "HTTP 401" in str(raised.value) and "Git credentials" in str(raised.value)
    assert "wrong-secret-9" not in str(raised.value) and "wrong-secret-9" not in repr(raised.value)
    url = git_http_server.url().replace("://", "://git-user:in-url-secret@")
    with pytest.raises(SettingsError) as raised:
        checkout_commit(url, history[0], tmp_path / "out", transport=httpx.MockTransport(
            lambda request: httpx.Response(403)))
    assert "HTTP 403" in str(raised.value) and "in-url-secret" not in str(raised.value)


def test_a_commit_the_server_will_not_give_names_the_manual_rollback(
        git_http_server, repo, history, tmp_path):
    git_http_server.serve(repo.path)
    repo.write("local.yml", "id: local\n")
    local = repo.commit("never pushed")
    with pytest.raises(SettingsError, match=rf"will not give commit {local[:12]} \(.*not our "
                       rf"ref.*\).*kestra-promote apply --ref {local}"):
        _fetch(git_http_server, local, tmp_path / "out")
    with pytest.raises(SettingsError, match="not a full commit id"):
        _fetch(git_http_server, local[:12], tmp_path / "out")


def test_symlinks_and_submodules_are_refused_by_path(git_http_server, repo, tmp_path):
    repo.write("flows/a.yml", "id: a\n")
    os.symlink("a.yml", repo.path / "flows" / "link.yml")
    linked = repo.commit("a link")
    repo.git("rm", "-q", "flows/link.yml")
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{linked},flows/sub")
    repo.git("commit", "-q", "-m", "a submodule")
    sub = repo.git("rev-parse", "HEAD")
    git_http_server.serve(repo.path)
    with pytest.raises(SettingsError, match=r"symbolic link at flows/link.yml"):
        _fetch(git_http_server, linked, tmp_path / "one")
    with pytest.raises(SettingsError, match=r"submodule \(another repository\) at flows/sub"):
        _fetch(git_http_server, sub, tmp_path / "two")


# ---- crafted answers -----------------------------------------------------------------------

def _object(kind: str, body: bytes) -> tuple[str, int, bytes]:
    sha = hashlib.sha1(f"{kind} {len(body)}\0".encode() + body).hexdigest()
    return sha, {"commit": 1, "tree": 2, "blob": 3}[kind], body


def _pack(objects: list[tuple[str, int, bytes]]) -> bytes:
    data = bytearray(b"PACK" + struct.pack(">II", 2, len(objects)))
    for _, kind, body in objects:
        size = len(body)
        byte, size = (kind << 4) | (size & 0x0F), size >> 4
        while size:
            data.append(byte | 0x80)
            byte, size = size & 0x7F, size >> 7
        data.append(byte)
        data += zlib.compress(body)
    return bytes(data) + hashlib.sha1(data).digest()


def _server(pack: bytes, head: str, band: bool) -> httpx.MockTransport:
    """A Git server that advertises ``head`` and answers any want with ``pack``."""
    caps = b"shallow ofs-delta" + (b" side-band-64k" if band else b"")

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, content=pkt(b"# service=git-upload-pack\n") + b"0000"
                                  + pkt(head.encode() + b" refs/heads/main\0" + caps + b"\n")
                                  + b"0000")
        body = pkt(b"shallow " + head.encode() + b"\n") + b"0000" + pkt(b"NAK\n")
        if band:
            return httpx.Response(200, content=body + pkt(b"\1" + pack) + b"0000")
        return httpx.Response(200, content=body + pack)
    return httpx.MockTransport(answer)


def _commit_with(entries: list[tuple[bytes, bytes, str]]) -> tuple[str, bytes]:
    """(commit id, pack) of a commit whose root tree holds ``entries`` (mode, name, id) and
    one blob."""
    blob = _object("blob", b"id: evil\n")
    tree = _object("tree", b"".join(mode + b" " + name + b"\0" + bytes.fromhex(sha or blob[0])
                                    for mode, name, sha in entries))
    commit = _object("commit", f"tree {tree[0]}\nauthor a <a@b> 0 +0000\ncommitter a <a@b> 0 "
                     "+0000\n\nevil\n".encode())
    return commit[0], _pack([commit, tree, blob])


@pytest.mark.parametrize("name", [b"..", b"../outside.yml", b"/etc/x", b".git", b".GIT", b"."])
def test_a_tree_entry_that_would_leave_the_folder_is_refused(tmp_path, name):
    commit, pack = _commit_with([(b"100644", name, "")])
    dest = tmp_path / "deep" / "out"
    with pytest.raises(SettingsError, match=r"holds an entry Git would never check out"):
        checkout_commit("https://git.example/flows.git", commit, dest,
                        transport=_server(pack, commit, band=True))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_crafted_pack_without_side_band_is_read(tmp_path):
    commit, pack = _commit_with([(b"100755", b"run.sh", ""), (b"100644", b"a.yml", "")])
    checkout_commit("https://git.example/flows.git", commit, tmp_path,
                    transport=_server(pack, commit, band=False))
    assert _written(tmp_path) == {"run.sh": (b"id: evil\n", True), "a.yml": (b"id: evil\n", False)}


def test_a_refusal_in_a_successful_answer_names_the_manual_rollback(tmp_path):
    commit, pack = _commit_with([(b"100644", b"a.yml", "")])
    server = _server(pack, commit, band=True)

    def refusing(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, content=pkt(b"ERR upload-pack: not our ref " +
                                                   b"b" * 40 + b"\n"))
        return server.handle_request(request)
    with pytest.raises(SettingsError, match=r"will not give commit bbbbbbbbbbbb \(upload-pack: "
                       r"not our ref b{40}\): .* `kestra-promote apply --ref b{40}`"):
        checkout_commit("https://git.example/flows.git", "b" * 40, tmp_path,
                        transport=httpx.MockTransport(refusing))


def test_a_damaged_pack_is_refused(tmp_path):
    commit, pack = _commit_with([(b"100644", b"a.yml", "")])
    broken = pack[:20] + bytes([pack[20] ^ 1]) + pack[21:]
    with pytest.raises(SettingsError, match=r"checksum does not match"):
        checkout_commit("https://git.example/flows.git", commit, tmp_path,
                        transport=_server(broken, commit, band=True))


def test_an_html_page_and_no_answer_are_told_apart(tmp_path):
    page = httpx.MockTransport(lambda request: httpx.Response(
        200, headers={"content-type": "text/html"}, content=b"<html>Sign in</html>"))
    with pytest.raises(SettingsError, match=r"did not answer as a Git server \(HTTP 200, an HTML "
                       r"page; check promote_repo_url\)"):
        checkout_commit("https://git.example/flows.git", "a" * 40, tmp_path, transport=page)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)
    with pytest.raises(SettingsError, match=r"cannot fetch commit aaaaaaaaaaaa from "
                       r"https://git.example/flows.git: no answer within 60 s"):
        checkout_commit("https://git.example/flows.git", "a" * 40, tmp_path,
                        transport=httpx.MockTransport(slow))
