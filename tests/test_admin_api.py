"""The admin API: token, upload limits, import served without restart, versions, diff, rollback."""

from __future__ import annotations

import zipfile

import pyogrio
import pytest
import shapely

from geo.paths import BUNDLED_ZONES
from tests.conftest import _client_for
from tests.test_import import (
    DISTRICT,
    IMPORT_LAYER,
    official_frame,
    replaced_zones,
    shapefile_parts,
    write_shapefile,
    zip_with_gbk_names,
)

TOKEN = "s3cret-admin-token-for-the-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FORM = {"layer": IMPORT_LAYER, "district": DISTRICT, "map": "stated_area_km2=面积:ha"}


@pytest.fixture
def admin_client(tmp_path):
    """API client on a store of the bundled zones, admin enabled."""
    with _client_for(tmp_path, BUNDLED_ZONES, admin_token=TOKEN) as client:
        yield client


@pytest.fixture
def replaced(bundled_zones):
    return replaced_zones(bundled_zones)


@pytest.fixture
def official(replaced):
    return official_frame(replaced)


@pytest.fixture
def official_zip(tmp_path, official):
    """The official zones as a zipped GBK Shapefile in EPSG:4527 without .cpg."""
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    return zip_with_gbk_names(shapefile_parts(shp), tmp_path / "门头沟协作区.zip", "门头沟协作区")


def upload(client, path, headers=AUTH, **form):
    return client.post("/v1/admin/import", headers=headers, data={**FORM, **form},
                       files={"file": (path.name, path.read_bytes(), "application/octet-stream")})


def served_ids(client, lon, lat) -> set[str]:
    """Zones of the import layer the point lookup answers with at (lon, lat)."""
    answer = client.get("/v1/check", params={"lon": lon, "lat": lat, "layers": IMPORT_LAYER})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data_version"] == data_version(client)
    return {zone["zone_id"] for zone in answer.json()["inside"]}


def data_version(client) -> str:
    return client.get("/healthz").json()["data_version"]


# ---------------------------------------------------------------- access


def test_admin_endpoints_are_off_without_a_token_and_say_so(client, official_zip):
    for answer in (client.get("/v1/admin/versions"), upload(client, official_zip, headers={}),
                   client.post("/v1/admin/rollback/1")):
        assert answer.status_code == 403
        assert "admin endpoints are off" in answer.json()["detail"]
        assert "ZONING_ADMIN_TOKEN" in answer.json()["detail"]


@pytest.mark.parametrize("header", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                                    {"Authorization": TOKEN}])
def test_requests_without_the_right_token_are_401(admin_client, official_zip, header):
    for answer in (admin_client.get("/v1/admin/versions", headers=header), upload(admin_client, official_zip, header)):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
    assert admin_client.get("/v1/admin/versions", headers=AUTH).status_code == 200


# ---------------------------------------------------------------- importing


def test_import_is_served_at_once_without_restart(admin_client, official_zip, official, replaced):
    before = data_version(admin_client)
    holed_point = replaced.geometry.iloc[0].representative_point()  # the hole was cut around it
    assert replaced.zone_id.iloc[0] in served_ids(admin_client, holed_point.x, holed_point.y)

    preview = upload(admin_client, official_zip, dry_run="true")
    assert preview.status_code == 200, preview.text
    report = preview.json()["report"]
    assert report["encoding"] == "gb18030" and report["crs"].startswith("EPSG:4527")
    assert report["dry_run"] and report["version"] is None
    assert data_version(admin_client) == before

    answer = upload(admin_client, official_zip, accuracy="official", author="门头沟区规划分局")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["data_version"] == data_version(admin_client) != before
    assert body["data_version"].startswith("v2-")
    added = {z["name_zh"]: z["zone_id"] for z in body["report"]["changes"]["added"]}
    assert set(added) == set(official["名称"])
    for name, geom in zip(official["名称"], official.geometry, strict=True):
        point = geom.representative_point()
        ids = served_ids(admin_client, point.x, point.y)
        assert added[name] in ids and not ids & set(replaced.zone_id)
    assert added[official["名称"].iloc[0]] not in served_ids(admin_client, holed_point.x, holed_point.y)
    feature = admin_client.get(f"/collections/{IMPORT_LAYER}/items/{added[official['名称'].iloc[1]]}",
                               params={"f": "json"}).json()
    assert feature["properties"]["accuracy"] == "official"


def test_refused_import_keeps_the_previous_version_serving(admin_client, tmp_path, official, replaced):
    broken = official.copy()
    broken.loc[broken.index[0], "geometry"] = shapely.Polygon(
        [(115.80, 39.95), (115.86, 40.00), (115.86, 39.95), (115.80, 40.00)])
    shp = write_shapefile(broken, tmp_path / "broken", "EPSG:4527")
    archive = tmp_path / "broken.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in shapefile_parts(shp):
            z.write(f, f.name)
    before = data_version(admin_client)
    answer = upload(admin_client, archive)
    assert answer.status_code == 422
    body = answer.json()
    assert "nothing was written" in body["detail"]
    assert any("Self-intersection" in p and "FID 0" in p for p in body["problems"])
    assert data_version(admin_client) == before
    assert len(admin_client.get("/v1/admin/versions", headers=AUTH).json()["versions"]) == 1
    point = replaced.geometry.iloc[1].representative_point()
    assert replaced.zone_id.iloc[1] in served_ids(admin_client, point.x, point.y)

    repaired = upload(admin_client, archive, repair="true")
    assert repaired.status_code == 201, repaired.text
    assert repaired.json()["report"]["repairs"][0]["area_after_km2"] > 0


def test_missing_prj_is_refused_saying_pass_crs(admin_client, tmp_path, official):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4548")
    shp.with_suffix(".prj").unlink()
    archive = tmp_path / "noprj.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in shapefile_parts(shp):
            z.write(f, f.name)
    answer = upload(admin_client, archive)
    assert answer.status_code == 422 and "pass --crs" in answer.json()["detail"]
    assert upload(admin_client, archive, crs="EPSG:4548").status_code == 201


@pytest.mark.parametrize(("form", "message"), [
    ({"layer": "parks"}, "unknown layer 'parks'"),
    ({"map": "name_zh"}, "must look like FIELD=COLUMN"),
    ({"map": "name_zh=MC"}, "the file has no column 'MC'"),
    ({"accuracy": "exact"}, "'exact' is not one of official"),
    ({"district": "火星区"}, "not a known district name"),
])
def test_bad_form_values_are_422_naming_them(admin_client, official_zip, form, message):
    answer = upload(admin_client, official_zip, **form)
    assert answer.status_code == 422 and message in answer.json()["detail"]


# ---------------------------------------------------------------- upload limits


def test_upload_over_the_size_limit_is_413_naming_the_limit(tmp_path, official_zip):
    with _client_for(tmp_path / "small", BUNDLED_ZONES, admin_token=TOKEN, max_upload_bytes=1000) as small:
        answer = upload(small, official_zip)
        assert answer.status_code == 413
        assert "limit of 1000 bytes" in answer.json()["detail"]
        assert len(small.get("/v1/admin/versions", headers=AUTH).json()["versions"]) == 1


@pytest.mark.parametrize("entry", ["../escape.shp", "zones/../../escape.shp", "/tmp/escape.shp"])
def test_zip_entry_leaving_the_folder_is_400_naming_it(admin_client, tmp_path, entry):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(entry, b"x")
    answer = upload(admin_client, archive)
    assert answer.status_code == 400 and repr(entry) in answer.json()["detail"]


def test_zip_bomb_is_413_naming_the_ratio(admin_client, tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zones.dbf", b"\0" * (50 * 1024 * 1024))
    assert archive.stat().st_size < 100_000
    answer = upload(admin_client, archive)
    assert answer.status_code == 413
    assert "compression-ratio limit of 200x" in answer.json()["detail"]


def test_zip_with_too_many_entries_is_413(admin_client, tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(500):
            z.writestr(f"part{i}.txt", b"")
    answer = upload(admin_client, archive)
    assert answer.status_code == 413 and "500 entries" in answer.json()["detail"]


def test_broken_zip_is_422(admin_client, tmp_path, official_zip):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(official_zip.read_bytes()[: official_zip.stat().st_size // 2])
    answer = upload(admin_client, archive)
    assert answer.status_code == 422 and "zip" in answer.json()["detail"]


def test_unsupported_file_type_is_415(admin_client, tmp_path):
    path = tmp_path / "zones.pdf"
    path.write_bytes(b"%PDF-1.4")
    answer = upload(admin_client, path)
    assert answer.status_code == 415 and "unsupported file type .pdf" in answer.json()["detail"]


def test_content_that_is_not_what_its_name_says_is_422(admin_client, tmp_path):
    path = tmp_path / "zones.gpkg"
    path.write_text("this is not a GeoPackage")
    answer = upload(admin_client, path)
    assert answer.status_code == 422 and "zones.gpkg" in answer.json()["detail"]


def test_lone_shp_upload_is_422_asking_for_a_zip(admin_client, tmp_path, official):
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    answer = upload(admin_client, shp)
    assert answer.status_code == 422 and ".zip" in answer.json()["detail"]


# ---------------------------------------------------------------- versions


def test_history_diff_and_rollback_through_the_api(admin_client, official_zip, replaced):
    v1 = data_version(admin_client)
    assert upload(admin_client, official_zip, author="导入员").status_code == 201

    listing = admin_client.get("/v1/admin/versions", headers=AUTH).json()
    assert listing["current"] == data_version(admin_client)
    last = listing["versions"][-1]
    assert (last["version"], last["action"], last["author"], last["source"]) == (
        2, "import", "导入员", "门头沟协作区.zip")
    assert sorted(last["summary"]["removed"]) == sorted(replaced.zone_id)

    diff = admin_client.get("/v1/admin/diff", params={"from": 1, "to": 2}, headers=AUTH).json()
    assert sorted(z["zone_id"] for z in diff["removed"]) == sorted(replaced.zone_id)
    assert len(diff["added"]) == len(replaced) and diff["changed"] == []
    assert diff["area_km2"]["after"] < diff["area_km2"]["before"]  # the hole
    assert admin_client.get("/v1/admin/diff", params={"from": 1}, headers=AUTH).json()["to"]["version"] == 2

    rolled = admin_client.post("/v1/admin/rollback/1", headers=AUTH)
    assert rolled.status_code == 201
    assert rolled.json()["data_version"] == data_version(admin_client)
    assert data_version(admin_client).startswith("v3-") and data_version(admin_client)[3:] == v1[3:]
    point = replaced.geometry.iloc[1].representative_point()
    assert replaced.zone_id.iloc[1] in served_ids(admin_client, point.x, point.y)

    assert admin_client.get("/v1/admin/diff", params={"from": 1, "to": 9}, headers=AUTH).status_code == 404
    assert admin_client.post("/v1/admin/rollback/9", headers=AUTH).status_code == 404
    assert admin_client.get("/v1/admin/diff", params={"from": 0}, headers=AUTH).status_code == 422


def test_geopackage_upload_chooses_its_layer(admin_client, tmp_path, official):
    gpkg = tmp_path / "bureau.gpkg"
    pyogrio.write_dataframe(official, gpkg, layer="协作区")
    pyogrio.write_dataframe(official.iloc[:1], gpkg, layer="草稿")
    answer = upload(admin_client, gpkg)
    assert answer.status_code == 422 and "choose one with --layer-name" in answer.json()["detail"]
    answer = upload(admin_client, gpkg, layer_name="协作区")
    assert answer.status_code == 201, answer.text
