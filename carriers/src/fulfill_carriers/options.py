"""Reading a carrier's options (what the shop configured for it) with one clear error each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fulfill_carriers.errors import PluginError

Options = Mapping[str, Any]


def text(options: Options, key: str, carrier: str, default: str | None = None) -> str:
    value = options.get(key, default)
    if value is None or not isinstance(value, str) or (default is None and not value):
        raise PluginError(f"carrier {carrier}: option {key!r} must be given as text")
    return value


def number(options: Options, key: str, carrier: str, default: float) -> float:
    value = options.get(key, default)
    try:
        found = float(value)
    except (TypeError, ValueError):
        raise PluginError(f"carrier {carrier}: option {key!r} must be a number") from None
    if found <= 0:
        raise PluginError(f"carrier {carrier}: option {key!r} must be above 0")
    return found
