"""Marking a commit in Git with an annotated tag, and reading such tags back.

A stage whose checks passed marks the commit it verified with an annotated tag; the next stage
follows those tags. The promotion runs where there is no ``git`` binary (Kestra's image), so
over HTTP(S) the tag is pushed in pure Python with Git's smart-HTTP protocol, as ``git push``
does: ask ``info/refs?service=git-receive-pack`` for the refs and capabilities, then POST one
command (create ``refs/tags/<name>``, its old id all zeros, so an existing tag is never moved)
and a pack holding the tag object alone (the commit is already on the server), and read the
server's report. A local path, a ``file://`` URL or an SSH URL is left to ``git`` itself.

Credentials go in the Authorization header only: never in a message, a command line or a repr.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from kestra_promote.errors import SettingsError
from kestra_promote.git import packfile
from kestra_promote.git.smarthttp import parse_service_advertisement, pkt, pkt_lines
from kestra_promote.git.smarthttp import shown as _shown
from kestra_promote.textsafe import safe_text

ZERO_ID = "0" * 40
_SHA = re.compile(r"[0-9a-f]{40}")
_TAG_KIND = 4  # an annotated tag, in a pack's object header
_AGENT = "kestra-promote"
_MAX_REASON = 300  # characters of a server's reason kept in a message


class TagExists(SettingsError):
    """The repository already has a tag of that name: the caller picks another name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"tag {safe_text(name, one_line=True)} already exists in the repository")
        self.name = name


@dataclass(frozen=True)
class TagInfo:
    """A tag as the repository holds it: the commit it marks (peeled) and, for an annotated
    tag, its object, message and tagger date."""

    name: str
    commit: str
    tag_object: str | None  # None for a lightweight tag
    message: str | None
    date: datetime | None


# ---- the objects -------------------------------------------------------------------------

_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(/|$)|^[-./]|[/.]$")


def _check_name(name: str) -> None:
    """Git's rules for a ref name (``git check-ref-format``), for the part after refs/tags/."""
    if not name or _BAD_REF.search(name) or name == "@":
        raise SettingsError(f"{safe_text(name, one_line=True)!r} is not a valid Git tag name")


def tag_body(name: str, commit: str, message: str, *, tagger_name: str, tagger_email: str,
             when: datetime | None = None) -> bytes:
    """The content of an annotated tag object: headers, a blank line, the message (ending in a
    newline). SettingsError for a name, commit or tagger Git would refuse."""
    _check_name(name)
    if not _SHA.fullmatch(commit):
        raise SettingsError(f"cannot tag {commit!r}: not a full commit id")
    for part in (tagger_name, tagger_email):
        if not part.strip() or any(c in part for c in "<>\n\0"):
            raise SettingsError(f"cannot create tag {name}: the tagger {part!r} is not valid")
    epoch = int((when or datetime.now(timezone.utc)).timestamp())
    text = message if message.endswith("\n") else message + "\n"
    return (f"object {commit}\ntype commit\ntag {name}\n"
            f"tagger {tagger_name.strip()} <{tagger_email.strip()}> {epoch} +0000\n\n"
            f"{text}").encode("utf-8")


def object_id(kind: str, body: bytes) -> str:
    """Git's name for an object: the SHA-1 of its header and content."""
    return packfile.object_id(kind.encode(), body)


def pack_of_tag(body: bytes) -> bytes:
    """A version 2 pack holding one object, the tag ``body``, with its trailing checksum."""
    size = len(body)
    header = bytearray()
    byte = (_TAG_KIND << 4) | (size & 0x0F)
    size >>= 4
    while size:
        header.append(byte | 0x80)
        byte, size = size & 0x7F, size >> 7
    header.append(byte)
    data = b"PACK" + struct.pack(">II", 2, 1) + bytes(header) + zlib.compress(body)
    return data + hashlib.sha1(data).digest()


# ---- smart HTTP --------------------------------------------------------------------------

def parse_receive_advertisement(data: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """(ref name -> id, capability -> value) from what a server answers to GET
    info/refs?service=git-receive-pack. ValueError when it is not such an answer."""
    return parse_service_advertisement(data, "git-receive-pack")


def parse_push_report(data: bytes, sideband: bool) -> tuple[dict[str, str | None], list[str]]:
    """(ref -> None when updated or the server's reason, the server's own messages) from a
    git-receive-pack answer. ValueError when it is not one, or the server could not unpack."""
    try:
        return _push_report(data, sideband)
    except ValueError as exc:
        if str(exc).startswith("the server"):
            raise
        raise ValueError("not a push report") from None


def _push_report(data: bytes, sideband: bool) -> tuple[dict[str, str | None], list[str]]:
    messages: list[str] = []
    if sideband:
        report = bytearray()
        for line in pkt_lines(data):
            if not line:
                continue
            band, payload = line[0], line[1:].decode("utf-8", "replace")
            if band == 1:
                report += line[1:]
            elif band == 2:
                messages += [m for m in re.split(r"[\r\n]+", payload) if m.strip()]
            elif band == 3:
                raise ValueError(f"the server failed: {payload.strip()}")
        data = bytes(report)
    lines = [line.decode("utf-8", "replace").rstrip("\n") for line in pkt_lines(data) if line]
    if not lines or not lines[0].startswith("unpack "):
        raise ValueError("not a push report")
    if lines[0] != "unpack ok":
        raise ValueError(f"the server could not store the tag ({lines[0][7:]})")
    results: dict[str, str | None] = {}
    for line in lines[1:]:
        status, _, rest = line.partition(" ")
        ref, _, reason = rest.partition(" ")
        if status == "ok":
            results[ref] = None
        elif status == "ng":
            results[ref] = reason or "refused"
    return results, messages


def _reason(*parts: str) -> str:
    text = safe_text("; ".join(p.strip() for p in parts if p.strip()), one_line=True)
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON - 1] + "…"


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


class _Remote:
    """One repository over smart HTTP, with its credentials, for pushing one tag."""

    def __init__(self, url: str, name: str, client: httpx.Client) -> None:
        self.base, self.name, self.client = url.rstrip("/"), name, client

    def _failed(self, exc: httpx.HTTPError) -> SettingsError:
        return SettingsError(f"cannot create tag {self.name}: {type(exc).__name__} talking to "
                             f"the Git server at {_shown(self.base)}")

    def _check_status(self, answer: httpx.Response) -> None:
        if answer.status_code in (401, 403):
            raise SettingsError(
                f"cannot create tag {self.name}: the Git server answered HTTP "
                f"{answer.status_code}; the Git credentials may not push tags to "
                f"{_shown(self.base)} (they need write access to the repository)")
        if answer.status_code != 200:
            raise SettingsError(f"cannot create tag {self.name}: the Git server answered HTTP "
                                f"{answer.status_code} (check promote_repo_url)")

    def advertisement(self) -> tuple[dict[str, str], dict[str, str]]:
        try:
            answer = self.client.get(self.base + "/info/refs",
                                     params={"service": "git-receive-pack"})
        except httpx.HTTPError as exc:
            raise self._failed(exc) from None
        self._check_status(answer)
        final = str(answer.url.copy_with(query=None))
        if final.endswith("/info/refs") and final != self.base + "/info/refs":
            if _origin(answer.url) != _origin(httpx.URL(self.base)):  # never push elsewhere
                raise SettingsError(f"cannot create tag {self.name}: {_shown(self.base)} "
                                    "redirects to another server; use that server's URL")
            self.base = final[:-len("/info/refs")]
        try:
            return parse_receive_advertisement(answer.content)
        except ValueError:
            raise SettingsError(f"cannot create tag {self.name}: {_shown(self.base)} did not "
                                f"answer as a Git server (HTTP {answer.status_code}, "
                                "not a git-receive-pack answer; check promote_repo_url)") from None

    def push(self, tag_id: str, commit: str, body: bytes, capabilities: dict[str, str]
             ) -> None:
        ref = "refs/tags/" + self.name
        wanted = ["report-status"]
        # as git's send-pack: side-band-64k (never the old side-band) carries the server's
        # messages, such as a hook's reason for refusing; the report is the same without it
        wanted += [c for c in ("side-band-64k", "quiet") if c in capabilities]
        if "object-format" in capabilities:
            wanted.append("object-format=sha1")
        if "agent" in capabilities:
            wanted.append("agent=" + _AGENT)
        command = f"{ZERO_ID} {tag_id} {ref}\0{' '.join(wanted)}".encode()
        request = pkt(command) + b"0000" + pack_of_tag(body)
        try:
            answer = self.client.post(
                self.base + "/git-receive-pack", content=request,
                headers={"Content-Type": "application/x-git-receive-pack-request",
                         "Accept": "application/x-git-receive-pack-result"})
        except httpx.HTTPError as exc:
            raise self._failed(exc) from None
        self._check_status(answer)
        try:
            results, messages = parse_push_report(answer.content,
                                                  "side-band-64k" in capabilities)
        except ValueError as exc:
            raise SettingsError(f"cannot create tag {self.name}: the Git server did not take "
                                f"it: {_reason(str(exc))}") from None
        if ref not in results:
            raise SettingsError(f"cannot create tag {self.name}: the Git server's report does "
                                "not mention it")
        if results[ref] is not None:
            if ref in self.advertisement()[0]:  # created meanwhile by another run
                raise TagExists(self.name)
            reason = results[ref] or ""
            if "missing necessary objects" in reason:  # receive-pack's connectivity check
                reason += f" (commit {commit} is not in the repository: push it first)"
            raise SettingsError(f"the Git server refused tag {self.name}: "
                                f"{_reason(reason, *messages)}")


def _push_over_http(url: str, name: str, commit: str, body: bytes, username: str | None,
                    password: str | None, transport: httpx.BaseTransport | None) -> str:
    tag_id = object_id("tag", body)
    auth = (username or "", password) if password else None
    with httpx.Client(auth=auth, timeout=30, follow_redirects=True,
                      transport=transport) as client:
        remote = _Remote(url, name, client)
        refs, capabilities = remote.advertisement()
        if "refs/tags/" + name in refs:
            raise TagExists(name)
        if capabilities.get("object-format", "sha1") != "sha1":
            raise SettingsError(f"cannot create tag {name}: the repository names objects with "
                                f"{capabilities['object-format']}; only SHA-1 is supported")
        if "report-status" not in capabilities:
            raise SettingsError(f"cannot create tag {name}: the Git server does not report "
                                "the outcome of a push (no report-status)")
        remote.push(tag_id, commit, body, capabilities)
    return tag_id


# ---- with git ----------------------------------------------------------------------------

def _git(args: list[str], *, cwd: Path, stdin: bytes | None = None,
         env: dict[str, str] | None = None, what: str) -> subprocess.CompletedProcess[bytes]:
    # never a prompt (a password, an unknown host key): nobody is there to answer it
    full = {**os.environ, "GIT_TERMINAL_PROMPT": "0",
            "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
            **(env or {})}
    try:
        return subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True,
                              check=False, timeout=300, env=full,
                              **({} if stdin is not None else {"stdin": subprocess.DEVNULL}))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SettingsError(f"{what}: git failed ({type(exc).__name__})") from None


def _local_path(url: str) -> Path | None:
    if url.startswith("file://"):
        return Path(url[len("file://"):])
    if "://" in url or re.match(r"^[^/]+:", url) and not Path(url).exists():
        return None  # ssh://host/x, or git@host:x
    return Path(url)


def _objects_of(path: Path, what: str) -> str:
    if not path.is_dir():
        raise SettingsError(f"{what}: {path} is not a Git repository")
    done = _git(["rev-parse", "--path-format=absolute", "--git-common-dir"], cwd=path, what=what)
    if done.returncode != 0:
        raise SettingsError(f"{what}: {path} is not a Git repository")
    return str(Path(done.stdout.decode().strip()) / "objects")


def _push_with_git(url: str, name: str, commit: str, body: bytes, *,
                   reach: Path | None) -> str:
    """Create the tag in a temporary bare repository that can reach ``commit`` (through the
    objects of the local repository ``reach``, else by fetching it from ``url``), then push it
    to ``url`` without force."""
    what = f"cannot create tag {name} in {_shown(url)}"
    with tempfile.TemporaryDirectory(prefix="kestra-promote-tag-") as scratch:
        work = Path(scratch)
        _git(["init", "-q", "--bare", "."], cwd=work, what=what)
        if reach is not None:
            (work / "objects" / "info" / "alternates").write_text(_objects_of(reach, what) + "\n")
        else:
            done = _git(["fetch", "-q", "--no-tags", "--", url, commit], cwd=work, what=what)
            if done.returncode != 0:
                raise SettingsError(f"{what}: cannot fetch commit {commit} from it with git "
                                    "(over SSH it needs the worker's own key)")
        if _git(["cat-file", "-t", commit], cwd=work, what=what).stdout.strip() != b"commit":
            raise SettingsError(f"{what}: the repository has no commit {commit}")
        made = _git(["mktag"], cwd=work, stdin=body, what=what)
        if made.returncode != 0:
            raise SettingsError(f"{what}: git refused the tag: "
                                f"{_reason(made.stderr.decode('utf-8', 'replace'))}")
        tag_id = made.stdout.decode().strip()
        done = _git(["push", "--porcelain", "--", url, f"{tag_id}:refs/tags/{name}"], cwd=work,
                    what=what)
    if done.returncode == 0:
        return tag_id
    report = done.stdout.decode("utf-8", "replace")
    line = next((ln for ln in report.splitlines() if f"refs/tags/{name}" in ln), "")
    if not line:  # it never got as far as the ref: no connection, no access
        raise SettingsError(f"{what}: git push failed: {_reason(_last_line(done.stderr))}")
    if "already exists" in line or _local_refs(url, name):
        raise TagExists(name)
    remote = [ln[len("remote:"):] for ln in done.stderr.decode("utf-8", "replace").splitlines()
              if ln.startswith("remote:")]
    summary = line.rsplit("\t", 1)[-1]  # "[remote rejected] (pre-receive hook declined)"
    raise SettingsError(f"the Git server refused tag {name}: {_reason(summary, *remote)}")


def _local_refs(url: str, name: str) -> bool:
    done = _git(["ls-remote", "--", url, f"refs/tags/{name}"], cwd=Path(tempfile.gettempdir()),
                what=f"cannot list the tags of {_shown(url)}")
    return done.returncode == 0 and bool(done.stdout.strip())


def create_tag(url: str, name: str, commit: str, message: str, *, tagger_name: str,
               tagger_email: str, when: datetime | None = None, username: str | None = None,
               password: str | None = None,
               transport: httpx.BaseTransport | None = None) -> str:
    """Create the annotated tag ``name`` on ``commit`` in the repository at ``url``; the tag
    object's id. Never moves a tag: TagExists when the repository has one of that name.

    Over http(s) in pure Python, with ``username``/``password`` (Basic authentication);
    a local path, ``file://`` or SSH URL with ``git``. SettingsError for anything else that
    stops it (credentials that may not push, a server hook refusing the tag, no answer)."""
    body = tag_body(name, commit, message, tagger_name=tagger_name, tagger_email=tagger_email,
                    when=when)
    if url.startswith(("http://", "https://")):
        return _push_over_http(url, name, commit, body, username, password, transport)
    local = _local_path(url)
    if local is not None and not url.startswith("file://"):
        url = str(local.resolve())  # git runs elsewhere: a relative path would lose its way
    return _push_with_git(url, name, commit, body, reach=local)


# ---- reading tags back (the CLI, which has git) ------------------------------------------

def _parse_tag(body: bytes) -> tuple[str, datetime | None]:
    """The message and tagger date of an annotated tag object."""
    headers, _, message = body.partition(b"\n\n")
    when = None
    for line in headers.split(b"\n"):
        if line.startswith(b"tagger "):
            found = re.search(rb"> (\d+) ([+-])(\d\d)(\d\d)$", line)
            if found:
                offset = timedelta(hours=int(found[3]), minutes=int(found[4]))
                zone = timezone(offset if found[2] == b"+" else -offset)
                when = datetime.fromtimestamp(int(found[1]), zone)
    return message.decode("utf-8", "replace"), when


def read_tags(url_or_path: str, names_prefix: str, *, git_dir: Path | str | None = None
              ) -> dict[str, TagInfo]:
    """tag name -> TagInfo for every tag under ``refs/tags/<names_prefix>`` of the repository
    ``url_or_path`` (a URL, a path, or a remote of ``git_dir``), read with ``git``.

    The tags are listed with ``git ls-remote`` and their objects fetched into a temporary
    object store; when ``git_dir`` (a local clone) is given, git runs there, so its remotes and
    settings apply, and its objects are used, but nothing in it changes: no ref, no object,
    no FETCH_HEAD."""
    what = f"cannot read the tags of {_shown(url_or_path)}"
    with tempfile.TemporaryDirectory(prefix="kestra-promote-tags-") as scratch:
        work = Path(scratch)
        _git(["init", "-q", "--bare", "."], cwd=work, what=what)
        env, cwd = {"GIT_DIR": str(work)}, Path.cwd()  # a relative path is the caller's
        if git_dir is not None:
            cwd = Path(git_dir)
            env = {"GIT_OBJECT_DIRECTORY": str(work / "objects"),
                   "GIT_ALTERNATE_OBJECT_DIRECTORIES": _objects_of(cwd, what)}
        listed = _git(["ls-remote", "--", url_or_path, f"refs/tags/{names_prefix}*"], cwd=cwd,
                      env=env, what=what)
        if listed.returncode != 0:
            raise SettingsError(f"{what} with git ls-remote: "
                                f"{_reason(_last_line(listed.stderr))}")
        ids: dict[str, str] = {}
        peeled: dict[str, str] = {}
        for line in listed.stdout.decode("utf-8", "replace").splitlines():
            sha, _, ref = line.partition("\t")
            if not ref.startswith("refs/tags/" + names_prefix):
                continue
            name = ref[len("refs/tags/"):]
            if name.endswith("^{}"):
                peeled[name[:-3]] = sha
            else:
                ids[name] = sha
        annotated = sorted(name for name in ids if name in peeled)
        bodies = _fetch_tags(url_or_path, annotated, ids, cwd=cwd, env=env, what=what,
                             shallow=git_dir is None)
    tags = {}
    for name, sha in ids.items():
        if name in peeled:
            message, when = _parse_tag(bodies[sha])
            tags[name] = TagInfo(name, peeled[name], sha, message, when)
        else:
            tags[name] = TagInfo(name, sha, None, None, None)
    return tags


def _last_line(stderr: bytes) -> str:
    lines = [ln for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return _shown(lines[-1]) if lines else "git failed"


def _fetch_tags(url: str, names: list[str], ids: dict[str, str], *, cwd: Path,
                env: dict[str, str], what: str, shallow: bool) -> dict[str, bytes]:
    """The contents of the annotated tags ``names``, fetched (no ref written anywhere)."""
    if not names:
        return {}
    refspecs = "".join(f"refs/tags/{name}\n" for name in names).encode()
    fetched = _git(["-c", "gc.auto=0", "-c", "maintenance.auto=false", "fetch", "-q",
                    "--no-tags", "--no-write-fetch-head", "--no-write-commit-graph",
                    "--refmap=", "--no-recurse-submodules", *(["--depth=1"] if shallow else []),
                    "--stdin", "--", url], cwd=cwd, stdin=refspecs, env=env, what=what)
    if fetched.returncode != 0:
        raise SettingsError(f"{what} with git fetch: {_reason(_last_line(fetched.stderr))}")
    wanted = "".join(ids[name] + "\n" for name in names).encode()
    batch = _git(["cat-file", "--batch"], cwd=cwd, stdin=wanted, env=env, what=what)
    bodies: dict[str, bytes] = {}
    data, at = batch.stdout, 0
    while at < len(data):
        end = data.index(b"\n", at)
        header = data[at:end].split()
        if len(header) != 3 or header[1] != b"tag":
            raise SettingsError(f"{what}: tag object {header[0].decode()} is missing")
        size = int(header[2])
        bodies[header[0].decode()] = data[end + 1:end + 1 + size]
        at = end + 1 + size + 1
    return bodies
