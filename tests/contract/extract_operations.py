"""Regenerate openapi_operations.json: the Kestra API operations the client relies on.

Usage: python tests/contract/extract_operations.py [OPENAPI_DIR]

OPENAPI_DIR holds Kestra's official OpenAPI specs (kestra-1.3.0.yml, kestra-2.0.0-SNAPSHOT.yml,
from kestra-io/client-sdk, file kestra-ee.yml at those versions). For each operation listed in
USED below, the fixture keeps what a request must match: method, path template, parameter
names, request content types and multipart part names. Add an entry to USED (or USED_IN, for
an endpoint of one version only) when the client starts using a new endpoint, then run this
script again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_SPECS = HERE.parents[2] / "shared" / "kestra" / "openapi"
SPECS = {"1.3.0": "kestra-1.3.0.yml", "2.0.0-SNAPSHOT": "kestra-2.0.0-SNAPSHOT.yml"}
USED = [
    ("GET", "/api/v1/configs"),
    ("POST", "/api/v1/{tenant}/flows"),
    ("GET", "/api/v1/{tenant}/flows/{namespace}/{id}"),
    ("PUT", "/api/v1/{tenant}/flows/{namespace}/{id}"),
    ("DELETE", "/api/v1/{tenant}/flows/{namespace}/{id}"),
    ("GET", "/api/v1/{tenant}/flows/{namespace}/{id}/revisions"),
    ("GET", "/api/v1/{tenant}/flows/export/by-query"),
    ("POST", "/api/v1/{tenant}/flows/import"),
    ("DELETE", "/api/v1/{tenant}/flows/delete/by-ids"),
    ("POST", "/api/v1/{tenant}/flows/validate"),
    ("GET", "/api/v1/{tenant}/namespaces/{namespace}/files"),
    ("POST", "/api/v1/{tenant}/namespaces/{namespace}/files"),
    ("DELETE", "/api/v1/{tenant}/namespaces/{namespace}/files"),
    ("GET", "/api/v1/{tenant}/namespaces/{namespace}/files/directory"),
    ("GET", "/api/v1/{tenant}/namespaces/{namespace}/files/export"),
    ("GET", "/api/v1/{tenant}/namespaces/{namespace}/kv/{key}"),
    ("PUT", "/api/v1/{tenant}/namespaces/{namespace}/kv/{key}"),
    ("DELETE", "/api/v1/{tenant}/namespaces/{namespace}/kv/{key}"),
    ("POST", "/api/v1/{tenant}/executions/{namespace}/{id}"),
    ("GET", "/api/v1/{tenant}/executions/{executionId}"),
    ("GET", "/api/v1/{tenant}/executions/search"),
    ("GET", "/api/v1/{tenant}/kv"),
]
# operations of one version only: the client picks the path by the server's major version
USED_IN = {
    "1.3.0": [("DELETE", "/api/v1/{tenant}/executions/{executionId}/kill")],
    "2.0.0-SNAPSHOT": [("DELETE", "/api/v1/{tenant}/executions/{executionId}/actions/kill")],
}
OUTSIDE_SPEC = [
    {"method": "GET", "path": "/ping",
     "why": "the web server's liveness answer ('pong', no auth); not part of the API spec"},
]


def _operation(spec: dict, method: str, path: str) -> dict:
    op = spec["paths"][path][method.lower()]
    params = [p for p in op.get("parameters", []) if isinstance(p, dict)]
    content = (op.get("requestBody") or {}).get("content", {})
    parts = sorted({name for media in content.values()
                    for name in ((media.get("schema") or {}).get("properties") or {})})
    return {
        "method": method,
        "path": path,
        "operationId": op.get("operationId"),
        "path_params": sorted(p["name"] for p in params if p.get("in") == "path"),
        "query_params": sorted(p["name"] for p in params if p.get("in") == "query"),
        "content_types": sorted(content),
        "multipart_parts": parts,
    }


def extract(spec_dir: Path) -> dict:
    specs = {}
    for version, name in SPECS.items():
        spec = yaml.load((spec_dir / name).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        specs[version] = [_operation(spec, method, path)
                          for method, path in USED + USED_IN.get(version, [])]
    return {
        "provenance": "Extracted by tests/contract/extract_operations.py from Kestra's official "
                      "OpenAPI specs (kestra-io/client-sdk kestra-ee.yml, versions 1.3.0 and "
                      "2.0.0-SNAPSHOT); the open-source server serves a subset of these paths "
                      "with the same shapes.",
        "specs": specs,
        "outside_spec": OUTSIDE_SPEC,
    }


def main() -> None:
    spec_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SPECS
    out = HERE / "openapi_operations.json"
    out.write_text(json.dumps(extract(spec_dir), indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
