"""kestra-promote: promote Kestra flows from Git to a Kestra instance, plan first.

The public API, functions first: read a source folder, read the target's live state, plan,
apply, render. Everything else is an implementation detail.
"""

__version__ = "0.1.0"

from .apply import apply_plan, validate_on_target  # noqa: E402
from .client import Connection, KestraClient, connect  # noqa: E402
from .errors import (  # noqa: E402
    ApiError,
    KestraError,
    KestraPromoteError,
    SettingsError,
    SourceError,
    TargetRejected,
    TransportError,
)
from .live import read_live_state  # noqa: E402
from .models import (  # noqa: E402
    Action,
    ApplyResult,
    Change,
    DesiredFlow,
    FlowKey,
    LiveFlow,
    LiveState,
    Plan,
    Problem,
    Source,
)
from .plan import plan  # noqa: E402
from .source import read_source  # noqa: E402

__all__ = [
    "Action",
    "ApiError",
    "ApplyResult",
    "Change",
    "Connection",
    "DesiredFlow",
    "FlowKey",
    "KestraClient",
    "KestraError",
    "KestraPromoteError",
    "LiveFlow",
    "LiveState",
    "Plan",
    "Problem",
    "SettingsError",
    "Source",
    "SourceError",
    "TargetRejected",
    "TransportError",
    "__version__",
    "apply_plan",
    "connect",
    "plan",
    "read_live_state",
    "read_source",
    "validate_on_target",
]
