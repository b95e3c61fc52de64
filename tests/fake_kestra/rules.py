"""Kestra's flow model rules, as the fake server enforces them on validate, create and update.

Ported from Kestra's source for the two versions the project supports (the `version` argument,
"1.3.x" or "2.0.x", selects the rule set): how a flow source is parsed (YamlParser: duplicate keys and
unknown properties fail), the constraints of the model classes (@NotNull, @Pattern, @Size, @Valid
...) and the validators of core/src/main/java/io/kestra/core/validations/validator/. Each rule names
the Java file it comes from. The plugin types and their properties are in `catalog.py`.
Written from Kestra's source, not from the client's code: the fake must catch what a real server
catches, independently of what the client checks locally.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import urlsplit

import yaml

from . import catalog
from .catalog import CORE, FLOWABLE, RUNNER, TRIGGER, PluginType

# The task, trigger, condition and runner types a stock `kestra/kestra` image of 1.3 or 2.0 ships
# (core, plugin-scripts, plugin-git, aliases). The rules use the set of the version they emulate:
# a caller may add types (e.g. Kestra's test plugins) or leave some out.
DEFAULT_PLUGINS = catalog.stock_types("1.3") | catalog.stock_types("2.0")
# A full `kestra/kestra` image: those, and every type of Kestra's open-source plugins, known by
# name (catalog.full_image_types).
FULL_IMAGE_PLUGINS = DEFAULT_PLUGINS | catalog.full_image_types()
# models/flows/Type.java: the input types of either version (1.3 also has ENUM and BOOLEAN, 2.0 FORM)
INPUT_TYPES = frozenset(catalog.INPUT_KEYS["1.3"]) | frozenset(catalog.INPUT_KEYS["2.0"])

# models/flows/AbstractFlow.java
FLOW_ID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")
NAMESPACE = re.compile(r"[a-z0-9][a-z0-9._-]*")
TENANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")
# models/tasks/TaskInterface.java, models/triggers/TriggerInterface.java
TASK_ID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*")
# models/flows/Input.java, Output.java
INPUT_ID = re.compile(r"[a-zA-Z0-9][.a-zA-Z0-9_-]*")
# models/Label.java
LABEL_KEY_MESSAGE = ("Invalid label key. A valid key contains only lowercase letters numbers hyphens (-) "
                     "underscores (_) or periods (.) and must begin with a lowercase letter.")
SYSTEM_PREFIX, READ_ONLY = "system.", "system.readOnly"
# validations/validator/FlowValidator.java (1.3 only)
RESERVED_FLOW_IDS = ("pause", "resume", "force-run", "change-status", "kill", "executions", "search",
                     "source", "disable", "enable")


# -- parsing: serializers/YamlParser.java (both versions enable STRICT_DUPLICATE_DETECTION) --------

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


def rule_set(version: str) -> str:
    """"1.3" or "2.0": the rule set of a server version ("1.3.4", "2.0", ...)."""
    major, _, rest = str(version).partition(".")
    minor = rest.partition(".")[0] or "0"
    return "1.3" if (int(major), int(minor)) < (2, 0) else "2.0"


# -- the checker -----------------------------------------------------------------------------------

@dataclass
class _Task:
    path: str
    body: dict
    kind: str                       # canonical type name
    spec: PluginType | None         # None: a type known by name only


@dataclass
class _Check:
    flow: dict
    version: str                    # "1.3" or "2.0"
    edition: str
    available: frozenset[str]
    errors: list[tuple[str, str]] = field(default_factory=list)
    tasks: list[_Task] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.errors.append((path, message))

    @property
    def v2(self) -> bool:
        return self.version == "2.0"


def _available(version: str, plugins: frozenset[str]) -> frozenset[str]:
    """The types of that version's stock image that `plugins` keeps, plus any extra type it adds."""
    return (plugins & catalog.stock_types(version)) | (plugins - DEFAULT_PLUGINS)


def check(source: str, *, version: str = "2.0", edition: str = "oss",
          plugins: frozenset[str] = DEFAULT_PLUGINS) -> tuple[dict | None, list[tuple[str, str]]]:
    """(parsed flow or None, [(path, message)]) for one flow source."""
    try:
        flow = parse(source)
    except yaml.YAMLError as exc:
        return None, [("flow", f"Illegal flow source: {exc}")]
    if not isinstance(flow, dict):
        return None, [("flow", "Illegal flow source: expected an object")]
    ctx = _Check(flow, rule_set(version), edition, _available(rule_set(version), frozenset(plugins)))
    for rule in _RULES:
        rule(ctx)
    return flow, ctx.errors


# -- small helpers ---------------------------------------------------------------------------------

def _unknown_keys(ctx: _Check, body: dict, known: frozenset[str], path: str) -> None:
    # serializers/YamlParser.java: the strict mapper fails on unknown properties
    for key in body:
        if key not in known:
            ctx.add(f"{path}.{key}" if path else str(key), f'Unrecognized field "{key}"')


def _required(ctx: _Check, body: dict, not_null: Any, not_empty: Any, path: str) -> None:
    # jakarta @NotNull / @NotEmpty on the model fields
    for key in sorted(not_null):
        value = body.get(key)
        if value is None:
            ctx.add(f"{path}.{key}", "must not be null")
        elif key in not_empty and value in ("", [], {}):
            ctx.add(f"{path}.{key}", "must not be empty")


def _enum(ctx: _Check, value: Any, allowed: frozenset[str], path: str) -> None:
    # Jackson: an enum value outside its constants fails to deserialize
    if value is not None and str(value) not in allowed:
        ctx.add(path, f'Cannot deserialize value "{value}": not one of the values accepted '
                      f"[{', '.join(sorted(allowed))}]")


def _object(ctx: _Check, value: Any, path: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        ctx.add(path, "Cannot deserialize value: expected an object")
        return None
    return value


def _objects(ctx: _Check, value: Any, path: str) -> Iterator[tuple[str, dict]]:
    if value is None:
        return
    if not isinstance(value, list):
        ctx.add(path, "Cannot deserialize value: expected a list")
        return
    for i, item in enumerate(value):
        item = _object(ctx, item, f"{path}[{i}]")
        if item is not None:
            yield f"{path}[{i}]", item


def _duplicates(values: list[str]) -> list[str]:
    return [v for i, v in enumerate(values) if values.count(v) > 1 and values.index(v) == i]


def _is_expression(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


# -- flow-level keys and identity ------------------------------------------------------------------

def _flow_keys(ctx: _Check) -> None:
    # models/flows/Flow.java, AbstractFlow.java, FlowWithSource.java (1.3 and 2.0 differ, see catalog)
    _unknown_keys(ctx, ctx.flow, catalog.FLOW_KEYS[ctx.version], "")


def _identity(ctx: _Check) -> None:
    # models/flows/AbstractFlow.java: id, namespace, tenantId, revision (2.0 and 1.3)
    for key, pattern, size in (("id", FLOW_ID, 100), ("namespace", NAMESPACE, 150)):
        value = ctx.flow.get(key)
        if value is None:
            ctx.add(key, "must not be null")
        elif str(value) == "":
            ctx.add(key, "must not be blank" if key == "id" else "must match \"^[a-z0-9][a-z0-9._-]*\"")
        elif not pattern.fullmatch(str(value)):
            ctx.add(key, f'must match "^{pattern.pattern}"')
        elif len(str(value)) > size:
            ctx.add(key, f"size must be between 1 and {size}")
    tenant = ctx.flow.get("tenantId")
    if tenant is not None and not TENANT_ID.fullmatch(str(tenant)):
        ctx.add("tenantId", f'must match "^{TENANT_ID.pattern}"')
    revision = ctx.flow.get("revision")
    if isinstance(revision, int) and revision < 1:
        ctx.add("revision", "must be greater than or equal to 1")
    # FlowValidator.RESERVED_FLOW_IDS (1.3 only; 2.0 removed it)
    if ctx.version == "1.3" and ctx.flow.get("id") in RESERVED_FLOW_IDS:
        ctx.add("id", f"Flow id is a reserved keyword: {ctx.flow['id']}. List of reserved keywords: "
                      + ", ".join(RESERVED_FLOW_IDS))


# -- tasks -----------------------------------------------------------------------------------------

def _tasks(ctx: _Check) -> None:
    # models/flows/Flow.java: `tasks` is @NotEmpty; tasks, errors, finally, afterExecution hold tasks
    tasks = ctx.flow.get("tasks")
    if tasks is None or tasks == []:
        ctx.add("tasks", "must not be empty")
    for section in ("tasks", "errors", "finally", "afterExecution"):
        _task_list(ctx, ctx.flow.get(section), section)
    # models/listeners/Listener.java (1.3 only): `tasks` is @NotEmpty
    if ctx.version == "1.3":
        for path, listener in _objects(ctx, ctx.flow.get("listeners"), "listeners"):
            _unknown_keys(ctx, listener, catalog.LISTENER_KEYS, path)
            if not listener.get("tasks"):
                ctx.add(f"{path}.tasks", "must not be empty")
            _conditions(ctx, listener.get("conditions"), f"{path}.conditions")
            _task_list(ctx, listener.get("tasks"), f"{path}.tasks")


def _task_list(ctx: _Check, value: Any, path: str) -> None:
    for item_path, body in _objects(ctx, value, path):
        _task(ctx, body, item_path)


def _task(ctx: _Check, body: dict, path: str, in_working_directory: bool = False) -> None:
    # models/tasks/TaskInterface.java: id and type; Task.java: id at most 256 characters
    task_id, kind = body.get("id"), body.get("type")
    if task_id is None:
        ctx.add(f"{path}.id", "must not be null")
    elif not TASK_ID.fullmatch(str(task_id)):
        ctx.add(f"{path}.id", f'must match "^{TASK_ID.pattern}"')
    elif len(str(task_id)) > 256:
        ctx.add(f"{path}.id", "Task id must be at most 256 characters")
    if kind is None:
        ctx.add(f"{path}.type", "must not be null")
        return
    if kind not in ctx.available:
        # serializers/YamlParser.java: an InvalidTypeIdException
        ctx.add(f"{path}.type", f"Invalid type: {kind}")
        return
    spec = catalog.lookup(ctx.version, kind)
    site = _Task(path, body, catalog.canonical(ctx.version, kind), spec)
    ctx.tasks.append(site)
    if spec is not None:
        if spec.kind in (TRIGGER, catalog.CONDITION, RUNNER):
            ctx.add(f"{path}.type", f"Invalid type: {kind}")
            return
        _unknown_keys(ctx, body, spec.props, path)
        _required(ctx, body, spec.not_null - _plugin_defaulted(ctx, kind), spec.not_empty, path)
    _task_objects(ctx, site)
    if in_working_directory:
        _working_directory_child(ctx, site)
    _flowable_rules(ctx, site)
    working_directory = site.kind == CORE + "flow.WorkingDirectory"
    for key, child_path, child in _children(ctx, site):
        _task(ctx, child, child_path, working_directory and key == "tasks")


def _plugin_defaulted(ctx: _Check, kind: str) -> set[str]:
    # services/PluginDefaultService.java: defaults are injected before validation
    given: set[str] = set()
    for entry in ctx.flow.get("pluginDefaults") or []:
        if isinstance(entry, dict) and isinstance(entry.get("values"), dict) \
                and isinstance(entry.get("type"), str) and kind.startswith(entry["type"]):
            given.update(entry["values"])
    return given


def _children(ctx: _Check, site: _Task) -> Iterator[tuple[str, str, dict]]:
    """(key, path, task) of the child tasks a task declares (FlowableTask.allChildTasks per type)."""
    body, kind, path = site.body, site.kind, site.path
    if site.spec is not None and site.spec.kind != FLOWABLE:
        return
    lists: list[tuple[str, Any]] = [(k, body.get(k)) for k in ("errors", "finally")]
    if kind == CORE + "flow.Dag":
        # plugin/core/flow/Dag.java: DagTask {task, dependsOn}
        for item_path, entry in _objects(ctx, body.get("tasks"), f"{path}.tasks"):
            _unknown_keys(ctx, entry, catalog.DAG_TASK_KEYS, item_path)
            if entry.get("task") is None:
                ctx.add(f"{item_path}.task", "must not be null")
            elif isinstance(entry["task"], dict):
                yield "tasks", f"{item_path}.task", entry["task"]
    elif kind == CORE + "flow.Switch":
        cases = _object(ctx, body.get("cases"), f"{path}.cases") or {}
        lists += [(f"cases.{case}", tasks) for case, tasks in cases.items()]
        lists.append(("defaults", body.get("defaults")))
    elif kind == CORE + "flow.If":
        lists = [("then", body.get("then")), ("else", body.get("else"))] + lists
    elif kind == CORE + "flow.Pause":
        on_pause = _object(ctx, body.get("onPause"), f"{path}.onPause")
        if on_pause is not None:
            yield "onPause", f"{path}.onPause", on_pause
        lists.append(("tasks", body.get("tasks")))
    elif kind != CORE + "flow.ForEachItem":   # ForEachItem's children are built in, `tasks` is ignored
        lists.append(("tasks", body.get("tasks")))
    for key, value in lists:
        if site.spec is None and not (isinstance(value, list)
                                      and all(isinstance(t, dict) and "type" in t for t in value)):
            continue  # a type known by name only: follow only what looks like a task list
        for child_path, child in _objects(ctx, value, f"{path}.{key}"):
            yield key, child_path, child


def _task_objects(ctx: _Check, site: _Task) -> None:
    """Nested objects of any task: retry, task runner, namespace files, subflow labels."""
    body, path = site.body, site.path
    _retry(ctx, body.get("retry"), f"{path}.retry")
    if site.spec is None:
        return
    if "namespaceFiles" in site.spec.props and isinstance(body.get("namespaceFiles"), dict):
        # models/tasks/NamespaceFiles.java
        _unknown_keys(ctx, body["namespaceFiles"], catalog.NAMESPACE_FILES_KEYS, f"{path}.namespaceFiles")
    runner = body.get("taskRunner")
    if "taskRunner" in site.spec.props and isinstance(runner, dict):
        _plugin_object(ctx, runner, f"{path}.taskRunner", RUNNER)
    if site.kind in (CORE + "flow.Subflow", CORE + "flow.ForEachItem"):
        # plugin/core/flow/Subflow.java, ForEachItem.java: labels are @NoSystemLabelValidation
        _no_system_labels(ctx, body.get("labels"), f"{path}.labels")


def _plugin_object(ctx: _Check, body: dict, path: str, kind: str) -> None:
    """A nested plugin chosen by `type` (a task runner, a 1.3 condition)."""
    name = body.get("type")
    if name is None:
        ctx.add(f"{path}.type", "must not be null")
        return
    spec = catalog.lookup(ctx.version, name)
    if name not in ctx.available or (spec is not None and spec.kind != kind):
        ctx.add(f"{path}.type", f"Invalid type: {name}")
        return
    if spec is not None:
        _unknown_keys(ctx, body, spec.props, path)
        _required(ctx, body, spec.not_null, spec.not_empty, path)


def _retry(ctx: _Check, value: Any, path: str) -> None:
    # models/tasks/retrys/AbstractRetry.java: `type` selects constant, exponential or random
    retry = _object(ctx, value, path)
    if retry is None:
        return
    kind = retry.get("type")
    if kind not in catalog.RETRY_KEYS:
        ctx.add(f"{path}.type", f"Invalid type: {kind}")
        return
    _unknown_keys(ctx, retry, catalog.RETRY_KEYS[kind] | catalog.RETRY_SETTERS[ctx.version], path)
    _required(ctx, retry, catalog.RETRY_REQUIRED[kind], (), path)


def _working_directory_child(ctx: _Check, site: _Task) -> None:
    # WorkingDirectoryTaskValidator.java (2.0 and 1.3): runnable children only, routed at the top
    if site.spec is not None and not site.spec.runnable:
        ctx.add(site.path, "Only runnable tasks are allowed as children of a WorkingDirectory task")
    if ctx.v2 and site.body.get("workerSelector") is not None:
        ctx.add(site.path, "Cannot set routing requirements (workerSelector) on WorkingDirectory "
                           "sub-tasks, only the WorkingDirectory itself can carry them")
    if not ctx.v2 and site.body.get("workerGroup") is not None:
        ctx.add(site.path, "Cannot set a Worker Group in any WorkingDirectory sub-tasks, it is only "
                           "supported at the WorkingDirectory level")


def _flowable_rules(ctx: _Check, site: _Task) -> None:
    body, path = site.body, site.path
    if site.kind == CORE + "flow.Switch":
        # SwitchTaskValidator.java (2.0 and 1.3)
        if not body.get("cases") and not body.get("defaults"):
            ctx.add(path, "No task defined, neither cases or default have any tasks")
    elif site.kind == CORE + "flow.WorkingDirectory" and not body.get("tasks"):
        # WorkingDirectoryTaskValidator.java (2.0 and 1.3)
        ctx.add(path, "The 'tasks' property cannot be empty")
    elif site.kind == CORE + "flow.Dag":
        _dag(ctx, site)
    elif site.kind == CORE + "flow.Pause" and isinstance(body.get("onResume"), list):
        # plugin/core/flow/Pause.java: `onResume` is a list of inputs
        for item_path, item in _objects(ctx, body["onResume"], f"{path}.onResume"):
            _input(ctx, item, item_path)


def _dag(ctx: _Check, site: _Task) -> None:
    # DagTaskValidator.java and Dag.dagCheckNotExistTask / dagCheckCyclicDependencies (2.0 and 1.3)
    graph: dict[str, list[str]] = {}
    entries = [e for e in site.body.get("tasks") or [] if isinstance(e, dict)
               and isinstance(e.get("task"), dict)]
    for entry in entries:
        graph.setdefault(str(entry["task"].get("id")), [str(d) for d in entry.get("dependsOn") or []])
    missing = [d for e in entries for d in (e.get("dependsOn") or []) if str(d) not in graph]
    if missing:
        ctx.add(site.path, "Not existing task id in dependency: " + ", ".join(map(str, missing)))
        return

    def reaches_itself(start: str) -> bool:
        seen, stack = set(), [start]
        while stack:
            for dep in graph.get(stack.pop(), []):
                if dep == start:
                    return True
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
        return False

    cyclic = [str(e["task"].get("id")) for e in entries
              if e.get("dependsOn") is not None and reaches_itself(str(e["task"].get("id")))]
    if cyclic:
        ctx.add(site.path, "Cyclic dependency detected: " + ", ".join(cyclic))


def _task_ids(ctx: _Check) -> list[str]:
    """Every task id of Flow.allTasksWithChilds (1.3's ForEachItem adds three built-in children)."""
    ids = []
    for site in ctx.tasks:
        if site.body.get("id") is None:
            continue
        ids.append(str(site.body["id"]))
        if site.kind == CORE + "flow.ForEachItem":
            # plugin/core/flow/ForEachItem.java: ForEachItemSplit, ForEachItemExecutable, ...MergeOutputs
            ids += [f"{site.body['id']}{suffix}" for suffix in ("_split", "_items", "_merge")]
    return ids


def _duplicate_ids(ctx: _Check) -> None:
    # FlowValidator.java (2.0 and 1.3): task ids unique across the flow, trigger ids unique
    duplicates = _duplicates(_task_ids(ctx))
    if duplicates:
        ctx.add("tasks", f"Duplicate task id with name [{', '.join(duplicates)}]")
    ids = [str(t["id"]) for t in ctx.flow.get("triggers") or [] if isinstance(t, dict)
           and t.get("id") is not None]
    duplicates = _duplicates(ids)
    if duplicates:
        ctx.add("triggers", f"Duplicate trigger id with name [{', '.join(duplicates)}]")


def _recursive_subflows(ctx: _Check) -> None:
    # FlowValidator.java (2.0 and 1.3): an ExecutableTask may not start its own flow
    me = (ctx.flow.get("namespace"), ctx.flow.get("id"))
    for site in ctx.tasks:
        if site.kind in (CORE + "flow.Subflow", CORE + "flow.ForEachItem") \
                and (site.body.get("namespace"), site.body.get("flowId")) == me:
            ctx.add(site.path, f"Recursive call to flow [{me[0]}.{me[1]}]")


def _assets(ctx: _Check) -> None:
    # FlowValidator.assetsViolations (2.0 and 1.3): assets are an Enterprise Edition feature
    if ctx.edition == "oss":
        for site in ctx.tasks:
            if site.body.get("assets") is not None:
                ctx.add(f"{site.path}.assets", f"Task '{site.body.get('id')}' can't have any `assets` "
                                               "because assets are only available in Enterprise Edition.")


# -- inputs ----------------------------------------------------------------------------------------

def _inputs(ctx: _Check) -> None:
    # models/flows/Input.java and its subclasses, InputValidator.java; FlowValidator.java for the
    # duplicates and FORM paths (2.0)
    ids = []
    for path, item in _objects(ctx, ctx.flow.get("inputs"), "inputs"):
        _input(ctx, item, path)
        if _input_id(ctx, item) is not None:
            ids.append(str(_input_id(ctx, item)))
    duplicates = _duplicates(ids)
    if duplicates:
        ctx.add("inputs", f"Duplicate input with name [{', '.join(duplicates)}]")
    paths = [input_id for input_id, _ in _leaf_inputs(ctx)]
    if ctx.v2:
        dotted = [p for p in _duplicates(paths) if "." in p]
        if dotted:
            ctx.add("inputs", f"Duplicate input path [{', '.join(dotted)}]")
        for ancestor in paths:
            for descendant in paths:
                if ancestor != descendant and descendant.startswith(ancestor + "."):
                    ctx.add("inputs", f"Input path '{ancestor}' conflicts with '{descendant}'; one "
                                      "cannot be nested under the other.")


def _input_id(ctx: _Check, item: dict) -> Any:
    # 1.3 Input.setName: the deprecated `name` fills a missing id
    if item.get("id") is None and ctx.version == "1.3":
        return item.get("name")
    return item.get("id")


def _leaf_inputs(ctx: _Check) -> list[tuple[str, dict]]:
    """(id, input) after expanding 2.0 FORMs to dotted ids (Input.expandToLeaves)."""
    leaves = []
    for item in ctx.flow.get("inputs") or []:
        if not isinstance(item, dict) or _input_id(ctx, item) is None:
            continue
        if ctx.v2 and item.get("type") == "FORM":
            for child in item.get("inputs") or []:
                if isinstance(child, dict) and child.get("id") is not None:
                    leaves.append((f"{item['id']}.{child['id']}", child))
        else:
            leaves.append((str(_input_id(ctx, item)), item))
    return leaves


def _input(ctx: _Check, item: dict, path: str) -> None:
    kind = item.get("type")
    if kind is None:
        ctx.add(f"{path}.type", "missing type id property 'type' (for POJO property 'inputs')")
        return
    keys = catalog.INPUT_KEYS[ctx.version].get(str(kind))
    if keys is None:
        ctx.add(f"{path}.type", f"Invalid type: {kind}")
        return
    _unknown_keys(ctx, item, keys, path)
    input_id = _input_id(ctx, item)
    if input_id is None or input_id == "":
        ctx.add(f"{path}.id", "must not be null" if input_id is None else "must not be blank")
    elif not INPUT_ID.fullmatch(str(input_id)):
        ctx.add(f"{path}.id", f'must match "^{INPUT_ID.pattern}"')
    _input_validator(ctx, item, path)
    _input_by_type(ctx, item, str(kind), path)


def _input_validator(ctx: _Check, item: dict, path: str) -> None:
    # InputValidator.java (2.0 and 1.3; FORM rules 2.0 only): one violation per input
    if item.get("type") == "FORM":
        if item.get("defaults") is not None or item.get("prefill") is not None:
            ctx.add(path, "A FORM input groups other inputs and cannot declare a default value or "
                          "a prefill.")
            return
        if any(isinstance(c, dict) and c.get("type") == "FORM" for c in item.get("inputs") or []):
            ctx.add(path, "A FORM input cannot contain another FORM input; grouping is limited to a "
                          "single level.")
            return
    if _has_defaults(item) and item.get("required") is False:
        ctx.add(path, "Inputs with a default value must be required, since the default is always "
                      "applied.")
    elif _has_defaults(item) and item.get("prefill") is not None:
        ctx.add(path, "Inputs with a default value cannot also have a prefill.")


def _has_defaults(item: dict) -> bool:
    # Input.getDefaults(); SelectInput and MultiselectInput.getDefaults (2.0 and 1.3) answer the
    # first value when `autoSelectFirst` is set
    if item.get("defaults") is not None:
        return True
    return item.get("type") in ("SELECT", "MULTISELECT") and item.get("autoSelectFirst") is True \
        and bool(item.get("values"))


def _input_by_type(ctx: _Check, item: dict, kind: str, path: str) -> None:
    if kind in ("STRING", "SECRET"):
        # StringInput.java, SecretInput.java: `validator` is @Regex (RegexValidator.java)
        _regex(ctx, item.get("validator"), f"{path}.validator")
    elif kind in ("SELECT", "MULTISELECT", "ENUM"):
        _choices(ctx, item, kind, path)
    elif kind == "ARRAY":
        # ArrayInput.java: `itemType` is @NotNull; ArrayInputValidator.java
        if item.get("itemType") is None:
            ctx.add(f"{path}.itemType", "must not be null")
        _item_type(ctx, item, path)
    elif kind == "FILE":
        _file_defaults(ctx, item, path)
    elif kind == "FORM":
        # FormInput.java: `inputs` is @NotNull and @Valid
        if item.get("inputs") is None:
            ctx.add(f"{path}.inputs", "must not be null")
        for child_path, child in _objects(ctx, item.get("inputs"), f"{path}.inputs"):
            _input(ctx, child, child_path)


def _choices(ctx: _Check, item: dict, kind: str, path: str) -> None:
    values = item.get("values")
    if kind == "ENUM" or (kind == "MULTISELECT" and ctx.v2):
        # EnumInput.java (1.3), MultiselectInput.java (2.0): `values` is @NotNull
        if values is None:
            ctx.add(f"{path}.values", "must not be null")
    if kind == "MULTISELECT":
        # MultiselectInputValidator.java
        _item_type(ctx, item, path)
    if not ctx.v2:
        # 1.3 Select/Multiselect/EnumInput.java: every value is @Regex
        for i, value in enumerate(list(values or []) + list(item.get("options") or [])):
            _regex(ctx, value, f"{path}.values[{i}]")
    else:
        # 2.0 ValueOption.java: a string, or {label, value} with both @NotNull
        for i, value in enumerate(values or []):
            if isinstance(value, dict) and value.get("value") is None:
                ctx.add(f"{path}.values[{i}].value", "must not be null")


def _item_type(ctx: _Check, item: dict, path: str) -> None:
    # ArrayInputValidator.java, MultiselectInputValidator.java (1.3 also refuses ENUM)
    item_type = item.get("itemType")
    forbidden = {"ARRAY", "SECRET", "MULTISELECT", "SELECT"} | (set() if ctx.v2 else {"ENUM"})
    if item_type is None:
        return
    if str(item_type) not in catalog.INPUT_KEYS[ctx.version]:
        ctx.add(f"{path}.itemType", f'Cannot deserialize value "{item_type}": not a valid input type')
    elif item_type in forbidden:
        ctx.add(path, f"`itemType` cannot be {item_type}")


def _file_defaults(ctx: _Check, item: dict, path: str) -> None:
    # FileInputValidator.java (2.0 and 1.3): defaults must be a file:// or nsfile:// URI
    defaults = item.get("defaults")
    if defaults is None or _is_expression(defaults):
        return
    if not isinstance(defaults, str):
        ctx.add(path, "inputs of type 'FILE' only support `defaults` with expression that can be "
                      "rendered immediately")
    elif urlsplit(defaults).scheme not in ("file", "nsfile"):
        ctx.add(path, "inputs of type 'FILE' only support `defaults` as local files using a file URI "
                      "or as namespace files using a nsfile URI")


def _regex(ctx: _Check, value: Any, path: str) -> None:
    # validations/validator/RegexValidator.java: java.util.regex.Pattern must compile it
    if value is None:
        return
    try:
        re.compile(_java_regex(str(value)))
    except re.error:
        ctx.add(path, f"invalid pattern [{value}]")


def _java_regex(pattern: str) -> str:
    """Java regex syntax Python's `re` does not know, rewritten to an equivalent for compiling."""
    pattern = re.sub(r"\\p\{[A-Za-z_]+\}", "a", pattern)
    pattern = re.sub(r"\\P\{[A-Za-z_]+\}", "a", pattern)
    pattern = pattern.replace("(?<", "(?P<").replace("(?P<=", "(?<=").replace("(?P<!", "(?<!")
    return re.sub(r"([*+?}])\+", r"\1", pattern)  # possessive quantifiers


def _input_graph(ctx: _Check) -> None:
    # FlowValidator.checkFlowInputsDependencyGraph (2.0 and 1.3)
    graph: dict[str, list[str]] = {}
    for input_id, item in _leaf_inputs(ctx):
        depends = item.get("dependsOn")
        wanted = depends.get("inputs") if isinstance(depends, dict) else None
        graph.setdefault(input_id, []).extend(str(d) for d in wanted or [])
    for key, deps in graph.items():
        for dep in deps:
            if dep not in graph:
                ctx.add("inputs", f"Input with id '{key}' depends on a non-existent input '{dep}'.")
        cycle = _find_cycle(key, graph)
        if cycle:
            ctx.add("inputs", f"Cycle dependency detected for input with id '{key}': "
                              f"[{', '.join(cycle)}]")


def _find_cycle(start: str, graph: dict[str, list[str]]) -> list[str] | None:
    visiting: set[str] = set()
    visited: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return path[path.index(node):]
        if node in visited:
            return None
        visiting.add(node)
        path.append(node)
        for dep in graph.get(node, []):
            found = visit(dep)
            if found:
                return found
        visiting.discard(node)
        visited.add(node)
        path.pop()
        return None

    return visit(start)


# -- outputs, labels, flow options -----------------------------------------------------------------

def _outputs(ctx: _Check) -> None:
    # models/flows/Output.java; FlowValidator.java for duplicates (2.0 and 1.3)
    ids = []
    for path, output in _objects(ctx, ctx.flow.get("outputs"), "outputs"):
        _unknown_keys(ctx, output, catalog.OUTPUT_KEYS, path)
        output_id = output.get("id")
        if output_id is None:
            ctx.add(f"{path}.id", "must not be null")
        elif not INPUT_ID.fullmatch(str(output_id)):
            ctx.add(f"{path}.id", f'must match "^{INPUT_ID.pattern}"')
        else:
            ids.append(str(output_id))
        if output.get("type") is None:
            ctx.add(f"{path}.type", "must not be null")
        elif str(output["type"]) not in catalog.INPUT_KEYS[ctx.version]:
            ctx.add(f"{path}.type", f'Cannot deserialize value "{output["type"]}": not a valid type')
        if output.get("value") is None:
            ctx.add(f"{path}.value", "must not be null")
    duplicates = _duplicates(ids)
    if duplicates:
        ctx.add("outputs", f"Duplicate output with name [{', '.join(duplicates)}]")


def _label_pairs(ctx: _Check, labels: Any, path: str) -> list[tuple[Any, Any]]:
    # serializers/ListOrMapOfLabelDeserializer.java: a map, or a list of {key, value}; scalar values
    if labels is None:
        return []
    if isinstance(labels, dict):
        pairs = list(labels.items())
    elif isinstance(labels, list):
        pairs = [(i.get("key"), i.get("value")) for i in labels if isinstance(i, dict)]
    else:
        ctx.add(path, "Unable to deserialize value as it's neither an object neither an array")
        return []
    good = []
    for key, value in pairs:
        if _is_expression(key) or _is_expression(value):
            good.append((key, value))
        elif not isinstance(value, (str, int, float, bool)):
            ctx.add(path, f"Unsupported type for key: {key}, value: {value}")
        else:
            good.append((key, str(value).lower() if isinstance(value, bool) else value))
    return good


def _labels(ctx: _Check) -> None:
    # models/Label.java (key pattern, value not empty) and FlowValidator.java system labels (2.0, 1.3)
    for key, value in _label_pairs(ctx, ctx.flow.get("labels"), "labels"):
        text = str(key) if key is not None else ""
        if not text:
            ctx.add("labels", "must not be empty")
        elif not (text[0].isalpha() and text[0].islower()
                  and all(c.isalpha() or c in "0123456789._-" for c in text[1:])):
            ctx.add("labels", LABEL_KEY_MESSAGE)
        if value is None or str(value) == "":
            ctx.add("labels", "must not be empty")
        if text.startswith(SYSTEM_PREFIX) and text != READ_ONLY:
            ctx.add("labels", "System labels can only be set by Kestra itself, offending label: "
                              f"{key}={value}")


def _no_system_labels(ctx: _Check, labels: Any, path: str) -> None:
    # validations/validator/NoSystemLabelValidator.java (2.0 and 1.3)
    for key, value in _label_pairs(ctx, labels, path):
        if str(key).startswith(SYSTEM_PREFIX):
            ctx.add(path, "System labels can only be set by Kestra itself, offending label: "
                          f"{key}={value}.")


def _concurrency(ctx: _Check) -> None:
    # models/flows/Concurrency.java: limit @NotNull @Min(1), behavior QUEUE|CANCEL|FAIL
    concurrency = _object(ctx, ctx.flow.get("concurrency"), "concurrency")
    if concurrency is None:
        return
    _unknown_keys(ctx, concurrency, catalog.CONCURRENCY_KEYS, "concurrency")
    limit = concurrency.get("limit")
    if limit is None:
        ctx.add("concurrency.limit", "must not be null")
    elif isinstance(limit, int) and limit < 1:
        ctx.add("concurrency.limit", "must be greater than or equal to 1")
    _enum(ctx, concurrency.get("behavior"), catalog.CONCURRENCY_BEHAVIORS, "concurrency.behavior")


def _plugin_defaults(ctx: _Check) -> None:
    # models/flows/PluginDefault.java (1.3), FlowPluginDefault.java (2.0, no `forced`);
    # PluginDefaultValidator.java and PluginDefaultService.validateDefault (2.0 and 1.3)
    sections = ["pluginDefaults"] + (["taskDefaults"] if ctx.version == "1.3" else [])
    for section in sections:
        for path, entry in _objects(ctx, ctx.flow.get(section), section):
            _unknown_keys(ctx, entry, catalog.PLUGIN_DEFAULT_KEYS[ctx.version], path)
            values = entry.get("values")
            problems = []
            if values is None:
                problems.append("No 'values' provided")
            else:
                if entry.get("type") is None:
                    problems.append("No 'type' provided")
                values = values if isinstance(values, dict) else {}
                problems += [f"No value provided for key '{k}'" for k, v in values.items() if v is None]
                spec = catalog.lookup(ctx.version, str(entry.get("type")))
                if spec is not None:
                    problems += [f"No property '{k}' exists in plugin '{entry['type']}'"
                                 for k in values if k not in spec.props]
            if problems:
                ctx.add(path, "Invalid Plugin Default: " + ", ".join(problems))


# -- triggers --------------------------------------------------------------------------------------

def _triggers(ctx: _Check) -> None:
    for path, trigger in _objects(ctx, ctx.flow.get("triggers"), "triggers"):
        _trigger(ctx, trigger, path)


def _trigger(ctx: _Check, trigger: dict, path: str) -> None:
    # models/triggers/TriggerInterface.java: id and type; AbstractTrigger.java: the common keys
    trigger_id, kind = trigger.get("id"), trigger.get("type")
    if trigger_id is None:
        ctx.add(f"{path}.id", "must not be null")
    elif not TASK_ID.fullmatch(str(trigger_id)):
        ctx.add(f"{path}.id", f'must match "^{TASK_ID.pattern}"')
    if kind is None:
        ctx.add(f"{path}.type", "must not be null")
        return
    spec = catalog.lookup(ctx.version, kind)
    if kind not in ctx.available or (spec is not None and spec.kind != TRIGGER):
        ctx.add(f"{path}.type", f"Invalid type: {kind}")
        return
    _no_system_labels(ctx, trigger.get("labels"), f"{path}.labels")
    if spec is None:
        return
    _unknown_keys(ctx, trigger, spec.props, path)
    _required(ctx, trigger, spec.not_null, spec.not_empty, path)
    _enum_list(ctx, trigger.get("stopAfter"), catalog.STATES, f"{path}.stopAfter")
    if ctx.version == "1.3":
        _conditions(ctx, trigger.get("conditions"), f"{path}.conditions")
    name = catalog.canonical(ctx.version, kind)
    rule = _TRIGGER_RULES.get(name.removeprefix(CORE + "trigger."))
    if rule is not None:
        rule(ctx, trigger, path)


def _enum_list(ctx: _Check, value: Any, allowed: frozenset[str], path: str) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _enum(ctx, item, allowed, f"{path}[{i}]")


def _conditions(ctx: _Check, value: Any, path: str) -> None:
    # 1.3 models/conditions/Condition.java: trigger and listener conditions, chosen by `type`
    for item_path, condition in _objects(ctx, value, path):
        _plugin_object(ctx, condition, item_path, catalog.CONDITION)
        if catalog.canonical(ctx.version, str(condition.get("type"))) in (
                CORE + "condition.Not", CORE + "condition.Or", CORE + "condition.MultipleCondition"):
            inner = condition.get("conditions")
            inner = list(inner.values()) if isinstance(inner, dict) else inner
            _conditions(ctx, inner, f"{item_path}.conditions")


def _schedule(ctx: _Check, trigger: dict, path: str) -> None:
    # ScheduleValidator.java (cron parses with Schedule's cron definition), TimezoneIdValidator.java,
    # Schedule.java (`interval` is @Null, `recoverMissedSchedules` an enum) (2.0 and 1.3)
    cron = trigger.get("cron")
    if cron is not None:
        problem = _cron_problem(str(cron), bool(trigger.get("withSeconds")))
        if problem:
            ctx.add(f"{path}.cron", f"invalid cron expression '{cron}': {problem}")
    _timezone(ctx, trigger.get("timezone"), f"{path}.timezone")
    if trigger.get("interval") is not None:
        ctx.add(f"{path}.interval", "must be null")
    _enum(ctx, trigger.get("recoverMissedSchedules"), catalog.RECOVER_MISSED_SCHEDULES,
          f"{path}.recoverMissedSchedules")


def _schedule_on_dates(ctx: _Check, trigger: dict, path: str) -> None:
    # ScheduleOnDates.java: `interval` is @Null; models/triggers/Schedulable.java: @TimezoneId
    _timezone(ctx, trigger.get("timezone"), f"{path}.timezone")
    if trigger.get("interval") is not None:
        ctx.add(f"{path}.interval", "must be null")


def _webhook(ctx: _Check, trigger: dict, path: str) -> None:
    # Webhook.java: `key` @NotNull @Size(max = 256); WebhookValidator.java (2.0 and 1.3);
    # 1.3 AbstractWebhookValidator.java: no MultipleCondition among the conditions
    key = trigger.get("key")
    if key is not None and len(str(key)) > 256:
        ctx.add(f"{path}.key", "size must be between 0 and 256")
    content_type = trigger.get("responseContentType")
    if content_type is not None and content_type not in ("application/json", "text/plain"):
        ctx.add(path, "invalid webhook: responseContentType must be either 'application/json' or "
                      "'text/plain'")
    if ctx.version == "1.3" and any(
            isinstance(c, dict) and catalog.canonical("1.3", str(c.get("type")))
            == CORE + "condition.MultipleCondition" for c in trigger.get("conditions") or []):
        ctx.add(path, "invalid webhook: conditions of type MultipleCondition are not supported")


def _flow_trigger(ctx: _Check, trigger: dict, path: str) -> None:
    # plugin/core/trigger/Flow.java: 2.0 `dependsOn`, 1.3 `preconditions`
    _enum_list(ctx, trigger.get("states"), catalog.STATES, f"{path}.states")
    if ctx.v2:
        _depends_on(ctx, trigger, path)
    else:
        _preconditions(ctx, trigger.get("preconditions"), f"{path}.preconditions")


def _depends_on(ctx: _Check, trigger: dict, path: str) -> None:
    # 2.0 Flow.java: Dependency {namespace, flowId, states, labels, when}, `mode`, `minSatisfied`
    # (@Positive); FlowTriggerValidator.java; Window.java and WindowValidator.java
    for item_path, dependency in _objects(ctx, trigger.get("dependsOn"), f"{path}.dependsOn"):
        _unknown_keys(ctx, dependency, catalog.DEPENDENCY_KEYS, item_path)
        _enum_list(ctx, dependency.get("states"), catalog.STATES, f"{item_path}.states")
    _enum(ctx, trigger.get("mode"), catalog.MODES, f"{path}.mode")
    minimum = trigger.get("minSatisfied")
    if isinstance(minimum, int) and minimum <= 0:
        ctx.add(f"{path}.minSatisfied", "must be greater than 0")
    if trigger.get("mode") == "AT_LEAST" and minimum is None:
        ctx.add(path, "`minSatisfied` must be set when mode is AT_LEAST")
    window = _object(ctx, trigger.get("window"), f"{path}.window")
    if window is not None:
        _unknown_keys(ctx, window, catalog.WINDOW_KEYS, f"{path}.window")
        for message in _window_problems(window):
            ctx.add(f"{path}.window", message)


def _window_problems(window: dict) -> list[str]:
    # WindowValidator.java (2.0): which keys each kind of window may combine
    has = {k for k in ("deadline", "from", "to", "every", "offset", "lookback")
           if window.get(k) is not None}
    wording = {"deadline": "a deadline", "from": "a from time", "to": "a to time",
               "every": "an every duration", "offset": "an offset", "lookback": "a lookback duration"}
    if "deadline" in has:
        kind, allowed = "DAILY_TIME_DEADLINE", {"deadline"}
    elif {"from", "to"} <= has:
        kind, allowed = "DAILY_TIME_WINDOW", {"from", "to"}
    elif has & {"from", "to"}:
        missing = "from" if "from" not in has else "to"
        return [f"Window of type `DAILY_TIME_WINDOW` must have {wording[missing]}."]
    elif "lookback" in has:
        kind, allowed = "SLIDING_WINDOW", {"lookback"}
    else:
        return []
    order = ("deadline", "every", "offset", "from", "to", "lookback")
    return [f"Window of type `{kind}` cannot have {wording[k]}." for k in order
            if k in has and k not in allowed]


def _preconditions(ctx: _Check, value: Any, path: str) -> None:
    # 1.3 Flow.java: Preconditions {id (@NotNull, pattern), timeWindow, resetOnSuccess, flows, where};
    # PreconditionFilterValidator.java; TimeWindowValidator.java
    preconditions = _object(ctx, value, path)
    if preconditions is None:
        return
    _unknown_keys(ctx, preconditions, catalog.PRECONDITIONS_KEYS, path)
    precondition_id = preconditions.get("id")
    if precondition_id is None:
        ctx.add(f"{path}.id", "must not be null")
    elif not TASK_ID.fullmatch(str(precondition_id)):
        ctx.add(f"{path}.id", f'must match "^{TASK_ID.pattern}"')
    for item_path, upstream in _objects(ctx, preconditions.get("flows"), f"{path}.flows"):
        _unknown_keys(ctx, upstream, catalog.UPSTREAM_FLOW_KEYS, item_path)
        _enum_list(ctx, upstream.get("states"), catalog.STATES, f"{item_path}.states")
    for item_path, where in _objects(ctx, preconditions.get("where"), f"{path}.where"):
        _unknown_keys(ctx, where, catalog.EXECUTION_FILTER_KEYS, item_path)
        _required(ctx, where, ("id", "filters"), ("id", "filters"), item_path)
        _enum(ctx, where.get("operand"), catalog.OPERANDS, f"{item_path}.operand")
        for filter_path, item in _objects(ctx, where.get("filters"), f"{item_path}.filters"):
            _precondition_filter(ctx, item, filter_path)
    window = _object(ctx, preconditions.get("timeWindow"), f"{path}.timeWindow")
    if window is not None:
        _unknown_keys(ctx, window, catalog.TIME_WINDOW_KEYS, f"{path}.timeWindow")
        _enum(ctx, window.get("type"), catalog.TIME_WINDOW_TYPES, f"{path}.timeWindow.type")
        for message in _time_window_problems(window):
            ctx.add(f"{path}.timeWindow", message)


def _precondition_filter(ctx: _Check, item: dict, path: str) -> None:
    # 1.3 Flow.Filter (`field`, `type` @NotNull) and PreconditionFilterValidator.java
    _unknown_keys(ctx, item, catalog.FILTER_KEYS, path)
    _required(ctx, item, ("field", "type"), (), path)
    _enum(ctx, item.get("field"), catalog.FILTER_FIELDS, f"{path}.field")
    _enum(ctx, item.get("type"), catalog.FILTER_TYPES, f"{path}.type")
    kind = item.get("type")
    needs_value = kind in ("EQUAL_TO", "NOT_EQUAL_TO", "IS_NULL", "IS_NOT_NULL", "IS_TRUE", "IS_FALSE",
                           "STARTS_WITH", "ENDS_WITH", "REGEX", "CONTAINS")
    needs_values = kind in ("IN", "NOT_IN")
    if needs_value and item.get("value") is None:
        ctx.add(path, f"`value` cannot be null for type {kind}")
    elif not needs_value and item.get("value") is not None:
        ctx.add(path, f"`value` must be null for type {kind}")
    elif needs_values and item.get("values") is None:
        ctx.add(path, f"`values` cannot be null for type {kind}")
    elif not needs_values and item.get("values") is not None:
        ctx.add(path, f"`values` must be null for type {kind}")


def _time_window_problems(window: dict) -> list[str]:
    # TimeWindowValidator.java (1.3): which keys each `type` of time window may have
    kind = window.get("type") or "DURATION_WINDOW"
    has = {k for k in ("deadline", "window", "windowAdvance", "startTime", "endTime")
           if window.get(k) is not None}
    wording = {"deadline": "a deadline", "window": "a window", "windowAdvance": "a window advance",
               "startTime": "a start time", "endTime": "an end time"}
    forbidden = {"DAILY_TIME_DEADLINE": ("window", "windowAdvance", "startTime", "endTime"),
                 "DAILY_TIME_WINDOW": ("window", "windowAdvance", "deadline"),
                 "DURATION_WINDOW": ("deadline", "startTime", "endTime"),
                 "SLIDING_WINDOW": ("deadline", "startTime", "endTime", "windowAdvance")}.get(kind, ())
    problems = [f"Time window of type `{kind}` cannot have {wording[k]}." for k in forbidden if k in has]
    if problems:
        return problems
    needed = {"DAILY_TIME_DEADLINE": ("deadline",),
              "DAILY_TIME_WINDOW": ("startTime", "endTime")}.get(kind, ())
    return [f"Time window of type `{kind}` must have {wording[k]}." for k in needed if k not in has]


_TRIGGER_RULES = {"Schedule": _schedule, "ScheduleOnDates": _schedule_on_dates, "Webhook": _webhook,
                  "Flow": _flow_trigger}


def _duplicate_preconditions(ctx: _Check) -> None:
    # FlowValidator.java (1.3 only): Flow triggers' preconditions ids are unique
    if ctx.v2:
        return
    ids = [str(t["preconditions"]["id"]) for t in ctx.flow.get("triggers") or []
           if isinstance(t, dict) and catalog.canonical("1.3", str(t.get("type"))) == CORE + "trigger.Flow"
           and isinstance(t.get("preconditions"), dict) and t["preconditions"].get("id") is not None]
    duplicates = _duplicates(ids)
    if duplicates:
        ctx.add("triggers", f"Duplicate preconditions with id [{', '.join(duplicates)}]")


def _schedule_inputs(ctx: _Check) -> None:
    # FlowValidator.findMissingInputsForScheduleTriggers (2.0 only; 1.3 has no such rule): every
    # input without `defaults` must be given by each Schedule's `inputs` (`required: false` too)
    if not ctx.v2 or not ctx.flow.get("triggers") or not ctx.flow.get("inputs"):
        return
    without_defaults = [input_id for input_id, item in _leaf_inputs(ctx) if not _has_defaults(item)]
    for i, trigger in enumerate(ctx.flow["triggers"]):
        if not isinstance(trigger, dict) or trigger.get("type") != CORE + "trigger.Schedule":
            continue
        given = trigger.get("inputs") if isinstance(trigger.get("inputs"), dict) else {}
        missing = [input_id for input_id in without_defaults if input_id not in given]
        if missing:
            ctx.add(f"triggers[{i}].inputs", f"Missing inputs for Schedule Trigger '{trigger.get('id')}', "
                                             f"missing inputs: '{' | '.join(missing)}'")


# -- cron and time zones ---------------------------------------------------------------------------

_CRON_NICKNAMES = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_MONTHS = {m: i + 1 for i, m in enumerate(
    "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DAYS = {d: i + 1 for i, d in enumerate("MON TUE WED THU FRI SAT SUN".split())}
# Schedule.java's cron definition: (name, low, high, names, accepts L); strict ranges
_CRON_FIELDS = [("minute", 0, 59, {}, False), ("hour", 0, 23, {}, False),
                ("day of month", 1, 31, {}, True), ("month", 1, 12, _MONTHS, False),
                ("day of week", 0, 7, _DAYS, False)]


def _cron_problem(cron: str, with_seconds: bool) -> str | None:
    """Why cron-utils would refuse the expression under Schedule's definition, or None."""
    cron = cron.strip()
    if cron.lower() in _CRON_NICKNAMES:
        return None
    fields = [("second", 0, 59, {}, False)] * with_seconds + _CRON_FIELDS
    parts = cron.split()
    if len(parts) != len(fields):
        return f"Cron expression contains {len(parts)} parts but we expect one of [{len(fields)}]"
    for text, (name, low, high, names, accepts_l) in zip(parts, fields):
        for item in text.split(","):
            problem = _cron_item(item, low, high, names, accepts_l)
            if problem:
                return f"{problem} in the {name} field"
    return None


def _cron_item(item: str, low: int, high: int, names: dict[str, int], accepts_l: bool) -> str | None:
    base, slash, step = item.partition("/")
    if slash and not (step.isdigit() and int(step) > 0):
        return f"Invalid step '{step}'"
    if base == "*" or (accepts_l and base == "L"):
        return None
    start, dash, end = base.partition("-")
    values = []
    for token in (start, end) if dash else (start,):
        value = names.get(token.upper()) if token and not token.isdigit() else int(token) if token else None
        if value is None:
            return f"Invalid value '{token}'"
        if not low <= value <= high:
            return f"Value {value} not in range [{low}, {high}]"
        values.append(value)
    if dash and values[0] > values[1]:
        return f"Invalid range {base}"
    return None


def _timezone(ctx: _Check, value: Any, path: str) -> None:
    # validations/validator/TimezoneIdValidator.java: java.time.ZoneId.of must accept it
    if value is None or _is_expression(value):
        return
    if not _java_zone_id(str(value)):
        ctx.add(path, f"timezone '({value})' is not a valid time-zone ID")


_OFFSET = re.compile(r"[+-](\d{1,2})(?::?(\d{2})(?::?(\d{2}))?)?")


def _java_zone_id(zone: str) -> bool:
    if zone == "Z":
        return True
    for prefix in ("UTC", "GMT", "UT", ""):
        if zone.startswith(prefix) and zone[len(prefix):][:1] in ("+", "-"):
            match = _OFFSET.fullmatch(zone[len(prefix):])
            return bool(match) and int(match.group(1)) <= 18
    if zone in ("UTC", "GMT", "UT"):
        return True
    known = _region_ids()
    return zone in known if known else bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9~/._+-]+", zone))


@functools.lru_cache(maxsize=None)
def _region_ids() -> frozenset[str]:
    """The tz database's region ids (empty when this system has no tz database)."""
    return frozenset(zoneinfo.available_timezones())


# -- references with dashes ------------------------------------------------------------------------

def _dash_references(ctx: _Check) -> None:
    # FlowValidator.java (2.0 and 1.3): `{{ inputs.a-b }}` and `{{ outputs.a-b.x }}` read `a - b`;
    # checked in the properties a task class declares itself (not those of Task.java)
    dashed_inputs = [str(i.get("id")) for i in ctx.flow.get("inputs") or []
                     if isinstance(i, dict) and "-" in str(i.get("id"))
                     and INPUT_ID.fullmatch(str(i.get("id")))]
    input_patterns = [re.compile(r"\{\{\s*inputs." + i + r"\s*\}\}") for i in dashed_inputs]
    output_patterns = [re.compile(r"\{\{\s*outputs\." + str(t.body["id"]) + r"\.[^}]+\s*\}\}")
                       for t in ctx.tasks if "-" in str(t.body.get("id"))
                       and TASK_ID.fullmatch(str(t.body.get("id")))]

    def offenders(items: list[tuple[str, Any]], patterns: list[re.Pattern]) -> list[str]:
        return [name for name, text in items if any(p.search(text) for p in patterns)]

    own = [(str(t.body.get("id")), " ".join(_own_values(ctx, t))) for t in ctx.tasks]
    for name, patterns in (("input", input_patterns), ("output", output_patterns)):
        found = offenders(own, patterns) if patterns else []
        if found:
            ctx.add("tasks", f"Invalid {name} reference: use {name}s[key-name] instead of "
                             f"{name}s.key-name — keys with dashes require bracket notation, "
                             f"offending tasks: [{', '.join(found)}]")
    outputs = [(str(o.get("id")), " ".join(str(v) for v in o.values()))
               for o in ctx.flow.get("outputs") or [] if isinstance(o, dict)]
    found = offenders(outputs, output_patterns) if output_patterns else []
    if found:
        ctx.add("outputs", "Invalid output reference: use outputs[key-name] instead of outputs.key-name "
                           f"— keys with dashes require bracket notation, offending outputs: "
                           f"[{', '.join(found)}]")


def _own_values(ctx: _Check, site: _Task) -> Iterator[str]:
    base = catalog.TASK_BASE[ctx.version]
    for key, value in site.body.items():
        if key not in base:
            yield str(value)


_RULES = (
    _flow_keys, _identity, _tasks, _duplicate_ids, _recursive_subflows, _assets, _inputs,
    _input_graph, _outputs, _labels, _concurrency, _plugin_defaults, _triggers,
    _duplicate_preconditions, _schedule_inputs, _dash_references,
)
