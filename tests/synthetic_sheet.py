"""A synthetic official map sheet (附图) with a known zone, for the digitising tests.

The zone is a polygon with a hole in EPSG:4548 metres inside 门头沟. The sheet is drawn
on a pixel grid that is rotated, scaled (4 m per pixel) and offset against the ground,
like a scanned paper map: a kilometre grid with labels, the district outline, the zone
hatched and outlined in red, a blue zone and a red legend swatch as distractors, text
labels, then JPEG compression noise. Control points are kilometre-grid crossings whose
pixel positions carry 1–2 px of random error, as a person clicking them would.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass

import numpy as np
import shapely
from PIL import Image, ImageDraw, ImageFont

from geo import crs
from geo.base import DISTRICTS_PATH
from geo.digitise.georef import ControlPoint

RED = (215, 48, 31)
BLUE = (33, 113, 181)
ZONE_COLOUR = "#d7301f"
CENTRE = (410_000.0, 4_423_000.0)  # EPSG:4548, about 115.95°E 39.94°N, 2.4 km from the district edge
METRES_PER_PX = 4.0
ROTATION_DEG = 7.0
SIZE = (2000, 1500)
OUTLINE_PX = 3

# The zone: an irregular outline with a concave notch and a hole (metres from CENTRE).
ZONE_RING = [(-2200, -900), (-600, -1500), (1500, -1100), (2300, 300), (1200, 1300),
             (300, 700), (-400, 1400), (-1900, 900), (-2500, 0)]
ZONE_HOLE = [(400, -500), (900, -500), (900, -100), (400, -100)]
OTHER_RING = [(-3600, 1500), (-2800, 1500), (-2800, 2300), (-3600, 2300)]


@dataclass(frozen=True)
class SyntheticSheet:
    jpeg: bytes
    zone_metric: shapely.Polygon  # EPSG:4548 truth
    zone_wgs84: shapely.Polygon
    world_to_pixel: np.ndarray  # 2 × 3 affine: [px, py] = A @ [mx, my, 1]
    gcps: list[ControlPoint]  # world in EPSG:4548
    gcps_true_pixel: list[tuple[float, float]]

    def pixel_to_metric(self, px, py) -> tuple[np.ndarray, np.ndarray]:
        a = np.vstack([self.world_to_pixel, [0, 0, 1]])
        inv = np.linalg.inv(a)
        x = inv[0, 0] * px + inv[0, 1] * py + inv[0, 2]
        y = inv[1, 0] * px + inv[1, 1] * py + inv[1, 2]
        return x, y

    def pdf(self) -> bytes:
        """The same sheet as a one-page PDF at 200 dpi (a 200 dpi render has the same pixel
        grid). Pillow re-encodes the JPEG inside; at quality 95 without chroma subsampling,
        as a scanner's PDF export would, the 2 px hatch lines keep their colour."""
        out = io.BytesIO()
        Image.open(io.BytesIO(self.jpeg)).save(out, format="PDF", resolution=200.0, quality=95, subsampling=0)
        return out.getvalue()


def _affine() -> np.ndarray:
    """World (EPSG:4548) -> pixel: rotate by ROTATION_DEG, scale 1/METRES_PER_PX, y down,
    CENTRE at the image centre."""
    t = math.radians(ROTATION_DEG)
    s = 1 / METRES_PER_PX
    r = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]) * s
    flip = np.array([[1, 0], [0, -1]])
    lin = flip @ r
    offset = np.array(SIZE, dtype=float) / 2 - lin @ np.array(CENTRE)
    return np.column_stack([lin, offset])


def _to_px(a: np.ndarray, coords) -> list[tuple[float, float]]:
    xy = np.asarray(coords, dtype=float)
    px = xy @ a[:, :2].T + a[:, 2]
    return [(float(x), float(y)) for x, y in px]


def _metric(ring) -> list[tuple[float, float]]:
    return [(CENTRE[0] + dx, CENTRE[1] + dy) for dx, dy in ring]


def make_sheet(seed: int = 14, n_gcps: int = 10, quality: int = 80) -> SyntheticSheet:
    rng = np.random.default_rng(seed)
    a = _affine()
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=18)

    # Kilometre grid over the whole sheet, labelled in km (as printed on 1:10 000 sheets).
    corners = np.array([[0, 0], [SIZE[0], 0], [0, SIZE[1]], [SIZE[0], SIZE[1]]], dtype=float)
    inv = np.linalg.inv(np.vstack([a, [0, 0, 1]]))
    world_corners = corners @ inv[:2, :2].T + inv[:2, 2]
    (x0, y0), (x1, y1) = world_corners.min(axis=0), world_corners.max(axis=0)
    kx = np.arange(math.floor(x0 / 1000), math.ceil(x1 / 1000) + 1) * 1000
    ky = np.arange(math.floor(y0 / 1000), math.ceil(y1 / 1000) + 1) * 1000
    for x in kx:
        draw.line(_to_px(a, [(x, y0), (x, y1)]), fill=(150, 150, 150), width=1)
    for y in ky:
        draw.line(_to_px(a, [(x0, y), (x1, y)]), fill=(150, 150, 150), width=1)
    for x in kx:
        for y in ky[::2]:
            px, py = _to_px(a, [(x + 40, y + 40)])[0]
            draw.text((px, py), f"{int(x / 1000)}/{int(y / 1000)}", fill=(90, 90, 90), font=font)

    # District outline (the reference layer, projected onto the sheet).
    district = next(shapely.geometry.shape(f["geometry"])
                    for f in json.loads(DISTRICTS_PATH.read_text(encoding="utf-8"))["features"]
                    if f["properties"]["adcode"] == "110109")
    district_m = crs.to_metric(district)
    for poly in getattr(district_m, "geoms", [district_m]):
        draw.line(_to_px(a, poly.exterior.coords), fill=(40, 40, 40), width=4)

    # The zone: red hatching at 45° on the sheet, red outline, white hole.
    zone = shapely.Polygon(_metric(ZONE_RING), [_metric(ZONE_HOLE)])
    mask = Image.new("L", SIZE, 0)
    mdraw = ImageDraw.Draw(mask)
    mdraw.polygon(_to_px(a, zone.exterior.coords), fill=255)
    mdraw.polygon(_to_px(a, zone.interiors[0].coords), fill=0)
    hatch = Image.new("RGB", SIZE, "white")
    hdraw = ImageDraw.Draw(hatch)
    for k in range(-SIZE[1], SIZE[0], 8):
        hdraw.line([(k, 0), (k + SIZE[1], SIZE[1])], fill=RED, width=2)
    image.paste(hatch, (0, 0), mask)
    draw.line(_to_px(a, zone.exterior.coords), fill=RED, width=OUTLINE_PX, joint="curve")
    draw.line(_to_px(a, zone.interiors[0].coords), fill=RED, width=OUTLINE_PX, joint="curve")
    # Grid lines are printed over the fill on real sheets.
    for x in kx:
        draw.line(_to_px(a, [(x, y0), (x, y1)]), fill=(150, 150, 150), width=1)
    draw.text(_to_px(a, [(CENTRE[0] - 1500, CENTRE[1] + 100)])[0], "Ban zone / 1", fill="black", font=font)

    # Distractors: another zone in blue, and a red legend swatch (a speck to be dropped).
    draw.polygon(_to_px(a, _metric(OTHER_RING)), fill=BLUE)
    draw.rectangle([40, SIZE[1] - 70, 90, SIZE[1] - 50], fill=RED)
    draw.text((100, SIZE[1] - 72), "Legend: ban zone", fill="black", font=font)

    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)

    # Control points: kilometre crossings spread over the sheet, clicked with 1-2 px error.
    crossings = [(x, y) for x in kx for y in ky
                 if 60 < _to_px(a, [(x, y)])[0][0] < SIZE[0] - 60 and 60 < _to_px(a, [(x, y)])[0][1] < SIZE[1] - 60]
    order = rng.permutation(len(crossings))[:n_gcps]
    gcps, true_px = [], []
    for i in order:
        x, y = crossings[i]
        px, py = _to_px(a, [(x, y)])[0]
        angle, radius = rng.uniform(0, 2 * math.pi), rng.uniform(1.0, 2.0)
        gcps.append(ControlPoint(px + radius * math.cos(angle), py + radius * math.sin(angle), float(x), float(y)))
        true_px.append((px, py))
    return SyntheticSheet(out.getvalue(), zone, crs.from_metric(zone), a, gcps, true_px)


def spread_gcps(sheet: SyntheticSheet, n: int = 4) -> list[ControlPoint]:
    """``n`` of the sheet's control points that are far apart (for the 4-point cases)."""
    pts = np.array([[g.px, g.py] for g in sheet.gcps])
    chosen = [int(np.argmin(pts.sum(axis=1)))]
    while len(chosen) < n:
        d = np.min(np.linalg.norm(pts[:, None] - pts[chosen][None], axis=2), axis=1)
        chosen.append(int(np.argmax(d)))
    return [sheet.gcps[i] for i in chosen]
