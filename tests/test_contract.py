"""The OpenAPI contract, fuzzed: schemathesis generates valid and invalid requests for every
operation in /openapi.json (so endpoints added later are covered without editing this file)
and checks that none answers 5xx, that every status code is documented and that every body
matches its documented schema and content type.

Bounded: ``MAX_EXAMPLES`` per operation and mode (valid and invalid data); the whole run
takes about a minute and a half on 2 shared cores.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.settings import Settings
from geo.paths import BUNDLED_ZONES

MAX_EXAMPLES = 25
TOKEN = "contract-test-admin-token-000000"
CHECKS = (not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance)


# Built at import: schemathesis reads the operations from the app to parametrize the test.
# The store is a throwaway one; admin is enabled so /v1/admin is reached.
_STORE_DIR = tempfile.TemporaryDirectory(prefix="zoning-contract-")
APP = create_app(Settings(store=Path(_STORE_DIR.name) / "zones.gpkg", seed=BUNDLED_ZONES, admin_token=TOKEN))
fuzzed = schemathesis.openapi.from_asgi("/openapi.json", APP)
fuzzed.config.generation.update(modes=list(schemathesis.GenerationMode))


@pytest.fixture(scope="module", autouse=True)
def app():
    """APP with its lifespan run (the catalog loaded)."""
    with TestClient(APP):
        yield APP


@fuzzed.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_within_its_contract(case):
    logging.getLogger("zoning.api").setLevel(logging.WARNING)  # thousands of request lines otherwise
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    case.validate_response(response, checks=CHECKS)


def test_every_operation_documents_the_error_shape(app):
    document = app.openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            refused = operation["responses"]["4XX"]["content"]["application/json"]["schema"]
            assert refused == {"$ref": "#/components/schemas/Error"}, (method, path)
    lookup = document["paths"]["/v1/check"]["get"]
    assert lookup["responses"]["200"]["content"]["application/json"]["schema"]["required"][:3] == [
        "point", "as_of", "inside"]
    near = next(p for p in lookup["parameters"] if p["name"] == "near")
    assert (near["schema"]["minimum"], near["schema"]["maximum"]) == (0, 50_000)
    export_format = next(p for p in document["paths"]["/v1/export"]["get"]["parameters"] if p["name"] == "format")
    assert export_format["required"] and "gpkg" in export_format["schema"]["enum"]


def test_error_bodies_match_the_documented_shape(app):
    with TestClient(app) as client:
        for answer in (client.get("/v1/check", params={"lon": "x", "lat": 1}),  # FastAPI's validation
                       client.get("/v1/zones/none"),  # NotFoundError
                       client.get("/v1/export"),  # HTTPException
                       client.post("/v1/check/site", content=b"[" * 200_000)):  # InputError
            assert 400 <= answer.status_code < 500
            detail = answer.json()["detail"]
            assert isinstance(detail, str) or all("msg" in item for item in detail)
