"""Requests waiting for a web thread are reported once a minute, not once per request as waitress does."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx

from bot.server import QueueDepthReport
from tests.fixtures_lifecycle import wait_until

ROOT = Path(__file__).resolve().parents[1]


def test_the_report_gives_the_deepest_queue_once_per_window() -> None:
    report = QueueDepthReport(threads=16, every=60)
    assert report.sample(3, now=100.0) is None
    assert report.sample(7, now=130.0) is None
    assert report.sample(1, now=159.9) is None
    line = report.sample(0, now=160.0)
    assert line is not None and "up to 7 queued" in line and "16 threads" in line
    # A new window starts: nothing queued in it, nothing said.
    assert report.sample(0, now=200.0) is None
    assert report.sample(0, now=220.0) is None
    line = report.sample(2, now=281.0)
    assert line is not None and "up to 2 queued" in line


SERVER = textwrap.dedent("""
    import logging, sys, time
    from flask import Flask
    from bot.server import run_web_server

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(message)s")
    app = Flask("held")

    @app.get("/ping")
    def ping():
        return "up"

    @app.get("/hold")
    def hold():
        time.sleep(0.4)
        return "held"

    run_web_server(app, host="127.0.0.1", port=int(sys.argv[1]), threads=1, report_every=0.5)
""")


def test_a_busy_web_server_logs_a_summary_not_a_line_per_request(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log_file:
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], cwd=ROOT, stderr=log_file)
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{url}/ping", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=20, what="the server to start")
        # One thread: each request holds it for 0.4 s, so the others queue behind it for ~2 s.
        held = [threading.Thread(target=httpx.get, args=(f"{url}/hold",), kwargs={"timeout": 10})
                for _ in range(5)]
        for thread in held:
            thread.start()
        for thread in held:
            thread.join(10)
        wait_until(lambda: "waited for a free thread" in log_path.read_text(), timeout=5,
                   what="the queue report")
    finally:
        server.terminate()
        server.wait(10)
    text = log_path.read_text()
    assert "Task queue depth" not in text  # waitress's line per request is not logged
    reports = [line for line in text.splitlines() if "waited for a free thread" in line]
    deepest = max(int(line.split("up to ")[1].split()[0]) for line in reports)
    assert 3 <= deepest <= 4, text
    assert len(reports) <= 5 and all("1 threads" in line for line in reports)
