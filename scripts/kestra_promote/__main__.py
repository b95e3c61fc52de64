"""`python -m kestra_promote`: the same as the `kestra-promote` command."""

import sys

from kestra_promote.cli.main import run

sys.exit(run())
