"""The dispatcher's web page: one HTML file and one script, served by the service. The page
holds no data of its own; it reads the dispatch API with the dispatcher's key."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from fulfill.deps import ClockDep, SessionDep, SettingsDep
from fulfill.inventory import repository as inventory_repo

HERE = Path(__file__).parent
POLL_MS = 3000

router = APIRouter(include_in_schema=False)
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)


@router.get("/dispatch", response_class=HTMLResponse)
def dispatch_page(session: SessionDep, settings: SettingsDep, clock: ClockDep) -> HTMLResponse:
    nodes = [n for n in inventory_repo.active_nodes(session) if n.node_kind.is_own]
    timezone = nodes[0].timezone if nodes else "UTC"
    config = {
        "tile_url": settings.map_tile_url,
        "today": clock().astimezone(ZoneInfo(timezone)).date().isoformat(),
        "poll_ms": POLL_MS,
    }
    html = templates.get_template("dispatch.html").render(
        config=json.dumps(config), script_url="/dispatch/app.js"
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/dispatch/app.js")
def dispatch_script() -> FileResponse:
    return FileResponse(HERE / "static" / "dispatch.js", media_type="text/javascript")
