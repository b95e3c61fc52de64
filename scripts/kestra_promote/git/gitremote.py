"""What a Git repository holds, asked of the repository itself: its tags (and their commits).

A webhook says "something changed", never what to promote: when the promotion follows tags, it
promotes the newest tag matching the pattern, by version order, as the repository lists it, not
the tag a request names. Only tags whose names are versions count (``v1.10.0`` for ``v*``, never
``vscode-spike`` or ``vnext``), and pre-releases only when the caller allows them.

Listing refs needs no clone: over HTTP(S), Git's "smart" protocol advertises every ref in one
GET (``info/refs?service=git-upload-pack``); a local repository, or one reached over SSH (with
the worker's own key), is asked with ``git ls-remote``.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from typing import Iterable, Mapping

import httpx

from kestra_promote.errors import SettingsError
from kestra_promote.git.smarthttp import pkt_lines


def parse_advertisement(data: bytes) -> dict[str, str]:
    """ref name -> commit, from a smart-HTTP ref advertisement (annotated tags peeled)."""
    refs: dict[str, str] = {}
    for line in pkt_lines(data):
        if line is None:
            continue
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


def _git_env() -> dict[str, str]:
    # never a prompt (a password, an unknown host key): nobody may be there to answer it
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0",
            "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")}


def _listed(output: str) -> dict[str, str]:
    """ref name -> commit, from ``git ls-remote``'s output (annotated tags peeled)."""
    refs: dict[str, str] = {}
    for line in output.splitlines():
        sha, _, name = line.partition("\t")
        if name.endswith("^{}"):
            refs[name[:-3]] = sha
        elif name:
            refs.setdefault(name, sha)
    return refs


def _local_refs(path: str, pattern: str = "--tags") -> dict[str, str]:
    try:
        done = subprocess.run(["git", "ls-remote", *([pattern] if pattern == "--tags" else []),
                               "--", path, *([] if pattern == "--tags" else [pattern])],
                              capture_output=True,
                              text=True, check=False, timeout=60, stdin=subprocess.DEVNULL,
                              env=_git_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SettingsError(f"cannot list the tags of {path}: {exc}") from None
    if done.returncode != 0:
        raise SettingsError(f"cannot list the tags of {path} with git ls-remote (over SSH it "
                            "needs the worker's own key; an HTTPS promote_repo_url uses the Git "
                            "credentials)")
    return _listed(done.stdout)


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


def has_origin(folder: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether the repository holding ``folder`` has a remote ``origin``."""
    return subprocess.run(["git", "-C", folder, "remote", "get-url", "origin"],
                          capture_output=True, check=False, timeout=30,
                          stdin=subprocess.DEVNULL, env=env or _git_env()).returncode == 0


def _last_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", lines[-1] if lines else "failed")


def origin_create_tag(folder: str, name: str, commit: str, message: str, *,
                      tagger: tuple[str, str]) -> None:
    """Create the annotated tag ``name`` on ``commit`` in the repository holding ``folder`` and
    push it to its remote ``origin`` (with git's own credentials), never moving a tag there.
    Without a remote ``origin`` the repository itself holds the tag."""
    env = {**_git_env(), "GIT_COMMITTER_NAME": tagger[0], "GIT_COMMITTER_EMAIL": tagger[1]}

    def git(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True,
                              check=False, timeout=120, input=stdin, env=env)
    try:
        pushed = has_origin(folder, env)
        done = git("tag", "-a", "-F", "-", "--", name, commit, stdin=message)
        if done.returncode == 0 and pushed:
            done = git("push", "--quiet", "origin", f"refs/tags/{name}")
            if done.returncode != 0:  # not on the remote: not here either
                git("tag", "-d", "--", name)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SettingsError(f"cannot create tag {name}: {type(exc).__name__}") from None
    if done.returncode != 0:
        raise SettingsError(f"cannot create tag {name}: {_last_line(done.stderr)}")


def origin_tags(folder: str, prefix: str = "") -> dict[str, str]:
    """tag name -> commit, as the remote ``origin`` of the repository holding ``folder`` lists
    them now (``git ls-remote``, with the credentials git itself is configured with), only
    tags under ``prefix``; the repository's own tags when it has no remote ``origin``."""
    env = _git_env()
    pattern = [f"refs/tags/{prefix}*"] if prefix else []
    try:
        where = "origin" if has_origin(folder, env) else "."
        done = subprocess.run(["git", "-C", folder, "ls-remote", "--tags", where, *pattern],
                              capture_output=True, text=True, check=False, timeout=60,
                              stdin=subprocess.DEVNULL, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SettingsError(f"cannot list the tags of the repository of {folder}: "
                            f"{type(exc).__name__}") from None
    if done.returncode != 0:
        raise SettingsError(f"cannot list the tags of the repository of {folder} with git "
                            f"ls-remote: {_last_line(done.stderr)}")
    return {name.removeprefix("refs/tags/"): sha for name, sha in _listed(done.stdout).items()}


# A tag is a candidate only when its name parses as a version. The default rule: the literal
# part of the tag pattern before its first wildcard (``v`` for ``v*``, ``release-`` for
# ``release-*``, nothing for ``*``), then this, to the end of the name:
VERSION_RULE = (
    r"(?P<major>[0-9]+)(?:\.(?P<minor>[0-9]+)(?:\.(?P<patch>[0-9]+))?)?"  # 1, 1.2 or 1.2.3
    r"(?:-(?P<prerelease>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"  # -rc.1: a pre-release
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"  # +build.5: metadata, not ordered
)
"""The version part of the default tag rule (SemVer-like: ``MAJOR[.MINOR[.PATCH]]``, digits
only, an optional ``-PRERELEASE`` and ``+BUILD``, each dot-separated letters, digits and
hyphens). A caller's own rule is a regular expression matched against the whole tag name with
the same named groups: ``major`` (required), ``minor``, ``patch``, ``prerelease``, ``build``."""

_IDENTIFIERS = re.compile(r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*")
_VERSION_GROUPS = ("major", "minor", "patch", "prerelease", "build")


def _literal_prefix(pattern: str) -> str:
    """The literal part of an fnmatch pattern before its first wildcard, less the digits and
    dots it ends with (they are the version's: ``v1.*`` has the prefix ``v``)."""
    literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    return literal.rstrip("0123456789.")


def version_rule(pattern: str = "", version: str | None = None) -> re.Pattern[str]:
    """The rule a tag's name must match in full to be a version: the caller's regular
    expression ``version`` if given, else the literal prefix of ``pattern`` then
    :data:`VERSION_RULE`. A ``version`` that does not compile, or has no ``major`` group, is a
    :class:`SettingsError` naming it."""
    if version is None:
        return re.compile(re.escape(_literal_prefix(pattern)) + VERSION_RULE)
    try:
        rule = re.compile(version)
    except (re.error, TypeError) as exc:
        raise SettingsError(f"the tag version regex {version!r} is not a valid regular "
                            f"expression: {exc}") from None
    if "major" not in rule.groupindex:
        raise SettingsError(f"the tag version regex {version!r} has no named group 'major' "
                            "(it may also name minor, patch, prerelease and build), e.g. "
                            r"v(?P<major>\d+)\.(?P<minor>\d+)")
    unknown = sorted(set(rule.groupindex) - set(_VERSION_GROUPS))
    if unknown:
        raise SettingsError(f"the tag version regex {version!r} names group(s) "
                            f"{', '.join(unknown)}: only {', '.join(_VERSION_GROUPS)} are known")
    return rule


def _identifier_key(identifier: str) -> tuple:
    # SemVer: numeric identifiers compare as numbers and rank below alphanumeric ones
    return (0, int(identifier), "") if identifier.isdigit() else (1, 0, identifier)


def version_key(tag: str, rule: re.Pattern[str] | None = None) -> tuple | None:
    """The precedence of ``tag``'s version, or None when its name is not a version under
    ``rule`` (default: whatever precedes its first digit, then :data:`VERSION_RULE`).

    Numbers compare as numbers (v1.10 after v1.9, v10.0 after v2.0.0), a missing minor or
    patch is 0 (v1 and v1.0 are the same version), a pre-release (v2.0.0-rc.1) comes before its
    release, and pre-releases order by SemVer precedence (rc.2 before rc.10, numeric
    identifiers before alphanumeric ones, a shorter list of identifiers first when all before
    are equal). Build metadata plays no part."""
    if rule is None:
        rule = version_rule(re.split(r"[0-9]", tag, maxsplit=1)[0])
    found = rule.fullmatch(tag)
    if found is None:
        return None
    groups = {name: found.group(name) if name in rule.groupindex else None
              for name in _VERSION_GROUPS}
    numbers = [groups["major"], groups["minor"] or "0", groups["patch"] or "0"]
    if not all(n.isascii() and n.isdigit() for n in numbers):
        return None
    pre = groups["prerelease"] or ""
    if pre and not _IDENTIFIERS.fullmatch(pre):
        return None
    identifiers = tuple(_identifier_key(i) for i in pre.split(".")) if pre else ()
    return (tuple(int(n) for n in numbers), 0 if pre else 1, identifiers)


def newest_tag(tags: Iterable[str], pattern: str, *, version: str | None = None,
               prereleases: bool = False) -> str | None:
    """The newest tag matching ``pattern`` (fnmatch) whose name is a version, by version order;
    None if there is none.

    Only tags whose whole name matches the version rule are candidates (see
    :func:`version_rule`: the caller's regex ``version``, else the pattern's literal prefix then
    :data:`VERSION_RULE`), so a stray ``vscode-spike`` or ``vnext`` never matches ``v*`` as a
    version. Pre-releases are left out unless ``prereleases`` is true. Tags are ordered by
    version only (:func:`version_key`), never by their letters; tags of the same version
    (``v1.0`` and ``v1.0.0``, or build metadata apart) are told apart by their names, the
    greatest in plain string order winning (``v1.0.0`` over ``v1.0``)."""
    rule = version_rule(pattern, version)
    candidates = []
    for tag in tags:
        if not fnmatch.fnmatchcase(tag, pattern):
            continue
        key = version_key(tag, rule)
        if key is None or (key[1] == 0 and not prereleases):
            continue
        candidates.append((key, tag))
    return max(candidates)[1] if candidates else None
