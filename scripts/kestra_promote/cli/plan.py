"""``kestra-promote plan``: compare SOURCE with the target and show what apply would
change; optionally save the plan (``--out``) or post it on a pull request (``--post``).

A pull request's plan (``--post``, or ``--public`` where the CI system has no ``--post``) is
shown everywhere as the comment shows it: no diff of production's copy that did not come from
this repository, on stdout and in the job summary alike, since whoever reads the request may
read its CI log; it is made as production knows the repository (``open_promotion``'s
``review``), never as the request's own ``name`` or ``state_namespace`` say. ``--public``
refuses ``--out``: a saved plan holds every diff.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Sequence

from kestra_promote.engine import planfile
from kestra_promote.engine.apply import ensure_allowed, ensure_valid
from kestra_promote.errors import KestraPromoteError, PlanRefused, SettingsError, TargetRejected
from kestra_promote.gates import review
from kestra_promote.models import Plan, Problem
from kestra_promote.target.client import Connection, connect
from kestra_promote.cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    check_committed,
    compute_plan,
    load,
    require,
)
from kestra_promote.cli.output import Output, show_plan


def cmd_plan(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    if args.public and args.out:
        raise SettingsError("--public cannot save the plan (--out): a saved plan holds every "
                            "diff, production's side of flows edited there included")
    public = bool(args.post or args.public)
    connection = require(connection)
    posting = _review_of(args) if args.post else None  # before any work: the options are right
    # a pull request's plan is made as production knows the repository, whatever name or
    # state namespace the request's own settings give
    with connect(connection) as client, load(args, client, review=public) as loaded:
        # a saved plan is applied later, from no checkout: check the files against the commit
        # now, as apply would
        dirty = bool(check_committed(args, loaded, output)) if args.out else False
        plan = compute_plan(client, loaded, args.adopt, dirty=dirty)
        error: KestraPromoteError | None = None
        warnings: Sequence[Problem] = ()
        try:
            warnings = ensure_valid(client, plan.pending)
            ensure_allowed(plan)
        except (TargetRejected, PlanRefused) as refused:
            error = refused
    # the diff is what someone fixing the flows needs most (moving 1.3 flows to 2.0, say): the
    # plan first, then what refuses it
    show_plan(output, plan, warnings, error, public=public)
    if posting is not None:
        _post_plan(posting, output, dataclasses.replace(plan, warnings=(*plan.warnings,
                                                                        *warnings)), error)
    if error is not None:
        if output.format == "json":  # already in the document
            output.note(f"Error: {error}")
            return EXIT_ERROR
        raise error
    if args.out:
        planfile.save(plan, args.out, url=connection.url, tenant=connection.tenant)
        output.note(f"Saved the plan to {args.out}: apply it with `kestra-promote apply {args.out}`.")
    return EXIT_CHANGES if args.detailed_exitcode and not plan.is_empty else EXIT_OK


def _review_of(args: argparse.Namespace) -> review.Review:
    token = args.env.get("KESTRA_PROMOTE_REVIEW_TOKEN")
    missing = [flag for flag, value in (("--post-repo", args.post_repo),
                                        ("--post-request", args.post_request),
                                        ("--post-sha", args.post_sha)) if not value]
    if not token:
        missing.append("the token in KESTRA_PROMOTE_REVIEW_TOKEN")
    api = args.post_api or review.DEFAULT_API.get(args.post)
    if not api:
        missing.append("--post-api")
    if missing:
        raise SettingsError(f"--post {args.post} needs {', '.join(missing)}")
    if (why := review.check_repo(args.post, args.post_repo)) is not None:
        raise SettingsError(f"--post-repo: {why}")
    return review.Review(args.post, api, args.post_repo, args.post_request, args.post_sha,
                         token, args.post_link)


def _post_plan(target: review.Review, output: Output, plan: Plan,
               error: KestraPromoteError | None) -> None:
    """The plan on the pull request; a provider that refuses is a warning (the plan stands)."""
    try:
        review.publish(target, plan, getattr(error, "problems", ()),
                       str(error) if error is not None else None, note=output.note)
    except review.ReviewError as exc:
        output.note(f"Warning: posting the plan to {target.provider} failed: {exc}")
