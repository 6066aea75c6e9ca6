"""Service settings, from the environment (prefix ``ZONING_``) or a ``.env`` file."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo.paths import BUNDLED_ZONES, DEFAULT_STORE


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
    max_upload_bytes: int = 50 * 1024 * 1024
    max_batch_points: int = 100_000
    warm_on_start: bool = Field(False, description="Build the lookup index at start-up (`zoning serve` sets it)")


@lru_cache
def get_settings() -> Settings:
    return Settings()
