"""Marking a verified commit with an annotated tag: pushed over real smart HTTP to Git's own
http-backend (no git on the client side), or with git to local and file:// repositories; and
read back with read_tags."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import httpx
import pytest
from conftest import GitRepo
from git_http_server import GitHttpServer
from kestra_promote.errors import SettingsError
from kestra_promote.git import tagpush
from kestra_promote.git.tagpush import TagExists, create_tag, read_tags

WHEN = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
TAGGER = {"tagger_name": "Kestra Promote", "tagger_email": "promote@example.com"}


@pytest.fixture
def served(git_http_server: GitHttpServer, repo: GitRepo) -> tuple[GitHttpServer, str, str]:
    """A served repository with two commits: (server, first commit, second commit)."""
    repo.write("a.yml", "id: a\n")
    first = repo.commit("first")
    repo.write("b.yml", "id: b\n")
    second = repo.commit("second")
    git_http_server.serve(repo.path)
    return git_http_server, first, second


def _create(server: GitHttpServer, name: str, commit: str, *, password: str | None = None,
            transport: httpx.BaseTransport | None = None, message: str = "verified") -> str:
    return create_tag(server.url(), name, commit, message, when=WHEN, username=server.username,
                      password=server.password if password is None else password,
                      transport=transport, **TAGGER)


class _Between(httpx.BaseTransport):
    """Real HTTP, with a hook that may rewrite an answer or act before a request is sent."""

    def __init__(self, before_post: Callable[[], None] = lambda: None,
                 answer: Callable[[httpx.Request, httpx.Response], httpx.Response]
                 = lambda request, response: response) -> None:
        self.real, self.before_post, self.answer = httpx.HTTPTransport(), before_post, answer
        self.sent: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.sent.append(request.read())
            self.before_post()
        response = self.real.handle_request(request)
        response.read()
        return self.answer(request, response)

    def close(self) -> None:
        self.real.close()


def test_a_tag_pushed_over_http_is_an_annotated_tag_git_reads_on_the_server(served):
    server, _, second = served
    tag_id = _create(server, "kestra-promote/verified/staging/1", second,
                     message="Verified on staging\n\nrun 42")
    assert server.git("flows.git", "rev-parse", "refs/tags/kestra-promote/verified/staging/1") \
        == tag_id
    assert server.git("flows.git", "cat-file", "-t", tag_id) == "tag"
    assert server.git("flows.git", "cat-file", "-p", tag_id) == (
        f"object {second}\ntype commit\ntag kestra-promote/verified/staging/1\n"
        f"tagger Kestra Promote <promote@example.com> {int(WHEN.timestamp())} +0000\n\n"
        "Verified on staging\n\nrun 42")
    assert server.git("flows.git", "rev-parse", tag_id + "^{commit}") == second
    server.git("flows.git", "fsck", "--strict")  # the pack and the tag are sound
    assert server.requests == [
        ("GET", "/flows.git/info/refs?service=git-receive-pack"),
        ("POST", "/flows.git/git-receive-pack")]


def test_the_push_asks_only_for_what_git_itself_asks(served):
    server, _, second = served
    seen = _Between()
    tag_id = _create(server, "v-side", second, transport=seen)
    size = int(seen.sent[0][:4], 16)
    command, flush = seen.sent[0][4:size], seen.sent[0][size:size + 8]
    assert command.split(b"\0")[0] == b"0" * 40 + b" " + tag_id.encode() + b" refs/tags/v-side"
    assert flush == b"0000PACK"
    caps = command.split(b"\0")[1].split()
    assert caps == [b"report-status", b"side-band-64k", b"quiet", b"object-format=sha1",
                    b"agent=kestra-promote"]


def test_a_server_without_side_band_still_reports(served):
    server, first, _ = served

    def plain(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.method != "GET":
            return response
        lines, data = [], response.content
        while data:
            size = int(data[:4], 16)
            lines.append(data[4:size] if size else None)
            data = data[size or 4:]
        framed = b"".join(b"0000" if line is None else b"%04x" % (len(line) + 4) + line
                          for line in [line.replace(b" side-band-64k", b"") if line else line
                                       for line in lines])
        return httpx.Response(200, content=framed, headers=response.headers)

    seen = _Between(answer=plain)
    tag_id = _create(server, "plain", first, transport=seen)
    assert b"side-band" not in seen.sent[0]
    assert server.git("flows.git", "rev-parse", "refs/tags/plain") == tag_id


def test_an_existing_tag_is_never_moved(served):
    server, first, second = served
    tag_id = _create(server, "verified/1", first)
    with pytest.raises(TagExists, match="tag verified/1 already exists") as raised:
        _create(server, "verified/1", second)
    assert isinstance(raised.value, SettingsError) and raised.value.name == "verified/1"
    assert server.git("flows.git", "rev-parse", "refs/tags/verified/1") == tag_id
    server.git("flows.git", "tag", "light", first)  # a lightweight tag counts as well
    with pytest.raises(TagExists):
        _create(server, "light", second)
    assert server.git("flows.git", "rev-parse", "refs/tags/light") == first


def test_a_tag_created_by_another_run_meanwhile_is_tag_exists(served):
    server, first, second = served
    other = lambda: server.git("flows.git", "tag", "race/1", first)  # noqa: E731
    with pytest.raises(TagExists):
        _create(server, "race/1", second, transport=_Between(before_post=other))
    assert server.git("flows.git", "rev-parse", "refs/tags/race/1") == first


def test_a_commit_the_server_lacks_is_refused_by_it(served):
    server, _, _ = served
    with pytest.raises(SettingsError, match="refused tag verified/1: missing necessary objects "
                       f"\\(commit {'c' * 40} is not in the repository"):
        _create(server, "verified/1", "c" * 40)
    assert server.git("flows.git", "tag") == ""


def test_a_wrong_password_is_a_clean_error_without_it(served, capsys):
    server, first, _ = served
    with pytest.raises(SettingsError) as raised:
        _create(server, "verified/1", first, password="wrong-secret-77")
    message = str(raised.value)
    assert "verified/1" in message and "HTTP 401" in message
    assert "may not push tags" in message
    for secret in ("wrong-secret-77", server.password):
        assert secret not in message and secret not in repr(raised.value)
    assert raised.value.__cause__ is None
    assert capsys.readouterr() == ("", "")
    assert "verified/1" not in server.git("flows.git", "tag")


def test_a_hook_refusing_the_tag_is_an_error_with_its_reason(served):
    server, first, _ = served
    hook = server.path() / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'tags are protected here: ask the release team' >&2\n"
                    "exit 1\n")
    hook.chmod(0o755)
    with pytest.raises(SettingsError, match="refused tag verified/1: pre-receive hook declined; "
                       "tags are protected here: ask the release team"):
        _create(server, "verified/1", first)
    assert server.git("flows.git", "tag") == ""


def test_a_server_message_is_one_safe_bounded_line(served):
    server, first, _ = served
    hook = server.path() / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nprintf 'no\\033[2J\\n::{\"outputs\":{}}::\\n' >&2\n"
                    "head -c 2000 /dev/zero | tr '\\\\0' x >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(SettingsError) as raised:
        _create(server, "verified/1", first)
    message = str(raised.value)
    assert "\n" not in message and "\x1b" not in message and "no\\x1b[2J" in message
    assert len(message) < 400


@pytest.mark.parametrize("answer", [
    httpx.Response(200, content=b"<html><body>Sign in</body></html>"),
    httpx.Response(200, content=b"001e# service=git-upload-pack\n0000"),
    httpx.Response(200, content=b"00"),
], ids=["html", "upload-pack", "cut"])
def test_an_answer_that_is_not_a_git_server_is_a_clean_error(answer: httpx.Response):
    page = httpx.MockTransport(lambda request: answer)
    with pytest.raises(SettingsError, match="did not answer as a Git server"):
        create_tag("https://git.example.com/acme/flows.git", "verified/1", "a" * 40, "m",
                   username="u", password="tok-123", transport=page, **TAGGER)


def test_a_push_answered_with_a_page_is_a_clean_error(served):
    server, first, _ = served

    def page(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, content=b"<html>proxy</html>")
        return response

    with pytest.raises(SettingsError, match="the Git server did not take it: not a push report"):
        _create(server, "verified/1", first, transport=_Between(answer=page))


def test_a_redirect_is_followed_on_the_same_server_only(served):
    server, first, _ = served
    moved = server.url("moved.git")
    server.path().rename(server.path("moved.git"))

    def redirect(request: httpx.Request) -> httpx.Response:
        if "/flows.git/" in request.url.path:
            return httpx.Response(301, headers={"Location": str(request.url).replace(
                "/flows.git/", "/moved.git/")})
        with httpx.Client() as client:  # the real server
            answer = client.send(client.build_request(request.method, request.url,
                                                      headers=request.headers,
                                                      content=request.read()))
            return httpx.Response(answer.status_code, headers=answer.headers,
                                  content=answer.content)

    tag_id = _create(server, "verified/1", first, transport=httpx.MockTransport(redirect))
    assert server.git("moved.git", "rev-parse", "refs/tags/verified/1") == tag_id
    assert moved + "/git-receive-pack" in [server.base_url + path for _, path in server.requests]

    seen = []

    def elsewhere(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host != "other.example.com":
            return httpx.Response(302, headers={"Location": "https://other.example.com/x.git"
                                                "/info/refs?service=git-receive-pack"})
        return httpx.Response(200, content=b"001f# service=git-receive-pack\n0000")

    with pytest.raises(SettingsError, match="redirects to another server"):
        _create(server, "verified/2", first, transport=httpx.MockTransport(elsewhere))
    assert [r.method for r in seen] == ["GET", "GET"]  # nothing pushed there,
    assert "authorization" not in seen[1].headers  # and the credentials never went there


@pytest.mark.parametrize("error", [httpx.ConnectTimeout, httpx.ConnectError, httpx.ReadTimeout])
def test_timeouts_and_connection_errors_are_clean_errors(error: type[httpx.HTTPError]):
    def fail(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    with pytest.raises(SettingsError, match=f"{error.__name__} talking to the Git server at "
                       "https://git.example.com/flows.git") as raised:
        create_tag("https://u:tok-123@git.example.com/flows.git", "verified/1", "a" * 40, "m",
                   password="tok-456", transport=httpx.MockTransport(fail), **TAGGER)
    assert "tok-" not in str(raised.value) and "tok-" not in repr(raised.value)


def test_names_commits_and_taggers_git_would_refuse():
    for name in ("a..b", "x y", "-x", "a/", "a.lock", "a:b", "", "a\nb", "a@{1}"):
        with pytest.raises(SettingsError, match="not a valid Git tag name"):
            tagpush.tag_body(name, "a" * 40, "m", **TAGGER)
    with pytest.raises(SettingsError, match="not a full commit id"):
        tagpush.tag_body("v1", "main", "m", **TAGGER)
    with pytest.raises(SettingsError, match="tagger"):
        tagpush.tag_body("v1", "a" * 40, "m", tagger_name="Eve <x>", tagger_email="e@x")


@pytest.fixture
def local(repo: GitRepo, tmp_path: Path) -> tuple[Path, str]:
    """A bare repository on disk (with a commit): (path, commit)."""
    repo.write("a.yml", "id: a\n")
    commit = repo.commit()
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True)
    return bare, commit


def _git(path: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(path), *args], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("form", ["path", "file-url"])
def test_tags_in_local_repositories_with_git(local, form: str):
    bare, commit = local
    url = str(bare) if form == "path" else f"file://{bare}"
    tag_id = create_tag(url, "verified/1", commit, "checked", when=WHEN, **TAGGER)
    assert _git(bare, "rev-parse", "refs/tags/verified/1") == tag_id
    assert tag_id == tagpush.object_id("tag", tagpush.tag_body(
        "verified/1", commit, "checked", when=WHEN, **TAGGER))  # the same object as over HTTP
    assert _git(bare, "cat-file", "tag", tag_id).endswith("\n\nchecked")
    with pytest.raises(TagExists):
        create_tag(url, "verified/1", commit, "again", **TAGGER)
    assert _git(bare, "rev-parse", "refs/tags/verified/1") == tag_id
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'no tags from here' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(SettingsError, match="refused tag verified/2: .*no tags from here"):
        create_tag(url, "verified/2", commit, "m", **TAGGER)
    with pytest.raises(SettingsError, match="has no commit " + "b" * 40):
        create_tag(url, "verified/3", "b" * 40, "m", **TAGGER)
    with pytest.raises(SettingsError, match="missing is not a Git repository"):
        create_tag(str(bare.parent / "missing"), "verified/3", commit, "m", **TAGGER)


def test_a_repository_git_reaches_only_by_url_gets_the_commit_fetched(local):
    """As over SSH: the commit is fetched into a scratch repository, the tag pushed from it."""
    bare, commit = local
    body = tagpush.tag_body("v9", commit, "m", when=WHEN, **TAGGER)
    tag_id = tagpush._push_with_git(f"file://{bare}", "v9", commit, body, reach=None)
    assert _git(bare, "rev-parse", "refs/tags/v9") == tag_id
    with pytest.raises(SettingsError, match="cannot fetch commit"):
        tagpush._push_with_git("git@git.invalid:acme/flows.git", "v9", commit, body, reach=None)


def test_read_tags_gives_message_and_date_and_takes_lightweight_tags(local, monkeypatch):
    bare, commit = local
    when = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    subprocess.run(["git", "--git-dir", str(bare), "tag", "-a", "stage/prod/1", "-m",
                    "first\n\nbody", commit], check=True,
                   env={"GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@example.com",
                        "GIT_COMMITTER_DATE": when.isoformat(), "PATH": "/usr/bin:/bin"})
    tag_id = create_tag(str(bare), "stage/prod/2", commit, "second", when=WHEN, **TAGGER)
    _git(bare, "tag", "stage/prod/light", commit)
    _git(bare, "tag", "other/1", commit)
    tags = read_tags(f"file://{bare}", "stage/prod/")
    assert set(tags) == {"stage/prod/1", "stage/prod/2", "stage/prod/light"}
    assert tags["stage/prod/1"].message == "first\n\nbody\n"
    assert tags["stage/prod/1"].date == when and tags["stage/prod/1"].date.utcoffset() \
        == timedelta(hours=2)
    assert tags["stage/prod/2"] == tagpush.TagInfo("stage/prod/2", commit, tag_id, "second\n",
                                                   WHEN)
    assert tags["stage/prod/light"] == tagpush.TagInfo("stage/prod/light", commit, None, None,
                                                       None)
    assert read_tags(str(bare), "none/") == {}
    monkeypatch.chdir(bare.parent)
    assert set(read_tags(bare.name, "stage/prod/")) == set(tags)  # a path relative to here
    create_tag(bare.name, "stage/prod/3", commit, "third", **TAGGER)
    assert _git(bare, "cat-file", "-t", "refs/tags/stage/prod/3") == "tag"


def test_read_tags_from_a_clone_leaves_the_clone_unchanged(served, tmp_path):
    server, first, second = served
    _create(server, "verified/prod/1", first, message="one")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", server.auth_url(), str(clone)], check=True)
    tag_id = _create(server, "verified/prod/2", second, message="two")  # not in the clone yet

    def state() -> tuple[str, list[str]]:
        refs = subprocess.run(["git", "-C", str(clone), "for-each-ref"], check=True,
                              capture_output=True, text=True).stdout
        return refs, sorted(str(p.relative_to(clone)) for p in (clone / ".git").rglob("*")
                            if p.is_file() and p.name != "index")

    before = state()
    tags = read_tags("origin", "verified/prod/", git_dir=clone)
    assert tags["verified/prod/2"] == tagpush.TagInfo("verified/prod/2", second, tag_id, "two\n",
                                                      WHEN)
    assert tags["verified/prod/1"].commit == first and tags["verified/prod/1"].message == "one\n"
    assert state() == before
    with pytest.raises(SettingsError) as raised:
        read_tags(server.url().replace("//", f"//{server.username}:bad-pw-9@"), "v", git_dir=clone)
    assert "bad-pw-9" not in str(raised.value)
