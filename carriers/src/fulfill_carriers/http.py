"""One way for adapters to call an HTTP API: what fails in transit or answers something that is
not JSON is the adapter's "unavailable" error (retry later); the status is the caller's to judge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

Unavailable = Callable[[str, int | None], Exception]


def send(
    http: httpx.Client, method: str, path: str, unavailable: Unavailable, **request: Any
) -> tuple[int, dict[str, Any]]:
    """(status, JSON object body) of a call; an empty body reads as ``{}``."""
    try:
        response = http.request(method, path, **request)
    except httpx.HTTPError as exc:
        raise unavailable(f"{method} {path}: {type(exc).__name__}: {exc}", None) from exc
    try:
        body = response.json() if response.content else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise unavailable(
            f"{method} {path}: answered {response.status_code} with a body that is not JSON",
            response.status_code,
        )
    return response.status_code, body


def retryable(status: int) -> bool:
    """Throttled or failing on the far side: the same call may work later."""
    return status == 429 or status >= 500
