"""The promotion flows of flows/: static checks against Kestra's rules, and emulated runs of
every entry point against the fake server, with real Git repositories."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import FAKE_PASSWORD, FAKE_USER, FIXTURES, ROOT, GitRepo, flow_yaml, run_cli
from fake_kestra import FakeKestra, rules, serve
from kestra_flows.emulator import Emulator
from kestra_promote.gates import seal
from kestra_promote.gates.webhook import detect_provider, normalize_headers
from kestra_promote.kestra_task.bootstrap import SECRETS, SETTINGS

FLOWS = sorted((ROOT / "flows").rglob("*.yml"))
EXAMPLES = sorted((ROOT / "examples/flows").rglob("*.yml"))
# The Kestra versions each shipped flow is for: the promotion flows parse on both; commit-to-git
# loops over namespaces, with Loop on 2.0 and ForEach on 1.3 (no loop task exists in both); the
# examples are a 2.0 repository, and report.yml's Flow trigger uses 2.0's dependsOn.
VERSIONS = {"prod": ("1.3.19", "2.0.3"), "dev": ("2.0.3",), "dev-1.3": ("1.3.19",)}
EXAMPLES_2_0_ONLY = {"report"}


def _versions(path: Path) -> tuple[str, ...]:
    if path.is_relative_to(ROOT / "examples"):
        return ("2.0.3",) if path.stem in EXAMPLES_2_0_ONLY else ("1.3.19", "2.0.3")
    return VERSIONS[path.parent.name]


SHIPPED = [(path, version) for path in FLOWS + EXAMPLES for version in _versions(path)]
# Every plugin type the flows use, and where it comes from.
PLUGIN_TYPES = {
    "io.kestra.plugin.core.flow.If": "kestra-io/kestra (core)",
    "io.kestra.plugin.core.flow.WorkingDirectory": "kestra-io/kestra (core)",
    "io.kestra.plugin.core.flow.Loop": "kestra-io/kestra (core, 2.0)",
    "io.kestra.plugin.core.flow.ForEach": "kestra-io/kestra (core, 1.3)",
    "io.kestra.plugin.core.log.Log": "kestra-io/kestra (core)",
    "io.kestra.plugin.core.flow.Pause": "kestra-io/kestra (core)",
    "io.kestra.plugin.core.debug.Return": "kestra-io/kestra (core)",
    "io.kestra.plugin.core.execution.Fail": "kestra-io/kestra (core)",
    "io.kestra.plugin.core.runner.Process": "kestra-io/kestra (core task runner)",
    "io.kestra.plugin.core.trigger.Schedule": "kestra-io/kestra (core)",
    "io.kestra.plugin.core.trigger.Webhook": "kestra-io/kestra (core)",
    "io.kestra.plugin.scripts.python.Commands": "kestra-io/plugin-scripts (python)",
    "io.kestra.plugin.git.Clone": "kestra-io/plugin-git",
    "io.kestra.plugin.git.PushFlows": "kestra-io/plugin-git",
    "io.kestra.plugin.git.PushNamespaceFiles": "kestra-io/plugin-git",
}
INPUT_KEYS = {"id", "type", "description", "displayName", "required", "defaults", "values",
              "validator"}
TRIGGER_KEYS = {
    "io.kestra.plugin.core.trigger.Schedule": {"id", "type", "cron", "timezone", "inputs",
                                               "recoverMissedSchedules", "disabled", "description"},
    "io.kestra.plugin.core.trigger.Webhook": {"id", "type", "key", "inputs", "wait",
                                              "returnOutputs", "disabled", "description"},
}
DOCUMENTED_SECRETS = {name for role in SECRETS.values() for name, _ in role}
DOCUMENTED_SETTINGS = {key for keys in SETTINGS.values() for key in keys}


def _tasks(flow: dict) -> list[dict]:
    found, stack = [], [*flow.get("tasks", []), *flow.get("errors", []),
                        *flow.get("finally", [])]
    while stack:
        task = stack.pop()
        found.append(task)
        for key in ("tasks", "then", "else"):
            stack.extend(task.get(key) or [])
    return found


def _expressions(node) -> list[str]:
    if isinstance(node, dict):
        return [e for v in node.values() for e in _expressions(v)]
    if isinstance(node, list):
        return [e for v in node for e in _expressions(v)]
    return re.findall(r"\{\{(.*?)\}\}", node, flags=re.S) if isinstance(node, str) else []


@pytest.mark.parametrize(("path", "version"), SHIPPED,
                         ids=[f"{p.parent.name}/{p.stem}-{v}" for p, v in SHIPPED])
def test_shipped_flows_pass_kestra_model_rules(path: Path, version: str):
    flow, errors = rules.check(path.read_text(), version=version)
    assert errors == [] and flow is not None


def test_the_version_specific_flows_fail_on_the_other_version():
    for folder, version in (("dev", "1.3.19"), ("dev-1.3", "2.0.3")):
        _, errors = rules.check((ROOT / "flows" / folder / "commit-to-git.yml").read_text(),
                                version=version)
        assert errors, (folder, version)
    _, errors = rules.check((ROOT / "examples/flows/dev.company.team/report.yml").read_text(),
                            version="1.3.19")
    assert errors


@pytest.mark.parametrize("path", FLOWS + EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_pip_no_removed_syntax_and_no_dead_properties(path: Path):
    text = path.read_text()
    assert "pip install" not in text  # Kestra 2.0's image has no pip: `dependencies` instead
    assert "preconditions" not in text  # removed in 2.0: dependsOn
    assert "warningOnStdErr" not in text  # deprecated, does nothing on 1.3 and 2.0


@pytest.mark.parametrize("path", FLOWS + EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_schedule_gives_every_input_without_a_default(path: Path):
    # FlowValidator.findMissingInputsForScheduleTriggers (2.0): required: false does not exempt
    flow = yaml.safe_load(path.read_text())
    undefaulted = {i["id"] for i in flow.get("inputs") or [] if "defaults" not in i}
    for trigger in flow.get("triggers") or []:
        if trigger["type"].endswith("trigger.Schedule"):
            assert undefaulted <= set(trigger.get("inputs") or {}), trigger["id"]
    for spec in flow.get("inputs") or []:  # InputValidator: defaults only on required inputs
        assert not ("defaults" in spec and spec.get("required") is False), spec["id"]


def test_python_tasks_install_exactly_the_packages_dependencies():
    block = re.search(r"^dependencies = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(),
                      flags=re.M | re.S)
    assert block is not None
    wanted = re.findall(r'"([^"]+)"', block.group(1))
    assert wanted and all(w.split(">")[0].split("<")[0] in ("httpx", "pyyaml", "kestra")
                          for w in wanted)
    for path in FLOWS:
        for task in _tasks(yaml.safe_load(path.read_text())):
            if task["type"] == "io.kestra.plugin.scripts.python.Commands":
                assert task["dependencies"] == wanted, (path.name, task["id"])
                assert task["dependencyCacheEnabled"] is True
                assert "beforeCommands" not in task


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.stem)
def test_flows_follow_the_rules_of_both_versions(path: Path):
    text = path.read_text()
    flow = yaml.safe_load(text)
    assert flow["namespace"] == "system" and re.fullmatch(r"[a-z][a-z0-9-]*", flow["id"])
    assert flow["labels"] == {"kestra-promote.role": "promotion"}
    assert "pluginDefaults" not in flow and "taskDefaults" not in flow
    assert "json(" not in text
    ids = [t["id"] for t in _tasks(flow)]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_-]*", i) for i in ids)
    pauses = [i for t in _tasks(flow) for i in t.get("onResume") or []]
    for spec in [*(flow.get("inputs") or []), *pauses]:
        assert set(spec) <= INPUT_KEYS, spec
        assert spec["type"] in rules.INPUT_TYPES
        if spec["type"] == "SELECT":
            assert spec.get("defaults") in spec["values"]
    for trigger in flow.get("triggers") or []:
        assert set(trigger) <= TRIGGER_KEYS[trigger["type"]], trigger  # 2.0 refuses unknown keys
    used = {t["type"] for t in _tasks(flow)} | {t["type"] for t in flow.get("triggers") or []}
    used |= {t["taskRunner"]["type"] for t in _tasks(flow) if "taskRunner" in t}
    assert used <= set(PLUGIN_TYPES), used - set(PLUGIN_TYPES)


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.stem)
def test_every_expression_refers_to_something_defined(path: Path):
    flow = yaml.safe_load(path.read_text())
    inputs = {spec["id"] for spec in flow.get("inputs") or []}
    task_ids = {t["id"] for t in _tasks(flow)}
    for expression in _expressions(flow):
        for name in re.findall(r"\binputs\.(\w+)", expression):
            assert name in inputs, expression
        for name in re.findall(r"\boutputs\.(\w+)", expression):
            assert name in task_ids, expression
        for name in re.findall(r"secret\('([^']+)'\)", expression):
            assert name in DOCUMENTED_SECRETS, expression
        for name in re.findall(r"kv\('([^']+)'", expression):
            # production reads its settings from the sealed record only
            assert name == seal.RECORD_KEY if path.parent.name == "prod" else \
                name in DOCUMENTED_SETTINGS, expression
        for name in re.findall(r"\benvs\.(\w+)", expression):
            assert name == "kestra_promote_seal", expression
        for name in re.findall(r"(?<![.\w])vars\.(\w+)", expression):
            assert name in (flow.get("variables") or {}), expression
        # the check flow reads no request: only whether a Schedule started it
        assert "trigger." not in expression or path.stem == "promote" or set(
            re.findall(r"trigger\.(\w+)", expression)) <= {"date"}, expression


def test_credentials_come_only_from_secrets():
    for path in FLOWS:
        for task in _tasks(yaml.safe_load(path.read_text())):
            for key in ("username", "password"):
                if key in task:
                    assert re.fullmatch(r"\{\{ secret\('[A-Z_]+'\) \}\}", task[key]), task
            for key, value in (task.get("env") or {}).items():
                if any(word in key for word in ("PASSWORD", "TOKEN", "SECRET", "USERNAME")):
                    # a secret, possibly read only on the runs that need it
                    assert re.fullmatch(r"\{\{ ((inputs|outputs\.decide\.vars)\.\w+ == '\w+' \? )?"
                                        r"secret\('[A-Z_]+'\)( : '')? \}\}", value) or \
                        re.fullmatch(r"\{\{ \(trigger\.headers \?\? ''\) == '' \? '' : "
                                     r"secret\('[A-Z_]+'\) \}\}", value), key


def test_webhook_content_never_reaches_code():
    flow = yaml.safe_load((ROOT / "flows/prod/promote.yml").read_text())
    for task in _tasks(flow):
        for line in task.get("commands", []) + task.get("beforeCommands", []):
            assert "{{" not in line, line  # commands are static; data goes through env and files
    assert flow["concurrency"] == {"limit": 1, "behavior": "QUEUE"}


def test_the_docs_document_every_secret_and_setting():
    page = (ROOT / "docs" / "promotion-inside-kestra.md").read_text()
    for name in DOCUMENTED_SECRETS | DOCUMENTED_SETTINGS:
        assert f"`{name}`" in page, name


# -- emulated runs ----------------------------------------------------------------------------

SECRET_VALUES = {
    "KESTRA_PROMOTE_GIT_USERNAME": "git", "KESTRA_PROMOTE_GIT_TOKEN": "git-token",
    "KESTRA_PROMOTE_USERNAME": FAKE_USER, "KESTRA_PROMOTE_PASSWORD": FAKE_PASSWORD,
    "KESTRA_PROMOTE_WEBHOOK_KEY": "hook-key-0123456789", "KESTRA_PROMOTE_WEBHOOK_SECRET": "s3cret",
}


@pytest.fixture
def production(tmp_path: Path):
    """A fake production with the promotion bootstrapped, and the flows repository it follows."""
    repo = GitRepo(tmp_path / "flows-repo")
    repo.write("kestra-promote.yml", "name: demo\n")
    repo.write("flows/hello.yml", flow_yaml("company.team", "hello"))
    repo.write("flows/caller.yml", flow_yaml("company.team", "caller", "calls"))
    repo.commit("first flows")
    repo.git("branch", "master")
    fake = FakeKestra()
    with serve(fake) as url:
        boot = run_cli("bootstrap", "--url", url, "--username", FAKE_USER, "--password",
                       FAKE_PASSWORD, "--set", f"promote_repo_url={repo.path}",
                       "--set", "promote_branch=master", "--set", f"promote_target_url={url}")
        assert boot.code == 0, boot.err

        baseline[id(fake)] = len(fake.writes())
        assert f"Set ENV_KESTRA_PROMOTE_SEAL={_record(fake).seal}" in boot.out
        # the server's environment, as the admin sets it from bootstrap's output
        server[id(fake)] = {"kestra_promote_seal": _record(fake).seal}

        def kv(namespace: str, key: str):
            return fake.kv[("main", namespace)][key]["value"]

        emulator = Emulator(ROOT / "flows/prod/promote.yml", SECRET_VALUES, kv,
                            lambda ns: fake.files.get(("main", ns), {}), tmp_path / "runs",
                            envs=server[id(fake)])
        request = emulator.webhook
        automatic.add(id(fake))

        def webhook(key: str, headers: dict, body: bytes):
            """Production names its Git provider, as a webhook secret requires: the one the
            request comes from, unless the test set promote_webhook_provider itself."""
            if id(fake) in automatic:
                found = detect_provider(normalize_headers(headers), None)[0]
                current = _record(fake)
                named = {k: v for k, v in current.settings.items()
                         if k != "promote_webhook_provider"}
                if found not in ("unknown", "generic"):
                    named["promote_webhook_provider"] = found
                if named != current.settings:
                    _set_record(fake, dataclasses.replace(current, settings=named))
            return request(key, headers, body)

        emulator.webhook = webhook  # type: ignore[method-assign]
        yield fake, repo, emulator
        emulator.cleanup()


baseline: dict[int, int] = {}  # writes the bootstrap made, per fake server
server: dict[int, dict[str, str]] = {}  # the server's ENV_ variables (envs), per fake server
automatic: set[int] = set()  # fake servers whose provider setting follows each request


def _record(fake: FakeKestra) -> seal.Record:
    return seal.parse_record(fake.kv[("main", "system")][seal.RECORD_KEY]["value"], "test")


def _user_writes(fake: FakeKestra) -> list[str]:
    """Writes since the bootstrap, but the settings the test itself set (as production's admin)."""
    return [f"{r.method} {r.path}" for r in fake.writes()[baseline[id(fake)]:]
            if not r.path.endswith(f"/kv/{seal.RECORD_KEY}")]


def test_manual_run_defaults_to_a_plan_and_writes_nothing(production):
    fake, repo, emulator = production
    execution = emulator.execute()
    assert execution.state == "SUCCESS", execution.logs
    assert execution.outputs["decide"]["vars"]["decision"] == "sync"
    assert execution.outputs["promote"]["vars"]["action"] == "plan"
    assert execution.outputs["promote"]["vars"]["create"] == 2
    assert "# Promotion plan for" in execution.files["report.md"].read_text()
    assert json.loads(execution.files["report.json"].read_text())["summary"]["create"] == 2
    assert _user_writes(fake) == [] and fake.current().keys() >= {("system", "promote")}
    assert ("company.team", "hello") not in fake.current()


def test_manual_apply_promotes_and_reports(production):
    fake, repo, emulator = production
    execution = emulator.execute({"mode": "apply"})
    assert execution.state == "SUCCESS", execution.logs
    assert execution.flow_outputs == {"decision": "sync", "action": "applied",
                                      "commit": repo.git("rev-parse", "HEAD")}
    assert fake.current()[("company.team", "hello")] == flow_yaml("company.team", "hello")
    assert "Apply complete: 2 created" in execution.files["report.md"].read_text()
    assert {"name": "kestra_promote.changes", "type": "counter", "value": 2,
            "tags": {"action": "create"}} in execution.metrics
    assert "INFO" in {level for _, level, _ in execution.logs}
    again = emulator.execute({"mode": "apply"})
    assert again.outputs["promote"]["vars"]["action"] == "no-changes"


def test_the_schedule_applies(production):
    fake, repo, emulator = production
    execution = emulator.schedule()
    assert execution.state == "SUCCESS", execution.logs
    assert execution.inputs["mode"] == "apply"
    assert execution.outputs["decide"]["vars"]["trigger"] == "schedule"
    assert ("company.team", "caller") in fake.current()
    with target_history(fake) as runs:
        assert runs[-1]["trigger"] == "schedule"


class target_history:  # noqa: N801 - used as a context manager in a test
    def __init__(self, fake: FakeKestra) -> None:
        self.fake = fake

    def __enter__(self) -> list[dict]:
        return self.fake.kv[("main", "system")]["kestra-promote.demo"]["value"]["history"]

    def __exit__(self, *exc: object) -> None:
        pass


def _signed(headers: dict, name: str, prefix: str, body: bytes) -> dict:
    """Headers as a provider with the webhook secret configured sends them."""
    digest = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    return {**headers, name: [prefix + digest]}


GITHUB = {"X-GitHub-Event": ["push"], "Content-Type": ["application/json"]}


def test_a_push_to_the_branch_promotes_it(production):
    fake, repo, emulator = production
    body = (FIXTURES / "webhooks/github/push-7.json").read_bytes()  # a push to master
    headers = _signed(GITHUB, "X-Hub-Signature-256", "sha256=", body)
    execution = emulator.webhook("hook-key-0123456789", headers, body)
    assert execution is not None and execution.state == "SUCCESS", execution and execution.logs
    assert execution.outputs["decide"]["vars"]["decision"] == "sync"
    assert "URL key is the only protection" in execution.outputs["decide"]["vars"]["reason"]
    assert execution.outputs["promote"]["vars"]["action"] == "applied"
    assert ("company.team", "hello") in fake.current()


def test_a_push_to_another_branch_is_ignored_quickly(production):
    fake, repo, emulator = production
    body = (FIXTURES / "webhooks/gitea/push-2.json").read_bytes()  # a push to develop
    # as the stack's Gitea sends it: the secret as Authorization header, and a signature
    headers = _signed({"X-Gitea-Event": ["push"], "Authorization": ["Bearer s3cret"]},
                      "X-Gitea-Signature", "", body)
    execution = emulator.webhook("hook-key-0123456789", headers, body)
    assert execution is not None and execution.state == "SUCCESS"
    assert execution.outputs["decide"]["vars"]["decision"] == "ignore"
    assert "promote" not in execution.outputs and "clone" not in execution.states
    assert ("Nothing to promote: push to refs/heads/develop: this promotion follows branch "
            "'master'") in execution.messages()
    assert execution.flow_outputs["action"] == "none"
    assert _user_writes(fake) == []


def test_a_forged_token_is_rejected_and_writes_nothing(production):
    fake, repo, emulator = production
    body = (FIXTURES / "webhooks/gitlab/push-1.json").read_bytes()
    execution = emulator.webhook("hook-key-0123456789",
                                 {"X-Gitlab-Event": ["Push Hook"], "X-Gitlab-Token": ["guess"]}, body)
    assert execution is not None and execution.state == "FAILED"
    assert execution.states["decide"] == "FAILED"
    assert any(m.endswith("reject: X-Gitlab-Token does not match the configured secret")
               for m in execution.messages("ERROR")), execution.logs
    assert any(m.startswith("kestra-promote: execution") for m in execution.messages("ERROR"))
    assert _user_writes(fake) == []
    ok = emulator.webhook("hook-key-0123456789",
                          {"X-Gitlab-Event": ["Push Hook"], "X-Gitlab-Token": ["s3cret"]}, body)
    assert ok is not None and ok.state == "SUCCESS" and ok.outputs["decide"]["vars"]["verified"]


def test_a_wrong_webhook_key_finds_no_flow(production):
    fake, repo, emulator = production
    body = (FIXTURES / "webhooks/github/push-7.json").read_bytes()
    assert emulator.webhook("wrong-key", GITHUB, body) is None


def test_a_failed_promotion_fails_the_execution_and_logs_why(production):
    fake, repo, emulator = production
    repo.git("checkout", "-q", "master")
    repo.write("flows/bad.yml", flow_yaml("company.team", "bad") + "    colour: red\n")
    repo.commit("bad flow")
    execution = emulator.execute({"mode": "apply"})
    assert execution.state == "FAILED"
    assert execution.outputs["promote"]["vars"]["action"] == "failed"
    assert "Unrecognized field" in execution.files["report.md"].read_text()
    assert _user_writes(fake) == []


def test_the_check_flow_reports_status(production):
    fake, repo, emulator = production
    emulator.execute({"mode": "apply"})
    check = Emulator(ROOT / "flows/prod/promote-check.yml", SECRET_VALUES, emulator.kv,
                     emulator.namespace_files, emulator.workspace, envs=emulator.envs)
    with fake._lock:
        fake.seed_flow(flow_yaml("company.team", "stray"))
    execution = check.execute()
    assert execution.state == "SUCCESS", execution.logs
    assert execution.outputs["status"]["vars"]["out_of_sync"] == 0
    assert execution.outputs["status"]["vars"]["unmanaged"] == 1
    assert "| unmanaged | `company.team/stray` |  | on the target only; not managed by this source |" in execution.files["report.md"].read_text()


def test_a_tag_or_a_commit_given_by_hand_is_cloned_as_such(production):
    fake, repo, emulator = production
    repo.git("checkout", "-q", "master")
    first = repo.git("rev-parse", "HEAD")
    repo.git("tag", "-a", "v1", "-m", "release 1")  # annotated: Clone peels it
    repo.write("flows/later.yml", flow_yaml("company.team", "later"))
    second = repo.commit("a later flow")
    by_tag = emulator.execute({"mode": "apply", "ref": "v1"})
    assert by_tag.state == "SUCCESS", by_tag.logs
    assert (by_tag.states["clone_tag"], by_tag.states["clone_branch"]) == ("SUCCESS", "SKIPPED")
    assert by_tag.flow_outputs["commit"] == first
    assert ("company.team", "later") not in fake.current()
    by_commit = emulator.execute({"mode": "apply", "ref": second[:12]})
    assert by_commit.states["clone_commit"] == "SUCCESS", by_commit.logs
    assert by_commit.flow_outputs["commit"] == second
    assert ("company.team", "later") in fake.current()
    repo.git("branch", "release", first)
    by_branch = emulator.execute({"ref": "refs/heads/release"})
    assert by_branch.states["clone_branch"] == "SUCCESS", by_branch.logs
    assert by_branch.outputs["decide"]["vars"]["checkout"] == "release"
    with target_history(fake) as runs:
        assert [r["commit"] for r in runs[-2:]] == [first, second]


def test_a_ref_that_git_cannot_name_fails_before_anything_is_cloned(production):
    fake, repo, emulator = production
    execution = emulator.execute({"mode": "apply", "ref": "v1 ; rm -rf /"})
    assert execution.state == "FAILED" and execution.states["decide"] == "FAILED"
    assert "is not a valid Git ref name" in " ".join(execution.messages("ERROR"))
    assert _user_writes(fake) == []


def test_manual_and_scheduled_runs_need_no_webhook_secret(production):
    fake, repo, emulator = production
    emulator.secrets = {k: v for k, v in SECRET_VALUES.items()
                        if k != "KESTRA_PROMOTE_WEBHOOK_SECRET"}
    assert emulator.execute().state == "SUCCESS"
    assert emulator.schedule().state == "SUCCESS"


def test_a_successful_promotion_logs_no_error_and_warnings_as_warn(production):
    fake, repo, emulator = production
    assert emulator.execute({"mode": "apply"}).state == "SUCCESS"
    with fake._lock:  # someone edits production by hand: a drift warning on the next run
        fake._save("main", {"namespace": "company.team", "id": "hello"},
                   flow_yaml("company.team", "hello", "hotfix"))
    execution = emulator.execute({"mode": "apply"})
    assert execution.state == "SUCCESS", execution.logs
    assert execution.messages("ERROR") == []
    assert any("edited on the target since the last promotion" in m
               for m in execution.messages("WARN")), execution.logs
    # each record once, as a Kestra log line: never also a plain copy through the root logger
    assert not [m for m in execution.messages() if m.startswith(("WARNING ", "INFO Kestra"))]


def test_a_gitea_push_with_the_secret_as_authorization_header_is_verified(production):
    fake, repo, emulator = production
    body = (FIXTURES / "webhooks/gitea/push-1.json").read_bytes()  # a push to master
    good = emulator.webhook("hook-key-0123456789",
                            {"X-Gitea-Event": ["push"], "Authorization": ["Bearer s3cret"]}, body)
    assert good is not None and good.state == "SUCCESS", good and good.logs
    assert good.outputs["decide"]["vars"]["verified"] is True
    writes = len(_user_writes(fake))
    forged = emulator.webhook("hook-key-0123456789",
                              {"X-Gitea-Event": ["push"], "Authorization": ["Bearer guess"]}, body)
    assert forged is not None and forged.state == "FAILED"
    assert "reject: Authorization does not match the configured secret" in " ".join(
        forged.messages("ERROR"))
    assert len(_user_writes(fake)) == writes


def test_commit_to_git_commits_every_namespace_of_the_tree_where_promotion_reads_it(
        tmp_path: Path):
    repo = GitRepo(tmp_path / "flows-repo")
    repo.write("README.md", "flows\n")
    repo.commit("empty repository")
    dev = FakeKestra()
    dev.seed_flow(flow_yaml("dev.company", "orders"))
    dev.seed_flow(flow_yaml("dev.company.team", "etl"))
    dev.seed_flow(flow_yaml("dev.companyx", "not-a-child"))
    dev.files[("main", "dev.company.team")] = {"/scripts/etl.py": b"print('etl')\n"}
    dev.files[("main", "dev.company")] = {"/shared.txt": b"shared\n"}
    with serve(dev) as url:
        boot = run_cli("bootstrap", "--role", "dev", "--url", url, "--username", FAKE_USER,
                       "--password", FAKE_PASSWORD, "--set", f"commit_repo_url={repo.path}",
                       "--set", f"commit_kestra_url={url}")
        assert boot.code == 0, boot.err

        def flows(namespace: str) -> dict[str, str]:
            return {fid: src for (ns, fid), src in dev.current().items() if ns == namespace}

        emulator = Emulator(ROOT / "flows/dev/commit-to-git.yml", SECRET_VALUES,
                            lambda ns, key: dev.kv[("main", ns)][key]["value"],
                            lambda ns: dev.files.get(("main", ns), {}), tmp_path / "runs",
                            flows=flows)
        execution = emulator.execute({"namespace": "dev.company", "branch": "review"})
    assert execution.state == "SUCCESS", execution.logs
    assert execution.flow_outputs["namespaces"] == "dev.company, dev.company.team"
    repo.git("checkout", "-q", "kestra-dev/review")  # under the branch prefix
    assert sorted(p.relative_to(repo.path).as_posix() for p in repo.path.rglob("*")
                  if p.is_file() and ".git" not in p.parts) == [
        "README.md", "files/dev.company.team/scripts/etl.py", "files/dev.company/shared.txt",
        "flows/dev.company.team/etl.yml", "flows/dev.company/orders.yml"]
    # the layout is what the examples' settings promote: every flow, every namespace file
    repo.write("kestra-promote.yml", (ROOT / "examples/kestra-promote.yml").read_text())
    prod = FakeKestra()
    with serve(prod) as url:
        plan = run_cli("plan", str(repo.path), "--url", url, "--username", FAKE_USER,
                       "--password", FAKE_PASSWORD, "--format", "json")
    assert plan.code == 0, plan.err
    created = sorted((c["namespace"], c["id"] or c["file"]) for c in json.loads(plan.out)["changes"])
    assert created == [("company", "/shared.txt"), ("company", "orders"),
                       ("company.team", "/scripts/etl.py"), ("company.team", "etl")]


def _set(fake: FakeKestra, key: str, value: str, *, reseal: bool = True) -> None:
    """A setting in the promotion's sealed record, as `bootstrap --set` writes it (through the
    API), and the server's seal updated as its admin does (``reseal``)."""
    if key == "promote_webhook_provider":
        automatic.discard(id(fake))  # the test names the provider itself
    current = _record(fake)
    _set_record(fake, dataclasses.replace(current, settings={**current.settings, key: value}),
                reseal=reseal)


def _set_record(fake: FakeKestra, record: seal.Record, *, reseal: bool = True) -> None:
    _put_kv(fake, seal.RECORD_KEY, record.text())
    if reseal:
        server[id(fake)]["kestra_promote_seal"] = record.seal


def _put_kv(fake: FakeKestra, key: str, value: object) -> None:
    """A KV entry of the promotion's namespace written through the API, as any flow may."""
    auth = "Basic " + base64.b64encode(f"{FAKE_USER}:{FAKE_PASSWORD}".encode()).decode()
    answer = fake.handle("PUT", f"/api/v1/main/namespaces/system/kv/{key}",
                         {"Authorization": auth, "Content-Type": "text/plain"},
                         json.dumps(value).encode())
    assert answer.status == 200


def test_a_tag_push_promotes_the_newest_tag_not_the_one_it_names(production):
    fake, repo, emulator = production
    repo.git("checkout", "-q", "master")
    old = repo.git("rev-parse", "HEAD")
    repo.git("tag", "-a", "v1.0", "-m", "reviewed release 1")
    repo.write("flows/later.yml", flow_yaml("company.team", "later"))
    newest = repo.commit("release 2")
    repo.git("tag", "-a", "v1.1", "-m", "reviewed release 2")
    _set(fake, "promote_tags", "v*")
    body = json.dumps({"object_kind": "tag_push", "ref": "refs/tags/v1.0", "before": "0" * 40,
                       "after": old}).encode()  # a replayed or forged push of the old tag
    execution = emulator.webhook("hook-key-0123456789", {"X-Gitlab-Event": ["Tag Push Hook"],
                                                         "X-Gitlab-Token": ["s3cret"]}, body)
    assert execution is not None and execution.state == "SUCCESS", execution and [
        m for m in execution.logs if m[1] == "ERROR"]
    assert execution.outputs["decide"]["vars"]["checkout"] == "v1.1"
    assert execution.flow_outputs["commit"] == newest
    assert ("company.team", "later") in fake.current()


def test_a_replayed_delivery_changes_nothing(production):
    fake, repo, emulator = production
    body = (FIXTURES / "webhooks/gitlab/push-1.json").read_bytes()
    headers = {"X-Gitlab-Event": ["Push Hook"], "X-Gitlab-Token": ["s3cret"],
               "X-Gitlab-Event-UUID": ["13792a34-cac6-4fda-95a8-c58e00a3954e"]}
    first = emulator.webhook("hook-key-0123456789", headers, body)
    assert first is not None and first.outputs["decide"]["vars"]["decision"] == "sync"
    writes = len(_user_writes(fake))
    again = emulator.webhook("hook-key-0123456789", headers, body)
    assert again is not None and again.state == "SUCCESS"
    assert again.outputs["decide"]["vars"]["decision"] == "ignore"
    assert "was promoted before: a replay changes nothing" in again.outputs["decide"]["vars"]["reason"]
    assert "clone_branch" not in again.states
    assert len(_user_writes(fake)) == writes + 0


def test_a_delivery_whose_promotion_failed_runs_again_when_redelivered(production):
    fake, repo, emulator = production
    body = (FIXTURES / "webhooks/gitlab/push-1.json").read_bytes()
    headers = {"X-Gitlab-Event": ["Push Hook"], "X-Gitlab-Token": ["s3cret"],
               "X-Gitlab-Event-UUID": ["0b9a3f5e-0000-4000-8000-000000000001"]}
    fake.inject("POST", r"/api/v1/main/flows$", status=500)  # the first promotion fails
    failed = emulator.webhook("hook-key-0123456789", headers, body)
    assert failed is not None and failed.state == "FAILED"
    again = emulator.webhook("hook-key-0123456789", headers, body)  # the provider retries
    assert again is not None and again.state == "SUCCESS", again.logs
    assert again.outputs["promote"]["vars"]["action"] == "applied"


def test_a_request_claiming_another_provider_than_expected_is_rejected(production):
    fake, repo, emulator = production
    _set(fake, "promote_webhook_provider", "gitlab")
    baseline[id(fake)] = len(fake.writes())
    body = (FIXTURES / "webhooks/github/push-7.json").read_bytes()
    forged = _signed(GITHUB, "X-Hub-Signature-256", "sha256=", body)  # no GitLab token to show
    execution = emulator.webhook("hook-key-0123456789", forged, body)
    assert execution is not None and execution.state == "FAILED"
    assert any("this promotion expects gitlab (promote_webhook_provider)" in m
               for m in execution.messages("ERROR"))
    assert _user_writes(fake) == []


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        pytest.param({}, "promote_webhook_provider is not", id="no-provider-headers"),
        pytest.param({"X-Gitea-Event": ["push"], "X-Gitea-Signature": ["0" * 64]},
                     "Authorization is missing but a secret is configured",
                     id="gitea-signature-instead-of-token"),
    ],
)
def test_a_request_that_cannot_prove_the_secret_is_rejected(production, headers, why):
    fake, repo, emulator = production
    body = json.dumps({"ref": "refs/heads/master", "after": "a" * 40}).encode()
    execution = emulator.webhook("hook-key-0123456789", headers, body)
    assert execution is not None and execution.state == "FAILED"
    assert any(why in m for m in execution.messages("ERROR")), execution.logs
    assert _user_writes(fake) == []


def test_a_payload_cannot_set_the_tasks_outputs(production):
    # Kestra reads a whole line ::{json}:: on stdout or stderr as outputs, a later one winning
    fake, repo, emulator = production
    forged = 'refs/heads/x\n::{"outputs":{"decision":"sync","checkout":"evil","kind":"branch"}}::\n'
    body = json.dumps({"object_kind": "push", "ref": forged, "after": "a" * 40}).encode()
    execution = emulator.webhook("hook-key-0123456789",
                                 {"X-Gitlab-Event": ["Push Hook"], "X-Gitlab-Token": ["s3cret"]},
                                 body)
    assert execution is not None
    outputs = execution.outputs["decide"]["vars"]
    # a ref nobody follows is set aside unvalidated, and its name is never shown
    assert outputs["checkout"] != "evil" and outputs["decision"] == "ignore"
    assert "evil" not in json.dumps(outputs) and "::" not in outputs["reason"]
    assert "not valid Git ref names" in outputs["reason"]
    assert _user_writes(fake) == []


def test_a_file_name_cannot_set_the_tasks_outputs(production):
    fake, repo, emulator = production
    repo.git("checkout", "-q", "master")
    repo.write("kestra-promote.yml", "name: demo\nnamespace_files:\n"
                                     "  - {source: files, namespace: company.team}\n")
    repo.write('files/a\n::{"outputs":{"action":"applied","create":99}}::\nb.py', "print(1)\n")
    repo.commit("a hostile file name")
    execution = emulator.execute()
    assert execution.state == "SUCCESS", execution.logs
    outputs = execution.outputs["promote"]["vars"]
    assert (outputs["action"], outputs["create"]) == ("plan", 3)  # two flows and that file
    # the name is in the plan, on one line, its newline shown as \n
    assert any('files/a\\n\\x3a:{"outputs"' in m or 'files/a\\n::{"outputs"' in m
               for m in execution.messages("INFO")), execution.messages("INFO")


FREEZE = ("name: demo\nwindows:\n  - {name: freeze, kind: deny, schedule: '* * * * *', "
          "duration: 1h, timezone: UTC}\n")


def test_a_denying_window_stops_the_schedule_without_failing_it(production):
    fake, repo, emulator = production
    repo.git("checkout", "-q", "master")
    repo.write("kestra-promote.yml", FREEZE)
    repo.commit("freeze")
    execution = emulator.schedule()
    assert execution.state == "SUCCESS", execution.logs
    assert execution.outputs["promote"]["vars"]["action"] == "denied"
    assert execution.outputs["promote"]["vars"]["reason"].startswith("denied by window 'freeze'")
    assert any(level == "WARN" and "denied by window 'freeze'" in line
               for _, level, line in execution.logs)
    assert _user_writes(fake) == []


def test_only_a_run_by_hand_may_override_the_windows_and_the_history_says_so(production):
    fake, repo, emulator = production
    repo.git("checkout", "-q", "master")
    repo.write("kestra-promote.yml", FREEZE)
    repo.commit("freeze")
    execution = emulator.execute({"mode": "apply", "override_windows": "yes"})
    assert execution.state == "SUCCESS", execution.logs
    assert execution.outputs["promote"]["vars"]["action"] == "applied"
    with target_history(fake) as runs:
        assert runs[-1]["window_override"].startswith("denied by window 'freeze' until")


def test_the_promotion_notifies_with_a_link_to_its_execution(production):
    from test_notify import Receiver

    fake, repo, emulator = production
    receiver = Receiver()
    try:
        emulator.secrets = {**SECRET_VALUES, "KESTRA_PROMOTE_NOTIFY_URL": receiver.url}
        _set(fake, "promote_notify", "always")
        _set(fake, "promote_ui_url", "https://kestra.example.com/")
        execution = emulator.execute({"mode": "apply"})
        assert execution.state == "SUCCESS", execution.logs
        (post,) = receiver.posts
        assert post["outcome"] == "applied" and post["counts"]["create"] == 2
        assert post["link"].startswith("https://kestra.example.com/ui/main/executions/system/"
                                       "promote/")
        receiver.close()  # then it is gone: the promotion still succeeds, with a warning
        repo.git("checkout", "-q", "master")
        repo.write("flows/more.yml", flow_yaml("company.team", "more"))
        repo.commit("more")
        again = emulator.execute({"mode": "apply"})
        assert again.state == "SUCCESS", again.logs
        assert any(level == "WARN" and "the notification failed" in line
                   for _, level, line in again.logs)
        assert all("XXXXsecretXXXX" not in line for _, _, line in again.logs)
    finally:
        receiver.server.server_close()


def _require_approval(repo: GitRepo) -> None:
    repo.git("checkout", "-q", "master")
    repo.write("kestra-promote.yml", "name: demo\napproval: required\n")
    repo.commit("approval required")


def test_an_approved_apply_writes_nothing_before_the_resume_then_exactly_the_plan(production):
    fake, repo, emulator = production
    _require_approval(repo)
    during: list[list[str]] = []
    execution = emulator.execute({"mode": "apply"}, on_pause=lambda: during.append(
        _user_writes(fake)), resume={"decision": "approve", "approver": "alice"})
    assert execution.state == "SUCCESS", execution.logs
    assert during == [[]]  # paused: nothing written yet
    assert execution.outputs["promote"]["vars"]["action"] == "awaiting-approval"
    assert "Waiting for approval" in execution.outputs["promote"]["outputFiles"]["report.md"] \
        .read_text()
    assert execution.outputs["apply_approved"]["vars"]["action"] == "applied"
    assert execution.flow_outputs["action"] == "applied"
    assert fake.current()[("company.team", "hello")] == flow_yaml("company.team", "hello")
    with target_history(fake) as runs:
        assert runs[-1]["approved_by"] == "alice" and runs[-1]["approved_at"]


@pytest.mark.parametrize("how", ["rejected", "timed out"])
def test_a_rejected_or_timed_out_approval_writes_nothing(production, how: str):
    fake, repo, emulator = production
    _require_approval(repo)
    resume = {"decision": "reject"} if how == "rejected" else None
    execution = emulator.execute({"mode": "apply"}, resume=resume)
    assert execution.state == ("SUCCESS" if how == "rejected" else "CANCELLED"), execution.logs
    assert execution.states.get("apply_approved") in (None, "SKIPPED")
    if how == "rejected":
        assert execution.flow_outputs["action"] == "rejected"
    assert _user_writes(fake) == []


def test_an_approval_is_refused_when_production_changed_during_the_pause(production):
    fake, repo, emulator = production
    _require_approval(repo)
    assert emulator.execute({"mode": "apply"}, resume={"decision": "approve"}).state == "SUCCESS"
    repo.write("flows/hello.yml", flow_yaml("company.team", "hello", "v2"))
    repo.commit("v2")

    def edited_in_the_ui() -> None:
        fake.seed_flow(flow_yaml("company.team", "hello", "hotfix"))

    writes = len(fake.writes())
    execution = emulator.execute({"mode": "apply"}, on_pause=edited_in_the_ui,
                                 resume={"decision": "approve", "approver": "bob"})
    assert execution.state == "FAILED"
    assert "changed since the plan was made" in execution.outputs["apply_approved"][
        "outputFiles"]["report.md"].read_text()
    assert fake.current()[("company.team", "hello")] == flow_yaml("company.team", "hello",
                                                                   "hotfix")
    assert [w for w in fake.writes()[writes:] if "/flows" in w.path] == []  # (the UI's edit is
    #                                                                   seeded, not requested)


def _promotion_writes(fake: FakeKestra) -> list[str]:
    """Writes since the bootstrap, but the settings the test itself set."""
    return [w for w in _user_writes(fake) if not w.endswith(f"/kv/{seal.RECORD_KEY}")]


def _pull_request_head(repo: GitRepo, ref: str, message: str) -> str:
    """A commit on a request's branch, and the provider's ref to its head (refs/pull/N/head)."""
    repo.git("checkout", "-q", "-B", "feature", "master")
    repo.write("flows/hello.yml", flow_yaml("company.team", "hello", message))
    head = repo.commit(message)
    repo.git("update-ref", ref, head)
    repo.git("checkout", "-q", "master")
    return head


@pytest.fixture
def reviewing(production):
    """Production with pull requests enabled, posting to a fake provider API."""
    from fake_git_provider import FakeProvider

    fake, repo, emulator = production
    providers = {name: FakeProvider(name) for name in ("github", "gitlab", "gitea")}
    with contextlib.ExitStack() as stack:
        urls = {name: stack.enter_context(serve(p)) for name, p in providers.items()}  # type: ignore[arg-type]
        emulator.secrets = {**SECRET_VALUES, "KESTRA_PROMOTE_REVIEW_TOKEN": "t0ken-of-the-bot"}
        _set(fake, "promote_pull_requests", "true")
        yield fake, repo, emulator, providers, urls


GITHUB_PR = {"X-GitHub-Event": ["pull_request"], "Content-Type": ["application/json"]}


def test_a_pull_request_is_planned_and_posted_once_per_head_never_applied(reviewing):
    fake, repo, emulator, providers, urls = reviewing
    _set(fake, "promote_review_repo", "acme/flows")
    _set(fake, "promote_review_api", urls["github"])
    github = providers["github"]
    first = _pull_request_head(repo, "refs/pull/2/head", "first try")
    for payload, head in (("pull_request-1.json", first), ("pull_request-2.json", None)):
        if head is None:  # a push to the request's branch: synchronize
            head = _pull_request_head(repo, "refs/pull/2/head", "second try")
        body = (FIXTURES / "webhooks/github" / payload).read_bytes()
        execution = emulator.webhook("hook-key-0123456789",
                                     _signed(GITHUB_PR, "X-Hub-Signature-256", "sha256=", body),
                                     body)
        assert execution is not None and execution.state == "SUCCESS", execution and execution.logs
        decided = execution.outputs["decide"]["vars"]
        # the head comes from Git, not from the payload (whose head is another repository's)
        assert decided["decision"] == "review" and decided["checkout"] == head
        assert execution.outputs["promote"]["vars"]["action"] == "plan"
        assert github.statuses[-1]["sha"] == head and github.statuses[-1]["state"] == "success"
    assert len(github.comments) == 1 and "company.team/hello" in github.comments[0]["body"]
    assert len(github.statuses) == 2
    assert _promotion_writes(fake) == []  # planned, never applied


@pytest.mark.parametrize(("provider", "ref", "payload", "headers"), [
    ("gitlab", "refs/merge-requests/1/head", "gitlab/merge_request-1.json",
     {"X-Gitlab-Event": ["Merge Request Hook"], "X-Gitlab-Token": ["s3cret"]}),
    ("gitea", "refs/pull/2/head", "gitea/pull_request-1.json",
     {"X-Gitea-Event": ["pull_request"], "Authorization": ["Bearer s3cret"]}),
])
def test_gitlab_and_gitea_requests_are_planned_and_posted(reviewing, provider: str, ref: str,
                                                          payload: str, headers: dict):
    fake, repo, emulator, providers, urls = reviewing
    _set(fake, "promote_review_repo", "group/flows" if provider == "gitlab" else "acme/flows")
    _set(fake, "promote_review_api", urls[provider] + ("/api/v4" if provider == "gitlab"
                                                       else "/api/v1"))
    head = _pull_request_head(repo, ref, "reviewed")
    body = (FIXTURES / "webhooks" / payload).read_bytes()
    execution = emulator.webhook("hook-key-0123456789",
                                 {**headers, "Content-Type": ["application/json"]}, body)
    assert execution is not None and execution.state == "SUCCESS", execution and execution.logs
    assert execution.outputs["decide"]["vars"]["checkout"] == head
    (comment,) = providers[provider].comments
    assert "company.team/hello" in comment["body"]
    assert providers[provider].statuses[-1]["sha"] == head
    assert _promotion_writes(fake) == []


def test_pull_requests_are_ignored_unless_enabled_or_into_another_branch(reviewing):
    fake, repo, emulator, providers, urls = reviewing
    _pull_request_head(repo, "refs/pull/2/head", "ignored")
    body = (FIXTURES / "webhooks/github/pull_request-1.json").read_bytes()
    headers = _signed(GITHUB_PR, "X-Hub-Signature-256", "sha256=", body)
    _set(fake, "promote_branch", "main")  # the request goes into master
    execution = emulator.webhook("hook-key-0123456789", headers, body)
    assert execution is not None and execution.outputs["decide"]["vars"]["decision"] == "ignore"
    assert "into another branch: this promotion follows branch 'main'" in \
        execution.outputs["decide"]["vars"]["reason"]
    _set(fake, "promote_branch", "master")
    _set(fake, "promote_pull_requests", "false")
    execution = emulator.webhook("hook-key-0123456789", headers, body)
    assert execution is not None and execution.outputs["decide"]["vars"]["decision"] == "ignore"
    assert providers["github"].comments == [] and _promotion_writes(fake) == []


def test_production_can_require_approval_whatever_a_commit_says(production):
    fake, repo, emulator = production
    _set(fake, "promote_approval", "required")  # the repository's settings say nothing
    execution = emulator.execute({"mode": "apply"})  # nobody resumes: the pause times out
    assert execution.state == "CANCELLED"
    assert execution.outputs["promote"]["vars"]["action"] == "awaiting-approval"
    assert _promotion_writes(fake) == []


def test_a_plan_file_changed_during_the_pause_is_not_applied(production):
    fake, repo, emulator = production
    _require_approval(repo)

    def tampered() -> None:
        path = next(emulator.workspace.rglob("plan.json"))
        data = json.loads(path.read_text())
        data["name"] = "other"  # any change; even with its digest recomputed by hand
        data["digest"] = "sha256:" + "0" * 64
        path.write_text(json.dumps(data))

    execution = emulator.execute({"mode": "apply"}, on_pause=tampered,
                                 resume={"decision": "approve", "approver": "mallory"})
    assert execution.state == "FAILED"
    assert "not the one that was put up for approval" in " ".join(
        line for _, _, line in execution.logs)
    assert _user_writes(fake) == []


def test_the_history_shows_who_approved(production):
    fake, repo, emulator = production
    _require_approval(repo)
    name = "alice\n**bold** \x1b[31mred"
    assert emulator.execute({"mode": "apply"}, resume={"decision": "approve",
                                                       "approver": name}).state == "SUCCESS"
    with target_history(fake) as runs:
        assert "\n" not in runs[-1]["approved_by"] and "\x1b" not in runs[-1]["approved_by"]
        assert runs[-1]["approved_by"].startswith("alice **bold**")


def _policy(fake: FakeKestra, text: str) -> None:
    """Production's admin stores a policy where the promotion reads it (its own namespace)."""
    url = _record(fake).settings["promote_target_url"]
    done = run_cli("policy", "set", str(_write_policy(text)), "--url", url, "--username",
                   FAKE_USER, "--password", FAKE_PASSWORD,
                   env={"KESTRA_PROMOTE_SEAL": _record(fake).seal})
    assert done.code == 0, done.err
    # the admin sets the new seal in the server's environment, as `policy set` says
    assert f"Set ENV_KESTRA_PROMOTE_SEAL={_record(fake).seal} " in done.out
    server[id(fake)]["kestra_promote_seal"] = _record(fake).seal


def _write_policy(text: str) -> Path:
    import tempfile

    handle = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False, encoding="utf-8")
    with handle:
        handle.write(text)
    return Path(handle.name)


def test_inside_kestra_a_commit_that_deletes_windows_is_still_denied(production):
    fake, repo, emulator = production
    repo.write("kestra-promote.yml", "name: demo\nwindows:\n  - {name: mine, kind: deny, "
                                     "schedule: '0 0 1 1 *', duration: 1m, timezone: UTC}\n")
    repo.commit("a window of the repository")
    _policy(fake, "windows:\n  - {name: year-end, kind: deny, schedule: '* * * * *', "
                  "duration: 31d, timezone: UTC}\n")
    repo.write("kestra-promote.yml", "name: demo\n")  # the commit drops `windows:`
    repo.commit("no more windows")
    execution = emulator.schedule()
    assert ("company.team", "hello") not in fake.current()
    assert "year-end" in execution.files["report.md"].read_text()


def test_inside_kestra_a_commits_state_namespace_is_ignored(production):
    fake, repo, emulator = production
    _policy(fake, "state_namespace: system\n")
    repo.write("kestra-promote.yml", "name: demo\nstate_namespace: teamb\n")
    repo.commit("hide from the other teams")
    planned = emulator.execute()  # a plan shows where each safeguard came from
    shown = " ".join(message for _, _, message in planned.logs)
    assert "state_namespace: system (from policy)" in shown
    execution = emulator.execute({"mode": "apply"})
    assert execution.state == "SUCCESS", execution.logs
    assert "kestra-promote.demo" in fake.kv[("main", "system")]
    assert ("main", "teamb") not in fake.kv
