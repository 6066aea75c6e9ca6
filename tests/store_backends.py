"""Stores of every backend for the shared store suite: a GeoPackage file, or a schema in a
throwaway PostGIS server (``tests.postgis_server``; one server per test session, a new
schema per store, so tests never see each other's versions)."""

from __future__ import annotations

import itertools
import os

import pytest

from tests.postgis_server import PostGISUnavailable, postgis_server

BACKENDS = ("gpkg", "postgis")
_schemas = itertools.count(1)


@pytest.fixture(scope="session")
def postgis_url():
    """``postgresql://`` URL of a throwaway PostGIS server; skipped without one locally, failed in CI."""
    try:
        with postgis_server() as server:
            yield f"postgresql://postgres@{server.host}:{server.port}/postgres"
    except PostGISUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostGIS store suite: {exc}")
        pytest.skip(str(exc))


def new_location(backend: str, tmp_path, request) -> str:
    """A location of an empty store of ``backend``."""
    if backend == "gpkg":
        return str(tmp_path / f"zones-{next(_schemas)}.gpkg")
    url = request.getfixturevalue("postgis_url")
    return f"{url}?zoning_schema=t{os.getpid()}_{next(_schemas)}"


def reopen(store):
    """A second store object on the same data (what another process or replica opens)."""
    from geo.store import GeoPackageStore, store_at

    if isinstance(store, GeoPackageStore):
        return GeoPackageStore(store.path)
    return store_at(f"{store.url}{'&' if '?' in store.url else '?'}zoning_schema={store.schema}")


def clients_on_each_backend(zones, tmp_path, request):
    """(backend, TestClient) of a server on a new GeoPackage store and one on a new PostGIS
    store, both seeded with ``zones``: a test runs its requests on each and compares."""
    import json

    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings
    from geo import schema

    seed = tmp_path / "seed.geojson"
    seed.write_text(json.dumps(schema.zones_to_geojson(zones), ensure_ascii=False), encoding="utf-8")
    for backend in ("gpkg", "postgis"):
        with TestClient(create_app(Settings(store=new_location(backend, tmp_path, request), seed=seed))) as client:
            yield backend, client
