"""A fake Kestra server for tests: the HTTP API of Kestra 1.3 and 2.0, in memory.

`FakeKestra` holds the state and answers requests as the real controllers do (the `version`
selects 1.3 or 2.0 behaviour); `serve()` puts it on a real HTTP port on 127.0.0.1 (in a thread)
and `mock_transport()` lets httpx talk to it in-process.
"""

from .app import FakeKestra, Fault, RecordedRequest
from .http import mock_transport, serve

__all__ = ["FakeKestra", "Fault", "RecordedRequest", "mock_transport", "serve"]
