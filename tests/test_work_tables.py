"""The workbench's tables in the zone store (``geo.store.work``), on every backend: users with
Argon2 password hashes and hashed tokens, sessions with CSRF tokens, drafts whose
publication and version commit together, and every write audited in its own transaction."""

from __future__ import annotations

import hashlib

import pytest
import shapely

from geo.digitise.drafts import DraftError, Drafts
from geo.store import AuditEvent, StoreError
from geo.users import UserError, Users
from tests.store_backends import reopen


@pytest.fixture
def store(new_store, sample_zones):
    new_store.save(sample_zones, action="init")
    return new_store


SQUARE = shapely.box(116.0, 39.9, 116.1, 40.0)


def test_a_store_without_work_tables_reads_as_empty(store):
    assert Users(store).list() == [] and not Users(store).any()
    assert Drafts(store).list() == [] and Users(store).by_token("zt_nothing") is None
    with pytest.raises(UserError, match="no user 'ed'"):
        Users(store).get("ed")


def test_secrets_are_stored_as_hashes_and_sessions_carry_csrf(store):
    users = Users(store)
    user, token = users.add("ed", "editor", password="a long password", actor="admin-token")
    with store.work().reading() as tx:
        row = tx.execute("SELECT password_hash, token_sha256 FROM users WHERE name = ?", ("ed",)).fetchone()
    assert row["password_hash"].startswith("$argon2id$") and "a long password" not in row["password_hash"]
    assert row["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    replica = Users(reopen(store))  # another replica sees the user at once
    assert replica.by_token(token).name == "ed" and replica.check_password("ed", "wrong password!") is None
    session = replica.start_session(replica.check_password("ed", "a long password"))
    seen = users.session(session.id)
    assert seen.csrf == session.csrf and len(session.csrf) >= 24 and seen.user.name == "ed"
    users.disable("ed", actor="admin-token")
    assert users.session(session.id) is None and users.by_token(token) is None
    assert [e.action for e in store.audit()] == ["user.disable", "user.add"]


def test_a_refused_change_writes_no_audit_entry(store):
    users = Users(store)
    users.add("ed", "editor", actor="admin-token")
    for bad in (lambda: users.add("ed", "editor", actor="x"), lambda: users.disable("nobody", actor="x"),
                lambda: users.new_token("nobody", actor="x")):
        with pytest.raises(UserError):
            bad()
    assert [(e.actor, e.action) for e in store.audit()] == [("admin-token", "user.add")]


def test_publish_and_the_draft_marked_published_commit_together(store):
    drafts = Drafts(store)
    draft = drafts.save("t-square", SQUARE, {}, author="ed", role="editor")
    stale = drafts.get(draft.id)
    drafts.review(draft.id, reviewer="rob", role="reviewer", approve=False, comment="redo the east edge")
    # A second reviewer approving the copy they read before the rejection: the draft is no
    # longer pending, so the version written in the same transaction is undone with it.
    with pytest.raises(DraftError, match="reviewed by someone else"):
        drafts._publish(stale, reviewer="rita", role="reviewer", comment=None, client=None)
    assert store.head() == 1 and reopen(store).head() == 1
    assert [e.action for e in store.audit()] == ["draft.reject", "draft.save"]
    assert drafts.get(draft.id).status == "rejected"

    again = drafts.save("t-square", SQUARE, {}, author="ed", role="editor", draft_id=draft.id)
    published = drafts.review(again.id, reviewer="rita", role="reviewer", approve=True)
    info = store.current()
    assert published.status == "published" and published.version == info.version == 2
    assert info.action == "publish" and "ed" in info.author and "rita" in info.author
    entry = store.audit(1)[0]
    assert (entry.actor, entry.action, entry.version) == ("rita", "publish", 2)
    served = store.load()
    assert served.loc[served["zone_id"] == "t-square", "accuracy"].item() == "traced"


def test_a_failing_work_write_undoes_the_version(store, sample_zones):
    def fail(tx, info):
        tx.execute("INSERT INTO users (name, role, disabled, created_at, created_by) VALUES (?, ?, 0, ?, ?)",
                   ("ghost", "admin", info.created_at, "x"))
        raise StoreError("refused after writing")

    with pytest.raises(StoreError, match="refused after writing"):
        store.save(sample_zones.iloc[:2], action="edit", audit=AuditEvent(actor="x", action="edit"), work=fail)
    assert store.head() == 1 and store.audit() == [] and Users(store).list() == []


def test_the_sites_registry_is_replaced_whole_and_seen_by_every_replica(store):
    import geopandas as gpd

    from geo.impact import load_sites, save_sites

    sites = gpd.GeoDataFrame({"site_id": ["F2", "F1"], "name": ["二号", "一号养殖场"], "head": [1200, None],
                              "permit": ["京-1", "京-2"]},
                             geometry=[shapely.Point(116.05, 39.95), SQUARE], crs="EPSG:4326")
    assert load_sites(store).empty
    save_sites(sites, store, AuditEvent(actor="ed", action="sites.replace", detail={"sites": 2}))
    loaded = load_sites(reopen(store))
    assert list(loaded.columns) == ["site_id", "name", "head", "permit", "geometry"]
    assert loaded["site_id"].tolist() == ["F2", "F1"] and loaded["permit"].tolist() == ["京-1", "京-2"]
    assert loaded["head"].iloc[0] == 1200 and loaded.geometry.iloc[1].equals(SQUARE)
    save_sites(sites.iloc[:1], store)
    assert load_sites(store)["site_id"].tolist() == ["F2"]
    assert [e.action for e in store.audit()] == ["sites.replace"]


def test_a_store_of_the_earlier_release_gets_the_new_work_tables_and_keeps_its_users(tmp_path, sample_zones):
    """The earlier release created users, sessions and drafts only; the rest comes on first use."""
    import sqlite3

    from geo.store import GeoPackageStore

    store = GeoPackageStore(tmp_path / "zones.gpkg")
    store.save(sample_zones, action="init")
    with sqlite3.connect(store.path) as db:
        db.execute("CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT, "
                   "token_sha256 TEXT UNIQUE, disabled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, "
                   "created_by TEXT NOT NULL)")
        db.execute("INSERT INTO users VALUES ('ed', 'editor', NULL, NULL, 0, '2026-01-01T00:00:00+00:00', 'x')")
    assert [u.name for u in Users(store).list()] == ["ed"]
    assert Drafts(store).list() == []
    assert Drafts(store).save("t-square", SQUARE, {}, author="ed", role="editor").id == 1
