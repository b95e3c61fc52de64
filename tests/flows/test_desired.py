"""What a flow file gives is recognised by its origin hash, which covers the code that reads it."""

from __future__ import annotations

import sys
from pathlib import Path

from kestra_promote.flows import desired


def test_the_code_fingerprint_covers_the_file_of_every_module_it_names():
    desired._code_fingerprint()
    for name in desired._READERS:
        module = sys.modules.get(f"kestra_promote.{name}")
        assert module is not None, f"{name} is not a module of the package"
        assert Path(str(module.__file__)).is_file(), name
