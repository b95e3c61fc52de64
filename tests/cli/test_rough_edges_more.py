"""More rough edges a newcomer meets: other Kestra objects taken for broken flows, hints that
suggest what is already done, settings at the repository root that a subfolder run ignored."""

from __future__ import annotations

from conftest import GitRepo, flow_yaml, run_cli

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
