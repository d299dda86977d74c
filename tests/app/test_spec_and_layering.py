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
            "import app.routes.jobs, app.routes.examples, app.routes.pages, app.openapi, app.routes.global_methods\n"
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


# -- a spec that a generated client can use -------------------------------------------------------

def _spec() -> dict:
    return json.loads(SPEC_PATH.read_text())


def test_method_path_parameter_lists_the_registered_methods():
    from explainers.methods import global_methods, local_methods

    (param,) = [p for p in _spec()["paths"]["/explain/{method}"]["post"]["parameters"] if p["name"] == "method"]
    assert param["schema"]["enum"] == list(local_methods())
    (param,) = [p for p in _spec()["paths"]["/models/{model_id}/global/{method}"]["post"]["parameters"]
                if p["name"] == "method"]
    assert param["schema"]["enum"] == list(global_methods()) and param["schema"]["enum"]
    names = param["schema"]["x-enum-varnames"]
    assert len(set(names)) == len(names) and all(n.isidentifier() for n in names)


def test_each_methods_params_schema_is_a_component_of_explain_request():
    from app.openapi import params_schema_name
    from explainers.methods import all_methods, global_methods, local_methods

    spec = _spec()
    schemas = spec["components"]["schemas"]
    refs = [r["$ref"].rsplit("/", 1)[1] for r in schemas["ExplainRequest"]["properties"]["params"]["anyOf"]]
    assert refs == [params_schema_name(name) for name in local_methods()]
    assert len(set(refs)) == len(refs)
    global_refs = [r["$ref"].rsplit("/", 1)[1] for r in schemas["GlobalRequest"]["properties"]["params"]["anyOf"]]
    assert global_refs == [params_schema_name(name) for name in global_methods()]
    for name, cls in all_methods().items():
        component = schemas[params_schema_name(name)]
        assert set(component["properties"]) == set(cls.Params.model_fields)
        assert component["additionalProperties"] is False
        for field, info in cls.Params.model_fields.items():
            if info.default is not None and not callable(info.default):
                assert component["properties"][field].get("default") == info.default, (name, field)
    assert schemas["IntegratedGradientsParams"]["properties"]["n_steps"]["maximum"] >= 1
    assert "n_masks" in schemas["RiseParams"]["properties"]


def test_get_routes_declare_only_errors_they_can_give():
    spec = _spec()
    for path, ops in spec["paths"].items():
        for verb, op in ops.items():
            codes = set(op["responses"])
            if verb == "get":
                assert not codes & {"413", "415"}, (path, codes)
                query = [p for p in op.get("parameters", []) if p["in"] == "query"]
                assert ("422" in codes) == bool(query), (path, codes)
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")) and path != "/readyz":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, code)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_the_client_package_stands_alone():
    code = ("import sys\nimport xai_client, xai_client.cli\n"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'fastapi', 'app', 'explainers', 'workers', 'redis', 'rq'))))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"xai_client pulls in the service: {out.stdout[:300]}"
