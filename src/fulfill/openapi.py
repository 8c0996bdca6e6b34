"""The OpenAPI document, told true: what each operation may answer, in the shape it answers.

FastAPI documents what a route declares. Some answers come from below the routes, alike for all
of them (the bearer key, a body that is no JSON or too large, a query string with NUL, a database
that is down), so they are written into every operation they apply to here, in one place: every
error is RFC 9457 problem+json, and an operation that needs a key says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from fulfill.deps import get_caller

PROBLEM = "#/components/schemas/Problem"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; a problem type may add fields (e.g. `errors`).",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
BEARER = {"type": "http", "scheme": "bearer", "description": "an API key, `ffk_...`"}
REASONS = {
    400: "the body is not JSON",
    401: "no API key, or one unknown or revoked",
    403: "the key lacks the scope",
    404: "no such resource",
    413: "the body is larger than the API takes",
    422: "the request is not valid",
    429: "too many requests; see Retry-After",
    503: "the database is unavailable or busy; see Retry-After",
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
WITH_BODIES = {"post", "put", "patch"}


class DocumentedApp(FastAPI):
    """FastAPI, whose ``openapi()`` is this module's document (made at its first reading)."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = _build(self)
        return self.openapi_schema


def _build(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = {"bearer": BEARER}
    keyed = {(route.path, method.lower()) for route, method in _keyed_operations(app)}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            _complete(path, method, operation, needs_key=(path, method) in keyed)
    return schema


def _keyed_operations(app: FastAPI) -> Iterator[tuple[APIRoute, str]]:
    for route in app.routes:
        if isinstance(route, APIRoute) and _calls(route.dependant, get_caller):
            yield from ((route, method) for method in route.methods or ())


def _calls(dependant: Dependant, wanted: object) -> bool:
    return any(d.call is wanted or _calls(d, wanted) for d in dependant.dependencies)


def _complete(path: str, method: str, operation: dict[str, Any], *, needs_key: bool) -> None:
    statuses = {422, 503}
    if needs_key:
        operation["security"] = [{"bearer": []}]
        statuses |= {401, 403}
    if method in WITH_BODIES:
        statuses |= {400, 413}
    if "{" in path:
        statuses.add(404)
    if path.startswith("/t/"):
        statuses |= {404, 429}
    if path in ("/healthz", "/docs"):
        statuses = set()
    responses = operation.setdefault("responses", {})
    for status in statuses:
        responses.setdefault(str(status), {"description": REASONS[status]})
    for status, response in responses.items():
        if int(status) >= 400:
            response["content"] = {"application/problem+json": {"schema": {"$ref": PROBLEM}}}
            if int(status) in (429, 503):
                response["headers"] = RETRY_AFTER
