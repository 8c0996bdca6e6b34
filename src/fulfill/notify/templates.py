"""Notice texts: one Jinja2 file per language and kind, with a block per part (``subject``,
``sms``, ``text``, ``html``), so a translator sees every channel of a notice together.

A language without a file for the kind falls back to English; email HTML is autoescaped, the
plain parts are not (they are not markup).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

FOLDER = Path(__file__).parent / "templates"
FALLBACK_LANGUAGE = "en"


class NoticeKind(StrEnum):
    ORDER_CONFIRMED = "order_confirmed"
    ORDER_CANCELLED = "order_cancelled"
    SHIPPED = "shipped"
    OUT_FOR_DELIVERY = "out_for_delivery"
    RUNNING_LATE = "running_late"
    ATTEMPT_FAILED = "attempt_failed"
    DELIVERED = "delivered"
    EXCEPTION = "exception"


@dataclass(frozen=True)
class Rendered:
    language: str
    subject: str
    sms: str
    text: str
    html: str


_plain = Environment(
    loader=FileSystemLoader(FOLDER),
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
)
_markup = Environment(
    loader=FileSystemLoader(FOLDER),
    undefined=StrictUndefined,
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def languages() -> list[str]:
    return sorted(p.name for p in FOLDER.iterdir() if p.is_dir())


def render(kind: NoticeKind, language: str, context: dict[str, Any]) -> Rendered:
    """Every part of notice ``kind`` in ``language`` (else English); a missing value is an
    error, never an empty gap in a customer's message."""
    name, used = _file(kind, language)
    plain, markup = _plain.get_template(name), _markup.get_template(name)

    def part(template: Any, block: str) -> str:
        return "".join(template.blocks[block](template.new_context(context))).strip()

    return Rendered(
        language=used,
        subject=part(plain, "subject"),
        sms=" ".join(part(plain, "sms").split()),
        text=part(plain, "text") + "\n",
        html=part(markup, "html"),
    )


def _file(kind: NoticeKind, language: str) -> tuple[str, str]:
    for used in (language.lower().split("-")[0], FALLBACK_LANGUAGE):
        name = f"{used}/{kind.value}.j2"
        try:
            _plain.get_template(name)
        except TemplateNotFound:
            continue
        return name, used
    raise LookupError(f"no template for {kind.value}")
