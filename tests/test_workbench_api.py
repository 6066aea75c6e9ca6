"""The workbench API: roles per endpoint, sessions with CSRF, drafts reviewed by another
user and published as one store version, and the audit log recording every write — on the
GeoPackage and on the PostGIS store (its work tables: ``geo.store.work``)."""

from __future__ import annotations

import pytest
import shapely

from geo.paths import BUNDLED_ZONES
from geo.users import Users
from tests.conftest import _client_for
from tests.store_backends import BACKENDS, new_location
from tests.synthetic_sheet import ZONE_COLOUR, make_sheet, spread_gcps

TOKEN = "bootstrap-admin-token-for-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
ZONE = "mtg-jyq-ztsk-1"  # 斋堂水库一级保护区: not digitised (no cited coordinate)
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def sheet():
    return make_sheet()


@pytest.fixture(params=BACKENDS)
def wb(tmp_path, request):
    """Client on each store backend plus one user per role; yields (client, {role: headers})."""
    if request.param == "postgis":
        request.applymarker(pytest.mark.postgis)
    store = new_location(request.param, tmp_path, request)
    with _client_for(tmp_path, BUNDLED_ZONES, admin_token=TOKEN, store=store) as client:
        users = Users(client.app.state.catalog.store)
        headers = {}
        for name, role in (("vera", "viewer"), ("ed", "editor"), ("rita", "reviewer"), ("rob", "reviewer"),
                           ("ada", "admin")):
            _, token = users.add(name, role, password=PASSWORD, actor="test")
            headers[name] = {"Authorization": f"Bearer {token}"}
        yield client, headers


def _upload(client, headers, data, name="附图.jpg"):
    return client.post("/v1/workbench/sheets", headers=headers, files={"file": (name, data, "application/octet-stream")})


def _georef_body(sha, points, **extra):
    return {"sheet": sha, "page": 1, "crs": "EPSG:4548", "method": "affine",
            "points": [{"px": p.px, "py": p.py, "x": p.x, "y": p.y} for p in points], **extra}


def _trace(client, headers, sha, sheet):
    body = {"georef": _georef_body(sha, spread_gcps(sheet, 4)), "colour": ZONE_COLOUR, "min_area_m2": 50000,
            "simplify_m": 2, "line_width_px": 3, "clip_district": "110109"}
    return client.post("/v1/workbench/trace", headers=headers, json=body)


def test_editor_traces_reviewer_publishes_and_lookup_uses_it(wb, sheet):
    client, h = wb
    assert ZONE in {z["zone_id"] for z in client.get("/v1/check", params={"lon": 115.95, "lat": 39.94}).json()
                    ["not_digitised"]}
    up = _upload(client, h["ed"], sheet.jpeg)
    assert up.status_code == 201, up.text
    sha = up.json()["sha256"]
    assert up.json()["pages"] == [[2000, 1500]]
    page = client.get(f"/v1/workbench/sheets/{sha}/pages/1.png", headers=h["vera"])
    assert page.status_code == 200 and page.content.startswith(b"\x89PNG")

    fit = client.post("/v1/workbench/georef", headers=h["ed"], json=_georef_body(sha, spread_gcps(sheet, 4)))
    assert fit.status_code == 200, fit.text
    body = fit.json()
    assert len(body["georef"]["residuals_m"]) == 4 and body["georef"]["rms_m"] < 10
    assert body["overlay"]["png"].startswith("data:image/png;base64,") and len(body["overlay"]["bounds"]) == 4

    traced = _trace(client, h["ed"], sha, sheet)
    assert traced.status_code == 200, traced.text
    geometry = traced.json()["feature"]["geometry"]
    got = shapely.geometry.shape(geometry)
    assert got.intersection(sheet.zone_wgs84).area / got.union(sheet.zone_wgs84).area > 0.95

    saved = client.post("/v1/workbench/drafts", headers=h["ed"], json={
        "zone_id": ZONE, "geometry": geometry, "georef": _georef_body(sha, spread_gcps(sheet, 4)),
        "trace": traced.json()["feature"]["properties"]["trace"]})
    assert saved.status_code == 201, saved.text
    draft = saved.json()
    record = draft["record"]
    assert record["accuracy"] == "traced" and record["source_doc_no"] == "门政发〔2020〕9号"
    assert record["issuer"] and record["rules"] and record["stated_area_km2"] == 2.53
    assert sha in record["method"] and "affine on 4 control points" in record["method"]
    assert draft["area_check"]["ok"] is False  # the synthetic polygon is not the reservoir's 2.53 km²

    # The author cannot approve their own draft, even as an admin-role editor would try.
    assert client.post(f"/v1/workbench/drafts/{draft['id']}/review", headers=h["ed"],
                       json={"approve": True}).status_code == 403  # editors do not review
    with_both_roles = Users(client.app.state.catalog.store)
    _, ada_token = with_both_roles.add("eve", "admin", actor="test")
    own = client.post("/v1/workbench/drafts", headers={"Authorization": f"Bearer {ada_token}"},
                      json={"zone_id": ZONE, "geometry": geometry})
    refused = client.post(f"/v1/workbench/drafts/{own.json()['id']}/review",
                          headers={"Authorization": f"Bearer {ada_token}"}, json={"approve": True})
    assert refused.status_code == 403 and "cannot review" in refused.json()["detail"]

    before = client.get("/healthz").json()["data_version"]
    approved = client.post(f"/v1/workbench/drafts/{draft['id']}/review", headers=h["rita"], json={"approve": True})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "published" and approved.json()["data_version"] != before

    inside = sheet.zone_wgs84.representative_point()
    answer = client.get("/v1/check", params={"lon": inside.x, "lat": inside.y}).json()
    hit = next(z for z in answer["inside"] if z["zone_id"] == ZONE)
    assert hit["accuracy"] == "traced"
    assert ZONE not in {z["zone_id"] for z in answer["not_digitised"]}
    assert "traced from the official map sheet" in client.get("/v1/check", params={
        "lon": inside.x, "lat": inside.y, "lang": "en"}).json()["disclaimer"]
    version = client.get("/v1/admin/versions", headers=ADMIN).json()["versions"][-1]
    assert version["action"] == "publish" and "ed" in version["author"] and "rita" in version["author"]
    assert version["source_sha256"] == sha
    assert client.get(f"/v1/zones/{ZONE}").json()["properties"]["accuracy"] == "traced"

    audit = client.get("/v1/admin/audit", headers=ADMIN).json()["entries"]
    actions = [(e["actor"], e["action"]) for e in audit]
    assert ("rita", "publish") in actions and ("ed", "draft.save") in actions
    publish = next(e for e in audit if e["action"] == "publish")
    assert publish["role"] == "reviewer" and publish["version"] == version["version"]
    assert publish["client"] and publish["detail"]["author"] == "ed"


def test_rejection_carries_the_comment_back_and_resubmission_is_pending(wb, sheet):
    client, h = wb
    geometry = shapely.geometry.mapping(sheet.zone_wgs84)
    draft = client.post("/v1/workbench/drafts", headers=h["ed"], json={"zone_id": ZONE, "geometry": geometry}).json()
    assert "drawn by hand" in draft["record"]["method"]
    no_comment = client.post(f"/v1/workbench/drafts/{draft['id']}/review", headers=h["rob"], json={"approve": False})
    assert no_comment.status_code == 422
    rejected = client.post(f"/v1/workbench/drafts/{draft['id']}/review", headers=h["rob"],
                           json={"approve": False, "comment": "东侧边界偏移，请重新配准"})
    assert rejected.json()["status"] == "rejected"
    seen = client.get(f"/v1/workbench/drafts/{draft['id']}", headers=h["ed"]).json()
    assert seen["comment"] == "东侧边界偏移，请重新配准" and seen["reviewer"] == "rob"
    # Someone else may not overwrite ed's draft; ed may, and it is pending again.
    assert client.post("/v1/workbench/drafts", headers=h["ada"], json={
        "zone_id": ZONE, "geometry": geometry, "draft_id": draft["id"]}).status_code == 201  # admins may
    again = client.post("/v1/workbench/drafts", headers=h["ed"],
                        json={"zone_id": ZONE, "geometry": geometry, "draft_id": draft["id"]})
    assert again.status_code == 201 and again.json()["status"] == "pending"
    assert client.get("/healthz").json()["data_version"].startswith("v1-")  # nothing published


# ---------------------------------------------------------------- roles per endpoint

ENDPOINTS = [  # (method, path, body kind, roles allowed)
    ("get", "/v1/workbench/worklist", None, {"vera", "ed", "rita", "ada"}),
    ("get", "/v1/workbench/drafts", None, {"vera", "ed", "rita", "ada"}),
    ("post", "/v1/workbench/sheets", "sheet", {"ed", "ada"}),
    ("post", "/v1/workbench/georef", "georef", {"ed", "ada"}),
    ("post", "/v1/workbench/drafts", "draft", {"ed", "ada"}),
    ("post", "/v1/workbench/drafts/1/review", "review", {"rita", "ada"}),
    ("get", "/v1/admin/versions", None, {"ed", "rita", "ada"}),
    ("get", "/v1/admin/audit", None, {"ada"}),
    ("post", "/v1/admin/rollback/1", None, {"ada"}),
]


def test_each_endpoint_refuses_the_roles_that_may_not_use_it(wb, sheet):
    client, h = wb
    sha = _upload(client, h["ed"], sheet.jpeg).json()["sha256"]
    bodies = {"georef": _georef_body(sha, spread_gcps(sheet, 4), overlay=False),
              "draft": {"zone_id": ZONE, "geometry": shapely.geometry.mapping(sheet.zone_wgs84)},
              "review": {"approve": False, "comment": "no"}}
    client.post("/v1/workbench/drafts", headers=h["ed"], json=bodies["draft"])  # draft 1, by ed
    for method, path, kind, allowed in ENDPOINTS:
        for user in ("vera", "ed", "rita", "ada"):
            kwargs = {"headers": h[user]}
            if kind == "sheet":
                kwargs["files"] = {"file": ("a.jpg", sheet.jpeg, "image/jpeg")}
            elif kind:
                kwargs["json"] = bodies[kind]
            answer = getattr(client, method)(path, **kwargs)
            if user in allowed:
                assert answer.status_code not in (401, 403), (path, user, answer.text)
            else:
                assert answer.status_code == 403, (path, user, answer.status_code)
                assert "may not do this" in answer.json()["detail"]
        assert getattr(client, method)(path).status_code == 401, path


def test_import_writes_need_an_admin_but_editors_may_preview(wb, tmp_path):
    from tests.test_admin_api import FORM
    from tests.test_import import (
        official_frame,
        replaced_zones,
        shapefile_parts,
        write_shapefile,
        zip_with_gbk_names,
    )

    client, h = wb
    official = official_frame(replaced_zones(client.app.state.catalog.store.load()))
    shp = write_shapefile(official, tmp_path / "src", "EPSG:4527")
    archive = zip_with_gbk_names(shapefile_parts(shp), tmp_path / "门头沟协作区.zip", "门头沟协作区")

    def upload(headers, **form):
        return client.post("/v1/admin/import", headers=headers, data={**FORM, **form},
                           files={"file": (archive.name, archive.read_bytes(), "application/zip")})

    assert upload(h["ed"], dry_run="true").status_code == 200
    assert upload(h["ed"]).status_code == 403
    done = upload(h["ada"], author="ignored for named users")
    assert done.status_code == 201
    assert client.get("/v1/admin/versions", headers=ADMIN).json()["versions"][-1]["author"] == "ada"
    rolled = client.post("/v1/admin/rollback/1", headers=ADMIN)
    assert rolled.status_code == 201
    audit = client.get("/v1/admin/audit", headers=h["ada"]).json()["entries"]
    assert [(e["actor"], e["role"], e["action"]) for e in audit[:2]] == [
        ("admin-token", "admin", "rollback"), ("ada", "admin", "import")]
    assert audit[1]["version"] == 2 and audit[0]["version"] == 3 and audit[0]["client"]


# ---------------------------------------------------------------- sessions, CSRF, users


def test_sessions_need_the_csrf_token_for_writes_and_end_when_the_user_is_disabled(wb, sheet):
    client, _ = wb
    assert client.post("/v1/auth/login", data={"name": "ed", "password": "wrong password!"}).status_code == 401
    login = client.post("/v1/auth/login", data={"name": "ed", "password": PASSWORD})
    assert login.status_code == 200
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    csrf = login.json()["csrf"]
    assert client.get("/v1/workbench/worklist").status_code == 200  # the cookie alone reads
    files = {"file": ("a.jpg", sheet.jpeg, "image/jpeg")}
    no_csrf = client.post("/v1/workbench/sheets", files=files)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["detail"]
    assert client.post("/v1/workbench/sheets", files=files, headers={"X-CSRF-Token": "guess"}).status_code == 403
    assert client.post("/v1/workbench/sheets", files=files, headers={"X-CSRF-Token": csrf}).status_code == 201
    Users(client.app.state.catalog.store).disable("ed", actor="test")
    assert client.get("/v1/workbench/worklist").status_code == 401
    assert client.post("/v1/auth/login", data={"name": "ed", "password": PASSWORD}).status_code == 401
    audit = client.get("/v1/admin/audit", headers=ADMIN).json()["entries"]
    assert {("test", "user.disable"), ("ed", "login.refused")} <= {(e["actor"], e["action"]) for e in audit}
    assert sum(e["action"] == "user.add" for e in audit) == 5


def test_users_refuse_bad_names_roles_passwords_and_duplicates(wb):
    from geo.users import UserError

    client, _ = wb
    users = Users(client.app.state.catalog.store)
    for name, role, password in (("Bad Name", "editor", None), ("ok-name", "boss", None),
                                 ("ok-name", "editor", "short"), ("ed", "editor", None)):
        with pytest.raises(UserError):
            users.add(name, role, password=password, actor="test")
    listed = {u.name: u for u in users.list()}
    assert listed["ed"].role == "editor" and listed["ed"].has_password and listed["ed"].has_token
    assert "ok-name" not in listed


def test_bad_sheets_and_points_are_refused_with_the_reason(wb, sheet):
    client, h = wb
    assert _upload(client, h["ed"], b"GIF89a....", "x.gif").status_code == 415
    assert _upload(client, h["ed"], sheet.jpeg[:3000]).status_code == 422
    sha = _upload(client, h["ed"], sheet.jpeg).json()["sha256"]
    too_few = client.post("/v1/workbench/georef", headers=h["ed"], json=_georef_body(sha, sheet.gcps[:2]))
    assert too_few.status_code == 422 and "at least 3" in too_few.json()["detail"]
    unknown = client.post("/v1/workbench/georef", headers=h["ed"], json=_georef_body("0" * 64, sheet.gcps))
    assert unknown.status_code == 404
    bad_zone = client.post("/v1/workbench/drafts", headers=h["ed"], json={
        "zone_id": "no-such-zone", "geometry": shapely.geometry.mapping(sheet.zone_wgs84)})
    assert bad_zone.status_code == 422
    bowtie = {"type": "Polygon", "coordinates": [[[115.9, 39.9], [116.0, 40.0], [116.0, 39.9], [115.9, 40.0],
                                                  [115.9, 39.9]]]}
    invalid = client.post("/v1/workbench/drafts", headers=h["ed"], json={"zone_id": ZONE, "geometry": bowtie})
    assert invalid.status_code == 422 and "invalid" in invalid.json()["detail"]


def test_admins_manage_users_over_http_and_each_change_is_audited(wb):
    client, h = wb
    added = client.post("/v1/admin/users", headers=h["ada"], json={"name": "newbie", "role": "editor"})
    assert added.status_code == 201 and added.json()["token"].startswith("zt_")
    token = {"Authorization": f"Bearer {added.json()['token']}"}
    assert client.get("/v1/workbench/worklist", headers=token).status_code == 200
    assert client.post("/v1/admin/users", headers=h["ada"], json={"name": "newbie", "role": "editor"}).status_code == 409
    assert client.post("/v1/admin/users", headers=h["ada"], json={"name": "x y", "role": "editor"}).status_code == 422
    assert client.post("/v1/admin/users", headers=h["rita"], json={"name": "sneaky", "role": "admin"}).status_code == 403
    assert client.post("/v1/admin/users/newbie/disable", headers=h["ada"]).status_code == 200
    assert client.get("/v1/workbench/worklist", headers=token).status_code == 401
    assert client.post("/v1/admin/users/nobody/disable", headers=h["ada"]).status_code == 404
    names = {u["name"]: u for u in client.get("/v1/admin/users", headers=ADMIN).json()["users"]}
    assert names["newbie"]["disabled"] and "sneaky" not in names
    audit = client.get("/v1/admin/audit", headers=ADMIN, params={"actor": "ada"}).json()["entries"]
    assert [(e["action"], e["target"], e["role"]) for e in audit[:2]] == [
        ("user.disable", "newbie", "admin"), ("user.add", "newbie", "admin")]
