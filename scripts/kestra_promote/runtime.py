"""The bridge to a Kestra script task: settings in through env vars and files, results out
through Kestra's ``::{json}::`` lines (outputs, counters, logs, via the ``kestra`` package) and
files picked up by ``outputFiles``.

Two tasks of the promotion flows run this module (``python -m kestra_promote task ...``):

``decide``   whether this execution promotes: always for a manual or scheduled run, and for a
             webhook when the event is a push to what this promotion follows. Ignored events end
             quickly and successfully, with the reason as an output and a log line; rejected ones
             (bad signature or token) fail the task.
``promote``  plan, apply or status of the cloned repository against the target, writing
             ``report.md`` and ``report.json`` next to it.

Nothing from a webhook reaches code: flows hand the request over in files (``inputFiles``), and
settings in env vars; this module reads them as data.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

from . import report, webhook
from .apply import apply_plan, ensure_allowed, ensure_valid
from .client import Connection, connect
from .desired import prepare
from .errors import KestraPromoteError, SettingsError
from .live import namespace_tree, read_for
from .models import Plan
from .plan import plan as make_plan
from .source import check_namespace, read_source


class Emitter:
    """Kestra outputs, counters and logs: through the ``kestra`` package on the task's stdout,
    as the same ``::{json}::`` lines written directly anywhere else (tests, other streams)."""

    _LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
               "ERROR": logging.ERROR}

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._kestra = None
        if out is sys.stdout:
            try:
                from kestra import Kestra  # type: ignore[import-not-found,import-untyped]
            except ImportError:  # pragma: no cover - the flows install it
                Kestra = None
            self._kestra = Kestra
            if Kestra is not None:
                # its logger does not stop propagation: without this, every record would also
                # reach the root logger's handler as a plain line (stderr lines are logged ERROR)
                Kestra.logger().propagate = False

    def _line(self, message: dict[str, Any]) -> None:
        self.out.write("::" + json.dumps(message) + "::\n")

    def outputs(self, values: Mapping[str, Any]) -> None:
        if self._kestra is not None:
            self._kestra.outputs(dict(values))
        else:
            self._line({"outputs": dict(values)})

    def counter(self, name: str, value: int, **tags: str) -> None:
        if self._kestra is not None:
            self._kestra.counter(name, value, tags)
        else:
            self._line({"metrics": [{"name": name, "type": "counter", "value": value,
                                     "tags": tags}]})

    def log(self, level: str, message: str) -> None:
        # the kestra logger writes each record as a ::{"logs": ...}:: line (WARN and ERROR on
        # stderr), which Kestra logs at the record's own level: a warning stays a WARN line
        if self._kestra is not None:
            self._kestra.logger().log(self._LEVELS[level], message)
        else:
            self._line({"logs": [{"level": level, "message": message}]})

    def text(self, text: str) -> None:
        """Lines for people, logged by Kestra as they are."""
        self.out.write(text if text.endswith("\n") else text + "\n")
        self.out.flush()


def _flag(env: Mapping[str, str], name: str) -> bool | None:
    value = (env.get(name) or "").strip().lower()
    if value in ("", "default", "settings"):
        return None
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise SettingsError(f"{name} must be true or false, not {value!r}")


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    return value if value and value.lower() not in ("null", "none", "default", "settings") else None


def _read(path: str | None) -> bytes | None:
    if not path or not os.path.isfile(path):
        return None
    data = Path(path).read_bytes()
    return data if data.strip() else None


_COMMIT = re.compile(r"[0-9a-f]{7,40}")


def classify_ref(ref: str, target: webhook.Target) -> tuple[str, str]:
    """(kind, name) of a ref given by hand: ``commit`` for a SHA, ``branch`` for refs/heads/NAME
    or the followed branch, ``tag`` for refs/tags/NAME and any other name (releases are tags).

    Kestra's git Clone needs to be told which one it gets (``branch``, ``tag`` or ``commit``)."""
    if not webhook.valid_ref_name(ref):
        raise SettingsError(f"{ref!r} is not a valid Git ref name")
    if _COMMIT.fullmatch(ref):
        return "commit", ref
    for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix):
            return kind, ref[len(prefix):]
    if ref.startswith("refs/"):
        raise SettingsError(f"{ref!r}: give a branch as refs/heads/NAME, a tag, or a commit SHA")
    return ("branch", ref) if ref == target.branch else ("tag", ref)


def task_decide(env: Mapping[str, str], emit: Emitter) -> int:
    """Decide whether this execution promotes, and what to clone (``kind`` and ``checkout``)."""
    trigger = _text(env, "KP_TRIGGER") or "manual"
    ref = _text(env, "KP_REF")
    target = webhook.Target(branch=_text(env, "KP_BRANCH") or "main", tags=_text(env, "KP_TAGS"))
    if target.tags:
        target = webhook.Target(branch=None, tags=target.tags)
    kind, checkout = "", ""
    if trigger == "webhook":
        raw_headers = _read(env.get("KP_WEBHOOK_HEADERS"))
        headers = json.loads(raw_headers) if raw_headers else {}
        body_text = _read(env.get("KP_WEBHOOK_BODY"))
        body = json.loads(body_text) if body_text else None
        # Kestra passes the parsed body only, never its bytes: signatures cannot be verified here
        decision = webhook.decide(
            headers if isinstance(headers, dict) else {}, body, target=target,
            secret=_text(env, "KP_WEBHOOK_SECRET"),
            require_signature=bool(_flag(env, "KP_REQUIRE_SIGNATURE")))
        if decision.ref and decision.ref.startswith("refs/tags/"):
            kind, checkout = "tag", decision.checkout or ""
        elif target.branch:
            kind, checkout = "branch", target.branch
    elif ref:
        kind, checkout = classify_ref(ref, target)
        decision = webhook.Decision("sync", f"{trigger} run of {kind} {checkout!r}", "kestra",
                                    trigger, ref)
    elif target.tags:
        verdict = "ignore" if trigger == "schedule" else "reject"
        decision = webhook.Decision(verdict, f"this promotion follows {target.describe()}: "
                                    "give the tag to promote in the 'ref' input", "kestra", trigger)
    else:
        kind, checkout = "branch", target.branch or "main"
        decision = webhook.Decision("sync", f"{trigger} run of branch {target.branch!r}", "kestra",
                                    trigger, f"refs/heads/{target.branch}")
    synced = decision.decision == "sync"
    values = {**decision.to_dict(), "trigger": trigger, "kind": kind if synced else "",
              "checkout": checkout if synced else ""}
    emit.outputs({k: ("" if v is None else v) for k, v in values.items()})
    level = {"sync": "INFO", "ignore": "INFO", "reject": "ERROR"}[decision.decision]
    emit.log(level, f"{decision.decision}: {decision.reason}")
    return 1 if decision.decision == "reject" else 0


def _connection(env: Mapping[str, str]) -> Connection:
    url = _text(env, "KESTRA_URL")
    if not url:
        raise SettingsError("no target: set KESTRA_URL (the flows read it from their settings)")
    return Connection(url=url, tenant=_text(env, "KESTRA_TENANT") or "main",
                      username=_text(env, "KESTRA_USERNAME"), password=_text(env, "KESTRA_PASSWORD"),
                      token=_text(env, "KESTRA_API_TOKEN"))


def _counts(plan: Plan) -> dict[str, int]:
    return {action: count for action, count in plan.summary.items()}


def _write_reports(folder: Path, markdown: str, data: dict[str, Any]) -> None:
    (folder / "report.md").write_text(markdown, encoding="utf-8")
    (folder / "report.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def task_promote(env: Mapping[str, str], emit: Emitter, *, workdir: Path) -> int:
    """Plan, apply or report status of the clone against the target."""
    mode = (_text(env, "KP_MODE") or "plan").lower()
    if mode not in ("plan", "apply", "status"):
        raise SettingsError(f"KP_MODE must be plan, apply or status, not {mode!r}")
    allow = _text(env, "KP_ALLOW_DELETIONS")
    source = read_source(workdir / (_text(env, "KP_SOURCE") or "repo"),
                         config_file=_text(env, "KP_CONFIG"))
    config = source.config.with_overrides(
        prune=_flag(env, "KP_PRUNE"), drift=_text(env, "KP_DRIFT"),
        allow_deletions=int(allow) if allow else None)
    desired = prepare(source, config)
    with connect(_connection(env)) as client:
        live = read_for(client, desired, config)
        plan = make_plan(desired, live, config, commit=source.commit)
        if mode == "status":
            text = report.render_status_text(plan)
            emit.text(text)
            _write_reports(workdir, f"### Promotion status of `{plan.name}`\n\n```\n{text}```\n",
                           report.plan_to_dict(plan))
            emit.outputs({"action": "status", "ok": True, "commit": plan.commit or "",
                          "out_of_sync": len(report.out_of_sync(plan)), **_counts(plan)})
            return 0
        emit.text(report.render_plan_text(plan))
        for warning in plan.warnings:
            emit.log("WARN", str(warning))
        if mode == "plan":
            warnings = ensure_valid(client, plan.pending)
            for warning in warnings:
                emit.log("WARN", str(warning))
            _write_reports(workdir, report.render_plan_markdown(plan), report.plan_to_dict(plan))
            ensure_allowed(plan)
            emit.outputs({"action": "plan" if not plan.is_empty else "no-changes", "ok": True,
                          "commit": plan.commit or "", **_counts(plan)})
            emit.log("INFO", report.summary_line(plan))
            return 0
        result = apply_plan(client, plan, trigger=_text(env, "KP_TRIGGER") or "kestra",
                            ref=_text(env, "KP_REF"))
    emit.text(report.render_result_text(result))
    _write_reports(workdir, report.render_plan_markdown(plan, result=result),
                   report.result_to_dict(result))
    for action in ("create", "update", "delete"):
        emit.counter("kestra_promote.changes", sum(
            1 for o in result.outcomes if o.change.action.value == action and o.status.value == "applied"),
            action=action)
    emit.outputs({"action": "applied" if result.ok and not plan.is_empty else
                  "no-changes" if result.ok else "failed",
                  "ok": result.ok, "commit": plan.commit or "", **_counts(plan)})
    emit.log("INFO" if result.ok else "ERROR", report.result_summary(result))
    return 0 if result.ok else 1


def task_namespaces(env: Mapping[str, str], emit: Emitter) -> int:
    """The namespaces of a development instance to commit to Git: KP_NAMESPACE and those below
    it that hold flows (Kestra's Git tasks push one namespace at a time)."""
    prefix = _text(env, "KP_NAMESPACE") or ""
    if (why := check_namespace(prefix)) is not None:
        raise SettingsError(f"KP_NAMESPACE {prefix!r}: {why}")
    with connect(_connection(env)) as client:
        namespaces = namespace_tree(client, prefix)
    emit.outputs({"namespaces": namespaces})
    emit.log("INFO", f"{len(namespaces)} namespace(s) to commit: {', '.join(namespaces)}")
    return 0


TASKS: dict[str, Callable[..., int]] = {"decide": task_decide, "promote": task_promote,
                                        "namespaces": task_namespaces}


def run_task(name: str, env: Mapping[str, str], out: TextIO | None = None,
             workdir: Path | None = None) -> int:
    """Run one task; errors become an ERROR log, a report and exit code 1 (task FAILED)."""
    emit = Emitter(out or sys.stdout)
    folder = workdir or Path.cwd()
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if name == "promote":
            return task_promote(env, emit, workdir=folder)
        return TASKS[name](env, emit)
    except KestraPromoteError as error:
        problems = getattr(error, "problems", ())
        emit.text(report.render_problems_text(str(error), problems))
        if name == "promote":
            _write_reports(folder, report.render_problems_markdown(str(error), problems),
                           report.problems_to_dict(str(error), problems))
        emit.outputs({"action": "refused" if "refused" in str(error) else "failed", "ok": False,
                      "error": str(error)})
        emit.log("ERROR", f"kestra-promote: {error}")
        return 1
