from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import Inbox, smtp_server


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    with smtp_server() as server:
        yield server
