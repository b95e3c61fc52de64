"""Benchmark: kestra-promote and a per-flow promoter side by side, against the fake Kestra.

Usage: python benchmarks/bench_scale.py [--flows 1000 10000] [--roots 1 10] [--latency 0.02]
                                        [--only kestra-promote|peer] [--kestra 2.0.3]

Each tool runs as its own process (so its CPU time and peak memory are its own) against the fake
server, which runs in this process over real HTTP on 127.0.0.1. Per scenario:
  cold plan  kestra-promote plan against an empty target, no inventory: every file parsed
  create     every flow is new
  no-op      nothing changed since the last run
  plan       kestra-promote plan (the peer: its read pass, writing nothing)
  update 10  10 flows changed
  prune 10   10 flow files deleted, and their flows deleted from the target
and per tool: requests, writes (requests that change state), the largest request body, wall
time, CPU time (user + system) and peak memory (RSS). The floor, measured in the same run, is a
process that only reads every flow file and composes its YAML once (libyaml when available),
as any tool that looks at each file must; `plan` and `cold plan` are also shown as the ratio of
their CPU time to the floor's. `--latency` makes every answer of the
server wait that long, to show what a real network's round trips cost. `--kestra` picks the
version the fake server follows (2.0.3 by default; flows are imported in bulk on 1.x only).

The flows live in ten namespaces under one root (`bench.ns0` ...) or under ten roots
(`bench0.team` ...).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fake_kestra import FakeKestra, serve  # noqa: E402

USER, PASSWORD = "admin@kestra.io", "Admin1234!"
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


@dataclass
class Measure:
    requests: int
    writes: int
    largest_body: int
    wall: float
    cpu: float
    peak_mb: float
    kinds: Counter


def write_flows(folder: Path, flows: int, namespaces: list[str]) -> None:
    for n in range(flows):
        namespace = namespaces[n % len(namespaces)]
        path = folder / namespace / f"flow_{n:05}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(FLOW.format(id=f"flow_{n:05}", namespace=namespace, n=n))


def _operation(path: str) -> str:
    """The API operation of a request path, without the tenant and identities."""
    path = re.sub(r"^/api/v1/(?!configs$)[^/]+", "", path)  # the tenant
    path = re.sub(r"/kv/kestra-promote[.-][^/]*$", "/kv/{key}", path)
    return re.sub(r"^/flows/(?!validate$|export/|import$|delete/)[^/]+/[^/]+$",
                  "/flows/{ns}/{id}", path)


# Started from this (large) process, a child's peak memory would count the pages it shares with
# it before exec; a small launcher starts the command instead, and reports its child's usage.
LAUNCHER = """
import json, resource, subprocess, sys
code = subprocess.call(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=open(sys.argv[1], "w"))
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps([code, usage.ru_utime + usage.ru_stime, usage.ru_maxrss]))
"""


def run(command: list[str], fake: FakeKestra) -> Measure:
    """Run ``command`` as a child process; what it cost, on its side and on the server's."""
    before = len(fake.requests)
    with tempfile.NamedTemporaryFile() as stderr:  # a file: a full pipe would block the child
        started = time.perf_counter()
        launched = subprocess.run([sys.executable, "-c", LAUNCHER, stderr.name, *command],
                                  capture_output=True, text=True, check=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")})
        wall = time.perf_counter() - started
        code, cpu, peak_kb = json.loads(launched.stdout)
        error = Path(stderr.name).read_text(errors="replace")
    if code not in (0, 2):  # 2: plan --detailed-exitcode, changes
        raise SystemExit(f"{' '.join(command[:4])} failed ({code}):\n{error[-2000:]}")
    requests = fake.requests[before:]
    return Measure(
        requests=len(requests), writes=sum(r.is_write for r in requests),
        largest_body=max((len(r.body or b"") for r in requests), default=0), wall=wall,
        cpu=cpu, peak_mb=peak_kb / 1024,
        kinds=Counter(f"{r.method} {_operation(r.path)}" for r in requests))


PARALLEL: list[str] = []  # --parallel N, passed on to kestra-promote apply


def commands(tool: str, folder: Path, url: str, scenario: str) -> list[str]:
    if tool == "peer":
        extra = (["--prune"] if scenario == "prune 10" else
                 ["--plan"] if scenario in ("plan", "cold plan") else [])
        return [sys.executable, str(ROOT / "benchmarks" / "peer.py"), str(folder), url, USER,
                PASSWORD, *extra]
    verb = "plan" if scenario in ("plan", "cold plan") else "apply"
    extra = ["--prune", "--allow-deletions", "10"] if scenario == "prune 10" else []
    return [sys.executable, "-m", "kestra_promote", verb, str(folder), "--url", url,
            "--username", USER, "--password", PASSWORD, "--allow-dirty", *extra,
            *(PARALLEL if verb == "apply" else [])]


# The floor: start Python, read every flow file and compose its YAML, nothing else.
FLOOR = """
import sys, yaml
from pathlib import Path
loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
for path in sorted(Path(sys.argv[1]).rglob("*.yml")):
    yaml.compose(path.read_bytes().decode("utf-8"), Loader=loader)
"""


SCENARIOS = ("cold plan", "create", "no-op", "plan", "update 10", "prune 10")


def change(folder: Path, scenario: str, flows: int) -> None:
    picked = [n for n in range(0, flows, max(1, flows // 10))][:10]
    for n in picked:
        path = next(folder.rglob(f"flow_{n:05}.yml"))
        if scenario == "update 10":
            path.write_text(path.read_text() + "# changed\n")
        elif scenario == "prune 10":
            path.unlink()


def bench(tool: str, flows: int, roots: int, latency: float, version: str
          ) -> dict[str, Measure]:
    namespaces = ([f"bench.ns{i}" for i in range(10)] if roots == 1 else
                  [f"bench{i % roots}.team{i // roots}" for i in range(10)])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "flows"
        write_flows(folder, flows, namespaces)
        fake = FakeKestra(version=version)
        with serve(fake) as url:
            fake.latency = latency
            if tool == "kestra-promote":
                results["floor"] = run([sys.executable, "-c", FLOOR, str(folder)], fake)
            for scenario in SCENARIOS:
                change(folder, scenario, flows)
                results[scenario] = run(commands(tool, folder, url, scenario), fake)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--roots", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--only", choices=("kestra-promote", "peer"))
    parser.add_argument("--breakdown", action="store_true", help="requests per operation")
    parser.add_argument("--kestra", default="2.0.3", metavar="VERSION",
                        help="the Kestra version the fake server follows")
    parser.add_argument("--parallel", type=int, metavar="N",
                        help="kestra-promote apply --parallel N (default: its own default)")
    args = parser.parse_args()
    if args.parallel:
        PARALLEL[:] = ["--parallel", str(args.parallel)]
    tools = [args.only] if args.only else ["kestra-promote", "peer"]
    print(f"Kestra {args.kestra} (fake); latency per request: {args.latency * 1000:.0f} ms; "
          f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    header = (f"{'flows':>6} {'roots':>5} {'scenario':<10} {'tool':<15} {'requests':>8} "
              f"{'writes':>6} {'max body':>9} {'wall s':>7} {'cpu s':>6} {'peak MB':>7}")
    print(header)
    print("-" * len(header))
    for flows in args.flows:
        for roots in args.roots:
            measured = {tool: bench(tool, flows, roots, args.latency, args.kestra)
                        for tool in tools}
            for scenario in ("floor", *SCENARIOS):
                for tool in tools:
                    if scenario not in measured[tool]:
                        continue
                    m = measured[tool][scenario]
                    print(f"{flows:>6} {roots:>5} {scenario:<10} {tool:<15} {m.requests:>8} "
                          f"{m.writes:>6} {m.largest_body:>9} {m.wall:>7.2f} {m.cpu:>6.2f} "
                          f"{m.peak_mb:>7.0f}")
                    floor = measured[tool].get("floor")
                    if floor and scenario in ("plan", "cold plan"):
                        print(f"{'':>6} {'':>5} {'':<10} {'':<15} CPU {m.cpu / floor.cpu:.2f}x "
                              f"the floor")
                    if args.breakdown:
                        print("        " + ", ".join(f"{k} x{v}"
                                                     for k, v in sorted(m.kinds.items())))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
