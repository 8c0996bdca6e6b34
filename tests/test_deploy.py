"""The production files, read as the image builder and compose read them (no Docker engine here:
CI also checks the compose file with a compose client)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return services


def test_every_service_has_a_health_check_of_its_own() -> None:
    services = compose_services()
    long_running = {name for name, s in services.items() if s.get("restart") != "no"}
    assert long_running >= {"api", "worker", "beat", "postgres", "redis", "flower"}
    checks = {name: " ".join(services[name]["healthcheck"]["test"]) for name in long_running}
    assert [name for name, test in checks.items() if ":8000" in test] == ["api"]
    assert "inspect ping" in checks["worker"]
    assert "celerybeat-schedule" in checks["beat"]
    assert services["migrate"]["healthcheck"] == {"disable": True}


def test_the_image_gives_its_data_dir_to_the_user_it_runs_as() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "HEALTHCHECK" not in dockerfile  # one for all would probe the API's port everywhere
    user = re.search(r"^USER (\S+)$", dockerfile, re.M)
    assert user, "the image runs as a user of its own"
    owned = re.search(rf"chown {user.group(1)}:{user.group(1)} /data", dockerfile)
    assert owned and owned.start() < user.start()
    assert all(s["environment"]["FULFILL_DATA_DIR"] == "/data" for s in _fulfill_services())


def test_the_production_steps_create_the_admin_key_the_catalog_needs() -> None:
    readme = (ROOT / "README.md").read_text()
    production = readme[readme.index("## Production") :]
    steps = re.search(r"```bash\n(.*?)```", production, re.S)
    assert steps and "keys create --scope admin" in steps.group(1)


def _fulfill_services() -> list[dict[str, Any]]:
    return [s for s in compose_services().values() if s.get("image") == "fulfill:latest"]
