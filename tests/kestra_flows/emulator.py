"""Run a flow of flows/ the way Kestra would, for the task types those flows use.

Entry points: a manual execution (inputs from the Execute form), a Schedule trigger, a Webhook
trigger (key checked, trigger.body / trigger.headers available to the trigger's inputs and to
tasks). Tasks: Python Commands (Process runner: ``dependencies`` checked to be installed,
namespace files copied in, inputFiles written, env rendered, commands run by a shell,
``::{json}::`` lines parsed on both streams, other stderr lines logged at ERROR as Kestra does,
outputFiles collected), git Clone (a real clone of a local repository by ``branch``, ``tag`` or
``commit``, as plugin-git does), PushFlows and PushNamespaceFiles (a real commit and push to a
local repository), If, WorkingDirectory, Loop (2.0) and ForEach (1.3), Log, Return (output
``value``) and Fail (on a truthy ``condition``); ``runIf`` skips a task. A STRING input's
``validator`` must match its whole value. A failing task fails the execution and runs the
``errors`` tasks.
"""

from __future__ import annotations

import base64
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from .pebble import render

PYTHON_COMMANDS = "io.kestra.plugin.scripts.python.Commands"
# TaskLogLineMatcher: a whole line ::{json}::, on stdout or stderr; log levels by exact name
MARKER = re.compile(r"^::(\{.*})::$")
LOG_LEVELS = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"}


def _java_glob(pattern: str) -> re.Pattern[str]:
    """A java.nio glob as a regular expression: ``**`` crosses folders, ``*`` and ``?`` do not."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def include_matches(path: str, pattern: str) -> bool:
    """Whether a namespace file (its absolute path, ``/a/b.py``) is taken by an ``include``
    pattern, as Kestra decides: a pattern that starts with a word character matches at any depth
    (``**/`` is put in front: core/utils/PathMatcherPredicate.java, mayAddRecursiveMatch), and
    the file's path is absolute (NamespaceFile.filePath)."""
    if re.match(r"\w", pattern):
        pattern = "**/" + pattern
    return bool(_java_glob(pattern).match("/" + path.lstrip("/")))


def _truthy(value: Any) -> bool:
    """Kestra's TruthUtils.isTruthy (1.3 and 2.0): anything but "false", "0", "-0", "" (once
    trimmed) and null is true."""
    if value is None:
        return False
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return text.strip() not in ("false", "0", "-0", "")


def _nested(labels: Mapping[str, str]) -> dict[str, Any]:
    """Kestra's Label.toNestedMap: ``system.username`` becomes labels.system.username."""
    nested: dict[str, Any] = {}
    for key, value in labels.items():
        *parents, last = key.split(".")
        level = nested
        for part in parents:
            level = level.setdefault(part, {})
        level[last] = value
    return nested


class PauseTimedOut(Exception):
    """A Pause reached its duration without being resumed."""


class TaskFailed(Exception):
    pass


@dataclass
class Execution:
    id: str
    state: str = "RUNNING"
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # task id -> outputs
    flow_outputs: dict[str, Any] = field(default_factory=dict)
    logs: list[tuple[str, str, str]] = field(default_factory=list)  # (task, level, message)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)  # task id -> SUCCESS | FAILED
    files: dict[str, Path] = field(default_factory=dict)  # output file name -> path
    trigger: dict[str, Any] | None = None  # the trigger's variables (none for a manual run)
    labels: dict[str, str] = field(default_factory=dict)  # the execution's own labels

    def messages(self, level: str | None = None) -> list[str]:
        return [m for _, lvl, m in self.logs if level is None or lvl == level]


@dataclass
class Emulator:
    flow_path: Path
    secrets: Mapping[str, str]
    kv: Callable[[str, str], Any]  # (namespace, key) -> value; KeyError when missing
    namespace_files: Callable[[str], Mapping[str, bytes]]  # namespace -> {path: content}
    workspace: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kestra-run-")))
    # namespace -> {flow id: source}, what PushFlows exports (exact namespace)
    flows: Callable[[str], Mapping[str, str]] = lambda namespace: {}
    loop_values: dict[str, Any] = field(default_factory=dict)  # current Loop/ForEach item
    resume: Mapping[str, Any] | None = None  # how a Pause is resumed (see execute)
    on_pause: Callable[[], None] | None = None
    # the server's ENV_-prefixed variables, as flows see them (``envs``: name without the
    # prefix, lower case; core/runners/RunContextCache.java)
    envs: Mapping[str, str] = field(default_factory=dict)
    # commands the image of the tasks' worker does not have: Kestra's own image has no git
    lacking: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.flow = yaml.safe_load(self.flow_path.read_text())

    # -- expressions ------------------------------------------------------------------------

    def _functions(self) -> dict[str, Callable]:
        namespace = self.flow["namespace"]

        def secret(name: str) -> str:
            if name not in self.secrets:
                raise TaskFailed(f"Cannot find secret for key '{name}'")
            return self.secrets[name]

        def kv(key: str, errorOnMissing: bool = True) -> Any:  # noqa: N803 - Kestra's name
            try:
                return self.kv(namespace, key)
            except KeyError:
                if errorOnMissing:
                    raise TaskFailed(f"No value found for key '{key}'") from None
                return None

        return {"secret": secret, "kv": kv}

    def _context(self, execution: Execution, trigger: Any = None) -> dict[str, Any]:
        context = {"inputs": execution.inputs,
                   "outputs": {k: {"vars": v.get("vars", {}), **v} for k, v in execution.outputs.items()},
                   "flow": {"id": self.flow["id"], "namespace": self.flow["namespace"]},
                   "execution": {"id": execution.id}, "envs": dict(self.envs),
                   "vars": self.flow.get("variables") or {}, **self.loop_values,
                   "labels": _nested({**(self.flow.get("labels") or {}), **execution.labels})}
        trigger = trigger if trigger is not None else execution.trigger
        if trigger is not None:
            context["trigger"] = trigger
        return context

    def render(self, value: Any, execution: Execution, trigger: Any = None) -> Any:
        return render(value, self._context(execution, trigger), self._functions())

    # -- entry points ---------------------------------------------------------------------------

    def _inputs(self, given: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for spec in self.flow.get("inputs") or []:
            name = spec["id"]
            value = given.get(name, spec.get("defaults"))
            if value is None and spec.get("required", True):
                raise TaskFailed(f"Missing required input '{name}'")
            if value is not None and spec["type"] == "SELECT" and str(value) not in map(str, spec["values"]):
                raise TaskFailed(f"Invalid value for input '{name}': {value!r}")
            if value is not None and spec.get("validator") is not None and \
                    not re.fullmatch(spec["validator"], str(value)):
                # StringInput.validate: RegexUtils.matches, Matcher.matches() on the whole value
                raise TaskFailed(f"Invalid value for input '{name}': it must match the pattern "
                                 f"`{spec['validator']}`")
            if value is not None and spec["type"] == "INT":
                value = int(value)
            values[name] = value
        return values

    def _undeclared(self, given: Mapping[str, Any], execution: Execution) -> None:
        """FlowInputOutput.readExecutionInputs: an input the flow does not declare is ignored,
        with a warning."""
        declared = {spec["id"] for spec in self.flow.get("inputs") or []}
        for name in sorted(set(given) - declared):
            execution.logs.append(("execution", "WARN", f"Input {name} was provided for workflow "
                                   f"{self.flow['namespace']}.{self.flow['id']} but isn't "
                                   "declared in the workflow inputs"))

    def _trigger(self, kind: str) -> dict[str, Any]:
        return next(t for t in self.flow.get("triggers") or [] if t["type"].endswith(kind))

    def execute(self, inputs: Mapping[str, Any] | None = None, *,
                resume: Mapping[str, Any] | None = None,
                on_pause: Callable[[], None] | None = None,
                labels: Mapping[str, str] | None = None) -> Execution:
        """A manual execution from the UI's Execute button: no ``trigger`` variable. At a Pause,
        ``on_pause`` runs (what happens while the execution waits), then the execution is
        resumed with ``resume`` (the onResume inputs, and ``by``: who resumed it) or, without
        it, reaches the Pause's timeout. ``labels``: the execution's own, e.g. the
        ``system.username`` Kestra Enterprise sets."""
        self.resume, self.on_pause = resume, on_pause
        try:
            return self._run(dict(inputs or {}), labels=dict(labels or {}))
        finally:
            self.resume, self.on_pause = None, None

    def schedule(self) -> Execution:
        trigger = self._trigger("trigger.Schedule")
        execution = Execution(uuid.uuid4().hex[:22])
        context = {"date": "2026-11-26T10:00:00Z"}
        return self._run(self.render(trigger.get("inputs") or {}, execution, context), context)

    def webhook(self, key: str, headers: Mapping[str, list[str]], body: bytes) -> Execution | None:
        """A request to the webhook URL; None when Kestra would answer 404 (wrong key)."""
        trigger = self._trigger("trigger.Webhook")
        execution = Execution(uuid.uuid4().hex[:22])
        if key != self.render(trigger["key"], execution):
            return None
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = body.decode()
        context = {"body": parsed, "headers": dict(headers), "parameters": {}}
        return self._run(self.render(trigger.get("inputs") or {}, execution, context), context)

    # -- tasks ----------------------------------------------------------------------------------

    def _run(self, given: Mapping[str, Any], trigger: dict[str, Any] | None = None,
             labels: dict[str, str] | None = None) -> Execution:
        execution = Execution(uuid.uuid4().hex[:22], inputs=self._inputs(given), trigger=trigger,
                              labels=labels or {})
        self._undeclared(given, execution)
        try:
            self._tasks(self.flow["tasks"], execution, None)
            execution.state = "SUCCESS"
        except PauseTimedOut as exc:  # behavior CANCEL: the execution ends there, nothing after
            execution.state = "CANCELLED"
            execution.logs.append(("execution", "WARN", str(exc)))
            return execution
        except TaskFailed as exc:
            execution.state = "FAILED"
            execution.logs.append(("execution", "ERROR", str(exc)))
            try:
                self._tasks(self.flow.get("errors") or [], execution, None)
            except TaskFailed as again:
                execution.logs.append(("errors", "ERROR", str(again)))
            return execution
        for output in self.flow.get("outputs") or []:
            execution.flow_outputs[output["id"]] = self.render(output["value"], execution)
        return execution

    def _tasks(self, tasks: list[dict], execution: Execution, workdir: Path | None) -> None:
        for task in tasks:
            handler = {
                PYTHON_COMMANDS: self._commands, "io.kestra.plugin.git.Clone": self._clone,
                "io.kestra.plugin.git.PushFlows": self._push_flows,
                "io.kestra.plugin.git.PushNamespaceFiles": self._push_files,
                "io.kestra.plugin.core.flow.If": self._if,
                "io.kestra.plugin.core.flow.WorkingDirectory": self._working_directory,
                "io.kestra.plugin.core.flow.Loop": self._loop,
                "io.kestra.plugin.core.flow.ForEach": self._loop,
                "io.kestra.plugin.core.log.Log": self._log,
                "io.kestra.plugin.core.flow.Pause": self._pause,
                "io.kestra.plugin.core.debug.Return": self._return,
                "io.kestra.plugin.core.execution.Fail": self._fail,
            }.get(task["type"])
            if handler is None:
                raise AssertionError(f"the emulator does not run {task['type']}")
            if "runIf" in task and not _truthy(self.render(task["runIf"], execution)):
                execution.states[task["id"]] = "SKIPPED"
                continue
            try:
                handler(task, execution, workdir)
            except TaskFailed:
                execution.states[task["id"]] = "FAILED"
                raise
            execution.states.setdefault(task["id"], "SUCCESS")

    def _pause(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        """Pause: outputs ``onResume`` (each input's value, or its default) and ``resumed``
        (by, on, to); a Pause that is not resumed ends at its timeout (behavior CANCEL only)."""
        if self.on_pause is not None:
            self.on_pause()
        if self.resume is None:
            assert task.get("behavior") == "CANCEL", "the emulator times out CANCEL pauses only"
            raise PauseTimedOut(f"{task['id']}: not resumed within {task.get('pauseDuration')}")
        given = {k: v for k, v in self.resume.items() if k != "by"}
        inputs = {i["id"]: i for i in task.get("onResume") or []}
        unknown = set(given) - set(inputs)
        if unknown:
            raise TaskFailed(f"Unknown resume inputs {sorted(unknown)}")
        values = {name: given.get(name, spec.get("defaults")) for name, spec in inputs.items()}
        execution.outputs[task["id"]] = {"onResume": values, "resumed": {
            "by": self.resume.get("by"), "on": "2026-11-26T10:05:00", "to": "SUCCESS"}}

    def _log(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        level = task.get("level", "INFO")
        execution.logs.append((task["id"], level, str(self.render(task["message"], execution))))

    def _return(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        execution.outputs[task["id"]] = {"value": self.render(task.get("format"), execution)}

    def _fail(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        """Fail.java: without a condition, fail with the message; with one, fail when it renders
        truthy, the message logged at ERROR."""
        message = str(self.render(task.get("errorMessage", "Task failure"), execution))
        if "condition" not in task:
            raise TaskFailed(message)
        if _truthy(self.render(task["condition"], execution)):
            execution.logs.append((task["id"], "ERROR", message))
            raise TaskFailed("Fail on a condition")

    def _if(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        branch = "then" if _truthy(self.render(task["condition"], execution)) else "else"
        self._tasks(task.get(branch) or [], execution, workdir)

    def _working_directory(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        shared = self.workspace / f"{task['id']}-{execution.id}"
        shared.mkdir(parents=True)
        self._tasks(task["tasks"], execution, shared)

    def _loop(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        values = self.render(task["values"], execution)
        values = json.loads(values) if isinstance(values, str) else values
        assert task.get("concurrencyLimit", 1) == 1, "the emulator runs iterations in order"
        # 2.0 Loop: item.value / item.index; 1.3 ForEach: taskrun.value / taskrun.iteration
        name = "item" if task["type"].endswith(".Loop") else "taskrun"
        for index, value in enumerate(values):
            self.loop_values = {name: {"value": value, "index": index, "iteration": index}}
            try:
                self._tasks(task["tasks"], execution, workdir)
            finally:
                self.loop_values = {}

    @staticmethod
    def _git(*args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(["git", "-c", "user.name=Kestra", "-c", "user.email=kestra@localhost",
                               "-c", "commit.gpgsign=false", *args], cwd=cwd, capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise TaskFailed(f"git {args[0]} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def _clone(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        """plugin-git Clone: ``commit`` wins over ``tag`` (full clone, detached checkout; an
        annotated tag is peeled), else a shallow clone of ``branch`` (a branch only: it fetches
        refs/heads/<branch>). Whether ``tag``/``commit`` are set counts, not their value."""
        props = self.render({k: v for k, v in task.items() if k not in ("id", "type")}, execution)
        assert workdir is not None, "Clone runs inside a WorkingDirectory here"
        target = workdir / props.get("directory", "")
        url, auth = f"file://{props['url']}", ()
        if props["url"].startswith(("http://", "https://")):  # with the task's credentials
            url = props["url"]
            token = base64.b64encode(f"{props.get('username', '')}:{props.get('password', '')}"
                                     .encode()).decode()
            auth = ("-c", f"http.extraHeader=Authorization: Basic {token}")
        if "commit" in props or "tag" in props:
            wanted = props["commit"] if "commit" in props else props["tag"]
            if not wanted:
                raise TaskFailed("Cannot resolve " + ("commit SHA" if "commit" in props else "tag"))
            self._git(*auth, "clone", "--quiet", "--no-checkout", url, str(target))
            ref = wanted if "commit" in props else f"refs/tags/{wanted}^{{commit}}"
            self._git("checkout", "--quiet", "--detach", ref, cwd=target)
        else:
            branch = props.get("branch") or ""
            if not self._git(*auth, "ls-remote", "--heads", url, f"refs/heads/{branch}"):
                raise TaskFailed(f"Remote branch '{branch}' not found in upstream origin")
            self._git(*auth, "clone", "--quiet", "--depth", str(props.get("depth", 1)),
                      "--branch", branch, url, str(target))
        execution.outputs[task["id"]] = {"directory": str(target)}

    def _push(self, props: dict, files: Mapping[str, bytes], message: str) -> str:
        """Commit ``files`` (paths in the repository) to ``branch`` of the repository at ``url``,
        creating the branch from the default one if missing; never deletes (delete: false)."""
        assert props.get("delete") is False, "these flows never let a push delete files"
        url = f"file://{props['url']}"
        checkout = Path(tempfile.mkdtemp(prefix="push-", dir=self.workspace))
        self._git("clone", "--quiet", url, str(checkout))
        branch = props["branch"]
        if self._git("ls-remote", "--heads", url, f"refs/heads/{branch}"):
            self._git("checkout", "--quiet", branch, cwd=checkout)
        else:
            self._git("checkout", "--quiet", "-b", branch, cwd=checkout)
        for relative, content in files.items():
            path = checkout / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        self._git("add", "-A", cwd=checkout)
        if props.get("dryRun") in (True, "true") or not self._git("status", "--porcelain",
                                                                  cwd=checkout):
            return ""
        self._git("commit", "--quiet", "-m", message, cwd=checkout)
        self._git("push", "--quiet", "origin", branch, cwd=checkout)
        return self._git("rev-parse", "HEAD", cwd=checkout)

    def _push_flows(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        props = self.render({k: v for k, v in task.items() if k not in ("id", "type")}, execution)
        assert props.get("includeChildNamespaces") is False, "one namespace per push here"
        folder = props["gitDirectory"].strip("/")
        files = {f"{folder}/{flow_id}.yml": source.encode()
                 for flow_id, source in self.flows(props["sourceNamespace"]).items()}
        commit = self._push(props, files, props["commitMessage"])
        execution.outputs[task["id"]] = {"commitId": commit}

    def _push_files(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        props = self.render({k: v for k, v in task.items() if k not in ("id", "type")}, execution)
        assert props["files"] == "**"
        folder = props["gitDirectory"].strip("/")
        files = {f"{folder}/{path.lstrip('/')}": content
                 for path, content in self.namespace_files(props["namespace"]).items()}
        commit = self._push(props, files, props["commitMessage"])
        execution.outputs[task["id"]] = {"commitId": commit}

    @staticmethod
    def _check_dependencies(requirements: list[str]) -> None:
        """plugin-scripts installs ``dependencies`` with uv before the commands; here they must
        already be installed (the test environment has the package's dependencies)."""
        for requirement in requirements:
            name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
            try:
                importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                raise TaskFailed(f"dependency {requirement!r} is not installable here") from None

    def _commands(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        assert task["taskRunner"]["type"] == "io.kestra.plugin.core.runner.Process"
        self._check_dependencies(task.get("dependencies") or [])
        folder = workdir or (self.workspace / f"{task['id']}-{execution.id}")
        folder.mkdir(parents=True, exist_ok=True)
        files = task.get("namespaceFiles") or {}
        if files.get("enabled"):
            for path, content in self.namespace_files(self.flow["namespace"]).items():
                relative = path.lstrip("/")
                if any(include_matches(path, g) for g in files.get("include") or ["**"]):
                    (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                    (folder / relative).write_bytes(content)
        produced = {str(path): path for path in execution.files.values()}
        for name, content in self.render(task.get("inputFiles") or {}, execution).items():
            # an earlier task's output file (Kestra: its internal-storage URI) gives its content
            source = content if isinstance(content, Path) else produced.get(str(content))
            if source is not None:
                (folder / name).write_bytes(source.read_bytes())
            else:
                (folder / name).write_text(content if content is not None else "")
        env = {k: str(v) for k, v in self.render(task.get("env") or {}, execution).items()}
        script = ["set -e", *task.get("beforeCommands", []), *task["commands"]]
        path = os.pathsep.join([str(Path(sys.executable).parent), self._image_path()])
        base = {k: v for k, v in os.environ.items() if not k.startswith(("KESTRA_", "KP_"))}
        done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=folder, capture_output=True,
                              text=True, env={**base, "PATH": path, **env}, timeout=300)
        outputs: dict[str, Any] = {}
        # Kestra reads ::{json}:: lines on both streams, a later value winning; other lines are
        # logged, stdout ones at INFO and stderr ones at ERROR (warningOnStdErr has no effect)
        for stream, level in ((done.stdout, "INFO"), (done.stderr, "ERROR")):
            for line in stream.splitlines():
                if marker := MARKER.match(line):
                    try:
                        message = json.loads(marker.group(1))
                        logs = [(task["id"], m["level"], m["message"])
                                for m in message.get("logs", [])]
                        assert all(lvl in LOG_LEVELS for _, lvl, _ in logs)
                    except (ValueError, KeyError, AssertionError):
                        execution.logs.append((task["id"], "WARN", f"Invalid outputs: {line}"))
                        continue
                    outputs.update(message.get("outputs", {}))
                    execution.metrics += message.get("metrics", [])
                    execution.logs += logs
                elif line.strip():
                    execution.logs.append((task["id"], level, line))
        record: dict[str, Any] = {"vars": outputs, "exitCode": done.returncode}
        found = {}
        for pattern in task.get("outputFiles") or []:
            for match in folder.glob(pattern):
                found[match.name] = match
        record["outputFiles"] = found
        execution.files.update(found)
        execution.outputs[task["id"]] = record
        if done.returncode != 0:
            raise TaskFailed(f"Command failed with exit code {done.returncode}")

    def _image_path(self) -> str:
        """The PATH of the worker's image: the test's own, less the ``lacking`` commands (a
        folder of links to every other command, the first of each name on the PATH)."""
        if not self.lacking:
            return os.environ.get("PATH", "")
        image = self.workspace / "image-bin"
        if not image.is_dir():
            image.mkdir(parents=True)
            for folder in os.environ.get("PATH", "").split(os.pathsep):
                for command in Path(folder).glob("*") if Path(folder).is_dir() else ():
                    name = command.name
                    if name in self.lacking or name.split("-")[0] in self.lacking or \
                            (image / name).exists() or not os.access(command, os.X_OK):
                        continue
                    (image / name).symlink_to(command)
        return str(image)

    def cleanup(self) -> None:
        shutil.rmtree(self.workspace, ignore_errors=True)
