"""The OpenAPI description matches the server: schemathesis against the live server, plus what it must say."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from playwright.sync_api import Page, Route
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
        # Every script and stylesheet of the docs is ours: a self-hosted install may have no internet.
        for page in (docs, client.get("/redoc")):
            assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert assets and all(asset.startswith("/") for asset in assets), assets
            for asset in assets:
                assert client.get(asset).status_code == 200, asset
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


def test_the_docs_render_with_no_internet(live_server: LiveServer, page: Page) -> None:
    """Swagger UI and ReDoc draw every operation with every request off this server refused.

    Only an image may be asked of another host: ReDoc's "powered by" logo, which hides itself when it
    cannot load. Code, styles, fonts and data all come from the server itself."""
    elsewhere: list[str] = []

    def only_ours(route: Route) -> None:
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            if route.request.resource_type != "image":
                elsewhere.append(f"{route.request.resource_type} {route.request.url}")
            route.abort()

    page.route("**/*", only_ours)
    operations = sum(1 for item in httpx.get(f"{live_server.url}/openapi.json").json()["paths"].values() for _ in item)
    page.goto(f"{live_server.url}/docs")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() == operations
    assert page.locator(".opblock-summary-path", has_text="/api/v1/compress").count() == 1
    page.goto(f"{live_server.url}/redoc")
    page.wait_for_selector("h1:has-text('Konvrt')")
    assert page.get_by_text("/api/v1/status/{job_id}").count() >= 1
    assert elsewhere == []
