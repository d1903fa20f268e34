"""Where webhooks may go: only public addresses, checked at submit and again at connect time.

`classify` names the class of a non-public address (loopback, private, link-local, CGNAT, …),
looking through the IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible, 6to4,
NAT64). `validate_webhook_url` applies it when a job is submitted. `PinnedTransport` applies it
when a delivery connects: it resolves the host itself, checks every address, and connects to the
address it checked while keeping the Host header and TLS SNI/certificate name, so a DNS answer
that changes between check and connect (DNS rebinding) cannot reach an internal address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

import httpx

from konvrt.errors import InvalidField

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]

MAX_URL_LENGTH = 2048
FIELD = "webhook_url"

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Order matters only for the name reported; every listed network is refused.
_IPV4_BLOCKED: tuple[tuple[_V4, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "carrier-grade NAT"),  # shared space; 100.100.100.200 is a cloud metadata address
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),  # 169.254.169.254 is the cloud metadata service
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "reserved"),  # IETF assignments; 192.0.0.192 is Oracle Cloud's metadata
    (_V4("192.0.2.0/24"), "documentation"),
    (_V4("192.88.99.0/24"), "reserved"),  # old 6to4 relay anycast
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),  # includes 255.255.255.255 broadcast
)

_IPV6_BLOCKED: tuple[tuple[_V6, str], ...] = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("64:ff9b:1::/48"), "private"),  # local-use NAT64 (RFC 8215)
    (_V6("100::/64"), "reserved"),  # discard-only
    (_V6("2001::/23"), "reserved"),  # IETF assignments, Teredo included
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("3fff::/20"), "documentation"),
    (_V6("fc00::/7"), "private"),  # unique local; fd00:ec2::254 is AWS's IPv6 metadata
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local"),
    (_V6("ff00::/8"), "multicast"),
)
_IPV6_GLOBAL_UNICAST = _V6("2000::/3")
_IPV4_COMPATIBLE = _V6("::/96")
_NAT64 = _V6("64:ff9b::/96")


class AddressRefused(Exception):
    """A webhook target resolved to an address the policy refuses."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 form carries, and the form's name; None for a plain IPv6 address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped IPv6"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4 IPv6"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64 IPv6"
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-compatible IPv6"
    return None


def _classify_v4(ip: ipaddress.IPv4Address) -> str | None:
    for network, name in _IPV4_BLOCKED:
        if ip in network:
            return name
    return None if ip.is_global else "reserved"


def classify(ip: IPAddress) -> str | None:
    """None when `ip` is a public unicast address; otherwise the name of the class that refuses it."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _classify_v4(ip)
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        inner, form = embedded
        inner_class = _classify_v4(inner)
        return None if inner_class is None else f"{inner_class} ({form} form of {inner})"
    for network, name in _IPV6_BLOCKED:
        if ip in network:
            return name
    return None if ip in _IPV6_GLOBAL_UNICAST else "reserved"


def check_address(ip: IPAddress, *, allow_private: bool) -> None:
    """Raise `AddressRefused` unless `ip` is public (or the operator allows private targets)."""
    if allow_private:
        return
    reason = classify(ip)
    if reason is not None:
        raise AddressRefused(f"{ip} is a {reason} address")


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order, without duplicates."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"{host} does not resolve") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        # Strip an IPv6 zone id ("fe80::1%eth0"): the address itself decides the class.
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise AddressRefused(f"{host} does not resolve")
    return addresses


def checked_addresses(host: str, port: int, *, allow_private: bool, resolver: Resolver = resolve) -> list[IPAddress]:
    """Resolve `host` and check every answer; one refused answer refuses the host."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    addresses = [literal] if literal is not None else resolver(host, port)
    for ip in addresses:
        check_address(ip, allow_private=allow_private)
    return addresses


def _parse(url: str) -> httpx.URL:
    if not isinstance(url, str) or not url.strip():
        raise InvalidField(FIELD, "webhook_url must be an http or https URL")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidField(FIELD, f"webhook_url must be at most {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise InvalidField(FIELD, "webhook_url is not a valid URL") from exc
    if parsed.scheme not in ("http", "https"):
        raise InvalidField(FIELD, "webhook_url must be an http or https URL")
    if not parsed.host:
        raise InvalidField(FIELD, "webhook_url has no host")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:  # httpx parses 0, -1 and 99999 alike
        raise InvalidField(FIELD, f"webhook_url has port {parsed.port}; a port is 1 to 65535")
    return parsed


def validate_webhook_url(url: str, *, allow_private: bool = False, resolver: Resolver = resolve) -> str:
    """Check a submitted webhook URL and return it (stripped); raise InvalidField("webhook_url", …).

    http(s) only, at most 2,048 characters, and every address the host resolves to must be public
    unless `allow_private` (KONVRT_WEBHOOK_ALLOW_PRIVATE) is set.
    """
    parsed = _parse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        checked_addresses(parsed.host, port, allow_private=allow_private, resolver=resolver)
    except AddressRefused as exc:
        raise InvalidField(
            FIELD, f"webhook_url must point to a public address, but {parsed.host} is refused: {exc}"
        ) from exc
    return url.strip()


class PinnedTransport(httpx.BaseTransport):
    """Resolve, check, then connect to the checked address: DNS cannot change in between.

    The request goes to the IP literal; the Host header keeps the name (httpx set it from the
    original URL) and the ``sni_hostname`` extension makes TLS send and verify the name too.
    Proxies are never used: a proxy would resolve the name again, out of our sight.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolver: Resolver = resolve,
        inner: httpx.BaseTransport | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._resolver = resolver
        self._inner = inner if inner is not None else httpx.HTTPTransport(trust_env=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = checked_addresses(url.host, port, allow_private=self._allow_private, resolver=self._resolver)
        except AddressRefused as exc:
            raise httpx.ConnectError(f"refused by the webhook address policy: {exc}", request=request) from exc
        return self._send_to_first(request, addresses)

    def _send_to_first(self, request: httpx.Request, addresses: Iterable[IPAddress]) -> httpx.Response:
        host = request.url.host
        error: httpx.ConnectError | None = None
        for ip in addresses:
            request.url = request.url.copy_with(host=str(ip))
            if request.url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": host}
            try:
                return self._inner.handle_request(request)
            except httpx.ConnectError as exc:  # nothing was sent: the next address may answer
                error = exc
        assert error is not None
        raise error

    def close(self) -> None:
        self._inner.close()
