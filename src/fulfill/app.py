"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from celery import Celery
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from fulfill import __version__
from fulfill.api_docs import add_docs
from fulfill.config import Settings, get_settings
from fulfill.db import engine_for, utcnow
from fulfill.dispatch.api import router as dispatch_router
from fulfill.errors import FulfillError, TooManyRequests
from fulfill.idempotency import PROBLEM_MEDIA_TYPE, ProblemResponse
from fulfill.inventory.api import router as inventory_router
from fulfill.notify.api import router as notify_router
from fulfill.notify.figures import ServiceCollector
from fulfill.observability import MetricsMiddleware, redact_tokens_in_access_log, redacted
from fulfill.openapi import DocumentedApp
from fulfill.ordering.api import promises_router
from fulfill.ordering.api import router as orders_router
from fulfill.outbox.api import router as outbox_router
from fulfill.request_guard import SENT_CONTENT_TYPE, RequestGuard, TooLarge
from fulfill.restock.api import router as restock_router
from fulfill.tracking.api import router as tracking_router
from fulfill.tracking.ingest import INGEST_TASK
from fulfill.web.dispatch_page import router as dispatch_page
from fulfill.web.tracking_page import router as tracking_page
from fulfill.wiring import wire
from fulfill.worker import CoalescingKick, make_celery

log = logging.getLogger(__name__)
DATABASE_RETRY_AFTER_S = 2


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    wire()
    app = DocumentedApp(
        lifespan=_lifespan,
        title="fulfill",
        version=__version__,
        description="Same-day order fulfillment: orders, stock, promises, routes, tracking.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine_for(
        settings.resolved_database_url,
        settings.db_pool_size,
        settings.db_max_overflow,
        settings.db_lock_timeout_ms,
        settings.db_statement_timeout_ms,
    )
    celery = make_celery(settings)
    app.state.kick_outbox = CoalescingKick(lambda: celery.send_task("outbox.relay"))
    app.state.kick_tracking = CoalescingKick(lambda: celery.send_task(INGEST_TASK))
    app.state.send_task = _best_effort_sender(celery)
    app.state.clock = utcnow
    app.add_middleware(MetricsMiddleware)
    redact_tokens_in_access_log()
    app.add_middleware(RequestGuard, max_bytes=settings.max_body_bytes)
    _add_problem_handlers(app)
    app.include_router(inventory_router)
    app.include_router(orders_router)
    app.include_router(promises_router)
    app.include_router(restock_router)
    app.include_router(dispatch_router)
    app.include_router(dispatch_page)
    app.include_router(tracking_router)
    app.include_router(notify_router)
    app.include_router(tracking_page)
    app.include_router(outbox_router)
    _add_operations_routes(app)
    add_docs(app)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Sync routes run in threads; more threads than database connections only adds GIL
    # contention and context switches, so the pool is sized to what the database can serve.
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = app.state.settings.api_threads
    yield


def _best_effort_sender(celery: Celery) -> Callable[..., None]:
    """Sends a task now if the broker takes it; work is kept as rows, so a periodic sweep
    does it anyway if the message is lost."""

    def send(name: str, *args: object) -> None:
        try:
            celery.send_task(name, args=args)
        except Exception:
            log.warning("could not send %s now; the sweep will do it", name, exc_info=True)

    return send


def _add_operations_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz(request: Request) -> JSONResponse:
        try:
            with request.app.state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            return ProblemResponse(
                FulfillError(f"database unreachable: {type(exc).__name__}", 503).problem(),
                status_code=503,
            )
        return JSONResponse({"status": "ready"})

    service = CollectorRegistry(auto_describe=False)
    # Read the app's clock at each scrape: tests (and the demo) move it.
    clock = lambda: app.state.clock()  # noqa: E731, PLW0108
    service.register(ServiceCollector(app.state.engine, clock=clock))

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    def metrics() -> Response:
        # The process's own counters, then the service's figures read from the database.
        body = generate_latest() + generate_latest(service)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


def _add_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(FulfillError)
    async def _fulfill_error(request: Request, exc: FulfillError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        if isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after_s)}
        return ProblemResponse(
            exc.problem(request.url.path), status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(e) for e in exc.errors()]
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            problem = FulfillError(_not_json(request), 400)
            problem.code = "malformed-json"
        else:
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
            problem = FulfillError(summary, 422)
            problem.code = "validation"
        problem.extensions = {"errors": errors}
        return ProblemResponse(problem.problem(request.url.path), status_code=problem.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 413:  # a body without a length, counted past the limit
            problem: FulfillError = TooLarge(request.app.state.settings.max_body_bytes)
        else:
            problem = FulfillError(str(exc.detail), exc.status_code)
            problem.code = "http-" + str(exc.status_code)
        if exc.status_code == 405:  # every method of the path, not just the first route's
            headers["Allow"] = _allowed_methods(request)
        return ProblemResponse(
            problem.problem(request.url.path), status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(OperationalError)
    async def _database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # Down, restarting, out of connections, or a row held past the lock timeout: the
        # transaction was rolled back, and the same request may well work in a moment.
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            redacted(request.url.path),
            str(exc.orig).splitlines()[0] if exc.orig else exc,
        )
        problem = FulfillError(
            "the database is unavailable or busy; nothing was changed, try again shortly", 503
        )
        problem.code = "database-unavailable"
        return ProblemResponse(
            problem.problem(request.url.path),
            status_code=503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # What validation let through and the database refused (a value out of its range).
        log.warning(
            "unstorable input on %s %s: %s", request.method, redacted(request.url.path), exc.orig
        )
        problem = FulfillError("a value in the request cannot be stored; nothing was changed", 422)
        problem.code = "unstorable-value"
        return ProblemResponse(problem.problem(request.url.path), status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, redacted(request.url.path))
        problem = FulfillError("an unexpected error occurred; nothing was changed", 500)
        problem.code = "internal"
        return JSONResponse(
            problem.problem(request.url.path), status_code=500, media_type=PROBLEM_MEDIA_TYPE
        )


def _allowed_methods(request: Request) -> str:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _not_json(request: Request) -> str:
    sent = request.scope.get(SENT_CONTENT_TYPE)
    if sent is None:
        return "the request body is not valid JSON"
    header = f"Content-Type: {sent}" if sent else "no Content-Type"
    return f"the request body is not valid JSON (sent with {header}; this API reads JSON only)"


def _field_error(error: Any) -> dict[str, str]:
    if error["type"] == "json_invalid":
        return {
            "field": "body",
            "message": error.get("msg", "invalid JSON"),
            "type": "json_invalid",
        }
    loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ""
    for part in loc:
        field += f"[{part}]" if part.isdigit() else (f".{part}" if field else part)
    return {"field": field or "body", "message": error.get("msg", "invalid"), "type": error["type"]}
