"""One commit's files, fetched over Git's smart HTTP protocol without a ``git`` binary.

Kestra's image has no ``git`` and its Clone task is shallow, so a rollback to an earlier commit
fetches that commit's files the way ``git fetch --depth 1 URL COMMIT`` would, in pure Python:

1. GET ``info/refs?service=git-upload-pack``: the server's capabilities (protocol v0, as
   ``git http-backend`` speaks by default);
2. POST ``git-upload-pack``: ``want COMMIT``, ``deepen 1`` (only that commit, none of its
   history), ``done``; the answer holds the shallow boundary, ``NAK``, then a pack (in side-band
   when the server offers it), read by ``packfile``.

The commit's tree is then written under a folder: regular files only, the executable bit kept,
the bytes exactly as the commit holds them (no line-ending conversion, no filter: a Git LFS file
is written as its pointer), so reading them needs no ``blobs.Committed``. A symbolic link or a
submodule is refused, naming its path, and so is an entry Git itself would never check out (a
name such as ``..``, ``.git`` or one holding ``/``): nothing is ever written outside the folder.

Many servers give a commit that a branch or tag reaches, not one that none does (``uploadpack.
allowReachableSHA1InWant`` and stateless HTTP allow the first); a refusal says so. Credentials
go in the Authorization header only, never in a message.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

import httpx

from kestra_promote.errors import KestraPromoteError, SettingsError
from kestra_promote.git.gitref import named
from kestra_promote.git.blobs import CommitFiles, Committed
from kestra_promote.git.history import HistoryError
from kestra_promote.git.packfile import PackError, PackObjects
from kestra_promote.git.smarthttp import parse_service_advertisement, pkt, read_pkt, shown
from kestra_promote.textsafe import safe_text

_SHA = re.compile(r"[0-9a-f]{40}")
_AGENT = "kestra-promote"
_TREE, _LINK, _SUBMODULE = b"40000", b"120000", b"160000"
MAX_PACK_BYTES = 512 << 20  # a pack larger than this is refused rather than held in memory
TIMEOUT = 60  # seconds without an answer (connect, or between two reads)


class _Fetch:
    """Fetching one commit from one repository over smart HTTP."""

    def __init__(self, url: str, commit: str, client: httpx.Client) -> None:
        self.base, self.commit, self.client = url.rstrip("/"), commit, client
        self.what = f"cannot fetch commit {commit[:12]} from {shown(self.base)}"

    def _refused(self, reason: str) -> SettingsError:
        return SettingsError(
            f"the Git server at {shown(self.base)} will not give commit {self.commit[:12]} "
            f"({safe_text(reason, one_line=True)[:300]}): servers may refuse a commit no branch "
            f"or tag reaches; the rollback can be made with `kestra-promote apply --ref "
            f"{self.commit}`")

    def _check(self, answer: httpx.Response) -> None:
        if answer.status_code in (401, 403):
            raise SettingsError(f"{self.what}: the Git server answered HTTP "
                                f"{answer.status_code} (check the Git credentials: they need "
                                "read access to the repository)")
        if answer.status_code != 200:
            raise SettingsError(f"{self.what}: the Git server answered HTTP "
                                f"{answer.status_code} (check promote_repo_url)")

    def capabilities(self) -> dict[str, str]:
        try:
            answer = self.client.get(self.base + "/info/refs",
                                     params={"service": "git-upload-pack"})
        except httpx.TimeoutException:
            raise SettingsError(f"{self.what}: no answer within {TIMEOUT} s") from None
        except httpx.HTTPError as exc:
            raise SettingsError(f"{self.what}: {type(exc).__name__}") from None
        self._check(answer)
        final = str(answer.url.copy_with(query=None))
        if final.endswith("/info/refs") and final != self.base + "/info/refs":  # redirected
            asked = httpx.URL(self.base)
            if (answer.url.scheme, answer.url.host, answer.url.port) != \
                    (asked.scheme, asked.host, asked.port):
                raise SettingsError(f"{self.what}: it redirects to another server; use that "
                                    "server's URL")
            self.base = final[:-len("/info/refs")]
        try:
            _, capabilities = parse_service_advertisement(answer.content, "git-upload-pack")
        except ValueError:
            raise SettingsError(f"{self.what}: it did not answer as a Git server (HTTP "
                                f"{answer.status_code}, {_kind(answer)}; check "
                                "promote_repo_url)") from None
        if capabilities.get("object-format", "sha1") != "sha1":
            raise SettingsError(f"{self.what}: the repository names objects with "
                                f"{capabilities['object-format']}; only SHA-1 is supported")
        return capabilities

    def request(self, capabilities: dict[str, str]) -> bytes:
        wanted = [c for c in ("ofs-delta", "no-progress") if c in capabilities]
        band = next((c for c in ("side-band-64k", "side-band") if c in capabilities), None)
        wanted += [band] if band else []
        wanted += ["agent=" + _AGENT] if "agent" in capabilities else []
        body = pkt(" ".join([f"want {self.commit}", *wanted]).encode() + b"\n")
        if "shallow" in capabilities:  # the commit alone, none of its history
            body += pkt(b"deepen 1\n")
        return body + b"0000" + pkt(b"done\n")

    def pack(self, capabilities: dict[str, str]) -> bytes:
        """The pack the server sends for the commit (side-band unwrapped)."""
        try:
            with self.client.stream(
                    "POST", self.base + "/git-upload-pack", content=self.request(capabilities),
                    headers={"Content-Type": "application/x-git-upload-pack-request",
                             "Accept": "application/x-git-upload-pack-result"}) as answer:
                data = bytearray()
                for chunk in answer.iter_bytes():
                    data += chunk
                    if len(data) > MAX_PACK_BYTES:
                        raise SettingsError(f"{self.what}: the server's answer is larger than "
                                            f"{MAX_PACK_BYTES >> 20} MiB")
        except httpx.TimeoutException:
            raise SettingsError(f"{self.what}: no answer within {TIMEOUT} s") from None
        except httpx.HTTPError as exc:
            raise SettingsError(f"{self.what}: {type(exc).__name__}") from None
        if answer.status_code != 200 and (error := _error_line(bytes(data))):
            raise self._refused(error)  # git http-backend's status when upload-pack died
        self._check(answer)
        try:
            return self._unwrap(bytes(data), capabilities)
        except ValueError as exc:
            raise SettingsError(f"{self.what}: the server's answer cannot be read ({exc})"
                                ) from None

    def _unwrap(self, data: bytes, capabilities: dict[str, str]) -> bytes:
        at = 0
        while True:  # the shallow boundary and a flush, then NAK (no commits in common)
            line, at = read_pkt(data, at)
            if line is None or line.startswith((b"shallow ", b"unshallow ")):
                continue
            if line.startswith(b"ERR "):
                raise self._refused(line[4:].decode("utf-8", "replace").strip())
            if line.startswith((b"NAK", b"ACK")):
                break
            raise ValueError("unexpected line before the pack")
        if not {"side-band-64k", "side-band"} & set(capabilities):
            return data[at:]
        pack = bytearray()
        while at < len(data):
            line, at = read_pkt(data, at)
            if line is None:
                break
            if line[:1] == b"\1":
                pack += line[1:]
            elif line[:1] == b"\3":
                raise self._refused(line[1:].decode("utf-8", "replace").strip())
            elif line.startswith(b"ERR "):
                raise self._refused(line[4:].decode("utf-8", "replace").strip())
        return bytes(pack)


def _kind(answer: httpx.Response) -> str:
    kind = answer.headers.get("content-type", "no content type").split(";")[0].strip()
    return "an HTML page" if "html" in kind else safe_text(kind, one_line=True)[:80]


def _error_line(data: bytes) -> str | None:
    """The reason in the first ``ERR`` pkt-line of ``data``, if it has one."""
    at = 0
    try:
        while at < len(data):
            line, at = read_pkt(data, at)
            if line is not None and line.startswith(b"ERR "):
                return line[4:].decode("utf-8", "replace").strip()
    except ValueError:
        return None
    return None


def _name(name: bytes, path: str, commit: str) -> str:
    """A tree entry's name, refused when a checkout could write it outside its folder."""
    text = os.fsdecode(name)
    if name in (b"", b".", b"..") or b"/" in name or b"\\" in name or b"\0" in name \
            or name.lower() == b".git":
        raise SettingsError(f"commit {commit[:12]} holds an entry Git would never check out: "
                            f"{safe_text(path + text, one_line=True)!r}")
    return text


def _write(files: CommitFiles, tree: str, folder: Path, path: str, commit: str) -> int:
    """Write the regular files of ``tree`` (at ``path`` in the commit) under ``folder``; how
    many bytes were written."""
    written = 0
    for name, (mode, sha) in sorted(files.tree(tree).items()):
        text = _name(name, path, commit)
        where = path + text
        if mode == _TREE:
            (folder / text).mkdir()
            written += _write(files, sha, folder / text, where + "/", commit)
        elif mode in (_LINK, _SUBMODULE):
            what = "a symbolic link" if mode == _LINK else "a submodule (another repository)"
            raise SettingsError(
                f"commit {commit[:12]} holds {what} at {safe_text(where, one_line=True)}: "
                "without `git`, only regular files are checked out; roll back with "
                f"`kestra-promote apply --ref {commit}` where git is installed")
        elif mode.startswith(b"100"):
            data = files.read(sha)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            handle = os.open(folder / text, flags, 0o777 if int(mode, 8) & 0o111 else 0o666)
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            written += len(data)
        else:
            raise SettingsError(f"commit {commit[:12]} holds an entry of unknown mode "
                                f"{mode.decode('ascii', 'replace')} at "
                                f"{safe_text(where, one_line=True)}")
    return written


def checkout_commit(url: str, commit: str, dest: Path, *, username: str | None = None,
                    password: str | None = None, transport: httpx.BaseTransport | None = None,
                    under: str = "") -> Committed | None:
    """Write the files of ``commit`` (a full id) of the repository at ``url`` (http or https)
    under ``dest``, only those in its folder ``under`` when given (at the same place). The
    bytes are the commit's own, so None: ``read_source`` needs nothing more to read them.

    SettingsError for credentials that may not read, a URL that is no Git server, a commit the
    server will not give, no answer in time, a tree that cannot be written safely."""
    if not _SHA.fullmatch(commit):
        raise SettingsError(f"{commit!r} is not a full commit id: a Git server gives a commit "
                            "by its full id only")
    auth = (username or "", password) if password else None
    with httpx.Client(auth=auth, timeout=TIMEOUT, follow_redirects=True,
                      transport=transport) as client:
        fetch = _Fetch(url, commit, client)
        pack = fetch.pack(fetch.capabilities())
    try:
        files = CommitFiles(PackObjects(pack), commit)
        tree, path = files.root, ""
        for part in [p for p in under.split("/") if p]:
            _name(os.fsencode(part), path, commit)
            entry = files.tree(tree).get(os.fsencode(part))
            if entry is None or entry[0] != _TREE:
                raise SettingsError(f"{under.strip('/')} holds no file at commit {commit[:12]}")
            tree, path = entry[1], path + part + "/"
        folder = Path(dest) / path
        folder.mkdir(parents=True, exist_ok=True)
        _write(files, tree, folder, path, commit)
    except KeyError as missing:
        raise SettingsError(f"{fetch.what}: the server's pack lacks object "
                            f"{missing.args[0]}") from None
    except (HistoryError, PackError) as exc:
        raise SettingsError(f"{fetch.what}: {exc}") from None
    except OSError as exc:
        raise SettingsError(f"{fetch.what}: cannot write its files ({type(exc).__name__}: "
                            f"{safe_text(str(exc.filename or ''), one_line=True)})") from None
    return None


@contextlib.contextmanager
def checked_out(url: str, commit: str, under: str, *, shown_as: str,
                username: str | None = None, password: str | None = None,
                transport: httpx.BaseTransport | None = None
                ) -> Iterator[tuple[str, str, Committed | None]]:
    """As ``gitref.checkout``, without git: yield (a temporary folder holding the folder
    ``under`` of ``commit``, the commit, None); an error raised meanwhile names ``shown_as``
    (where a clone holds that folder) at the commit rather than the temporary folder."""
    with tempfile.TemporaryDirectory(prefix="kestra-promote-") as tmp:
        root = Path(tmp) / "tree"
        committed = checkout_commit(url, commit, root, username=username, password=password,
                                    transport=transport, under=under)
        folder = root / under
        try:
            yield str(folder), commit, committed
        except KestraPromoteError as error:  # shown once the temporary folder is gone
            if error.args and isinstance(error.args[0], str):
                error.args = (named(error.args[0], [(str(folder), shown_as), (tmp, shown_as)],
                                    commit[:12]), *error.args[1:])
            raise
