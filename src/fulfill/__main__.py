"""``fulfill`` and ``python -m fulfill``: the CLI, or one line naming the setting that is wrong
(settings are read when the service's modules load, before any command runs)."""

from __future__ import annotations

import sys
from typing import NoReturn

from pydantic import ValidationError

from fulfill_carriers import PluginError


def run() -> None:
    try:
        from fulfill.cli import main
        from fulfill.config import get_settings
        from fulfill.tracking import carriers

        carriers.check(get_settings())
    except ValidationError as exc:
        _refuse(settings_problem(exc))
    except PluginError as exc:
        _refuse(str(exc))
    main()


def _refuse(problem: str) -> NoReturn:
    print(f"error: {problem}", file=sys.stderr)
    raise SystemExit(2) from None


def settings_problem(exc: ValidationError) -> str:
    """The first wrong setting by its environment name, and what is wrong with it."""
    errors = exc.errors()
    first = errors[0]
    name = "FULFILL_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{name}: {first['msg']}{more}"


if __name__ == "__main__":
    run()
