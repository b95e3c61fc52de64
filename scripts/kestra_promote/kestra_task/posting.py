"""Where a pull request's run posts its comment: the provider, API, repository and token of
the flow's settings, the request and head commit the ``decide`` task named."""

from __future__ import annotations

from typing import Mapping

from kestra_promote.errors import SettingsError
from kestra_promote.gates import review
from kestra_promote.kestra_task.envvalues import text as _text


def review_of(env: Mapping[str, str], link: str | None) -> review.Review | None:
    """Where to post (KP_POST: github, gitlab or gitea), None when this run posts nothing;
    ``link``: this execution's page."""
    provider = _text(env, "KP_POST")
    if not provider:
        return None
    api = _text(env, "KP_POST_API") or review.DEFAULT_API.get(provider)
    repo, number = _text(env, "KP_POST_REPO"), _text(env, "KP_POST_REQUEST")
    token, sha = _text(env, "KP_REVIEW_TOKEN"), _text(env, "KP_POST_SHA")
    if provider not in review.PROVIDERS or not (api and repo and number and number.isdigit()
                                                and token and sha):
        raise SettingsError("posting a pull request's plan needs promote_review_api (Gitea), "
                            "promote_review_repo and the secret KESTRA_PROMOTE_REVIEW_TOKEN")
    if (why := review.check_repo(provider, repo)) is not None:
        raise SettingsError(f"promote_review_repo: {why}")
    return review.Review(provider, api, repo, int(number), sha, token, link)
