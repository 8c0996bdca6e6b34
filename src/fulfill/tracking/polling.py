"""Polling the carriers that are polled, politely.

Each beat cycle takes the shipments due (``next_poll_at``; the interval follows the status:
often near the door, rarely in transit), in the carrier's batch size, at no more than
``FULFILL_TRACKING_RATE_PER_S`` calls a second per carrier. A failing call is retried with
exponential backoff; a carrier that keeps failing opens its circuit: it is left alone for
``FULFILL_TRACKING_BREAKER_OPEN_S``, its shipments are polled again after that, and the
opening is logged and counted once (an operator's alert). Nothing is lost: a shipment not
polled stays due.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge
from sqlalchemy import Engine, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from fulfill.config import Settings
from fulfill.tracking import recording, sweeping
from fulfill.tracking.models import CarrierHealth, Shipment
from fulfill_carriers import Carrier, CarrierError, CarrierUnavailable, Tracked

log = logging.getLogger(__name__)

POLLS = Counter("fulfill_tracking_polls_total", "tracking calls", ["carrier", "outcome"])
CIRCUIT_OPEN = Gauge(
    "fulfill_carrier_circuit_open", "1 while a carrier's circuit is open", ["carrier"]
)


@dataclass
class PollReport:
    shipments: int = 0
    calls: int = 0
    failed_calls: int = 0
    events: int = 0
    skipped: list[str] = field(default_factory=list)  # carriers whose circuit is open


class RateLimit:
    """At most ``per_s`` calls a second: each call waits for its slot."""

    def __init__(self, per_s: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self.gap = 1.0 / per_s
        self.sleep = sleep
        self.next_at = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            delay = self.next_at - now
            self.next_at = max(now, self.next_at) + self.gap
        if delay > 0:
            self.sleep(delay)


def poll_due(
    engine: Engine,
    carriers: dict[str, Carrier],
    settings: Settings,
    now: datetime,
    *,
    limit: int = 100_000,
) -> PollReport:
    """One beat cycle: each polled carrier whose circuit is closed and that no other cycle
    holds, for as many shipments as its rate limit allows before the next cycle."""
    report = PollReport()
    for code, carrier in carriers.items():
        if carrier.batch_size <= 0:
            continue  # webhook-only
        lease = timedelta(seconds=2 * settings.tracking_poll_s + 60)
        if not _claim(engine, code, now, lease):
            report.skipped.append(code)  # its circuit is open, or another cycle polls it
            continue
        try:
            calls = max(1, int(settings.tracking_rate_per_s * settings.tracking_poll_s))
            most = min(limit, calls * carrier.batch_size)
            _poll_carrier(engine, code, carrier, settings, now, most, report)
        finally:
            _release(engine, code)
    return report


def _poll_carrier(
    engine: Engine,
    code: str,
    carrier: Carrier,
    settings: Settings,
    now: datetime,
    limit: int,
    report: PollReport,
) -> None:
    with Session(engine) as session:
        due = session.exec(
            select(Shipment.id, Shipment.tracking_ref)
            .where(
                Shipment.carrier == code,
                col(Shipment.active),
                col(Shipment.next_poll_at) <= now,
            )
            .order_by(col(Shipment.next_poll_at))
            .limit(limit)
        ).all()
    limiter = RateLimit(settings.tracking_rate_per_s)
    for start in range(0, len(due), carrier.batch_size):
        batch = due[start : start + carrier.batch_size]
        ids = [sid for sid, _ in batch]
        limiter.wait()
        report.calls += 1
        try:
            tracked = _track(carrier, [ref for _, ref in batch], settings)
        except CarrierUnavailable as exc:
            report.failed_calls += 1
            POLLS.labels(code, "failed").inc()
            if _failed(engine, code, ids, exc, now, settings):
                return  # the rest stay due for when it closes
            continue
        except CarrierError as exc:  # refused: these parcels wait, the others go on
            report.failed_calls += 1
            POLLS.labels(code, "refused").inc()
            log.warning("carrier %s refused tracking %d parcels: %s", code, len(ids), exc)
            _postpone(engine, ids, now + timedelta(seconds=settings.tracking_breaker_open_s))
            continue
        POLLS.labels(code, "ok").inc()
        try:
            report.events += _apply(engine, code, batch, tracked, now, settings)
        except Exception:  # a bug or a bad answer must not stop the cycle nor lose the rest
            log.exception("applying %s tracking of %d parcels failed", code, len(ids))
            _postpone(engine, ids, now + timedelta(seconds=settings.tracking_breaker_open_s))
            continue
        report.shipments += len(batch)


def _track(carrier: Carrier, refs: Sequence[str], settings: Settings) -> list[Tracked]:
    for attempt in Retrying(
        retry=retry_if_exception_type(CarrierUnavailable),
        stop=stop_after_attempt(settings.tracking_retries),
        wait=wait_exponential(multiplier=0.2, max=5),
        reraise=True,
    ):
        with attempt:
            return carrier.track(refs)
    raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


def _apply(
    engine: Engine,
    code: str,
    batch: Sequence[tuple[str, str]],
    tracked: list[Tracked],
    now: datetime,
    settings: Settings,
) -> int:
    """One transaction per call: its shipments locked in id order, each moved on."""
    by_ref = {t.tracking_number: t for t in tracked}
    stored = 0
    with Session(engine) as session:
        ids = sorted(sid for sid, _ in batch)
        shipments = session.exec(
            select(Shipment)
            .where(col(Shipment.id).in_(ids))
            .order_by(col(Shipment.id))
            .with_for_update()
        ).all()
        said = {s.id: by_ref[s.tracking_ref].events for s in shipments if s.tracking_ref in by_ref}
        known = recording.Known.of(session, said, shipments)
        for shipment in shipments:
            found = by_ref.get(shipment.tracking_ref)
            if found is not None and found.known:
                if found.eta is not None and shipment.eta_source != "plan":
                    shipment.eta, shipment.eta_source = found.eta, "carrier"
                recorded = recording.record(
                    session, shipment, found.events, source="poll", now=now, known=known
                )
                stored += recorded.stored
            shipment.poll_failures = 0
            shipment.next_poll_at = sweeping.next_poll(shipment, now, settings)
        known.write(session)
        _succeeded(session, code, now)
        session.commit()
    return stored


def _claim(engine: Engine, code: str, now: datetime, lease: timedelta) -> bool:
    """Hold the carrier for this cycle, unless its circuit is open or another cycle holds it:
    overlapping cycles would poll the same parcels and multiply the rate."""
    with Session(engine) as session:
        if session.get(CarrierHealth, code) is None:
            session.add(CarrierHealth(carrier=code))
            try:
                session.commit()
            except IntegrityError:  # created by a concurrent cycle: theirs will do
                session.rollback()
        held = session.exec(
            update(CarrierHealth)
            .where(
                col(CarrierHealth.carrier) == code,
                or_(
                    col(CarrierHealth.polling_until).is_(None),
                    col(CarrierHealth.polling_until) < now,
                ),
                or_(col(CarrierHealth.open_until).is_(None), col(CarrierHealth.open_until) <= now),
            )
            .values(polling_until=now + lease)
        )
        session.commit()
        health = session.get(CarrierHealth, code)
        is_open = bool(health and health.open_until and health.open_until > now)
    CIRCUIT_OPEN.labels(code).set(1 if is_open else 0)
    return bool(held.rowcount)


def _release(engine: Engine, code: str) -> None:
    with Session(engine) as session:
        session.execute(
            update(CarrierHealth)
            .where(col(CarrierHealth.carrier) == code)
            .values(polling_until=None)
        )
        session.commit()


def _postpone(engine: Engine, shipment_ids: list[str], until: datetime) -> None:
    with Session(engine) as session:
        session.execute(
            update(Shipment)
            .where(col(Shipment.id).in_(shipment_ids))
            .values(poll_failures=Shipment.poll_failures + 1, next_poll_at=until)
        )
        session.commit()


def _failed(
    engine: Engine,
    code: str,
    shipment_ids: list[str],
    exc: Exception,
    now: datetime,
    settings: Settings,
) -> bool:
    """Count the failure; open the circuit at the threshold. Returns whether it opened."""
    with Session(engine) as session:
        health = session.get(CarrierHealth, code) or CarrierHealth(carrier=code)
        health.failures += 1
        health.last_error = str(exc)[:1000]
        opened = health.failures >= settings.tracking_breaker_failures
        backoff = timedelta(seconds=settings.tracking_breaker_open_s)
        if opened:
            health.open_until = now + backoff
            health.failures = settings.tracking_breaker_failures - 1  # half open: one more trips it
            health.alerted_at = now
            log.error(
                "carrier %s is failing (%s): its circuit is open until %s",
                code,
                exc,
                health.open_until.isoformat(),
            )
        session.add(health)
        session.commit()
    _postpone(engine, shipment_ids, now + backoff)
    return opened


def _succeeded(session: Session, code: str, now: datetime) -> None:
    health = session.get(CarrierHealth, code) or CarrierHealth(carrier=code)
    health.failures, health.open_until, health.last_success_at = 0, None, now
    session.add(health)
