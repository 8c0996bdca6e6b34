"""The timeline's seam: what it records reaches the listeners the outer layer wired."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlmodel import Session

from fulfill.orders import timeline
from fulfill.orders.timeline import NotWired, TimelineEntry
from tests.support import MORNING


def test_a_process_that_never_wired_refuses_to_publish(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeline, "_listeners", [])
    with pytest.raises(NotWired, match="wire"):
        timeline.publish(Session(), [("ord_1", "order.created", {}, MORNING)])


def test_each_listener_hears_each_publication_once(monkeypatch: pytest.MonkeyPatch) -> None:
    heard: list[tuple[Session, list[TimelineEntry]]] = []

    def listener(session: Session, entries: Sequence[TimelineEntry]) -> None:
        heard.append((session, list(entries)))

    monkeypatch.setattr(timeline, "_listeners", [])
    timeline.listen(listener)
    timeline.listen(listener)  # wiring twice changes nothing
    entry: TimelineEntry = ("ord_1", "order.created", {}, MORNING)
    session = Session()
    timeline.publish(session, [entry])
    assert heard == [(session, [entry])]
