"""A fake Kestra server for tests: the HTTP API of `kestra/API.md`, in memory.

`FakeKestra` holds the state and answers requests; `serve()` puts it on a real HTTP port on
127.0.0.1 (in a thread) and `mock_transport()` lets httpx talk to it in-process.
"""

from .app import FakeKestra, Fault, RecordedRequest
from .http import mock_transport, serve

__all__ = ["FakeKestra", "Fault", "RecordedRequest", "mock_transport", "serve"]
