"""A pull request's preview, as its comment on the request tells it: up (the commit, links to
the preview's namespaces in the Kestra UI), not brought up (why), or taken down.

The comment is the one ``gates.review`` posts and edits in place: it opens with the marker of
the preview's source name (``preview-ID``), so every run for the request edits the same one.
Pure: the posting is ``review.post``'s.
"""

from __future__ import annotations

from typing import Iterable, Sequence
from urllib.parse import quote

from kestra_promote import report
from kestra_promote.gates.review import marker, quiet
from kestra_promote.models import Action, ApplyResult, Plan, Problem

TITLE = "### Preview of this pull request"
NO_OBJECTS = "- (no flow or namespace file)\n"


def namespace_link(ui: str, tenant: str, namespace: str) -> str:
    """A namespace's page in the Kestra UI, on its flows tab. The UI's router names it
    ``namespaces/update``, path ``/:tenant?/namespaces/edit/:id/:tab?``, on 1.3
    (ui/src/routes/routes.js) and 2.0 (ui/src/routes/routes.ts) alike, and the UI is served
    under ``/ui/`` (core/.../utils/UriProvider.java builds its execution links there); the
    namespace page's tabs include ``flows`` (ui/src/components/namespaces/utils/useHelpers.ts)."""
    return (f"{ui.rstrip('/')}/ui/{quote(tenant, safe='')}/namespaces/edit/"
            f"{quote(namespace, safe='.')}/flows")


def namespaces(plan: Plan) -> list[str]:
    """The namespaces the preview holds objects in once ``plan`` is applied."""
    kept = (Action.CREATE, Action.UPDATE, Action.UNCHANGED, Action.DRIFTED)
    return sorted({c.key.namespace for c in plan.changes if c.action in kept})


def _finish(name: str, text: str, link: str | None) -> str:
    if link:
        text += f"\n[The whole run]({link})\n"
    return f"{marker(name)}\n{quiet(text)}"


def up(name: str, plan: Plan, result: ApplyResult, root: str, ui: str, tenant: str,
       link: str | None) -> str:
    """The comment of a preview brought up (or updated) by ``result``."""
    commit = f"`{plan.commit[:12]}`" if plan.commit else "the request's head"
    links = "".join(f"- [{ns}]({namespace_link(ui, tenant, ns)})\n" for ns in namespaces(plan))
    text = (f"{TITLE}: up\n\nCommit {commit} is deployed under `{root}`, every trigger "
            f"disabled.\n\n{links or NO_OBJECTS}\n{report.result_summary(result)}\n")
    return _finish(name, text, link)


def failed(name: str, commit: str | None, root: str, error: str, problems: Sequence[Problem],
           link: str | None) -> str:
    """The comment of a preview not brought up (refused, or its apply failed and reverted)."""
    shown = f"commit `{commit[:12]}`" if commit else "the request's head"
    text = (f"{TITLE}: not brought up\n\nThe preview of {shown} under `{root}` was not "
            f"deployed.\n\n{report.render_problems_markdown(error, problems)}")
    return _finish(name, text, link)


def down(name: str, root: str, deleted: Iterable[str] | None, link: str | None) -> str:
    """The comment of a preview taken down when the request closed (``deleted`` None: there
    was none)."""
    if deleted is None:
        what = f"there was no preview under `{root}` to take down"
    else:
        what = f"its preview under `{root}` was taken down ({len(list(deleted))} object(s) deleted)"
    return _finish(name, f"{TITLE}: taken down\n\nThe request is closed: {what}.\n", link)
