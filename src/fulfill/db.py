"""Engines, sessions and the column types every table shares.

SQLite is made to behave like a server database for our purposes: WAL for concurrent readers,
foreign keys on, a busy timeout, and ``BEGIN IMMEDIATE`` so that two writers queue for the lock
instead of failing when a reading transaction tries to become a writing one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session

from fulfill import simclock

JSONType = JSON().with_variant(JSONB(), "postgresql")


@cache
def _shared_clock() -> simclock.SharedClock | None:
    """A demo's simulated day (or the tests' pinned one), else None for real time. Read at the
    first reading, not at import, so a process may name its clock after importing us."""
    return simclock.from_environment()


def utcnow() -> datetime:
    clock = _shared_clock()
    if clock is not None:
        return clock.now()
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored; use UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@cache
def engine_for(
    url: str,
    pool_size: int = 10,
    max_overflow: int = 20,
    lock_timeout_ms: int = 10_000,
    statement_timeout_ms: int = 120_000,
) -> Engine:
    """One engine per database URL and process. On PostgreSQL a statement waits for a row lock
    ``lock_timeout_ms`` at most and runs ``statement_timeout_ms`` at most: a row held by a stuck
    transaction fails the requests that need it (503, retry), not every request of the API."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    options = f"-c lock_timeout={lock_timeout_ms} -c statement_timeout={statement_timeout_ms}"
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        connect_args={"options": options},
    )


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose work the caller commits; anything uncommitted is rolled back."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
