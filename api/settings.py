"""Service settings, from the environment (prefix ``ZONING_``) or a ``.env`` file."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo.paths import BUNDLED_ZONES, DEFAULT_STORE

# An admin token shorter than this is refused at start-up: it could be guessed.
MIN_ADMIN_TOKEN_CHARS = 24


class SettingsError(ValueError):
    """A setting the service refuses to start with; names the setting and the fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZONING_", env_file=".env", extra="ignore")

    # str | Path: a postgresql:// URL must stay text (a Path collapses its "//").
    store: str | Path = Field(DEFAULT_STORE, description="Zone store: a GeoPackage file or a postgresql:// URL "
                              "(PostGIS); created from `seed` on first start")
    seed: Path = Field(BUNDLED_ZONES, description="Bundled zones (GeoJSON) that initialise a new store")
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    admin_token: str | None = Field(None, description="Bearer token for /v1/admin; unset = admin endpoints off")
    tianditu_token: str | None = Field(None, description="Tianditu key; unset = Tianditu basemaps hidden")
    max_upload_bytes: int = Field(50 * 1024 * 1024, description="Admin import uploads, bytes")
    max_body_bytes: int = Field(32 * 1024 * 1024, description="Every other request body, bytes; more is a 413 "
                                "before anything is parsed")
    max_large_requests: int = Field(1, ge=1, description="Requests with a body of 1 MB or more handled at once; "
                                    "more wait their turn (bounds memory)")
    admin_max_failures: int = Field(10, description="Failed admin authentications per client address ...")
    admin_failure_window_s: float = Field(300.0, description="... within this many seconds, then 429")
    sheets_dir: Path | None = Field(None, description="Map sheets an earlier release kept in a folder (default "
                                    "`sheets/` beside a store file), moved into the store on first use")
    max_sheet_pixels: int = Field(64_000_000, description="Pixel limit per sheet page (PDF pages at 200 dpi)")
    max_batch_points: int = 100_000
    max_columnar_points: int = Field(2_000_000, description="Batch points per request answered as CSV, Arrow or "
                                                            "GeoParquet (no per-point JSON)")
    max_parcels: int = Field(100_000, description="Parcels per POST /v1/check/sites or check-file --sites")
    max_columnar_bytes: int = Field(256 * 1024 * 1024, description="Batch body bytes for those answers")
    webhook_url: str | None = Field(None, description="POSTed the version and its impact summary on each new "
                                                      "data version; needs webhook_secret (HMAC-SHA256 signature)")
    webhook_secret: str | None = Field(None, description="Key of the webhook body's HMAC-SHA256 signature")
    webhook_poll_seconds: float = Field(2.0, description="How often the service looks for a new data version")
    cors_origins: str | None = Field(None, description="Origins allowed by CORS, comma-separated ('*' = any); "
                                     "unset = no CORS headers")
    map_inline_max_vertices: int = Field(
        250_000, ge=0, description="Zone vertices (full precision, all layers) up to which GET /map inlines every "
        "zone; above it the page carries no zone geometry and draws the layers from the vector tiles "
        "(/tiles/{layer}/{z}/{x}/{y}.mvt). The bundled zones have ~42 000; 0 = always tiles")
    warm_on_start: bool = Field(False, description="Build the lookup index at start-up (`zoning serve` sets it)")

    def check(self) -> None:
        """Refuse settings the service must not start with (SettingsError)."""
        if self.admin_token and len(self.admin_token.strip()) < MIN_ADMIN_TOKEN_CHARS:
            raise SettingsError(
                f"ZONING_ADMIN_TOKEN has {len(self.admin_token.strip())} characters; it needs at least "
                f"{MIN_ADMIN_TOKEN_CHARS} (e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'), "
                "or unset it to turn the admin endpoints off / 管理令牌太短")


@lru_cache
def get_settings() -> Settings:
    return Settings()
