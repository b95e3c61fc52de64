"""Listing a repository's tags from the repository itself: smart HTTP and local."""

from __future__ import annotations

import re
import subprocess

import httpx
import pytest
from conftest import GitRepo
from kestra_promote.errors import SettingsError
from kestra_promote.git.gitremote import (
    VERSION_RULE,
    list_tags,
    newest_tag,
    parse_advertisement,
    version_key,
    version_rule,
)


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
     ("1.2.3", "1.2.4"), ("v1.0.0", "v1.0.1-beta"), ("v1.9.3", "v1.10.0"), ("v2.0.0", "v10.0"),
     ("v1.2.3", "v1.2.4+build.1"), ("v1.0.0-alpha", "v1.0.0-alpha.1"),
     ("v1.0.0-alpha.1", "v1.0.0-alpha.beta"), ("v1.0.0-alpha.beta", "v1.0.0-beta"),
     ("v1.0.0-beta.2", "v1.0.0-beta.11"), ("v1.0.0-beta.11", "v1.0.0-rc.1"),
     ("v1.0.0-rc.1", "v1.0.0")],
)
def test_version_order(older: str, newer: str):
    assert version_key(older) < version_key(newer)
    pattern = "v*" if newer.startswith("v") else "*"
    assert newest_tag([newer, older], pattern, prereleases=True) == newer
    assert newest_tag([older, newer], pattern, prereleases=True) == newer


def test_a_stray_tag_never_outranks_a_version():
    # before, letters ranked above digits: a lightweight tag pushed from an unreviewed branch
    # won over every release
    assert newest_tag(["v1.10.0", "vscode-spike"], "v*") == "v1.10.0"
    assert newest_tag(["vscode-spike", "v1.10.0"], "v*") == "v1.10.0"
    assert newest_tag(["v2.0.0", "vnext", "v2.0.0.1", "v2.x", "v", "v-1", "v3beta", "v.4"],
                      "v*") == "v2.0.0"
    assert newest_tag(["vscode-spike", "vnext"], "v*") is None
    assert version_key("vscode-spike") is None and version_key("vnext") is None


def test_the_newest_of_the_review_cases():
    tags = ["vscode-spike", "vnext", "v2.0.0-rc.1", "v1.10.0", "v1.9.3", "v10.0", "v1.2.3+build.5"]
    assert newest_tag(tags, "v*") == "v10.0"
    assert newest_tag([t for t in tags if t != "v10.0"], "v*") == "v1.10.0"
    assert newest_tag(["v1.2.3+build.5", "v1.2.2"], "v*") == "v1.2.3+build.5"  # a release


def test_pre_releases_only_when_allowed():
    tags = ["v1.9.3", "v1.10.0", "v2.0.0-rc.1", "v2.0.0-rc.2"]
    assert newest_tag(tags, "v*") == "v1.10.0"
    assert newest_tag(tags, "v*", prereleases=False) == "v1.10.0"
    assert newest_tag(tags, "v*", prereleases=True) == "v2.0.0-rc.2"
    assert newest_tag([*tags, "v2.0.0"], "v*", prereleases=True) == "v2.0.0"
    assert newest_tag(["v2.0.0-rc.1"], "v*") is None


def test_the_same_version_is_decided_by_the_tag_name():
    # v1.0 and v1.0.0 are one version, and build metadata plays no part: the greatest name wins
    assert newest_tag(["v1.0", "v1.0.0"], "v*") == "v1.0.0"
    assert newest_tag(["v1.0.0", "v1.0"], "v*") == "v1.0.0"
    assert newest_tag(["v1.0.0+b.2", "v1.0.0+b.1", "v1.0.0"], "v*") == "v1.0.0+b.2"
    assert newest_tag(["v1.0.0+b.1", "v1.0.0", "v1.0.0+b.2"], "v*") == "v1.0.0+b.2"


def test_the_version_follows_the_literal_part_of_the_pattern():
    tags = ["release-1.2", "release-1.10", "release-candidate", "release-2.0-rc.1", "v9"]
    assert newest_tag(tags, "release-*") == "release-1.10"
    assert newest_tag(["v1.2.3", "v1.10.0", "v2.0.0"], "v1.*") == "v1.10.0"  # prefix v, not v1.
    assert newest_tag(["v10", "v1", "v1x"], "v1?") == "v10"


def test_a_pattern_with_no_literal_prefix_takes_bare_versions():
    tags = ["1.2.3", "1.10.0", "v9.0.0", "latest", "2.0.0-rc.1"]
    assert newest_tag(tags, "*") == "1.10.0"
    assert newest_tag(tags, "*", prereleases=True) == "2.0.0-rc.1"
    assert newest_tag(["v9.0.0", "latest"], "*") is None


def test_a_custom_version_regex():
    tags = ["v1.2.3-stable", "v1.10.0-stable", "v2.0.0", "v9.9.9-stable-spike", "v3.0.0-stable"]
    stable = r"v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)-stable"
    assert newest_tag(tags, "v*", version=stable) == "v3.0.0-stable"
    assert newest_tag(tags, "v*") == "v2.0.0"  # the default rule: "-stable" is a pre-release
    # the pattern still applies, and the regex must match the whole name
    assert newest_tag(tags, "v1*", version=stable) == "v1.10.0-stable"
    assert newest_tag(["v3.0.0-stable-spike"], "v*", version=stable) is None
    dated = r"release-(?P<major>\d{4})(?P<minor>\d{2})(?P<patch>\d{2})(?:-(?P<prerelease>.+))?"
    tags = ["release-20240105", "release-20231231", "release-2025", "release-20250101-rc.1"]
    assert newest_tag(tags, "release-*", version=dated) == "release-20240105"
    assert newest_tag(tags, "release-*", version=dated, prereleases=True) == (
        "release-20250101-rc.1")


def test_a_name_that_is_no_version_under_a_custom_regex_is_ignored():
    loose = r"v(?P<major>\w+)(?:-(?P<prerelease>.*))?"
    # what the regex lets through must still be numbers and SemVer identifiers
    assert newest_tag(["v1", "vnext", "v\u00b2", "v2-bad..id"], "v*", version=loose) == "v1"
    assert newest_tag(["v1", "v2-bad..id"], "v*", version=loose, prereleases=True) == "v1"
    assert newest_tag(["v1", "v2-rc.1"], "v*", version=loose, prereleases=True) == "v2-rc.1"
    assert newest_tag(["vnext"], "v*", version=loose) is None


@pytest.mark.parametrize(
    ("regex", "why"),
    [("v(?P<major>\\d+", "not a valid regular expression"),
     ("v[", "not a valid regular expression"),
     ("v\\d+", "no named group 'major'"),
     ("v(?P<major>\\d+)\\.(?P<minnor>\\d+)", "minnor")],
)
def test_a_bad_custom_regex_is_a_settings_error_naming_it(regex: str, why: str):
    with pytest.raises(SettingsError, match=re.escape(repr(regex))) as raised:
        newest_tag([], "v*", version=regex)  # even with no tag to look at
    assert why in str(raised.value)
    with pytest.raises(SettingsError):
        version_rule("v*", regex)


def test_the_default_rule_is_the_documented_constant():
    assert version_rule("v*").pattern == "v" + VERSION_RULE
    assert version_rule("release-*").pattern == re.escape("release-") + VERSION_RULE
    assert version_rule("*").pattern == VERSION_RULE


def test_newest_tag_only_among_those_matching():
    assert newest_tag(["v1", "v9", "release-99"], "v*") == "v9"
    assert newest_tag(["release-1"], "v*") is None
