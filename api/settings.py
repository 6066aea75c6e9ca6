"""Service settings, from the environment (prefix ``ZONING_``) or a ``.env`` file."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo.paths import BUNDLED_ZONES, DEFAULT_STORE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZONING_", env_file=".env", extra="ignore")

    store: Path = Field(DEFAULT_STORE, description="GeoPackage zone store; created from `seed` on first start")
    seed: Path = Field(BUNDLED_ZONES, description="Bundled zones (GeoJSON) that initialise a new store")
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    admin_token: str | None = Field(None, description="Bearer token for /v1/admin; unset = admin endpoints off")
    tianditu_token: str | None = Field(None, description="Tianditu key; unset = Tianditu basemaps hidden")
    max_upload_bytes: int = 50 * 1024 * 1024
    max_batch_points: int = 100_000
    max_columnar_points: int = Field(2_000_000, description="Batch points per request answered as CSV, Arrow or "
                                                            "GeoParquet (no per-point JSON)")
    max_parcels: int = Field(100_000, description="Parcels per POST /v1/check/sites or check-file --sites")
    max_columnar_bytes: int = Field(256 * 1024 * 1024, description="Batch body bytes for those answers")
    webhook_url: str | None = Field(None, description="POSTed the version and its impact summary on each new "
                                                      "data version; needs webhook_secret (HMAC-SHA256 signature)")
    webhook_secret: str | None = Field(None, description="Key of the webhook body's HMAC-SHA256 signature")
    webhook_poll_seconds: float = Field(2.0, description="How often the service looks for a new data version")
    warm_on_start: bool = Field(False, description="Build the lookup index at start-up (`zoning serve` sets it)")


@lru_cache
def get_settings() -> Settings:
    return Settings()
