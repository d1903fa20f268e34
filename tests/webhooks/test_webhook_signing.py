"""Konvrt-Signature: signing, rotation, and the receiver's `verify`."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from konvrt.webhooks import WebhookSignatureError, generate_secret, sign, verify
from konvrt.webhooks.signing import parse_header

SECRET = "whsec_test_secret"
BODY = json.dumps({"event": "job.completed", "job_id": "j_abc"}).encode()
T = 1_700_000_000


def test_header_is_stripe_style_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, [SECRET], T) == f"t={T},v1={expected}"


def test_verify_returns_the_event() -> None:
    header = sign(BODY, [SECRET], T)
    assert verify(BODY, header, SECRET, now=T + 10) == {"event": "job.completed", "job_id": "j_abc"}


def test_verify_accepts_str_payload() -> None:
    assert verify(BODY.decode(), sign(BODY, [SECRET], T), SECRET, now=T)["job_id"] == "j_abc"


def test_tampered_body_is_refused() -> None:
    header = sign(BODY, [SECRET], T)
    with pytest.raises(WebhookSignatureError, match="no Konvrt-Signature v1 signature matches"):
        verify(BODY.replace(b"j_abc", b"j_abd"), header, SECRET, now=T)


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(WebhookSignatureError):
        verify(BODY, sign(BODY, [SECRET], T), "whsec_other", now=T)


def test_tampered_timestamp_is_refused() -> None:
    header = sign(BODY, [SECRET], T).replace(f"t={T}", f"t={T + 1}")
    with pytest.raises(WebhookSignatureError):
        verify(BODY, header, SECRET, now=T)


@pytest.mark.parametrize("skew", [301, -301])
def test_stale_or_future_timestamp_is_refused(skew: int) -> None:
    with pytest.raises(WebhookSignatureError, match="more than 300 s"):
        verify(BODY, sign(BODY, [SECRET], T), SECRET, now=T + skew)


def test_tolerance_none_skips_the_clock() -> None:
    assert verify(BODY, sign(BODY, [SECRET], T), SECRET, tolerance=None)["event"] == "job.completed"


def test_rotation_signs_with_both_and_either_verifies() -> None:
    header = sign(BODY, ["whsec_new", "whsec_old"], T)
    assert header.count("v1=") == 2
    verify(BODY, header, "whsec_new", now=T)
    verify(BODY, header, "whsec_old", now=T)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v1=abc", "no t= timestamp"),
        ("t=abc,v1=abc", "not an integer"),
        (f"t={T}", "no v1= signature"),
        (f"t={T},v0=abc", "no v1= signature"),
        ("garbage", "no t= timestamp"),
    ],
)
def test_malformed_headers_raise_clear_errors(header: str | None, message: str) -> None:
    with pytest.raises(WebhookSignatureError, match=message):
        verify(BODY, header, SECRET, now=T)


def test_unknown_schemes_are_ignored() -> None:
    header = sign(BODY, [SECRET], T) + ",v0=deadbeef"
    assert parse_header(header)[1] == [sign(BODY, [SECRET], T).split("v1=")[1]]


def test_signature_error_is_a_value_error() -> None:
    assert issubclass(WebhookSignatureError, ValueError)


def test_generated_secrets_are_prefixed_and_unique() -> None:
    a, b = generate_secret(), generate_secret()
    assert a.startswith("whsec_") and len(a) > 40 and a != b


def test_sign_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        sign(BODY, [], T)


def test_public_surface_is_small_and_light() -> None:
    """Receivers import `konvrt.webhooks` for `verify`: that must not drag in the database or HTTP client."""
    import subprocess
    import sys

    import konvrt.webhooks

    assert sorted(konvrt.webhooks.__all__) == ["WebhookSignatureError", "generate_secret", "sign", "verify"]
    code = (
        "import sys, konvrt.webhooks; print(sorted(m for m in ('sqlalchemy', 'httpx', 'fastapi') if m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
