"""Pinning the connection to the checked IP keeps TLS honest: SNI and certificate checks use the name."""

from __future__ import annotations

import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from konvrt.webhooks.netguard import IPAddress, PinnedTransport

trustme = pytest.importorskip("trustme")


class TLSReceiver:
    def __init__(self, ca: Any, name: str) -> None:
        self.seen: list[tuple[str | None, str]] = []  # (SNI, Host header)
        receiver = self
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(name).configure_cert(context)

        def remember_sni(sock: ssl.SSLSocket, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            sock.konvrt_sni = server_name  # type: ignore[attr-defined]

        context.sni_callback = remember_sni

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.seen.append((getattr(self.connection, "konvrt_sni", None), self.headers["Host"]))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ca() -> Any:
    return trustme.CA()


@pytest.fixture
def tls_receiver(ca: Any) -> Iterator[TLSReceiver]:
    receiver = TLSReceiver(ca, "hooks.example")
    yield receiver
    receiver.close()


def _resolver(host: str, port: int) -> list[IPAddress]:
    assert host == "hooks.example"
    return [ipaddress.ip_address("127.0.0.1")]


def _client(ca: Any) -> httpx.Client:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    inner = httpx.HTTPTransport(verify=context, trust_env=False)
    return httpx.Client(transport=PinnedTransport(allow_private=True, resolver=_resolver, inner=inner))


def test_tls_to_the_pinned_ip_sends_the_name_as_sni_and_verifies_it(ca: Any, tls_receiver: TLSReceiver) -> None:
    with _client(ca) as client:
        response = client.post(f"https://hooks.example:{tls_receiver.port}/hook", content=b"{}")
    assert response.status_code == 204
    assert tls_receiver.seen == [("hooks.example", f"hooks.example:{tls_receiver.port}")]


def test_a_certificate_for_another_name_is_refused(ca: Any) -> None:
    """The name, not the IP we pinned, is what the certificate must match."""
    impostor = TLSReceiver(ca, "other.example")
    try:
        with _client(ca) as client, pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            client.post(f"https://hooks.example:{impostor.port}/hook", content=b"{}")
    finally:
        impostor.close()
    assert impostor.seen == []
