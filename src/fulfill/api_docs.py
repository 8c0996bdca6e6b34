"""The interactive API docs at ``/docs``, served from an installed package's copy of Swagger UI:
FastAPI's default page loads it from a CDN, and is blank on a machine without the internet."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from fulfill.errors import NotFound

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def _asset(name: str) -> bytes:
    return (resources.files("fastapi_swagger") / "resources" / name).read_bytes()


def add_docs(app: FastAPI) -> None:
    """``/docs`` and its assets under ``/docs/assets/``; the app must be made with
    ``docs_url=None``."""
    assets = {name: (_asset(name), media) for name, media in ASSETS.items()}

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        base = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{base}{app.openapi_url}",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{base}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{base}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{base}/docs/assets/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        )

    @app.get("/docs/assets/{name}", include_in_schema=False)
    def swagger_asset(name: str) -> Response:
        found = assets.get(name)
        if found is None:
            raise NotFound(f"no docs asset is named {name!r}")
        body, media = found
        return Response(body, media_type=media, headers={"Cache-Control": "max-age=86400"})
