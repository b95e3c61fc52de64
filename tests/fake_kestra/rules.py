"""Kestra's flow model rules, as the fake server enforces them on validate, create and update.

Written from Kestra's documented behaviour (the Flow model's constraints, its validation of
tasks, inputs, labels and triggers), not from the client's code: the fake must catch what a
real server catches, independently of what the client checks locally.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

import yaml

FLOW_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
TASK_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")
INPUT_ID = re.compile(r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$")

INPUT_TYPES = {
    "STRING", "ENUM", "SELECT", "MULTISELECT", "INT", "FLOAT", "BOOLEAN", "BOOL", "DATETIME",
    "DATE", "TIME", "DURATION", "FILE", "JSON", "URI", "SECRET", "ARRAY", "YAML", "EMAIL",
}
FLOW_KEYS = {
    "id", "namespace", "revision", "description", "labels", "inputs", "outputs", "variables",
    "tasks", "errors", "finally", "afterExecution", "listeners", "triggers", "pluginDefaults",
    "taskDefaults", "disabled", "deleted", "concurrency", "retry", "sla", "checks", "tenantId",
}
REMOVED_IN_2 = {"pluginDefaults", "taskDefaults"}
ALLOWED_SYSTEM_LABELS = {"system.readOnly"}

CORE = "io.kestra.plugin.core."
# Flowable tasks whose `tasks` list may not be empty.
NEEDS_TASKS = {CORE + "flow." + n for n in (
    "Parallel", "Sequential", "WorkingDirectory", "ForEach", "EachSequential", "EachParallel",
    "AllowFailure", "Dag", "WaitFor", "Loop", "LoopUntil")}
FLOWABLE = NEEDS_TASKS | {CORE + "flow." + n for n in ("If", "Switch", "Pause")}
SUBFLOW_TYPES = {CORE + "flow.Subflow", "io.kestra.core.tasks.flows.Subflow",
                 "io.kestra.core.tasks.flows.Flow"}
COMMON_TASK_KEYS = {"id", "type", "description", "retry", "timeout", "disabled", "logLevel",
                    "allowFailure", "allowWarning", "logToFile", "runIf", "when", "workerGroup",
                    "version", "taskCache"}
# Properties of a few core tasks, to reject unknown properties as Jackson does.
TASK_PROPERTIES = {
    CORE + "debug.Return": {"format"},
    CORE + "debug.Echo": {"format", "level"},
    CORE + "log.Log": {"message", "level"},
}

# The plugins a stock `kestra/kestra` image ships that flows in these tests use.
DEFAULT_PLUGINS = frozenset(
    [CORE + t for t in (
        "debug.Return", "debug.Echo", "log.Log", "log.Fetch", "execution.Fail", "execution.Labels",
        "execution.Resume", "execution.Exit", "output.OutputValues", "state.Get", "state.Set",
        "state.Delete", "storage.LocalFiles", "kv.Get", "kv.Set", "kv.Delete", "http.Request",
        "namespace.UploadFiles", "namespace.DownloadFiles", "templating.TemplatedTask",
        "trigger.Schedule", "trigger.Flow", "trigger.Webhook", "condition.ExecutionFlow",
        "condition.ExecutionNamespace", "condition.ExecutionStatus", "condition.ExpressionCondition",
        "condition.MultipleCondition", "runner.Process",
    )]
    + [CORE + "flow." + n for n in (
        "Parallel", "Sequential", "WorkingDirectory", "ForEach", "ForEachItem", "EachSequential",
        "EachParallel", "AllowFailure", "Dag", "WaitFor", "Loop", "LoopUntil", "If", "Switch",
        "Pause", "Sleep", "Subflow", "Template",
    )]
    + [
        "io.kestra.core.tasks.log.Log", "io.kestra.core.tasks.executions.Fail",
        "io.kestra.core.tasks.trigger.Toggle", "io.kestra.core.tasks.flows.Subflow",
        "io.kestra.core.tasks.flows.Flow",
        "io.kestra.plugin.scripts.python.Commands", "io.kestra.plugin.scripts.python.Script",
        "io.kestra.plugin.scripts.shell.Commands", "io.kestra.plugin.scripts.runner.docker.Docker",
        "io.kestra.plugin.git.Clone", "io.kestra.plugin.git.PushFlows",
        "io.kestra.plugin.git.PushNamespaceFiles", "io.kestra.plugin.git.SyncFlows",
        "io.kestra.plugin.fs.http.Trigger", "io.kestra.plugin.gcp.gcs.Trigger",
    ]
)


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Rejects duplicate keys, as Kestra's parser does."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"Duplicate field '{key}'", key_node.start_mark)
        seen.add(key)
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse(source: str) -> Any:
    return yaml.load(source, Loader=_StrictLoader)


def _children(task: dict) -> Iterator[tuple[str, Any]]:
    """(path suffix, child task) for tasks nested in a flowable task."""
    kind = task.get("type")
    for key in ("tasks", "errors", "finally", "then", "else"):
        value = task.get(key)
        if isinstance(value, list):
            for i, child in enumerate(value):
                if kind == CORE + "flow.Dag" and key == "tasks" and isinstance(child, dict):
                    child = child.get("task")
                yield f"{key}[{i}]", child
        elif isinstance(value, dict) and key in ("then", "else"):
            yield key, value
    if kind == CORE + "flow.Switch":
        for case, value in (task.get("cases") or {}).items():
            for i, child in enumerate(value or []):
                yield f"cases.{case}[{i}]", child
        for i, child in enumerate(task.get("defaults") or []):
            yield f"defaults[{i}]", child


class _Checker:
    def __init__(self, flow: dict, *, version: str, edition: str, plugins: frozenset[str]):
        self.flow = flow
        self.major = int(version.split(".")[0])
        self.edition = edition
        self.plugins = plugins
        self.errors: list[tuple[str, str]] = []
        self.task_ids: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append((path, message))

    def run(self) -> list[tuple[str, str]]:
        flow = self.flow
        for key in flow:
            if key not in FLOW_KEYS or (self.major >= 2 and key in REMOVED_IN_2):
                self.add(str(key), f'Unrecognized field "{key}"')
        self.identity()
        tasks = flow.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            self.add("tasks", "must not be empty")
        for section in ("tasks", "errors", "finally", "afterExecution"):
            for i, task in enumerate(flow.get(section) or []):
                self.task(task, f"{section}[{i}]")
        for i, listener in enumerate(flow.get("listeners") or []):
            if not isinstance(listener, dict) or not listener.get("tasks"):
                self.add(f"listeners[{i}].tasks", "must not be empty")
                continue
            for j, task in enumerate(listener["tasks"]):
                self.task(task, f"listeners[{i}].tasks[{j}]")
        duplicates = sorted({t for t in self.task_ids if self.task_ids.count(t) > 1})
        if duplicates:
            self.add("tasks", f"Duplicate task id with name [{', '.join(duplicates)}]")
        self.inputs()
        self.labels()
        self.triggers()
        return self.errors

    def identity(self) -> None:
        for key, pattern, size in (("id", FLOW_ID, 100), ("namespace", NAMESPACE, 150)):
            value = self.flow.get(key)
            if value is None or value == "":
                self.add(key, "must not be blank" if value == "" else "must not be null")
            elif not pattern.match(str(value)):
                self.add(key, f'must match "{pattern.pattern}"')
            elif len(str(value)) > size:
                self.add(key, f"size must be between 1 and {size}")

    def task(self, task: Any, path: str, *, in_working_directory: bool = False) -> None:
        if not isinstance(task, dict):
            self.add(path, "must be a task object")
            return
        task_id, kind = task.get("id"), task.get("type")
        if task_id is None:
            self.add(f"{path}.id", "must not be null")
        elif not TASK_ID.match(str(task_id)):
            self.add(f"{path}.id", f'must match "{TASK_ID.pattern}"')
        else:
            self.task_ids.append(str(task_id))
        if kind is None:
            self.add(f"{path}.type", "must not be null")
            return
        if kind not in self.plugins:
            self.add(f"{path}.type", f"Invalid type: {kind}")
            return
        if "workerGroup" in task and self.edition == "oss":
            self.add(f"{path}.workerGroup", "Worker Group is an Enterprise Edition functionality")
        known = TASK_PROPERTIES.get(kind)
        if known is not None:
            for key in task:
                if key not in known | COMMON_TASK_KEYS:
                    self.add(f"{path}.{key}", f'Unrecognized field "{key}"')
        if in_working_directory and kind in FLOWABLE:
            self.add(path, "Only runnable tasks are allowed as children of a WorkingDirectory task")
        if kind in NEEDS_TASKS and not task.get("tasks"):
            self.add(f"{path}.tasks", "must not be empty")
        if kind == CORE + "flow.Switch" and not task.get("cases") and not task.get("defaults"):
            self.add(path, "No task defined, neither cases or default have any tasks")
        if kind == CORE + "flow.Dag":
            self.dag(task, path)
        if kind in SUBFLOW_TYPES and task.get("namespace") == self.flow.get("namespace") and \
                task.get("flowId") == self.flow.get("id"):
            self.add(path, f"Recursive call to flow [{self.flow.get('namespace')}.{self.flow.get('id')}]")
        inside = kind == CORE + "flow.WorkingDirectory"
        for suffix, child in _children(task):
            self.task(child, f"{path}.{suffix}", in_working_directory=inside)

    def dag(self, task: dict, path: str) -> None:
        graph: dict[str, list[str]] = {}
        for entry in task.get("tasks") or []:
            if isinstance(entry, dict) and isinstance(entry.get("task"), dict):
                graph[str(entry["task"].get("id"))] = [str(d) for d in entry.get("dependsOn") or []]
        for deps in graph.values():
            for dep in deps:
                if dep not in graph:
                    self.add(path, f"Not existing task id in dependency: {dep}")
        visiting, done, cyclic = set(), set(), set()

        def visit(node: str) -> None:
            if node in done or node not in graph:
                return
            if node in visiting:
                cyclic.add(node)
                return
            visiting.add(node)
            for dep in graph[node]:
                visit(dep)
            visiting.discard(node)
            done.add(node)

        for node in graph:
            visit(node)
        if cyclic:
            self.add(path, f"Cyclic dependency detected: {', '.join(sorted(cyclic))}")

    def inputs(self) -> None:
        ids = []
        for i, item in enumerate(self.flow.get("inputs") or []):
            path = f"inputs[{i}]"
            if not isinstance(item, dict):
                self.add(path, "must be an input object")
                continue
            input_id = item.get("id", item.get("name"))
            if input_id is None:
                self.add(f"{path}.id", "must not be null")
            elif not INPUT_ID.match(str(input_id)):
                self.add(f"{path}.id", f'must match "{INPUT_ID.pattern}"')
            else:
                ids.append(str(input_id))
            kind = item.get("type")
            if kind is None:
                self.add(f"{path}.type", "must not be null")
            elif kind not in INPUT_TYPES:
                self.add(f"{path}.type", f"Invalid input type: {kind}")
            if kind == "STRING" and "validator" in item:
                try:
                    re.compile(str(item["validator"]))
                except re.error as exc:
                    self.add(f"{path}.validator", f"Invalid validator regex: {exc}")
            if kind == "FILE" and "defaults" in item:
                self.add(f"{path}.defaults", "Inputs of type FILE cannot have defaults")
            if kind == "ARRAY" and item.get("itemType") == "ARRAY":
                self.add(f"{path}.itemType", "An ARRAY input cannot hold ARRAY items")
        duplicates = sorted({x for x in ids if ids.count(x) > 1})
        if duplicates:
            self.add("inputs", f"Duplicate input with name [{', '.join(duplicates)}]")

    def labels(self) -> None:
        labels = self.flow.get("labels") or {}
        pairs = labels.items() if isinstance(labels, dict) else [
            (item.get("key"), item.get("value")) for item in labels if isinstance(item, dict)]
        for key, value in pairs:
            if str(key).startswith("system.") and key not in ALLOWED_SYSTEM_LABELS:
                self.add("labels", "System labels can only be set by Kestra itself, "
                                   f"offending label: {key}={value}")

    def triggers(self) -> None:
        ids = []
        for i, trigger in enumerate(self.flow.get("triggers") or []):
            path = f"triggers[{i}]"
            if not isinstance(trigger, dict):
                self.add(path, "must be a trigger object")
                continue
            if trigger.get("id") is None:
                self.add(f"{path}.id", "must not be null")
            else:
                ids.append(str(trigger["id"]))
            if trigger.get("type") not in self.plugins:
                self.add(f"{path}.type", f"Invalid type: {trigger.get('type')}")
            # 2.0 removed trigger `conditions` (for `when`), which 1.x does not know
            forbidden = "conditions" if self.major >= 2 else "when"
            if forbidden in trigger:
                self.add(f"{path}.{forbidden}", f'Unrecognized field "{forbidden}"')
        duplicates = sorted({x for x in ids if ids.count(x) > 1})
        if duplicates:
            self.add("triggers", f"Duplicate trigger id with name [{', '.join(duplicates)}]")


def check(source: str, *, version: str = "2.0", edition: str = "oss",
          plugins: frozenset[str] = DEFAULT_PLUGINS) -> tuple[dict | None, list[tuple[str, str]]]:
    """(parsed flow or None, [(path, message)]) for one flow source."""
    try:
        flow = parse(source)
    except yaml.YAMLError as exc:
        return None, [("flow", f"Illegal flow source: {exc}")]
    if not isinstance(flow, dict):
        return None, [("flow", "Illegal flow source: expected an object")]
    return flow, _Checker(flow, version=version, edition=edition, plugins=plugins).run()
