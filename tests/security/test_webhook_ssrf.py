"""A webhook URL must not reach the machine, its network, or a cloud metadata service.

Every forbidden address class is refused at submit (400 naming webhook_url) and again at
connect time, where the address that was checked is the one connected to (DNS rebinding).
"""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from konvrt.errors import InvalidField
from konvrt.webhooks.netguard import (
    AddressRefused,
    IPAddress,
    PinnedTransport,
    classify,
    validate_webhook_url,
)

FORBIDDEN = {
    "0.0.0.0": "unspecified",
    "0.1.2.3": "unspecified",
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "172.31.255.254": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "169.254.0.1": "link-local",
    "100.64.0.1": "carrier-grade NAT",
    "100.100.100.200": "carrier-grade NAT",
    "192.0.0.192": "reserved",
    "192.0.2.1": "documentation",
    "198.18.0.1": "benchmarking",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "::": "unspecified",
    "::1": "loopback",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "fd00:ec2::254": "private",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "2001:db8::1": "documentation",
    "2001::1": "reserved",
    "100::1": "reserved",
    "::ffff:127.0.0.1": "loopback (IPv4-mapped IPv6 form of 127.0.0.1)",
    "::ffff:169.254.169.254": "link-local (IPv4-mapped IPv6 form of 169.254.169.254)",
    "::ffff:10.0.0.1": "private (IPv4-mapped IPv6 form of 10.0.0.1)",
    "::127.0.0.1": "loopback (IPv4-compatible IPv6 form of 127.0.0.1)",
    "2002:7f00:1::": "loopback (6to4 IPv6 form of 127.0.0.1)",
    "2002:a9fe:a9fe::1": "link-local (6to4 IPv6 form of 169.254.169.254)",
    "64:ff9b::7f00:1": "loopback (NAT64 IPv6 form of 127.0.0.1)",
    "64:ff9b::a00:1": "private (NAT64 IPv6 form of 10.0.0.1)",
    "64:ff9b:1::1": "private",
}

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "2002:808:808::1",
    "64:ff9b::808:808",
]


@pytest.mark.parametrize(("address", "name"), FORBIDDEN.items())
def test_forbidden_classes_are_named(address: str, name: str) -> None:
    assert classify(ipaddress.ip_address(address)) == name


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert classify(ipaddress.ip_address(address)) is None


def _url(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:8080/hook"


@pytest.mark.parametrize("address", FORBIDDEN)
def test_submit_refuses_each_forbidden_literal(address: str) -> None:
    with pytest.raises(InvalidField) as info:
        validate_webhook_url(_url(address), allow_private=False)
    assert info.value.field == "webhook_url"
    assert "public address" in info.value.message


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:9/hook",  # /etc/hosts
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/",  # 127.0.0.1 in inet_aton's shorthand
        "http://127.1/",
    ],
)
def test_submit_refuses_disguised_loopback(url: str) -> None:
    with pytest.raises(InvalidField, match="public address"):
        validate_webhook_url(url)


def fake_dns(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def resolver(host: str, port: int) -> list[IPAddress]:
        if host not in table:
            raise AddressRefused(f"{host} does not resolve")
        return [ipaddress.ip_address(a) for a in table[host]]

    return resolver


def test_one_private_answer_among_public_ones_refuses_the_host() -> None:
    resolver = fake_dns({"mixed.example": ["8.8.8.8", "10.0.0.5"]})
    with pytest.raises(InvalidField, match="10.0.0.5 is a private address"):
        validate_webhook_url("https://mixed.example/hook", resolver=resolver)


def test_public_host_is_accepted_and_returned() -> None:
    resolver = fake_dns({"hooks.example": ["93.184.216.34", "2606:4700:4700::1111"]})
    assert validate_webhook_url(" https://hooks.example/x?y=1 ", resolver=resolver) == "https://hooks.example/x?y=1"


def test_unresolvable_host_is_refused() -> None:
    with pytest.raises(InvalidField, match="does not resolve"):
        validate_webhook_url("https://nowhere.example/", resolver=fake_dns({}))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://127.0.0.1/", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("", "http or https"),
        ("https://", "no host"),
        ("http://[zz]/hook", "valid URL"),
        ("http://:80/", "no host"),
        ("https://example.com/" + "a" * 2048, "at most 2048"),
        ("http://example.com:99999/hook", "port 99999"),
        ("http://example.com:0/hook", "port 0"),
        ("http://example.com:-1/hook", "port -1"),
    ],
)
def test_submit_refuses_bad_urls(url: str, message: str) -> None:
    with pytest.raises(InvalidField, match=message) as info:
        validate_webhook_url(url, resolver=fake_dns({"example.com": ["93.184.216.34"]}))
    assert info.value.field == "webhook_url"


def test_2048_characters_is_allowed() -> None:
    url = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
    assert validate_webhook_url(url, resolver=fake_dns({"example.com": ["93.184.216.34"]})) == url


def test_allow_private_lets_intranet_targets_through() -> None:
    assert validate_webhook_url("http://127.0.0.1:9/hook", allow_private=True) == "http://127.0.0.1:9/hook"


class Recorder(httpx.BaseTransport):
    """Stands where the network would be: records what the pinned transport asked for."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.hosts: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(204)


def test_connect_time_check_refuses_a_rebound_name() -> None:
    """DNS rebinding: the name was public at submit, and points at the metadata service now."""
    answers = {"rebind.example": ["93.184.216.34"]}
    validate_webhook_url("https://rebind.example/hook", resolver=fake_dns(answers))
    answers["rebind.example"] = ["169.254.169.254"]
    recorder = Recorder()
    transport = PinnedTransport(resolver=fake_dns(answers), inner=recorder)
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError, match="link-local"):
        client.post("https://rebind.example/hook", content=b"{}")
    assert recorder.requests == []


def test_connection_goes_to_the_checked_address_with_host_and_sni_kept() -> None:
    recorder = Recorder()
    transport = PinnedTransport(resolver=fake_dns({"hooks.example": ["93.184.216.34"]}), inner=recorder)
    with httpx.Client(transport=transport) as client:
        assert client.post("https://hooks.example:8443/hook?a=1", content=b"{}").status_code == 204
    (sent,) = recorder.requests
    assert str(sent.url) == "https://93.184.216.34:8443/hook?a=1"
    assert sent.headers["Host"] == "hooks.example:8443"
    assert sent.extensions["sni_hostname"] == "hooks.example"


def test_ipv6_answer_is_bracketed() -> None:
    recorder = Recorder()
    transport = PinnedTransport(resolver=fake_dns({"v6.example": ["2606:4700:4700::1111"]}), inner=recorder)
    with httpx.Client(transport=transport) as client:
        client.post("http://v6.example/hook", content=b"{}")
    assert str(recorder.requests[0].url) == "http://[2606:4700:4700::1111]/hook"
    assert "sni_hostname" not in recorder.requests[0].extensions


def test_connect_time_check_refuses_literals_with_setting_off() -> None:
    recorder = Recorder()
    with httpx.Client(transport=PinnedTransport(inner=recorder)) as client:
        with pytest.raises(httpx.ConnectError, match="loopback"):
            client.post("http://127.0.0.1:9/hook")
    assert recorder.requests == []


def test_next_address_is_tried_when_the_first_does_not_connect() -> None:
    class FirstRefuses(Recorder):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            self.hosts.append(request.url.host)
            if len(self.requests) == 1:
                raise httpx.ConnectError("refused", request=request)
            return httpx.Response(200)

    inner = FirstRefuses()
    resolver = fake_dns({"two.example": ["93.184.216.34", "93.184.216.35"]})
    with httpx.Client(transport=PinnedTransport(resolver=resolver, inner=inner)) as client:
        assert client.post("http://two.example/").status_code == 200
    assert inner.hosts == ["93.184.216.34", "93.184.216.35"]
