"""Request bodies cannot exhaust the server: every route refuses a body over its limit (1 MiB; POST /mentions
5 MB) with 413 before reading it, whether its length is declared, chunked, or missing."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from bot.app import create_bolt_app
from bot.background.runtime import Runtime
from bot.demo.slack_emulator import SlackEmulator
from bot.web import create_web_app
from tests.conftest import INGEST_TOKEN, AppServer
from tests.fixtures_reliability import fresh_database_fixture  # noqa: F401 - provides fresh_database
from tests.test_faults import ServeProcess

MIB = 1024 * 1024
MENTIONS_LIMIT = 5 * MIB
AUTH = {"Authorization": f"Bearer {INGEST_TOKEN}"}
# (method, path, limit): the webhook keeps its 5 MB, every other route (known or not) takes 1 MiB.
ROUTES = [("POST", "/slack/events", MIB), ("POST", "/mentions", MENTIONS_LIMIT), ("GET", "/healthz", MIB),
          ("POST", "/nowhere", MIB)]


class CountedBody(io.RawIOBase):
    """A request body of `size` bytes that counts how many of them the app took."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.size - self.taken)
        buffer[:count] = b"x" * count
        self.taken += count
        return count


# ---- the app: refused before a byte is read ---------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "limit"), ROUTES)
def test_a_declared_body_over_the_limit_is_refused_unread(runtime: Runtime, method: str, path: str,
                                                          limit: int) -> None:
    """Refused on its Content-Length, before the replay guard, Bolt or the bearer-token check read a byte
    (no token is sent: the size is checked first, so an unauthenticated client cannot make it read either)."""
    web = create_web_app(runtime, create_bolt_app(runtime))
    body = CountedBody(limit + 1)
    response = web.test_client().open(path, method=method, headers={"Content-Type": "application/json"},
                                      environ_overrides={"wsgi.input": body, "CONTENT_LENGTH": str(limit + 1)})
    assert response.status_code == 413
    assert f"{limit:,} bytes" in response.get_json()["error"]
    assert body.taken == 0

    at_the_limit = {"wsgi.input": CountedBody(limit), "CONTENT_LENGTH": str(limit)}
    response = web.test_client().open(path, method=method, headers={**AUTH, "Content-Type": "application/json"},
                                      environ_overrides=at_the_limit)
    assert response.status_code != 413


@pytest.mark.parametrize(("method", "path", "limit"), ROUTES)
def test_a_body_of_unknown_length_is_read_no_further_than_one_byte_past_the_limit(
    runtime: Runtime, method: str, path: str, limit: int
) -> None:
    """From a server that passes chunked bodies on as a stream (`wsgi.input_terminated`, no Content-Length)."""
    web = create_web_app(runtime, create_bolt_app(runtime))
    body = CountedBody(4 * limit)
    headers = {**AUTH, "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    response = web.test_client().open(path, method=method, headers=headers,
                                      environ_overrides={"wsgi.input": body, "wsgi.input_terminated": True})
    assert response.status_code == 413
    assert f"{limit:,} bytes" in response.get_json()["error"]
    assert body.taken == limit + 1

    at_the_limit = CountedBody(limit)
    response = web.test_client().open(path, method=method, headers=headers,
                                      environ_overrides={"wsgi.input": at_the_limit, "wsgi.input_terminated": True})
    assert response.status_code != 413


# ---- the real server: waitress never buffers more than the largest limit ---------------------------------


def _send_headers(url: str, path: str, headers: dict[str, str]) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=20)
    lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _status(sock: socket.socket) -> str:
    """The status code the server answered with, or "cut off" when it closed the connection first."""
    try:
        head = sock.recv(64)
    except OSError:
        return "cut off"
    return head.split(b" ")[1].decode() if head.startswith(b"HTTP/") else "cut off"


@pytest.mark.parametrize("path", ["/slack/events", "/mentions"])
def test_the_server_refuses_a_declared_64_mb_body_without_waiting_for_it(app_server: AppServer,
                                                                         path: str) -> None:
    """The answer comes as soon as the headers are in: not one byte of the body is sent."""
    sock = _send_headers(app_server.url, path, {**AUTH, "Content-Length": str(64 * MIB)})
    with sock:
        assert _status(sock) == "413"


def _send_chunked(sock: socket.socket, total: int, piece: bytes) -> bool:
    """Send `total` bytes as chunks of `piece`; False when the server closed the connection first."""
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    try:
        for _ in range(total // len(piece)):
            sock.sendall(chunk)
        sock.sendall(b"0\r\n\r\n")
    except OSError:
        return False
    return True


@pytest.mark.parametrize("path", ["/slack/events", "/mentions"])
def test_the_server_stops_reading_a_chunked_body_past_the_largest_limit(app_server: AppServer, path: str) -> None:
    """It answers 413 and closes the connection: the rest of the 64 MB never gets in."""
    with _send_headers(app_server.url, path, {**AUTH, "Transfer-Encoding": "chunked"}) as sock:
        assert not _send_chunked(sock, 64 * MIB, b"x" * 65536)
        assert _status(sock) in ("413", "cut off")


@pytest.mark.parametrize("chunked", [False, True])
def test_a_slack_request_over_one_mib_is_refused_with_413(app_server: AppServer, chunked: bool) -> None:
    """Between 1 MiB and the webhook's 5 MB, waitress takes the body (spilling to a temporary file past
    512 KB) and the app refuses it without reading it: before the signature check, never 401."""
    body = b"x" * (2 * MIB)

    def pieces() -> Iterator[bytes]:
        yield from (body[start:start + 65536] for start in range(0, len(body), 65536))

    response = httpx.post(f"{app_server.url}/slack/events", content=pieces() if chunked else body, timeout=20,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert "1,048,576 bytes" in response.json()["error"]


# ---- memory of the real `warroom serve` under oversized posts ------------------------------------------------


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc")


def test_oversized_posts_at_once_leave_the_server_memory_untouched(
    emulator: SlackEmulator, tmp_path: Path, fresh_database: str
) -> None:
    """Four unsigned 64 MB posts to /slack/events at once (two declared, two chunked) once grew `warroom
    serve` by 125 MB; now its peak resident memory grows by less than 20 MB and it answers afterwards."""
    serve = ServeProcess(fresh_database, emulator, tmp_path)
    try:
        # Warm up the paths the posts take (Bolt, the error handlers), so only the posts are measured.
        for _ in range(3):
            httpx.post(f"{serve.url}/slack/events", content=b"x" * MIB, timeout=20)
        before = _peak_rss_kib(serve.process.pid)
        answers: list[str] = []
        piece = b"x" * MIB

        def post(chunked: bool) -> None:
            headers = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(64 * MIB)}
            with _send_headers(serve.url, "/slack/events", headers) as sock:
                if chunked:
                    finished = _send_chunked(sock, 64 * MIB, piece)
                else:
                    try:
                        for _ in range(64):
                            sock.sendall(piece)
                        finished = True
                    except OSError:
                        finished = False
                answers.append(_status(sock) if finished else "cut off")

        threads = [threading.Thread(target=post, args=(chunked,)) for chunked in (False, True, False, True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        growth_mib = (_peak_rss_kib(serve.process.pid) - before) / 1024
        assert growth_mib < 20, f"peak memory grew by {growth_mib:.0f} MiB"
        assert set(answers) <= {"413", "cut off"}, answers
        assert httpx.get(f"{serve.url}/healthz", timeout=10).status_code == 200
    finally:
        serve.stop()
