"""Fetching feeds over HTTP without letting a feed reach our own network or exhaust our memory.

- Every connection is opened to an address checked just before connecting: the host is resolved,
  refused if ANY of its addresses is not public (loopback, private, link-local such as the cloud
  metadata 169.254.169.254, shared/CGNAT, multicast, reserved, unspecified, and IPv4 tucked inside
  IPv6), and the socket is then opened to that checked address, so a DNS answer cannot change
  between the check and the connect (no rebinding window). TLS still verifies the host name.
- Redirects are followed here, at most MAX_REDIRECTS, every hop through the same check; a
  redirect's own body is never read.
- The body is read raw up to MAX_WIRE_BYTES and inflated (gzip, deflate) up to MAX_BODY_BYTES; a
  feed over either cap is refused before anything is parsed.
- `allow` lists exact `ip:port` pairs that may be non-public (the tests' and the corpus bench's
  local servers). It is empty unless WARROOM_FEED_ALLOW_HOSTS says otherwise.

Proxies from the environment are ignored: through a proxy, the checked address would be the
proxy's, not the feed's.
"""

from __future__ import annotations

import ipaddress
import socket
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

MAX_WIRE_BYTES = 5 * 1024 * 1024
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
_INFLATE_STEP = 1024 * 1024
# NAT64 (RFC 6052) carries an IPv4 address in its last 32 bits; a gateway would reach it.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AllowedAddresses = frozenset[tuple[str, int]]


class FeedFetchError(Exception):
    """A feed broke one of this module's rules (address, size, redirects, encoding); the message says which."""


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status_code: int
    headers: httpx.Headers
    body: bytes  # inflated; empty unless the status is 2xx


def parse_allowed_addresses(value: str) -> AllowedAddresses:
    """`127.0.0.1:8080,[::1]:8081` as {("127.0.0.1", 8080), ("::1", 8081)}; ValueError names a bad entry."""
    allowed = set()
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        host, _, port = entry.rpartition(":")
        try:
            address = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
            number = int(port)
        except ValueError:
            raise ValueError(f"{entry!r} is not an ip:port pair (like 127.0.0.1:8080 or [::1]:8080)") from None
        if not 0 < number < 65536:
            raise ValueError(f"{entry!r} has no valid port")
        allowed.add((str(address), number))
    return frozenset(allowed)


def is_public(address: IPAddress) -> bool:
    """Whether `address` is on the public internet (and so may be fetched)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in _NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.is_global and not (
        address.is_loopback or address.is_private or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified
    )


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])  # drop an IPv6 scope id
        if address not in addresses:
            addresses.append(address)
    return addresses


class _CheckedBackend(httpcore.SyncBackend):
    """httpcore's socket opener, resolving and checking the host itself and connecting to the checked address."""

    def __init__(self, allow: AllowedAddresses) -> None:
        self.allow = allow

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        addresses = _resolve(host, port)
        for address in addresses:
            if not is_public(address) and (str(address), port) not in self.allow:
                raise FeedFetchError(f"refused {host}:{port}: it resolves to {address}, which is not a public "
                                  "address (feeds are fetched from the public internet only)")
        error: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return super().connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error


def feed_client(allow: AllowedAddresses = frozenset(), *, user_agent: str) -> httpx.Client:
    """An HTTP client whose every connection goes through the address check."""
    ssl_context = httpx.create_ssl_context()
    transport = httpx.HTTPTransport(verify=ssl_context)
    # httpx offers no public hook for the socket opener, so its pool is rebuilt around ours.
    transport._pool = httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=_CheckedBackend(allow))
    return httpx.Client(transport=transport, timeout=TIMEOUT, follow_redirects=False, trust_env=False,
                        headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"})


def _read_raw(response: httpx.Response) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > MAX_WIRE_BYTES:
        raise FeedFetchError(f"refused: the body is {int(declared):,} bytes, over the {MAX_WIRE_BYTES:,}-byte cap")
    chunks, size = [], 0
    for chunk in response.iter_raw():
        size += len(chunk)
        if size > MAX_WIRE_BYTES:
            raise FeedFetchError(f"refused: the body is over the {MAX_WIRE_BYTES:,}-byte cap")
        chunks.append(chunk)
    return b"".join(chunks)


def _inflate_capped(raw: bytes, wbits: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = bytearray()
    data = raw
    while data:
        out += inflater.decompress(data, _INFLATE_STEP)
        if len(out) > MAX_BODY_BYTES:
            raise FeedFetchError(f"refused: the body inflates to over the {MAX_BODY_BYTES:,}-byte cap")
        data = inflater.unconsumed_tail
    out += inflater.flush()  # what zlib still holds: at most its window
    if len(out) > MAX_BODY_BYTES:
        raise FeedFetchError(f"refused: the body inflates to over the {MAX_BODY_BYTES:,}-byte cap")
    return bytes(out)


def inflate(raw: bytes, content_encoding: str) -> bytes:
    """The body without its Content-Encoding, never more than MAX_BODY_BYTES of it."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    attempts: tuple[int, ...]
    if encoding in ("gzip", "x-gzip"):
        attempts = (zlib.MAX_WBITS | 16,)
    elif encoding == "deflate":
        attempts = (zlib.MAX_WBITS, -zlib.MAX_WBITS)  # zlib-wrapped as the RFC says, or raw as IIS sent it
    else:
        raise FeedFetchError(f"refused: unsupported Content-Encoding {content_encoding[:40]!r}")
    if raw[:1024].lstrip().removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<"):
        return raw  # labelled compressed but plainly is not: read as it is, as feedparser itself does
    error = None
    for wbits in attempts:
        try:
            return _inflate_capped(raw, wbits)
        except zlib.error as exc:
            error = exc
    raise FeedFetchError(f"refused: the {encoding} body is corrupt ({error})")


def fetch(client: httpx.Client, url: str, *, headers: Mapping[str, str] | None = None,
          params: Mapping[str, Any] | None = None) -> Fetched:
    """GET `url`, following redirects here, with the body capped and inflated; raises FeedFetchError."""
    for _ in range(MAX_REDIRECTS + 1):
        request = client.build_request("GET", url, headers=headers, params=params)
        response = client.send(request, stream=True)
        try:
            location = response.headers.get("Location")
            if response.is_redirect and location:
                target = response.url.join(location.strip())
                if target.scheme not in ("http", "https"):
                    raise FeedFetchError(f"refused: a redirect to a {target.scheme!r} URL")
                if headers and target.host != response.url.host:  # a credential never follows to another host
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                url, params = str(target), None  # the Location carries its own query
                continue
            body = b""
            if response.is_success:
                body = inflate(_read_raw(response), response.headers.get("Content-Encoding", ""))
            return Fetched(str(response.url), response.status_code, response.headers, body)
        finally:
            response.close()
    raise FeedFetchError(f"refused: more than {MAX_REDIRECTS} redirects")
