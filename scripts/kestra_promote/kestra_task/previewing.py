"""A pull request's preview, from the promotion flow's webhook path (setting
``promote_previews``, on a development or staging instance).

``decide`` treats a request opened, updated, reopened or closed into the followed branch as a
pull-request run (``webhook.decide``): the request's head commit is asked of Git and cloned.
Then the ``promote`` task asks the provider whether the request is open now, whatever the
payload's action said (a late or forged delivery cannot bring up the preview of a closed
request, nor take down an open one's): open, the clone is deployed as preview ``<number>``
under ``PREFIX.<number>`` (``engine.preview``: every trigger off, nothing written outside that
root, the instance's policy ``previews: false`` refuses); closed, what its inventory records
is deleted. The request's comment (``gates.preview_comment``) says which, with links to the
preview's namespaces in the Kestra UI, and is edited in place on every run.

On a scheduled run with a time to live set (``promote_preview_ttl``), ``decide`` first takes
down every preview of this repository under the prefix not brought up for that long, as
``kestra-promote preview down --older-than`` does.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from kestra_promote import report
from kestra_promote.engine import preview, preview_target
from kestra_promote.engine.apply import apply_locked, check_windows
from kestra_promote.errors import KestraPromoteError, PlanRefused, SettingsError
from kestra_promote.gates import preview_comment, review
from kestra_promote.gates.policy_store import Stored
from kestra_promote.git.origin import normalize_remote, origin
from kestra_promote.kestra_task import settings, verifying
from kestra_promote.kestra_task.emit import Emitter
from kestra_promote.kestra_task.envvalues import text as _text
from kestra_promote.models import ApplyResult, Plan, Problem, Status
from kestra_promote.target import lock
from kestra_promote.target.client import Connection, KestraClient, connect

STATE_NAMESPACE = "system"  # where previews' inventories are kept, as `kestra-promote preview`


def run(env: Mapping[str, str], emit: Emitter, workdir: Path, folder: Path,
        connection: Connection, posting: review.Review) -> int:
    """Bring request ``posting.number``'s preview up from the clone at ``folder``, or take it
    down, as the provider says the request is open or closed; comment on the request."""
    preview_id = str(posting.number)  # the payload's number only: the id derives from it
    root = preview.root_of(_text(env, "KP_PREVIEW_PREFIX") or preview.PARENT, preview_id)
    try:
        is_open = review.request_open(posting)
    except review.ReviewError as exc:
        raise SettingsError(f"asking {posting.provider} whether request #{posting.number} is "
                            f"open failed ({exc}): its preview was left as it is") from None
    with connect(connection) as client:
        stored = settings.read_policy(client, env)
        if is_open:
            return _up(env, emit, workdir, folder, client, stored, posting, root)
        namespace = (stored.policy.safeguards.get("state_namespace") if stored.policy else None)
        return _down(emit, workdir, client, namespace or STATE_NAMESPACE, posting, root,
                     origin(folder))


def _tell(emit: Emitter, posting: review.Review, body: str,
          status: tuple[str, str] | None) -> None:
    name = preview.name_of(str(posting.number))
    try:
        review.post(posting, name, body, status, note=lambda text: emit.log("INFO", text),
                    what="preview")
    except review.ReviewError as exc:
        emit.log("WARN", f"posting the preview's comment to {posting.provider} failed: {exc}")


def _short(text: str) -> str:
    return text if len(text) <= 140 else text[:137] + "..."


def _reports(workdir: Path, markdown: str, data: Mapping[str, Any]) -> None:
    (workdir / "report.md").write_text(markdown, encoding="utf-8")
    (workdir / "report.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _up(env: Mapping[str, str], emit: Emitter, workdir: Path, folder: Path,
        client: KestraClient, stored: Stored, posting: review.Review, root: str) -> int:
    preview_id, name = str(posting.number), preview.name_of(str(posting.number))
    try:
        if (why := preview.forbidden(stored)) is not None:
            raise PlanRefused(f"preview refused: {why}", [Problem(why)])
        promotion = preview_target.open_preview(
            client, folder, verifying.task_config(env, folder), preview_id, root,
            state_namespace=STATE_NAMESPACE, stored=stored, origin=origin(folder))

        def replan() -> Plan:
            return preview.guarded(promotion.plan(), root)

        plan = replan()
        emit.text(report.render_plan_text(plan))
        check_windows(plan, datetime.now(timezone.utc))  # the instance's policy may set some
        plan, result = apply_locked(
            client, plan, replan=replan, gate=lambda p: check_windows(p, datetime.now(
                timezone.utc)), holder=_text(env, "KP_HOLDER") or lock.default_holder(
                f"kestra-promote preview {preview_id}"), trigger="preview", ref=posting.sha,
            extra={preview.RECORD_KEY: root})
    except KestraPromoteError as error:
        problems = getattr(error, "problems", ())
        _tell(emit, posting, preview_comment.failed(name, posting.sha, root, str(error),
                                                    problems, posting.link),
              ("failure", _short(str(error))))
        raise
    _reports(workdir, report.render_plan_markdown(plan, result=result),
             report.result_to_dict(result))
    emit.text(report.render_result_text(result))
    if not result.ok:
        summary = report.result_summary(result)
        _tell(emit, posting, preview_comment.failed(name, plan.commit, root, summary, (),
                                                    posting.link), ("failure", _short(summary)))
        emit.outputs({"action": "failed", "ok": False, "commit": plan.commit or "",
                      "preview": root})
        emit.log("ERROR", summary)
        return 1
    ui = _text(env, "KP_UI_URL") or _text(env, "KESTRA_URL") or ""
    _tell(emit, posting, preview_comment.up(name, plan, result, root, ui,
                                            _text(env, "KESTRA_TENANT") or "main", posting.link),
          ("success", _short(f"preview up under {root}")))
    emit.outputs({"action": "preview-up", "ok": True, "commit": plan.commit or "",
                  "preview": root})
    emit.log("INFO", f"Preview {preview_id} is up under {root} (every trigger disabled): "
                     f"{report.result_summary(result)}")
    return 0


def _down(emit: Emitter, workdir: Path, client: KestraClient, namespace: str,
          posting: review.Review, root: str, where: str | None) -> int:
    preview_id, name = str(posting.number), preview.name_of(str(posting.number))
    done: tuple[Plan, ApplyResult] | None = preview_target.take_down(
        client, namespace, preview_id, root,
        holder=lock.default_holder(f"kestra-promote preview down {preview_id}"), origin=where)
    if done is None:
        _reports(workdir, f"No preview {preview_id} on this instance: nothing to remove.\n",
                 {"preview": root, "removed": False})
        _tell(emit, posting, preview_comment.down(name, root, None, posting.link), None)
        emit.outputs({"action": "preview-down", "ok": True, "preview": root})
        emit.log("INFO", f"No preview {preview_id} on this instance: nothing to remove")
        return 0
    plan, result = done
    _reports(workdir, report.render_plan_markdown(plan, result=result),
             report.result_to_dict(result))
    if not result.ok:
        summary = report.result_summary(result)
        emit.outputs({"action": "failed", "ok": False, "preview": root})
        emit.log("ERROR", f"preview {preview_id} was not taken down: {summary}")
        return 1
    deleted = [str(o.change.key) for o in result.outcomes if o.status is Status.APPLIED]
    _tell(emit, posting, preview_comment.down(name, root, deleted, posting.link), None)
    emit.outputs({"action": "preview-down", "ok": True, "preview": root})
    emit.log("INFO", f"Preview {preview_id} is down: {len(deleted)} object(s) deleted, its "
                     "inventory removed")
    return 0


def expire(env: Mapping[str, str], emit: Emitter, connection: Connection) -> None:
    """Take down this repository's previews under the prefix last brought up longer ago than
    the setting ``promote_preview_ttl`` (none when unset). One that cannot be taken down is
    warned about; the scheduled promotion goes on."""
    text = _text(env, "KP_PREVIEW_TTL")
    if not text:
        return
    ttl = preview.parse_age(text, "promote_preview_ttl")
    prefix = _text(env, "KP_PREVIEW_PREFIX") or preview.PARENT
    with connect(connection) as client:
        stored = settings.read_policy(client, env)
        namespace = (stored.policy.safeguards.get("state_namespace") if stored.policy
                     else None) or STATE_NAMESPACE
        where = repository_origin(env)
        for preview_id in preview_target.stale(client, namespace, prefix, ttl,
                                               datetime.now(timezone.utc), origin=where):
            _expire_one(emit, client, namespace, preview_id, preview.root_of(prefix, preview_id),
                        where, text)


def _expire_one(emit: Emitter, client: KestraClient, namespace: str, preview_id: str,
                root: str, where: str, ttl: str) -> None:
    try:
        done = preview_target.take_down(
            client, namespace, preview_id, root, origin=where,
            holder=lock.default_holder(f"kestra-promote preview down {preview_id}"))
    except KestraPromoteError as error:
        emit.log("WARN", f"stale preview {preview_id} was not taken down: {error}")
        return
    if done is None:
        return  # taken down meanwhile
    _, result = done
    if not result.ok:
        emit.log("WARN", f"stale preview {preview_id} was not taken down: "
                         f"{report.result_summary(result)}")
        return
    deleted = sum(o.status is Status.APPLIED for o in result.outcomes)
    emit.log("INFO", f"Preview {preview_id} under {root} removed, last brought up longer ago "
                     f"than promote_preview_ttl ({ttl}): {deleted} object(s) deleted")


def repository_origin(env: Mapping[str, str]) -> str:
    """The origin the clone of the followed repository has (``origin``), known without a
    clone: the flow's Clone task clones ``promote_repo_url``, which becomes the clone's
    ``origin`` remote (plugin-git ``Clone.java`` builds a JGit clone command with ``setURI`` of
    that URL, and JGit names the remote it records ``origin``), and the flows are read from
    ``promote_path`` in it (``KP_SOURCE``)."""
    url = _text(env, "KP_REPO_URL")
    if not url:
        raise SettingsError("KP_REPO_URL is not set: the flows read it from promote_repo_url")
    source = PurePosixPath(_text(env, "KP_SOURCE") or "repo")
    inside = source.relative_to("repo").as_posix() if source.is_relative_to("repo") else ""
    where = normalize_remote(url)
    return where if inside in ("", ".") else f"{where}:{inside}"
