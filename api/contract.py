"""The OpenAPI contract, completed for every operation (the schemathesis test checks it).

FastAPI documents what a route's signature says. This adds what it cannot know:

* every operation may answer a 4xx, and every 4xx body is the app's error shape
  (:data:`ERROR_SCHEMA`): ``{"detail": "message"}`` or FastAPI's validation list
  ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``, plus optional extra
  members (``problems``, ``report``, ``request_id``);
* the answers of the lookup endpoints get their schema (:data:`ANSWER_SCHEMAS`), open to
  added members so new fields do not break the contract;
* parameters whose handler validates more than their type says get their bounds and enums
  (:func:`parameter_schemas`).

It works on the generated document, so endpoints added later get the 4xx part without
doing anything; a new endpoint documents its 200 answer with ``response_model`` /
``responses=`` (or an entry here).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from api.dependencies import MAX_NEAR_M

ERROR_ITEM = {
    "type": "object",
    "required": ["msg"],
    "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
        "type": {"type": "string"},
    },
}
ERROR_SCHEMA = {
    "type": "object",
    "title": "Error",
    "description": "An error: `detail` names the problem (a message, or one item per bad field / row)",
    "required": ["detail"],
    "properties": {
        "detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/components/schemas/ErrorItem"}}]},
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}

_NUMBER_OR_NULL = {"anyOf": [{"type": "number"}, {"type": "null"}]}
_STRING_OR_NULL = {"anyOf": [{"type": "string"}, {"type": "null"}]}
_ZONE = {
    "type": "object",
    "required": ["zone_id", "layer", "name_zh", "accuracy"],
    "properties": {
        "zone_id": {"type": "string"}, "layer": {"type": "string"}, "kind": _STRING_OR_NULL,
        "name_zh": {"type": "string"}, "name_en": _STRING_OR_NULL, "district_code": _STRING_OR_NULL,
        "rules": {"type": "array"}, "source": {"type": "object"},
        "accuracy": {"type": "string", "enum": ["official", "approximate", "schematic", "indicative"]},
        "stated_area_km2": _NUMBER_OR_NULL, "area_km2": _NUMBER_OR_NULL,
    },
}
_POINT = {"type": "object", "required": ["input", "crs", "wgs84"],
          "properties": {"input": {"type": "array", "items": {"type": "number"}}, "crs": {"type": "string"},
                         "wgs84": {"type": "array", "items": {"type": "number"}}}}
_ZONES = {"type": "array", "items": {"$ref": "#/components/schemas/ZoneAnswer"}}
ANSWER_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("/healthz", "get"): {"type": "object", "required": ["status", "zones", "data_version"],
                          "properties": {"status": {"type": "string"}, "zones": {"type": "integer"},
                                         "data_version": {"type": "string"}}},
    ("/v1/check", "get"): {"type": "object", "required": ["point", "as_of", "inside", "nearby", "data_version",
                                                           "disclaimer"],
                           "properties": {"point": _POINT, "as_of": {"type": "string"}, "inside": _ZONES,
                                          "nearby": _ZONES, "not_digitised": {"type": "array"},
                                          "data_version": {"type": "string"}, "disclaimer": {"type": "string"}}},
    ("/v1/check/batch", "post"): {"type": "object", "required": ["data_version", "count", "results"],
                                  "properties": {"data_version": {"type": "string"}, "count": {"type": "integer"},
                                                 "results": {"type": "array"}, "disclaimer": {"type": "string"}}},
    ("/v1/check/site", "post"): {"type": "object", "required": ["site", "zones", "data_version", "disclaimer"],
                                 "properties": {"site": {"type": "object"}, "zones": _ZONES,
                                                "data_version": {"type": "string"}, "disclaimer": {"type": "string"}}},
    ("/v1/zones", "get"): {"type": "object", "required": ["data_version", "count", "zones"],
                           "properties": {"data_version": {"type": "string"}, "count": {"type": "integer"},
                                          "zones": _ZONES, "disclaimer": {"type": "string"}}},
    ("/v1/zones/{zone_id}", "get"): {"type": "object", "required": ["type", "id", "properties", "geometry"],
                                     "properties": {"type": {"const": "Feature"}, "id": {"type": "string"},
                                                    "properties": {"$ref": "#/components/schemas/ZoneAnswer"},
                                                    "geometry": {"type": "object"}}},
}

# Bounds the handlers check themselves (so that one 422 lists every bad parameter), by name.
PARAMETER_BOUNDS: dict[str, dict[str, Any]] = {
    "near": {"minimum": 0, "maximum": MAX_NEAR_M},
}


def parameter_schemas() -> dict[tuple[str, str, str], dict[str, Any]]:
    """Parameter schemas by (path, method, name), for parameters a handler validates itself."""
    from geo.export import FORMATS  # GDAL's Python binding: imported when the document is first asked for

    return {
        # The handler refuses a missing or unknown format with a 400 naming the formats.
        ("/v1/export", "get", "format"): {"required": True, "schema": {"type": "string", "enum": list(FORMATS)}},
    }


def complete_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the error shape on every 4xx, answer schemas and parameter bounds."""
    document = copy.deepcopy(document)
    fixes = parameter_schemas()
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update({"Error": ERROR_SCHEMA, "ErrorItem": ERROR_ITEM, "ZoneAnswer": _ZONE})
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                if code.startswith("4"):
                    response.setdefault("description", "Refused")
                    response["content"] = {"application/json": {"schema": _ERROR_REF}}
            responses.setdefault("4XX", {"description": "Refused: `detail` says why",
                                         "content": {"application/json": {"schema": _ERROR_REF}}})
            answer = ANSWER_SCHEMAS.get((path, method))
            if answer is not None:
                ok = responses.setdefault("200", {"description": "Answer"})
                ok.setdefault("content", {}).setdefault("application/json", {})["schema"] = answer
            for parameter in operation.get("parameters", []):
                if parameter["name"] in PARAMETER_BOUNDS and parameter.get("schema", {}).get("type") == "number":
                    parameter["schema"].update(PARAMETER_BOUNDS[parameter["name"]])
                fix = fixes.get((path, method, parameter["name"]))
                if fix is not None:
                    parameter.update(copy.deepcopy(fix))
    return document


def install_contract(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json (built once, on first request)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if not getattr(app.state, "completed_openapi", None):
            app.state.completed_openapi = complete_openapi(generate())
        return app.state.completed_openapi

    app.openapi = openapi  # type: ignore[method-assign]
