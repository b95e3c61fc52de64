"""What a stock `kestra/kestra` image of Kestra 1.3 and 2.0 knows: plugin types and their properties.

Data for `rules.py`, listed from Kestra's source, not from the client's code:
- Kestra 1.3: kestra-io/kestra `releases/v1.3.x` (1.3.19); Kestra 2.0: `develop` at 8ecd8337 (2.0.0-SNAPSHOT).
- Core types are the `@Plugin` classes of `core/src/main/java/io/kestra/plugin/core/<package>/<Name>.java`;
  the key `"flow.If"` below stands for `io.kestra.plugin.core.flow.If`.
- plugin-scripts: tag v1.9.8 (built on Kestra 1.3.19) for 1.3, branch `fix/v2` (built on
  2.0.0-SNAPSHOT, no 2.0 release tag yet) for 2.0. plugin-git: tag v2.0.11 for 1.3, v3.0.0 for 2.0.

A type's properties are the fields Jackson can set on it: its own and those of its parent classes
(`Task.java`, `AbstractTrigger.java`, ...), plus setter-only aliases. Kestra parses flows with
FAIL_ON_UNKNOWN_PROPERTIES (YamlParser's strict mapper, both versions), so any other key is an
"Unrecognized field". `required` lists the `@NotNull`/`@NotEmpty` fields that have no default value
(a trailing `+` marks `@NotEmpty`: an empty list, map or string fails too).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

CORE = "io.kestra.plugin.core."
SCRIPTS = "io.kestra.plugin.scripts."
GIT = "io.kestra.plugin.git."

# Task kinds, from the interfaces a class implements (models/tasks/*.java)
RUNNABLE = "runnable"        # RunnableTask: runs on a worker, the only kind allowed in a WorkingDirectory
FLOWABLE = "flowable"        # FlowableTask: holds child tasks
EXECUTABLE = "executable"    # ExecutableTask: starts a subflow
UPDATABLE = "updatable"      # ExecutionUpdatableTask: changes the running execution
TRIGGER, CONDITION, RUNNER = "trigger", "condition", "runner"


@dataclass(frozen=True)
class PluginType:
    kind: str
    props: frozenset[str]          # every key Jackson accepts, inherited ones included
    not_null: frozenset[str]       # must be present (and not null)
    not_empty: frozenset[str]      # must be present and not empty

    @property
    def runnable(self) -> bool:
        return self.kind == RUNNABLE


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# models/tasks/Task.java: what every task accepts (1.3 routes with `workerGroup`, 2.0 with `workerSelector`)
_TASK_COMMON = ("id type version description retry timeout disabled logLevel allowFailure logToFile "
                "runIf allowWarning taskCache assets")
TASK_BASE = {"1.3": _words(_TASK_COMMON + " workerGroup"), "2.0": _words(_TASK_COMMON + " workerSelector")}
# models/triggers/AbstractTrigger.java: 1.3 has `conditions` (and the `minLogLevel` setter), 2.0 `when`
_TRIGGER_COMMON = ("id type version description disabled logLevel labels stopAfter logToFile "
                   "failOnTriggerError allowConcurrent assets")
TRIGGER_BASE = {"1.3": _words(_TRIGGER_COMMON + " conditions workerGroup minLogLevel"),
                "2.0": _words(_TRIGGER_COMMON + " when workerSelector")}
# models/conditions/Condition.java (1.3 only: 2.0 removed conditions)
CONDITION_BASE = _words("type")
# models/tasks/runners/TaskRunner.java (`isKilled`, `killable` are @JsonIgnore: accepted, ignored)
RUNNER_BASE = _words("type version isKilled killable")

_BASES = {RUNNABLE: TASK_BASE, FLOWABLE: TASK_BASE, EXECUTABLE: TASK_BASE, UPDATABLE: TASK_BASE,
          TRIGGER: TRIGGER_BASE}


def _t(kind: str, own: str = "", required: str = "") -> tuple[str, str, str]:
    return kind, own, required


# Core types whose own properties are the same in 1.3 and 2.0.
_CORE_BOTH = {
    "debug.Return": _t(RUNNABLE, "format"),
    "execution.Assert": _t(RUNNABLE, "conditions errorMessage", "conditions"),
    "execution.Exit": _t(UPDATABLE, "state"),
    "execution.Fail": _t(RUNNABLE, "condition errorMessage"),
    "execution.Labels": _t(UPDATABLE, "labels", "labels"),
    "execution.PurgeExecutions": _t(RUNNABLE, "batchSize endDate flowId namespace purgeExecution "
                                              "purgeLog purgeMetric purgeStorage startDate states",
                                    "endDate"),
    "execution.SetVariables": _t(UPDATABLE, "overwrite variables", "variables"),
    "execution.UnsetVariables": _t(UPDATABLE, "ignoreMissing variables", "variables"),
    "flow.AllowFailure": _t(FLOWABLE, "errors finally tasks", "tasks+"),
    "flow.Dag": _t(FLOWABLE, "concurrent errors finally tasks", "tasks+"),
    "flow.Parallel": _t(FLOWABLE, "concurrent errors finally tasks", "tasks+"),
    "flow.Sequential": _t(FLOWABLE, "errors finally tasks", "tasks+"),
    "flow.Sleep": _t(RUNNABLE, "duration", "duration"),
    "flow.Switch": _t(FLOWABLE, "cases defaults errors finally value", "value"),
    "flow.WorkingDirectory": _t(FLOWABLE, "cache errors finally inputFiles namespaceFiles outputFiles "
                                          "tasks", "tasks+"),
    "kv.Delete": _t(RUNNABLE, "errorOnMissing key namespace", "key"),
    "kv.Get": _t(RUNNABLE, "errorOnMissing key namespace", "key"),
    "kv.GetKeys": _t(RUNNABLE, "namespace prefix"),
    "kv.Put": _t(RUNNABLE, "errorOnMissing key namespace value", "key value"),
    "kv.Set": _t(RUNNABLE, "key kvDescription kvType namespace overwrite ttl value", "key value"),
    "log.Log": _t(RUNNABLE, "level message", "message"),
    "metric.Publish": _t(RUNNABLE, "metrics"),
    "namespace.DeleteFiles": _t(RUNNABLE, "deleteParentFolder files namespace", "files namespace"),
    "namespace.DownloadFiles": _t(RUNNABLE, "destination files namespace", "files namespace"),
    "namespace.PurgeFiles": _t(RUNNABLE, "behavior filePattern includeChildNamespaces "
                                         "namespacePattern namespaces"),
    "namespace.UploadFiles": _t(RUNNABLE, "conflict destination files filesMap namespace", "namespace"),
    "output.OutputValues": _t(RUNNABLE, "values"),
    "runner.Process": _t(RUNNER),
    "storage.Concat": _t(RUNNABLE, "extension files separator", "files"),
    "storage.DeduplicateItems": _t(RUNNABLE, "expr from", "expr from"),
    "storage.Delete": _t(RUNNABLE, "errorOnMissing uri", "uri"),
    "storage.FilterItems": _t(RUNNABLE, "errorOrNullBehavior filterCondition filterType from",
                              "filterCondition from"),
    "storage.PurgeCurrentExecutionFiles": _t(RUNNABLE),
    "storage.Reverse": _t(RUNNABLE, "charset from separator", "from"),
    "storage.Size": _t(RUNNABLE, "uri", "uri"),
    "storage.Split": _t(RUNNABLE, "bytes from partitions regexPattern rows separator", "from"),
    "storage.Write": _t(RUNNABLE, "content extension", "content"),
    "templating.TemplatedTask": _t(RUNNABLE, "spec", "spec"),
    "trigger.ScheduleOnDates": _t(TRIGGER, "dates inputs interval recoverMissedSchedules timezone",
                                  "dates"),
    "trigger.Webhook": _t(TRIGGER, "inputs key responseCode responseContentType returnOutputs wait",
                          "key"),
}
_HTTP = "body contentType formData headers method options params uri"
# Core types of 1.3 only, or whose properties differ from 2.0.
_CORE_1_3 = {
    "condition.DateTimeBetween": _t(CONDITION, "after before date"),
    "condition.DayWeek": _t(CONDITION, "date dayOfWeek", "dayOfWeek"),
    "condition.DayWeekInMonth": _t(CONDITION, "date dayInMonth dayOfWeek", "dayInMonth dayOfWeek"),
    "condition.ExecutionFlow": _t(CONDITION, "flowId namespace", "flowId namespace"),
    "condition.ExecutionLabels": _t(CONDITION, "labels", "labels"),
    "condition.ExecutionNamespace": _t(CONDITION, "comparison namespace prefix", "namespace"),
    "condition.ExecutionOutputs": _t(CONDITION, "expression", "expression"),
    "condition.ExecutionStatus": _t(CONDITION, "in notIn"),
    "condition.Expression": _t(CONDITION, "expression", "expression"),
    "condition.FlowCondition": _t(CONDITION, "flowId namespace", "flowId namespace"),
    "condition.FlowNamespaceCondition": _t(CONDITION, "namespace prefix", "namespace"),
    "condition.HasRetryAttempt": _t(CONDITION, "in notIn"),
    # `window`, `windowAdvance`: setters kept for older flows
    "condition.MultipleCondition": _t(CONDITION, "conditions id resetOnSuccess timeWindow window "
                                                 "windowAdvance", "conditions+ id"),
    "condition.Not": _t(CONDITION, "conditions", "conditions+"),
    "condition.Or": _t(CONDITION, "conditions", "conditions+"),
    "condition.PublicHoliday": _t(CONDITION, "country date subDivision"),
    "condition.TimeBetween": _t(CONDITION, "after before date"),
    "condition.Weekend": _t(CONDITION, "date"),
    "debug.Echo": _t(RUNNABLE, "format level"),
    "execution.Count": _t(RUNNABLE, "endDate expression flows namespaces startDate states",
                          "expression startDate"),
    "execution.Resume": _t(RUNNABLE, "executionId flowId inputs namespace"),
    "flow.EachParallel": _t(FLOWABLE, "concurrent errors finally tasks value", "tasks+ value"),
    "flow.EachSequential": _t(FLOWABLE, "errors finally tasks value", "tasks+ value"),
    "flow.ForEach": _t(FLOWABLE, "concurrencyLimit errors finally tasks values", "tasks+ values"),
    # `tasks`: a no-op setter, the children are three built-in tasks
    "flow.ForEachItem": _t(FLOWABLE, "batch errors finally flowId inheritLabels inputs items labels "
                                     "namespace restartBehavior revision scheduleDate tasks "
                                     "transmitFailed wait", "flowId+ items+ namespace+"),
    "flow.If": _t(FLOWABLE, "condition else errors finally then", "then+"),
    "flow.LoopUntil": _t(FLOWABLE, "checkFrequency condition errors failOnMaxReached finally tasks",
                         "condition tasks"),
    # `delay`: setter alias of pauseDuration; `tasks`: deprecated
    "flow.Pause": _t(FLOWABLE, "behavior delay errors finally onPause onResume pauseDuration tasks"),
    # `outputs`: deprecated
    "flow.Subflow": _t(EXECUTABLE, "flowId inheritLabels inputs labels namespace outputs "
                                   "restartBehavior revision scheduleDate transmitFailed wait",
                       "flowId namespace+"),
    "flow.Template": _t(FLOWABLE, "args errors finally namespace templateId tenantId",
                        "namespace templateId"),
    # `allowFailed`: setter; `sslOptions`: deprecated
    "http.Download": _t(RUNNABLE, _HTTP + " allowFailed failOnEmptyResponse saveAs sslOptions", "uri"),
    "http.Request": _t(RUNNABLE, _HTTP + " allowFailed encryptBody sslOptions", "uri"),
    "http.SseRequest": _t(RUNNABLE, _HTTP + " allowFailed concatJqExpression failedOnMissingJq "
                                            "sslOptions", "uri"),
    "http.Trigger": _t(TRIGGER, _HTTP + " encryptBody interval responseCondition sslOptions", "uri"),
    "kv.PurgeKV": _t(RUNNABLE, "behavior expiredOnly includeChildNamespaces keyPattern "
                               "namespacePattern namespaces"),
    "log.Fetch": _t(RUNNABLE, "executionId flowId level namespace tasksId"),
    "log.PurgeLogs": _t(RUNNABLE, "endDate executionId flowId logLevels namespace startDate", "endDate"),
    "state.Delete": _t(RUNNABLE, "errorOnMissing name namespace taskrunValue"),
    "state.Get": _t(RUNNABLE, "errorOnMissing name namespace taskrunValue"),
    "state.Set": _t(RUNNABLE, "data name namespace taskrunValue"),
    "storage.LocalFiles": _t(RUNNABLE, "inputs outputs"),
    "trigger.Flow": _t(TRIGGER, "inputs preconditions states"),
    # `backfill`, `scheduleConditions`: deprecated
    "trigger.Schedule": _t(TRIGGER, "backfill cron inputs interval lateMaximumDelay "
                                    "recoverMissedSchedules scheduleConditions timezone withSeconds",
                           "cron"),
    "trigger.Toggle": _t(RUNNABLE, "enabled flowId namespace trigger", "trigger"),
}
# Core types of 2.0 only, or whose properties differ from 1.3.
_CORE_2_0 = {
    "flow.If": _t(FLOWABLE, "condition else errors finally then", "condition then+"),
    "flow.Loop": _t(FLOWABLE, "concurrencyLimit errors fetchType finally outputs tasks transmitFailed "
                              "values", "tasks+ values"),
    "flow.LoopUntil": _t(FLOWABLE, "checkFrequency condition errors failOnMaxReached finally tasks",
                         "condition tasks+"),
    "flow.Pause": _t(FLOWABLE, "behavior errors finally onPause onResume pauseDuration"),
    "flow.Subflow": _t(EXECUTABLE, "flowId inheritLabels inputs labels namespace restartBehavior "
                                   "revision scheduleDate transmitFailed wait", "flowId namespace+"),
    "http.Download": _t(RUNNABLE, _HTTP + " failOnEmptyResponse saveAs", "uri"),
    "http.Request": _t(RUNNABLE, _HTTP + " encryptBody", "uri"),
    "http.SseRequest": _t(RUNNABLE, _HTTP + " concatJqExpression failedOnMissingJq", "uri"),
    "http.Trigger": _t(TRIGGER, _HTTP + " encryptBody interval responseCondition", "uri"),
    "kv.PurgeKV": _t(RUNNABLE, "behavior includeChildNamespaces keyPattern namespacePattern namespaces"),
    "log.PurgeLogs": _t(RUNNABLE, "batchSize endDate executionId flowId logLevels namespace "
                                  "purgeExecutionLogs purgeNonExecutionLogs startDate", "endDate"),
    "storage.PurgeStorage": _t(RUNNABLE, "dryRun endDate flowId namespace startDate", "endDate"),
    "trigger.Flow": _t(TRIGGER, "dependsOn inputs minSatisfied mode states window"),
    "trigger.McpToolTrigger": _t(TRIGGER, "annotations mcpServer title toolDescription toolName",
                                 "title toolDescription toolName"),
    "trigger.Schedule": _t(TRIGGER, "cron inputs interval lateMaximumDelay recoverMissedSchedules "
                                    "timezone withSeconds", "cron"),
}

# plugin-scripts: the script base class lives in Kestra itself
# (script/src/main/java/io/kestra/plugin/scripts/exec/AbstractExecScript.java, same fields in 1.3 and
# 2.0; `warningOnStdErr`, `docker`, `runner`, `outputDirectory` are @Deprecated there).
_EXEC_SCRIPT = ("beforeCommands containerImage docker env failFast inputFiles interpreter "
                "namespaceFiles outputDirectory outputFiles runner targetOS taskRunner warningOnStdErr")
# plugin-script-python/.../python/AbstractPythonExecScript.java: `dependencies` and
# `dependencyCacheEnabled` exist in both v1.9.8 (1.3) and fix/v2 (2.0)
_PYTHON = (_EXEC_SCRIPT + " dependencies dependencyCacheEnabled packageManager pythonVersion "
           "uvAutoInstallEnabled uvInstallerSha256 uvInstallerVersion")
_SCRIPTS = {
    # plugin-script-python/src/main/java/io/kestra/plugin/scripts/python/{Commands,Script}.java
    SCRIPTS + "python.Commands": _t(RUNNABLE, _PYTHON + " commands", "commands"),
    SCRIPTS + "python.Script": _t(RUNNABLE, _PYTHON + " script", "script"),
    # plugin-script-shell/src/main/java/io/kestra/plugin/scripts/shell/{Commands,Script}.java
    SCRIPTS + "shell.Commands": _t(RUNNABLE, _EXEC_SCRIPT + " commands", "commands"),
    SCRIPTS + "shell.Script": _t(RUNNABLE, _EXEC_SCRIPT + " script", "script"),
    # script/src/main/java/io/kestra/plugin/scripts/runner/docker/Docker.java (in Kestra)
    SCRIPTS + "runner.docker.Docker": _t(RUNNER, "config cpu credentials delete deviceRequests "
                                                 "entryPoint extraHosts fileHandlingStrategy host "
                                                 "image killGracePeriod memory networkMode "
                                                 "portBindings privileged pullPolicy resume shmSize "
                                                 "user volumes wait"),
}
# plugin-git: src/main/java/io/kestra/plugin/git/AbstractGitTask.java (connection and credentials),
# AbstractCloningTask.java (`cloneSubmodules`; v3.0.0 adds `auth`, `kestraUrl`),
# AbstractPushTask.java (commit fields), AbstractSyncTask.java
_GIT = ("url username password privateKey passphrase trustedCaPemPath gitConfig connectTimeout "
        "readTimeout noProxy cloneSubmodules")
_GIT_PUSH = "authorEmail authorName commitMessage delete dryRun"
_GIT_SYNC = "dryRun failOnMissingDirectory"


def _git(extra: str) -> dict[str, tuple[str, str, str]]:
    base = _GIT + " " + extra
    return {
        # Clone.java: `commit` and `tag` exist in v2.0.11 (1.3) and v3.0.0 (2.0)
        GIT + "Clone": _t(RUNNABLE, base + " branch cloneAllBranches commit depth directory noTags tag"),
        GIT + "PushFlows": _t(RUNNABLE, base + " " + _GIT_PUSH + " branch flows gitDirectory "
                                               "includeChildNamespaces sourceNamespace targetNamespace"),
        GIT + "PushNamespaceFiles": _t(RUNNABLE, base + " " + _GIT_PUSH + " branch errorOnMissing files "
                                                        "gitDirectory namespace"),
        GIT + "SyncFlows": _t(RUNNABLE, base + " " + _GIT_SYNC + " branch delete gitDirectory "
                                               "ignoreInvalidFlows includeChildNamespaces "
                                               "targetNamespace", "targetNamespace"),
        GIT + "SyncNamespaceFiles": _t(RUNNABLE, base + " " + _GIT_SYNC + " branch delete gitDirectory "
                                                        "namespace"),
        GIT + "Push": _t(RUNNABLE, base + " addFilesPattern author branch commitMessage directory flows "
                                          "inputFiles namespaceFiles", "branch commitMessage"),
    }


# Stock plugins known by name only (any property accepted): the rest of plugin-scripts and plugin-git
# (their `@Plugin` classes at the tags above, identical in both), and plugins the project's tests use.
_SCRIPT_LANGUAGES = {
    "bun": "Commands Script", "deno": "Commands Script", "dotnet": "Commands Script",
    "go": "Commands CommandsTrigger Script ScriptTrigger", "groovy": "Commands Eval FileTransform Script",
    "jbang": "Commands Script", "julia": "Commands Script", "jython": "Eval FileTransform",
    "lua": "Commands Script", "nashorn": "Eval FileTransform",
    "node": "Commands CommandsTrigger Script ScriptTrigger", "perl": "Commands Script",
    "php": "Commands Script", "powershell": "Commands Script", "python": "CommandsTrigger ScriptTrigger",
    "r": "Commands Script", "ruby": "Commands Script ScriptTrigger", "shell": "CommandsTrigger ScriptTrigger",
}
NAME_ONLY = frozenset(
    [SCRIPTS + f"{lang}.{name}" for lang, names in _SCRIPT_LANGUAGES.items() for name in names.split()]
    + ["io.kestra.core.tasks.scripts." + n for n in ("Bash", "Node", "Python")]
    + [GIT + n for n in ("NamespaceSync", "PushDashboards", "PushExecutionFiles", "Sync",
                         "SyncDashboards", "SyncFlow", "TenantSync")]
    + ["io.kestra.plugin.gcp.gcs.Trigger"]
)

# Old names still accepted (`@Plugin(aliases = ...)`). 2.0 dropped all but these.
_ALIASES_BOTH = {
    "io.kestra.plugin.core.flow.WaitFor": CORE + "flow.LoopUntil",
    "io.kestra.plugin.fs.http.Download": CORE + "http.Download",
    "io.kestra.plugin.fs.http.Request": CORE + "http.Request",
    "io.kestra.plugin.fs.http.Trigger": CORE + "http.Trigger",
}
_OLD = "io.kestra.core.tasks."
_CONDITIONS = "io.kestra.core.models.conditions.types."
_ALIASES_1_3 = {
    **{_CONDITIONS + n + "Condition": CORE + "condition." + n for n in (
        "DateTimeBetween", "DayWeek", "DayWeekInMonth", "ExecutionFlow", "ExecutionLabels",
        "ExecutionNamespace", "ExecutionOutputs", "ExecutionStatus", "HasRetryAttempt", "Not", "Or",
        "PublicHoliday", "TimeBetween", "Weekend")},
    **{CORE + "condition." + n + "Condition": CORE + "condition." + n for n in (
        "DateTimeBetween", "DayWeek", "DayWeekInMonth", "ExecutionFlow", "ExecutionLabels",
        "ExecutionNamespace", "ExecutionOutputs", "ExecutionStatus", "HasRetryAttempt", "Not", "Or",
        "PublicHoliday", "TimeBetween", "Weekend")},
    _CONDITIONS + "VariableCondition": CORE + "condition.Expression",
    CORE + "condition.ExpressionCondition": CORE + "condition.Expression",
    _CONDITIONS + "FlowCondition": CORE + "condition.FlowCondition",
    _CONDITIONS + "FlowNamespaceCondition": CORE + "condition.FlowNamespaceCondition",
    _CONDITIONS + "MultipleCondition": CORE + "condition.MultipleCondition",
    _OLD + "debugs.Echo": CORE + "debug.Echo",
    _OLD + "debugs.Return": CORE + "debug.Return",
    _OLD + "executions.Counts": CORE + "execution.Count",
    _OLD + "executions.Fail": CORE + "execution.Fail",
    _OLD + "executions.Labels": CORE + "execution.Labels",
    _OLD + "storages.Purge": CORE + "execution.PurgeExecutions",
    CORE + "storage.Purge": CORE + "execution.PurgeExecutions",
    **{_OLD + "flows." + n: CORE + "flow." + n for n in (
        "AllowFailure", "Dag", "EachParallel", "EachSequential", "ForEachItem", "If", "Parallel",
        "Pause", "Sequential", "Subflow", "Switch", "Template", "WorkingDirectory")},
    _OLD + "flows.Flow": CORE + "flow.Subflow",
    _OLD + "flows.Worker": CORE + "flow.WorkingDirectory",
    _OLD + "log.Fetch": CORE + "log.Fetch",
    _OLD + "log.Log": CORE + "log.Log",
    **{_OLD + "states." + n: CORE + "state." + n for n in ("Delete", "Get", "Set")},
    **{_OLD + "storages." + n: CORE + "storage." + n for n in (
        "Concat", "DeduplicateItems", "Delete", "FilterItems", "LocalFiles", "Reverse", "Size", "Split")},
    _OLD + "storages.PurgeExecution": CORE + "storage.PurgeCurrentExecutionFiles",
    CORE + "storage.PurgeExecution": CORE + "storage.PurgeCurrentExecutionFiles",
    _OLD + "templating.TemplatedTask": CORE + "templating.TemplatedTask",
    "io.kestra.core.models.triggers.types.Flow": CORE + "trigger.Flow",
    "io.kestra.core.models.triggers.types.Schedule": CORE + "trigger.Schedule",
    "io.kestra.core.models.triggers.types.Webhook": CORE + "trigger.Webhook",
    _OLD + "trigger.Toggle": CORE + "trigger.Toggle",
}
ALIASES = {"1.3": {**_ALIASES_BOTH, **_ALIASES_1_3}, "2.0": dict(_ALIASES_BOTH)}


def _build(entries: dict[str, tuple[str, str, str]], version: str) -> dict[str, PluginType]:
    table = {}
    for name, (kind, own, required) in entries.items():
        base = CONDITION_BASE if kind == CONDITION else RUNNER_BASE if kind == RUNNER \
            else _BASES[kind][version]
        marks = required.split()
        table[name if name.startswith("io.") else CORE + name] = PluginType(
            kind, base | _words(own),
            frozenset(m.rstrip("+") for m in marks), frozenset(m[:-1] for m in marks if m.endswith("+")))
    return table


TYPES: dict[str, dict[str, PluginType]] = {
    "1.3": _build({**_CORE_BOTH, **_CORE_1_3, **_SCRIPTS, **_git("")}, "1.3"),
    "2.0": _build({**_CORE_BOTH, **_CORE_2_0, **_SCRIPTS, **_git("auth kestraUrl")}, "2.0"),
}


# The plugin types of Kestra's full image (`kestra/kestra`, not `-slim`), by name only: every
# @Plugin class of the plugin repositories Kestra lists in `.plugins`, as the file's header says
# (regenerated by make_plugin_list.py). Core types are those above, per version.
FULL_IMAGE_FILE = Path(__file__).with_name("full_image_plugins.txt")


@functools.lru_cache(maxsize=None)
def full_image_types() -> frozenset[str]:
    lines = FULL_IMAGE_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@functools.lru_cache(maxsize=None)
def stock_types(version: str) -> frozenset[str]:
    """Every plugin type name a stock image of that version resolves (aliases included)."""
    return frozenset(TYPES[version]) | frozenset(ALIASES[version]) | NAME_ONLY


def lookup(version: str, name: str) -> PluginType | None:
    """The property table of a type (following aliases), or None for a type known by name only."""
    return TYPES[version].get(ALIASES[version].get(name, name))


def canonical(version: str, name: str) -> str:
    return ALIASES[version].get(name, name)


# -- the flow model ------------------------------------------------------------------------------

# models/flows/AbstractFlow.java, Flow.java, FlowWithSource.java: the keys of a flow. 1.3 still has
# the deprecated `listeners` and `taskDefaults` (a setter alias of `pluginDefaults`); 2.0 adds `quotas`.
_FLOW_COMMON = ("id namespace revision updated description inputs outputs disabled deleted tenantId "
                "labels variables tasks errors finally afterExecution triggers pluginDefaults "
                "concurrency retry sla checks source")
FLOW_KEYS = {"1.3": _words(_FLOW_COMMON + " listeners taskDefaults workerGroup"),
             "2.0": _words(_FLOW_COMMON + " quotas workerSelector")}

# models/flows/Input.java and the classes of models/flows/input/, keyed by the `type` that selects
# them (@JsonSubTypes). 1.3 has the deprecated ENUM and BOOLEAN and the `name` setter (old id);
# 2.0 adds FORM, `jsonSchema` on JSON, and dropped MULTISELECT `options` and FILE `extension`.
_INPUT_COMMON = "id type description dependsOn required defaults prefill displayName"
_INPUT_OWN_BOTH = {
    "STRING": "validator", "SELECT": "values expression allowCustomValue isRadio autoSelectFirst",
    "INT": "min max", "FLOAT": "min max", "BOOL": "", "DATETIME": "after before", "DATE": "after before",
    "TIME": "after before", "DURATION": "min max", "URI": "", "SECRET": "validator",
    "ARRAY": "itemType", "YAML": "", "EMAIL": "",
}
_INPUT_OWN = {
    "1.3": {**_INPUT_OWN_BOTH, "ENUM": "values", "BOOLEAN": "", "JSON": "",
            "FILE": "allowedFileExtensions extension",
            "MULTISELECT": "values options expression itemType allowCustomValue autoSelectFirst"},
    "2.0": {**_INPUT_OWN_BOTH, "FORM": "inputs", "JSON": "jsonSchema", "FILE": "allowedFileExtensions",
            "MULTISELECT": "values expression itemType allowCustomValue autoSelectFirst"},
}
INPUT_KEYS = {
    version: {kind: _words(_INPUT_COMMON + (" name" if version == "1.3" else "") + " " + own)
              for kind, own in table.items()}
    for version, table in _INPUT_OWN.items()
}
# models/flows/Output.java
OUTPUT_KEYS = _words("id description value type displayName required")
# models/listeners/Listener.java (1.3)
LISTENER_KEYS = _words("description conditions tasks")
# models/flows/PluginDefault.java (1.3); 2.0 flow-level entries are FlowPluginDefault.java, without `forced`
PLUGIN_DEFAULT_KEYS = {"1.3": _words("type forced values"), "2.0": _words("type values")}
# models/flows/Concurrency.java
CONCURRENCY_KEYS = _words("limit behavior")
CONCURRENCY_BEHAVIORS = _words("QUEUE CANCEL FAIL")
# models/tasks/retrys/{AbstractRetry,Constant,Exponential,Random}.java (1.3 keeps a `maxAttempt` setter)
_RETRY = "type maxDuration maxAttempts warningOnRetry behavior"
RETRY_KEYS = {
    "constant": _words(_RETRY + " interval"),
    "exponential": _words(_RETRY + " interval maxInterval delayFactor"),
    "random": _words(_RETRY + " minInterval maxInterval"),
}
RETRY_SETTERS = {"1.3": _words("maxAttempt"), "2.0": frozenset()}
RETRY_REQUIRED = {"constant": ("interval",), "exponential": ("interval", "maxInterval"),
                  "random": ("minInterval", "maxInterval")}
# models/tasks/NamespaceFiles.java
NAMESPACE_FILES_KEYS = _words("enabled include exclude namespaces ifExists folderPerNamespace")
# plugin/core/flow/Dag.java, DagTask
DAG_TASK_KEYS = _words("task dependsOn")
# models/flows/State.java, State.Type
STATES = _words("CREATED SUBMITTED RUNNING PAUSED RESTARTED KILLING SUCCESS WARNING FAILED KILLED "
                "CANCELLED QUEUED RETRYING RETRIED SKIPPED BREAKPOINT RESUBMITTED")
# models/triggers/RecoverMissedSchedules.java
RECOVER_MISSED_SCHEDULES = _words("LAST NONE ALL")
# 2.0 plugin/core/trigger/Flow.java: Dependency, and models/triggers/Window.java
DEPENDENCY_KEYS = _words("namespace flowId states labels when")
WINDOW_KEYS = _words("deadline from to every offset lookback fireOnce")
# models/triggers/multipleflows/MultipleCondition.java, Mode
MODES = _words("ALL ANY AT_LEAST")
# 1.3 plugin/core/trigger/Flow.java: Preconditions, UpstreamFlow, ExecutionFilter, Filter, and
# models/triggers/TimeWindow.java
PRECONDITIONS_KEYS = _words("id timeWindow resetOnSuccess flows where")
UPSTREAM_FLOW_KEYS = _words("namespace flowId states labels")
EXECUTION_FILTER_KEYS = _words("id operand filters")
OPERANDS = _words("AND OR")
FILTER_KEYS = _words("field type value values")
FILTER_FIELDS = _words("FLOW_ID NAMESPACE STATE EXPRESSION")
FILTER_TYPES = _words("EQUAL_TO NOT_EQUAL_TO IN NOT_IN IS_TRUE IS_FALSE IS_NULL IS_NOT_NULL "
                      "STARTS_WITH ENDS_WITH REGEX CONTAINS")
TIME_WINDOW_KEYS = _words("type deadline window windowAdvance startTime endTime")
TIME_WINDOW_TYPES = _words("DAILY_TIME_DEADLINE DAILY_TIME_WINDOW DURATION_WINDOW SLIDING_WINDOW")
