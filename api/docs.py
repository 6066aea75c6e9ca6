"""API documentation pages that work offline: ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc).

FastAPI's own pages load Swagger UI and ReDoc from a CDN and ReDoc's fonts from Google,
so on an intranet they are blank. These pages load the vendored npm releases in
``api/static/vendor`` (versions, licences and the one patch in its README) from
``/static/api-vendor/``, and no web fonts: the browser's own sans-serif is used.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.middleware.gzip import GZipMiddleware

from api.map import VendorFiles

API_VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"
API_VENDOR_URL = "/static/api-vendor"
SWAGGER_UI = "swagger-ui-dist-5.35.0"
REDOC = "redoc-2.5.4"
TITLE = "zoning API 文档 / API documentation"

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json", title=TITLE,
        swagger_js_url=f"{API_VENDOR_URL}/{SWAGGER_UI}/swagger-ui-bundle.js",
        swagger_css_url=f"{API_VENDOR_URL}/{SWAGGER_UI}/swagger-ui.css",
        swagger_favicon_url=f"{API_VENDOR_URL}/{SWAGGER_UI}/favicon-32x32.png",
        # validatorUrl None: Swagger UI would otherwise fetch a badge from the public validator.
        swagger_ui_parameters={"validatorUrl": None, "defaultModelsExpandDepth": 0},
    )


@router.get("/redoc", response_class=HTMLResponse)
def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json", title=TITLE,
        redoc_js_url=f"{API_VENDOR_URL}/{REDOC}/redoc.standalone.js",
        redoc_favicon_url=f"{API_VENDOR_URL}/{SWAGGER_UI}/favicon-32x32.png",
        with_google_fonts=False,
    )


def mount_assets(app: FastAPI) -> None:
    """Serve api/static/vendor at /static/api-vendor (gzip: the two bundles shrink ~3×)."""
    app.mount(API_VENDOR_URL, GZipMiddleware(VendorFiles(directory=API_VENDOR_DIR), minimum_size=1024),
              name="api-vendor")
