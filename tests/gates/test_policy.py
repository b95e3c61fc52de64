"""Production's policy: parsed like the settings, merged so that a commit only tightens it."""

from __future__ import annotations

import pytest
from kestra_promote.config import parse_config
from kestra_promote.errors import SourceError
from kestra_promote.gates.policy import (Policy, SourceRule, check_pin, digest_of, effective,
                                         parse_policy, source_refusals)

POLICY = """
windows:
  - {name: freeze, kind: deny, schedule: "0 0 20 12 *", duration: 14d, timezone: UTC}
approval: required
protected_namespaces: [system, company.core]
max_deletions: 3
state_namespace: system
drift: fail
tags: {pattern: "v*", prereleases: false}
sources:
  - namespaces: [company.analytics]
    names: [analytics-flows]
    origins: ["https://git.example.com/data/*"]
allowed_overrides: [protected_namespaces]
"""


def repo(text: str = ""):
    return parse_config(text, "kestra-promote.yml")


def test_a_policy_reads_every_key_with_the_settings_schema():
    policy = parse_policy(POLICY, "prod-policy.yml")
    assert policy.safeguards["approval"] == "required"
    assert policy.safeguards["max_deletions"] == 3
    assert [w.name for w in policy.safeguards["windows"]] == ["freeze"]
    assert policy.tags is not None and policy.tags.pattern == "v*"
    assert policy.sources == (SourceRule(("company.analytics",), ("analytics-flows",),
                                         ("https://git.example.com/data/*",)),)
    assert policy.allowed_overrides == {"protected_namespaces"}
    assert policy.digest == digest_of(POLICY)
    assert policy.describe()["windows"][0]["name"] == "freeze"


@pytest.mark.parametrize("text, message", [
    ("max_deletion: 3", "unknown key 'max_deletion' in the policy (did you mean 'max_deletions'?)"),
    ("drift: sometimes", "'drift' must be one of"),
    ("allowed_overrides: [state_namespace]", "'state_namespace' is not a safeguard a commit may set"),
    ("sources: [{names: [a]}]", "'namespaces' is required"),
    ("tags: {version: '('}", "is not a regular expression"),
    ("windows: [{kind: deny, schedule: nope, duration: 1h, timezone: UTC}]", "window 1: schedule"),
])
def test_a_bad_policy_names_the_file_and_the_problem(text: str, message: str):
    with pytest.raises(SourceError) as caught:
        parse_policy(text, "prod-policy.yml")
    assert any(message in str(p) for p in caught.value.problems), caught.value.problems
    assert all(p.path == "prod-policy.yml" for p in caught.value.problems)


def test_without_a_policy_the_settings_are_the_commits():
    config = repo("max_deletions: 50\n")
    merged = effective(None, config)
    assert merged.config == config and merged.refusals == ()
    assert merged.origins["max_deletions"] == "repository"
    assert merged.origins["approval"] == "default"


def test_a_commit_that_deletes_windows_is_still_frozen():
    # the attack: the commit drops `windows:` (and everything else) from its settings
    merged = effective(parse_policy(POLICY), repo("name: analytics-flows\n"))
    assert [w.name for w in merged.config.windows] == ["freeze"]
    assert merged.config.approval == "required" and merged.config.drift == "fail"
    assert merged.origins["windows"] == "policy"
    assert merged.refusals == ()


def test_a_commit_may_tighten_every_safeguard():
    merged = effective(parse_policy(POLICY), repo(
        "max_deletions: 1\ndrift: fail\napproval: required\n"
        "windows: [{name: lunch, kind: deny, schedule: '0 12 * * *', duration: 1h, timezone: UTC}]\n"))
    assert merged.refusals == ()
    assert merged.config.max_deletions == 1
    assert [w.name for w in merged.config.windows] == ["freeze", "lunch"]
    assert merged.origins["windows"] == "policy and repository"


@pytest.mark.parametrize("text, key", [
    ("max_deletions: 99\n", "max_deletions"),
    ("approval: 'off'\n", "approval"),
    ("drift: overwrite\n", "drift"),
])
def test_a_commit_that_loosens_a_safeguard_is_refused_naming_the_key(text: str, key: str):
    merged = effective(parse_policy(POLICY), repo(text))
    assert len(merged.refusals) == 1 and f"{key!r}" in merged.refusals[0]
    assert "kestra-promote.yml" in merged.refusals[0] and "policy" in merged.refusals[0]
    assert getattr(merged.config, key) == parse_policy(POLICY).safeguards[key]  # never loosened


def test_allow_windows_widen_a_policy_that_has_its_own():
    policy = parse_policy("windows: [{name: office, kind: allow, schedule: '0 9 * * 1-5', "
                          "duration: 8h, timezone: UTC}]")
    wider = effective(policy, repo("windows: [{name: always, kind: allow, schedule: '* * * * *', "
                                   "duration: 1m, timezone: UTC}]"))
    assert wider.refusals and "'windows'" in wider.refusals[0] and "'always'" in wider.refusals[0]
    # where the policy has only deny windows, an allow window of the commit restricts
    only_deny = effective(parse_policy(POLICY), repo(
        "windows: [{name: office, kind: allow, schedule: '0 9 * * 1-5', duration: 8h, "
        "timezone: UTC}]"))
    assert only_deny.refusals == ()
    assert {w.kind for w in only_deny.config.windows} == {"allow", "deny"}


def test_the_state_namespace_always_comes_from_the_policy():
    merged = effective(parse_policy(POLICY), repo("state_namespace: teamb\n"))
    assert merged.config.state_namespace == "system"
    assert merged.refusals == ()
    assert "'teamb' is ignored" in merged.warnings[0].message


def test_allowed_overrides_let_the_commit_set_a_key_freely():
    merged = effective(parse_policy(POLICY), repo("protected_namespaces: [system]\n"))
    assert merged.config.protected_namespaces == ("system",)
    assert merged.origins["protected_namespaces"] == "repository"


def test_allow_deletions_beyond_the_policy_is_refused():
    config = repo().with_overrides(allow_deletions=50)
    assert "--allow-deletions 50" in effective(parse_policy(POLICY), config).refusals[0]
    assert effective(parse_policy(POLICY), repo().with_overrides(allow_deletions=2)).refusals == ()


def test_sources_decide_who_writes_where():
    policy = parse_policy(POLICY)
    ok = "https://git.example.com/data/flows.git"
    assert source_refusals(policy, "analytics-flows", ok, ["company.analytics.x"]) == ()
    assert "source 'other'" in source_refusals(policy, "other", ok, ["company.analytics"])[0]
    assert source_refusals(policy, "analytics-flows", "https://evil.example/x", ["company.analytics"])
    assert "no sources rule covers it" in source_refusals(policy, "analytics-flows", ok,
                                                          ["shared"])[0]
    assert source_refusals(parse_policy("approval: required"), "x", None, ["anything"]) == ()
    assert source_refusals(None, "x", None, ["anything"]) == ()


def test_the_pin_detects_a_policy_changed_deleted_or_planted_outside_policy_set():
    pin = digest_of(POLICY)
    assert check_pin(POLICY, pin) is None
    assert check_pin(POLICY, None) is None  # no pin: nothing to compare
    assert "changed outside" in check_pin(POLICY + "\n# edited\n", pin)
    assert "none is stored" in check_pin(None, pin)
    assert "says there is none" in check_pin(POLICY, "none")
    assert check_pin(None, "none") is None


def test_an_empty_policy_is_no_rule_at_all():
    policy = parse_policy("")
    assert policy == Policy("")
    assert effective(policy, repo("max_deletions: 99\n")).refusals == ()


def test_a_flag_counts_like_the_settings_file():
    policy = parse_policy("drift: keep\n")
    stricter = effective(policy, repo().with_overrides(drift="fail"))
    assert stricter.refusals == () and stricter.config.drift == "fail"
    assert stricter.origins["drift"] == "policy and repository"
    looser = effective(policy, repo().with_overrides(drift="overwrite"))
    assert "'drift'" in looser.refusals[0] and "a flag of this run" in looser.refusals[0]
    assert looser.config.drift == "keep"
