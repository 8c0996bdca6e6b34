"""Idempotent creating POSTs, with Stripe's semantics.

A key is scoped to the API key that sent it. The first request records the key before doing its
work, in the same transaction, so a concurrent request with the same key waits on the unique
index and then replays the stored response: exactly one order, whatever the concurrency.
A replay with a different body is a 409; keys expire after ``idempotency_ttl_hours``.
Errors raised by the work itself (a 409 for stock, say) are stored and replayed too; requests
that fail validation never reach here and store nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Column, UniqueConstraint, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from fulfill.auth import Caller
from fulfill.db import JSONType, UTCDateTime, utcnow
from fulfill.errors import Conflict, FulfillError, IdempotencyKeyReused

REPLAY_HEADER = "Idempotent-Replayed"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    api_key_id: int = Field(index=True)
    key: str = Field(max_length=255)
    fingerprint: str = Field(max_length=64)
    response_status: int | None = None
    response_body: Any = Field(default=None, sa_column=Column(JSONType))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def fingerprint(method: str, path: str, payload: BaseModel | None) -> str:
    body = payload.model_dump(mode="json") if payload is not None else None
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# Refusals of the request itself (it names an unknown sku, say), not outcomes of the work: the
# corrected request may come with the same key, as Stripe's keys allow.
REFUSED_AS_MALFORMED = frozenset({400, 422})


def respond_idempotently(
    session: Session,
    caller: Caller,
    key: str | None,
    request_fingerprint: str,
    status_code: int,
    action: Callable[[], BaseModel],
    ttl: timedelta,
) -> JSONResponse:
    """Run ``action`` once per (caller, key), commit, and answer with its JSON."""
    if key is None:
        body = action().model_dump(mode="json")
        session.commit()
        return JSONResponse(body, status_code=status_code)

    assert caller.key_id is not None, "only API keys send Idempotency-Key"
    record = _claim(session, caller.key_id, key, request_fingerprint, ttl)
    if record.response_status is not None:
        return _replay(record, request_fingerprint)
    try:
        body = action().model_dump(mode="json")
    except FulfillError as err:
        session.rollback()  # the claim too: a request refused as malformed keeps nothing
        if err.status_code in REFUSED_AS_MALFORMED:
            raise
        return _store_failure(session, caller.key_id, key, request_fingerprint, err, ttl)
    record.response_status = status_code
    record.response_body = body
    session.commit()
    return JSONResponse(body, status_code=status_code)


def purge_expired(session: Session, ttl: timedelta) -> int:
    result = session.execute(
        delete(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < utcnow() - ttl)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _claim(
    session: Session, api_key_id: int, key: str, request_fingerprint: str, ttl: timedelta
) -> IdempotencyRecord:
    """The stored record for this key, or a new, unanswered one owned by this transaction."""
    for _ in range(3):
        existing = _find(session, api_key_id, key)
        if existing is not None and existing.created_at >= utcnow() - ttl:
            return existing
        try:
            if existing is not None:
                session.delete(existing)
                session.flush()
            record = IdempotencyRecord(
                api_key_id=api_key_id, key=key, fingerprint=request_fingerprint
            )
            session.add(record)
            session.flush()
            return record
        except IntegrityError:
            session.rollback()  # a concurrent request claimed it first and has committed
    raise Conflict("this Idempotency-Key is being used by a concurrent request; retry")


def _find(session: Session, api_key_id: int, key: str) -> IdempotencyRecord | None:
    statement = select(IdempotencyRecord).where(
        IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key
    )
    return session.exec(statement).first()


def _replay(record: IdempotencyRecord, request_fingerprint: str) -> JSONResponse:
    if record.fingerprint != request_fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request; use a new key"
        )
    if record.response_status is None:
        raise Conflict("the first request with this Idempotency-Key is still in progress")
    is_problem = record.response_status >= 400
    response_class = ProblemResponse if is_problem else JSONResponse
    return response_class(
        record.response_body,
        status_code=record.response_status,
        headers={REPLAY_HEADER: "true"},
    )


def _store_failure(
    session: Session,
    api_key_id: int,
    key: str,
    request_fingerprint: str,
    err: FulfillError,
    ttl: timedelta,
) -> JSONResponse:
    record = _claim(session, api_key_id, key, request_fingerprint, ttl)
    if record.response_status is not None:  # another request answered first: theirs stands
        return _replay(record, request_fingerprint)
    record.response_status = err.status_code
    record.response_body = err.problem()
    session.commit()
    return ProblemResponse(record.response_body, status_code=err.status_code)
