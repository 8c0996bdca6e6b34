"""FastAPI dependencies, as ``Annotated`` aliases that routes declare by type."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session

from fulfill.auth import Caller, Scope, authenticate, require
from fulfill.commit_kick import attach_kick
from fulfill.config import Settings
from fulfill.idempotency import fingerprint, respond_idempotently


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_clock(request: Request) -> Callable[[], datetime]:
    """What time it is; tests replace ``app.state.clock`` to place orders at a chosen time."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock


ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        attach_kick(session, request.app.state.kick_outbox)
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_caller(
    session: SessionDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Caller:
    caller = authenticate(session, authorization)
    # End the read: the connection goes back to the pool while the request waits for a thread
    # (and on SQLite, BEGIN IMMEDIATE's write lock is released).
    session.rollback()
    return caller


def requires(*scopes: Scope) -> Callable[..., Caller]:
    def dependency(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
        return require(caller, *scopes)

    return dependency


AdminCaller = Annotated[Caller, Depends(requires(Scope.ADMIN))]
StorefrontCaller = Annotated[Caller, Depends(requires(Scope.STOREFRONT))]
OrderReader = Annotated[Caller, Depends(requires(Scope.STOREFRONT, Scope.DISPATCHER))]
StockReader = Annotated[Caller, Depends(requires(Scope.STOREFRONT, Scope.DISPATCHER))]
DispatcherCaller = Annotated[Caller, Depends(requires(Scope.DISPATCHER))]
CarrierCaller = Annotated[Caller, Depends(requires(Scope.CARRIER))]
SupportCaller = Annotated[Caller, Depends(requires(Scope.SUPPORT))]

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Replays with the same key return the first response (24 h).",
    ),
]


@dataclass(frozen=True)
class Idempotent:
    """What a creating POST needs to answer idempotently; routes call ``respond``."""

    session: Session
    key: str | None
    path: str
    ttl: timedelta

    def respond(
        self,
        caller: Caller,
        payload: BaseModel | None,
        status_code: int,
        action: Callable[[], BaseModel],
    ) -> JSONResponse:
        return respond_idempotently(
            self.session,
            caller,
            self.key,
            fingerprint("POST", self.path, payload),
            status_code,
            action,
            self.ttl,
        )


def get_idempotent(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Idempotent:
    ttl = timedelta(hours=settings.idempotency_ttl_hours)
    return Idempotent(session, idempotency_key, request.url.path, ttl)


IdempotentDep = Annotated[Idempotent, Depends(get_idempotent)]


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry of a route: which problems it can return."""
    return {
        code: {"content": {"application/problem+json": {}}, "description": "problem"}
        for code in codes
    }
