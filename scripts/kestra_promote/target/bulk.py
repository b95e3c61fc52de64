"""Many objects in one request: Kestra's bulk endpoints, and how to undo what they did.

A run of consecutive flow creations and updates (already in dependency order) is written by
``POST /flows/import`` with a ZIP of their sources, in batches below the request body limit;
the server imports the entries one by one, in the archive's order, creating or updating each
(``FlowService.importFlow``: an unchanged source makes no new revision), and answers with the
entries it could not import. A run of consecutive flow deletions is one
``DELETE /flows/delete/by-ids``, which deletes in order and stops at the first flow that is not
there (404). Both are the same on Kestra 1.3 and 2.0 (``FlowController``). A run of namespace
file uploads into one namespace is one upload of a ZIP, which the server extracts entry by
entry (``NamespaceFileController.createNamespaceFile``: a part whose file name ends in ``.zip``).
Only plain paths go in it: Kestra 1.3 turns an entry name into a path with ``URI.create``, which
refuses a space and reads ``%``, ``#`` and ``?`` as URI syntax (2.0 encodes them); any other
file is uploaded alone, under the ``path`` parameter, which both versions take as it is but
for a space on 1.3 (``filenames``: such a file is refused before anything is written). Files
are not deleted in bulk (no endpoint deletes a list of paths), and are reverted one by one.

Flows are imported in bulk on Kestra 1.x only. On 2.0, ``FlowService.importFlow`` writes
through the repository alone, which no longer emits to the flow queue: the single create, update
and delete (``FlowService.create``/``update``/``delete``, ``impactDownstreamConsumers``) tell the
executors' flow cache, the scheduler and the topology; an import does not, so an imported flow
would run its old version, and its triggers would not be scheduled, until a restart. On 1.3 the
repository emits to the flow queue itself. So 2.x gets one request per flow written; deletion
by ids goes through ``FlowService.delete`` on both.

What the bulk endpoints cannot promise, the callers keep:
- import creates or updates, whatever the flow's state: a flow created on the target between
  the pre-write read and the import is overwritten rather than refused (a single create would
  fail); the window is that of one request, right after the target was read again;
- a batch whose answer is lost may have landed in part: every change in it is treated as maybe
  written, and the undo reads the target before it acts (``undo_flows``).
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from typing import Callable, Sequence

from kestra_promote.target.client import KestraClient
from kestra_promote.target.transport import PART_OVERHEAD, batches
from kestra_promote.compare import content_hash, same_content, source_hash
from kestra_promote.errors import (
    ApiError,
    KestraError,
    NotFound,
    TransportError,
    UnexpectedResponse,
)
from kestra_promote.target.live import read_files, read_flows
from kestra_promote.models import Action, Change, FileKey, FlowKey

BULK_MIN = 10  # fewer go one by one: a single write says why it failed, an import does not
_ENTRY_OVERHEAD = 128  # a ZIP entry's headers, with its name twice


_PLAIN_PATH = re.compile(r"(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+")  # no ".", "..", "//", "%"


def kind(change: Change, imports: bool = True) -> str | None:
    """What bulk request ``change`` can go in (``import``, ``delete``, or ``files <namespace>``),
    or None: written alone. ``imports``: whether flows may be imported (``flow_imports_safe``)."""
    key = change.key
    writes = change.action in (Action.CREATE, Action.UPDATE)
    if isinstance(key, FileKey):
        plain = _PLAIN_PATH.fullmatch(key.path) and not key.path.startswith("/_flows")
        return f"files {key.namespace}" if writes and plain and isinstance(change.after, bytes) \
            else None
    if writes and isinstance(change.after, str):
        return "import" if imports else None
    return "delete" if change.action is Action.DELETE else None


def flow_imports_safe(client: KestraClient) -> bool:
    """Whether importing flows tells the rest of the target about them: Kestra 1.x (see the
    module's documentation). Unknown (no version said, or the question failed): no."""
    try:
        return client.major_version() == 1
    except KestraError:
        return False


def plan_steps(client: KestraClient, pending: Sequence[Change]) -> list[list[int]]:
    """``steps`` for this target: the server's version is asked only when an import would be
    worth it."""
    grouped = steps(pending, client.max_body)
    if any(len(step) > 1 and kind(pending[step[0]]) == "import" for step in grouped) \
            and not flow_imports_safe(client):
        grouped = steps(pending, client.max_body, imports=False)
    return grouped


def entry_name(index: int) -> str:
    return f"{index:06}.yml"


def _import_size(change: Change) -> int:
    assert isinstance(change.after, str)
    return len(change.after.encode()) + _ENTRY_OVERHEAD


def _delete_size(change: Change) -> int:
    assert isinstance(change.key, FlowKey)
    return len(change.key.namespace) + len(change.key.id) + 32


def _file_size(change: Change) -> int:
    assert isinstance(change.after, bytes) and isinstance(change.key, FileKey)
    # deflate can make incompressible data a little larger: 5 bytes per 16 kB block
    return len(change.after) + len(change.after) // 1000 + _ENTRY_OVERHEAD + 2 * len(change.key.path)


def _size(what: str) -> Callable[[Change], int]:
    return {"import": _import_size, "delete": _delete_size}.get(what, _file_size)


def body_size(pending: Sequence[Change], step: Sequence[int]) -> int:
    """At most the body of the bulk request for ``step`` (the archive is compressed, so less)."""
    size = _size(str(kind(pending[step[0]])))
    return sum(size(pending[i]) for i in step) + PART_OVERHEAD + 1024


def steps(pending: Sequence[Change], limit: int, *, imports: bool = True) -> list[list[int]]:
    """The pending changes' indexes, in order, grouped into requests: runs of the same bulk
    kind (at least ``BULK_MIN``) in batches below ``limit`` bytes, anything else alone."""
    grouped: list[list[int]] = []
    index = 0
    while index < len(pending):
        what = kind(pending[index], imports)
        end = index + 1
        while what is not None and end < len(pending) and kind(pending[end], imports) == what:
            end += 1
        run = list(range(index, end))
        if what is None or len(run) < BULK_MIN:
            grouped += [[i] for i in run]
        else:
            size = _size(what)
            # the multipart part of the upload, and a margin for the archive's own directory;
            # an object too large for that goes alone, as a single write
            budget = limit - PART_OVERHEAD - 1024
            grouped += list(batches(run, lambda i: size(pending[i]), budget))
        index = end
    return grouped


def archive(entries: Sequence[tuple[str, str | bytes]]) -> bytes:
    """A ZIP of (name, content) entries, in that order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            archive.writestr(name, content.encode() if isinstance(content, str) else content)
    return buffer.getvalue()


def still_running(exc: KestraError) -> bool:
    """A failure after which the server may still be working through the request: no answer
    (a timeout, a lost connection), or a proxy's 502/503/504 while Kestra goes on."""
    status = getattr(exc, "status", None)
    return isinstance(exc, TransportError) or (
        isinstance(exc, (ApiError, UnexpectedResponse)) and status in (502, 503, 504))


def holding(client: KestraClient, changes: Sequence[Change], prefixes: tuple[str, ...]
            ) -> dict[object, str | None]:
    """What the target holds now for each of ``changes``' objects, as hashes (``hash_of``;
    None: nothing): the flows read under ``prefixes``, the run's namespace roots, in one
    request; the files in one request per namespace."""
    held: dict[object, str | None] = dict.fromkeys((c.key for c in changes), None)
    if any(isinstance(c.key, FlowKey) for c in changes):
        for flow in read_flows(client, prefixes, expected=True):
            if flow.key in held:
                held[flow.key] = source_hash(flow.source)
    for namespace in sorted({c.key.namespace for c in changes if isinstance(c.key, FileKey)}):
        for key, live in read_files(client, namespace).items():
            if key in held:
                held[key] = content_hash(live.content)
    return held


SETTLE_QUIET = 3.0  # seconds between reads while waiting for a bulk request to settle
SETTLE_READS = 3  # reads in a row that must agree (6 s without a change)
SETTLE_LIMIT = 300.0


def settle(client: KestraClient, changes: Sequence[Change], prefixes: tuple[str, ...],
           sleep: Callable[[float], None], stop: Callable[[], bool] = lambda: False,
           clock: Callable[[], float] = time.monotonic) -> bool:
    """Wait until the target stops changing the objects of a bulk request that may still be
    running (``still_running``), so that the undo, which reads before it acts, sees all it did:
    a proxy that gave up on an import of thousands of flows does not stop Kestra. Done at once
    when every object holds what the request wrote; else when ``SETTLE_READS`` reads in a row,
    ``SETTLE_QUIET`` seconds apart, agree. False when that did not happen within
    ``SETTLE_LIMIT`` seconds (reads included), or ``stop()`` (a signal) said to stop waiting:
    the server may then still change the target after the revert."""
    wrote = {c.key: hash_of(c.after) for c in changes}
    deadline = clock() + SETTLE_LIMIT
    now = holding(client, changes, prefixes)
    same = 1
    while now != wrote and same < SETTLE_READS:
        if stop() or clock() >= deadline:
            return False
        sleep(SETTLE_QUIET)
        before, now = now, holding(client, changes, prefixes)
        same = same + 1 if now == before else 1
    return True


def hash_of(content: str | bytes | None) -> str | None:
    """A flow's source or a file's bytes as ``holding`` gives it (None: no object)."""
    if content is None:
        return None
    return source_hash(content) if isinstance(content, str) else content_hash(content)


def maybe_landed(exc: KestraError) -> bool:
    """A failure after which the request may still have been carried out: no answer, a server
    error, or a success status with a page that is no API answer (a proxy's)."""
    return isinstance(exc, TransportError) or (isinstance(exc, ApiError) and exc.status >= 500) \
        or (isinstance(exc, UnexpectedResponse) and 200 <= exc.status < 300)


def import_flows(client: KestraClient, pending: Sequence[Change], step: Sequence[int]
                 ) -> list[int]:
    """Import the flows of ``step``; the indexes the server said it could not import."""
    data = archive([(entry_name(i), str(pending[i].after)) for i in step])
    failed = set(client.import_flows(data, filename="flows.zip"))
    known = {entry_name(i): i for i in step}
    unknown = failed - set(known)
    if unknown:  # not entries it was sent: no Kestra answer
        raise KestraError(f"POST /flows/import answered about entries it was not sent "
                          f"({sorted(unknown)[:3]}): not a Kestra API answer",
                          method="POST", path="/flows/import")
    return sorted(known[name] for name in failed)


def upload_files(client: KestraClient, pending: Sequence[Change], step: Sequence[int]) -> None:
    """Upload the files of ``step`` (one namespace, plain paths) in one ZIP."""
    keys = [pending[i].key for i in step]
    namespace = keys[0].namespace
    entries: list[tuple[str, str | bytes]] = []
    for i, key in zip(step, keys):
        assert isinstance(key, FileKey) and key.namespace == namespace
        entries.append((key.path.lstrip("/"), bytes(pending[i].after or b"")))
    client.upload_namespace_files(namespace, archive(entries))


def write(client: KestraClient, pending: Sequence[Change], step: Sequence[int]) -> list[int]:
    """Perform the bulk request for ``step``; the indexes the server said it did not take."""
    what = str(kind(pending[step[0]]))
    if what == "import":
        return import_flows(client, pending, step)
    if what == "delete":
        delete_flows(client, pending, step)
    else:
        upload_files(client, pending, step)
    return []


def delete_flows(client: KestraClient, pending: Sequence[Change], step: Sequence[int]) -> None:
    """Delete the flows of ``step``. One already gone counts as done (as for a single delete):
    the server stops there, so the rest are deleted one by one."""
    keys = [pending[i].key for i in step]
    try:
        client.delete_flows_by_ids([(k.namespace, k.id) for k in keys  # type: ignore[union-attr]
                                    ])
    except NotFound:
        for key in keys:
            assert isinstance(key, FlowKey)
            try:
                client.delete_flow(key.namespace, key.id)
            except NotFound:
                pass


def undo_flows(client: KestraClient, changes: Sequence[Change], prefixes: tuple[str, ...]
               ) -> dict[int, str | None]:
    """Put back what ``changes`` (flows) replaced, in bulk: the target is read once, and each
    flow is acted on only if it holds what this run wrote. Per change: None when the target
    holds what it replaced now, else why not; changes it could not settle are left out (the
    caller undoes them one by one)."""
    holding = {flow.key: flow.source for flow in read_flows(client, prefixes, expected=True)}
    settled: dict[int, str | None] = {}
    to_delete: list[int] = []
    to_import: list[int] = []
    for index, change in enumerate(changes):
        now = holding.get(change.key)  # type: ignore[arg-type]
        if same_content(now, change.before):
            settled[index] = None  # never landed, or already undone
        elif not same_content(now, change.after):
            settled[index] = ("the target now holds a version this run did not write (edited "
                              "since): left as it is")
        elif change.before is None:
            to_delete.append(index)
        else:
            to_import.append(index)
    limit = client.max_body - PART_OVERHEAD - 1024
    for batch in batches(to_delete, lambda i: _delete_size(changes[i]), limit):
        try:
            delete_flows(client, changes, batch)
            settled.update({i: None for i in batch})
        except KestraError:
            pass  # undone one by one, each read first
    if len(to_import) < BULK_MIN or not flow_imports_safe(client):
        to_import = []  # put back one by one
    for batch in batches(to_import, lambda i: len(str(changes[i].before)) + _ENTRY_OVERHEAD,
                         limit):
        try:
            data = archive([(entry_name(i), str(changes[i].before)) for i in batch])
            failed = set(client.import_flows(data, filename="flows.zip"))
            settled.update({i: None for i in batch if entry_name(i) not in failed})
        except KestraError:
            pass
    return settled
