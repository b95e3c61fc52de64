"""The CLI end to end over real HTTP, against the fake server (or a real Kestra)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli


def _two_flows(repo: GitRepo, root: str) -> str:
    repo.write("flows/etl.yml", flow_yaml(f"{root}.team", "etl"))
    repo.write("flows/sub/load.yaml", flow_yaml(f"{root}.team.sub", "load", extra="# a comment\n"))
    return repo.commit("two flows")


def test_plan_apply_then_apply_again_is_a_no_op(repo: GitRepo, target: Target, root_ns: str):
    sha = _two_flows(repo, root_ns)

    plan = run_cli("plan", str(repo.path), env=target.env)
    assert plan.code == 0, plan.err
    assert f"Git commit {sha[:12]}: 2 flow(s)." in plan.out
    assert f"+ create    {root_ns}.team/etl" in plan.out
    assert plan.out.rstrip().endswith("Plan: 2 to create, 0 to update, 0 to delete.")

    first = run_cli("apply", str(repo.path), env=target.env)
    assert first.code == 0, first.err
    assert f"Apply complete: 2 created, 0 updated, 0 deleted. The target matches Git at {sha[:12]}." \
        in first.out
    live = target.sources(root_ns)
    assert live[(f"{root_ns}.team", "etl")] == (repo.path / "flows/etl.yml").read_text()
    assert live[(f"{root_ns}.team.sub", "load")] == (repo.path / "flows/sub/load.yaml").read_text()

    again = run_cli("apply", str(repo.path), env=target.env)
    assert again.code == 0, again.err
    assert again.out.rstrip().endswith(f"No changes. The target matches Git at {sha[:12]}.")


@pytest.mark.fake_only
def test_second_apply_sends_no_write_and_no_validation(repo: GitRepo, target: Target, root_ns: str):
    _two_flows(repo, root_ns)
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    fake = target.fake
    assert fake is not None
    before = len(fake.requests)
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    second = fake.requests[before:]
    assert [(r.method, r.path) for r in second] == [
        ("GET", "/api/v1/main/namespaces/system/kv/kestra_promote_policy"),  # the policy
        ("GET", "/api/v1/main/kv"),  # the promotion sources' inventories
        ("GET", "/api/v1/main/namespaces/system/kv/kestra-promote.default"),
        ("GET", "/api/v1/main/flows/export/by-query"),
    ]
    assert second[1].query["filters[namespace][EQUALS]"] == ["system"]
    assert second[3].query == {"filters[namespace][PREFIX]": [root_ns]}
    assert fake.revision_count(f"{root_ns}.team", "etl") == 1


@pytest.mark.fake_only
def test_changing_one_file_updates_exactly_that_flow(repo: GitRepo, target: Target, root_ns: str):
    _two_flows(repo, root_ns)
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    repo.write("flows/etl.yml", flow_yaml(f"{root_ns}.team", "etl", "changed"))
    repo.commit("change etl")
    fake = target.fake
    assert fake is not None
    before = len(fake.requests)

    plan = run_cli("plan", str(repo.path), "--detailed-exitcode", env=target.env)
    assert plan.code == 2
    assert "-    message: hello\n" in plan.out.replace("      -", "-")
    assert "+    message: changed" in plan.out.replace("      +", "+")
    result = run_cli("apply", str(repo.path), env=target.env)
    assert result.code == 0, result.err

    writes = [r for r in fake.requests[before:] if r.is_write]
    assert [(w.method, w.path) for w in writes] == [
        ("PUT", "/api/v1/main/namespaces/system/kv/kestra-promote-lock"),  # one run at a time
        ("PUT", f"/api/v1/main/flows/{root_ns}.team/etl"),
        ("PUT", "/api/v1/main/namespaces/system/kv/kestra-promote.default"),  # the inventory
        ("DELETE", "/api/v1/main/namespaces/system/kv/kestra-promote-lock"),
    ]
    assert fake.revision_count(f"{root_ns}.team", "etl") == 2
    assert fake.revision_count(f"{root_ns}.team.sub", "load") == 1


def test_detailed_exitcode_is_zero_without_changes(repo: GitRepo, target: Target, root_ns: str):
    _two_flows(repo, root_ns)
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    assert run_cli("plan", str(repo.path), "--detailed-exitcode", env=target.env).code == 0
    assert run_cli("plan", str(repo.path), env=target.env).code == 0


@pytest.mark.fake_only
def test_one_invalid_flow_blocks_every_write(repo: GitRepo, target: Target, root_ns: str):
    repo.write("a.yml", flow_yaml(f"{root_ns}.a", "good"))
    repo.write("b.yml", flow_yaml(f"{root_ns}.b", "also-good"))
    repo.write("c.yml", flow_yaml(f"{root_ns}.c", "bad").replace(
        "    message: hello\n", "    message: hello\n    colour: red\n"))
    repo.commit()

    result = run_cli("apply", str(repo.path), env=target.env)

    assert result.code == 1
    assert f'c.yml: {root_ns}.c/bad: tasks[0].colour: Unrecognized field "colour"' in result.err
    assert "Error: the target rejected 1 of 3 flow(s); nothing was written" in result.err
    assert target.fake is not None and target.fake.writes() == []
    assert target.sources(root_ns) == {}

    # plan shows the plan, then what the target rejects (exit 1)
    planned = run_cli("plan", str(repo.path), env=target.env)
    assert planned.code == 1
    assert f"+ create    {root_ns}.c/bad" in planned.out
    assert "Plan: 3 to create, 0 to update, 0 to delete." in planned.out
    assert 'tasks[0].colour: Unrecognized field "colour"' in planned.err

    # in JSON, one document holds both: a script reads the plan and the rejections at once
    as_json = run_cli("plan", str(repo.path), "--format", "json", env=target.env)
    assert as_json.code == 1
    data = json.loads(as_json.out)
    assert data["summary"]["create"] == 3
    assert data["error"] == "the target rejected 1 of 3 flow(s); nothing was written"
    assert [(p["path"], p["id"]) for p in data["problems"]] == [("c.yml", "bad")]


def test_local_problems_are_all_listed_and_nothing_is_written(repo: GitRepo, target: Target,
                                                              root_ns: str):
    repo.write("ok.yml", flow_yaml(f"{root_ns}.ok", "fine"))
    repo.write("broken.yml", "id: x\nnamespace: a\ntasks: [\n")
    repo.write("upper.yml", flow_yaml("Company.Team", "flow"))
    repo.write("notasks.yml", f"id: empty\nnamespace: {root_ns}\n")
    repo.commit()

    result = run_cli("apply", str(repo.path), env=target.env)

    assert result.code == 1
    assert "broken.yml:4:1: YAML syntax error" in result.err
    assert "upper.yml:2:12: Company.Team/flow: namespace 'Company.Team' is invalid" in result.err
    assert f"notasks.yml: {root_ns}/empty: missing required key 'tasks'" in result.err
    assert "Error: 3 problem(s) in 3 file(s)" in result.err
    if target.fake is not None:  # the inventories only (files they know are not parsed)
        assert [r.method for r in target.fake.requests] == ["GET"] * len(target.fake.requests)
        assert len(target.fake.requests) <= 2
    assert target.sources(root_ns) == {}

    # a target that cannot be reached does not hide the files' own problems
    down = run_cli("plan", str(repo.path), env={**target.env, "KESTRA_URL": "http://127.0.0.1:9"})
    assert down.code == 1 and "Error: 3 problem(s) in 3 file(s)" in down.err


def test_json_output_has_the_documented_shape(repo: GitRepo, target: Target, root_ns: str):
    sha = _two_flows(repo, root_ns)
    result = run_cli("plan", str(repo.path), "--format", "json", env=target.env)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["format_version"] == "1"
    assert data["commit"] == sha
    assert data["summary"] == {"create": 2, "update": 0, "delete": 0, "unchanged": 0,
                               "drifted": 0, "orphaned": 0, "unmanaged": 0, "released": 0}
    assert [(c["kind"], c["namespace"], c["id"], c["action"]) for c in data["changes"]] == [
        ("flow", f"{root_ns}.team", "etl", "create"),
        ("flow", f"{root_ns}.team.sub", "load", "create"),
    ]

    applied = json.loads(run_cli("apply", str(repo.path), "--format", "json", env=target.env).out)
    assert applied["result"]["ok"] is True
    assert [o["status"] for o in applied["result"]["outcomes"]] == ["applied", "applied"]


def test_json_errors_are_json_too(repo: GitRepo, target: Target):
    repo.write("bad.yml", "id: a\nnamespace: b\n")
    repo.commit()
    result = run_cli("plan", str(repo.path), "--format", "json", env=target.env)
    assert result.code == 1
    data = json.loads(result.out)
    assert data["error"].startswith("1 problem(s) in 1 file(s)")
    assert data["problems"] == [{"path": "bad.yml", "line": None, "column": None, "namespace": "b",
                                 "id": "a", "message": "missing required key 'tasks'"}]


def test_markdown_plan_has_a_table_and_collapsible_diffs(repo: GitRepo, target: Target,
                                                         root_ns: str):
    _two_flows(repo, root_ns)
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    repo.write("flows/etl.yml", flow_yaml(f"{root_ns}.team", "etl", "changed"))
    repo.commit()
    result = run_cli("plan", str(repo.path), "--format", "markdown", env=target.env)
    assert result.code == 0
    assert ("| create | update | delete | unchanged | drifted | orphaned | unmanaged | released |\n"
            "|---:|---:|---:|---:|---:|---:|---:|---:|\n| 0 | 1 | 0 | 1 | 0 | 0 | 0 | 0 |") in result.out
    assert f"| ~ | `{root_ns}.team/etl` | update | flows/etl.yml |  |" in result.out
    assert f"<details><summary>diff of <code>{root_ns}.team/etl</code></summary>" in result.out
    assert "```diff\n" in result.out
    assert result.out.rstrip().endswith("**Plan: 0 to create, 1 to update, 0 to delete.**")


def test_validate_without_url_checks_locally(repo: GitRepo):
    repo.write("a.yml", flow_yaml("company", "a"))
    sha = repo.commit()
    result = run_cli("validate", str(repo.path))
    assert result.code == 0
    assert result.out == f"Valid: 1 flow(s) at {sha[:12]}, checked locally (no target given).\n"


@pytest.mark.fake_only
def test_validate_offline_never_contacts_the_target(repo: GitRepo, target: Target):
    repo.write("a.yml", flow_yaml("company", "a"))
    sha = repo.commit()
    assert target.fake is not None
    result = run_cli("validate", str(repo.path), "--offline", env=target.env)  # KESTRA_URL set
    assert result.code == 0
    assert result.out == f"Valid: 1 flow(s) at {sha[:12]}, checked locally (--offline).\n"
    assert target.fake.requests == []


@pytest.mark.fake_only
def test_validate_with_url_asks_the_target(repo: GitRepo, target: Target):
    repo.write("a.yml", flow_yaml("company", "a"))
    repo.write("b.yml", flow_yaml("company", "b").replace(
        "io.kestra.plugin.core.log.Log", "io.kestra.plugin.core.log.Missing"))
    repo.commit()
    result = run_cli("validate", str(repo.path), env=target.env)
    assert result.code == 1
    assert "b.yml: company/b: tasks[0].type: Invalid type: io.kestra.plugin.core.log.Missing" \
        in result.err
    assert target.fake is not None and target.fake.writes() == []


def test_plan_without_a_target_says_how_to_give_one(repo: GitRepo):
    repo.write("a.yml", flow_yaml("company", "a"))
    result = run_cli("plan", str(repo.path))
    assert result.code == 1
    assert result.err == "Error: no target: pass --url or set KESTRA_URL\n"


def test_bad_usage_exits_1_not_2(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exc:
        run_cli("plan", "--format", "yaml")
    assert exc.value.code == 1  # 2 would read as "changes pending" to plan --detailed-exitcode
    assert "invalid choice: 'yaml'" in capsys.readouterr().err


@pytest.mark.fake_only
def test_flags_override_environment_variables(repo: GitRepo, target: Target, root_ns: str):
    repo.write("a.yml", flow_yaml(root_ns, "a"))
    env = {**target.env, "KESTRA_PASSWORD": "wrong-password", "KESTRA_URL": "http://127.0.0.1:9"}
    result = run_cli("plan", str(repo.path), "--url", target.url, "--password", "Admin1234!",
                     env=env)
    assert result.code == 0, result.err


@pytest.mark.fake_only
def test_wrong_tenant_on_open_source_is_a_clear_error(repo: GitRepo, target: Target):
    repo.write("a.yml", flow_yaml("company", "a"))
    result = run_cli("plan", str(repo.path), "--tenant", "acme", env=target.env)
    assert result.code == 1
    assert "GET /api/v1/acme/namespaces/system/kv/kestra_promote_policy failed with HTTP 400" \
        in result.err
    assert "Tenant must be 'main' for OSS version" in result.err


@pytest.mark.fake_only
@pytest.mark.parametrize("how", ["flags", "env"])
def test_credentials_never_appear_in_output_or_logs(repo: GitRepo, target: Target, fake, how,
                                                    caplog: pytest.LogCaptureFixture):
    secret = "S3cret-Passw0rd-xyz"
    token = "tok-9f8e7d6c5b4a"
    fake.password = secret
    repo.write("a.yml", flow_yaml("company", "a"))
    repo.write("b.yml", flow_yaml("company", "b", extra="colour: red\n"))  # rejected by the target
    repo.commit()
    runs = []
    for extra_env, args in (
        ({}, ["--username", "admin@kestra.io", "--password", secret]),
        ({}, ["--username", "admin@kestra.io", "--password", "wrong-" + secret]),  # 401
        ({}, ["--token", token]),
    ):
        if how == "env":
            names = {"--username": "KESTRA_USERNAME", "--password": "KESTRA_PASSWORD",
                     "--token": "KESTRA_API_TOKEN"}
            extra_env = {names[args[i]]: args[i + 1] for i in range(0, len(args), 2)}
            args = []
        env = {"KESTRA_URL": target.url, **extra_env}
        for command in ("validate", "plan", "apply"):
            for fmt in ("text", "json", "markdown"):
                runs.append(run_cli(command, str(repo.path), "-v", "--format", fmt, *args, env=env))
    assert any(r.code == 1 and "HTTP 401" in r.err for r in runs)
    assert any("Unrecognized field" in r.err + r.out for r in runs)
    text = "".join(r.out + r.err for r in runs) + caplog.text
    assert secret not in text and token not in text


@pytest.mark.fake_only
def test_the_installed_command_logs_requests_but_no_secret(repo: GitRepo, target: Target, fake):
    secret = "Pr0cess-Level-Secret"
    fake.password = secret
    repo.write("a.yml", flow_yaml("company", "a"))
    repo.commit()
    env = {**os.environ, "KESTRA_URL": target.url, "KESTRA_USERNAME": "admin@kestra.io",
           "KESTRA_PASSWORD": secret}
    done = subprocess.run([sys.executable, "-m", "kestra_promote", "apply", str(repo.path), "-v"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "DEBUG kestra_promote.target.transport: POST /api/v1/main/flows -> 200" in done.stderr
    assert "Apply complete: 1 created" in done.stdout
    assert secret not in done.stdout + done.stderr
    assert base64.b64encode(f"admin@kestra.io:{secret}".encode()).decode() not in done.stderr


@pytest.mark.fake_only
def test_a_failed_lookup_is_an_error_never_unchanged(repo: GitRepo, target: Target, fake):
    repo.write("a.yml", flow_yaml("company", "a"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    fake.inject("GET", r"/flows/export/by-query", status=500)
    result = run_cli("plan", str(repo.path), env=target.env)
    assert result.code == 1 and result.out == ""
    assert "GET /api/v1/main/flows/export/by-query failed with HTTP 500" in result.err


def test_text_on_a_terminal_is_escaped_too_but_report_colours_are_kept():
    import io

    from kestra_promote.cli.output import Output

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    output = Output(out, io.StringIO(), "text")
    assert output.color
    output.write("flows/\x1b]0;title\x07all good.yml\n")  # validate's warnings, unlock's holder
    output.write_rendered("\033[32m+\033[0m create\n")  # a renderer's own colours
    assert out.getvalue() == "flows/\\x1b]0;title\\x07all good.yml\n\033[32m+\033[0m create\n"


@pytest.mark.fake_only
def test_json_warnings_carry_the_file_and_line_as_fields(repo: GitRepo, target: Target):
    repo.write("a.yml", flow_yaml("dev.company", "a", extra="variables:\n  x: '{{ 1 }}'\n").replace(
        "tasks:\n", "tasks:\n  - id: call\n    type: io.kestra.plugin.core.flow.Subflow\n"
        "    namespace: \"company.{{ inputs.ns }}\"\n    flowId: b\n"))
    repo.commit()
    result = run_cli("plan", str(repo.path), "--rename", "dev=", "--format", "json", env=target.env)
    (warning,) = [w for w in json.loads(result.out)["warnings"] if "expression" in w["message"]]
    assert (warning["path"], warning["line"]) == ("a.yml", 8)  # the Subflow's namespace
    assert not warning["message"].startswith("line ")


def test_a_saved_plan_keeps_where_each_warning_is(repo: GitRepo, target: Target, tmp_path):
    repo.write("a.yml", flow_yaml("dev.company", "a").replace(
        "tasks:\n", "tasks:\n  - id: call\n    type: io.kestra.plugin.core.flow.Subflow\n"
        "    namespace: \"company.{{ inputs.ns }}\"\n    flowId: b\n"))
    repo.commit()
    saved = tmp_path / "plan.json"
    made = run_cli("plan", str(repo.path), "--rename", "dev=", "--out", str(saved), env=target.env)
    assert made.code == 0, made.err
    applied = run_cli("apply", str(saved), "--format", "json", env=target.env)
    assert applied.code == 0, applied.err
    (warning,) = [w for w in json.loads(applied.out)["warnings"] if "expression" in w["message"]]
    assert (warning["path"], warning["line"], warning["namespace"], warning["id"]) == (
        "a.yml", 6, "company", "a")  # the Subflow's namespace
