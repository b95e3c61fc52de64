"""kestra-promote: promote Kestra flows from Git to a Kestra instance, plan first.

The public API, functions first: read a source folder, read the target's live state, plan,
apply, render. Everything else is an implementation detail.
"""

__version__ = "0.1.0"

from .apply import apply_locked, apply_plan, validate_on_target  # noqa: E402
from .client import Connection, KestraClient, connect  # noqa: E402
from .config import Config, load_config  # noqa: E402
from .desired import Desired, prepare  # noqa: E402
from .errors import (  # noqa: E402
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
from .lock import Locked  # noqa: E402
from .live import read_live_state  # noqa: E402
from .models import (  # noqa: E402
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
from .plan import plan  # noqa: E402
from .source import Source, read_source  # noqa: E402

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
