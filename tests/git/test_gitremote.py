"""Listing a repository's tags from the repository itself: smart HTTP and local."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from conftest import GitRepo
from kestra_promote.errors import SettingsError
from kestra_promote.git.gitremote import list_tags, newest_tag, parse_advertisement, version_key


def _advertisement(path) -> bytes:
    """What a Git server answers to GET info/refs?service=git-upload-pack (made by git itself)."""
    refs = subprocess.run(["git", "upload-pack", "--stateless-rpc", "--advertise-refs", str(path)],
                          capture_output=True, check=True).stdout
    header = b"# service=git-upload-pack\n"
    return b"%04x" % (len(header) + 4) + header + b"0000" + refs


@pytest.fixture
def tagged(repo: GitRepo) -> GitRepo:
    repo.write("a.yml", "id: a\n")
    first = repo.commit("first")
    repo.git("tag", "v1.0")  # lightweight
    repo.write("b.yml", "id: b\n")
    repo.commit("second")
    repo.git("tag", "-a", "v1.1", "-m", "annotated")  # peeled to its commit
    repo.first = first  # type: ignore[attr-defined]
    return repo


def test_tags_over_smart_http_with_credentials(tagged: GitRepo):
    head = tagged.git("rev-parse", "HEAD")
    seen = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("authorization") != httpx.BasicAuth("git", "tok")._auth_header:
            return httpx.Response(401)
        return httpx.Response(200, content=_advertisement(tagged.path),
                              headers={"content-type": "application/x-git-upload-pack-advertisement"})

    tags = list_tags("https://git.example.com/acme/flows.git", username="git", password="tok",
                     transport=httpx.MockTransport(server))
    assert tags == {"v1.0": tagged.first, "v1.1": head}  # type: ignore[attr-defined]
    assert str(seen[0].url) == ("https://git.example.com/acme/flows.git/info/refs"
                                "?service=git-upload-pack")
    with pytest.raises(SettingsError, match="HTTP 401"):
        list_tags("https://git.example.com/acme/flows.git", username="git", password="bad",
                  transport=httpx.MockTransport(server))


def test_an_html_page_or_a_cut_answer_is_a_clean_error(tagged: GitRepo):
    page = httpx.MockTransport(lambda r: httpx.Response(200, content=b"<html>login</html>"))
    with pytest.raises(SettingsError, match="HTTP 200"):
        list_tags("https://git.example.com/x.git", transport=page)
    cut = _advertisement(tagged.path)[:-30]
    with pytest.raises(ValueError, match="truncated"):
        parse_advertisement(cut)


def test_local_repositories_and_other_urls(tagged: GitRepo):
    assert set(list_tags(str(tagged.path))) == {"v1.0", "v1.1"}
    assert set(list_tags(f"file://{tagged.path}")) == {"v1.0", "v1.1"}
    # over SSH, git's own client with the worker's keys: a clean error when it cannot
    with pytest.raises(SettingsError, match="with git ls-remote"):
        list_tags("git@git.invalid:acme/flows.git")


@pytest.mark.parametrize(
    ("older", "newer"),
    [("v1.9", "v1.10"), ("v1.0", "v2"), ("v2.0.0-rc.1", "v2.0.0"), ("v2.0.0-rc.2", "v2.0.0-rc.10"),
     ("1.2.3", "1.2.4"), ("v1.0.0", "v1.0.1-beta")],
)
def test_version_order(older: str, newer: str):
    assert version_key(older) < version_key(newer)
    assert newest_tag([newer, older], "*") == newer


def test_newest_tag_only_among_those_matching():
    assert newest_tag(["v1", "v9", "release-99"], "v*") == "v9"
    assert newest_tag(["release-1"], "v*") is None
