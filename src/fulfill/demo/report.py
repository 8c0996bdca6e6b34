"""The day's report, read from the database the service wrote: ``report.json``, PNG plots and
``report.html`` that shows them."""

from __future__ import annotations

import json
import mailbox
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from fulfill.demo.tally import Tally
from fulfill.dispatch.models import Plan, PlanRoute, PlanStatus, PlanStop, RouteStatus, Van, Wave
from fulfill.inventory.models import Node
from fulfill.notify.figures import service_figures
from fulfill.notify.promises import Outcome, same_day_outcomes
from fulfill.notify.schemas import SameDayPromises
from fulfill.orders.models import Fulfillment, Order
from fulfill.tracking.models import Shipment
from fulfill_carriers import TrackingStatus

COLOUR = "#2b6cb0"


def build(
    engine: Engine,
    tally: Tally,
    since: datetime,
    until: datetime,
    about: dict[str, Any],
    maildir: Path,
) -> dict[str, Any]:
    """The figures of the day from ``since`` (local midnight) to ``until``; ``about`` (city,
    day, seed) heads them."""
    with Session(engine) as session:
        orders = session.exec(select(Order)).all()
        nodes = {n.id: n.code for n in session.exec(select(Node)).all()}
        fulfillments = session.exec(select(Fulfillment)).all()
        shipments = session.exec(select(Shipment)).all()
        figures = service_figures(session, since, until)
        outcomes = same_day_outcomes(session, since, until)
        troubled = _on_troubled_vans(session, _troubled_vans(tally))
        routes = _published_routes(session)
        vans = session.exec(select(Van)).all()
    sources = {f.order_id: nodes[f.node_id] for f in fulfillments}
    by_source = Counter(f"{sources.get(o.id, '?')} {o.service_level}" for o in orders)
    by_hour = Counter(int((o.created_at - since).total_seconds() // 3600) for o in orders)
    delivered = [s for s in shipments if s.status == TrackingStatus.DELIVERED]
    late = [s for s in delivered if s.promised_end and s.status_at > s.promised_end]
    return {
        **about,
        "period": {"since": since.isoformat(), "until": until.isoformat()},
        "orders": {
            "generated": tally.orders,
            "placed": len(orders),
            "refused": dict(tally.refused),
            "by_level": dict(tally.placed),
            "downgraded": tally.downgraded,
            "by_source": dict(sorted(by_source.items())),
            "by_hour": {f"{h:02d}": by_hour[h] for h in range(24)},
        },
        "deliveries": {
            "shipments": len(shipments),
            "delivered": len(delivered),
            "on_time": len(delivered) - len(late),
            "late": len(late),
            "late_told": figures.late_deliveries.model_dump(),
            "in_progress": dict(Counter(s.status for s in shipments if s not in delivered)),
        },
        "notices": {
            "sent": figures.notices_sent,
            "by_kind": figures.notices_by_kind,
            "by_channel": figures.notices_by_channel,
            "per_order": figures.notices_per_order,
            "dead_letters": figures.dead_letters,
            "duplicate_mails": _duplicate_mails(maildir),
            "detection_to_first_notice": {
                kind: r.model_dump() for kind, r in figures.detection_to_first_notice.items()
            },
        },
        "promises": {"same_day": _same_day(figures.promises.same_day, outcomes, troubled)},
        "cost": _cost(orders, fulfillments, nodes, routes),
        "vans": _vans(vans, routes),
        "incidents": tally.incidents,
        "driver_events": dict(tally.driver_events),
    }


def _same_day(
    figures: SameDayPromises, outcomes: Sequence[Outcome], troubled: set[str]
) -> dict[str, Any]:
    """The service's same-day figures, and which of the promises not kept stem from the trouble
    the demo injected (a parcel on the van that broke down or stood in the jam)."""
    spared = [o for o in outcomes if o.order_id not in troubled]
    kept_spared = sum(o.kept for o in spared)
    not_kept = [o for o in outcomes if o.late_because is not None]
    return {
        **figures.model_dump(),
        "late_from_injected_trouble": sum(o.order_id in troubled for o in not_kept),
        "late_otherwise": sum(o.order_id not in troubled for o in not_kept),
        "kept_share_without_trouble": round(kept_spared / len(spared), 4) if spared else None,
    }


def _troubled_vans(tally: Tally) -> set[str]:
    return {
        str(incident["van"])
        for incident in tally.incidents
        if incident["what"] in ("van breakdown", "traffic jam") and "van" in incident
    }


def _on_troubled_vans(session: Session, vans: set[str]) -> set[str]:
    """Orders with a stop on a route that one of ``vans`` took on the road."""
    if not vans:
        return set()
    rows = session.exec(
        select(PlanStop.order_id)
        .join(PlanRoute, col(PlanRoute.id) == PlanStop.route_id)
        .join(Van, col(Van.id) == PlanRoute.van_id)
        .where(col(Van.code).in_(vans), PlanRoute.status != RouteStatus.PLANNED)
    )
    return set(rows)


def _published_routes(session: Session) -> list[PlanRoute]:
    published = select(Plan.id).where(Plan.status == PlanStatus.PUBLISHED)
    return list(session.exec(select(PlanRoute).where(col(PlanRoute.plan_id).in_(published))))


def _cost(
    orders: Sequence[Order],
    fulfillments: Sequence[Fulfillment],
    nodes: dict[int | None, str],
    routes: list[PlanRoute],
) -> dict[str, Any]:
    """What the day's deliveries cost: the own vans by their planned routes, the carriers and
    the third party at the price sourcing chose them for."""
    by_van = {(f.order_id, nodes[f.node_id]) for f in fulfillments if f.wave_id is not None}
    carried = sum(
        shipment.get("cost") or 0.0
        for order in orders
        for shipment in (order.sourcing or {}).get("shipments", [])
        if (order.id, shipment.get("node")) not in by_van
    )
    vans = sum(route.cost for route in routes)
    total = vans + carried
    priced = sum((o.sourcing or {}).get("cost") or 0.0 for o in orders)
    currency = next((c for o in orders if (c := (o.sourcing or {}).get("currency"))), "")
    return {
        "own_fleet": round(vans, 2),
        "carriers_and_third_party": round(carried, 2),
        "total": round(total, 2),
        "per_order": round(total / len(orders), 2) if orders else None,
        "priced_at_sourcing": round(priced, 2),
        "currency": currency,
    }


def _vans(vans: Sequence[Van], routes: list[PlanRoute]) -> dict[str, Any]:
    """Distance, and the share of each van's shift spent on its routes."""
    hours: defaultdict[int | None, float] = defaultdict(float)
    km: defaultdict[int | None, float] = defaultdict(float)
    for route in routes:
        hours[route.van_id] += (route.return_at - route.depart_at).total_seconds() / 3600
        km[route.van_id] += route.distance_m / 1000
    shift = {van.id: _hours(van.shift_start, van.shift_end) for van in vans}
    by_van = {
        van.code: {
            "routes": sum(r.van_id == van.id for r in routes),
            "km": round(km[van.id], 1),
            "utilisation": round(hours[van.id] / shift[van.id], 3),
        }
        for van in sorted(vans, key=lambda v: v.code)
    }
    return {
        "routes": len(routes),
        "distance_km": round(sum(km.values()), 1),
        "utilisation": round(sum(hours.values()) / sum(shift.values()), 3) if vans else None,
        "by_van": by_van,
    }


def _hours(start: str, end: str) -> float:
    (h1, m1), (h2, m2) = (map(int, start.split(":")), map(int, end.split(":")))
    return max((h2 * 60 + m2 - h1 * 60 - m1) / 60, 1 / 60)


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
    orders, vans = report["orders"], report["vans"]
    responses = {
        kind: r
        for kind, r in report["notices"]["detection_to_first_notice"].items()
        if r["notified"]
    }
    plots = {
        "orders_by_hour.png": _bars(
            orders["by_hour"],
            "Orders placed by hour (local)",
            "orders",
            out / "orders_by_hour.png",
            across=True,
        ),
        "orders_by_source.png": _bars(
            orders["by_source"],
            "Orders by source and service level",
            "orders",
            out / "orders_by_source.png",
        ),
        "notice_response.png": _response_plot(responses, out / "notice_response.png"),
        "van_utilisation.png": _bars(
            {code: van["utilisation"] * 100 for code, van in vans["by_van"].items()},
            "Share of each van's shift on its routes",
            "%",
            out / "van_utilisation.png",
        ),
        "wave_map.png": _wave_map(engine, out / "wave_map.png"),
    }
    env = Environment(loader=PackageLoader("fulfill.demo"), autoescape=select_autoescape())
    html = env.get_template("report.html").render(report=report, plots=plots)
    (out / "report.html").write_text(html)
    return out / "report.html"


def _bars(
    values: dict[str, float], title: str, unit: str, path: Path, across: bool = False
) -> bool:
    """A bar per key: across the page (hours), or down it (names)."""
    if not any(values.values()):
        return False
    figure, axes = plt.subplots(figsize=(8, 3.2 if across else max(3.0, 0.22 * len(values))))
    if across:
        axes.bar(list(values), list(values.values()), color=COLOUR)
        axes.set_ylabel(unit)
    else:
        axes.barh(list(values), list(values.values()), color=COLOUR)
        axes.invert_yaxis()  # the first key on top
        axes.set_xlabel(unit)
    axes.set_title(title)
    _save(figure, path)
    return True


def _response_plot(responses: dict[str, dict[str, Any]], path: Path) -> bool:
    """Seconds from an alert's detection to its first notice sent: median and 99th percentile,
    by alert kind."""
    if not responses:
        return False
    figure, axes = plt.subplots(figsize=(8, 0.5 * len(responses) + 1.2))
    kinds = list(responses)
    rows = range(len(kinds))
    axes.barh(
        [y - 0.2 for y in rows],
        [responses[k]["p50_s"] for k in kinds],
        height=0.4,
        color=COLOUR,
        label="median",
    )
    axes.barh(
        [y + 0.2 for y in rows],
        [responses[k]["p99_s"] for k in kinds],
        height=0.4,
        color="#ed8936",
        label="99th percentile",
    )
    axes.set_yticks(list(rows), [f"{k} ({responses[k]['alerts']})" for k in kinds])
    axes.invert_yaxis()
    axes.set_xlabel("seconds (simulated clock)")
    axes.set_title("From an alert to the customer's first notice")
    axes.legend(fontsize=8)
    _save(figure, path)
    return True


def _save(figure: Any, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _wave_map(engine: Engine, path: Path) -> bool:
    """The routes of the busiest published wave, van by van, out of its depot and back."""
    with Session(engine) as session:
        routes_of: dict[int, list[PlanRoute]] = defaultdict(list)
        for route in _published_routes(session):
            routes_of[route.plan_id].append(route)
        if not routes_of:
            return False
        plan_id = max(routes_of, key=lambda p: len(routes_of[p]))
        stops: dict[int | None, list[PlanStop]] = defaultdict(list)
        for stop in session.exec(select(PlanStop).where(PlanStop.plan_id == plan_id)).all():
            stops[stop.route_id].append(stop)
        plan = session.get(Plan, plan_id)
        wave = session.get(Wave, plan.wave_id) if plan else None
        depot = session.get(Node, wave.node_id) if wave else None
        vans = {v.id: v.code for v in session.exec(select(Van)).all()}
    if wave is None or depot is None:
        return False
    figure, axes = plt.subplots(figsize=(7, 7))
    for route in routes_of[plan_id]:
        ordered = sorted(stops[route.id], key=lambda s: s.position)
        lats = [depot.lat, *(s.lat for s in ordered), depot.lat]
        lons = [depot.lon, *(s.lon for s in ordered), depot.lon]
        axes.plot(
            lons, lats, marker="o", markersize=3, linewidth=1, label=vans.get(route.van_id, "?")
        )
    axes.plot([depot.lon], [depot.lat], marker="s", markersize=9, color="black", linestyle="")
    axes.annotate(depot.code, (depot.lon, depot.lat), xytext=(6, 6), textcoords="offset points")
    cutoff = wave.cutoff_at.astimezone(ZoneInfo(depot.timezone)).strftime("%H:%M")
    axes.set_title(f"{depot.code}, the wave cut off at {cutoff}: {len(routes_of[plan_id])} routes")
    axes.set_xlabel("longitude")
    axes.set_ylabel("latitude")
    axes.legend(fontsize=7, ncol=2)
    _save(figure, path)
    return True
