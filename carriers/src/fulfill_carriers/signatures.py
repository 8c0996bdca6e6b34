"""HMAC-SHA256 webhook signatures with a timestamp, in both directions.

The header reads ``t=<unix seconds>,v1=<hex digest>``; the digest covers ``"<t>." + body`` so a
captured body cannot be replayed under a new timestamp, and a timestamp outside the tolerance
is refused so an old capture cannot be replayed at all.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from fulfill_carriers.errors import SignatureError

SIGNATURE_HEADER = "Fulfill-Signature"
DEFAULT_TOLERANCE_S = 300


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """Return the signature header value for ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(body, secret, t)}"


def verify(
    body: bytes,
    header: str | None,
    secret: str,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Check ``header`` against ``body``; return its timestamp or raise ``SignatureError``."""
    if not secret:
        raise SignatureError("no webhook secret is configured: nothing can be verified")
    if not header:
        raise SignatureError("missing signature header")
    timestamp, digests = _parse(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError(f"timestamp {timestamp} is outside the {tolerance_s}s tolerance")
    expected = _digest(body, secret, timestamp)
    if not any(hmac.compare_digest(expected.encode(), d.encode()) for d in digests):
        raise SignatureError("signature does not match the body")
    return timestamp


def _digest(body: bytes, secret: str, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    digests: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            digests.append(value)
    if timestamp is None or not digests:
        raise SignatureError("malformed signature header")
    return timestamp, digests
