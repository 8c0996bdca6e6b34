"""Settings, all read from ``FULFILL_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, computed_field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FULFILL_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".fulfill"), description="SQLite file and embedded broker")
    database_url: str | None = Field(None, description="default: SQLite in data_dir")
    broker_url: str | None = Field(None, description="default: embedded filesystem broker")
    db_pool_size: int = 10
    db_max_overflow: int = 10
    api_threads: int = Field(12, description="threads serving requests, per API process")

    idempotency_ttl_hours: int = 24

    geocoder: str = Field("gazetteer", description="'gazetteer' (offline) or a geopy service")
    geocoder_options: dict[str, Any] = Field(default_factory=dict)
    gazetteer_path: Path | None = None

    # The first half-hour after a wave cutoff goes to picking and loading.
    same_day_window_offset_min: int = 60
    same_day_window_length_min: int = 180

    events_webhook_url: str | None = None
    events_webhook_secret: str | None = None
    outbox_batch_size: int = 100
    outbox_max_attempts: int = 12
    outbox_lease_s: int = 300
    outbox_sweep_s: float = 5.0

    task_soft_time_limit_s: int = 300
    task_time_limit_s: int = 360

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'fulfill.db').resolve()}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def is_embedded_broker(self) -> bool:
        return self.resolved_broker_url.startswith("filesystem://")

    @property
    def broker_dir(self) -> Path:
        return (self.data_dir / "broker").resolve()


@lru_cache
def get_settings() -> Settings:
    return Settings()
