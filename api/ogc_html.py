"""Pieces of the OGC API's HTML pages that are not templates."""

from __future__ import annotations

import math

import numpy as np
import shapely


def geometry_svg(geom, color: str, size: int = 320) -> str:
    """A small inline SVG outline of a WGS84 geometry (north up, longitudes scaled by cos(lat))."""
    minx, miny, maxx, maxy = geom.bounds
    kx = math.cos(math.radians((miny + maxy) / 2))
    span = max((maxx - minx) * kx, maxy - miny, 1e-6)
    pad = span * 0.05
    # Map lon/lat to SVG coordinates: x right, y down.
    shape = shapely.transform(geom, lambda c: np.column_stack([(c[:, 0] - minx) * kx, maxy - c[:, 1]]))
    stroke = span / 150
    inner = shape.svg(scale_factor=stroke * (2 if shape.geom_type.endswith("Point") else 1), fill_color=color)
    view = f"{-pad} {-pad} {(maxx - minx) * kx + 2 * pad} {maxy - miny + 2 * pad}"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="outline" viewBox="{view}" width="{size}" height="{size}" '
            f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="zone outline">{inner}</svg>')
