"""Sync windows: cron schedules, durations, time zones and the verdict they give."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli
from kestra_promote.schedule import Window, parse_cron, parse_duration, parse_zone
from kestra_promote.gates.windows import decide

PARIS = parse_zone("Europe/Paris")


def _window(kind: str, schedule: str, duration: str, zone: str = "Europe/Paris",
            name: str = "w") -> Window:
    return Window(name, kind, parse_cron(schedule), parse_duration(duration), parse_zone(zone))


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


FRIDAY_FREEZE = _window("deny", "0 18 * * fri", "2d15h", name="weekend freeze")  # to Mon 09:00


@pytest.mark.parametrize(("moment", "allowed"), [
    ("2026-11-27T17:59+01:00", True),   # Friday, a minute before
    ("2026-11-27T18:00+01:00", False),  # Friday 18:00 Paris
    ("2026-11-27T17:30+00:00", False),  # the same evening, said in UTC (18:30 in Paris)
    ("2026-11-29T23:00+01:00", False),  # Sunday night
    ("2026-11-30T08:59+01:00", False),
    ("2026-11-30T09:00+01:00", True),   # Monday 09:00: open again
])
def test_a_friday_evening_freeze(moment: str, allowed: bool):
    verdict = decide([FRIDAY_FREEZE], _at(moment))
    assert verdict.allowed is allowed, verdict.reason
    if not allowed:
        assert verdict.reason == ("denied by window 'weekend freeze' until "
                                  "2026-11-30T09:00+01:00 (Europe/Paris)")


def test_allow_windows_deny_everything_else_and_say_when_the_next_opens():
    office = _window("allow", "0 9 * * mon-fri", "8h", name="office hours")
    assert decide([office], _at("2026-11-26T10:00+01:00")).allowed  # Thursday
    verdict = decide([office], _at("2026-11-28T10:00+01:00"))  # Saturday
    assert not verdict.allowed
    assert verdict.reason == ("outside every allow window; the next, 'office hours', opens at "
                              "2026-11-30T09:00+01:00 (Europe/Paris)")
    # a deny window wins over an allow window
    assert not decide([office, FRIDAY_FREEZE], _at("2026-11-27T18:30+01:00")).allowed


def test_no_window_allows_everything():
    assert decide([], datetime.now(timezone.utc)).allowed


def test_windows_follow_their_time_zone_across_daylight_saving():
    nightly = _window("deny", "0 2 * * *", "1h", zone="Europe/Paris")
    # 02:00 in Paris is 01:00 UTC in winter, 00:00 UTC in summer
    assert not decide([nightly], _at("2026-12-01T01:30+00:00")).allowed
    assert decide([nightly], _at("2026-07-01T01:30+00:00")).allowed
    assert not decide([nightly], _at("2026-07-01T00:30+00:00")).allowed


@pytest.mark.parametrize(("schedule", "moment", "fires"), [
    ("*/15 * * * *", "2026-11-26T10:45", True),
    ("*/15 * * * *", "2026-11-26T10:46", False),
    ("0 9-17/2 * * *", "2026-11-26T11:00", True),
    ("0 9-17/2 * * *", "2026-11-26T12:00", False),
    ("0 0 1 jan,jul *", "2026-07-01T00:00", True),
    ("0 0 13 * fri", "2026-11-13T00:00", True),   # Friday the 13th: either field, as cron
    ("0 0 13 * fri", "2026-11-27T00:00", True),   # any Friday
    ("0 0 13 * fri", "2026-11-26T00:00", False),
    ("0 0 * * 7", "2026-11-29T00:00", True),      # 7 is Sunday too
    ("@daily", "2026-11-26T00:00", True),
])
def test_cron_schedules(schedule: str, moment: str, fires: bool):
    assert parse_cron(schedule).matches(datetime.fromisoformat(moment)) is fires


@pytest.mark.parametrize(("schedule", "message"), [
    ("0 18 * *", "must have five fields"),
    ("60 * * * *", "minute: '60' is outside 0-59"),
    ("0 0 * * fry", "day of the week: 'fry' is not a number"),
    ("*/0 * * * *", "step '0' must be a whole number above 0"),
    ("0 5-1 * * *", "hour: '5-1' is outside 0-23"),
])
def test_a_bad_schedule_says_what_is_wrong(schedule: str, message: str):
    with pytest.raises(ValueError, match=message):
        parse_cron(schedule)


@pytest.mark.parametrize(("text", "expected"), [
    ("90m", timedelta(minutes=90)), ("2h", timedelta(hours=2)),
    ("1d12h", timedelta(days=1, hours=12)), ("2d15h30m", timedelta(days=2, hours=15, minutes=30)),
])
def test_durations(text: str, expected: timedelta):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "0m", "32d", "2 hours", "1.5h", "-1h"])
def test_bad_durations(text: str):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_bad_time_zone_is_refused():
    with pytest.raises(ValueError, match="not a time zone name"):
        parse_zone("Mars/Olympus")


ALWAYS_DENIED = """windows:
  - name: freeze
    kind: deny
    schedule: "* * * * *"
    duration: 1h
    timezone: UTC
"""


@pytest.fixture
def frozen_repo(repo: GitRepo) -> GitRepo:
    repo.write("kestra-promote.yml", "name: analytics\n" + ALWAYS_DENIED)
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    repo.commit()
    return repo


@pytest.mark.fake_only
def test_a_denying_window_plans_reports_and_writes_nothing(frozen_repo: GitRepo, target: Target):
    fake = target.fake
    assert fake is not None
    result = run_cli("apply", str(frozen_repo.path), env=target.env)
    assert result.code == 1
    assert "+ create    company.team/a" in result.out  # the plan is shown
    assert "the plan is denied by window 'freeze' until " in result.err
    assert "(UTC); nothing was written" in result.err
    assert fake.writes(lease=True) == []
    assert run_cli("plan", str(frozen_repo.path), env=target.env).code == 0  # plans are not denied


def test_an_explicit_override_promotes_and_is_recorded(frozen_repo: GitRepo, target: Target):
    result = run_cli("apply", str(frozen_repo.path), "--override-windows", env=target.env)
    assert result.code == 0, result.err
    assert "Warning: denied by window 'freeze' until" in result.err
    history = run_cli("history", str(frozen_repo.path), env=target.env)
    assert "overrode the sync windows: denied by window 'freeze' until" in history.out
    as_json = run_cli("history", str(frozen_repo.path), "--format", "json", env=target.env)
    assert '"window_override": "denied by window' in as_json.out


def test_a_saved_plan_is_held_to_the_windows_it_was_planned_under(repo: GitRepo, target: Target,
                                                                  tmp_path):
    repo.write("kestra-promote.yml", "name: analytics\n" + ALWAYS_DENIED)
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    repo.commit()
    saved = tmp_path / "plan.json"
    assert run_cli("plan", str(repo.path), "--out", str(saved), env=target.env).code == 0
    denied = run_cli("apply", str(saved), env=target.env)
    assert denied.code == 1 and "denied by window 'freeze'" in denied.err
    assert run_cli("apply", str(saved), "--override-windows", env=target.env).code == 0


def test_windows_in_the_settings_are_checked_where_they_are_written(repo: GitRepo):
    repo.write("kestra-promote.yml", "windows:\n  - {kind: deny, schedule: '0 25 * * *', "
                                     "duration: 1h, timezone: Europe/Paris}\n"
                                     "  - {kind: pause, schedule: '@daily', duration: 2h, "
                                     "timezone: Nowhere/Else}\n")
    repo.commit()
    result = run_cli("validate", str(repo.path), "--offline")
    assert result.code == 1
    assert "kestra-promote.yml:2:" in result.err and "window 1: schedule:" in result.err
    assert "hour: '25' is outside 0-23" in result.err
    assert "window 2: kind: 'pause' must be allow or deny" in result.err
    assert "window 2: timezone: 'Nowhere/Else' is not a time zone name" in result.err


@pytest.mark.fake_only
def test_a_window_that_opens_while_the_run_waits_for_the_lease_still_denies(
        repo: GitRepo, target: Target, monkeypatch: pytest.MonkeyPatch):
    from kestra_promote.cli import apply as cli_apply
    from kestra_promote.errors import WindowDenied
    from kestra_promote.models import Problem

    asked: list[int] = []

    def windows_then_denied(plan, now, *, override=False):  # allowed, then a freeze began
        asked.append(1)
        if len(asked) > 1:
            raise WindowDenied("the plan is denied by window 'freeze' until later; nothing was "
                               "written", [Problem("denied by window 'freeze' until later")])
        return ()

    monkeypatch.setattr(cli_apply, "check_windows", windows_then_denied)
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    repo.commit()
    result = run_cli("apply", str(repo.path), env=target.env)
    assert result.code == 1 and "denied by window 'freeze'" in result.err
    assert len(asked) == 2  # before waiting for the lease, and once it is held
    assert target.fake is not None and target.fake.current() == {}
    assert "kestra-promote-lock" not in target.fake.kv.get(("main", "system"), {})


def test_a_time_daylight_saving_repeats_is_the_next_opening_when_it_comes_again():
    # 02:15 comes twice in Paris on 2026-10-25: at 00:15 and at 01:15 UTC
    nightly = _window("allow", "15 2 * * *", "10m")
    verdict = decide([nightly], _at("2026-10-25T00:30+00:00"))  # between the two
    assert not verdict.allowed and verdict.until is not None
    assert verdict.until.astimezone(timezone.utc) == _at("2026-10-25T01:15+00:00")


@pytest.mark.parametrize(("schedule", "message"), [
    ("*/ * * * *", "step '' must be a whole number above 0"),
    ("٣ * * * *", "is not a number"),  # Arabic-Indic digits are not cron's
])
def test_odd_schedules_are_refused(schedule: str, message: str):
    with pytest.raises(ValueError, match=message):
        parse_cron(schedule)


@pytest.mark.parametrize("zone", ["localtime", "/etc/localtime"])
def test_the_machines_own_zone_is_not_a_zone(zone: str):
    with pytest.raises(ValueError, match="not a time zone name"):
        parse_zone(zone)


def test_an_enormous_duration_is_refused_cleanly():
    with pytest.raises(ValueError, match="at most 31 days"):
        parse_duration("99999999999d")

