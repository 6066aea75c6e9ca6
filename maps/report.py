"""The site compliance report (选址合规性审查报告): a map image, HTML and an A4 PDF.

Everything is rendered on the server with no network: the map by matplotlib (Agg) in
CGCS2000 Gauss-Krüger 117°E metres (``geo.crs.to_metric``, so the scale bar is true to
< 0.03 %), the page by Jinja2, the PDF by WeasyPrint with the Debian Noto CJK fonts
embedded (subsets), page numbers in the footer. The content arrives as plain data
(:class:`ReportData`, assembled by the API from the same answers as ``/v1/check/site``);
this module only draws it.
"""

from __future__ import annotations

import base64
import functools
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from jinja2 import Environment, PackageLoader, select_autoescape

from geo.crs import to_metric
from geo.schema import LAYERS
from maps.context import district_context

# Noto CJK from Debian's fonts-noto-cjk: matplotlib finds it by family name.
CJK_FAMILIES = ["Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC", "DejaVu Sans"]
MAP_SIZE_IN = (6.7, 5.2)  # fits A4 portrait inside 2 cm margins
MAP_DPI = 150
MIN_VIEW_M = 2000.0  # the map shows at least 2 km around a small site


@dataclass
class ReportData:
    """What a report says; texts are already in the report's language(s)."""

    lang: str
    title: str
    project: str
    report_id: str
    generated_at: str
    data_version: str
    content_hash: str
    as_of: str
    activity: str | None
    site_wgs84: shapely.Geometry
    site_input_crs: str
    area: dict[str, float]                # m2, mu, ha
    centroid: dict[str, list[float]]      # wgs84 [lon, lat], cgcs2000_gk [x, y] (EPSG:4548)
    zones: list[dict[str, Any]]           # zone answers with overlap_area_m2, share_of_site, share_of_zone
    verdicts: list[dict[str, Any]] = field(default_factory=list)  # {activity, verdict, summary, rules}
    not_digitised: list[dict[str, Any]] = field(default_factory=list)
    accuracy_labels: dict[str, str] = field(default_factory=dict)
    disclaimer: str = ""
    permalink: str = ""
    map_zones: Any = None                  # GeoDataFrame of the zones to draw (WGS84)


# ------------------------------------------------------------------ map image


def _scale_bar_length(span_m: float) -> float:
    """A round length (1, 2 or 5 × 10^k m) near a fifth of the view."""
    target = span_m / 5
    power = 10 ** np.floor(np.log10(target))
    return float(max(m * power for m in (1, 2, 5) if m * power <= target))


def map_png(data: ReportData) -> bytes:
    """The site over the zones and district borders, with scale bar and north arrow (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrow
    from matplotlib.patches import Polygon as PolygonPatch

    plt.rcParams["font.family"] = CJK_FAMILIES
    site = to_metric(np.array([data.site_wgs84], dtype=object))[0]
    minx, miny, maxx, maxy = site.bounds
    half = max(maxx - minx, maxy - miny, MIN_VIEW_M) * 0.75
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    view = shapely.box(cx - half * 1.3, cy - half, cx + half * 1.3, cy + half)
    fig, ax = plt.subplots(figsize=MAP_SIZE_IN, dpi=MAP_DPI)
    ax.set_facecolor("#f7f7f4")

    def draw(geom, **style):
        for part in shapely.get_parts(geom):
            if shapely.get_type_id(part) == 3:
                ax.add_patch(PolygonPatch(shapely.get_coordinates(part.exterior), closed=True, **style))
                for hole in part.interiors:
                    ax.add_patch(PolygonPatch(shapely.get_coordinates(hole), closed=True, facecolor="#f7f7f4",
                                              edgecolor=style.get("edgecolor"), linewidth=0.6))
            elif shapely.get_type_id(part) in (1, 2):
                xy = shapely.get_coordinates(part)
                ax.plot(xy[:, 0], xy[:, 1], color=style.get("edgecolor", "#555"),
                        linewidth=style.get("linewidth", 0.8), linestyle=style.get("linestyle", "-"))
            elif shapely.get_type_id(part) == 0:
                ax.plot(part.x, part.y, marker="^", color=style.get("edgecolor", "#08519c"), markersize=7)

    zones = data.map_zones
    if zones is not None and len(zones):
        metric = to_metric(np.asarray(zones.geometry.values, dtype=object))
        for geom, layer, accuracy in zip(metric, zones["layer"], zones["accuracy"], strict=True):
            if not shapely.intersects(geom, view):
                continue
            colour = LAYERS[layer].color if layer in LAYERS else "#777777"
            clipped = shapely.intersection(geom, view) if shapely.get_type_id(geom) != 0 else geom
            draw(clipped, facecolor=colour + "40", edgecolor=colour, linewidth=1.0,
                 linestyle="-" if accuracy == "official" else "--")
    context = district_context()
    if context is not None:
        lines = to_metric(np.array([context.lines], dtype=object))[0]
        draw(shapely.intersection(lines, view), edgecolor="#666666", linewidth=0.8, linestyle="-.")
        for label in context.labels:
            point = to_metric(np.array([shapely.Point(label.lon, label.lat)], dtype=object))[0]
            if shapely.contains(view, point):
                ax.text(point.x, point.y, label.name_zh if data.lang != "en" else label.name_en,
                        color="#444444", fontsize=9, ha="center")
    if shapely.get_type_id(site) == 0:
        ax.plot(site.x, site.y, marker="*", color="#e31a1c", markersize=16, markeredgecolor="black")
    else:
        draw(site, facecolor="#e31a1c33", edgecolor="#e31a1c", linewidth=2.2)
    vx0, vy0, vx1, vy1 = view.bounds
    ax.set_xlim(vx0, vx1)
    ax.set_ylim(vy0, vy1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    # Scale bar (bottom left) and north arrow (top right). Grid north in EPSG:4548 is within
    # 1° of true north in Beijing.
    bar = _scale_bar_length(vx1 - vx0)
    x0, y0 = vx0 + (vx1 - vx0) * 0.05, vy0 + (vy1 - vy0) * 0.06
    ax.plot([x0, x0 + bar], [y0, y0], color="black", linewidth=3, solid_capstyle="butt")
    ax.text(x0 + bar / 2, y0 + (vy1 - vy0) * 0.02, f"{bar / 1000:g} km" if bar >= 1000 else f"{bar:g} m",
            ha="center", fontsize=9)
    ax_x, ax_y = vx1 - (vx1 - vx0) * 0.06, vy1 - (vy1 - vy0) * 0.16
    ax.add_patch(FancyArrow(ax_x, ax_y, 0, (vy1 - vy0) * 0.08, width=(vx1 - vx0) * 0.008,
                            head_width=(vx1 - vx0) * 0.03, head_length=(vy1 - vy0) * 0.04, color="black"))
    ax.text(ax_x, ax_y - (vy1 - vy0) * 0.05, "N 北", ha="center", fontsize=9)
    ax.set_title("CGCS2000 / 3-degree Gauss-Kruger CM 117E (EPSG:4548)", fontsize=7, color="#555555")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


# ------------------------------------------------------------------ HTML and PDF


@functools.lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=PackageLoader("maps", "templates"), autoescape=select_autoescape(["html"]))


def report_html(data: ReportData, png: bytes | None = None) -> str:
    """The report as one self-contained HTML page (map image inline)."""
    png = map_png(data) if png is None else png
    return _environment().get_template("report.html").render(
        r=data, map_data_uri="data:image/png;base64," + base64.b64encode(png).decode(), fonts=CJK_FAMILIES,
        site_wkt=shapely.to_wkt(data.site_wgs84, rounding_precision=7))


def report_pdf(data: ReportData) -> bytes:
    """The report as an A4 PDF with the CJK fonts embedded."""
    from weasyprint import HTML

    return HTML(string=report_html(data)).write_pdf()


CHANGE_LABELS = {"entered": "新进入分区 entered a zone", "left": "离开分区 left a zone",
                 "rules_changed": "规则变化 rules changed", "verdict_changed": "结论变化 verdict changed"}


def impact_html(summary: dict[str, Any]) -> str:
    """A short summary of what a new data version changes for the registered sites."""
    return _environment().get_template("impact.html").render(s=summary, labels=CHANGE_LABELS, fonts=CJK_FAMILIES)


def impact_pdf(summary: dict[str, Any]) -> bytes:
    from weasyprint import HTML

    return HTML(string=impact_html(summary)).write_pdf()
