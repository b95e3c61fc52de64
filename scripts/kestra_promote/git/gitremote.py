"""What a Git repository holds, asked of the repository itself: its tags (and their commits).

A webhook says "something changed", never what to promote: when the promotion follows tags, it
promotes the newest tag matching the pattern, by version order, as the repository lists it, not
the tag a request names. Listing refs needs no clone: over HTTP(S), Git's "smart" protocol
advertises every ref in one GET (``info/refs?service=git-upload-pack``); a local repository,
or one reached over SSH (with the worker's own key), is asked with ``git ls-remote``.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from typing import Iterable

import httpx

from kestra_promote.errors import SettingsError

_VERSION_PART = re.compile(r"\d+|[^\d.+-]+")


def _pkt_lines(data: bytes) -> Iterable[bytes]:
    """The payloads of Git's pkt-line framing: a 4-hex-digit length (including itself), then
    that many bytes; "0000" is a flush."""
    at = 0
    while at + 4 <= len(data):
        size = int(data[at:at + 4], 16)
        if size == 0:
            at += 4
            continue
        if size < 4 or at + size > len(data):
            raise ValueError("truncated pkt-line")
        yield data[at + 4:at + size]
        at += size


def parse_advertisement(data: bytes) -> dict[str, str]:
    """ref name -> commit, from a smart-HTTP ref advertisement (annotated tags peeled)."""
    refs: dict[str, str] = {}
    for line in _pkt_lines(data):
        text = line.split(b"\0", 1)[0].decode("utf-8", errors="replace").rstrip("\n")
        if text.startswith("#") or " " not in text:
            continue
        sha, name = text.split(" ", 1)
        if name.endswith("^{}"):
            refs[name[:-3]] = sha  # the commit an annotated tag points to
        else:
            refs.setdefault(name, sha)
    return refs


def _http_refs(url: str, username: str | None, password: str | None,
               transport: httpx.BaseTransport | None) -> dict[str, str]:
    auth = (username or "", password) if password else None
    endpoint = url.rstrip("/") + "/info/refs"
    try:
        with httpx.Client(auth=auth, timeout=30, follow_redirects=True,
                          transport=transport) as client:
            answer = client.get(endpoint, params={"service": "git-upload-pack"})
    except httpx.HTTPError as exc:
        raise SettingsError(f"cannot list the tags of the repository: {type(exc).__name__}") from None
    if answer.status_code != 200 or b"git-upload-pack" not in answer.content[:64]:
        raise SettingsError(f"cannot list the tags of the repository: HTTP {answer.status_code} "
                            "(check promote_repo_url and the Git credentials)")
    try:
        return parse_advertisement(answer.content)
    except ValueError as exc:
        raise SettingsError(f"cannot list the tags of the repository: {exc}") from None


def _local_refs(path: str, pattern: str = "--tags") -> dict[str, str]:
    try:
        # never a prompt (a password, an unknown host key): a task has nobody to answer it
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0",
               "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")}
        done = subprocess.run(["git", "ls-remote", *([pattern] if pattern == "--tags" else []),
                               "--", path, *([] if pattern == "--tags" else [pattern])],
                              capture_output=True,
                              text=True, check=False, timeout=60, stdin=subprocess.DEVNULL,
                              env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SettingsError(f"cannot list the tags of {path}: {exc}") from None
    if done.returncode != 0:
        raise SettingsError(f"cannot list the tags of {path} with git ls-remote (over SSH it "
                            "needs the worker's own key; an HTTPS promote_repo_url uses the Git "
                            "credentials)")
    refs: dict[str, str] = {}
    for line in done.stdout.splitlines():
        sha, _, name = line.partition("\t")
        if name.endswith("^{}"):
            refs[name[:-3]] = sha
        elif name:
            refs.setdefault(name, sha)
    return refs


def ref_commit(url: str, ref: str, *, username: str | None = None,
               password: str | None = None,
               transport: httpx.BaseTransport | None = None) -> str | None:
    """The commit ``ref`` (a full ref name) points to in the repository at ``url`` now, or
    None when it has no such ref."""
    if url.startswith(("http://", "https://")):
        refs = _http_refs(url, username, password, transport)
    else:
        refs = _local_refs(url[len("file://"):] if url.startswith("file://") else url, ref)
    return refs.get(ref)


def list_tags(url: str, *, username: str | None = None, password: str | None = None,
              transport: httpx.BaseTransport | None = None) -> dict[str, str]:
    """tag name -> commit, as the repository at ``url`` lists them now."""
    if url.startswith(("http://", "https://")):
        refs = _http_refs(url, username, password, transport)
    elif url.startswith("file://"):
        refs = _local_refs(url[len("file://"):])
    else:  # a local path, or SSH: git's own client, with the worker's keys
        refs = _local_refs(url)
    return {name[len("refs/tags/"):]: sha for name, sha in refs.items()
            if name.startswith("refs/tags/")}


def version_key(tag: str) -> tuple:
    """Version order: numbers compare as numbers (v1.10 after v1.9), and a pre-release
    (v2.0.0-rc.1) comes before its release (v2.0.0)."""
    core, dash, pre = tag.partition("-")
    core = core.partition("+")[0]

    def parts(text: str) -> tuple:
        return tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                     for p in _VERSION_PART.findall(text))

    return (parts(core), 0 if dash else 1, parts(pre))


def newest_tag(tags: Iterable[str], pattern: str) -> str | None:
    """The newest tag matching ``pattern`` (fnmatch), by version order; None if none does."""
    matching = [t for t in tags if fnmatch.fnmatchcase(t, pattern)]
    return max(matching, key=lambda t: (version_key(t), t)) if matching else None
