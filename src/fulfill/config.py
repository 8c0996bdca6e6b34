"""Settings, all read from ``FULFILL_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

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

    # Dispatch: how waves are planned and what happens to stops no van can serve.
    dispatch_engine: str = Field("auto", description="auto, ortools or pyvrp")
    dispatch_time_limit_s: float = Field(10.0, gt=0, description="planner wall clock per wave")
    dispatch_loading_min: int = Field(30, ge=0, description="after the cutoff, before vans leave")
    dispatch_service_s: int = Field(180, ge=0, description="at each door")
    dispatch_unassigned_penalty: float = Field(
        1000.0, description="cost of leaving a stop out of a plan, in currency units"
    )
    dispatch_auto_publish: bool = Field(True, description="publish the plan made at the cutoff")
    dispatch_last_resort: Literal["carrier", "next_day"] = Field(
        "carrier", description="for a stop no wave today can serve"
    )
    dispatch_sweep_s: float = 15.0
    dispatch_planning_lease_s: int = 600
    travel: Literal["great_circle", "osrm"] = "great_circle"
    travel_circuity: float = Field(1.3, ge=1.0)
    osrm_url: str | None = None
    map_tile_url: str | None = Field(
        None, description="e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png; none: no tiles"
    )

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
