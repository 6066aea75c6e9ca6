"""Malicious import files are refused with a 4xx (API) or exit 2 (CLI), and read no server
file and no URL: VRT dressed as GeoJSON/KML/Shapefile, a KML with external entities, a
GeoPackage with triggers or views, a file GDAL itself refuses."""

from __future__ import annotations

import hashlib
import http.server
import sqlite3
import threading
import zipfile

import pyogrio
import pytest

from geo.importer import safety
from geo.paths import BUNDLED_ZONES
from tests.conftest import _client_for
from tests.test_import import DISTRICT, IMPORT_LAYER, official_frame, replaced_zones, run_cli

TOKEN = "harden-test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FORM = {"layer": IMPORT_LAYER, "district": DISTRICT, "dry_run": "true"}
PASSWD_LINE = "root:x:0:0"  # what /etc/passwd starts with on Debian


@pytest.fixture
def loopback():
    """An HTTP server on 127.0.0.1 that records every request it receives."""
    received: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            received.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", "8")
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(b"a,b\n1,2\n")

        do_GET = do_HEAD = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def admin(tmp_path):
    with _client_for(tmp_path, BUNDLED_ZONES, admin_token=TOKEN) as client:
        yield client


def vrt(source: str) -> str:
    return (f'<OGRVRTDataSource>\n  <OGRVRTLayer name="zones">\n    <SrcDataSource>{source}</SrcDataSource>\n'
            '  </OGRVRTLayer>\n</OGRVRTDataSource>\n')


def kml_with_entity(target: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE kml [<!ENTITY leak SYSTEM "{target}">]>\n'
            '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><name>&leak;</name>'
            '<Polygon><outerBoundaryIs><LinearRing><coordinates>116.0,39.9 116.1,39.9 116.1,40.0 116.0,39.9'
            '</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark></Document></kml>\n')


def upload(admin, path, **form):
    with open(path, "rb") as fh:
        return admin.post("/v1/admin/import", headers=AUTH, data={**FORM, **form},
                          files={"file": (path.name, fh, "application/octet-stream")})


def cli_import(path, store_path):
    return run_cli("import", str(path), "--layer", IMPORT_LAYER, "--district", DISTRICT, "--dry-run",
                   "--store", str(store_path))


def assert_refused_both_ways(admin, path, tmp_path, reason: str) -> None:
    answer = upload(admin, path)
    assert 400 <= answer.status_code < 500, answer.text
    assert reason in answer.json()["detail"] and PASSWD_LINE not in answer.text
    done = cli_import(path, tmp_path / "cli-store" / "zones.gpkg")
    assert done.returncode == 2, done.stderr
    assert reason in done.stderr and PASSWD_LINE not in done.stdout + done.stderr


def test_vrt_dressed_as_geojson_reading_etc_passwd_is_refused(admin, tmp_path):
    evil = tmp_path / "zones.geojson"
    evil.write_text(vrt("CSV:/etc/passwd"))
    assert_refused_both_ways(admin, evil, tmp_path, "VRT")


def test_vrt_inside_a_json_string_cannot_switch_the_driver(admin, tmp_path):
    """A GeoJSON whose first kilobyte names a VRT is read, if at all, by the GeoJSON driver."""
    evil = tmp_path / "zones.geojson"
    evil.write_text('{"type": "FeatureCollection", "name": "<OGRVRTDataSource>", "features": []}')
    assert_refused_both_ways(admin, evil, tmp_path, "VRT")


def test_vrt_dressed_as_kml_fetching_a_url_is_refused_without_a_request(admin, tmp_path, loopback):
    url, received = loopback
    evil = tmp_path / "zones.kml"
    evil.write_text(vrt(f"/vsicurl/{url}/zones.csv"))
    assert_refused_both_ways(admin, evil, tmp_path, "VRT")
    assert received == []


def test_vrt_dressed_as_shapefile_is_refused(admin, tmp_path):
    evil = tmp_path / "zones.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("zones.shp", vrt("CSV:/etc/passwd"))
        archive.writestr("zones.shx", b"\x00" * 100)
        archive.writestr("zones.dbf", b"\x03" + b"\x00" * 100)
    assert_refused_both_ways(admin, evil, tmp_path, "VRT")


@pytest.mark.parametrize("target", ["file:///etc/passwd", "LOOPBACK/leak.dtd"])
def test_kml_with_an_external_entity_is_refused(admin, tmp_path, loopback, target):
    url, received = loopback
    evil = tmp_path / "zones.kml"
    evil.write_text(kml_with_entity(target.replace("LOOPBACK", url)))
    assert_refused_both_ways(admin, evil, tmp_path, "DOCTYPE")
    assert received == []


def test_kml_network_link_is_refused(admin, tmp_path, loopback):
    url, received = loopback
    evil = tmp_path / "zones.kml"
    evil.write_text('<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><NetworkLink>'
                    f"<Link><href>{url}/more.kml</href></Link></NetworkLink></kml>")
    assert_refused_both_ways(admin, evil, tmp_path, "NetworkLink")
    assert received == []


def _geopackage(tmp_path, bundled_zones, sql: str):
    frame = official_frame(replaced_zones(bundled_zones))
    path = tmp_path / "zones.gpkg"
    pyogrio.write_dataframe(frame, path, layer="zones", driver="GPKG")
    db = sqlite3.connect(path)
    db.executescript(sql)
    db.close()
    return path


def test_geopackage_with_a_trigger_is_read_without_it(admin, tmp_path, bundled_zones):
    path = _geopackage(tmp_path, bundled_zones, """
        CREATE TABLE evidence (what TEXT);
        CREATE TRIGGER spy AFTER UPDATE ON zones BEGIN INSERT INTO evidence VALUES ('fired'); END;
        CREATE TRIGGER spy2 AFTER INSERT ON gpkg_contents BEGIN DELETE FROM zones; END;""")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    answer = upload(admin, path, map="stated_area_km2=面积:ha")
    assert answer.status_code == 200, answer.text
    assert answer.json()["report"]["zones"] == len(replaced_zones(bundled_zones))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before, "the upload itself is never modified"
    (tmp_path / "checked").mkdir()
    checked = safety.check_content(path, "GPKG", tmp_path / "checked")
    assert checked.name == path.name and checked != path
    triggers = sqlite3.connect(checked).execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
    assert triggers == []
    done = cli_import(path, tmp_path / "cli-store" / "zones.gpkg")
    assert done.returncode == 0, done.stderr


def test_geopackage_with_a_view_is_refused(admin, tmp_path, bundled_zones):
    path = _geopackage(tmp_path, bundled_zones, "CREATE VIEW zones_view AS SELECT * FROM zones;")
    assert_refused_both_ways(admin, path, tmp_path, "views")


def test_file_gdal_cannot_read_is_a_4xx_with_gdal_reason(admin, tmp_path):
    broken = tmp_path / "zones.gpkg"
    broken.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    assert_refused_both_ways(admin, broken, tmp_path, "zones.gpkg")


def test_gdal_config_alone_stops_vsicurl(tmp_path, loopback):
    """The second wall: even a VRT opened directly sends no request (GDAL_SAFE_CONFIG)."""
    url, received = loopback
    direct = tmp_path / "direct.vrt"
    direct.write_text(vrt(f"/vsicurl/{url}/zones.csv"))
    safety.apply_gdal_safety()
    with pytest.raises(Exception):  # noqa: B017 - whatever GDAL says, it must not have fetched
        pyogrio.read_dataframe(direct)
    assert received == []
