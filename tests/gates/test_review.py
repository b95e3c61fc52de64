"""The plan on the pull request: one comment updated in place, a commit status per head commit,
on GitHub, GitLab and Gitea, against a fake provider API over real HTTP."""

from __future__ import annotations

from typing import Iterator

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli
from fake_git_provider import FakeProvider
from fake_kestra import serve
from kestra_promote.gates.review import marker

pytestmark = pytest.mark.fake_only
TOKEN = "t0ken-of-the-bot"


@pytest.fixture(params=["github", "gitlab", "gitea"])
def provider(request) -> Iterator[tuple[FakeProvider, str]]:
    fake = FakeProvider(request.param)
    with serve(fake) as url:  # type: ignore[arg-type]
        yield fake, url + ("/api/v4" if request.param == "gitlab" else
                           "/api/v1" if request.param == "gitea" else "")


def _plan(repo: GitRepo, target: Target, provider: tuple[FakeProvider, str], sha: str,
          *extra: str):
    fake, api = provider
    repo_name = "group/flows" if fake.provider == "gitlab" else "acme/flows"
    return run_cli("plan", str(repo.path), "--post", fake.provider, "--post-api", api,
                   "--post-repo", repo_name, "--post-request", "7", "--post-sha", sha, *extra,
                   env={**target.env, "KESTRA_PROMOTE_REVIEW_TOKEN": TOKEN})


def test_one_comment_updated_in_place_and_one_status_per_head_commit(
        repo: GitRepo, target: Target, provider: tuple[FakeProvider, str]):
    fake, _ = provider
    repo.write("kestra-promote.yml", "name: analytics\n")
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    first = repo.commit()
    result = _plan(repo, target, provider, first, "--post-link", "https://ci.example/1")
    assert result.code == 0, result.err
    assert f"Posted the plan on {fake.provider} request #7." in result.err
    (comment,) = fake.comments
    assert comment["body"].startswith(marker("analytics"))
    assert "company.team/a" in comment["body"] and "https://ci.example/1" in comment["body"]
    repo.write("flows/b.yml", flow_yaml("company.team", "b"))
    second = repo.commit()
    assert _plan(repo, target, provider, second).code == 0
    assert len(fake.comments) == 1 and "company.team/b" in fake.comments[0]["body"]
    assert [s["sha"] for s in fake.statuses] == [first, second]
    assert all(s["state"] == "success" for s in fake.statuses)
    name_key = "name" if fake.provider == "gitlab" else "context"
    assert {s[name_key] for s in fake.statuses} == {"kestra-promote/analytics"}
    assert target.fake is not None and target.fake.writes(lease=True) == []  # nothing on Kestra


def test_a_comment_someone_else_wrote_with_the_marker_is_never_edited(
        repo: GitRepo, target: Target, provider: tuple[FakeProvider, str]):
    fake, _ = provider
    fake.post_as("alice", 7, marker("analytics") + "\nI copied the bot's comment")
    repo.write("kestra-promote.yml", "name: analytics\n")
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    sha = repo.commit()
    assert _plan(repo, target, provider, sha).code == 0
    assert fake.comments[0]["body"].endswith("I copied the bot's comment")
    assert len(fake.comments) == 2 and fake.comments[1]["user"] == "bot"


def test_a_plan_the_target_rejects_fails_the_status_with_the_reason(
        repo: GitRepo, target: Target, provider: tuple[FakeProvider, str]):
    fake, _ = provider
    repo.write("flows/bad.yml", flow_yaml("company.team", "bad") + "    colour: red\n")
    sha = repo.commit()
    result = _plan(repo, target, provider, sha)
    assert result.code == 1
    (status,) = fake.statuses
    assert status["state"] == ("failed" if fake.provider == "gitlab" else "failure")
    assert status["description"].startswith("the target rejected 1 of 1 flow(s)")
    assert len(status["description"]) <= 140
    assert "Promotion blocked" in fake.comments[0]["body"] and "colour" in fake.comments[0]["body"]


def test_a_long_plan_is_cut_to_what_the_provider_takes_and_says_so(
        repo: GitRepo, target: Target, provider: tuple[FakeProvider, str]):
    fake, _ = provider
    for i in range(60):
        repo.write(f"flows/f{i:02}.yml", flow_yaml("company.team", f"f{i:02}"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    for i in range(60):  # 60 diffs of about 3 kB: 180 kB of Markdown
        repo.write(f"flows/f{i:02}.yml", flow_yaml("company.team", f"f{i:02}", "x" * 1500))
    sha = repo.commit()
    assert _plan(repo, target, provider, sha).code == 0
    (comment,) = fake.comments
    body = comment["body"]
    assert "company.team/f59" in body  # every object is still listed
    if fake.provider == "gitlab":  # a million characters: all of it
        assert body.count("x" * 1500) >= 60 and "left out" not in body
    else:
        assert len(body) <= 65_000 and "x" * 1500 not in body
        assert "60 diff(s) left out: the comment would be longer than the provider takes" in body


def test_a_provider_that_fails_is_a_warning_and_never_shows_the_token(
        repo: GitRepo, target: Target, provider: tuple[FakeProvider, str]):
    fake, _ = provider
    fake.fail = 500
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    sha = repo.commit()
    result = _plan(repo, target, provider, sha)
    assert result.code == 0
    assert f"Warning: posting the plan to {fake.provider} failed:" in result.err
    assert TOKEN not in result.out + result.err


def test_missing_posting_options_are_refused_before_any_work(repo: GitRepo, target: Target):
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    repo.commit()
    result = run_cli("plan", str(repo.path), "--post", "gitea", "--post-repo", "acme/flows",
                     env=target.env)
    assert result.code == 1
    assert ("--post gitea needs --post-request, --post-sha, the token in "
            "KESTRA_PROMOTE_REVIEW_TOKEN, --post-api") in result.err
    assert target.fake is not None and target.fake.requests == []


def test_the_github_actions_token_posts_and_updates_as_the_actions_bot(repo: GitRepo,
                                                                       target: Target):
    fake = FakeProvider("github")
    with serve(fake) as api:  # type: ignore[arg-type]
        for message in ("one", "two"):
            repo.write("flows/a.yml", flow_yaml("company.team", "a", message))
            sha = repo.commit()
            result = run_cli("plan", str(repo.path), "--post", "github", "--post-api", api,
                             "--post-repo", "acme/flows", "--post-request", "7", "--post-sha",
                             sha, env={**target.env,
                                       "KESTRA_PROMOTE_REVIEW_TOKEN": "t0ken-of-actions"})
            assert result.code == 0 and "Warning" not in result.err, result.err
    assert [c["user"] for c in fake.comments] == ["github-actions[bot]"]


def test_a_marker_quoted_in_a_diff_is_not_the_comment(repo: GitRepo, target: Target,
                                                      provider: tuple[FakeProvider, str]):
    fake, _ = provider
    repo.write("kestra-promote.yml", "name: other\n")
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    repo.write("flows/a.yml", flow_yaml("company.team", "a", f"'{marker('analytics')}'"))
    assert _plan(repo, target, provider, repo.commit()).code == 0
    assert marker("analytics") in fake.comments[0]["body"]  # in the diff
    # another repository's plan for "analytics" (a review of this one is planned as "other",
    # the name production knows it by): refused (the flow is "other"'s), and posted all the
    # same, as a comment of its own
    second = GitRepo(repo.path.parent / "second-repo")
    second.write("kestra-promote.yml", "name: analytics\n")
    second.write("flows/a.yml", flow_yaml("company.team", "a"))
    assert _plan(second, target, provider, second.commit()).code == 1
    # the bot's comment for "other" quotes analytics' marker in its diff: left alone
    assert len(fake.comments) == 2
    assert fake.comments[0]["body"].startswith(marker("other"))


def test_names_from_git_cannot_mention_anyone(repo: GitRepo, target: Target,
                                              provider: tuple[FakeProvider, str]):
    fake, _ = provider
    repo.write("flows/@all/a.yml", flow_yaml("company.team", "a"))
    assert _plan(repo, target, provider, repo.commit()).code == 0
    body = fake.comments[0]["body"]
    assert "@all" not in body and "@\u2060all" in body


def test_gitea_comments_are_cut_by_bytes_and_found_without_paging(repo: GitRepo,
                                                                  target: Target):
    fake = FakeProvider("gitea")
    for n in range(130):  # a long discussion: Gitea answers every comment on each page asked
        fake.post_as("alice", 7, f"comment {n}")
    with serve(fake) as url:  # type: ignore[arg-type]
        provider = (fake, url + "/api/v1")
        for i in range(40):
            repo.write(f"flows/f{i:02}.yml", flow_yaml("company.team", f"f{i:02}"))
        repo.commit()
        assert run_cli("apply", str(repo.path), env=target.env).code == 0
        for i in range(40):  # 3 bytes a character: 40 diffs of about 4,500 bytes
            repo.write(f"flows/f{i:02}.yml", flow_yaml("company.team", f"f{i:02}", "日" * 1500))
        assert _plan(repo, target, provider, repo.commit()).code == 0
        count = len(fake.requests)
        repo.write("flows/g.yml", flow_yaml("company.team", "g"))
        assert _plan(repo, target, provider, repo.commit()).code == 0
        lists = [t for m, t in fake.requests[count:] if m == "GET" and "/comments" in t]
    mine = [c for c in fake.comments if c["user"] == "bot"]
    assert len(mine) == 1 and len(mine[0]["body"].encode()) <= 65_535
    assert len(lists) <= 2  # no page after one that brought nothing new


@pytest.mark.parametrize("repo_name", ["../admin", "acme/../../admin", "acme", "a/b/c", "a b/c"])
def test_a_repository_that_is_not_one_is_refused(repo: GitRepo, target: Target, repo_name: str):
    result = run_cli("plan", str(repo.path), "--post", "github", "--post-repo", repo_name,
                     "--post-request", "1", "--post-sha", "abc",
                     env={**target.env, "KESTRA_PROMOTE_REVIEW_TOKEN": TOKEN})
    assert result.code == 1 and "--post-repo:" in result.err


def test_an_invalid_api_address_is_a_warning_not_a_crash(repo: GitRepo, target: Target):
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    sha = repo.commit()
    result = run_cli("plan", str(repo.path), "--post", "gitea", "--post-api",
                     "http://127.0.0.1:99999/api/v1", "--post-repo", "acme/flows",
                     "--post-request", "1", "--post-sha", sha,
                     env={**target.env, "KESTRA_PROMOTE_REVIEW_TOKEN": TOKEN})
    assert result.code == 0 and "Warning: posting the plan to gitea failed" in result.err
    assert "Traceback" not in result.err


def test_production_content_that_did_not_come_from_the_repository_is_never_shown(
        repo: GitRepo, target: Target, provider: tuple[FakeProvider, str]):
    fake, _ = provider
    assert target.fake is not None
    # someone else's flow in production, never promoted from here, holding something private
    target.fake.seed_flow(flow_yaml("company.payroll", "salaries", "'s3cr3t-dsn'"))
    repo.write("kestra-promote.yml", "name: analytics\n")
    repo.write("flows/mine.yml", flow_yaml("company.team", "mine"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    with target.client() as client:  # and a hotfix made in production's UI
        client.update_flow("company.team", "mine", flow_yaml("company.team", "mine", "'hotfix-pw'"))
    # a pull request that claims the other flow and changes ours
    repo.write("flows/salaries.yml", flow_yaml("company.payroll", "salaries", "mine now"))
    repo.write("flows/mine.yml", flow_yaml("company.team", "mine", "v2"))
    _plan(repo, target, provider, repo.commit())
    body = fake.comments[-1]["body"]
    assert "s3cr3t-dsn" not in body and "hotfix-pw" not in body
    assert "diff(s) not shown: production's copy did not come from this repository" in body


def test_diffs_of_what_this_repository_deployed_are_shown(repo: GitRepo, target: Target,
                                                          provider: tuple[FakeProvider, str]):
    fake, _ = provider
    repo.write("kestra-promote.yml", "name: analytics\n")
    repo.write("flows/mine.yml", flow_yaml("company.team", "mine", "'first words'"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    repo.write("flows/mine.yml", flow_yaml("company.team", "mine", "'second words'"))
    assert _plan(repo, target, provider, repo.commit()).code == 0
    body = fake.comments[-1]["body"]
    assert "first words" in body and "second words" in body and "not shown" not in body


def test_whether_a_request_is_open_is_asked_of_the_provider(provider: tuple[FakeProvider, str]):
    from kestra_promote.gates.review import Review, ReviewError, request_open

    fake, api = provider
    review = Review(fake.provider, api, "group/flows" if fake.provider == "gitlab"
                    else "acme/flows", 7, "0" * 40, TOKEN)
    assert request_open(review) is True
    fake.closed.add(7)
    assert request_open(review) is False
    fake.closed.clear()
    fake.merged.add(7)
    assert request_open(review) is False
    fake.fail = 404
    with pytest.raises(ReviewError, match="answered HTTP 404"):
        request_open(review)
