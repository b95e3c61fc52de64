"""Run a flow of flows/ the way Kestra would, for the task types those flows use.

Entry points: a manual execution (inputs from the Execute form), a Schedule trigger, a Webhook
trigger (key checked, trigger.body / trigger.headers available to the trigger's inputs). Tasks:
Python Commands (Process runner: namespace files copied in, inputFiles written, env rendered,
beforeCommands and commands run by a shell, ``::{json}::`` lines parsed, outputFiles collected),
git Clone (a real ``git clone`` of a local repository), If, WorkingDirectory, Log. A failing task
fails the execution and runs the ``errors`` tasks.
"""

from __future__ import annotations

import fnmatch
import json
import os
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

    def messages(self, level: str | None = None) -> list[str]:
        return [m for _, lvl, m in self.logs if level is None or lvl == level]


@dataclass
class Emulator:
    flow_path: Path
    secrets: Mapping[str, str]
    kv: Callable[[str, str], Any]  # (namespace, key) -> value; KeyError when missing
    namespace_files: Callable[[str], Mapping[str, bytes]]  # namespace -> {path: content}
    workspace: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kestra-run-")))

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
                   "execution": {"id": execution.id}}
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
            if value is not None and spec["type"] == "INT":
                value = int(value)
            values[name] = value
        unknown = set(given) - set(values)
        if unknown:
            raise TaskFailed(f"Unknown inputs {sorted(unknown)}")
        return values

    def _trigger(self, kind: str) -> dict[str, Any]:
        return next(t for t in self.flow.get("triggers") or [] if t["type"].endswith(kind))

    def execute(self, inputs: Mapping[str, Any] | None = None) -> Execution:
        """A manual execution from the UI's Execute button."""
        return self._run(dict(inputs or {}))

    def schedule(self) -> Execution:
        trigger = self._trigger("trigger.Schedule")
        execution = Execution(uuid.uuid4().hex[:22])
        context = {"date": "2026-11-26T10:00:00Z"}
        return self._run(self.render(trigger.get("inputs") or {}, execution, context))

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
        return self._run(self.render(trigger.get("inputs") or {}, execution, context))

    # -- tasks ----------------------------------------------------------------------------------

    def _run(self, given: Mapping[str, Any]) -> Execution:
        execution = Execution(uuid.uuid4().hex[:22], inputs=self._inputs(given))
        try:
            self._tasks(self.flow["tasks"], execution, None)
            execution.state = "SUCCESS"
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
                "io.kestra.plugin.core.flow.If": self._if,
                "io.kestra.plugin.core.flow.WorkingDirectory": self._working_directory,
                "io.kestra.plugin.core.log.Log": self._log,
            }.get(task["type"])
            if handler is None:
                raise AssertionError(f"the emulator does not run {task['type']}")
            try:
                handler(task, execution, workdir)
            except TaskFailed:
                execution.states[task["id"]] = "FAILED"
                raise
            execution.states.setdefault(task["id"], "SUCCESS")

    def _log(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        level = task.get("level", "INFO")
        execution.logs.append((task["id"], level, str(self.render(task["message"], execution))))

    def _if(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        condition = self.render(task["condition"], execution)
        branch = "then" if condition in (True, "true") else "else"
        self._tasks(task.get(branch) or [], execution, workdir)

    def _working_directory(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        shared = self.workspace / f"{task['id']}-{execution.id}"
        shared.mkdir(parents=True)
        self._tasks(task["tasks"], execution, shared)

    def _clone(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        props = self.render({k: v for k, v in task.items() if k not in ("id", "type")}, execution)
        assert workdir is not None, "Clone runs inside a WorkingDirectory here"
        target = workdir / props.get("directory", "")
        done = subprocess.run(
            ["git", "clone", "--quiet", "--depth", str(props.get("depth", 1)), "--branch",
             props["branch"], f"file://{props['url']}", str(target)], capture_output=True, text=True)
        if done.returncode != 0:
            raise TaskFailed(f"clone failed: {done.stderr.strip()}")
        execution.outputs[task["id"]] = {"directory": str(target)}

    def _commands(self, task: dict, execution: Execution, workdir: Path | None) -> None:
        assert task["taskRunner"]["type"] == "io.kestra.plugin.core.runner.Process"
        folder = workdir or (self.workspace / f"{task['id']}-{execution.id}")
        folder.mkdir(parents=True, exist_ok=True)
        files = task.get("namespaceFiles") or {}
        if files.get("enabled"):
            for path, content in self.namespace_files(self.flow["namespace"]).items():
                relative = path.lstrip("/")
                if any(fnmatch.fnmatch(relative, g) for g in files.get("include") or ["**"]):
                    (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                    (folder / relative).write_bytes(content)
        for name, content in self.render(task.get("inputFiles") or {}, execution).items():
            (folder / name).write_text(content if content is not None else "")
        env = {k: str(v) for k, v in self.render(task.get("env") or {}, execution).items()}
        script = ["set -e", *task.get("beforeCommands", []), *task["commands"]]
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        base = {k: v for k, v in os.environ.items() if not k.startswith(("KESTRA_", "KP_"))}
        done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=folder, capture_output=True,
                              text=True, env={**base, "PATH": path, **env}, timeout=300)
        outputs: dict[str, Any] = {}
        # Kestra reads ::{json}:: lines on both streams; other lines are logged, stderr ones as
        # warnings (warningOnStdErr: false in these flows: logged, no WARNING state)
        for stream, level in ((done.stdout, "INFO"), (done.stderr, "WARN")):
            for line in stream.splitlines():
                if line.startswith("::{") and line.endswith("}::"):
                    message = json.loads(line[2:-2])
                    outputs.update(message.get("outputs", {}))
                    execution.metrics += message.get("metrics", [])
                    execution.logs += [(task["id"], m["level"], m["message"])
                                       for m in message.get("logs", [])]
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

    def cleanup(self) -> None:
        shutil.rmtree(self.workspace, ignore_errors=True)
