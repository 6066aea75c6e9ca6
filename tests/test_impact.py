"""What a new data version changes for registered sites: geo.impact, /v1/admin/sites,
/v1/admin/impact, `zoning sites import` / `zoning impact`, and the new-version webhook."""

from __future__ import annotations

import csv
import hashlib
import hmac
import http.server
import io
import json
import threading
import time

import geopandas as gpd
import pytest
import shapely

from geo.store import ZoneStore
from tests.conftest import _client_for
from tests.test_api_check import run_cli

AS_OF = "2022-01-01"
TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def farms() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"编号": ["F1", "F2", "F3", "F4"], "名称": ["一号养殖场", "二号养殖场", "三号地块", "远处养殖场"]},
        geometry=[shapely.Point(116.05, 39.92),               # in t-square in both versions
                  shapely.Point(116.12, 39.92),               # enters t-square when it grows east
                  shapely.box(116.21, 39.91, 116.22, 39.92),  # in t-holed, whose rules change
                  shapely.Point(116.6, 39.6)], crs="EPSG:4326")


def second_version(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    new = zones.copy()
    square = new["zone_id"] == "t-square"
    new.loc[square, "geometry"] = shapely.box(116.00, 39.90, 116.15, 40.00)
    holed = (new["zone_id"] == "t-holed").to_numpy().nonzero()[0][0]
    new.at[new.index[holed], "rules"] = [{"code": "no_new_farms", "text_zh": "禁止新建养殖场", "text_en": "No new farms"}]
    return new


@pytest.fixture
def two_versions(tmp_path, sample_zones):
    store = ZoneStore(tmp_path / "store" / "zones.gpkg")
    store.save(sample_zones, action="init")
    store.save(second_version(store.load()), action="edit", note="t-square grows east; t-holed rules")
    return store


def test_impact_lists_entered_and_rules_changed_sites(two_versions):
    from geo.impact import impact

    sites = farms().rename(columns={"编号": "site_id", "名称": "name"})
    changes = impact(two_versions.load(1), two_versions.load(2), sites, as_of=AS_OF)
    got = sorted(zip(changes["site_id"], changes["change"], changes["zone_id"], strict=True))
    assert got == [("F2", "entered", "t-square"), ("F3", "rules_changed", "t-holed")]
    back = impact(two_versions.load(2), two_versions.load(1), sites, as_of=AS_OF)
    assert ("F2", "left", "t-square") in set(zip(back["site_id"], back["change"], back["zone_id"], strict=True))
    f3 = changes[changes["site_id"] == "F3"].iloc[0]
    assert f3["overlap_m2_from"] == f3["overlap_m2_to"] > 0 and f3["rules"] == "no_new_farms"


def test_cli_sites_import_and_impact_write_rows_and_summary(monkeypatch, capsys, two_versions, tmp_path):
    source = tmp_path / "farms.geojson"
    source.write_text(farms().to_json(ensure_ascii=False), encoding="utf-8")
    store = str(two_versions.path)
    code, stdout, err = run_cli(monkeypatch, capsys, "sites", "import", str(source), "--store", store)
    assert code == 0 and "4 site(s) registered" in stdout, err
    out, summary = tmp_path / "impact.csv", tmp_path / "impact.html"
    code, stdout, err = run_cli(monkeypatch, capsys, "impact", "--from", "1", "--to", "2", "--as-of", AS_OF,
                                "--out", str(out), "--summary", str(summary), "--store", store)
    assert code == 0, err
    assert "2 of 4 site(s) affected" in stdout and "二号养殖场" in stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert {(r["site_id"], r["change"]) for r in rows} == {("F2", "entered"), ("F3", "rules_changed")}
    assert "新进入分区" in summary.read_text(encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "impact", "--from", "9", "--store", store)
    assert code == 2 and "version 9" in err


def test_admin_sites_and_impact_over_http(tmp_path, two_versions, sample_zones):
    seed = tmp_path / "seed.geojson"
    from geo.schema import zones_to_geojson

    seed.write_text(json.dumps(zones_to_geojson(sample_zones)), encoding="utf-8")
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    settings = Settings(store=two_versions.path, seed=seed, admin_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/admin/sites", content=farms().to_json()).status_code == 401
        answer = client.post("/v1/admin/sites", content=farms().to_json(), headers=AUTH)
        assert answer.status_code == 201 and answer.json()["sites"] == 4
        assert len(client.get("/v1/admin/sites", headers=AUTH).json()["features"]) == 4
        summary = client.get("/v1/admin/impact", params={"from": 1, "to": 2, "as_of": AS_OF}, headers=AUTH).json()
        assert summary["changes"]["entered"] == 1 and summary["sites_affected"] == 2
        assert summary["by_layer"]["entered"] == {"livestock_ban": 1}
        gpkg = client.get("/v1/admin/impact", params={"from": 1, "to": 2, "as_of": AS_OF, "format": "gpkg"},
                          headers=AUTH)
        (tmp_path / "impact.gpkg").write_bytes(gpkg.content)
        assert set(gpd.read_file(tmp_path / "impact.gpkg")["site_id"]) == {"F2", "F3"}
        pdf = client.get("/v1/admin/impact", params={"from": 1, "to": 2, "format": "pdf"}, headers=AUTH)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert client.get("/v1/admin/impact", params={"from": 7}, headers=AUTH).status_code == 404


class Receiver(http.server.BaseHTTPRequestHandler):
    """Loopback webhook receiver: answers 500 to the first delivery, then 200."""

    received: list[tuple[dict, bytes]] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(500 if len(Receiver.received) == 1 else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_signs_retries_and_logs_each_new_version(tmp_path, sample_zones):
    from api.webhook import delivery_log

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.received = []
    store = ZoneStore(tmp_path / "store" / "zones.gpkg")
    store.save(sample_zones, action="init")
    from geo.impact import save_sites

    save_sites(farms().rename(columns={"编号": "site_id", "名称": "name"}), store)
    secret = "s" * 32
    try:
        with _client_for(tmp_path, tmp_path / "unused.geojson", webhook_url=f"http://127.0.0.1:{server.server_port}/hook",
                         webhook_secret=secret, webhook_poll_seconds=0.1) as client:
            client.get("/healthz")
            store.save(second_version(store.load()), action="edit", note="webhook test")
            deadline = time.monotonic() + 30
            while len(Receiver.received) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        server.shutdown()
    assert len(Receiver.received) == 2  # the first answer was a 500: retried once
    headers, body = Receiver.received[1]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Zoning-Signature"] == expected
    notice = json.loads(body)
    assert notice["version"] == 2 and notice["previous"] == 1 and notice["impact"]["sites"] == 4
    log = delivery_log(store)
    assert [(e["version"], e["attempt"], e["status"], e["delivered"]) for e in log] == [(2, 1, 500, False),
                                                                                    (2, 2, 200, True)]


def test_a_site_whose_prohibiting_zones_are_removed_has_its_verdict_changed(tmp_path, bundled_zones):
    from api.impact import compute_impact
    from tests.test_verdicts import PIG, YONGDING

    store = ZoneStore(tmp_path / "zones.gpkg")
    store.save(bundled_zones, action="init")
    zones = store.load()
    covering = zones.geometry.covers(shapely.Point(*YONGDING)) & (zones["layer"] != "admin")  # others cite mtg
    store.save(zones[~covering.to_numpy()], action="edit", note="drop the zones covering the Yongding farm")
    sites = gpd.GeoDataFrame({"site_id": ["farm"], "name": ["永定河养殖场"]}, geometry=[shapely.Point(*YONGDING)],
                             crs="EPSG:4326")
    changes, summary = compute_impact(store, sites, 1, 2, "2024-01-01")
    assert set(changes.loc[changes["change"] == "left", "zone_id"]) == set(zones.loc[covering.to_numpy(), "zone_id"])
    changed = changes[changes["change"] == "verdict_changed"]
    assert any(r.startswith(f"{PIG}: prohibited → ") for r in changed["rules"]), list(changed["rules"])
    assert summary["changes"]["verdict_changed"] == len(changed) > 0


class CountingReceiver(http.server.BaseHTTPRequestHandler):
    """Loopback webhook receiver that answers 200 and keeps the versions it was sent."""

    versions: list[int] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        CountingReceiver.versions.append(json.loads(body)["version"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("backend", ["gpkg", "postgis"])
def test_replicas_on_one_store_send_each_notice_once_and_in_order(backend, tmp_path, request, sample_zones):
    """Two notifiers on one store (two replicas, or two workers): every new version is sent
    exactly once, in version order, whichever notifier sends it."""
    from api.webhook import WebhookNotifier, delivery_log
    from geo.store import store_at
    from tests.store_backends import new_location, reopen

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CountingReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    CountingReceiver.versions = []
    store = store_at(new_location(backend, tmp_path, request))
    store.save(sample_zones, action="init")
    url = f"http://127.0.0.1:{server.server_port}/hook"
    notifiers = [WebhookNotifier(s, url, "s" * 32, poll_seconds=0.05) for s in (store, reopen(store))]
    try:
        for n in notifiers:
            n.start()
        zones = store.load()
        for k in range(4):  # versions 2-5, each a small edit
            zones = zones.copy()
            zones.loc[zones.index[0], "name_en"] = f"edit {k}"
            store.save(zones, action="edit")
        deadline = time.monotonic() + 60
        while len(CountingReceiver.versions) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a duplicate would arrive now
    finally:
        for n in notifiers:
            n.stop()
        server.shutdown()
    assert CountingReceiver.versions == [2, 3, 4, 5]
    assert [(e["version"], e["attempt"], e["delivered"]) for e in delivery_log(store)] == [
        (v, 1, True) for v in (2, 3, 4, 5)]


def test_a_claim_left_by_a_dead_notifier_is_taken_over_and_a_given_up_one_is_not(tmp_path, sample_zones):
    import datetime as dt

    from api import webhook

    store = ZoneStore(tmp_path / "zones.gpkg")
    store.save(sample_zones, action="init")
    url = "http://127.0.0.1:9/hook"
    stale = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=webhook.CLAIM_LEASE_S + 1)).isoformat(timespec="seconds")
    fresh = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with store.work().writing() as tx:
        for version, at in ((2, stale), (3, stale), (4, fresh)):
            tx.execute("INSERT INTO webhook_claims (version, url, claimed_by, claimed_at) VALUES (?, ?, ?, ?)",
                       (version, url, "gone:1:dead", at))
        for attempt in range(1, webhook.ATTEMPTS + 1):  # version 3: every attempt failed
            tx.execute("INSERT INTO webhook_log (at, url, version, attempt, status, error, delivered) "
                       "VALUES (?, ?, 3, ?, 500, 'HTTP Error 500', 0)", (stale, url, attempt))
    notifier = webhook.WebhookNotifier(store, url, "s" * 32)
    assert notifier.claim(2) == "mine"  # its holder died before a single attempt
    assert notifier.claim(2) == "mine"  # and it stays this notifier's
    assert webhook.WebhookNotifier(store, url, "s" * 32).claim(2) == "pending"  # for everyone else
    assert notifier.claim(3) == "done"  # given up after every attempt failed: not sent again
    assert notifier.claim(4) == "pending"  # a live claim of another process
    assert notifier.claim(5) == "mine"  # nobody's yet
