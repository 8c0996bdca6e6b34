"""The sandbox carrier's world: its codes, the scripted lives of its parcels, and its state.

Each parcel lives a scripted life on the sandbox's clock: information received, picked up,
facility scans, out for delivery, delivered; or a failed attempt and a new run the next day, a
weather delay, damage, a wrong address, a refusal (each then returned to sender), a parcel
held at a pickup point, or one that is lost (its scans simply stop). The life is chosen per
parcel from a seeded mix, or asked for by name when the shipment is created.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fulfill_carriers.sandboxing import Trouble, stamp

# The carrier's own codes and words, as a real carrier would send them.
CODES: dict[str, str] = {
    "CR": "Shipment information received",
    "PU": "Picked up",
    "AF": "Arrived at sort facility",
    "DF": "Departed sort facility",
    "OD": "Out for delivery",
    "DL": "Delivered",
    "NH": "Delivery attempted: nobody home, we will try again",
    "HP": "Held at pickup point",
    "PK": "Collected at pickup point",
    "WX": "Delayed by weather",
    "DM": "Damaged in transit",
    "AD": "Address problem: cannot deliver",
    "RF": "Refused by recipient",
    "RS": "Returning to sender",
    "RT": "Returned to sender",
    "CX": "Shipment cancelled",
}

# Each life: (hours after creation, code). The ETA is the last "DL"/"PK" of the life as planned
# at first, except where the script moves it (weather).
LIVES: dict[str, tuple[tuple[float, str], ...]] = {
    "delivered": ((0, "CR"), (1, "PU"), (3, "AF"), (5, "DF"), (20, "AF"), (22, "OD"), (24, "DL")),
    "failed_attempt": (
        (0, "CR"),
        (1, "PU"),
        (3, "AF"),
        (5, "DF"),
        (20, "AF"),
        (22, "OD"),
        (24, "NH"),
        (46, "OD"),
        (48, "DL"),
    ),
    "pickup": (
        (0, "CR"),
        (1, "PU"),
        (3, "AF"),
        (5, "DF"),
        (20, "AF"),
        (22, "OD"),
        (24, "NH"),
        (26, "HP"),
        (50, "PK"),
    ),
    "weather": (
        (0, "CR"),
        (1, "PU"),
        (3, "AF"),
        (5, "DF"),
        (12, "WX"),
        (40, "AF"),
        (46, "OD"),
        (48, "DL"),
    ),
    "damaged": ((0, "CR"), (1, "PU"), (3, "AF"), (6, "DM"), (8, "RS"), (40, "RT")),
    "address": (
        (0, "CR"),
        (1, "PU"),
        (3, "AF"),
        (5, "DF"),
        (20, "AF"),
        (22, "OD"),
        (23, "AD"),
        (26, "RS"),
        (60, "RT"),
    ),
    "refused": (
        (0, "CR"),
        (1, "PU"),
        (3, "AF"),
        (5, "DF"),
        (20, "AF"),
        (22, "OD"),
        (24, "RF"),
        (26, "RS"),
        (60, "RT"),
    ),
    "lost": ((0, "CR"), (1, "PU"), (3, "AF"), (5, "DF")),
}
DEFAULT_MIX = {
    "delivered": 0.86,
    "failed_attempt": 0.04,
    "pickup": 0.02,
    "weather": 0.03,
    "damaged": 0.01,
    "address": 0.015,
    "refused": 0.01,
    "lost": 0.015,
}
PLANNED_ARRIVAL_H = 24.0  # what the carrier promises at creation, whatever the life


@dataclass
class SandboxEvent:
    id: str
    code: str
    at: datetime
    location: str
    eta: datetime | None

    def payload(self, tracking_number: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "tracking_number": tracking_number,
            "code": self.code,
            "description": CODES[self.code],
            "at": stamp(self.at),
            "location": self.location,
            "eta": stamp(self.eta) if self.eta else None,
        }


@dataclass
class SandboxParcel:
    tracking_number: str
    reference: str
    life: str
    created: datetime
    events: list[SandboxEvent]  # the whole scripted life, some of it still in the future

    def due(self, now: datetime) -> list[SandboxEvent]:
        return [e for e in self.events if e.at <= now]


@dataclass
class CarrierState(Trouble):
    speed: float = 1.0
    seed: int = 0
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    webhook_url: str | None = None
    webhook_secret: str = ""
    started: float = field(default_factory=time.time)
    offset_s: float = 0.0
    parcels: dict[str, SandboxParcel] = field(default_factory=dict)
    by_reference: dict[str, str] = field(default_factory=dict)
    pushed: set[str] = field(default_factory=set)  # event ids already sent by webhook
    clock: Callable[[], datetime] | None = None  # a clock of the caller's (a demo's day)

    def now(self) -> datetime:
        if self.clock is not None:
            return self.clock() + timedelta(seconds=self.offset_s)
        simulated = (time.time() - self.started) * self.speed + self.offset_s
        return datetime.fromtimestamp(self.started + simulated, UTC)

    def create(self, reference: str, life: str | None, city: str) -> SandboxParcel:
        if reference in self.by_reference:
            return self.parcels[self.by_reference[reference]]
        rng = random.Random(f"{self.seed}:{reference}")
        life = life or rng.choices(list(self.mix), weights=list(self.mix.values()))[0]
        number = "SBX" + f"{uuid.uuid5(uuid.NAMESPACE_URL, reference).int % 10**10:010d}"
        created = self.now()
        jitter = rng.uniform(0.8, 1.2)
        planned = created + timedelta(hours=PLANNED_ARRIVAL_H * jitter)
        events, eta = [], planned
        for k, (hours, code) in enumerate(LIVES[life]):
            at = created + timedelta(hours=hours * jitter, seconds=k)  # distinct, in order
            if code == "WX":
                eta = planned + timedelta(hours=24)
            place = "Sort centre" if code in ("AF", "DF", "DM", "WX") else city
            events.append(SandboxEvent(f"{number}-{k}", code, at, place, eta))
        parcel = SandboxParcel(number, reference, life, created, events)
        self.parcels[number] = parcel
        self.by_reference[reference] = number
        return parcel


def parse_mix(text: str) -> dict[str, float]:
    """``delivered=0.9,lost=0.1``: how often each life is chosen for a new parcel."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        life, _, weight = part.partition("=")
        if life.strip() not in LIVES:
            raise argparse.ArgumentTypeError(f"unknown life {life!r}; one of {', '.join(LIVES)}")
        try:
            mix[life.strip()] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} needs a number after =") from None
    if not mix or sum(mix.values()) <= 0 or min(mix.values()) < 0:
        raise argparse.ArgumentTypeError("give some lives non-negative weights that add up")
    return mix
