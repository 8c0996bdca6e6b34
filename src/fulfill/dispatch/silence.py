"""The silent-van rule: a van that has said nothing for too long is assumed to stand where it was
last known, and its stops' ETAs are projected again, so its customers are warned in time."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_
from sqlmodel import Session, col, func, select

from fulfill.config import Settings
from fulfill.dispatch.models import (
    DriverEvent,
    Plan,
    PlanRoute,
    PlanStatus,
    PlanStop,
    RouteStatus,
    Van,
)
from fulfill.dispatch.projection import reproject, tell_etas
from fulfill.dispatch.rescue import Stranded, rescue


def watch_silent_vans(session: Session, settings: Settings, now: datetime) -> list[str]:
    """Routes whose van has said nothing for ``dispatch_silent_van_s``: under way and silent
    since its last report, or not yet left that long after its departure (still out on an
    earlier route, say). Their ETAs are projected again as if the van stood where it was last
    known (the depot, for one not yet left) for as long again as it has been silent or late
    (the longer a stop has lasted, the longer it is likely to last), so that a van broken down,
    stuck or behind warns its customers while their windows are still open. The stops this
    makes late go to the vans that can still deliver them in time (the rescue); the
    fulfillments left late."""
    quiet_since = now - timedelta(seconds=settings.dispatch_silent_van_s)
    routes = session.exec(
        select(PlanRoute, Plan, Van)
        .join(Plan, col(Plan.id) == PlanRoute.plan_id)
        .join(Van, col(Van.id) == PlanRoute.van_id)
        .where(
            Plan.status == PlanStatus.PUBLISHED,
            or_(
                col(PlanRoute.status) == RouteStatus.STARTED,
                and_(
                    col(PlanRoute.status) == RouteStatus.PLANNED,
                    col(PlanRoute.depart_at) <= quiet_since,
                ),
            ),
        )
    ).all()
    if not routes:
        return []
    heard = dict(
        session.exec(
            select(DriverEvent.van_code, func.max(DriverEvent.at))
            .where(col(DriverEvent.van_code).in_([van.code for _, _, van in routes]))
            .group_by(col(DriverEvent.van_code))
        ).all()
    )
    late: list[str] = []
    for route, plan, van in routes:
        started = route.status == RouteStatus.STARTED
        last = heard.get(van.code, now) if started else route.depart_at
        if last > quiet_since:
            continue
        newly_late = reproject(
            session,
            plan,
            route,
            settings,
            now=now,
            van_code=van.code,
            resumes_at=now + (now - last),
        )
        rescued: set[str] = set()
        if newly_late:  # other vans take what they can still deliver in its window
            cause = f"van silent since {last.isoformat(timespec='minutes')}"
            stranded = Stranded(plan, van, tuple(newly_late), cause, broken=False)
            rescued = set(rescue(session, stranded, settings, now))
        late += [f for f in newly_late if f not in rescued]
        stops = session.exec(select(PlanStop).where(PlanStop.route_id == route.id)).all()
        tell_etas(
            session, [s for s in stops if s.fulfillment_id not in rescued], set(), settings, now
        )
    return late
