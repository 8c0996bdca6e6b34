"""Who hears what an order's timeline records.

A domain that records an entry the customer may hear of (an order confirmed, a parcel late, a
delivery moved) publishes it here, in its own transaction. The listeners are wired by the
outermost layer (``fulfill.wiring``), so the domains that write the timeline never import the
one that speaks to customers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

TimelineEntry = tuple[str, str, dict[str, Any], datetime]  # order id, kind, data, at
Listener = Callable[[Session, Sequence[TimelineEntry]], object]

_listeners: list[Listener] = []


class NotWired(RuntimeError):
    """A timeline entry was published in a process that never called ``fulfill.wiring.wire``."""


def listen(listener: Listener) -> None:
    """Have ``listener`` hear every published entry, in the publisher's transaction."""
    if listener not in _listeners:
        _listeners.append(listener)


def publish(session: Session, entries: Sequence[TimelineEntry]) -> None:
    """Tell the listeners of entries already recorded in ``session``'s transaction. Refuses
    when nobody listens: a notice that nobody writes would be lost without a trace."""
    if not _listeners:
        raise NotWired("no timeline listener: call fulfill.wiring.wire() when the process starts")
    for listener in _listeners:
        listener(session, entries)
