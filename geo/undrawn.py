"""Zones the documents define but that could not be drawn: their records, in words a reader acts on.

A recipe marks such a zone ``geometry: {op: not_digitised, why: <type>, reason: <note>}``.
``data/boundaries/undrawn_reasons.yaml`` holds one short user-facing reason and one
"what to do" per type, in Chinese and English, with ``{issuer}``, ``{doc}``,
``{name_zh}``/``{name_en}`` filled in from the zone; a zone may override any of the four
texts in its geometry spec. The research note (``reason``) goes to the report only, as
``method_note``: it cites working files that are not part of the service's answers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geo.paths import BOUNDARIES_DIR
from geo.yamlfile import read_yaml

REASONS_PATH = BOUNDARIES_DIR / "undrawn_reasons.yaml"
TEXT_KEYS = ("reason_zh", "reason_en", "what_to_do_zh", "what_to_do_en")


class UndrawnReasonError(ValueError):
    """An unknown reason type, or a phrase table entry missing a text."""


@functools.lru_cache(maxsize=4)
def reason_table(path: Path = REASONS_PATH) -> tuple[str, dict[str, dict[str, str]]]:
    """(default type, type -> the four texts)."""
    raw = read_yaml(path)
    types = {}
    for name, texts in (raw.get("types") or {}).items():
        missing = [k for k in TEXT_KEYS if not str((texts or {}).get(k) or "").strip()]
        if missing:
            raise UndrawnReasonError(f"{Path(path).name}: type {name}: {', '.join(missing)} required")
        types[name] = {k: str(texts[k]).strip() for k in TEXT_KEYS}
    default = raw.get("default")
    if default not in types:
        raise UndrawnReasonError(f"{Path(path).name}: default {default!r} is not a type")
    return default, types


def user_texts(spec: Mapping[str, Any], zone: Mapping[str, Any], path: Path = REASONS_PATH) -> dict[str, str]:
    """The four user-facing texts of a not-digitised zone.

    ``spec`` is its geometry spec (``why`` and per-zone overrides); ``zone`` has
    ``issuer``, ``doc_no``, ``article``, ``name_zh``, ``name_en``. A zone built from parts
    none of which is drawn (a union, not a ``not_digitised`` spec) is ``parts_not_drawn``.
    """
    default, types = reason_table(path)
    why = spec.get("why") or (default if spec.get("op") == "not_digitised" else "parts_not_drawn")
    if why not in types:
        raise UndrawnReasonError(f"why: {why!r} is not a reason type; known: {', '.join(types)}")
    doc = " ".join(str(p) for p in (zone.get("doc_no"), zone.get("article")) if p)
    fill = {"issuer": zone.get("issuer") or "发文机关", "doc": doc or zone.get("name_zh") or "",
            "name_zh": zone.get("name_zh") or "", "name_en": zone.get("name_en") or ""}
    out = {}
    for key in TEXT_KEYS:
        template = spec.get(key) or types[why][key]
        lang_fill = dict(fill)
        if key.endswith("_en") and not zone.get("issuer"):
            lang_fill["issuer"] = "the issuing body"
        out[key] = str(template).format(**lang_fill)
    out["reason_type"] = why
    return out
