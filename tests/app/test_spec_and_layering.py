"""The exported spec equals the app's; the HTTP layer stays free of torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scripts.export_openapi import SPEC_PATH, current_spec, render

ROOT = Path(__file__).resolve().parents[2]


def test_exported_openapi_equals_the_apps_spec():
    assert SPEC_PATH.read_text() == render(current_spec()), \
        "openapi/openapi.json is stale: run `python scripts/export_openapi.py`"


def test_spec_documents_both_request_kinds_and_stable_operation_ids():
    spec = json.loads(SPEC_PATH.read_text())
    body = spec["paths"]["/explain/{method}"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}
    assert "ExplainRequest" in spec["components"]["schemas"]
    ops = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"explain", "predict", "list_models", "get_model", "list_methods", "healthz", "readyz"} <= ops


def test_routes_and_schemas_do_not_import_torch():
    code = ("import sys\n"
            "import app.schemas, app.deps, app.errors, app.settings, app.middleware\n"
            "import app.routes.explain, app.routes.models, app.routes.methods, app.routes.health\n"
            "import app.main\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision'))\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"torch imported by the HTTP layer: {out.stdout[:300]}"


def test_explainers_do_not_import_the_web_or_queue_layers():
    code = ("import sys\nimport explainers.service, explainers.methods\nexplainers.methods.all_methods()\n"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('fastapi', 'starlette', 'redis', 'rq', 'app', 'workers'))))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_registry_imports_no_method():
    """No import circle: `explainers.registry` knows no method; `explainers.methods` imports them all."""
    code = ("import sys\nimport explainers.registry\n"
            "print(','.join(sorted(m for m in sys.modules if m.startswith('explainers.methods'))))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
