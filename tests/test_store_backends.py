"""The store's semantics, one suite run against every backend (GeoPackage and PostGIS):
versions, history, diff, rollback, refused writes, killed writers, the audit log, creation
from the bundled zones, the same data_version for the same zones, and ``zoning store copy``
between backends with history intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import geopandas as gpd
import pytest
import shapely

from geo import schema
from geo.digitise.drafts import Drafts
from geo.digitise.sheets import SheetStore
from geo.store import AuditEvent, StoreError, open_store, store_at
from geo.users import Users
from tests.conftest import REPO
from tests.store_backends import BACKENDS, new_location


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param == "postgis":
        request.applymarker(pytest.mark.postgis)
    return request.param


@pytest.fixture
def location(backend, tmp_path, request):
    return new_location(backend, tmp_path, request)


@pytest.fixture
def store(location):
    return store_at(location)


# Round trip, versions, rollback, unknown versions and the audit entry of a version are in
# tests/test_store.py (run against every backend through conftest's ``new_store``); here are
# the rest of the store's promises, for every backend, and what only exists across backends.








def test_an_empty_store_says_how_to_fill_it(store, sample_zones):
    assert not store.exists() and store.head() == 0
    with pytest.raises(StoreError, match="zoning serve"):
        store.current()
    with pytest.raises(StoreError, match="zoning serve"):
        store.snapshot()
    assert store.save(sample_zones, action="init").version == 1 and store.head() == 1


def test_refused_writes_change_nothing(store, sample_zones):
    store.save(sample_zones, action="init")
    before = store.load()
    broken = sample_zones.copy()
    broken.loc[0, "geometry"] = shapely.Polygon([(116, 40), (116.1, 40.1), (116.1, 40), (116, 40.1)])
    with pytest.raises(schema.ZoneValidationError, match="zone t-square: geometry is invalid"):
        store.save(broken, action="edit", audit=AuditEvent(actor="x", action="edit"))
    with pytest.raises(StoreError, match="changed while this change was prepared"):
        store.save(sample_zones.iloc[:1], action="edit", base_version=0)
    assert [v.version for v in store.versions()] == [1]
    assert store.load().equals(before) and store.audit() == []


def test_audit_entries_carry_their_version_and_cannot_be_changed(store, sample_zones):
    info = store.save(sample_zones, action="import", audit=AuditEvent(actor="alice", action="import",
                                                                       target="livestock_ban", detail={"n": 3}))
    store.append_audit(AuditEvent(actor="bob", action="user.add", target="carol", role="admin"))
    entries = store.audit()
    assert [(e.actor, e.action, e.version) for e in entries] == [("bob", "user.add", None),
                                                                  ("alice", "import", info.version)]
    assert entries[1].detail == {"n": 3} and store.audit(actor="alice") == [entries[1]]
    assert store.audit(before=entries[0].id) == [entries[1]]
    if hasattr(store, "path"):
        import sqlite3

        db, refused = sqlite3.connect(store.path), sqlite3.DatabaseError
    else:
        import psycopg

        db, refused = psycopg.connect(store.url, autocommit=True), psycopg.errors.RaiseException
    with db:
        table = "audit" if hasattr(store, "path") else f"{store.schema}.audit"
        for sql in (f"UPDATE {table} SET actor = 'mallory'", f"DELETE FROM {table}"):
            with pytest.raises(refused, match="append-only"):
                db.execute(sql)
    assert store.audit() == entries


def test_a_writer_killed_mid_write_leaves_the_previous_version_intact(store, location, sample_zones, tmp_path):
    store.save(sample_zones, action="init")
    before = store.load()
    hook = tmp_path / "hook"
    hook.mkdir()
    module = "postgis" if "postgresql" in location else "gpkg"
    (hook / "sitecustomize.py").write_text(
        f"import time, geo.store.{module} as m\n"
        "def _stall():\n    print('writing', flush=True)\n    time.sleep(60)\n"
        "m._before_commit = _stall\n")
    script = textwrap.dedent(f"""
        import shapely
        from geo import schema
        from geo.store import store_at
        from tests.conftest import make_zone
        zones = schema.zones_from_records(
            [make_zone(f"t-{{i}}", shapely.box(116 + i * 1e-3, 40, 116 + i * 1e-3 + 5e-4, 40.001)) for i in range(300)])
        store_at({location!r}).save(zones, action="edit", audit=__import__("geo.store").store.AuditEvent("k", "edit"))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)])}
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert [v.version for v in store.versions()] == [1] and store.audit() == []
    assert store.load().equals(before)
    assert store.save(sample_zones.iloc[:1], action="edit").version == 2  # the writer lock died with it


def test_open_store_creates_from_the_bundled_zones_once(location, sample_zones, tmp_path):
    seed = tmp_path / "zones.geojson"
    seed.write_text(json.dumps(schema.zones_to_geojson(sample_zones), ensure_ascii=False), encoding="utf-8")
    store = open_store(location, seed)
    assert store.current().action == "init" and store.current().source == "zones.geojson"
    open_store(location, seed)
    assert store.head() == 1


@pytest.mark.postgis
def test_the_same_zones_get_the_same_data_version_in_both_backends(sample_zones, tmp_path, request):
    infos = []
    for backend in BACKENDS:
        s = store_at(new_location(backend, tmp_path, request))
        infos.append([s.save(sample_zones, action="init"), s.save(sample_zones.iloc[[0, 2]], action="edit")])
    assert [i.data_version for i in infos[0]] == [i.data_version for i in infos[1]]
    assert [i.summary for i in infos[0]] == [i.summary for i in infos[1]]


def _history(store):
    """Everything a copy must keep: versions (all fields), each version's zones, the audit log."""
    versions = [v.as_dict() for v in store.versions()]
    zones = [schema.zones_to_geojson(store.load(v["version"])) for v in versions]
    audit = [{k: v for k, v in e.as_dict().items() if k != "id"} for e in store.audit()]
    return versions, zones, audit


@pytest.mark.postgis
def test_store_copy_moves_a_geopackage_into_postgis_and_back_with_history(sample_zones, tmp_path, request):
    gpkg = store_at(new_location("gpkg", tmp_path, request))
    gpkg.save(sample_zones, action="init", audit=AuditEvent(actor="cli:root", action="init"))
    edited = sample_zones.copy()
    edited.loc[0, "name_zh"] = "改名"
    gpkg.save(edited, action="edit", author="alice", note="rename")
    gpkg.rollback(1, audit=AuditEvent(actor="bob", action="rollback", target="1"))
    gpkg.append_audit(AuditEvent(actor="bob", action="user.add", detail={"role": "editor"}))
    sheet_sha = _fill_work_tables(gpkg)  # users, a session, a sheet, a published draft (version 4), a pending one
    pg_url = new_location("postgis", tmp_path, request)
    back_path = tmp_path / "back.gpkg"
    cli = [sys.executable, "-m", "api.cli", "store", "copy"]
    for src, dst in ((gpkg.location, pg_url), (pg_url, str(back_path))):
        done = subprocess.run([*cli, src, dst], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "copied 4 version(s)" in done.stdout
    expected, expected_work = _history(gpkg), _work(gpkg)
    assert set(expected_work) == {"users", "sessions", "sheets", "sheet_pages", "drafts", "sites", "webhook_log",
                                 "webhook_claims"}
    assert all(expected_work[t] for t in ("users", "sessions", "sheets", "sheet_pages", "drafts", "sites"))
    for copied in (store_at(pg_url), store_at(back_path)):
        assert _history(copied) == expected
        assert _work(copied) == expected_work
        # The copy works as the original: passwords, tokens, sheets, the next draft number.
        users, drafts = Users(copied), Drafts(copied)
        assert users.check_password("ed", "a long password").name == "ed"
        assert users.by_token(_TOKENS["rita"]).role == "reviewer"
        assert SheetStore(copied).page_png(sheet_sha, 1).startswith(b"\x89PNG")
        again = drafts.save("t-square", _square(0.01), {}, author="ed", role="editor")
        assert again.id == 3 and [d.id for d in drafts.list()] == [3, 2, 1]
    # Into a store that already holds versions: refused (exit 2), nothing written.
    refused = subprocess.run([*cli, gpkg.location, pg_url], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "already holds versions" in refused.stderr
    assert store_at(pg_url).head() == 4


_TOKENS: dict[str, str] = {}


def _square(d: float):
    return shapely.box(116.0 + d, 39.9 + d, 116.1 + d, 40.0 + d)


def _fill_work_tables(store) -> str:
    """Users (one with a password, a session), a sheet, a published and a pending draft."""
    import io

    from PIL import Image

    users = Users(store)
    for name, role in (("ed", "editor"), ("rita", "reviewer")):
        _, _TOKENS[name] = users.add(name, role, password="a long password", actor="test")
    users.start_session(users.get("ed"))
    png = io.BytesIO()
    Image.new("RGB", (40, 30), (215, 48, 31)).save(png, format="PNG")
    sheet = SheetStore(store).add(png.getvalue(), "附图.png", uploaded_by="ed")
    drafts = Drafts(store)
    first = drafts.save("t-square", _square(0.0), {"sheet": {"sha256": sheet.sha256, "filename": "附图.png"}},
                        author="ed", role="editor")
    drafts.review(first.id, reviewer="rita", role="reviewer", approve=True)
    drafts.save("t-square", _square(0.02), {}, author="ed", role="editor")
    from geo.impact import save_sites

    save_sites(gpd.GeoDataFrame({"site_id": ["F1"], "name": ["一号养殖场"], "head": [1200]},
                                geometry=[shapely.Point(116.05, 39.95)], crs="EPSG:4326"), store)
    return sheet.sha256


def _work(store) -> dict:
    """Every work-table row, bytes as bytes."""
    from geo.store.copy import _work_rows

    return {table: [{k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items()} for row in rows]
            for table, rows in _work_rows(store).items()}


@pytest.mark.postgis
def test_postgis_zones_current_is_a_view_a_gis_team_can_query_with_its_gist_index(sample_zones, tmp_path, request):
    import psycopg

    store = store_at(new_location("postgis", tmp_path, request))
    store.save(sample_zones, action="init")
    store.save(sample_zones.iloc[:2], action="edit")
    s = store.schema
    with psycopg.connect(store.url, autocommit=True) as db:
        sql = f"SELECT zone_id FROM {s}.zones_current WHERE ST_Covers(geom, ST_SetSRID(ST_Point(116.05, 39.95), 4326))"
        assert [r[0] for r in db.execute(sql)] == ["t-square"]  # t-repealed was removed in version 2
        assert db.execute(f"SELECT count(*) FROM {s}.zones_by_version WHERE version = 1").fetchone()[0] == 3
        db.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in db.execute("EXPLAIN " + sql))
        assert "zone_history_current_geom" in plan, plan
        geometry_type = db.execute("SELECT type, srid FROM geometry_columns WHERE f_table_schema = %s "
                                   "AND f_table_name = 'zones_current'", (s,)).fetchone()
        assert geometry_type == ("GEOMETRY", 4326)


@pytest.mark.postgis
def test_the_service_answers_from_a_postgis_store_as_from_a_geopackage(sample_zones, tmp_path, request):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    seed = tmp_path / "seed.geojson"
    seed.write_text(json.dumps(schema.zones_to_geojson(sample_zones), ensure_ascii=False), encoding="utf-8")
    answers = []
    for backend in BACKENDS:
        settings = Settings(store=new_location(backend, tmp_path, request), seed=seed)
        with TestClient(create_app(settings)) as client:
            body = client.get("/v1/check", params={"lon": 116.05, "lat": 39.95, "as_of": "2020-06-01"}).json()
            answers.append(body)
    assert answers[0] == answers[1]
    assert {z["zone_id"] for z in answers[0]["inside"]} == {"t-square", "t-repealed"}
