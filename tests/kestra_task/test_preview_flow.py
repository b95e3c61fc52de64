"""Pull requests' previews from the promote flow's webhook path (``promote_previews``), emulated
against a fake development instance and fake Git providers: a request's flows go under
``preview.<number>`` with every trigger disabled while it is open, and are gone once it closes;
its comment says so, with links to the preview's namespaces in the Kestra UI."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml
from conftest import FAKE_PASSWORD, FAKE_USER, GitRepo, flow_yaml, run_cli
from preview_hook import previewing, production  # noqa: F401 (fixtures)
from test_flows import _policy, _promotion_writes, _set

pytestmark = pytest.mark.fake_only

HOURLY = ("triggers:\n  - id: hourly\n    type: io.kestra.plugin.core.trigger.Schedule\n"
          "    cron: '@hourly'\n")
NIGHTLY = flow_yaml("company.team", "nightly", "first", HOURLY)


def test_a_request_is_previewed_while_open_updated_in_place_and_gone_once_merged(previewing):
    hook = previewing("github")
    _set(hook.fake, "promote_ui_url", "https://kestra.dev.example")
    execution = hook.opened(2, {"flows/nightly.yml": NIGHTLY})
    assert execution is not None and execution.state == "SUCCESS", execution and execution.logs
    assert execution.outputs["promote"]["vars"]["action"] == "preview-up"
    preview = hook.preview(2)
    assert set(preview) == {("preview.2.company.team", name)
                            for name in ("hello", "caller", "nightly")}
    trigger = yaml.safe_load(preview[("preview.2.company.team", "nightly")])["triggers"][0]
    assert trigger["disabled"] is True
    assert ("company.team", "nightly") not in hook.fake.current()  # nothing outside the root
    head = execution.outputs["decide"]["vars"]["checkout"]
    first = hook.comment(2)
    assert "Preview of this pull request: up" in first and f"`{head[:12]}`" in first
    assert ("[preview.2.company.team](https://kestra.dev.example/ui/main/namespaces/edit/"
            "preview.2.company.team/flows)") in first
    status = hook.api.statuses[-1]
    assert (status["sha"], status["state"], status["context"], status["description"]) == (
        head, "success", "kestra-promote/preview-2", "preview up under preview.2")

    execution = hook.updated(2, {"flows/nightly.yml": flow_yaml("company.team", "nightly",
                                                                "second", HOURLY)})
    assert execution is not None and execution.state == "SUCCESS", execution.logs
    assert "second" in hook.preview(2)[("preview.2.company.team", "nightly")]
    head = execution.outputs["decide"]["vars"]["checkout"]
    (body,) = hook.comments(2)  # the same comment, edited
    assert body != first and f"`{head[:12]}`" in body

    hook.push(2, {"kestra-promote.yml": "name: [\n"}, "broken settings")  # never delivered
    execution = hook.closed(2, merged=True)  # taken down whatever the head's settings say
    assert execution is not None and execution.state == "SUCCESS", execution and execution.logs
    assert execution.outputs["promote"]["vars"]["action"] == "preview-down"
    assert hook.preview(2) == {}
    assert not any("preview-2" in key for key in hook.fake.kv[("main", "system")])
    (body,) = hook.comments(2)
    assert "Preview of this pull request: taken down" in body and "3 object(s) deleted" in body


def test_a_gitlab_request_gets_a_preview_under_the_prefix_set_and_loses_it_once_merged(
        previewing):
    hook, prefix = previewing("gitlab"), "pr"
    _set(hook.fake, "promote_preview_prefix", prefix)
    execution = hook.opened(7, {"flows/nightly.yml": NIGHTLY})
    assert execution is not None and execution.state == "SUCCESS", execution and execution.logs
    assert (f"{prefix}.7.company.team", "nightly") in hook.preview(7, prefix)
    # no UI address set: the links go to the target's
    assert (f"({hook.target}/ui/main/namespaces/edit/{prefix}.7.company.team/flows)"
            in hook.comment(7))
    execution = hook.closed(7, merged=True)
    assert execution is not None and execution.state == "SUCCESS", execution and execution.logs
    assert hook.preview(7, prefix) == {}
    assert "taken down (3 object(s) deleted)" in hook.comment(7)


def test_a_late_delivery_cannot_bring_up_a_closed_requests_preview(previewing):
    hook = previewing("github")
    hook.push(2, {"flows/nightly.yml": NIGHTLY}, "opened")
    hook.api.closed.add(2)  # closed since: the provider says so, whatever the payload's action
    execution = hook.deliver(2, "opened")
    assert execution is not None and execution.state == "SUCCESS", execution and execution.logs
    assert execution.outputs["promote"]["vars"]["action"] == "preview-down"
    assert hook.preview(2) == {}
    assert "there was no preview under `preview.2` to take down" in hook.comment(2)


@pytest.mark.parametrize(("provider", "sent"), [
    ("github", {"X-GitHub-Event": ["pull_request"]}),  # unsigned
    ("gitlab", {"X-Gitlab-Event": ["Merge Request Hook"], "X-Gitlab-Token": ["guessed"]}),
])
def test_an_unsigned_or_forged_request_is_refused_and_changes_nothing(previewing,
                                                                      provider: str, sent):
    hook = previewing(provider)
    hook.push(2, {"flows/nightly.yml": NIGHTLY}, "opened")
    execution = hook.deliver(2, "opened", sign=lambda provider, body: sent)
    assert execution is not None and execution.state == "FAILED"
    assert execution.outputs["decide"]["vars"]["decision"] == "reject"
    assert hook.preview(2) == {} and hook.api.requests == []  # the provider was never asked
    assert _promotion_writes(hook.fake) == []


def test_an_instance_whose_policy_forbids_previews_says_so_on_the_request(previewing):
    hook = previewing("github")
    _policy(hook.fake, "previews: false\n")
    execution = hook.opened(2, {"flows/nightly.yml": NIGHTLY})
    assert execution is not None and execution.state == "FAILED"
    assert hook.preview(2) == {}
    body = hook.comment(2)
    assert "Preview of this pull request: not brought up" in body
    assert "forbids previews (previews: false" in body
    assert hook.api.statuses[-1]["state"] == "failure"


def test_closing_a_request_never_takes_down_another_repositorys_preview(previewing, tmp_path):
    hook = previewing("github")
    _other_repositorys_preview(hook, tmp_path, "2")  # on the same instance, the same id
    hook.push(2, {"flows/nightly.yml": NIGHTLY}, "opened")
    execution = hook.closed(2)  # this repository's request 2, closed (or never opened)
    assert execution is not None and execution.state == "FAILED"
    assert set(hook.preview(2)) == {("preview.2.web.site", "site")}  # left as it was
    assert any("kestra-promote.preview-2" == key for key in hook.fake.kv[("main", "system")])
    logs = "\n".join(str(line) for line in execution.logs)
    assert "preview 2 not removed: it is another repository's (git.example.com/web/flows)" \
        in logs, logs


def _other_repositorys_preview(hook, tmp_path, preview_id: str) -> None:
    """Another repository (git.example.com/web/flows) brings its preview ``preview_id`` up on the
    same instance, under the same prefix, from the CLI."""
    other = GitRepo(tmp_path / "other")
    other.write("flows/site.yml", flow_yaml("web.site", "site"))
    other.commit()
    other.git("remote", "add", "origin", "https://git.example.com/web/flows.git")
    env = {"KESTRA_URL": hook.target, "KESTRA_USERNAME": FAKE_USER,
           "KESTRA_PASSWORD": FAKE_PASSWORD}
    assert run_cli("preview", "up", str(other.path), "--id", preview_id, env=env).code == 0


def _age(hook, preview_id: str, days: int) -> None:
    """Preview ``preview_id``'s last ``up`` moved ``days`` days back, in its inventory."""
    runs = hook.fake.kv[("main", "system")][f"kestra-promote.preview-{preview_id}"]["value"][
        "history"]
    runs[-1]["time"] = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat()


def test_a_schedule_run_removes_this_repositorys_previews_older_than_the_ttl(previewing,
                                                                              tmp_path):
    hook = previewing("github")
    _set(hook.fake, "promote_preview_ttl", "7d")
    _other_repositorys_preview(hook, tmp_path, "9")  # under the same prefix
    for number in (2, 3):
        execution = hook.opened(number, {"flows/nightly.yml": NIGHTLY})
        assert execution is not None and execution.state == "SUCCESS", execution.logs
    _age(hook, "2", 8)
    _age(hook, "9", 30)
    _age(hook, "3", 6)

    execution = hook.emulator.schedule()
    assert execution.state == "SUCCESS", execution.logs
    assert hook.preview(2) == {}
    assert not any("preview-2" in key for key in hook.fake.kv[("main", "system")])
    assert ("preview.3.company.team", "nightly") in hook.preview(3)  # not stale yet
    assert set(hook.preview(9)) == {("preview.9.web.site", "site")}  # another repository's
    logs = [str(line) for line in execution.logs]
    removed = [line for line in logs if "longer ago than promote_preview_ttl" in line]
    assert len(removed) == 1 and "Preview 2 " in removed[0], logs
    assert not any(level == "WARN" for task, level, _ in execution.logs if task == "decide"), logs
    # then the scheduled run promotes the followed branch, as before
    assert execution.outputs["decide"]["vars"]["kind"] == "branch"
    assert ("company.team", "caller") in hook.fake.current()


def test_without_a_ttl_no_preview_is_removed_and_a_bad_one_fails_naming_it(previewing):
    hook = previewing("github")
    execution = hook.opened(2, {"flows/nightly.yml": NIGHTLY})
    assert execution is not None and execution.state == "SUCCESS", execution.logs
    _age(hook, "2", 365)
    execution = hook.emulator.schedule()
    assert execution.state == "SUCCESS", execution.logs
    assert ("preview.2.company.team", "nightly") in hook.preview(2)

    _set(hook.fake, "promote_preview_ttl", "a week")
    execution = hook.emulator.schedule()
    assert execution.state == "FAILED"
    logs = "\n".join(str(line) for line in execution.logs)
    assert "promote_preview_ttl 'a week' is not a duration such as 7d" in logs, logs
    assert "Traceback" not in logs
    assert ("preview.2.company.team", "nightly") in hook.preview(2)
