"""What every carrier adapter does, and the normalised events it returns.

An adapter speaks one carrier's API and maps that carrier's codes into ``TrackingStatus``
(and, for trouble, an ``ExceptionReason``), keeping the carrier's own code and words on every
event. It creates shipments, tracks a batch of tracking numbers, parses and verifies the
carrier's webhooks, and cancels. What it cannot do (the own fleet is not polled, a tracking
aggregator creates nothing) raises ``NotSupported``.

Its errors are in ``fulfill_carriers.errors``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol, Self

from fulfill_carriers.status import TrackingStatus

# Keys are stored in 80 characters: a longer carrier event id is keyed by its digest.
MAX_ID_IN_KEY = 60


class ExceptionReason(StrEnum):
    """Why a parcel is in trouble: what the customer hears and what we do about it follow."""

    ADDRESS = "address"  # incomplete, wrong, or undeliverable address
    NOT_HOME = "not_home"  # nobody to receive it, no safe place
    REFUSED = "refused"  # the customer refused it
    DAMAGED = "damaged"
    LOST = "lost"
    CUSTOMS = "customs"
    WEATHER = "weather"  # or any force majeure
    DELAYED = "delayed"  # the carrier says it is late, without a better reason
    HELD = "held"  # held by the carrier: unpaid charges, security, pickup requested
    OTHER = "other"


@dataclass(frozen=True)
class CarrierEvent:
    """One thing a carrier said about one parcel: normalised, with its own code and words."""

    tracking_number: str
    status: TrackingStatus
    raw_code: str
    occurred_at: datetime
    description: str = ""
    location: str | None = None
    reason: ExceptionReason | None = None
    eta: datetime | None = None  # the carrier's estimate of delivery, when it gives one
    event_id: str | None = None  # the carrier's id of the event, when it gives one

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, which ``from_dict`` reads back as the same event."""
        return {
            "tracking_number": self.tracking_number,
            "status": self.status.value,
            "raw_code": self.raw_code,
            "occurred_at": self.occurred_at.isoformat(),
            "description": self.description,
            "location": self.location,
            "reason": self.reason.value if self.reason else None,
            "eta": self.eta.isoformat() if self.eta else None,
            "event_id": self.event_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CarrierEvent:
        return cls(
            tracking_number=data["tracking_number"],
            status=TrackingStatus(data["status"]),
            raw_code=data["raw_code"],
            occurred_at=datetime.fromisoformat(data["occurred_at"]),
            description=data.get("description") or "",
            location=data.get("location"),
            reason=ExceptionReason(data["reason"]) if data.get("reason") else None,
            eta=datetime.fromisoformat(data["eta"]) if data.get("eta") else None,
            event_id=data.get("event_id"),
        )

    @property
    def key(self) -> str:
        """The same for the same event however often or late it arrives: the carrier's own id
        when it has one, else what the event says and when it happened."""
        if self.event_id and len(self.event_id) <= MAX_ID_IN_KEY:
            return f"id:{self.event_id}"
        if self.event_id:  # a long id, kept whole would not fit: its digest is as unique
            return "id#" + hashlib.sha256(self.event_id.encode()).hexdigest()[:40]
        text = f"{self.raw_code}|{self.occurred_at.isoformat()}|{self.description}"
        return "h:" + hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Parcel:
    """Who receives a shipment and how heavy it is: what a carrier needs to create it."""

    reference: str  # our id for it, sent as the carrier's idempotency key where it has one
    name: str
    lat: float
    lon: float
    weight_kg: float
    service: str = "standard"
    address: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class CreatedShipment:
    tracking_number: str
    label_ref: str | None = None
    eta: datetime | None = None


@dataclass(frozen=True)
class Tracked:
    """What a carrier knows of one tracking number, oldest event first."""

    tracking_number: str
    events: tuple[CarrierEvent, ...] = ()
    eta: datetime | None = None
    known: bool = True  # False: the carrier has never heard of it


@dataclass(frozen=True)
class Webhook:
    """A verified webhook delivery: ``delivery_id`` is the same for a replay of the same
    delivery, so the receiver can refuse it."""

    delivery_id: str
    events: tuple[CarrierEvent, ...] = field(default=())


class Nature(StrEnum):
    """What a carrier is to the shop: it decides who creates shipments and who tracks them."""

    OWN_FLEET = "own_fleet"  # the shop's vans: drivers report, nothing is polled
    CARRIER = "carrier"  # a parcel carrier: creates shipments and labels, is tracked
    AGGREGATOR = "aggregator"  # tracks other carriers' parcels (webhooks), creates nothing
    FULFILLER = "fulfiller"  # ships from its own stock; its packages are tracked


class Carrier(Protocol):
    """A carrier adapter: a plugin of the ``fulfill.carriers`` entry point group is its class."""

    code: ClassVar[str]  # how shipments, settings and webhook URLs name it
    label: ClassVar[str]  # what a customer reads: "Amazon", "Canada Post"
    nature: ClassVar[Nature]
    batch_size: int  # tracking numbers per ``track`` call

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """The adapter as the shop configured it (its URL, credentials, timeouts); raises
        ``PluginError`` naming what is missing or wrong."""
        ...

    def create_shipment(self, parcel: Parcel) -> CreatedShipment: ...

    def track(self, tracking_numbers: Sequence[str]) -> list[Tracked]: ...

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], *, now: float | None = None
    ) -> Webhook:
        """Verify and read a webhook; ``headers`` with lower-case names."""
        ...

    def cancel(self, tracking_number: str) -> None: ...

    def close(self) -> None:
        """Release its HTTP client."""
        ...


def delivery_id(body: bytes, signed_at: int) -> str:
    """An id for a webhook delivery that carries none of its own, from what its signature covers
    (the timestamp and the body), so a replay has the same one however its header is written."""
    return hashlib.sha256(str(signed_at).encode() + b"\n" + body).hexdigest()
