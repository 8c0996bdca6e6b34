"""The interactive API docs in a real browser that can reach nothing but the service."""

from __future__ import annotations

from typing import Any

from fulfill.processes import LiveServer


def test_the_docs_draw_every_operation_without_the_internet(
    live_server: LiveServer, browser: Any
) -> None:
    page = browser.new_page()
    elsewhere: list[str] = []

    def only_the_service(route: Any) -> None:
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_service)
    page.goto(f"{live_server.url}/docs")
    page.wait_for_selector(".opblock")
    spec = page.evaluate("fetch('/openapi.json').then(r => r.json())")
    operations = sum(len(methods) for methods in spec["paths"].values())
    assert page.locator(".opblock").count() == operations
    assert elsewhere == []
