"""A per-flow promoter, the way Kestra's own tools work (SyncFlows, kestractl): the peer that
`bench_scale.py` measures kestra-promote against.

Usage: python benchmarks/peer.py FOLDER URL USERNAME PASSWORD [--prune] [--plan]

For every `.yml` file of FOLDER: one GET of the flow, then a create (404) or an update (the
source differs); nothing when they are equal. `--prune` then lists each namespace it promoted and
deletes the flows Git no longer holds; `--plan` only reads. No validation first, no ordering, no
revert: a failure stops it where it is.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _comparable(source: str) -> str:
    """What Kestra compares: line endings unified, no `revision:` line."""
    lines = source.replace("\r\n", "\n").split("\n")
    return "\n".join(line for line in lines if not line.startswith("revision:")).strip()


def main(argv: list[str]) -> int:
    folder, url, username, password = argv[:4]
    prune, plan = "--prune" in argv, "--plan" in argv
    api = f"{url.rstrip('/')}/api/v1/main"
    wanted: dict[str, set[str]] = {}
    with httpx.Client(auth=(username, password), timeout=60) as client:
        for path in sorted(Path(folder).rglob("*.yml")):
            source = path.read_text(encoding="utf-8")
            flow = yaml.load(source, Loader=Loader)
            namespace, flow_id = flow["namespace"], flow["id"]
            wanted.setdefault(namespace, set()).add(flow_id)
            where = f"{api}/flows/{quote(namespace, safe='')}/{quote(flow_id, safe='')}"
            found = client.get(where, params={"source": "true"})
            headers = {"Content-Type": "application/x-yaml"}
            if found.status_code == 404:
                if not plan:
                    client.post(f"{api}/flows", content=source, headers=headers).raise_for_status()
            elif _comparable(found.json().get("source", "")) != _comparable(source):
                if not plan:
                    client.put(where, content=source, headers=headers).raise_for_status()
        if prune and not plan:
            for namespace, ids in sorted(wanted.items()):
                listed = client.get(f"{api}/flows/{quote(namespace, safe='')}")
                listed.raise_for_status()
                for flow in listed.json():
                    if flow["id"] not in ids:
                        client.delete(f"{api}/flows/{quote(namespace, safe='')}/"
                                      f"{quote(flow['id'], safe='')}").raise_for_status()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
