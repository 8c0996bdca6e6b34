"""Every carrier, the built-in ones too, is found through the ``fulfill.carriers`` entry point
group, carries its code, label and nature, and is built from its options or refused by name."""

from __future__ import annotations

import pytest

from fulfill_carriers import (
    AfterShip,
    McfCarrier,
    Nature,
    OwnFleet,
    PluginError,
    SandboxCarrier,
    build,
    codes,
    installed,
    label,
)


def test_the_built_in_carriers_are_plugins_with_their_code_label_and_nature() -> None:
    found = installed()
    assert {code: found[code] for code in ("sandbox", "aftership", "amazon_mcf", "own_fleet")} == {
        "sandbox": SandboxCarrier,
        "aftership": AfterShip,
        "amazon_mcf": McfCarrier,
        "own_fleet": OwnFleet,
    }
    assert codes(Nature.AGGREGATOR) >= {"aftership"} and "sandbox" in codes(Nature.CARRIER)
    # What customers read: Amazon by its name, the shop's parcel carrier as theirs.
    assert (label("amazon_mcf"), label("sandbox"), label("nobody")) == (
        "Amazon",
        "our carrier",
        "nobody",
    )


def test_carriers_are_built_from_their_options_or_refused_by_name() -> None:
    built = build({"sandbox": {"url": "http://127.0.0.1:9", "timeout_s": 2}})
    try:
        assert isinstance(built["sandbox"], SandboxCarrier)
    finally:
        built["sandbox"].close()
    with pytest.raises(PluginError, match="carrier sandbox: option 'url'"):
        build({"sandbox": {}})
    with pytest.raises(PluginError, match="carrier amazon_mcf: option 'timeout_s' must be"):
        build({"amazon_mcf": {"url": "http://127.0.0.1:9", "marketplace_id": "M", "timeout_s": 0}})
    with pytest.raises(PluginError, match="no carrier plugin 'fedup' is installed"):
        build({"fedup": {}})
