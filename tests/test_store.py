"""The store's semantics. Tests taking ``new_store`` run against every backend in
conftest.STORE_BACKENDS; the others are about the GeoPackage file."""

import hashlib
import sys
import textwrap
import time

import pyogrio
import pytest
import shapely

from geo import schema
from geo.store import AuditEvent, StoreError, ZoneStore, open_store
from tests.conftest import kill_writer_mid_write


def file_digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_store_round_trips_every_field_exactly(new_store, sample_zones):
    store = new_store
    store.save(sample_zones, action="init", author="tester", source="fixture")
    back = store.load()
    cols = [c for c in schema.ZONE_COLUMNS if c != "area_km2"]
    assert back[cols].to_dict("records") == sample_zones[cols].to_dict("records")
    assert all(a.equals_exact(b, 0) for a, b in zip(back.geometry, sample_zones.geometry, strict=True))
    # area_km2 is always recomputed geodesically on write: a 0.1° x 0.1° cell at 40N is ~95 km²
    assert back.loc[back.zone_id == "t-square", "area_km2"].item() == pytest.approx(94.9, rel=0.01)


def test_store_is_a_geopackage_gis_tools_can_open(tmp_path, sample_zones):
    store = ZoneStore(tmp_path / "zones.gpkg")
    store.save(sample_zones, action="init")
    layers = {name for name, _ in pyogrio.list_layers(store.path)}
    assert {"zones", "zone_history", "versions", "audit"} <= layers
    assert pyogrio.read_info(store.path, layer="zones")["features"] == 3


def test_versions_record_who_what_and_diff(new_store, sample_zones):
    store = new_store
    first = store.save(sample_zones, action="init", author="a")
    changed = sample_zones[sample_zones.zone_id != "t-repealed"].copy()
    changed.loc[changed.zone_id == "t-square", "name_en"] = "Renamed"
    second = store.save(changed, action="edit", author="b", note="rename")
    assert [v.version for v in store.versions()] == [1, 2]
    assert second.data_version.startswith("v2-") and second.data_version != first.data_version
    assert second.as_dict()["summary"] == {"added": [], "removed": ["t-repealed"], "changed": ["t-square"]}
    assert store.current().author == "b"
    assert len(store.load(1)) == 3 and len(store.load()) == 2


def test_rollback_restores_an_old_version_as_a_new_one(new_store, sample_zones):
    store = new_store
    store.save(sample_zones, action="init")
    store.save(sample_zones.iloc[:1], action="edit")
    info = store.rollback(1)
    assert info.version == 3 and info.action == "rollback"
    assert sorted(store.load().zone_id) == sorted(sample_zones.zone_id)
    assert info.data_version.split("-")[1] == store.version(1).data_version.split("-")[1]


def test_unknown_version_is_a_clear_error(new_store, sample_zones):
    store = new_store
    store.save(sample_zones, action="init")
    with pytest.raises(StoreError, match="no version 7"):
        store.version(7)
    with pytest.raises(StoreError, match="version 7 is not in"):
        store.load(7)


def test_invalid_zones_leave_the_store_untouched(tmp_path, sample_zones):
    store = ZoneStore(tmp_path / "zones.gpkg")
    store.save(sample_zones, action="init")
    before = file_digest(store.path)
    broken = sample_zones.copy()
    broken.loc[0, "geometry"] = shapely.Polygon([(116, 40), (116.1, 40.1), (116.1, 40), (116, 40.1)])
    with pytest.raises(schema.ZoneValidationError, match="zone t-square: geometry is invalid"):
        store.save(broken, action="edit")
    assert file_digest(store.path) == before
    assert [v.version for v in store.versions()] == [1]
    assert {p.name for p in tmp_path.iterdir()} <= {"zones.gpkg", "zones.gpkg-wal", "zones.gpkg-shm"}


def test_writer_killed_mid_write_leaves_previous_version_intact(tmp_path, sample_zones):
    path = tmp_path / "zones.gpkg"
    store = ZoneStore(path)
    store.save(sample_zones, action="init")
    before = store.load()
    script = textwrap.dedent(f"""
        import shapely
        from geo import schema
        from geo.store import ZoneStore
        from tests.conftest import make_zone
        zones = schema.zones_from_records(
            [make_zone(f"t-{{i}}", shapely.box(116 + i * 1e-3, 40, 116 + i * 1e-3 + 5e-4, 40.001)) for i in range(500)])
        ZoneStore({str(path)!r}).save(zones, action="edit")
    """)
    kill_writer_mid_write([sys.executable, "-c", script], tmp_path / "hook")
    assert len(store.load()) == 3 and [v.version for v in store.versions()] == [1]
    assert store.load().equals(before)
    assert store.save(sample_zones.iloc[:1], action="edit").version == 2  # the writer's lock died with it


def test_open_store_creates_from_bundled_geojson_once(tmp_path, sample_zones):
    seed = tmp_path / "zones.geojson"
    import json

    seed.write_text(json.dumps(schema.zones_to_geojson(sample_zones), ensure_ascii=False), encoding="utf-8")
    store = open_store(tmp_path / "var" / "zones.gpkg", seed)
    assert store.current().action == "init" and store.current().source == "zones.geojson"
    mtime = store.path.stat().st_mtime_ns
    time.sleep(0.01)
    open_store(tmp_path / "var" / "zones.gpkg", seed)
    assert store.path.stat().st_mtime_ns == mtime


def test_open_store_without_seed_says_how_to_fix(tmp_path):
    with pytest.raises(StoreError, match="run `zoning build` first"):
        open_store(tmp_path / "zones.gpkg", tmp_path / "missing.geojson")


def test_a_version_and_its_audit_entry_are_written_together(new_store, sample_zones):
    store = new_store
    store.save(sample_zones, action="init")
    user = store.append_audit(AuditEvent(actor="admin", action="user.add", target="li", role="admin",
                                         detail={"role": "editor"}, client="10.0.0.7"))
    info = store.save(sample_zones.iloc[:1], action="import", author="li",
                      audit=AuditEvent(actor="li", role="editor", action="import", target="livestock_ban",
                                       detail={"file": "禁养区.zip"}, client="10.0.0.8"))
    entries = store.audit()
    assert [(e.action, e.version) for e in entries] == [("import", info.version), ("user.add", None)]
    assert entries[0].detail == {"file": "禁养区.zip"} and entries[0].client == "10.0.0.8"
    assert entries[1] == user and user.at.endswith("+00:00")
    assert [e.action for e in store.audit(actor="admin")] == ["user.add"]
    assert [e.id for e in store.audit(limit=1, before=entries[0].id)] == [user.id]
    with pytest.raises(StoreError, match="changed while this change was prepared"):
        store.save(sample_zones, action="import", base_version=1, audit=AuditEvent(actor="li", action="import"))
    assert len(store.audit()) == 2 and store.head() == 2  # the refused write recorded nothing


def test_diff_lists_changes_between_versions(new_store, sample_zones):
    store = new_store
    store.save(sample_zones, action="init")
    changed = sample_zones[sample_zones.zone_id != "t-repealed"].copy()
    changed.loc[changed.zone_id == "t-square", "geometry"] = shapely.box(116.0, 39.9, 116.05, 40.0)
    store.save(changed, action="edit")
    diff = store.diff(1, 2)
    assert [r["zone_id"] for r in diff["removed"]] == ["t-repealed"] and diff["added"] == []
    assert [(r["zone_id"], r["fields"]) for r in diff["changed"]] == [("t-square", ["geometry"])]
    assert diff["changed"][0]["area_after_km2"] == pytest.approx(diff["changed"][0]["area_before_km2"] / 2, rel=1e-3)
