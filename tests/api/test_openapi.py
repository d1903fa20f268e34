"""The OpenAPI description matches the server: schemathesis against the live server, plus what it must say."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import LiveServer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def test_the_server_does_what_its_description_says(live_server_factory: Callable[..., LiveServer]) -> None:
    """Every operation, a bounded number of generated requests each: no 5xx, and every answer (status, content
    type, body, headers) is one the description allows. (schemathesis.pytest.from_fixture does not run on
    pytest 9, so the operations are walked here.)"""
    server = live_server_factory(workers=0, ratelimit_per_address=100_000, upload_idle_timeout_seconds=5)
    key = server.account(credits=1_000)
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    seen: list[tuple[str, str, int]] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call_and_validate(
                base_url=server.url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS
            )
            seen.append((case.method, case.path, response.status_code))

        run()
    assert len(seen) >= 5 * len(operations)


def test_docs_and_description_are_served(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as client:
        docs = client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        spec = client.get("/openapi.json").json()
    compress = spec["paths"]["/api/v1/compress"]["post"]
    form = compress["requestBody"]["content"]["multipart/form-data"]
    assert form["schema"]["required"] == ["file"]
    assert form["schema"]["properties"]["file"]["format"] == "binary"
    assert set(form["schema"]["properties"]) == {
        "file",
        "codec",
        "quality",
        "method",
        "bitrate",
        "target_size",
        "resolution",
        "preset",
        "webhook_url",
        "allow_larger",
    }
    assert {"202", "400", "401", "402", "403", "413", "415", "422", "429"} <= set(compress["responses"])
    assert compress["responses"]["429"]["headers"]["Retry-After"]
    assert [p["name"] for p in compress["parameters"]] == ["Idempotency-Key"]
    convert = spec["paths"]["/api/v1/convert"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert convert["schema"]["required"] == ["file", "format"]
    error = spec["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"success", "error", "code"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/api/"):
                assert "422" not in operation["responses"] or method == "post", (method, path)
                assert operation["security"] == [{"bearer": []}]
