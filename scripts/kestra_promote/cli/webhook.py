"""``kestra-promote webhook``: decide, as JSON, what a Git provider's webhook
request means (promote, ignore, reject).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kestra_promote.errors import SettingsError
from kestra_promote.gates import webhook
from kestra_promote.target.client import Connection
from kestra_promote.cli.common import EXIT_ERROR, EXIT_OK
from kestra_promote.cli.output import Output


def cmd_webhook(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    try:
        headers = json.loads(Path(args.headers).read_text(encoding="utf-8"))
        raw = Path(args.body).read_bytes()
    except (OSError, ValueError, RecursionError) as exc:
        raise SettingsError(f"cannot read the request: {type(exc).__name__}") from None
    if not isinstance(headers, dict):
        raise SettingsError(f"{args.headers} must hold a JSON object of headers")
    secret = args.secret or args.env.get("KESTRA_PROMOTE_WEBHOOK_SECRET")
    decision = webhook.decide(
        headers, None, raw=raw, secret=secret or None, require_signature=args.require_signature,
        target=webhook.Target(branch=None if args.tags else args.branch, tags=args.tags))
    output.json(decision.to_dict())
    return EXIT_ERROR if decision.decision == "reject" else EXIT_OK
