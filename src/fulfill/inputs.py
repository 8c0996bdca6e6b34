"""What every input of the API must be before the service acts on it: the shared base of request
bodies and the value types that more than one domain reads.

Each refuses with a clear 422 what would otherwise reach the database or a mail header and fail
there as a 500: text with NUL or line breaks, naive or unrepresentable datetimes, time-zone names
that are not IANA's, numbers that are not finite, ids past 64 bits.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from functools import cache
from importlib import resources
from typing import Annotated, Any

from fastapi import Path
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

MAX_ROW_ID = 2**63 - 1  # BIGINT: a larger id names no row, and PostgreSQL would refuse it
_CLOCK_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::00)?")
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]")


class CreateModel(BaseModel):
    """Input schemas refuse unknown fields, so server-owned ones (ids, status) cannot be set;
    numbers are finite, and no text holds a NUL (PostgreSQL stores none)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if _holds_nul(data):
            raise ValueError("text may not contain the NUL character (\\u0000)")
        return data


def _holds_nul(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if depth > 32:  # deeper than any of our shapes: the schema refuses it anyway
        return False
    if isinstance(value, dict):
        return any(_holds_nul(k, depth + 1) or _holds_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(v, depth + 1) for v in value)
    return False


@cache
def _iana_names() -> frozenset[str]:
    # The IANA database's own list of names (the tzdata package), not what the machine's zoneinfo
    # directory holds beside them ("localtime", "posixrules" ...).
    return frozenset(resources.files("tzdata").joinpath("zones").read_text().split())


def _known_timezone(value: str) -> str:
    # Membership, not ZoneInfo(value): that opens any file by that name, and fails with OSError
    # on a name too long for one.
    if value not in _iana_names():
        raise ValueError(f"unknown IANA timezone {value[:64]!r}")
    return value


def _clock_time(value: str) -> str:
    """``H:MM`` or ``HH:MM`` (seconds :00 allowed) as ``HH:MM``."""
    match = _CLOCK_TIME.fullmatch(value.strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"{value[:16]!r} is not a time HH:MM")
    return time(int(match[1]), int(match[2])).strftime("%H:%M")


def _iso_8601(value: object) -> object:
    # Text is read as ISO 8601 only: pydantic would also take "0.5" as seconds since 1970.
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not an ISO 8601 datetime") from None
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the datetime is out of range once in UTC") from None


def _one_line(value: str) -> str:
    if _LINE_BREAKS.search(value):
        raise ValueError("a line break is not allowed here")
    return value


IanaTimezone = Annotated[str, AfterValidator(_known_timezone), Field(examples=["America/Edmonton"])]
ClockTime = Annotated[str, AfterValidator(_clock_time), Field(examples=["21:00"])]
# A moment with its offset (a naive one means nothing), held in UTC.
UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_8601), AfterValidator(_in_utc)]
# Text that may end up in a mail header or a log line: one line.
OneLine = Annotated[str, AfterValidator(_one_line)]
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a row's id")]

Sku = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$", examples=["TEA-1"])]
NodeCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,31}$", examples=["WH1"])]
Quantity = Annotated[int, Field(ge=0, le=10_000_000)]
