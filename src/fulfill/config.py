"""Settings, all read from ``FULFILL_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fulfill_carriers import (
    AfterShip,
    CarrierClass,
    McfCarrier,
    Nature,
    PluginError,
    SandboxCarrier,
    installed,
)

# (max kg, cost) brackets of a rate card, lightest first.
RateCard = list[tuple[float, float]]


class SourcingCosts(BaseModel):
    """What shipping from a node costs, by kind of node, service level, distance and weight.

    Set as JSON in ``FULFILL_SOURCING_COSTS``; currency units throughout.
    """

    shipment: dict[str, float] = {"warehouse": 1.5, "store": 3.0, "third_party": 0.0}
    handling_per_unit: dict[str, float] = {"warehouse": 0.3, "store": 0.9, "third_party": 0.0}
    # Own vans, same day: a base per drop plus a share of the route per km from the node.
    same_day_base: float = 3.0
    same_day_per_km: float = 0.55
    same_day_max_kg: float = 25.0
    # Carriers, from own nodes: a rate card per zone, zones by distance.
    carrier_zone_limits_km: list[float] = [50.0, 300.0]
    carrier_rates: list[RateCard] = [
        [(1, 6.5), (5, 8.0), (15, 11.0), (30, 16.0)],
        [(1, 8.0), (5, 10.5), (15, 15.0), (30, 22.0)],
        [(1, 10.0), (5, 13.5), (15, 20.0), (30, 30.0)],
    ]
    carrier_speed_factor: dict[str, float] = {"next_day": 1.6, "standard": 1.0}
    # Third parties: their fee by weight at standard speed, and a factor per speed.
    third_party_fees: RateCard = [(0.5, 4.2), (1, 5.0), (2, 6.1), (5, 8.4), (10, 11.5), (20, 17.0)]
    third_party_speed_factor: dict[str, float] = {"next_day": 1.45, "standard": 1.0}
    # Customers prefer one parcel: every shipment after the first counts this much more.
    extra_shipment_penalty: float = 4.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FULFILL_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".fulfill"), description="SQLite file and embedded broker")
    database_url: str | None = Field(None, description="default: SQLite in data_dir")
    broker_url: str | None = Field(None, description="default: embedded filesystem broker")
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_lock_timeout_ms: int = Field(
        10_000, ge=1, description="PostgreSQL: the longest an API statement waits for a row lock"
    )
    db_statement_timeout_ms: int = Field(
        120_000, ge=1, description="PostgreSQL: the longest an API statement runs"
    )
    api_threads: int = Field(12, description="threads serving requests, per API process")
    max_body_bytes: int = Field(
        2_000_000, ge=0, description="a larger request body is refused (413) before it is read"
    )

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
    dispatch_reload_min: int = Field(
        20, ge=0, description="a van back from one wave's route, loaded for the next"
    )
    dispatch_service_s: int = Field(180, ge=0, description="at each door")
    dispatch_handover_s: int = Field(
        60, ge=0, description="from the van at the door to the parcel handed over"
    )
    dispatch_slack_min: int = Field(
        10,
        ge=0,
        description="vans are planned to reach a door this much before its window ends (and a "
        "handover), so that slower traffic than the travel model's keeps the promise",
    )
    dispatch_unassigned_penalty: float = Field(
        1000.0, description="cost of leaving a stop out of a plan, in currency units"
    )
    dispatch_auto_publish: bool = Field(True, description="publish the plan made at the cutoff")
    dispatch_last_resort: Literal["carrier", "next_day"] = Field(
        "carrier", description="for a stop no wave today can serve"
    )
    dispatch_rescue: Literal["publish", "dispatcher", "off"] = Field(
        "publish",
        description="the stops of a van out of service or stalled go to other vans at once: "
        "published, left for a dispatcher to publish, or not planned",
    )
    dispatch_rescue_time_limit_s: float = Field(2.0, gt=0, description="planner time per rescue")
    dispatch_polish_s: float = Field(
        2.0, ge=0, description="planner time per polish of an open wave's live plan; 0: never"
    )
    dispatch_polish_every_s: float = Field(
        30.0, ge=0, description="at most one polish of a wave's live plan this often"
    )
    dispatch_sweep_s: float = 15.0
    dispatch_planning_lease_s: int = 600
    dispatch_silent_van_s: int = Field(
        900, gt=0, description="a van under way unheard of this long: its ETAs slip with the clock"
    )
    travel: Literal["great_circle", "osrm"] = "great_circle"
    travel_circuity: float = Field(1.3, ge=1.0)
    osrm_url: str | None = None
    map_tile_url: str | None = Field(
        None, description="e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png; none: no tiles"
    )

    # Sourcing: which nodes ship which lines.
    sourcing_costs: SourcingCosts = Field(default_factory=SourcingCosts)
    sourcing_time_limit_s: float = Field(0.05, gt=0, description="the optimiser's answer time")
    sourcing_currency: str = "CAD"
    same_day_room_check: bool = Field(
        True, description="offer same day only while the wave's vans have room for the order"
    )

    # The third party (Amazon Multi-Channel Fulfillment, or its sandbox).
    mcf_url: str | None = Field(None, description="e.g. https://sellingpartnerapi-na.amazon.com")
    mcf_token: str | None = Field(None, description="access token sent as x-amz-access-token")
    mcf_marketplace_id: str = "A2EUQ1WTGCTBG2"  # amazon.ca
    mcf_timeout_s: float = 5.0
    mcf_sync_s: float = Field(300.0, description="how often its inventory and orders are synced")
    mcf_retry_after_s: float = Field(
        60.0, description="after a failed call, sourcing avoids the third party this long"
    )

    # Restock: forecasts and suggestions, refreshed nightly.
    restock_history_days: int = Field(56, ge=7)
    restock_service_level: float = Field(0.95, gt=0.5, lt=1.0)
    restock_transfer_lead_days: float = Field(1.0, ge=0)
    restock_supplier_lead_days: float = Field(7.0, ge=0)
    restock_review_days: float = Field(7.0, ge=1, description="days of demand an order covers")
    restock_hour_utc: int = Field(8, ge=0, le=23, description="when the nightly refresh runs")

    # Carriers and tracking.
    carrier_url: str | None = Field(
        None, description="the parcel carrier's API (the sandbox carrier's in the embedded stack)"
    )
    carrier_webhook_secret: str = ""
    aftership_webhook_secret: str | None = Field(
        None, description="set to accept AfterShip tracking webhooks"
    )
    carrier_timeout_s: float = 5.0
    carriers: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="any installed carrier plugin by its code, with its options, as JSON: "
        '{"tiny": {"url": "https://..."}}; the flat settings above configure the built-in ones',
    )
    parcel_carrier: str = Field(
        SandboxCarrier.code,
        description="the carrier that ships parcels no van takes (a configured code)",
    )
    webhook_tolerance_s: int = Field(300, ge=1, description="age a signed webhook may have")
    tracking_poll_s: float = Field(30.0, description="how often beat looks for shipments due")
    tracking_poll_scale: float = Field(
        1.0, gt=0, description="multiplies every per-status polling interval (a demo runs fast)"
    )
    tracking_rate_per_s: float = Field(10.0, gt=0, description="tracking calls per carrier")
    tracking_retries: int = Field(3, ge=1, description="tries of one tracking call")
    tracking_breaker_failures: int = Field(5, ge=1, description="failed calls that open it")
    tracking_breaker_open_s: float = Field(300.0, ge=1, description="how long it stays open")

    # Customer notices and the tracking page.
    public_url: str = Field(
        "http://127.0.0.1:8000", description="where customers reach the service (tracking links)"
    )
    shop_name: str | None = Field(None, description="signs the notices; default: the storefront")

    def carrier_options(self) -> dict[str, dict[str, Any]]:
        """The options of every carrier configured here, by code: the built-in ones from their
        flat settings, any plugin's from ``carriers`` (which wins for the same code)."""
        found: dict[str, dict[str, Any]] = {}
        if self.carrier_url:
            found[SandboxCarrier.code] = {
                "url": self.carrier_url,
                "webhook_secret": self.carrier_webhook_secret,
                "timeout_s": self.carrier_timeout_s,
                "tolerance_s": self.webhook_tolerance_s,
            }
        if self.aftership_webhook_secret:
            found[AfterShip.code] = {"webhook_secret": self.aftership_webhook_secret}
        if self.mcf_url:
            found[McfCarrier.code] = {
                "url": self.mcf_url,
                "marketplace_id": self.mcf_marketplace_id,
                "token": self.mcf_token or "",
                "timeout_s": self.mcf_timeout_s,
            }
        return found | self.carriers

    def tracking_url(self, token: str) -> str:
        """Where the customer follows an order: its public tracking page."""
        return f"{self.public_url.rstrip('/')}/t/{token}"

    smtp_host: str | None = Field(None, description="none: mail is kept in data_dir/mail (Maildir)")
    smtp_port: int = 25
    smtp_sender: str = "Deliveries <deliveries@fulfill.localhost>"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    sms_url: str | None = Field(None, description="an SMS provider (fulfill_carriers.sms_sandbox)")
    sms_token: str | None = None
    notices_webhook_url: str | None = Field(
        None, description="the storefront's endpoint for notices it delivers its own way"
    )
    notices_webhook_secret: str = ""
    notice_timeout_s: float = 10.0
    notice_attempts: int = Field(
        3, ge=1, description="tries on one channel before falling back to the next"
    )
    tracking_page_rate: str = Field(
        "60/minute", description="requests per client address to the public tracking page"
    )
    rate_limit_storage: str | None = Field(
        None,
        description="where rate limits count, shared by API processes (a redis:// URL); "
        "default: the broker when it is Redis, else each process's memory",
    )
    trusted_proxies: tuple[str, ...] = Field(
        (),
        description="addresses or networks of the proxies in front of the API, as JSON: "
        "only their X-Forwarded-For is believed",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            ip_network(entry, strict=False)  # a ValueError names the entry at fault
        return value

    @field_validator("carriers")
    @classmethod
    def _installed(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        known = _plugins()
        for code in value:
            if code not in known:
                raise ValueError(f"no carrier plugin {code!r} is installed: {', '.join(known)}")
        return value

    @field_validator("parcel_carrier")
    @classmethod
    def _a_parcel_carrier(cls, value: str) -> str:
        parcel_carriers = sorted(c for c, p in _plugins().items() if p.nature is Nature.CARRIER)
        if value not in parcel_carriers:
            raise ValueError(
                f"{value!r} is no installed parcel carrier: {', '.join(parcel_carriers)}"
            )
        return value

    events_webhook_url: str | None = None
    events_webhook_secret: str | None = None
    outbox_batch_size: int = 100
    outbox_max_attempts: int = 12
    outbox_lease_s: int = 300
    outbox_sweep_s: float = 5.0

    broker_retries: int | None = Field(
        None,
        ge=0,
        description="reconnections a worker tries when the broker goes away before "
        "it exits non-zero for its supervisor to restart it; none: it keeps trying",
    )
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
    def resolved_rate_limit_storage(self) -> str:
        if self.rate_limit_storage:
            return self.rate_limit_storage
        return (
            self.resolved_broker_url
            if self.resolved_broker_url.startswith("redis")
            else "memory://"
        )

    @property
    def is_embedded_broker(self) -> bool:
        return self.resolved_broker_url.startswith("filesystem://")

    @property
    def broker_dir(self) -> Path:
        return (self.data_dir / "broker").resolve()


@lru_cache
def get_settings() -> Settings:
    return Settings()


def _plugins() -> dict[str, CarrierClass]:
    """The installed carrier plugins; one that does not load is a wrong setting, in one line."""
    try:
        return installed()
    except PluginError as exc:
        raise ValueError(str(exc)) from exc
