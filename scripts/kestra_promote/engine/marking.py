"""Marking a verified commit for the next stage (``gates.stages``): an annotated tag
``kestra-promote/verified/<stage>/<n>`` whose message carries the checks that passed.

The tag is created, never moved: when another run took the number first (the Git host refuses
a second tag of one name), the next number is tried. A commit already marked by this stage is
not marked again, nor when the tag was stored though the push seemed to fail. How the tag
reaches the repository (``create``) and how its tags are listed (``list_tags``) belong to the
caller: ``git`` in CI, Git's HTTP protocol inside Kestra.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from kestra_promote.engine.verify import Mark
from kestra_promote.errors import KestraPromoteError, SettingsError
from kestra_promote.gates import stages
from kestra_promote.models import Plan

ATTEMPTS = 5


def marker(list_tags: Callable[[], Mapping[str, str]],
           create: Callable[[str, str, str], None], *, run: str = "") -> Mark:
    """A ``Mark`` for ``engine.verify.apply_verified``. ``create(name, commit, message)``
    creates an annotated tag, raising KestraPromoteError when it cannot; ``run`` names this
    run in the evidence (a Kestra execution, a CI job)."""
    def mark(plan: Plan, checks: Sequence[Mapping[str, Any]], when: datetime) -> str:
        stage, after = plan.stage.get("stage"), plan.stage.get("next")
        if not stage or not after or not plan.commit:
            return ""  # no stage before another: nothing takes this stage's commits
        tags = list_tags()
        if (already := stages.marked(tags, stage, plan.commit)) is not None:
            return already
        message = stages.evidence(stage, plan.commit, when, checks, source=plan.name, run=run)
        for _ in range(ATTEMPTS):
            name = stages.next_tag(tags, stage)
            try:
                create(name, plan.commit, message)
                return name
            except KestraPromoteError:
                tags = list_tags()
                if (already := stages.marked(tags, stage, plan.commit)) is not None:
                    return already  # stored though the answer was lost, or marked meanwhile
                if name not in tags:  # not taken by another run: a real failure
                    raise
        raise SettingsError(f"every tag number tried for stage {stage!r} was taken meanwhile "
                            f"({ATTEMPTS} tries)")
    return mark
