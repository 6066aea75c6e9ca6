"""The activity catalogue and the coverage table over HTTP.

* ``GET /v1/activities`` — every activity code a verdict can be asked for (``activity=`` on
  the check endpoints), with names, a short definition and search aliases, and how many
  rules of the bundled documents govern it.
* ``GET /v1/activities/{code}/zones`` — the zones whose rules limit that activity, each with its
  strongest effect (``prohibited`` or ``restricted``): what the tiled map shades, since its
  vector tiles carry no rules.
* ``GET /v1/coverage`` — per Beijing district: data or not, and per layer how many zones
  its documents define, how many are drawn, how many official, for this data version.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from api.check import JSONAnswer
from api.dependencies import lang_param
from api.errors import NotFoundError
from api.place import coverage_answer
from geo.activities import catalogue, mappings, zone_effects

router = APIRouter(tags=["活动与覆盖 activities and coverage"])


@router.get("/v1/activities", summary="Activity catalogue 活动目录",
            description="The activities a verdict can be asked for (`activity=` on /v1/check, /v1/check/site, "
                        "/v1/check/batch). `rules` counts the zone rules in force in this data version that "
                        "govern the activity, by effect.")
def list_activities(request: Request, lang: str = Depends(lang_param)) -> JSONAnswer:
    snap = request.app.state.catalog.snapshot()
    rules = {r["code"]: r for zone_rules in snap.zones["rules"] for r in zone_rules}.values()
    out = []
    for code, item in catalogue().items():
        effects: dict[str, int] = {}
        for _, m in mappings(rules, code):
            effects[m["effect"]] = effects.get(m["effect"], 0) + 1
        out.append({**item, "name": item[f"name_{lang}"], "definition": item[f"definition_{lang}"],
                    "rules": effects})
    return JSONAnswer({"data_version": snap.data_version, "count": len(out), "activities": out})


@router.get("/v1/activities/{code}/zones", summary="Zones that limit an activity 限制该活动的分区",
            description="zone_id → `prohibited` or `restricted` (the strongest limit the zone's rules put on the "
                        "activity), for every zone of this data version that limits it; zones that do not are "
                        "left out.", responses={404: {"description": "Unknown activity code"}})
def activity_zones(request: Request, code: str) -> JSONAnswer:
    if code not in catalogue():
        raise NotFoundError(f"unknown activity {code!r}; GET /v1/activities lists the codes")
    snap = request.app.state.catalog.snapshot()
    effects = snap.derived(f"activity-zones:{code}", lambda zones: zone_effects(
        zip(zones["zone_id"], zones["rules"], strict=True), code))
    return JSONAnswer({"data_version": snap.data_version, "activity": code, "count": len(effects),
                       "zones": effects})


@router.get("/v1/coverage", summary="Coverage per district 覆盖范围",
            description="Per Beijing district: `status` none / partial / full, and per layer how many zones the "
                        "documents define, how many are drawn and how many are official (data version given).")
def coverage(request: Request, lang: str = Depends(lang_param)) -> JSONAnswer:
    return JSONAnswer(coverage_answer(request.app.state.catalog.snapshot(), lang))
