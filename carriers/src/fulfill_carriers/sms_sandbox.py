"""A sandbox SMS provider over HTTP, for tests and the demo: it stores what it is asked to send.

``POST /v1/messages`` ``{"to": "+15550100", "body": "..."}`` answers ``{"id"}``; the same
``Idempotency-Key`` gets the same id and no second message. ``/sandbox/messages`` lists what it
holds; ``/sandbox/trouble`` brings the trouble every sandbox here can have
(``fulfill_carriers.sandboxing``).

    python -m fulfill_carriers.sms_sandbox --port 8768
"""

from __future__ import annotations

import argparse
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

from fulfill_carriers.sandboxing import Trouble, add_trouble

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAX_BODY = 1600  # ten segments


@dataclass
class SmsState(Trouble):
    messages: list[dict[str, Any]] = field(default_factory=list)
    by_key: dict[str, str] = field(default_factory=dict)


def sandbox_app(state: SmsState | None = None) -> FastAPI:
    state = state or SmsState()
    app = FastAPI(title="SMS sandbox (fulfill)")
    app.state.sms = state
    add_trouble(app, state, lambda status, message: JSONResponse({"error": message}, status))

    @app.post("/v1/messages", status_code=201)
    def send(
        body: dict[str, Any], idempotency_key: str | None = Header(default=None)
    ) -> JSONResponse:
        to, text = str(body.get("to", "")), str(body.get("body", ""))
        if not E164.match(to):
            return JSONResponse({"error": f"{to!r} is not an E.164 number"}, status_code=400)
        if not text or len(text) > MAX_BODY:
            return JSONResponse({"error": f"body must be 1-{MAX_BODY} chars"}, status_code=400)
        with state.lock:
            if idempotency_key and idempotency_key in state.by_key:
                return JSONResponse({"id": state.by_key[idempotency_key]}, status_code=200)
            sid = f"SM{uuid.uuid4().hex}"
            state.messages.append(
                {
                    "id": sid,
                    "to": to,
                    "body": text,
                    "key": idempotency_key,
                    "at": datetime.now(UTC).isoformat(),
                }
            )
            if idempotency_key:
                state.by_key[idempotency_key] = sid
        return JSONResponse({"id": sid}, status_code=201)

    @app.get("/sandbox/messages")
    def held() -> dict[str, Any]:
        with state.lock:
            return {"messages": list(state.messages)}

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="SMS sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8768)
    args = parser.parse_args()
    uvicorn.run(sandbox_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
