"""Benchmark: HTTP requests and wall time of `kestra-promote apply` against the fake server.

Usage: python benchmarks/bench_apply.py [--flows 1000] [--namespaces 10]

Scenarios, each over real HTTP on 127.0.0.1:
  create   every flow is new
  no-op    nothing changed since the last apply
  update   10 flows changed
for two layouts: namespaces under one root (`bench.ns0` ...) and namespaces with separate roots
(`bench0.team` ...), since the live state is read with one export per namespace root.

Expected request counts, by design: reading the target costs one flows export per namespace
root, plus the inventories (list, then one read per promotion source); writes cost one request per
changed object, plus one validation request per 100 changed flows and one inventory write.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_kestra import FakeKestra, serve  # noqa: E402
from kestra_promote.cli import main  # noqa: E402

FLOW = """id: {id}
namespace: {namespace}
description: benchmark flow {n}
labels:
  team: data
inputs:
  - id: day
    type: STRING
    defaults: "2026-01-01"
tasks:
  - id: extract
    type: io.kestra.plugin.core.log.Log
    message: "extract {{{{ inputs.day }}}} ({n})"
  - id: load
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.extract }}}}"
"""


def write_flows(folder: Path, flows: int, namespaces: list[str]) -> None:
    for n in range(flows):
        namespace = namespaces[n % len(namespaces)]
        path = folder / namespace / f"flow_{n:04}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(FLOW.format(id=f"flow_{n:04}", namespace=namespace, n=n))


def _operation(path: str) -> str:
    """The API operation of a request path, without the tenant and identities."""
    path = re.sub(r"^/api/v1/[^/]+", "", path)
    return re.sub(r"^/flows/(?!validate$|export/|import$)[^/]+/[^/]+$", "/flows/{ns}/{id}", path)


def run(folder: Path, fake: FakeKestra, url: str) -> tuple[int, float, Counter]:
    before = len(fake.requests)
    started = time.perf_counter()
    code = main(["apply", str(folder), "--url", url, "--username", "admin@kestra.io",
                 "--password", "Admin1234!"], env={}, stdout=io.StringIO(), stderr=io.StringIO())
    elapsed = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"apply failed with exit code {code}")
    requests = fake.requests[before:]
    kinds = Counter(f"{r.method} {_operation(r.path)}" for r in requests)
    return len(requests), elapsed, kinds


def scenario(title: str, flows: int, namespaces: list[str]) -> None:
    print(f"\n{title}: {flows} flows in {len(namespaces)} namespaces")
    print(f"  {'scenario':<10} {'requests':>8} {'per flow':>9} {'wall (s)':>9}  breakdown")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_flows(folder, flows, namespaces)
        fake = FakeKestra()
        with serve(fake) as url:
            rows = [("create", *run(folder, fake, url)), ("no-op", *run(folder, fake, url))]
            for n in range(0, flows, max(1, flows // 10))[:10]:
                path = next(folder.rglob(f"flow_{n:04}.yml"))
                path.write_text(path.read_text() + "# changed\n")
            rows.append(("update 10", *run(folder, fake, url)))
        for name, count, elapsed, kinds in rows:
            breakdown = ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items()))
            print(f"  {name:<10} {count:>8} {count / flows:>9.3f} {elapsed:>9.2f}  {breakdown}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=10)
    args = parser.parse_args()
    scenario("one root", args.flows, [f"bench.ns{i}" for i in range(args.namespaces)])
    scenario("separate roots", args.flows, [f"bench{i}.team" for i in range(args.namespaces)])


if __name__ == "__main__":
    cli()
