"""Konvrt-Signature: Stripe-style HMAC signing of webhook bodies, and the receiver's `verify`.

Header: ``Konvrt-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`` where each ``v1`` is
HMAC-SHA256, keyed with a whole ``whsec_…`` secret, of ``"<t>.<raw body>"``. During a secret
rotation the old secret signs alongside the new one, so a receiver holding either verifies.

Pure: no IO, no clock unless the caller leaves ``now`` out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets as _secrets
import time
from collections.abc import Sequence
from typing import Any

SECRET_PREFIX = "whsec_"
SCHEME = "v1"


class WebhookSignatureError(ValueError):
    """The Konvrt-Signature header is missing, malformed, stale, or matches no signature."""


def generate_secret() -> str:
    """A new webhook secret: ``whsec_`` and 256 bits of URL-safe randomness."""
    return SECRET_PREFIX + _secrets.token_urlsafe(32)


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """The Konvrt-Signature header value: one ``v1=`` per secret, current secret first."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign a webhook")
    parts = [f"t={timestamp}"] + [f"{SCHEME}={compute_signature(payload, s, timestamp)}" for s in secrets]
    return ",".join(parts)


def parse_header(header: str) -> tuple[int, list[str]]:
    """Split ``t=…,v1=…,v1=…`` into the timestamp and the v1 signatures; other schemes are ignored."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookSignatureError("the Konvrt-Signature timestamp is not an integer") from None
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise WebhookSignatureError("the Konvrt-Signature header has no t= timestamp")
    if not signatures:
        raise WebhookSignatureError("the Konvrt-Signature header has no v1= signature")
    return timestamp, signatures


def verify(
    payload: bytes | str,
    header: str | None,
    secret: str,
    tolerance: int | None = 300,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a webhook the way a receiver should, and return the decoded event.

    ``payload`` is the raw request body, exactly as received (do not re-serialise parsed JSON);
    ``header`` is the ``Konvrt-Signature`` header; ``secret`` is your ``whsec_…`` secret.
    Raises `WebhookSignatureError` when the header is missing or malformed, when its timestamp is
    more than ``tolerance`` seconds away from now (``None`` skips that check), or when no ``v1``
    signature matches. Comparison is constant-time.

        event = verify(request.body, request.headers["Konvrt-Signature"], "whsec_…")
    """
    if not header:
        raise WebhookSignatureError("the Konvrt-Signature header is missing")
    body = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    timestamp, signatures = parse_header(header)
    if tolerance is not None:
        current = time.time() if now is None else now
        if abs(current - timestamp) > tolerance:
            raise WebhookSignatureError(
                f"the Konvrt-Signature timestamp is more than {tolerance} s from now (replayed or clock skew)"
            )
    expected = compute_signature(body, secret, timestamp)
    # Check every candidate without short-circuiting, so timing says nothing about which matched.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookSignatureError("no Konvrt-Signature v1 signature matches this body and secret")
    try:
        event: dict[str, Any] = json.loads(body)
    except ValueError:
        raise WebhookSignatureError("the signed body is not JSON") from None
    return event
