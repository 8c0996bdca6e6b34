"""A notice's words, chosen when it leaves: in the customer's language and timezone, so that a
notice held back by quiet hours speaks of "today" on the day it is read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fulfill.config import Settings
from fulfill.notify import wording
from fulfill.notify.models import Notice
from fulfill.notify.templates import NoticeKind, Rendered, render
from fulfill_carriers import OWN_FLEET, label


def words(notice: Notice, settings: Settings, now: datetime) -> dict[str, Any]:
    """The template's context: the facts said in the customer's language and timezone."""
    facts, language = notice.context, notice.language
    zone = facts.get("zone", "UTC")
    carrier = facts.get("carrier")
    storefront = facts.get("storefront", "")
    # An order placed by a key of no storefront is filed under the key (``key:<id>``): no name.
    shop = settings.shop_name or ("" if ":" in storefront else storefront)
    situation = facts.get("situation") or ("lost" if facts.get("reason") == "lost" else "exception")
    tracking_url = settings.tracking_url(facts.get("token", ""))
    return {
        "shop": shop,
        "first_name": facts.get("first_name", ""),
        "order_ref": facts.get("order_ref", ""),
        "window": _say_window(facts.get("window"), zone, now, language),
        "eta": _say_window(facts.get("eta") or facts.get("window"), zone, now, language),
        "tracking_url": tracking_url,
        "remedy": wording.remedy(situation, language),
        "remedy_url": tracking_url,
        "remedy_action": wording.remedy("action", language),
        "reason": wording.reason(facts.get("reason"), language),
        "next_step": wording.next_step(facts.get("reason"), carrier == OWN_FLEET, language),
        "carrier": _carrier_name(carrier, shop),
    }


def _carrier_name(code: str | None, shop: str) -> str:
    if code == OWN_FLEET:
        return shop
    return label(code) if code else ""


def _say_window(pair: list[str | None] | None, zone: str, now: datetime, language: str) -> str:
    if not pair or not pair[0] or not pair[1]:
        return ""
    start, end = datetime.fromisoformat(pair[0]), datetime.fromisoformat(pair[1])
    return wording.window(start, end, zone, now, language)


def rendered(notice: Notice, settings: Settings, now: datetime) -> Rendered:
    return render(NoticeKind(notice.kind), notice.language, words(notice, settings, now))
