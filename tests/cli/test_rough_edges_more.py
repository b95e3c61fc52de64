"""More rough edges a newcomer meets: other Kestra objects taken for broken flows, hints that
suggest what is already done, settings at the repository root that a subfolder run ignored."""

from __future__ import annotations

from conftest import FIXTURES, GitRepo, flow_yaml, run_cli

# a dashboard as Kestra's UI exports it (core/src/main/java/io/kestra/core/models/dashboards/
# Dashboard.java: id, title, description, timeWindow, charts)
DASHBOARD = """id: overview
title: Executions overview
description: How the team's flows ran this week
timeWindow:
  default: P7D
  max: P365D
charts:
  - id: executions_timeseries
    type: io.kestra.plugin.core.dashboard.chart.TimeSeries
    chartOptions:
      displayName: Executions
    data:
      type: io.kestra.plugin.core.dashboard.data.Executions
      columns:
        date:
          field: START_DATE
          displayName: Date
        total:
          displayName: Executions
          agg: COUNT
"""

# an app of Kestra's Enterprise Edition (kestra.io/docs, Apps: `type: io.kestra.plugin.ee.apps.
# Execution` with id, namespace, flowId and layout)
APP = """id: request_data_form
type: io.kestra.plugin.ee.apps.Execution
displayName: Form to request and download data
namespace: company.team
flowId: get_data
access:
  type: PRIVATE
layout:
  - on: OPEN
    blocks:
      - type: io.kestra.plugin.ee.apps.execution.blocks.CreateExecutionForm
      - type: io.kestra.plugin.ee.apps.execution.blocks.CreateExecutionButton
        text: Submit
"""


def test_dashboards_and_apps_are_named_with_how_to_leave_them_out(repo: GitRepo):
    repo.write("flows/hello.yml", flow_yaml("company.team", "hello"))
    repo.write("dashboards/overview.yml", DASHBOARD)
    repo.write("apps/request.yml", APP)
    repo.commit()

    result = run_cli("validate", str(repo.path), "--offline")

    assert result.code == 1
    assert "missing required key" not in result.err, result.err
    assert ("apps/request.yml:1:1: is a Kestra app (type io.kestra.plugin.ee.apps.Execution), not "
            "a flow: kestra-promote promotes flows and namespace files. Leave it out: name the "
            "folders that hold flows in kestra-promote.yml (flows: [flows/]), or add the line "
            "'/apps/request.yml' to .kestraignore") in result.err, result.err
    assert ("dashboards/overview.yml:1:1: is a Kestra dashboard (it has title and charts), not "
            "a flow: kestra-promote promotes flows and namespace files. Leave it out: name the "
            "folders that hold flows in kestra-promote.yml (flows: [flows/]), or add the line "
            "'/dashboards/overview.yml' to .kestraignore") in result.err, result.err


def test_a_file_already_in_the_flows_folder_is_not_told_to_name_that_folder(repo: GitRepo):
    repo.write("kestra-promote.yml", "flows: [flows/]\n")
    repo.write("flows/hello.yml", flow_yaml("company.team", "hello"))
    repo.write("flows/overview.yml", DASHBOARD)
    repo.commit()

    result = run_cli("validate", str(repo.path), "--offline")

    assert result.code == 1
    assert "(flows: [flows/])" not in result.err, result.err
    assert ("flows/overview.yml:1:1: is a Kestra dashboard (it has title and charts), not a "
            "flow: kestra-promote promotes flows and namespace files. Leave it out: move it out "
            "of the folders kestra-promote.yml names for flows (flows/), or add the line "
            "'/flows/overview.yml' to .kestraignore") in result.err, result.err


def test_settings_at_the_repository_root_are_named_when_a_subfolder_is_promoted(repo: GitRepo):
    # settings written for the whole repository: their paths are the root's, their name its own
    repo.write("kestra-promote.yml", "name: analytics\nflows: [flows/]\n"
                                     "namespaces: {rename: {dev.company: company}}\n")
    repo.write(".kestraignore", "/flows/drafts/\n")
    repo.write("flows/hello.yml", flow_yaml("dev.company", "hello"))
    repo.write("flows/drafts/wip.yml", flow_yaml("dev.company", "wip"))
    repo.commit()

    result = run_cli("validate", str(repo.path / "flows"), "--offline")

    root = repo.path.resolve()
    assert (f"Warning: {root / 'kestra-promote.yml'} is not read: SOURCE "
            f"({repo.path / 'flows'}) is a folder inside the repository {root}, and settings "
            "are read from SOURCE only (their paths and name are those of the folder holding "
            "them). To use them, promote the repository root; for settings of this folder, "
            "write kestra-promote.yml in SOURCE") in result.err, result.err
    assert (f"Warning: {root / '.kestraignore'} is not read: SOURCE ({repo.path / 'flows'}) "
            f"is a folder inside the repository {root}, and ignore rules are read from SOURCE "
            "only (their paths and name are those of the folder holding them). To use them, "
            "promote the repository root; for ignore rules of this folder, write .kestraignore "
            "in SOURCE") in result.err, result.err
    # the run reads SOURCE as it always did: both flows, under their own namespace
    assert result.code == 0 and "Valid: 2 flow(s)" in result.out, result.out

    at_root = run_cli("validate", str(repo.path), "--offline")
    assert at_root.code == 0 and "is not read" not in at_root.err
    assert "Valid: 1 flow(s)" in at_root.out


def test_settings_of_the_subfolder_itself_are_read_without_a_word(repo: GitRepo):
    repo.write("kestra-promote.yml", "name: analytics\n")
    repo.write("flows/kestra-promote.yml", "name: flows-only\n")
    repo.write("flows/hello.yml", flow_yaml("company", "hello"))
    repo.commit()

    result = run_cli("validate", str(repo.path / "flows"), "--offline")

    assert result.code == 0 and "is not read" not in result.err, result.err
    with_config = run_cli("validate", str(repo.path / "flows"), "--offline", "--config",
                          str(repo.path / "kestra-promote.yml"))
    assert with_config.code == 0 and "is not read" not in with_config.err, with_config.err


def test_an_app_and_a_dashboard_are_named_as_such(repo: GitRepo):
    fixtures = FIXTURES / "full_image"
    repo.write("hello.yml", flow_yaml("company.team", "hello"))
    for name in ("apps/report-request.yaml", "dashboards/flow-health.yaml"):
        repo.write(name, (fixtures / name).read_text(encoding="utf-8"))
    repo.commit()

    result = run_cli("validate", str(repo.path), "--offline")

    assert result.code == 1
    assert "apps/report-request.yaml:1:1: is a Kestra app (type " \
        "io.kestra.plugin.ee.apps.Execution), not a flow" in result.err, result.err
    assert "dashboards/flow-health.yaml:1:1: is a Kestra dashboard (it has title and charts), " \
        "not a flow" in result.err, result.err
    assert "missing required key" not in result.err
