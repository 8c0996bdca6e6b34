"""API keys with scopes. Keys are 256-bit random secrets, so a SHA-256 of the key is enough to
store: unlike passwords, they cannot be guessed from a dictionary."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column
from sqlmodel import Field, Session, SQLModel, select

from fulfill.db import JSONType, UTCDateTime, utcnow
from fulfill.errors import Forbidden, Unauthorized

KEY_PREFIX = "ffk_"
# A storefront's identity: a slug of its own, never a key's label, so two shops cannot share one
# by accident. A key without one owns its orders alone (``key:<id>``; no slug has a colon).
STOREFRONT_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class Scope(StrEnum):
    STOREFRONT = "storefront"
    DISPATCHER = "dispatcher"
    CARRIER = "carrier"
    SUPPORT = "support"  # customer service: cases, notices and the service figures
    ADMIN = "admin"


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, description="a label: whom or what the key is for")
    storefront: str | None = Field(
        default=None, max_length=64, index=True, description="the shop whose orders it holds"
    )
    scopes: list[str] = Field(sa_column=Column(JSONType, nullable=False))
    prefix: str = Field(max_length=16, description="the first characters, to recognise a key")
    key_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


@dataclass(frozen=True)
class Caller:
    """Who is calling: every repository query is filtered through this."""

    key_id: int | None  # None: the service itself (a task, a sync)
    name: str
    scopes: frozenset[Scope]
    storefront: str | None = None

    def has(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes

    @property
    def tenant(self) -> str:
        """Whose orders this caller places and, without a wider scope, reads: its storefront's,
        else its own key's."""
        if self.storefront:
            return self.storefront
        return f"key:{self.key_id}" if self.key_id is not None else self.name

    @property
    def sees_all_orders(self) -> bool:
        return self.has(Scope.DISPATCHER)


# The service acting on its own: syncs, tasks, re-sourcing.
SERVICE = Caller(key_id=None, name="fulfill", scopes=frozenset({Scope.ADMIN}))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    session: Session, scopes: list[Scope], name: str | None = None, storefront: str | None = None
) -> str:
    """Store a new key and return it; the plain key is never stored and cannot be shown again.

    A storefront key names the storefront it belongs to: keys of one storefront share its orders,
    keys of two never do."""
    if not scopes:
        raise ValueError("a key needs at least one scope")
    if Scope.STOREFRONT in scopes and storefront is None:
        raise ValueError("a storefront key needs the storefront it belongs to (--storefront)")
    if storefront is not None and not STOREFRONT_PATTERN.fullmatch(storefront):
        raise ValueError(
            f"storefront {storefront!r} is not a slug: lower-case letters, digits, '.', '_', '-'"
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            name=name or storefront or scopes[0].value,
            storefront=storefront,
            scopes=sorted({s.value for s in scopes}),
            prefix=key[: len(KEY_PREFIX) + 6],
            key_hash=hash_key(key),
        )
    )
    return key


def authenticate(session: Session, authorization: str | None) -> Caller:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(token.strip()))).first()
    if row is None or row.revoked_at is not None or row.id is None:
        raise Unauthorized("the API key is unknown or revoked")
    scopes = frozenset(Scope(s) for s in row.scopes)
    return Caller(key_id=row.id, name=row.name, scopes=scopes, storefront=row.storefront)


def revoke_key(session: Session, key_ref: str, now: datetime) -> ApiKey:
    """Revoke the key whose id or shown prefix is ``key_ref``; refused from the next request on,
    in every process (keys are read from the database on each request)."""
    statement = select(ApiKey)
    if key_ref.isdigit():
        statement = statement.where(ApiKey.id == int(key_ref))
    else:
        statement = statement.where(ApiKey.prefix == key_ref)
    found = session.exec(statement).all()
    if len(found) != 1:
        raise ValueError(f"{len(found) or 'no'} keys match {key_ref!r}; name one by its id")
    row = found[0]
    if row.revoked_at is None:
        row.revoked_at = now
        session.add(row)
    return row


def require(caller: Caller, *scopes: Scope) -> Caller:
    if not any(caller.has(s) for s in scopes):
        wanted = " or ".join(s.value for s in scopes)
        raise Forbidden(f"this API key lacks the scope {wanted}", required_scopes=list(scopes))
    return caller
