"""The OpenAPI spec: FastAPI's, plus what it cannot see, built from the method registry at app creation.

- each method's params schema as a component (`GradcamParams`, ...) and `ExplainRequest.params`
  as `anyOf` those, so that a generated client has typed params;
- the `method` path parameter as an enum of the registered names (with `x-enum-varnames`, since
  names like `gradcam++` are no identifiers): local methods on `/explain/{method}`, global ones on
  `/models/{model_id}/global/{method}`, whose `GlobalRequest.params` is `anyOf` their params;
- FastAPI's automatic 422 (with its own `HTTPValidationError` body, which this app never sends)
  replaced by the contract's error body where a parameter can fail validation, dropped elsewhere.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.schemas import ErrorBody, ExplainRequest

REF = "#/components/schemas/{model}"


def params_schema_name(method: str) -> str:
    """`gradcam++` -> `GradcamPlusPlusParams`, `integrated_gradients` -> `IntegratedGradientsParams`."""
    words = re.split(r"[^0-9a-zA-Z]+", method.replace("+", " plus "))
    return "".join(w[:1].upper() + w[1:] for w in words if w) + "Params"


def enum_varname(method: str) -> str:
    """`gradcam++` -> `GRADCAM_PLUS_PLUS`: an identifier for generated enums."""
    words = re.split(r"[^0-9a-zA-Z]+", method.replace("+", " plus "))
    name = "_".join(w.upper() for w in words if w)
    return name if name[:1].isalpha() else f"M_{name}"


def _hoist(schema: dict[str, Any], prefix: str, schemas: dict[str, Any]) -> dict[str, Any]:
    """Move a JSON schema's `$defs` into the components (prefixed) and point its refs there."""
    schema = dict(schema)
    defs = schema.pop("$defs", {})
    renames = {f"#/$defs/{name}": REF.format(model=f"{prefix}{name}") for name in defs}

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: renames.get(v, v) if k == "$ref" else fix(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    for name, sub in defs.items():
        schemas[f"{prefix}{name}"] = fix(sub)
    return fix(schema)  # type: ignore[no-any-return]


def _method_params(methods: list[dict[str, Any]], schemas: dict[str, Any]) -> list[dict[str, str]]:
    refs = []
    for info in methods:
        name = params_schema_name(info["name"])
        schema = _hoist(info["params"], name, schemas)
        schema["title"] = name
        about = (schema.get("description") or "").strip()
        schema["description"] = f"Params of `{info['name']}`" + (f": {about}" if about else ".")
        schemas[name] = schema
        refs.append({"$ref": REF.format(model=name)})
    return refs


def _query_params(spec: dict[str, Any]) -> None:
    """A query parameter is given or not: it has no null value (FastAPI writes `X | None` as anyOf with null)."""
    for path in spec["paths"].values():
        for op in path.values():
            for param in op.get("parameters", []):
                schema = param.get("schema", {})
                variants = [v for v in schema.get("anyOf", []) if v.get("type") != "null"]
                if param.get("in") == "query" and "anyOf" in schema and len(variants) == 1:
                    schema.pop("anyOf")
                    schema.update(variants[0])
                    if schema.get("default", 0) is None:
                        schema.pop("default")


def _responses(spec: dict[str, Any]) -> None:
    error_ref = REF.format(model="ErrorBody")
    for path in spec["paths"].values():
        for op in path.values():
            responses = op.get("responses", {})
            for code, response in responses.items():  # errors are JSON, whatever the route's own media type
                content = response.get("content", {})
                if code[:1] in "45" and "application/json" not in content and \
                        any(v.get("schema", {}).get("$ref") == error_ref for v in content.values()):
                    response["content"] = {"application/json": {"schema": {"$ref": error_ref}}}
            auto = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if auto.get("$ref", "").endswith("/HTTPValidationError"):
                params = op.get("parameters", [])
                constrained = "requestBody" in op or not all(
                    p["schema"].get("type") == "string" and set(p["schema"]) <= {"type", "title", "description"}
                    for p in params)
                if constrained:
                    responses["422"] = {"description": "invalid params, target, input or query", "content": {
                        "application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}}}
                else:
                    del responses["422"]
    schemas = spec.get("components", {}).get("schemas", {})
    if REF.format(model="HTTPValidationError") not in json.dumps(spec["paths"]):  # no route refers to them
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)


def _method_enum(spec: dict[str, Any], path: str, names: list[str], description: str) -> None:
    for parameter in spec["paths"][path]["post"].get("parameters", []):
        if parameter["name"] == "method":
            parameter["schema"] = {"type": "string", "title": "Method", "enum": names,
                                   "x-enum-varnames": [enum_varname(n) for n in names]}
            parameter["description"] = description


def build_openapi(app: FastAPI, methods: list[dict[str, Any]]) -> dict[str, Any]:
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    extra = ExplainRequest.model_json_schema(ref_template=REF)
    schemas.update(extra.pop("$defs", {}))
    schemas.setdefault("ErrorBody", ErrorBody.model_json_schema(ref_template=REF))
    local = [m for m in methods if m.get("scope", "local") == "local"]
    global_ = [m for m in methods if m.get("scope") == "global"]
    refs = _method_params(local, schemas)
    params = extra["properties"]["params"]
    extra["properties"]["params"] = {"anyOf": refs, "description": params.get("description", ""),
                                     "title": params.get("title", "Params")}
    schemas["ExplainRequest"] = extra
    _method_enum(spec, "/explain/{method}", [m["name"] for m in local], "a registered local method (see /methods)")
    if "GlobalRequest" in schemas and global_:
        body = schemas["GlobalRequest"]["properties"]
        body["params"] = {"anyOf": _method_params(global_, schemas), "title": "Params",
                          "description": body["params"].get("description", "")}
        _method_enum(spec, "/models/{model_id}/global/{method}", [m["name"] for m in global_],
                     "a registered global method (see /methods, scope global)")
    _responses(spec)
    _query_params(spec)
    _security(spec)
    return spec


PUBLIC = ("/healthz", "/readyz")


def _security(spec: dict[str, Any]) -> None:
    """API keys are optional (the operator turns them on): each route but the probes takes one, or none."""
    spec["components"]["securitySchemes"] = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": "an API key (keys on)"},
        "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "an API key (keys on)"},
    }
    for path, ops in spec["paths"].items():
        if path in PUBLIC:
            continue
        for op in ops.values():
            op["security"] = [{}, {"bearerAuth": []}, {"apiKeyHeader": []}]
