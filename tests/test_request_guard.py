"""Request bodies as clients really send them: any Content-Type, no length, too large."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from fulfill.app import create_app
from fulfill.config import Settings
from fulfill.processes import LiveServer

Headers = dict[str, str]
TEA = b'{"sku": "TEA-1", "name": "Green tea", "weight_kg": 0.3}'


def products(client: TestClient, admin: Headers) -> list[str]:
    return [p["sku"] for p in client.get("/v1/products", headers=admin).json()]


def test_a_json_body_is_read_whatever_content_type_it_came_with(
    client: TestClient, admin: Headers
) -> None:
    for n, sent in enumerate(("application/x-www-form-urlencoded", "text/plain", None)):
        headers = admin | ({"Content-Type": sent} if sent else {})
        body = TEA.replace(b"TEA-1", f"TEA-{n}".encode())
        created = client.post("/v1/products", content=body, headers=headers)
        assert created.status_code == 201, created.text
    assert sorted(products(client, admin)) == ["TEA-0", "TEA-1", "TEA-2"]


def test_a_body_that_is_not_json_is_told_which_header_it_came_with(
    client: TestClient, admin: Headers
) -> None:
    form = admin | {"Content-Type": "application/x-www-form-urlencoded"}
    refused = client.post("/v1/products", content=b"sku=TEA-1&name=tea", headers=form)
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert "Content-Type: application/x-www-form-urlencoded" in refused.json()["detail"]
    assert products(client, admin) == []


def test_a_body_over_the_limit_is_refused_before_it_is_read(
    settings: Settings, engine: Engine, admin: Headers
) -> None:
    limit = 1000
    app = create_app(settings.model_copy(update={"max_body_bytes": limit}))
    padded = TEA[:-1] + b', "note": "' + b"x" * 2 * limit + b'"}'

    def sent_whole() -> bytes:
        return padded

    def sent_in_chunks() -> Iterator[bytes]:  # no Content-Length: counted as it comes
        for start in range(0, len(padded), 100):
            yield padded[start : start + 100]

    with LiveServer(app) as server, httpx.Client(base_url=server.url) as http:
        for body in (sent_whole, sent_in_chunks):
            for headers in (admin, {}):  # with a key and without: the size is checked first
                refused = http.post("/v1/products", content=body(), headers=headers)
                assert refused.status_code == 413, refused.text
                assert refused.headers["content-type"] == "application/problem+json"
                assert f"{limit} bytes" in refused.json()["detail"]
        assert http.get("/v1/products", headers=admin).json() == []
