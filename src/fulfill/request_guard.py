"""What every request passes before any route sees it: no NUL in its query string (PostgreSQL
stores none), no body larger than the API takes, and every body read as JSON, whatever
``Content-Type`` the client says.

A body whose ``Content-Length`` is over the limit is refused before a byte of it is read, and one
sent without a length is counted as it comes and refused once past the limit, so no body is held
in memory whole before the key that sent it is checked.

``curl -d`` sends ``application/x-www-form-urlencoded`` and some clients send nothing; FastAPI
would then read no JSON and answer that every field is missing, which says nothing of the header.
So the header of an API request with a body is taken as JSON, and the one the client sent is kept
in the scope, for the problem that answers a body that does not parse to name it."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fulfill.errors import FulfillError
from fulfill.idempotency import ProblemResponse

SENT_CONTENT_TYPE = "fulfill.sent_content_type"
_JSON = b"application/json"
_WITH_BODIES = frozenset({"POST", "PUT", "PATCH"})


def is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == _JSON or (media.startswith(b"application/") and media.endswith(b"+json"))


class TooLarge(FulfillError):
    status_code = 413
    code = "content-too-large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than the {limit} bytes this API takes")


class NulInQuery(FulfillError):
    status_code = 422
    code = "nul-character"

    def __init__(self) -> None:
        super().__init__("the query string may not contain the NUL character (%00)")


class RequestGuard:
    def __init__(self, app: ASGIApp, max_bytes: int, prefix: str = "/v1/") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and b"%00" in scope["query_string"]:
            problem = NulInQuery().problem(scope["path"])
            await ProblemResponse(problem, status_code=422)(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] in _WITH_BODIES:
            if _declared_length(scope) > self.max_bytes:
                problem = TooLarge(self.max_bytes).problem(scope["path"])
                await ProblemResponse(problem, status_code=413)(scope, receive, send)
                return
            if scope["path"].startswith(self.prefix):
                scope = _as_json(scope)
            receive = self._counted(receive)
        await self.app(scope, receive, send)

    def _counted(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                # An HTTPException is what a route's body reading lets through to the handlers.
                raise HTTPException(413)
            return message

        return counted


def _declared_length(scope: Scope) -> int:
    sent = next((v for k, v in scope["headers"] if k == b"content-length"), b"0")
    return int(sent) if sent.isdigit() else 0


def _as_json(scope: Scope) -> Scope:
    sent = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    if is_json(sent):
        return scope
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
    return {
        **scope,
        "headers": [*headers, (b"content-type", _JSON)],
        SENT_CONTENT_TYPE: sent.decode("latin-1"),
    }
