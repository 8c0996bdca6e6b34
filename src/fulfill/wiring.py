"""The one seam between domains, wired from the outermost layer.

Domains never import the domains that react to them. An outbox topic is taken by the handler
wired here, and a timeline entry that tells the customer something reaches ``notify`` through
the listener wired here. Every process that writes orders (the API, the worker, the CLI, the
demo) calls ``wire`` once at start.
"""

from __future__ import annotations

from sqlmodel import Session

from fulfill.config import Settings
from fulfill.db import utcnow
from fulfill.fulfillers.tasks import handlers as fulfillers
from fulfill.notify.announcing import announce
from fulfill.notify.sending import handlers as notices
from fulfill.ordering.resourcing import resource_fulfillment
from fulfill.orders.timeline import listen
from fulfill.outbox.service import Handler
from fulfill.outbox.webhook import shop_webhook_handlers
from fulfill.tracking.shipping import handlers as parcel_carrier


def wire() -> None:
    """Let the customer hear of what the timeline records. Safe to call any number of times."""
    listen(announce)


def outbox_handlers(settings: Settings) -> dict[str, list[Handler]]:
    """Who takes which outbox topic."""

    def resource(session: Session, fulfillment_id: str) -> None:
        resource_fulfillment(session, fulfillment_id, settings, now=utcnow())

    handlers: dict[str, list[Handler]] = {
        **fulfillers(settings, on_refused=resource),
        **parcel_carrier(settings),
        **notices(settings),
    }
    for topic, delivers in shop_webhook_handlers(settings).items():
        handlers.setdefault(topic, []).extend(delivers)
    return handlers
