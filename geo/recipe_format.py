"""Zone recipes, part 1: the declarative YAML format, its parser and the operation registry.

A recipe file (``data/boundaries/recipes/<district>.yaml``, described in full in that
folder's README.md) turns a gazette's words into zone rows::

    district:   {code, name_zh, name_en}
    documents:  {key: {doc_no, title, issuer, issued_on, effective_from, effective_to, seed}}
    rules:      {key: {text_zh, text_en, governs}}      # verbatim wording + translation + activities
    places:     {key: {name_zh, lon, lat, crs, source}}  # cited coordinates, never invented
    partitions: {key: {of: spec, seeds: {cell: place | [places]}, target_areas_km2: {cell: km2}}}
    zones:      [{id, parent, layer, kind, name_zh, name_en, document, article,
                  stated_area_km2, rules, accuracy, notes, method_note, geometry: spec}]
    checks:     [{sum_of: [...], equals: ...} | {area_matches: id} | {parts: [...], cover: ...}]

A geometry ``spec`` is a mapping ``{op: name, ...}``; in the lists of ``union``,
``intersection`` and ``difference`` a bare string is shorthand for ``{op: ref, id: ...}``.
Operations live in a registry: ``@operation("name")`` on a function ``(spec, ctx) ->
shapely geometry`` (WGS84) adds one; they are defined in ``geo.recipe_ops``, the build
context that evaluates them in ``geo.recipe_context``, and ``geo.recipes`` gathers all
three. ``{op: not_digitised, reason}`` marks a zone the texts name but that cannot be
drawn honestly: it is reported, not built.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from geo import crs as geocrs
from geo.schema import ACCURACY, LAYERS
from geo.yamlfile import read_yaml

if TYPE_CHECKING:
    from geo.recipe_context import BuildContext

Spec = Mapping[str, Any]

TOP_KEYS = {"district", "documents", "rules", "places", "partitions", "zones", "checks"}
ZONE_KEYS = {
    "id", "parent", "layer", "kind", "name_zh", "name_en", "document", "article",
    "stated_area_km2", "stated_area_note", "rules", "accuracy", "notes", "method_note",
    "geometry", "district", "issuer", "issued_on", "effective_from", "effective_to",
}
DOCUMENT_KEYS = {"doc_no", "title", "issuer", "issued_on", "effective_from", "effective_to", "seed", "note"}
PLACE_KEYS = {"name_zh", "name_en", "lon", "lat", "crs", "source", "note"}
PARTITION_KEYS = {"of", "seeds", "target_areas_km2", "method_note"}


class RecipeError(ValueError):
    """A recipe is malformed or cannot be built; the message names file, zone and field."""


class NotDigitised(Exception):  # noqa: N818 - a state, not a failure
    """Raised by the ``not_digitised`` operation: the zone is reported, not built."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------- parsed recipe


@dataclass(frozen=True)
class Place:
    key: str
    name_zh: str
    name_en: str | None
    lon: float  # WGS84, converted from the cited CRS
    lat: float
    crs: str
    source: str
    cited: tuple[float, float]  # as typed in the recipe, in ``crs``

    @property
    def point(self) -> Point:
        return Point(self.lon, self.lat)


@dataclass
class ZoneEntry:
    id: str
    recipe: Recipe
    data: dict[str, Any]

    @property
    def geometry_spec(self) -> Spec:
        return self.data["geometry"]

    @property
    def digitised(self) -> bool:
        return self.geometry_spec.get("op") != "not_digitised"

    def where(self) -> str:
        return f"{self.recipe.path.name}: zone {self.id}"


@dataclass
class Recipe:
    path: Path
    district: dict[str, str]
    documents: dict[str, dict[str, Any]]
    rules: dict[str, dict[str, Any]]
    places: dict[str, Place]
    partitions: dict[str, dict[str, Any]]
    zones: list[ZoneEntry] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def place(self, key: Any, where: str) -> Place:
        if not isinstance(key, str) or key not in self.places:
            known = ", ".join(sorted(self.places)) or "none"
            raise RecipeError(f"{where}: unknown place {key!r} (places in {self.path.name}: {known})")
        return self.places[key]


def _iso_date(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise RecipeError(f"{where}: {value!r} is not a YYYY-MM-DD date") from None


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RecipeError(f"{where}: expected a mapping, got {type(value).__name__}")
    return dict(value)


def _unknown_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _parse_place(key: str, data: Any, where: str) -> Place:
    data = _mapping(data, where)
    _unknown_keys(data, PLACE_KEYS, where)
    for need in ("name_zh", "lon", "lat", "crs", "source"):
        if data.get(need) in (None, ""):
            raise RecipeError(f"{where}: {need} is required (every coordinate cites its source)")
    try:
        crs = geocrs.parse_crs(data["crs"])
        lon, lat = geocrs.to_wgs84(float(data["lon"]), float(data["lat"]), crs)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where}: {exc}") from None
    return Place(key, str(data["name_zh"]), data.get("name_en"), float(lon), float(lat), crs,
                 str(data["source"]), (float(data["lon"]), float(data["lat"])))


RULE_KEYS = {"code", "text_zh", "text_en", "governs"}
GOVERNS_KEYS = {"activity", "effect", "quote", "condition_zh", "condition_en", "in_layers"}


def _parse_rule(key: str, data: Any, where: str) -> dict[str, Any]:
    """A rule: code, verbatim text, translation, and what it ``governs`` (required).

    ``governs: none`` says the rule rules on no activity (a plan target, a scope, a
    compensation formula); otherwise it is a list of ``{activity, effect, quote}`` with
    ``condition_zh``/``condition_en`` for ``restricted`` and ``required`` effects and an
    optional ``in_layers`` (the mapping holds only in zones of those layers). Every
    quote must be the rule's own words (pieces around "……" each found in ``text_zh``).
    """
    data = _mapping(data, where)
    _unknown_keys(data, RULE_KEYS, where)
    rule: dict[str, Any] = {"code": str(data.get("code") or key), "text_zh": data.get("text_zh"),
                            "text_en": data.get("text_en")}
    for need in ("text_zh", "text_en"):
        if not isinstance(rule[need], str) or not rule[need].strip():
            raise RecipeError(f"{where}: {need} is required")
    rule["governs"] = _parse_governs(data.get("governs", _MISSING), rule["text_zh"], where)
    return rule


_MISSING = object()


def _parse_governs(value: Any, text_zh: str, where: str) -> list[dict[str, Any]]:
    from geo.activities import EFFECTS, activity_codes

    if value is _MISSING:
        raise RecipeError(f"{where}: governs is required: list the activities the rule rules on "
                          f"(activity, effect, quote) or write 'governs: none'")
    if value == "none":
        return []
    if not isinstance(value, list) or not value:
        raise RecipeError(f"{where}: governs must be 'none' or a non-empty list of {{activity, effect, quote}}")
    codes, out = activity_codes(), []
    for i, item in enumerate(value):
        at = f"{where}: governs[{i}]"
        item = _mapping(item, at)
        _unknown_keys(item, GOVERNS_KEYS, at)
        if item.get("activity") not in codes:
            raise RecipeError(f"{at}: activity {item.get('activity')!r} is not in the activity catalogue "
                              f"(data/boundaries/activities.yaml)")
        if item.get("effect") not in EFFECTS:
            raise RecipeError(f"{at}: effect {item.get('effect')!r} is not one of {', '.join(EFFECTS)}")
        quote = item.get("quote")
        if not isinstance(quote, str) or not quote.strip():
            raise RecipeError(f"{at}: quote is required (the rule's own words that decide the effect)")
        flat = "".join(text_zh.split())
        missing = [piece for piece in quote.split("……") if "".join(piece.split()) not in flat]
        if missing:
            raise RecipeError(f"{at}: quote {missing[0]!r} is not in the rule's text_zh")
        conditional = item["effect"] in ("restricted", "required")
        for lang in ("condition_zh", "condition_en"):
            if conditional and not str(item.get(lang) or "").strip():
                raise RecipeError(f"{at}: {lang} is required for effect {item['effect']} (say which condition "
                                  f"or obligation)")
        layers = item.get("in_layers")
        if layers is not None and (not isinstance(layers, list) or not set(layers) <= set(LAYERS)):
            raise RecipeError(f"{at}: in_layers must be a list of layer ids ({', '.join(LAYERS)})")
        out.append({"activity": item["activity"], "effect": item["effect"], "quote_zh": quote.strip(),
                    "condition_zh": item.get("condition_zh"), "condition_en": item.get("condition_en"),
                    "in_layers": layers})
    return out


def zone_rule_record(rule: Mapping[str, Any], layer: str) -> dict[str, Any]:
    """A parsed rule as a zone row carries it: ``activities`` are the mappings that hold
    in a zone of ``layer`` (``in_layers`` resolved)."""
    activities = [{k: v for k, v in g.items() if k != "in_layers"} for g in rule["governs"]
                  if g["in_layers"] is None or layer in g["in_layers"]]
    return {"code": rule["code"], "text_zh": rule["text_zh"], "text_en": rule["text_en"], "activities": activities}


def load_recipe(path: Path) -> Recipe:
    """Parse one recipe file; raises RecipeError naming the file and the entry."""
    from geo import recipe_ops  # noqa: F401 - registers the operations the geometry specs name
    path = Path(path)
    try:
        raw = read_yaml(path)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path.name}: not valid YAML: {exc}") from None
    raw = _mapping(raw, path.name)
    _unknown_keys(raw, TOP_KEYS, path.name)
    district = _mapping(raw.get("district"), f"{path.name}: district")
    for need in ("code", "name_zh"):
        if not district.get(need):
            raise RecipeError(f"{path.name}: district.{need} is required")
    district = {k: str(v) for k, v in district.items()}

    documents = {}
    for key, doc in _mapping(raw.get("documents"), f"{path.name}: documents").items():
        where = f"{path.name}: document {key}"
        doc = _mapping(doc, where)
        _unknown_keys(doc, DOCUMENT_KEYS, where)
        for need in ("doc_no", "title", "issuer", "issued_on", "effective_from"):
            if not doc.get(need):
                raise RecipeError(f"{where}: {need} is required")
        for date_key in ("issued_on", "effective_from", "effective_to"):
            doc[date_key] = _iso_date(doc.get(date_key), f"{where}: {date_key}")
        documents[str(key)] = doc

    rules = {str(k): _parse_rule(str(k), v, f"{path.name}: rule {k}")
             for k, v in _mapping(raw.get("rules"), f"{path.name}: rules").items()}
    places = {str(k): _parse_place(str(k), v, f"{path.name}: place {k}")
              for k, v in _mapping(raw.get("places"), f"{path.name}: places").items()}
    partitions = {}
    for key, part in _mapping(raw.get("partitions"), f"{path.name}: partitions").items():
        where = f"{path.name}: partition {key}"
        part = _mapping(part, where)
        _unknown_keys(part, PARTITION_KEYS, where)
        if "of" not in part or not _mapping(part.get("seeds"), where):
            raise RecipeError(f"{where}: needs 'of' and 'seeds'")
        partitions[str(key)] = part

    recipe = Recipe(path, district, documents, rules, places, partitions)
    zones = raw.get("zones") or []
    if not isinstance(zones, list):
        raise RecipeError(f"{path.name}: zones must be a list")
    for i, data in enumerate(zones):
        recipe.zones.append(_parse_zone(recipe, data, f"{path.name}: zones[{i}]"))
    checks = raw.get("checks") or []
    if not isinstance(checks, list) or not all(isinstance(c, Mapping) for c in checks):
        raise RecipeError(f"{path.name}: checks must be a list of mappings")
    recipe.checks = [dict(c) for c in checks]
    return recipe


def _parse_zone(recipe: Recipe, data: Any, where: str) -> ZoneEntry:
    data = _mapping(data, where)
    zid = data.get("id")
    if not isinstance(zid, str) or not zid:
        raise RecipeError(f"{where}: id is required")
    where = f"{recipe.path.name}: zone {zid}"
    _unknown_keys(data, ZONE_KEYS, where)
    for need in ("layer", "kind", "name_zh", "name_en", "accuracy", "geometry"):
        if data.get(need) in (None, ""):
            raise RecipeError(f"{where}: {need} is required")
    if data["layer"] not in LAYERS:
        raise RecipeError(f"{where}: layer {data['layer']!r} is unknown; known: {', '.join(LAYERS)}")
    if data["accuracy"] not in ACCURACY:
        raise RecipeError(f"{where}: accuracy {data['accuracy']!r} is not one of {', '.join(ACCURACY)}")
    doc_key = data.get("document")
    if doc_key is not None and doc_key not in recipe.documents:
        raise RecipeError(f"{where}: unknown document {doc_key!r}")
    if doc_key is None and data["layer"] != "admin":
        raise RecipeError(f"{where}: document is required (every non-admin zone cites its document)")
    for date_key in ("issued_on", "effective_from", "effective_to"):
        if date_key in data:
            data[date_key] = _iso_date(data[date_key], f"{where}: {date_key}")
    data["rules"] = [zone_rule_record(_zone_rule(recipe, r, f"{where}: rules"), data["layer"])
                     for r in (data.get("rules") or [])]
    spec = data["geometry"]
    if not isinstance(spec, Mapping):
        raise RecipeError(f"{where}: geometry must be a mapping with 'op'")
    _check_spec(spec, where)
    if _calibrates(spec) and data["accuracy"] != "approximate":
        raise RecipeError(f"{where}: calibrate_area_km2 is only allowed with accuracy: approximate "
                          f"(got {data['accuracy']!r}); a calibrated geometry is never official")
    if spec.get("op") == "not_digitised" and not str(spec.get("reason") or "").strip():
        raise RecipeError(f"{where}: not_digitised needs a reason")
    return ZoneEntry(zid, recipe, data)


def _zone_rule(recipe: Recipe, rule: Any, where: str) -> dict[str, Any]:
    if isinstance(rule, str):
        if rule not in recipe.rules:
            raise RecipeError(f"{where}: unknown rule {rule!r}")
        return dict(recipe.rules[rule])
    rule = _mapping(rule, where)
    if not rule.get("code"):
        raise RecipeError(f"{where}: an inline rule needs a code")
    return _parse_rule(str(rule["code"]), rule, where)


def _subspecs(spec: Spec) -> Iterable[Any]:
    """The nested geometry specs of a spec (strings are zone-id shorthands)."""
    for key in SPEC_PARAMS.get(spec.get("op"), ()):
        value = spec.get(key)
        if isinstance(value, list):
            yield from value
        elif value is not None:
            yield value


def _check_spec(spec: Any, where: str) -> None:
    if isinstance(spec, str):
        return
    if not isinstance(spec, Mapping) or "op" not in spec:
        raise RecipeError(f"{where}: a geometry spec must be a zone id or a mapping with 'op', got {spec!r}")
    if spec["op"] not in OPERATIONS:
        raise RecipeError(f"{where}: unknown op {spec['op']!r}; known: {', '.join(sorted(OPERATIONS))}")
    for sub in _subspecs(spec):
        _check_spec(sub, where)


def _calibrates(spec: Any) -> bool:
    if not isinstance(spec, Mapping):
        return False
    return "calibrate_area_km2" in spec or any(_calibrates(s) for s in _subspecs(spec))


def load_recipes(recipes_dir: Path) -> list[Recipe]:
    """Every ``*.yaml`` recipe in the folder, in file-name order."""
    recipes_dir = Path(recipes_dir)
    if not recipes_dir.is_dir():
        raise RecipeError(f"recipe folder {recipes_dir} does not exist")
    paths = sorted(recipes_dir.glob("*.yaml"))
    if not paths:
        raise RecipeError(f"no *.yaml recipes in {recipes_dir}")
    return [load_recipe(p) for p in paths]


# ---------------------------------------------------------------- the operation registry


Operation = Callable[[Spec, "BuildContext"], BaseGeometry]
OPERATIONS: dict[str, Operation] = {}
SPEC_PARAMS: dict[str, tuple[str, ...]] = {}  # op -> parameters holding nested geometry specs


def operation(name: str, specs: tuple[str, ...] = ()) -> Callable[[Operation], Operation]:
    """Register a geometry operation under ``name`` (the recipe's ``op``).

    ``specs`` names the parameters that hold nested geometry specs, so dependency
    ordering and validation can walk into them.
    """
    def register(fn: Operation) -> Operation:
        OPERATIONS[name] = fn
        SPEC_PARAMS[name] = specs
        return fn
    return register


def describe(spec: Any, recipe: Recipe) -> str:
    """Compact text of a spec for the method column: op(key=value, …), places by name."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, list):
        return "[" + ", ".join(describe(s, recipe) for s in spec) + "]"
    if not isinstance(spec, Mapping):
        return str(spec)
    args = []
    for key, value in spec.items():
        if key in ("op", "source", "reason"):
            continue
        if key == "coords":
            value = f"{len(value)} vertices ({spec.get('crs', '?')}, source: {spec.get('source', '?')})"
        elif key in ("place", "from", "to") and isinstance(value, str) and value in recipe.places:
            value = recipe.places[value].name_zh
        elif key == "places" and isinstance(value, list):
            value = "→".join(recipe.places[v].name_zh if v in recipe.places else str(v) for v in value)
        elif isinstance(value, Mapping | list):
            value = describe(value, recipe)
        args.append(f"{key}={value}")
    return f"{spec.get('op')}({', '.join(args)})"



class NotDigitisedRef(RecipeError):
    """A geometry refers to a zone that is not digitised."""

    def __init__(self, zid: str, reason: str):
        super().__init__(f"refers to zone {zid!r}, which is not digitised ({reason})")
        self.zid = zid

