"""Read what the target holds now, in a number of requests that does not grow with the flows.

One ZIP export of the flows under every top-level namespace segment involved, one ZIP export of
namespace files per namespace holding managed files, the inventory, and the list of other
sources' inventories: a no-op promotion of a thousand flows costs a handful of requests.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from typing import Iterable, Mapping, Optional

from kestra_promote.target import inventory as inv
from kestra_promote.target import store
from kestra_promote import yamlnodes
from kestra_promote.target.client import KestraClient
from kestra_promote.config import Config
from kestra_promote.flows.desired import Desired
from kestra_promote.errors import KestraError, NotFound
from kestra_promote.models import FileKey, FlowKey, Inventory, LiveFile, LiveFlow, LiveState, Scope


def namespace_roots(namespaces: Iterable[str]) -> tuple[str, ...]:
    """The top-level segments that cover ``namespaces``: the scope of the flows read."""
    return tuple(sorted({ns.split(".", 1)[0] for ns in namespaces if ns}))


def in_namespace_tree(namespace: str, prefix: str) -> bool:
    """``namespace`` is ``prefix`` or one of its children (``a.b`` is under ``a``, ``ab`` is not)."""
    return namespace == prefix or namespace.startswith(prefix + ".")


def _identity(text: str, entry: str) -> FlowKey:
    written = yamlnodes.identity(text)  # the top of the text, as Kestra reads it: fast
    if written is not None and written["namespace"] and written["id"]:
        return FlowKey(written["namespace"], written["id"])
    try:
        value = yamlnodes.load(text)
    except Exception as exc:  # the server stored it, so this is unexpected: say which entry
        raise KestraError(f"the target's export holds an unreadable flow {entry!r}: {exc}") from exc
    if not isinstance(value, dict) or not value.get("id") or not value.get("namespace"):
        raise KestraError(f"the target's export holds {entry!r}, which has no id or namespace")
    return FlowKey(str(value["namespace"]), str(value["id"]))


def _zip(data: bytes, what: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise KestraError(f"the target's {what} is not a ZIP archive: {exc}") from exc


def parse_export(data: bytes, *, what: str = "export") -> list[LiveFlow]:
    """The flows of an export ZIP (one YAML source per entry)."""
    flows = []
    with _zip(data, what) as archive:
        for entry in archive.infolist():
            if entry.is_dir() or not entry.filename.endswith((".yml", ".yaml")):
                continue
            try:
                text = _entry(archive, entry, what).decode("utf-8")
            except UnicodeDecodeError:
                raise KestraError(f"the target's {what} holds {entry.filename!r}, which is not "
                                  "UTF-8 text") from None
            flows.append(LiveFlow(_identity(text, entry.filename), text))
    return flows


def _entry(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, what: str) -> bytes:
    """One entry's bytes; a damaged archive (bad CRC, cut short) is a clean error."""
    try:
        return archive.read(entry)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise KestraError(f"the target's {what} is a damaged ZIP archive ({entry.filename!r}: "
                          f"{exc}); try again, or check the proxy") from None


def read_files(client: KestraClient, namespace: str) -> dict[FileKey, LiveFile]:
    """Every namespace file of ``namespace`` (flows stored under /_flows/ excluded)."""
    try:
        data = client.export_namespace_files(namespace)
    except NotFound:
        return {}
    files = {}
    with _zip(data, f"files export of {namespace!r}") as archive:
        for entry in archive.infolist():
            path = "/" + entry.filename.lstrip("/")
            if entry.is_dir() or path.startswith("/_flows/"):
                continue
            key = FileKey(namespace, path)
            files[key] = LiveFile(key, _entry(archive, entry, f"files export of {namespace!r}"))
    return files


Inventories = tuple[Optional[Inventory], dict[str, Inventory]]  # this source's, and the others'


def read_inventories(client: KestraClient, namespace: str, name: str,
                     known: Mapping[str, Inventory] | None = None) -> Inventories:
    """This source's inventory (None if it has none yet) and every other source's; ``known``:
    inventories read earlier in this run, by KV key (their unchanged parts are not read again)."""
    own: Inventory | None = None
    others: dict[str, Inventory] = {}
    for key in client.list_kv_keys(namespace):
        if not key.startswith(inv.KEY_PREFIX):
            continue
        inventory = store.read(client, namespace, key, (known or {}).get(key))
        if inventory is None:  # deleted between the listing and now
            continue
        if key == inv.kv_key(name):
            own = inventory
        else:
            # named by its key, which is what a source reads and what adopt deletes: a copy
            # stored under another key (a backup) is a source of its own
            others[key[len(inv.KEY_PREFIX):]] = inventory
    return own, others


def read_live_state(
    client: KestraClient, flow_namespaces: Iterable[str], file_namespaces: Iterable[str] = (),
    *, state_namespace: str | None = None, name: str = "default", include: Iterable[str] = (),
    inventories: Inventories | None = None, known: Mapping[str, Inventory] | None = None,
) -> LiveState:
    """The live flows and files the plan needs, and the inventories (if ``state_namespace``;
    ``inventories`` when they were just read; ``known``: see ``read_inventories``)."""
    own, others = (inventories if inventories is not None else
                   read_inventories(client, state_namespace, name, known) if state_namespace
                   else (None, {}))
    flow_spaces = set(flow_namespaces) | ({k.namespace for k in own.flows} if own else set())
    flow_spaces |= {p.split("*")[0].rstrip(".") for p in include}
    file_spaces = set(file_namespaces) | ({k.namespace for k in own.files} if own else set())
    prefixes = namespace_roots(flow_spaces)
    flows = {flow.key: flow for flow in read_flows(client, prefixes, own)}
    files: dict[FileKey, LiveFile] = {}
    for namespace in sorted(file_spaces):
        files.update(read_files(client, namespace))
    scope = Scope(prefixes, tuple(sorted(file_spaces)), state_namespace or "system")
    return LiveState(flows=dict(sorted(flows.items())), files=dict(sorted(files.items())),
                     inventory=own, others=others, scope=scope)


def roots_regex(prefixes: Iterable[str]) -> str:
    """A regular expression for the namespaces under any of ``prefixes`` (each a plain
    namespace: lower-case letters, digits, '.', '_', '-')."""
    names = "|".join(prefix.replace(".", "[.]") for prefix in sorted(prefixes))
    return f"^({names})([.].*)?$"


def read_flows(client: KestraClient, prefixes: tuple[str, ...],
               own: Inventory | None = None, *, expected: bool = False) -> list[LiveFlow]:
    """Every live flow under ``prefixes``, in one request whatever their number. ``expected``:
    flows are known to be there even without an inventory (a revert's own writes)."""
    def under(flows: list[LiveFlow]) -> list[LiveFlow]:
        # filtered here too: the server's filter is not guaranteed to stop at a dot
        return [f for f in flows if any(in_namespace_tree(f.key.namespace, p) for p in prefixes)]

    def by_prefix(prefix: str) -> list[LiveFlow]:
        return parse_export(client.export_flows(prefix), what=f"export of {prefix!r}")

    if len(prefixes) <= 1:
        return under(by_prefix(prefixes[0])) if prefixes else []
    found = parse_export(client.export_flows_matching(roots_regex(prefixes)),
                         what=f"export of {', '.join(prefixes)}")
    if not found and (expected or (own is not None and own.flows)):
        # the inventory says flows are there: a server whose REGEX filter works otherwise than
        # the open-source databases' (a search engine's regex is anchored and has no '^'); read
        # root by root rather than plan every managed flow as missing
        found = [flow for prefix in prefixes for flow in by_prefix(prefix)]
    return under(found)


def namespace_tree(client: KestraClient, prefix: str) -> list[str]:
    """``prefix`` and every namespace below it on the way to a flow, parents first: what a
    development instance holds (flows, and the namespace files next to them) under ``prefix``."""
    found = {prefix}
    for flow in parse_export(client.export_flows(prefix), what=f"export of {prefix!r}"):
        namespace = flow.key.namespace
        if not in_namespace_tree(namespace, prefix):
            continue
        segments = namespace[len(prefix):].strip(".").split(".") if namespace != prefix else []
        for depth in range(1, len(segments) + 1):
            found.add(".".join([prefix, *segments[:depth]]))
    return sorted(found, key=lambda ns: (ns.count("."), ns))


def read_for(client: KestraClient, desired: Desired, config: Config,
             inventories: Inventories | None = None) -> LiveState:
    """The live state a plan of ``desired`` under ``config`` needs."""
    return read_live_state(
        client, {k.namespace for k in desired.flows}, {k.namespace for k in desired.files},
        state_namespace=config.state_namespace, name=config.name, include=config.include,
        inventories=inventories)
