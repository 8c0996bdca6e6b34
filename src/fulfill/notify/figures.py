"""The service's figures, the way a shop's customer service is judged, read from the database
(the one truth every API and worker process writes to): how soon after an alert the customer
heard from us, how many late deliveries were announced before their window ended, notices per
order, cases opened, same-day promises kept as first given (``promises``). ``GET
/v1/metrics/service`` and, as gauges, ``/metrics``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func
from sqlalchemy import select as sa_select  # more columns than sqlmodel's select types
from sqlmodel import Session, col, select

from fulfill.db import utcnow
from fulfill.notify.models import Case, CaseStatus, Notice, NoticeStatus
from fulfill.notify.promises import same_day_figures
from fulfill.notify.schemas import (
    AlertResponse,
    LateTold,
    PromiseFigures,
    SameDayPromises,
    ServiceFigures,
)
from fulfill.notify.templates import NoticeKind
from fulfill.orders.models import Order
from fulfill.tracking.models import AlertKind, Shipment, TrackingAlert

# The notice that answers each alert the customer should hear about.
ANSWERED_BY = {
    AlertKind.LATE: NoticeKind.RUNNING_LATE,
    AlertKind.ATTEMPT_FAILED: NoticeKind.ATTEMPT_FAILED,
    AlertKind.EXCEPTION: NoticeKind.EXCEPTION,
    AlertKind.LOST: NoticeKind.EXCEPTION,
}
# The notices that tell a customer the promised window will not be kept.
TELLS_LATE = (NoticeKind.RUNNING_LATE, NoticeKind.ATTEMPT_FAILED, NoticeKind.EXCEPTION)


def service_figures(session: Session, since: datetime, until: datetime) -> ServiceFigures:
    # The columns the figures need: a day of notices, without their stored facts.
    notices: Sequence[Any] = session.execute(
        sa_select(
            *(
                col(c)
                for c in (
                    Notice.id,
                    Notice.kind,
                    Notice.channel,
                    Notice.status,
                    Notice.sent_at,
                    Notice.shipment_id,
                    Notice.order_id,
                    Notice.fallback_of,
                )
            )
        ).where(col(Notice.created_at) > since, col(Notice.created_at) <= until)
    ).all()
    first_sent = _first_sent(notices)
    orders = session.exec(
        select(func.count())
        .select_from(Order)
        .where(col(Order.created_at) > since, col(Order.created_at) <= until)
    ).one()
    sent = [n for n in notices if n.status == NoticeStatus.SENT]
    successors = {n.fallback_of for n in notices if n.fallback_of}
    cases = session.exec(
        select(Case.kind).where(col(Case.opened_at) > since, col(Case.opened_at) <= until)
    ).all()
    return ServiceFigures(
        since=since,
        until=until,
        detection_to_first_notice=_responses(session, since, until, first_sent),
        late_deliveries=_late_told(session, since, until, first_sent),
        orders=orders,
        notices_sent=len(sent),
        notices_per_order=round(len(sent) / orders, 3) if orders else None,
        notices_by_kind=dict(Counter(n.kind for n in sent)),
        notices_by_channel=dict(Counter(n.channel for n in sent)),
        notices_failed=sum(n.status == NoticeStatus.FAILED for n in notices),
        dead_letters=sum(
            n.status == NoticeStatus.FAILED and n.id not in successors for n in notices
        ),
        cases_opened=len(cases),
        cases_by_kind=dict(Counter(cases)),
        cases_open=session.exec(
            select(func.count()).select_from(Case).where(Case.status == CaseStatus.OPEN)
        ).one(),
        promises=PromiseFigures(same_day=same_day_figures(session, since, until)),
    )


def _first_sent(notices: Sequence[Any]) -> dict[tuple[str, str], datetime]:
    """The first notice sent of each kind, per shipment and per order (any channel)."""
    first: dict[tuple[str, str], datetime] = {}
    for notice in notices:
        if notice.sent_at is None:
            continue
        for about in (notice.shipment_id, notice.order_id):
            if about is not None:
                key = (about, notice.kind)
                first[key] = min(first.get(key, notice.sent_at), notice.sent_at)
    return first


def _responses(
    session: Session, since: datetime, until: datetime, first_sent: dict[tuple[str, str], datetime]
) -> dict[str, AlertResponse]:
    alerts = session.exec(
        select(TrackingAlert).where(
            col(TrackingAlert.detected_at) > since,
            col(TrackingAlert.detected_at) <= until,
            col(TrackingAlert.kind).in_([k.value for k in ANSWERED_BY]),
        )
    ).all()
    waits: dict[str, list[float]] = {"all": []}
    counts: Counter[str] = Counter()
    for alert in alerts:
        counts[alert.kind] += 1
        counts["all"] += 1
        kind = ANSWERED_BY[AlertKind(alert.kind)].value
        sent = first_sent.get((alert.shipment_id, kind)) or first_sent.get((alert.order_id, kind))
        if sent is not None:
            wait = max(0.0, (sent - alert.detected_at).total_seconds())
            waits.setdefault(alert.kind, []).append(wait)
            waits["all"].append(wait)
    return {kind: _summary(counts[kind], waits.get(kind, [])) for kind in counts or {"all": 0}}


def _summary(alerts: int, waits: list[float]) -> AlertResponse:
    ordered = sorted(waits)

    def at(q: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else None

    return AlertResponse(
        alerts=alerts,
        notified=len(ordered),
        p50_s=at(0.5),
        p90_s=at(0.9),
        p99_s=at(0.99),
        max_s=round(ordered[-1], 3) if ordered else None,
    )


def _late_told(
    session: Session, since: datetime, until: datetime, first_sent: dict[tuple[str, str], datetime]
) -> LateTold:
    """Late deliveries whose promised window ended in the period: told before it ended (that it
    runs late, or that the attempt failed or went wrong, with what happens next)?"""
    late = session.exec(
        select(Shipment.id, Shipment.order_id, Shipment.promised_end).where(
            col(Shipment.late),
            col(Shipment.promised_end) > since,
            col(Shipment.promised_end) <= until,
        )
    ).all()
    leads = []
    for shipment_id, order_id, promised_end in late:
        told = [
            at
            for kind in TELLS_LATE
            for about in (shipment_id, order_id)
            if (at := first_sent.get((about, kind.value))) is not None
        ]
        sent = min(told, default=None)
        if sent is not None and promised_end is not None and sent <= promised_end:
            leads.append((promised_end - sent).total_seconds())
    return LateTold(
        late=len(late),
        told_before_window_end=len(leads),
        share_told_before=round(len(leads) / len(late), 4) if late else None,
        median_lead_s=round(statistics.median(leads), 1) if leads else None,
    )


class ServiceCollector(Collector):
    """The last day's figures as Prometheus gauges, read at most every ``ttl_s`` seconds."""

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime] = utcnow, ttl_s: float = 15.0
    ) -> None:
        self.engine, self.clock, self.ttl_s = engine, clock, ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, ServiceFigures] | None = None

    def figures(self) -> ServiceFigures:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > self.ttl_s:
                now = self.clock()
                with Session(self.engine) as session:
                    figures = service_figures(session, now - timedelta(days=1), now)
                self._cached = (time.monotonic(), figures)
            return self._cached[1]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        figures = self.figures()
        response = GaugeMetricFamily(
            "fulfill_alert_to_notice_seconds",
            "time from an alert's detection to the first notice sent, last 24 h",
            labels=["alert", "quantile"],
        )
        for kind, summary in figures.detection_to_first_notice.items():
            for quantile, value in (
                ("0.5", summary.p50_s),
                ("0.9", summary.p90_s),
                ("0.99", summary.p99_s),
            ):
                if value is not None:
                    response.add_metric([kind, quantile], value)
        yield response
        told = GaugeMetricFamily(
            "fulfill_late_told_before_window_ratio",
            "late deliveries announced before their window ended, last 24 h",
        )
        if figures.late_deliveries.share_told_before is not None:
            told.add_metric([], figures.late_deliveries.share_told_before)
        yield told
        sent = GaugeMetricFamily("fulfill_notices_sent", "notices sent, last 24 h", labels=["kind"])
        for kind, count in figures.notices_by_kind.items():
            sent.add_metric([kind], count)
        yield sent
        per_order = GaugeMetricFamily("fulfill_notices_per_order", "notices per order, last 24 h")
        if figures.notices_per_order is not None:
            per_order.add_metric([], figures.notices_per_order)
        yield per_order
        yield GaugeMetricFamily(
            "fulfill_notice_dead_letters",
            "notices no channel took, 24 h",
            value=figures.dead_letters,
        )
        yield GaugeMetricFamily(
            "fulfill_cases_opened", "cases opened, last 24 h", value=figures.cases_opened
        )
        yield GaugeMetricFamily("fulfill_cases_open", "cases open now", value=figures.cases_open)
        yield from _promise_gauges(figures.promises.same_day)


def _promise_gauges(same_day: SameDayPromises) -> Iterator[GaugeMetricFamily]:
    outcomes = GaugeMetricFamily(
        "fulfill_same_day_promises", "same-day orders of the last 24 h", labels=["outcome"]
    )
    for outcome in ("placed", "kept", "early", "told_late", "false_alarms"):
        outcomes.add_metric([outcome], getattr(same_day, outcome))
    yield outcomes
    late = GaugeMetricFamily(
        "fulfill_same_day_promises_late", "same-day promises not kept, by cause", labels=["cause"]
    )
    for cause, count in sorted(same_day.late.items()):
        late.add_metric([cause], count)
    yield late
