"""`python -m kestra_promote`: the same as the `kestra-promote` command."""

import sys

from .cli import main

sys.exit(main())
