"""JSON request bodies parsed with bounds: nesting depth, coordinate arrays, number size.

``json.loads`` recurses once per nesting level in C and raises RecursionError (a 500) on a
body nested 200 000 deep, and builds every Python object before a caller can count
vertices. Here a body is first bounded by what it can hold — every GeoJSON position is
one ``[``, so counting that byte (a C loop, ~8 ms for 20 MB) bounds the vertices or points
*before* any object is built — then parsed by pydantic-core's Rust parser, which stops at
:data:`MAX_JSON_DEPTH` levels instead of exhausting the stack and is about twice as fast.
Integers with hundreds of digits parse as Python ints; the readers turn them into floats
and refuse what does not fit (OverflowError).
"""

from __future__ import annotations

from typing import Any

import pydantic_core

# pydantic-core's fixed recursion limit; GeoJSON needs 6 levels (MultiPolygon in a Feature).
MAX_JSON_DEPTH = 200


class JSONBodyError(ValueError):
    """The body is not JSON, is nested too deep or holds more arrays than allowed."""


class TooManyArraysError(JSONBodyError):
    """More ``[`` than the caller's bound on coordinates."""


def load_json(body: bytes, *, max_arrays: int | None = None, what: str = "valid JSON",
              subject: str = "the body") -> Any:
    """Parse ``body`` (UTF-8, an optional BOM) after checking it has at most ``max_arrays`` arrays;
    messages call it ``subject`` (a file read by the CLI is "the file", never "the body")."""
    body = body.removeprefix(b"\xef\xbb\xbf")
    if max_arrays is not None and body.count(b"[") > max_arrays:
        raise TooManyArraysError(f"{subject} holds more than {max_arrays} coordinate arrays")
    try:
        return pydantic_core.from_json(body)
    except ValueError as exc:
        reason = str(exc)
        if "recursion limit" in reason:
            reason = f"nested too deeply: nested deeper than {MAX_JSON_DEPTH} levels ({reason})"
        raise JSONBodyError(f"{subject} is not {what}: {reason}") from None


