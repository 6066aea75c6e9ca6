"""The GeoPackage store's layout: what GIS tools see, the migration of the earlier layout,
the append-only audit log and the history listing."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pandas as pd
import pyogrio
import pytest
import shapely

from geo import schema
from geo.store import AuditEvent, ZoneStore, content_hash, open_store, with_computed_area
from tests.conftest import REPO, make_zone


def _zones(n: int = 5, **overrides):
    return schema.zones_from_records([
        make_zone(f"t-{i}", shapely.box(116 + i * 0.01, 40, 116 + i * 0.01 + 0.005, 40.005), **overrides)
        for i in range(n)])


def _ogrinfo(*args: str) -> str:
    if shutil.which("ogrinfo") is None:
        if os.environ.get("CI"):
            pytest.fail("ogrinfo (gdal-bin) is required in CI")
        pytest.skip("ogrinfo (gdal-bin) is not installed")
    result = subprocess.run(["ogrinfo", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


# ----------------------------------------------------------------------------- GIS clients
def _store_with_updates(tmp_path):
    """Four versions: init, a moved zone, a removed and an added zone, a rollback."""
    store = ZoneStore(tmp_path / "zones.gpkg")
    zones = _zones()
    store.save(zones, action="init")
    moved = zones.copy()
    moved.loc[moved.zone_id == "t-1", "geometry"] = shapely.box(117.0, 41.0, 117.01, 41.01)
    store.save(moved, action="edit")
    fewer = moved[moved.zone_id != "t-2"]
    added = schema.zones_from_records([make_zone("t-new", shapely.box(115.5, 39.5, 115.6, 39.6))])
    store.save(pd.concat([fewer, added], ignore_index=True), action="edit")
    store.rollback(2)
    return store


def test_pyogrio_reads_the_current_layer_as_the_store_serves_it(tmp_path):
    store = _store_with_updates(tmp_path)
    served = store.load().sort_values("zone_id").reset_index(drop=True)
    layer = pyogrio.read_dataframe(store.path, layer="zones").sort_values("zone_id").reset_index(drop=True)
    cols = [c for c in schema.ZONE_COLUMNS if c != "rules"]
    assert layer[cols].astype(object).where(layer[cols].notna(), None).to_dict("records") == \
        served[cols].astype(object).where(served[cols].notna(), None).to_dict("records")
    assert [json.loads(r) for r in layer["rules"]] == list(served["rules"])
    assert all(a.equals_exact(b, 0) for a, b in zip(layer.geometry, served.geometry, strict=True))
    info = pyogrio.read_info(store.path, layer="zones")
    assert info["features"] == 5 and info["crs"] == "EPSG:4326"
    assert tuple(info["total_bounds"]) == pytest.approx(tuple(served.total_bounds))


@pytest.mark.gdal
def test_ogrinfo_opens_the_layer_with_extent_and_a_consistent_spatial_index(tmp_path):
    store = _store_with_updates(tmp_path)
    summary = _ogrinfo("-so", str(store.path), "zones")
    assert "Feature Count: 5" in summary
    x0, y0, x1, y1 = store.load().total_bounds
    assert f"Extent: ({x0:.6f}, {y0:.6f}) - ({x1:.6f}, {y1:.6f})" in summary
    assert "HasSpatialIndex (Integer) = 1" in _ogrinfo(str(store.path), "-sql", "SELECT HasSpatialIndex('zones', 'geom')")
    # The R-tree follows every update: a window finds exactly the zones the store says are there.
    for window, expected in [((116.99, 40.99, 117.02, 41.02), {"t-1"}),  # where t-1 was moved to
                             ((116.009, 39.99, 116.016, 40.01), set()),  # where t-1 was before
                             ((115.4, 39.4, 115.7, 39.7), set())]:  # t-new, rolled back
        listing = _ogrinfo(str(store.path), "zones", "-spat", *map(str, window), "-fields=YES", "-geom=NO")
        assert {line.split("=")[1].strip() for line in listing.splitlines() if "zone_id (String)" in line} == expected
    assert "t-new" not in _ogrinfo(str(store.path), "zones", "-geom=NO")
    history = _ogrinfo(str(store.path), "zone_history", "-where", "valid_from <= 3 AND (valid_to IS NULL OR valid_to > 3)",
                       "-geom=NO")
    assert history.count("zone_id (String) =") == 5 and "zone_id (String) = t-new" in history


# ----------------------------------------------------------------------------- migration
def write_old_layout(path, versions: list) -> list[str]:
    """A store as the snapshot-per-version code wrote it (``zones``, ``zones_v0001``…,
    ``versions``, all by GDAL); returns each version's data_version."""
    rows, data_versions = [], []
    for number, zones in enumerate(versions, start=1):
        zones = with_computed_area(schema.normalize_zones(zones))
        data_version = f"v{number}-{content_hash(zones)[:8]}"
        data_versions.append(data_version)
        rows.append({"version": number, "data_version": data_version, "created_at": f"2026-0{number}-01T00:00:00+00:00",
                     "author": "old", "action": "init" if number == 1 else "edit", "source": None,
                     "source_sha256": None, "zone_count": len(zones), "summary": json.dumps({"added": [],
                     "removed": [], "changed": []}), "note": f"old note {number}"})
        frame = zones.copy()
        frame["rules"] = [json.dumps(r, ensure_ascii=False) for r in frame["rules"]]
        for layer in ("zones", f"zones_v{number:04d}"):
            pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", geometry_type="Unknown",
                                    dataset_options={"VERSION": "1.3"})
        pyogrio.write_dataframe(pd.DataFrame(rows), path, layer="versions", driver="GPKG",
                                dataset_options={"VERSION": "1.3"})
    return data_versions


def test_a_store_of_the_snapshot_layout_is_migrated_keeping_every_version(tmp_path):
    path = tmp_path / "zones.gpkg"
    first = _zones(4)
    second = first[first.zone_id != "t-3"].copy()
    second.loc[second.zone_id == "t-0", "name_en"] = "Renamed"
    third = first.copy()
    data_versions = write_old_layout(path, [first, second, third])
    (tmp_path / ".zones.gpkg.abc.tmp.gpkg").write_bytes(b"left by a killed writer of the old code")
    assert "zones_v0002" in {name for name, _ in pyogrio.list_layers(path)}

    store = open_store(path, tmp_path / "no-seed.geojson")
    assert [v.data_version for v in store.versions()] == data_versions
    assert [v.note for v in store.versions()] == ["old note 1", "old note 2", "old note 3"]
    for number, expected in enumerate([first, second, third], start=1):
        zones = store.load(number)
        assert content_hash(zones)[:8] == data_versions[number - 1].split("-")[1]
        assert list(zones.zone_id) == list(expected.zone_id)
    layers = {name for name, _ in pyogrio.list_layers(path)}
    assert layers == {"zones", "zone_history", "versions", "audit"}
    # Version 3 re-instated t-3 and the old name: 4 + 1 + 2 rows, not 4 + 3 + 4.
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM zone_history").fetchone()[0] == 7
    assert not list(tmp_path.glob(".*.tmp.gpkg"))
    assert store.save(first, action="edit").version == 4
    assert not store.upgrade()


def test_a_killed_migration_leaves_the_old_layout_to_migrate_again(tmp_path):
    from tests.conftest import kill_writer_mid_write

    path = tmp_path / "zones.gpkg"
    data_versions = write_old_layout(path, [_zones(3), _zones(2)])
    script = f"from geo.store import ZoneStore; ZoneStore({str(path)!r}).upgrade()"
    kill_writer_mid_write([sys.executable, "-c", script], tmp_path / "hook")
    assert "zones_v0001" in {name for name, _ in pyogrio.list_layers(path)}
    assert [v.data_version for v in ZoneStore(path).versions()] == data_versions


# ----------------------------------------------------------------------------- audit log
def test_the_audit_table_refuses_updates_and_deletes_from_any_client(tmp_path):
    store = ZoneStore(tmp_path / "zones.gpkg")
    store.save(_zones(), action="init")
    entry = store.append_audit(AuditEvent(actor="admin", action="user.add", target="li"))
    with sqlite3.connect(store.path) as db:
        for sql in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(sql)
    assert store.audit() == [entry]


# ----------------------------------------------------------------------------- history
def test_history_fits_80_columns_without_cutting_versions_or_times(tmp_path):
    store = ZoneStore(tmp_path / "zones.gpkg")
    zones = _zones()
    store.save(zones, action="init", source="zones.geojson")
    for i in range(11):
        zones.loc[0, "name_en"] = f"name {i}"
        store.save(zones, action="import", author="区规划分局 planner", source="禁养区_门头沟区_2024年官方边界文件.zip")
    store.rollback(3, author="reviewer")
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(REPO)}
    text = subprocess.run([sys.executable, "-m", "api.cli", "history", "--store", str(store.path)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120).stdout
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80 and "…" not in text
    for v in store.versions():
        row = next(line for line in lines if line.startswith(v.data_version + " "))
        assert v.created_at.replace("T", " ").removesuffix("+00:00") in row and f" {v.action} " in row
    assert "禁养区_门头沟区_2024年官方边界文件.zip" in text and "rollback to version 3" in text
    full = json.loads(subprocess.run([sys.executable, "-m", "api.cli", "history", "--store", str(store.path), "--json"],
                                     capture_output=True, text=True, env=env, cwd=REPO, timeout=120).stdout)
    assert [v["data_version"] for v in full] == [v.data_version for v in store.versions()]
    assert full[1]["summary"] == {"added": [], "removed": [], "changed": ["t-0"]} and full[1]["created_at"]
