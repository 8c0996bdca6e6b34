"""The day's report, read from the database the service wrote: ``report.json``, PNG plots and
``report.html`` that shows them."""

from __future__ import annotations

import json
import mailbox
import statistics
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from fulfill.demo.day import Tally
from fulfill.dispatch.models import Plan, PlanRoute, PlanStatus, PlanStop, Van
from fulfill.inventory.models import Node
from fulfill.notify.figures import service_figures
from fulfill.notify.models import Notice, NoticeStatus
from fulfill.notify.templates import NoticeKind
from fulfill.orders.models import Fulfillment, Order
from fulfill.tracking.models import Shipment
from fulfill_carriers.status import TrackingStatus

SHIFT_H = 14.0  # the demo vans' shift, 08:00 to 22:00


def build(
    engine: Engine,
    tally: Tally,
    since: datetime,
    until: datetime,
    about: dict[str, Any],
    maildir: Path,
) -> dict[str, Any]:
    """The figures; ``about`` (city, day, seed) heads them."""
    with Session(engine) as session:
        orders = session.exec(select(Order)).all()
        nodes = {n.id: n.code for n in session.exec(select(Node)).all()}
        sources = {f.order_id: nodes[f.node_id] for f in session.exec(select(Fulfillment)).all()}
        shipments = session.exec(select(Shipment)).all()
        late_told = _first_late_notice(session)
        figures = service_figures(session, since, until)
        plans = session.exec(select(Plan).where(Plan.status == PlanStatus.PUBLISHED)).all()
        routes = session.exec(
            select(PlanRoute).where(col(PlanRoute.plan_id).in_([p.id for p in plans]))
        )
        routes_list = routes.all()
    by_source = Counter(f"{sources.get(o.id, '?')} {o.service_level}" for o in orders)
    delivered = [s for s in shipments if s.status == TrackingStatus.DELIVERED]
    late = [s for s in delivered if s.promised_end and s.status_at > s.promised_end]
    leads = [(s.promised_end - late_told[s.order_id]).total_seconds() / 60
             for s in late if s.order_id in late_told and s.promised_end]  # fmt: skip
    cost = sum((o.sourcing or {}).get("cost", 0.0) or 0.0 for o in orders)
    busy_h = [(r.return_at - r.depart_at).total_seconds() / 3600 for r in routes_list]
    return {
        **about,
        "orders": {"generated": tally.orders, "placed": len(orders),
                   "refused": dict(tally.refused), "by_level": dict(tally.placed),
                   "by_source": dict(sorted(by_source.items()))},
        "deliveries": {
            "shipments": len(shipments), "delivered": len(delivered),
            "on_time": len(delivered) - len(late), "late": len(late),
            "late_told_before_window_end": sum(lead > 0 for lead in leads),
            "late_told_lead_min_median": round(statistics.median(leads), 1) if leads else None,
            "in_progress": Counter(s.status for s in shipments if s.status != "delivered"),
        },
        "notices": {"sent": figures.notices_sent, "by_kind": figures.notices_by_kind,
                    "by_channel": figures.notices_by_channel,
                    "per_order": figures.notices_per_order, "dead_letters": figures.dead_letters,
                    "duplicate_mails": _duplicate_mails(maildir),
                    "detection_to_first_notice": {
                        kind: r.model_dump()
                        for kind, r in figures.detection_to_first_notice.items()}},
        "cost": {"total": round(cost, 2),
                 "per_order": round(cost / len(orders), 2) if orders else None},
        "vans": {"routes": len(routes_list),
                 "distance_km": round(sum(r.distance_m for r in routes_list) / 1000, 1),
                 "utilisation": round(sum(busy_h) / (len(busy_h) * SHIFT_H), 3) if busy_h
                 else None},
        "incidents": tally.incidents, "driver_events": dict(tally.driver_events),
    }  # fmt: skip


def _first_late_notice(session: Session) -> dict[str, datetime]:
    rows = session.exec(
        select(Notice.order_id, Notice.sent_at).where(
            Notice.kind == NoticeKind.RUNNING_LATE, Notice.status == NoticeStatus.SENT)
    ).all()  # fmt: skip
    first: dict[str, datetime] = {}
    for order_id, sent_at in rows:
        if sent_at is not None and (order_id not in first or sent_at < first[order_id]):
            first[order_id] = sent_at
    return first


def _duplicate_mails(maildir: Path) -> int:
    """Mails that reached the customer's mailbox twice (by Message-ID): the notices' unique key
    keeps rows single, this counts what was delivered."""
    if not maildir.exists():
        return 0
    ids = Counter(message["Message-ID"] for message in mailbox.Maildir(maildir, create=False))
    return sum(count - 1 for count in ids.values())


def write(engine: Engine, report: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    plots = {"wave_map.png": _wave_map(engine, out / "wave_map.png"),
             "orders_by_source.png": _bars(report["orders"]["by_source"],
                                            "Orders by source and service level",
                                            out / "orders_by_source.png")}  # fmt: skip
    env = Environment(loader=PackageLoader("fulfill.demo"), autoescape=select_autoescape())
    html = env.get_template("report.html").render(report=report, plots=plots)
    (out / "report.html").write_text(html)
    return out / "report.html"


def _bars(values: dict[str, int], title: str, path: Path) -> bool:
    if not values:
        return False
    figure, axes = plt.subplots(figsize=(8, 4))
    axes.barh(list(values), list(values.values()), color="#2b6cb0")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def _wave_map(engine: Engine, path: Path) -> bool:
    """The routes of the busiest published wave, van by van, from its depot."""
    with Session(engine) as session:
        plans = session.exec(select(Plan).where(Plan.status == PlanStatus.PUBLISHED)).all()
        stops: dict[int, list[PlanStop]] = defaultdict(list)
        routes_of: dict[int, list[PlanRoute]] = defaultdict(list)
        published = [p.id for p in plans]
        for route in session.exec(
            select(PlanRoute).where(col(PlanRoute.plan_id).in_(published))
        ).all():
            routes_of[route.plan_id].append(route)
        if not plans:
            return False
        plan = max(plans, key=lambda p: len(routes_of[p.id or 0]))
        for stop in session.exec(select(PlanStop).where(PlanStop.plan_id == plan.id)).all():
            stops[stop.route_id or 0].append(stop)
        vans = {v.id: v.code for v in session.exec(select(Van)).all()}
    figure, axes = plt.subplots(figsize=(7, 7))
    for route in routes_of[plan.id or 0]:
        ordered = sorted(stops[route.id or 0], key=lambda s: s.position)
        lats = [s.lat for s in ordered]
        lons = [s.lon for s in ordered]
        axes.plot(
            lons, lats, marker="o", markersize=3, linewidth=1, label=vans.get(route.van_id, "?")
        )
    axes.set_title(f"Wave {plan.wave_id}: {len(routes_of[plan.id or 0])} routes")
    axes.set_xlabel("longitude")
    axes.set_ylabel("latitude")
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
