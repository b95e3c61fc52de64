"""Namespace references in Kestra's own test flows: how many a rename rewrites, how many it reports.

Usage: python benchmarks/rename_references.py [FOLDER ...]
(default: tests/fixtures/flows/kestra-2.0/valid and tests/fixtures/flows/kestra-1.3/valid)

Each flow is renamed by the top segment of its own namespace (`io.kestra.tests` with
{"io": "renamed"}), so every namespace under that root is covered, and each namespace-like value
is counted by the property holding it (a row of `references.NAMESPACE_PROPERTIES`, or, for a value
in no such property, the key holding it) and by what renaming does with it:
  rewritten  the value is renamed in place
  reported   not rewritten, with a warning: an expression, a prefix or pattern covering renamed
             namespaces only partly, a block scalar, or a value in no property of the table
  follows    `{{ flow.namespace }}`: it resolves to the renamed namespace, nothing to do
  untouched  a property of the table holding a namespace the rename does not cover
The flow's own `namespace` is not counted.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from kestra_promote.flows import references, renaming  # noqa: E402
from kestra_promote import yamlnodes

CORPORA = {
    "2.0": ROOT / "tests/fixtures/flows/kestra-2.0/valid",
    "1.3": ROOT / "tests/fixtures/flows/kestra-1.3/valid",
}
COLUMNS = ("rewritten", "reported", "follows", "untouched")
_OUTCOME_COLUMN = {renaming.REWRITTEN: "rewritten", renaming.FOLLOWS: "follows"}


def property_of(finding: renaming.Finding) -> str:
    """The table row holding the value ("Subflow task: namespace"), or the key holding it."""
    ref = finding.reference
    if ref is None or ref.prop is None:
        return "(no property of the table) " + re.sub(r"\[\d+\]", "", finding.path).rsplit(".", 1)[-1]
    label = f"{ref.prop.name}: {ref.prop.path}"
    return "pluginDefaults of " + label if ref.what.startswith(("pluginDefaults", "taskDefaults")) \
        else label


def measure(folder: Path) -> Counter[tuple[str, str]]:
    """(property, column) -> how many values, over the flows of ``folder``."""
    counts: Counter[tuple[str, str]] = Counter()
    for path in sorted(folder.glob("*.y*ml")):
        root = yamlnodes.compose_documents(path.read_text(encoding="utf-8"))[0]
        namespace = yamlnodes.scalar_text(yamlnodes.mapping_get(root, "namespace"))
        if not isinstance(root, yamlnodes.yaml.MappingNode) or not namespace:
            continue
        rename = {namespace.split(".")[0]: "renamed"}
        judged = set()
        for finding in renaming.rename_findings(root, rename):
            judged.add(id(finding.node))
            if finding.reference is None and finding.outcome != renaming.LEFT:
                continue  # the flow's own namespace
            column = _OUTCOME_COLUMN.get(finding.outcome, "reported")
            counts[property_of(finding), column] += 1
        for ref in references.references(root):
            if id(ref.node) not in judged:
                counts[property_of(renaming.Finding("", ref.node, ref.path, None, ref)),
                       "untouched"] += 1
    return counts


def table(results: dict[str, Counter[tuple[str, str]]]) -> str:
    names = sorted({name for counts in results.values() for name, _ in counts})
    head = ["property"] + [f"{version} {column}" for version in results for column in COLUMNS]
    rows = [[name] + [str(counts[name, column]) for counts in results.values() for column in COLUMNS]
            for name in names]
    rows.append(["total"] + [str(sum(n for (_, c), n in counts.items() if c == column))
                             for counts in results.values() for column in COLUMNS])
    widths = [max(len(row[i]) for row in [head] + rows) for i in range(len(head))]
    lines = [" | ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))) for row in [head] + rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    corpora = {Path(a).name if Path(a).name != "valid" else Path(a).parent.name: Path(a)
               for a in argv} or CORPORA
    print(table({name: measure(folder) for name, folder in corpora.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
