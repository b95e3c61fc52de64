"""From what Git holds to what the target should hold: pure text transformations.

Applies the settings to the flows read from Git: namespace renaming (of each flow and of the
references inside it), added labels, and the ``namespaces.include`` filter. Edits are
format-preserving (see ``renaming`` and ``flowdoc``). Also works out which flows a flow depends
on, for ordering.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import yaml

from kestra_promote.version import __version__
from kestra_promote.flows import flowdoc, references, renaming
from kestra_promote import yamlnodes
from kestra_promote.compare import origin_hash, source_hash
from kestra_promote.config import Config
from kestra_promote.errors import SourceError
from kestra_promote.models import (
    DesiredFile,
    DesiredFlow,
    FileKey,
    FlowKey,
    Inventory,
    KnownFile,
    LiveFlow,
    Problem,
    sort_key,
)
from kestra_promote.git.source import Source, check_namespace, parse_flows


@dataclass(frozen=True)
class Desired:
    """The flows and files the target should hold, as they will be sent."""

    flows: Mapping[FlowKey, DesiredFlow]
    files: Mapping[FileKey, DesiredFile] = field(default_factory=dict)
    warnings: tuple[Problem, ...] = ()
    excluded: tuple[FlowKey | FileKey, ...] = ()  # in Git, but outside namespaces.include
    known: tuple[KnownFile, ...] = ()  # not parsed yet: ``resolve`` fills them in

    @property
    def namespaces(self) -> set[str]:
        return {k.namespace for k in self.flows} | {k.namespace for k in self.files}


# -- what a flow file gives, known without parsing it ---------------------------------------------

# the code that reads a flow file and turns it into what is deployed: a change to any of it may
# change the result, so it is part of every origin hash (modules named below the package)
_READERS = ("git.source", "flows.desired", "flows.flowdoc", "flows.references", "flows.renaming",
            "yamlnodes", "config", "compare", "models", "keys")
_PACKAGE = __name__.split(".")[0]


@functools.lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    digest = hashlib.sha256(f"{__version__} {yaml.__version__} {yamlnodes.Loader.__name__}"
                            .encode())
    for name in _READERS:
        module = sys.modules.get(f"{_PACKAGE}.{name}")
        try:
            digest.update(Path(str(getattr(module, "__file__", ""))).read_bytes())
        except OSError:  # not read from files (a zip, a frozen build): the version decides
            digest.update(name.encode())
    return digest.hexdigest()


def fingerprint(config: Config) -> str:
    """What turns a flow file's text into what is deployed: this code and the settings that
    edit flows. Equal fingerprints and equal texts give equal flows."""
    # in the settings' own order: labels are added in that order, so it shows in the flow
    settings = json.dumps([config.rename, config.labels, *(["disable triggers"] if
                                                           config.disable_triggers else [])],
                          default=str)
    return hashlib.sha256(f"{_code_fingerprint()}\n{settings}".encode()).hexdigest()


def recogniser(config: Config, inventory: Inventory | None) -> Callable[[str], str | None]:
    """For ``read_source(known=...)``: the origin hash of a flow file's text when the inventory
    records a flow deployed from exactly that text under these settings, else None."""
    recorded = {m.source for m in inventory.flows.values() if m.source} if inventory else set()
    mark = fingerprint(config)

    def known(text: str) -> str | None:
        origin = origin_hash(mark, text)
        return origin if origin in recorded else None

    return known if recorded else (lambda text: None)


def resolve(desired: Desired, config: Config, live: Mapping[FlowKey, LiveFlow],
            inventory: Inventory | None, read_all: Callable[[], Desired]) -> Desired:
    """``desired`` with the flow of every known file filled in, exactly as parsing it gives.

    A known file gives the flow the inventory records for its text: that key, and the text
    deployed, which is the file's own (nothing edits it) or the live copy that still matches the
    recorded hash. A file this cannot fill (no such record now, or its live copy changed and the
    settings edit flows) is parsed here; if that clashes with another flow, or is wrong in any
    way, everything is read again by ``read_all``, so the result (problems included) is what
    reading without the inventory gives."""
    if not desired.known:
        return desired
    by_origin = {m.source: key for key, m in inventory.flows.items()} if inventory else {}
    untouched = not config.rename and not config.labels and not config.disable_triggers
    flows, excluded, parse = dict(desired.flows), list(desired.excluded), []
    for known in desired.known:
        key = by_origin.get(known.origin)
        managed = inventory.flows.get(key) if inventory is not None and key else None
        text = None
        if managed is not None and untouched:
            text = known.text if source_hash(known.text) == managed.hash else None
        elif managed is not None and key is not None and (have := live.get(key)) is not None:
            text = have.source if source_hash(have.source) == managed.hash else None
        if text is None or key is None:
            parse.append(known)
        elif not config.includes(key.namespace):
            excluded.append(key)
        elif key in flows:
            return read_all()  # two files, one flow: reported as a full read reports it
        else:
            flows[key] = DesiredFlow(key, text, known.path, known.origin)
    warnings = list(desired.warnings)
    if parse:
        problems: list[Problem] = []
        parsed = prepare_flows(parse_flows(((k.path, k.text) for k in parse), problems,
                                           config.flows),
                               config, warnings, problems)
        if problems or any(key in flows for key in parsed.flows):
            return read_all()
        flows.update(parsed.flows)
        excluded += parsed.excluded
    return dataclasses.replace(
        desired, flows=dict(sorted(flows.items())), warnings=_ordered(warnings),
        excluded=tuple(sorted(excluded, key=sort_key)), known=())


def _ordered(warnings: list[Problem]) -> tuple[Problem, ...]:
    return tuple(sorted(warnings, key=lambda w: (w.path or "", w.line or 0, w.message)))


# -- the transformation -----------------------------------------------------------------------


def dependencies_of(flow: DesiredFlow) -> frozenset[FlowKey]:
    """The flows ``flow`` calls or listens to (read when it is written: its order)."""
    if "flowId" not in flow.source and "\\" not in flow.source:
        # every way of naming another flow has a flowId key (Subflow, ForEachItem, Flow trigger,
        # conditions), written out unless a double-quoted key spells it with escapes
        return frozenset()
    root = yamlnodes.compose_documents(flow.source)[0]
    return frozenset(references.dependencies(root)) - {flow.key}


def _transform(flow: DesiredFlow, config: Config, warnings: list[Problem],
               problems: list[Problem]) -> DesiredFlow | None:
    if not config.rename and not config.labels and not config.disable_triggers:
        return flow  # nothing to edit: the text is sent as Git holds it
    root = yamlnodes.compose_documents(flow.source)[0]
    assert isinstance(root, yaml.MappingNode)
    namespace = renaming.rename_namespace(flow.key.namespace, config.rename)
    if (why := check_namespace(namespace)) is not None:
        problems.append(Problem(f"after renaming {flow.key.namespace!r}: {why}", flow.path,
                                flow=flow.key))
        return None
    key = FlowKey(namespace, flow.key.id)  # how the plan names the flow: so do its messages

    def warn(ref: references.Reference, message: str) -> None:
        warnings.append(Problem(message, flow.path, line=ref.line, flow=key))

    try:
        edits = renaming.rename_edits(flow.source, root, config.rename, warn)
        edits += flowdoc.label_edits(flow.source, root, config.labels)
        if config.disable_triggers:
            edits += flowdoc.disable_trigger_edits(flow.source, root)
        text = flowdoc.apply_edits(flow.source, edits)
        # a safety net for the text surgery: the new text says what the old one says, but for
        # the renamed namespaces, the labels and the triggers turned off
        new_root = flowdoc.verify_edits(root, text, edits, config.labels,
                                        disabled=config.disable_triggers) if edits else root
    except flowdoc.EditRefused as exc:
        problems.extend(Problem(message, flow.path, line=line, flow=key)
                        for message, line in exc.problems)
        return None
    except ValueError as exc:
        problems.append(Problem(str(exc), flow.path, flow=key))
        return None
    written = yamlnodes.scalar_text(yamlnodes.mapping_get(new_root, "namespace"))
    if written != namespace:
        problems.append(Problem(f"editing the flow would give it namespace {written!r} instead of "
                                f"{namespace!r}, so it is left as it is; please report this",
                                flow.path, flow=key))
        return None
    return DesiredFlow(key, text, flow.path)


@dataclass(frozen=True)
class _Prepared:
    flows: dict[FlowKey, DesiredFlow]
    excluded: list[FlowKey | FileKey]


def prepare_flows(flows: Mapping[FlowKey, DesiredFlow], config: Config,
                  warnings: list[Problem], problems: list[Problem]) -> _Prepared:
    """Transform parsed flows (as Git holds them) into what is deployed, by target key."""
    mark = fingerprint(config)
    result: dict[FlowKey, DesiredFlow] = {}
    origins: dict[FlowKey, list[str]] = {}
    excluded: list[FlowKey | FileKey] = []
    blamed: dict[tuple[str, str], list[str]] = {}
    for flow in flows.values():
        if _blamed_on_flag(flow.key.namespace, flow.path, config, blamed):
            continue
        before = len(warnings)
        transformed = _transform(flow, config, warnings, problems)
        if transformed is None:
            continue
        if not config.includes(transformed.key.namespace):
            excluded.append(transformed.key)
            continue
        origins.setdefault(transformed.key, []).append(f"{flow.path} ({flow.key.namespace})")
        # a flow with warnings is read every time, so that they are told every time
        origin = origin_hash(mark, flow.source) if len(warnings) == before else None
        result[transformed.key] = dataclasses.replace(transformed, origin=origin)
    for key, paths in origins.items():
        if len(paths) > 1:
            problems.append(Problem(
                f"renaming makes {len(paths)} flows the same flow {key}: {', '.join(paths)}",
                paths[0].split(" ")[0], flow=key))
    problems.extend(_flag_problems(blamed))
    return _Prepared(result, excluded)


def _blamed_on_flag(namespace: str, path: str, config: Config,
                    blamed: dict[tuple[str, str], list[str]]) -> bool:
    """Whether a --rename flag (not the settings) gives ``namespace`` an invalid name: then
    noted in ``blamed`` (flag and problem: paths), told once for the flag by ``_flag_problems``."""
    for old in sorted(config.rename, key=len, reverse=True):
        if namespace == old or namespace.startswith(old + "."):
            if old not in config.rename_flags:
                return False
            why = check_namespace(renaming.rename_namespace(namespace, config.rename))
            if why is None:
                return False
            flag = f"--rename {old}={config.rename[old]}"
            blamed.setdefault((flag, f"after renaming {namespace!r}: {why}"), []).append(path)
            return True
    return False


def _flag_problems(blamed: Mapping[tuple[str, str], list[str]]) -> list[Problem]:
    problems = []
    for (flag, why), paths in blamed.items():
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        problems.append(Problem(f"{flag}: {why} ({shown})"))
    return problems


def prepare(source: Source, config: Config | None = None) -> Desired:
    """Apply ``config`` (default: the source's own) to the source; SourceError on problems.
    Flow files the source only knows (``Source.known``) are left to ``resolve``."""
    config = config or source.config
    warnings: list[Problem] = []
    problems: list[Problem] = []
    for old, new in config.rename.items():
        for label, value in (("from", old), ("to", new)):
            if value and (why := check_namespace(value)) is not None:
                problems.append(Problem(f"namespaces.rename {label}: {why}", config.path))
    prepared = _Prepared({}, [])
    if not problems:
        prepared = prepare_flows(source.flows, config, warnings, problems)
    excluded = prepared.excluded
    files: dict[FileKey, DesiredFile] = {}
    blamed: dict[tuple[str, str], list[str]] = {}
    for file in source.files.values():
        if _blamed_on_flag(file.key.namespace, file.path, config, blamed):
            continue
        file_key = FileKey(renaming.rename_namespace(file.key.namespace, config.rename),
                           file.key.path)
        if (why := check_namespace(file_key.namespace)) is not None:
            problems.append(Problem(f"after renaming {file.key.namespace!r}: {why}", file.path))
            continue
        if not config.includes(file_key.namespace):  # files follow the scope, as flows do
            excluded.append(file_key)
            continue
        if file_key in files:
            problems.append(Problem(f"renaming makes two namespace files {file_key}", file.path))
        files[file_key] = DesiredFile(file_key, file.content, file.path)
    problems.extend(_flag_problems(blamed))
    if problems:
        raise SourceError(f"{len(problems)} problem(s) applying the settings; nothing was written",
                          problems)
    return Desired(
        flows=dict(sorted(prepared.flows.items())), files=dict(sorted(files.items())),
        warnings=_ordered(warnings), excluded=tuple(sorted(excluded, key=sort_key)),
        known=source.known,
    )
