"""Celery side of the third party: the outbox handlers that create and cancel its orders, and
the periodic sync of its stock and of the orders it holds. All safe to run twice."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine
from sqlmodel import Session

from fulfill.config import Settings, get_settings
from fulfill.db import engine_for, session_scope, utcnow
from fulfill.fulfillers import service, syncing
from fulfill.outbox.models import OutboxEvent
from fulfill.outbox.service import Handler
from fulfill.worker import app
from fulfill_carriers import McfError

Action = Callable[[Session, str, service.ClientFactory], service.Outcome]
# What to do with a fulfillment the third party refused (ship it from another node): a use
# case above this domain, handed in by the wiring.
OnRefused = Callable[[Session, str], None]


def handlers(settings: Settings, on_refused: OnRefused) -> dict[str, list[Handler]]:
    def create_or_resource(
        session: Session, seller_order_id: str, make_client: service.ClientFactory
    ) -> service.Outcome:
        """Create it at the third party; if refused there, hand it to ``on_refused``."""
        outcome = service.create(session, seller_order_id, make_client)
        if outcome.refused:
            on_refused(session, outcome.fulfillment_id)
        return outcome

    return {
        service.CREATE_TOPIC: [_handler(settings, create_or_resource)],
        service.CANCEL_TOPIC: [_handler(settings, service.cancel)],
    }


def _handler(settings: Settings, action: Action) -> Handler:
    engine = engine_for(settings.resolved_database_url)
    make_client = service.client_factory(settings)

    def deliver(row: OutboxEvent) -> None:
        with session_scope(engine) as session:
            try:
                action(session, row.payload["seller_order_id"], make_client)
            except McfError:
                session.commit()  # keep what we learnt of its health; the outbox retries
                raise
            session.commit()

    return deliver


@app.task(name="third_party.sync")
def sync() -> dict[str, int]:
    settings = get_settings()
    return sync_all(engine_for(settings.resolved_database_url), settings)


def sync_all(engine: Engine, settings: Settings) -> dict[str, int]:
    """Each third-party node's stock and open orders, read from it; a node that does not
    answer is marked down (sourcing avoids it) and tried again next time."""
    make_client = service.client_factory(settings)
    changed = {"stock": 0, "orders": 0, "down": 0}
    with session_scope(engine) as session:
        nodes = list(service.third_party_nodes(session))
        session.expunge_all()
    for node in nodes:
        assert node.id is not None
        with session_scope(engine) as session:
            try:
                with make_client() as client:
                    changed["stock"] += syncing.sync_inventory(session, node, client, utcnow())
                    changed["orders"] += syncing.follow(session, node, client, utcnow())
            except McfError as exc:
                session.rollback()
                service.mark_health(session, node.id, str(exc))
                changed["down"] += 1
            else:
                service.mark_health(session, node.id, None)
            session.commit()
    return changed
