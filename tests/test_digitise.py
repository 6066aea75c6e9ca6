"""Digitising: a synthetic official sheet round-trips through georeferencing and tracing.

The figures each test measures are printed (run with -s to see them): the georeferencing
error against the true pixel grid, and the traced polygon's IoU and area error.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import shapely
from PIL import Image

from geo import crs
from geo.digitise import georef, sheets, trace
from geo.digitise.georef import ControlPoint, GeorefError
from tests.store_backends import reopen
from tests.synthetic_sheet import METRES_PER_PX, ZONE_COLOUR, make_sheet, spread_gcps

TRACE = trace.TraceParams(ZONE_COLOUR, min_area_m2=50_000, simplify_m=2, line_width_px=3, clip_district="110109")


@pytest.fixture
def zone_store(new_store, sample_zones):
    """A store of each backend holding the sample zones (sheets live in its work tables)."""
    new_store.save(sample_zones, action="init")
    return new_store


@pytest.fixture(scope="module")
def sheet():
    return make_sheet()


@pytest.fixture(scope="module")
def image(sheet):
    return np.asarray(Image.open(io.BytesIO(sheet.jpeg)).convert("RGB"))


def _true_error_m(sheet, fitted: georef.Georef, size=(2000, 1500)) -> np.ndarray:
    """Distance (m) between the fitted and the true position of a 21 × 16 grid of pixels."""
    gx, gy = np.meshgrid(np.linspace(0, size[0], 21), np.linspace(0, size[1], 16))
    mx, my = fitted.pixel_to_metric(gx, gy)
    tx, ty = sheet.pixel_to_metric(gx, gy)
    return np.hypot(mx - tx, my - ty)


def _iou(sheet, result) -> tuple[float, float]:
    got, truth = crs.to_metric(result.geometry), sheet.zone_metric
    return got.intersection(truth).area / got.union(truth).area, got.area / truth.area - 1


@pytest.mark.parametrize("method, n, max_mean_m, max_err_m", [
    ("affine", 10, 5.0, 10.0), ("affine", 4, 8.0, 16.0), ("poly2", 10, 10.0, 25.0), ("tps", 10, 10.0, 20.0)])
def test_georeferencing_recovers_the_sheet_grid(sheet, method, n, max_mean_m, max_err_m):
    points = sheet.gcps if n == 10 else spread_gcps(sheet, n)
    fitted = georef.fit(points, "EPSG:4548", method, image_size=(2000, 1500))
    err = _true_error_m(sheet, fitted)
    print(f"\n{method} with {n} points (1-2 px click noise, {METRES_PER_PX} m/px): true error mean "
          f"{err.mean():.2f} m, max {err.max():.2f} m; RMS residual {fitted.rms_m:.2f} m, "
          f"leave-one-out RMS {fitted.loo_rms_m and round(fitted.loo_rms_m, 2)} m")
    assert err.mean() < max_mean_m and err.max() < max_err_m
    assert len(fitted.residuals_m) == n and math.isclose(
        fitted.rms_m, math.sqrt(np.mean(np.square(fitted.residuals_m))), rel_tol=1e-9)
    # The noise is 1-2 px = 4-8 m per point: residuals are of that order, never zero (but for tps).
    if method == "tps":
        assert fitted.rms_m < 0.01 and fitted.loo_rms_m > 1
    else:
        assert 0.5 < fitted.rms_m < 3 * 2 * METRES_PER_PX
    assert abs(fitted.pixel_size_m() - METRES_PER_PX) < 0.05


def test_least_squares_fit_matches_gdal_gcp_transformer(sheet):
    """GDAL's GCP transformer picks order 1 for < 6 points and 2 for 6-9: ours must agree."""
    from rasterio.transform import GCPTransformer

    for method, points in (("affine", spread_gcps(sheet, 5)), ("poly2", sheet.gcps[:8])):
        fitted = georef.fit(points, "EPSG:4548", method)
        with GCPTransformer(georef._gcps(fitted._pixel_array(), fitted._metric_array())) as gdal:
            px, py = np.array([10.0, 999.5, 1900.0]), np.array([20.0, 700.25, 1400.0])
            gx, gy = gdal.xy(py, px, offset="ul")
        ox, oy = fitted.pixel_to_metric(px, py)
        assert np.allclose(ox, gx, atol=1e-3) and np.allclose(oy, gy, atol=1e-3), method


def test_gauss_kruger_with_zone_prefix_and_degrees_give_the_same_fit(sheet):
    plain = georef.fit(sheet.gcps, "EPSG:4548", "affine")
    prefixed = [ControlPoint(p.px, p.py, p.x + 39_000_000, p.y) for p in sheet.gcps]
    gk = georef.fit(prefixed, "gk", "affine")
    assert gk.crs_resolved == "EPSG:4527" and "prefix 39" in gk.crs_reason
    lon, lat = crs.to_wgs84([p.x for p in sheet.gcps], [p.y for p in sheet.gcps], "EPSG:4548")
    gx, gy = crs.from_wgs84(lon, lat, "gcj02")
    web = georef.fit([ControlPoint(p.px, p.py, x, y) for p, x, y in zip(sheet.gcps, gx, gy, strict=True)],
                     "gcj02", "affine")
    for other in (gk, web):
        assert np.allclose(other.residuals_m, plain.residuals_m, atol=0.01)
        assert np.allclose(other.coefficients, plain.coefficients, rtol=1e-9, atol=1e-4)


def test_a_misplaced_point_is_flagged(sheet):
    points = list(sheet.gcps)
    points[3] = ControlPoint(points[3].px + 40, points[3].py - 25, points[3].x, points[3].y)
    fitted = georef.fit(points, "EPSG:4548", "affine")
    assert fitted.outlier == 3
    assert fitted.loo_m[3] > 2 * max(e for i, e in enumerate(fitted.loo_m) if i != 3)
    assert georef.fit(sheet.gcps, "EPSG:4548", "affine").outlier is None


@pytest.mark.parametrize("points, method, message", [
    ([(0, 0, 0, 0), (10, 0, 10, 0)], "affine", "at least 3"),
    ([(0, 0, 400000, 4400000), (10, 10, 400010, 4399990), (20, 20, 400020, 4399980), (30, 30, 400030, 4399970)],
     "affine", "degenerate"),
    ([(0, 0, 400000, 4400000), (10, 0, 400010, 4400000), (0, 10, 400000, 4399990)], "poly2", "at least 6"),
    ([(0, 0, 400000, 4400000), (0, 0, 400010, 4400000), (0, 10, 400000, 4399990)], "affine", "share one pixel"),
    ([(0, 0, 400000, 4400000), (10, 0, 400010, 4400000), (0, 10, 400000, 4399990)], "spline", "not one of"),
    ([(0, 0, 400000, 4400000), (10, 10, 400010, 4399990), (20, 20, 400020, 4399980)], "tps", "degenerate"),
])
def test_too_few_or_degenerate_points_are_refused(points, method, message):
    with pytest.raises(GeorefError, match=message):
        georef.fit([ControlPoint(*p) for p in points], "EPSG:4548", method)


def test_points_on_a_circle_are_degenerate_for_poly2():
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    points = [ControlPoint(500 + 300 * math.cos(a), 500 + 300 * math.sin(a),
                           400000 + 1200 * math.cos(a), 4400000 - 1200 * math.sin(a)) for a in angles]
    assert georef.fit(points, "EPSG:4548", "affine").rms_m < 1e-6  # fine for affine
    with pytest.raises(GeorefError, match="conic"):
        georef.fit(points, "EPSG:4548", "poly2")


def test_parse_control_point():
    assert ControlPoint.parse("1.5, 2,39410000,4423000") == ControlPoint(1.5, 2, 39410000, 4423000)
    for bad in ("1,2,3", "1,2,x,4", "1,2,nan,4"):
        with pytest.raises(GeorefError):
            ControlPoint.parse(bad)


def test_georef_round_trips_through_json(sheet):
    fitted = georef.fit(sheet.gcps, "EPSG:4548", "poly2", image_size=(2000, 1500), sheet_sha256="ab" * 32)
    again = georef.Georef.from_json(fitted.to_json())
    assert np.allclose(again.pixel_to_metric(100.0, 200.0), fitted.pixel_to_metric(100.0, 200.0))
    with pytest.raises(GeorefError):
        georef.Georef.from_json('{"method": "affine"}')


def test_auto_trace_recovers_the_zone(sheet, image):
    fitted = georef.fit(sheet.gcps, "EPSG:4548", "affine", image_size=(2000, 1500))
    result = trace.trace(image, fitted, TRACE)
    iou, area_error = _iou(sheet, result)
    print(f"\nauto-trace: IoU {iou:.4f}, area error {area_error * 100:+.2f} % "
          f"({result.parts_dropped} speck(s) dropped)")
    assert iou >= 0.95 and abs(area_error) <= 0.02
    assert result.geometry.geom_type == "Polygon" and len(result.geometry.interiors) == 1  # the hole
    assert result.parts_dropped >= 1  # the legend swatch
    assert result.geometry.is_valid and abs(result.area_m2 / sheet.zone_metric.area - 1) < 0.03


def test_trace_refuses_what_it_cannot_do(sheet, image):
    fitted = georef.fit(sheet.gcps, "EPSG:4548", "affine", image_size=(2000, 1500))
    with pytest.raises(trace.TraceError, match="no pixel"):
        trace.trace(image, fitted, trace.TraceParams("#00ff00", tolerance=5))
    with pytest.raises(trace.TraceError, match="smaller than"):
        trace.trace(image, fitted, trace.TraceParams(ZONE_COLOUR, min_area_m2=1e9))
    with pytest.raises(trace.TraceError, match="nothing is left"):
        trace.trace(image, fitted, trace.TraceParams(ZONE_COLOUR, min_area_m2=50_000, clip_district="110117"))
    with pytest.raises(trace.TraceError, match="image"):
        trace.trace(image[:100], fitted, TRACE)
    for bad in ({"colour": "red"}, {"colour": "#d7301f", "tolerance": 0}, {"colour": "#d7301f", "simplify_m": -1}):
        with pytest.raises(trace.TraceError):
            trace.TraceParams(**bad)


def test_cielab_conversion_matches_reference_values():
    lab = trace.rgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0], [215, 48, 31]], dtype=np.uint8))
    # Reference: CIE formulas, D65 (e.g. colormine / Bruce Lindbloom's calculator).
    assert np.allclose(lab[0], [100, 0, 0], atol=0.01) and np.allclose(lab[1], [0, 0, 0], atol=0.01)
    assert np.allclose(lab[2], [53.24, 80.09, 67.20], atol=0.02)


def test_pdf_page_of_the_same_sheet_traces_the_same(sheet, tmp_path, sample_zones):
    from geo.store import GeoPackageStore

    zones = GeoPackageStore(tmp_path / "zones.gpkg")
    zones.save(sample_zones, action="init")
    store = sheets.SheetStore(zones)
    stored = store.add(sheet.pdf(), "附图1.pdf", uploaded_by="tester")
    assert stored.media_type == "application/pdf" and stored.pages == [[2000, 1500]] and stored.dpi == 200
    page = store.page_array(stored.sha256, 1)
    fitted = georef.fit(sheet.gcps, "EPSG:4548", "affine", image_size=(2000, 1500), sheet_sha256=stored.sha256)
    iou, area_error = _iou(sheet, trace.trace(page, fitted, TRACE))
    print(f"\nPDF page: IoU {iou:.4f}, area error {area_error * 100:+.2f} %")
    assert iou >= 0.95 and abs(area_error) <= 0.02


def test_warped_overlay_lines_up_with_the_zone(sheet, image):
    fitted = georef.fit(sheet.gcps, "EPSG:4548", "affine", image_size=(2000, 1500))
    overlay = georef.warp_overlay(fitted, image, max_size=1024)
    west, south, east, north = overlay.bounds
    rgba = np.asarray(Image.open(io.BytesIO(overlay.png)))
    assert rgba.shape[2] == 4 and max(rgba.shape[:2]) <= 1024
    # Leaflet stretches the overlay linearly in Web Mercator between the bounds.
    (x0, x1), (y0, y1) = crs.from_wgs84(np.array([west, east]), np.array([south, north]), "EPSG:3857")

    def pixel_at(lon, lat):
        x, y = crs.from_wgs84(lon, lat, "EPSG:3857")
        return rgba[int((y1 - y) / (y1 - y0) * rgba.shape[0]), int((x - x0) / (x1 - x0) * rgba.shape[1])]

    inside = sheet.zone_wgs84.representative_point()
    blue_m = shapely.Point(410_000 - 3200, 4_423_000 + 1900)
    blue = crs.from_metric(blue_m)
    assert pixel_at(inside.x, inside.y)[3] == 255
    r, g, b, _ = pixel_at(blue.x, blue.y)
    assert b > 150 and r < 80  # the blue distractor zone lands where it was drawn
    assert rgba[0, 0, 3] == 0 or rgba[-1, -1, 3] == 0  # rotated sheet: transparent corners


def test_sheet_store_is_content_addressed_and_refuses_bad_files(sheet, zone_store):
    store = sheets.SheetStore(zone_store, sheets.SheetLimits(max_bytes=2_000_000, max_pixels=4_000_000))
    first = store.add(sheet.jpeg, "map.jpg", "a")
    again = store.add(sheet.jpeg, "other-name.jpg", "b")
    assert first == again and first.media_type == "image/jpeg" and len(store.list()) == 1
    assert store.page_png(first.sha256, 1).startswith(b"\x89PNG")
    # Another process (a replica) opening the same store sees the sheet, pixel for pixel.
    replica = sheets.SheetStore(reopen(zone_store))
    assert replica.get(first.sha256) == first
    assert np.array_equal(replica.page_array(first.sha256, 1), store.page_array(first.sha256, 1))
    uploads = [e for e in zone_store.audit() if e.action == "sheet.upload"]
    assert [(e.actor, e.target, e.detail["filename"]) for e in uploads] == [("a", first.sha256, "map.jpg")]
    tiff = io.BytesIO()
    Image.open(io.BytesIO(sheet.jpeg)).save(tiff, format="TIFF", compression="tiff_deflate")
    assert store.add(tiff.getvalue(), "map.tif", "a").media_type == "image/tiff"
    with pytest.raises(sheets.SheetError, match="not a PNG"):
        store.add(b"GIF89a....", "x.gif", "a")
    with pytest.raises(sheets.SheetError, match="cannot be decoded"):
        store.add(sheet.jpeg[:2000], "cut.jpg", "a")
    with pytest.raises(sheets.SheetError, match="cannot be opened"):
        store.add(b"%PDF-1.4 garbage", "bad.pdf", "a")
    with pytest.raises(sheets.SheetTooLargeError, match="over the limit"):
        store.add(b"\x89PNG\r\n\x1a\n" + bytes(2_000_001), "big.png", "a")
    big = io.BytesIO()
    Image.new("L", (2500, 2000)).save(big, format="PNG")
    with pytest.raises(sheets.SheetTooLargeError, match="Mpx"):
        store.add(big.getvalue(), "huge.png", "a")
    with pytest.raises(sheets.SheetError, match="page 2 does not exist"):
        store.page_png(first.sha256, 2)
    with pytest.raises(sheets.SheetNotFoundError):
        store.get("../../etc/passwd")
    assert len(store.list()) == 2  # nothing of the refused files was kept


def test_a_cut_jpeg_is_refused_even_after_weasyprint_is_loaded(sheet, tmp_path, sample_zones):
    import weasyprint  # noqa: F401 - sets Pillow's LOAD_TRUNCATED_IMAGES on import (the report PDFs use it)
    from PIL import ImageFile

    from geo.store import GeoPackageStore

    zones = GeoPackageStore(tmp_path / "zones.gpkg")
    zones.save(sample_zones, action="init")
    store = sheets.SheetStore(zones, sheets.SheetLimits(max_bytes=2_000_000, max_pixels=4_000_000))
    with pytest.raises(sheets.SheetError, match="cannot be decoded"):
        store.add(sheet.jpeg[:2000], "cut.jpg", "a")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for WeasyPrint afterwards


def test_sheets_of_an_earlier_release_folder_move_into_the_store(sheet, zone_store, tmp_path):
    """The folder layout the earlier release wrote: <sha>/original.jpg, page-1.png, sheet.json."""
    import hashlib
    import json

    sha = hashlib.sha256(sheet.jpeg).hexdigest()
    folder = tmp_path / "old-sheets" / sha
    folder.mkdir(parents=True)
    (folder / "original.jpg").write_bytes(sheet.jpeg)
    page = io.BytesIO()
    Image.open(io.BytesIO(sheet.jpeg)).convert("RGB").save(page, format="PNG")
    (folder / "page-1.png").write_bytes(page.getvalue())
    meta = {"sha256": sha, "filename": "附图1.jpg", "media_type": "image/jpeg", "size_bytes": len(sheet.jpeg),
            "pages": [[2000, 1500]], "uploaded_at": "2026-01-02T03:04:05+00:00", "uploaded_by": "ed", "dpi": None,
            "extra": {}}
    (folder / "sheet.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    assert sheets.SheetStore(zone_store).list() == []  # without the folder: nothing
    listed = sheets.SheetStore(zone_store, legacy_dir=folder.parent).list()
    assert [s.as_dict() for s in listed] == [meta]
    import shutil

    shutil.rmtree(folder.parent)  # moved: the store alone serves it now
    store = sheets.SheetStore(zone_store)
    assert store.get(sha).uploaded_by == "ed" and store.page_png(sha, 1) == page.getvalue()
    assert [e.target for e in zone_store.audit() if e.action == "sheet.adopt"] == [sha]
