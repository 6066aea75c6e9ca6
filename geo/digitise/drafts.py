"""Drafts of traced zones: saved by an editor, approved or rejected by a different reviewer,
published as one store version.

A draft is the zone's record as the texts give it (:func:`worklist.zone_target`: document,
article, issuer, dates, rules, stated area) plus the traced geometry (WGS84), with
``accuracy: traced`` and a ``method`` that says how to redo it: the sheet's SHA-256 and
page, the control points, the transform and its RMS, and the trace parameters (or that it
was drawn by hand). Its computed geodesic area is checked against the stated area with the
build report's tolerance (±5 %).

States: ``pending`` (saved, waiting for review) -> ``published`` (a reviewer approved it:
the store got a new version with author and reviewer recorded) or ``rejected`` (with the
reviewer's comment; the editor may save it again, which makes it pending). The author can
never review their own draft. Every state change is written to the audit log in its own
transaction; publishing writes the version, its audit entry and the draft marked published
in one store transaction (``SQLStore.save(work=…)``), so a draft is published exactly when
its version exists. The drafts table is one of the store's work tables (``geo.store.work``),
the same on the GeoPackage and the PostGIS store.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

import geopandas as gpd
import shapely
from shapely.geometry.base import BaseGeometry

from geo.crs import geodesic_area_m2
from geo.digitise.worklist import zone_target
from geo.schema import ZONE_COLUMNS, zones_from_records
from geo.store import AuditEvent, StoreBackend

AREA_TOLERANCE = 0.05  # the build report's stated-vs-computed check
STATES = ("pending", "rejected", "published")

class DraftError(ValueError):
    """A draft that cannot be saved, reviewed or published; the message says why."""


class DraftNotFoundError(DraftError):
    pass


class DraftPermissionError(DraftError):
    """The user may not do this to this draft (e.g. review their own)."""


@dataclass(frozen=True)
class Draft:
    id: int
    zone_id: str
    status: str
    author: str
    created_at: str
    updated_at: str
    geometry: dict[str, Any]  # GeoJSON, WGS84
    record: dict[str, Any]  # the zone row without geometry
    provenance: dict[str, Any]  # sheet, georef, trace
    reviewer: str | None
    comment: str | None
    reviewed_at: str | None
    version: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def shape(self) -> BaseGeometry:
        return shapely.geometry.shape(self.geometry)


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _row(row) -> Draft:
    return Draft(**{**dict(row), "geometry": json.loads(row["geometry"]), "record": json.loads(row["record"]),
                    "provenance": json.loads(row["provenance"])})


def area_check(geometry: BaseGeometry, stated_km2: float | None) -> dict[str, Any]:
    """Computed geodesic area vs the stated one: the ratio and whether it is within ±5 %."""
    area = float(geodesic_area_m2(geometry)) / 1e6
    if stated_km2 is None:
        return {"area_km2": round(area, 4), "stated_area_km2": None, "ratio": None, "ok": None}
    ratio = area / stated_km2 if stated_km2 else None
    return {"area_km2": round(area, 4), "stated_area_km2": stated_km2,
            "ratio": None if ratio is None else round(ratio, 4),
            "ok": None if ratio is None else abs(ratio - 1) <= AREA_TOLERANCE}


def method_text(provenance: dict[str, Any]) -> str:
    """One paragraph that lets anyone redo the trace (stored as the zone's ``method``)."""
    sheet, georef, trace = provenance.get("sheet"), provenance.get("georef"), provenance.get("trace")
    parts = ["依官方附图配准描绘 / traced from the official map sheet"]
    if sheet:
        parts.append(f"{sheet.get('filename') or 'sheet'} (SHA-256 {sheet['sha256']}, page {sheet.get('page', 1)})")
    if georef:
        points = "; ".join(f"{p['px']:.1f},{p['py']:.1f} -> {p['x']:.6f},{p['y']:.6f}" if abs(p["x"]) < 1000
                           else f"{p['px']:.1f},{p['py']:.1f} -> {p['x']:.2f},{p['y']:.2f}" for p in georef["points"])
        loo = georef.get("loo_rms_m")
        parts.append(f"georeferenced by {georef['method']} on {len(georef['points'])} control points in "
                     f"{georef['crs']} (RMS {georef['rms_m']:.2f} m"
                     + (f", leave-one-out {loo:.2f} m" if loo is not None else "") + f"; pixel -> world: {points})")
    if trace:
        parts.append("traced by colour {colour} (ΔE*ab tolerance {tolerance:g}, closing {close_px} px, "
                     "min area {min_area_m2:g} m², simplified to {simplify_m:g} m, line width {line_width_px:g} px"
                     "{clip})".format(**trace, clip=f", clipped to district {trace['clip_district']}"
                                      if trace.get("clip_district") else ""))
        if provenance.get("edited"):
            parts.append("then edited by hand")
    else:
        parts.append("drawn by hand over the warped sheet")
    return "; ".join(parts) + "."


def _polygonal(geometry: dict[str, Any] | BaseGeometry) -> BaseGeometry:
    try:
        geom = geometry if isinstance(geometry, BaseGeometry) else shapely.geometry.shape(geometry)
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
        raise DraftError(f"the geometry is not GeoJSON ({exc})") from None
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        raise DraftError(f"a traced zone must be a Polygon or MultiPolygon, got {geom.geom_type}")
    if not geom.is_valid:
        raise DraftError(f"the geometry is invalid: {shapely.is_valid_reason(geom)}; fix the outline")
    minx, miny, maxx, maxy = geom.bounds
    if not (73 <= minx <= maxx <= 136 and 3 <= miny <= maxy <= 54):
        raise DraftError(f"the geometry is not WGS84 lon/lat in China (bounds {geom.bounds})")
    return geom


def _decide(tx, draft_id: int, status: str, reviewer: str, comment: str | None, version: int | None) -> None:
    """Mark a pending draft reviewed, in the caller's transaction; refused if it is no longer pending."""
    done = tx.execute("UPDATE drafts SET status = ?, reviewer = ?, comment = ?, reviewed_at = ?, version = ? "
                      "WHERE id = ? AND status = 'pending'", (status, reviewer, comment, _now(), version, draft_id))
    if not done.rowcount:
        raise DraftError(f"draft {draft_id} was reviewed by someone else meanwhile")


class Drafts:
    def __init__(self, store: StoreBackend):
        self.store = store
        self.tables = store.work()

    @staticmethod
    def _audit(tx, action: str, zone_id: str, draft_id: int, actor: str, role: str | None, client: str | None,
               **detail) -> None:
        tx.audit(AuditEvent(actor=actor, role=role, action=action, target=zone_id,
                            detail={"draft": draft_id, **detail}, client=client))

    # -- reading ---------------------------------------------------------------------------
    def list(self, status: str | None = None, zone_id: str | None = None) -> list[Draft]:
        with self.tables.reading() as db:
            if db is None:
                return []
            where = [c for c, v in (("status = ?", status), ("zone_id = ?", zone_id)) if v is not None]
            params = [v for v in (status, zone_id) if v is not None]
            sql = f"SELECT * FROM drafts {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id DESC"
            return [_row(r) for r in db.execute(sql, params)]

    def get(self, draft_id: int) -> Draft:
        with self.tables.reading() as db:
            row = db.execute("SELECT * FROM drafts WHERE id = ?", (draft_id,)).fetchone() if db else None
        if row is None:
            raise DraftNotFoundError(f"there is no draft {draft_id}")
        return _row(row)

    def pending_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.list("pending"):
            counts[d.zone_id] = counts.get(d.zone_id, 0) + 1
        return counts

    def review_view(self, draft: Draft, served: gpd.GeoDataFrame) -> dict[str, Any]:
        """The draft with its area check and the served version of the zone (for the diff)."""
        current = served[served["zone_id"] == draft.zone_id]
        before = None
        if not current.empty:
            geom = current.geometry.iloc[0]
            after = draft.shape
            before = {"accuracy": current["accuracy"].iloc[0], "area_km2": float(current["area_km2"].iloc[0]),
                      "geometry": shapely.geometry.mapping(geom),
                      "overlap_share": round(float(geom.intersection(after).area / after.union(geom).area), 4)}
        return {**draft.as_dict(), "area_check": area_check(draft.shape, draft.record.get("stated_area_km2")),
                "served": before}

    # -- writing ---------------------------------------------------------------------------
    def save(self, zone_id: str, geometry: dict[str, Any] | BaseGeometry, provenance: dict[str, Any], *,
             author: str, role: str | None, client: str | None = None, draft_id: int | None = None) -> Draft:
        """Save a new draft of ``zone_id`` (or replace draft ``draft_id``'s geometry, by its author)."""
        geom = _polygonal(geometry)
        zones = self.store.load()
        target = zone_target(zone_id, zones)
        if target is None:
            raise DraftError(f"zone {zone_id!r} is neither in the recipes nor served: nothing to trace it for")
        record = {k: target.get(k) for k in ZONE_COLUMNS if k not in ("area_km2",)}
        record.update(accuracy="traced", method=method_text(provenance))
        record["area_km2"] = area_check(geom, record.get("stated_area_km2"))["area_km2"]
        now = _now()
        with self.tables.writing() as db:
            if draft_id is None:
                draft_id = db.insert("INSERT INTO drafts (zone_id, status, author, created_at, updated_at, geometry, "
                                     "record, provenance) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?) RETURNING id",
                                     (zone_id, author, now, now, json.dumps(shapely.geometry.mapping(geom)),
                                      json.dumps(record, ensure_ascii=False),
                                      json.dumps(provenance, ensure_ascii=False)))
            else:
                row = db.execute("SELECT * FROM drafts WHERE id = ?", (draft_id,)).fetchone()
                if row is None:
                    raise DraftNotFoundError(f"there is no draft {draft_id}")
                if row["status"] == "published":
                    raise DraftError(f"draft {draft_id} is published; start a new draft")
                if row["author"] != author and role != "admin":
                    raise DraftPermissionError(f"draft {draft_id} is {row['author']}'s; only they can change it")
                db.execute("UPDATE drafts SET status = 'pending', updated_at = ?, geometry = ?, record = ?, "
                           "provenance = ?, reviewer = NULL, reviewed_at = NULL WHERE id = ?",
                           (now, json.dumps(shapely.geometry.mapping(geom)), json.dumps(record, ensure_ascii=False),
                            json.dumps(provenance, ensure_ascii=False), draft_id))
            self._audit(db, "draft.save", zone_id, draft_id, author, role, client, area_km2=record["area_km2"])
        return self.get(draft_id)

    def review(self, draft_id: int, *, reviewer: str, role: str | None, approve: bool, comment: str | None = None,
               client: str | None = None) -> Draft:
        """Approve (publish) or reject a pending draft. The caller has checked the reviewer
        role; here the author is refused and a rejection needs a comment."""
        draft = self.get(draft_id)
        if draft.status != "pending":
            raise DraftError(f"draft {draft_id} is {draft.status}, not pending review")
        if draft.author == reviewer:
            raise DraftPermissionError(f"{reviewer} wrote draft {draft_id} and cannot review it; another reviewer "
                                       "must / 作者不能审核自己的草稿")
        if not approve:
            if not (comment or "").strip():
                raise DraftError("a rejection needs a comment telling the editor what to fix")
            with self.tables.writing() as db:
                _decide(db, draft_id, "rejected", reviewer, comment.strip(), None)
                self._audit(db, "draft.reject", draft.zone_id, draft_id, reviewer, role, client,
                            comment=comment.strip())
            return self.get(draft_id)
        return self._publish(draft, reviewer=reviewer, role=role, comment=comment, client=client)

    def _publish(self, draft: Draft, *, reviewer: str, role: str | None, comment: str | None,
                 client: str | None) -> Draft:
        zones, info = self.store.snapshot()
        record = dict(draft.record)
        record["method"] = f"{record['method']} Drafted by {draft.author}, reviewed and approved by {reviewer}."
        if record.get("parent_id") and record["parent_id"] not in set(zones["zone_id"]):
            record["parent_id"] = None  # the parent zone is not drawn (yet): the table allows no dangling link
        rows = [r for r in zones.to_dict("records") if r["zone_id"] != draft.zone_id]
        rows.append({**record, "geometry": draft.shape})
        new = zones_from_records(rows)
        sheet = draft.provenance.get("sheet") or {}
        self.store.save(
            new, action="publish", author=f"{draft.author} (reviewer {reviewer})",
            source=sheet.get("filename"), source_sha256=sheet.get("sha256"), base_version=info.version,
            note=f"workbench draft {draft.id}: {draft.zone_id} traced by {draft.author}, approved by {reviewer}",
            audit=AuditEvent(actor=reviewer, role=role, action="publish", target=draft.zone_id, client=client,
                             detail={"draft": draft.id, "author": draft.author, "comment": comment}),
            work=lambda tx, info: _decide(tx, draft.id, "published", reviewer, comment, info.version))
        return self.get(draft.id)
