"""kestra-promote: promote Kestra flows from Git to a Kestra instance, plan first.

The public API, functions first: read a source folder, read the target's live state, plan,
apply, render. Everything else is an implementation detail.
"""

from .version import __version__
from .engine.apply import apply_locked, apply_plan, validate_on_target
from .target.client import Connection, KestraClient, connect
from .config import Config, load_config
from .flows.desired import Desired, prepare
from .errors import (
    ApiError,
    KestraError,
    KestraPromoteError,
    PlanRefused,
    SettingsError,
    SourceError,
    StalePlan,
    TargetRejected,
    TransportError,
    UnexpectedResponse,
)
from .target.lock import Locked
from .target.live import read_live_state
from .models import (
    Action,
    ApplyResult,
    Change,
    DesiredFile,
    DesiredFlow,
    FileKey,
    FlowKey,
    Inventory,
    LiveFile,
    LiveFlow,
    LiveState,
    Plan,
    Problem,
)
from .engine.plan import plan
from .git.source import Source, read_source

__all__ = [
    "Action",
    "ApiError",
    "ApplyResult",
    "Change",
    "Config",
    "Connection",
    "Desired",
    "DesiredFile",
    "DesiredFlow",
    "FileKey",
    "FlowKey",
    "Inventory",
    "KestraClient",
    "KestraError",
    "KestraPromoteError",
    "LiveFile",
    "LiveFlow",
    "LiveState",
    "Locked",
    "Plan",
    "PlanRefused",
    "Problem",
    "SettingsError",
    "Source",
    "SourceError",
    "StalePlan",
    "TargetRejected",
    "TransportError",
    "UnexpectedResponse",
    "__version__",
    "apply_locked",
    "apply_plan",
    "connect",
    "load_config",
    "plan",
    "prepare",
    "read_live_state",
    "read_source",
    "validate_on_target",
]
