"""One error family, turned into RFC 9457 problem+json by one handler."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

PROBLEM_BASE = "https://fulfill.dev/problems/"


class FulfillError(Exception):
    """An error the caller can act on. ``code`` names its problem type."""

    status_code = 400
    code = "bad-request"

    def __init__(self, message: str, status_code: int | None = None, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.extensions = extensions

    @property
    def title(self) -> str:
        return HTTPStatus(self.status_code).phrase

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.code,
            "title": self.title,
            "status": self.status_code,
            "detail": self.message,
        }
        if instance:
            body["instance"] = instance
        # A problem type's own fields come beside the standard ones, never in their place.
        body.update({k: v for k, v in self.extensions.items() if k not in body})
        return body


class NotFound(FulfillError):
    status_code = 404
    code = "not-found"


class Conflict(FulfillError):
    status_code = 409
    code = "conflict"


class OutOfStock(Conflict):
    code = "out-of-stock"

    def __init__(self, sku: str, requested: int, available: int, detail: str = "") -> None:
        super().__init__(
            detail or f"only {available} of {sku} available, {requested} requested",
            sku=sku,
            requested=requested,
            available=available,
        )


class IdempotencyKeyReused(Conflict):
    code = "idempotency-key-reused"


class Unprocessable(FulfillError):
    """Well-formed input that cannot be acted on; ``field`` names the part at fault."""

    status_code = 422
    code = "unprocessable"

    def __init__(self, message: str, field: str | None = None, **extensions: Any) -> None:
        if field is not None:
            extensions["errors"] = [{"field": field, "message": message}]
        super().__init__(message, **extensions)


class Unauthorized(FulfillError):
    status_code = 401
    code = "unauthorized"


class Forbidden(FulfillError):
    status_code = 403
    code = "forbidden"


class TooManyRequests(FulfillError):
    status_code = 429
    code = "too-many-requests"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s
