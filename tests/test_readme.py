"""The README's examples, pasted into a shell as a reader would, against a live server."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx

from fulfill.processes import LiveServer
from tests.conftest import server_missing

README = Path(__file__).resolve().parents[1] / "README.md"
# Fail on an error status, as a reader would notice one, and show what the server said.
STRICT_CURL = 'curl() { command curl --silent --show-error --fail-with-body "$@"; echo; }\n'


def readme_block(after_heading: str) -> str:
    """The first ```bash block under ``after_heading``."""
    text = README.read_text()
    section = text[text.index(after_heading) :]
    found = re.search(r"```bash\n(.*?)```", section, re.S)
    assert found, f"no bash block under {after_heading!r}"
    return found.group(1)


def test_the_api_examples_run_as_pasted(
    live_server: LiveServer, admin: dict[str, str], http: httpx.Client
) -> None:
    if shutil.which("curl") is None:
        server_missing("no curl on the PATH")
    script = readme_block("## Using the API")
    key = admin["Authorization"].removeprefix("Bearer ")
    script = re.sub(r"^KEY=\S+", f"KEY={key}", script, count=1, flags=re.M)
    assert "localhost:8000" in script
    script = script.replace("localhost:8000", live_server.url)
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", STRICT_CURL + script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    orders = http.get("/v1/orders", params={"external_id": "web-1001"}, headers=admin).json()
    assert [o["status"] for o in orders["items"]] == ["confirmed"]
