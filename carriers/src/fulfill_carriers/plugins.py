"""The carriers installed here: every class registered under the ``fulfill.carriers`` entry point
group, the built-in ones included (``carriers/pyproject.toml``).

A package adds a carrier by declaring, in its own ``pyproject.toml``::

    [project.entry-points."fulfill.carriers"]
    tiny = "tiny_carrier:TinyCarrier"

where the name is the class's ``code``; the shop then configures it by that code
(``FULFILL_CARRIERS='{"tiny": {...}}'`` for the service). Nothing else changes.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.metadata import entry_points

from fulfill_carriers.adapter import Carrier, Nature
from fulfill_carriers.errors import PluginError
from fulfill_carriers.options import Options

GROUP = "fulfill.carriers"
CarrierClass = type[Carrier]
REQUIRED = ("code", "label", "nature", "batch_size", "from_options")


@functools.cache
def installed() -> dict[str, CarrierClass]:
    """Every installed carrier class by its code (read once; ``installed.cache_clear()`` reads
    the entry points again, as a restart would)."""
    found: dict[str, CarrierClass] = {}
    for point in entry_points(group=GROUP):
        try:
            loaded = point.load()
        except Exception as exc:  # a broken plugin is named, whatever broke it
            raise PluginError(f"carrier plugin {point.name} ({point.value}): {exc}") from exc
        missing = [name for name in REQUIRED if not hasattr(loaded, name)]
        if missing:
            raise PluginError(f"carrier plugin {point.name} lacks {', '.join(missing)}")
        if loaded.code != point.name or not isinstance(loaded.nature, Nature):
            raise PluginError(
                f"carrier plugin {point.name}: its code is {loaded.code!r} and its nature "
                f"{loaded.nature!r}; the entry point's name must be its code"
            )
        if point.name in found and found[point.name] is not loaded:
            raise PluginError(f"two carrier plugins are named {point.name}")
        found[point.name] = loaded
    return found


def carrier_class(code: str) -> CarrierClass | None:
    return installed().get(code)


def label(code: str) -> str:
    """The name a customer reads for a carrier's code (the code itself when none is installed)."""
    found = carrier_class(code)
    return found.label if found is not None else code


def codes(nature: Nature) -> frozenset[str]:
    return frozenset(code for code, cls in installed().items() if cls.nature is nature)


def build(configured: Mapping[str, Options]) -> dict[str, Carrier]:
    """One fresh adapter per configured carrier (each holds its own HTTP client)."""
    adapters: dict[str, Carrier] = {}
    try:
        for code, options in configured.items():
            found = carrier_class(code)
            if found is None:
                known = ", ".join(sorted(installed()))
                raise PluginError(f"no carrier plugin {code!r} is installed (installed: {known})")
            adapters[code] = found.from_options(options)
    except PluginError:
        for adapter in adapters.values():
            adapter.close()
        raise
    return adapters
