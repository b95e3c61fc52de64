"""What the commands share: exit codes, the target's connection (flags, then environment
variables), reading SOURCE with the settings and the flags that override them (``load``),
planning against the target, and the check that the promoted files are those of the commit.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

from kestra_promote.config import CONFIG_FILE, Config, check_name
from kestra_promote.engine.plan import plan as make_plan
from kestra_promote.engine.promotion import Promotion, open_promotion
from kestra_promote.errors import KestraPromoteError, SettingsError
from kestra_promote.flows.desired import Desired, prepare
from kestra_promote.gates import policy_store
from kestra_promote.gates.policy import Policy, effective
from kestra_promote.gates.policy_store import Stored
from kestra_promote.gates.stages import TAG_ROOT
from kestra_promote.git import gitref, gitremote
from kestra_promote.git.blobs import Committed
from kestra_promote.git.gitinfo import read_commit
from kestra_promote.git.origin import origin, uncommitted
from kestra_promote.git.source import Source, read_settings, read_source
from kestra_promote.models import Inventory, Plan
from kestra_promote.target.client import DEFAULT_MAX_BODY, Connection, KestraClient
from kestra_promote.target.live import read_for, read_inventories
from kestra_promote.cli.output import Output

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2  # what each means: cli.main's docstring
ENV = {  # the environment variables behind the target's flags
    "url": "KESTRA_URL",
    "tenant": "KESTRA_TENANT",
    "username": "KESTRA_USERNAME",
    "password": "KESTRA_PASSWORD",
    "token": "KESTRA_API_TOKEN",
    "max_request_bytes": "KESTRA_MAX_REQUEST_BYTES",
}


def connection_from(args: argparse.Namespace, env: Mapping[str, str]) -> Connection | None:
    """Connection settings from flags, then environment variables; None without a URL."""

    def pick(name: str) -> str | None:
        value = getattr(args, name, None)
        return value if value else env.get(ENV[name]) or None

    if args.insecure and args.ca_bundle:  # bad usage, with or without a URL (exit 1)
        from kestra_promote.target.client import INSECURE_WITH_CA

        raise SettingsError(INSECURE_WITH_CA)
    url = pick("url")
    if not url:
        return None
    return Connection(
        url=url,
        tenant=pick("tenant") or "main",
        username=pick("username"),
        password=pick("password"),
        token=pick("token"),
        verify=not args.insecure,
        ca_bundle=args.ca_bundle,
        timeout=args.timeout,
        max_body=_max_body(pick("max_request_bytes")),
    )


def _max_body(value: object) -> int:
    if value is None:
        return DEFAULT_MAX_BODY
    try:
        return int(str(value))
    except ValueError:
        raise SettingsError(f"KESTRA_MAX_REQUEST_BYTES must be a number of bytes, not {value!r}"
                            ) from None


def require(connection: Connection | None) -> Connection:
    if connection is None:
        raise SettingsError("no target: pass --url or set KESTRA_URL")
    return connection


# -- the pipeline -------------------------------------------------------------------------------


@dataclass
class Loaded:
    source: Source
    config: Config
    desired: Desired  # with a target: without the flows of files its inventory knows
    origin: str | None  # the repository (and folder) SOURCE comes from
    from_ref: bool  # read from --ref: exactly a commit
    promotion: Promotion | None = None  # with a target: how to plan against it


@contextlib.contextmanager
def load(args: argparse.Namespace, client: KestraClient | None = None, *,
         review: bool = False) -> Iterator[Loaded]:
    """Read SOURCE (or the tree of --ref), apply the settings and the flags that override them;
    with ``client``, for a plan against that target (see ``promotion``); ``review``: a pull
    request's plan, made as production knows the repository (``open_promotion``)."""
    with contextlib.ExitStack() as stack:
        folder, commit, committed = args.source, None, None
        if args.ref is not None:  # `--ref ""` or `--ref=--` is a mistake, not "no ref"
            ref = args.ref if isinstance(args.ref, str) else ""
            folder, commit, committed = stack.enter_context(gitref.checkout(args.source, ref))
        try:
            yield from _load(args, folder, commit, committed, client, review)
        except KestraPromoteError as error:  # a failure still says which commit it read
            if error.commit is None:
                error.commit = commit or read_commit(Path(folder))
            raise


def _load(args: argparse.Namespace, folder: str, commit: str | None,
          committed: Committed | None, client: KestraClient | None,
          review: bool) -> Iterator[Loaded]:
    config = read_settings(folder, args.config).with_overrides(
        name=check_name(args.name) if args.name else None,
        rename=dict(args.rename) if args.rename else None,
        prune=getattr(args, "prune", None),
        allow_deletions=getattr(args, "allow_deletions", None),
        drift=getattr(args, "drift", None),
    )
    where = origin(args.source)
    if client is not None:
        promotion = open_promotion(client, folder, config, commit=commit, origin=where,
                                   policy=policy_reader(client, getattr(args, "env", {})),
                                   review=review, committed=committed,
                                   stage_tags=functools.partial(gitremote.origin_tags,
                                                                str(args.source), TAG_ROOT))
        yield Loaded(promotion.source, config, promotion.desired, where, commit is not None,
                     promotion)
        return
    source = read_source(folder, commit=commit, config=config, committed=committed)
    yield Loaded(source, config, prepare(source, config), where, commit is not None)


def policy_reader(client: KestraClient, env: Mapping[str, str]) -> Callable[[], Stored]:
    """Production's policy as this command reads it: from the policy namespace
    (KESTRA_PROMOTE_POLICY_NAMESPACE, else system), checked against KESTRA_PROMOTE_POLICY_DIGEST."""
    return functools.partial(policy_store.read_configured, client, env)


def policy_and_inventory(args: argparse.Namespace, client: KestraClient, loaded: Loaded
                         ) -> tuple[Policy | None, Config, Inventory | None]:
    """Production's policy as stored (refused when it does not match its pin), SOURCE's
    settings under it (its state namespace wins), and SOURCE's inventory on the target."""
    stored = policy_reader(client, getattr(args, "env", {}))()
    if stored.mismatch:
        raise SettingsError(f"production's policy: {stored.mismatch}")
    config = effective(stored.policy, loaded.config).config
    own, _ = read_inventories(client, config.state_namespace, config.name)
    return stored.policy, config, own


def compute_plan(client: KestraClient, loaded: Loaded, adopt: bool = False,
                 dirty: bool = False) -> Plan:
    if loaded.promotion is not None:
        return loaded.promotion.plan(adopt=adopt, dirty=dirty)
    live = read_for(client, loaded.desired, loaded.config)
    plan = make_plan(loaded.desired, live, loaded.config, commit=loaded.source.commit,
                     origin=loaded.origin, adopt=adopt)
    return dataclasses.replace(plan, dirty=dirty)


def check_committed(args: argparse.Namespace, loaded: Loaded, output: Output) -> dict[str, bool]:
    """Refuse files that differ from the commit (the history would claim the commit holds
    them), unless --allow-dirty; what to add to the run's history record."""
    if loaded.from_ref or (loaded.source.commit is None and loaded.origin is None):
        return {}  # exactly a commit, or not a Git checkout (nothing claimed)
    # a repository without a commit yet: every file it reads is uncommitted
    read = loaded.source.paths
    config = loaded.source.config
    # what the promotion would read too: a flow deleted or added there, the settings, the
    # ignore rules
    scopes = [(folder, (".yml", ".yaml")) for folder in config.flows]
    scopes += [(entry.source, ()) for entry in config.namespace_files]
    scopes += [(CONFIG_FILE, ()), (".kestraignore", ())]
    changed = uncommitted(loaded.source.root, read, scopes)
    if changed is None:
        output.note("Warning: cannot tell whether SOURCE has uncommitted changes (no git "
                    "command): the history records its commit as promoted")
        return {}
    if not changed:
        return {}
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    if not args.allow_dirty:
        differ = (f"differ from commit {loaded.source.commit[:12]}" if loaded.source.commit
                  else "are not committed: the repository has no commit yet")
        raise SettingsError(f"{len(changed)} file(s) the promotion reads {differ} ({shown}): "
                            "commit them, or pass --allow-dirty (the history then records the "
                            "run as dirty)")
    output.note(f"Warning: promoting {len(changed)} uncommitted file(s) ({shown}); the history "
                "records the run as dirty")
    return {"dirty": True}
