"""After a commit that wrote outbox events, ask a worker to relay them now.

A platform piece under the outbox: the API's sessions (``deps``) and the worker attach their
kick here without importing the outbox, and the outbox marks a session pending here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlmodel import Session

log = logging.getLogger(__name__)

Kick = Callable[[], None]
_KICK = "outbox_kick"
_PENDING = "outbox_pending"
_default_kick: Kick | None = None


def mark_pending(session: Session) -> None:
    """The session's transaction holds events to relay once it commits."""
    session.info[_PENDING] = True


def attach_kick(session: Session, kick: Kick | None) -> None:
    """After a commit that enqueued events, call ``kick`` (which asks a worker to relay now)."""
    session.info[_KICK] = kick


def set_default_kick(kick: Kick | None) -> None:
    """The kick of sessions that attached none: a worker's, so that what a task enqueues (a
    notice after a tracking event) leaves at once rather than at the next sweep."""
    global _default_kick  # noqa: PLW0603  # one per process, set at its start
    _default_kick = kick


@event.listens_for(Session, "after_commit")
def _kick_after_commit(session: Session) -> None:
    kick = session.info.get(_KICK, _default_kick)
    if session.info.pop(_PENDING, False) and kick is not None:
        try:
            kick()
        except Exception:  # the periodic sweep relays it instead
            log.warning("could not ask a worker to relay the outbox now", exc_info=True)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
