"""PostgreSQL stopped and started mid-run, on a private PostgreSQL server of the test's own.

The machine's shared server cannot be stopped under the rest of the suite, so this test makes a
cluster with the installed PostgreSQL's `initdb`, runs War Room (web and worker) on it, and stops and
starts it with `pg_ctl`. What is asserted: while the database is down every command is refused in its
ack (never acknowledged and dropped) and /healthz says 503; a command acknowledged before the stop and
not yet run is done after the restart; and the bot serves again without being restarted itself.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.background.runtime import build_runtime
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.infra import database
from bot.queue.worker import Worker
from bot.server import InProcessApp
from handlers import tables
from models import Fact, transaction
from tests.conftest import LEAD, MONITOR, SIGNING_SECRET, make_settings, make_test_plan
from tests.fixtures_lifecycle import open_incident, wait_until


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port, run as the `postgres` user when we are root."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        assert found, "PostgreSQL's server binaries (pg_ctl, initdb) are part of this machine kind"
        self.bin = Path(found[-1]).parent
        self.folder = Path(tempfile.mkdtemp(prefix="warroom-pg-"))
        self.data = self.folder / "data"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.remove()


def _facts(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        return sorted(fact.text for fact in session.scalars(select(Fact)))


def test_postgres_stopped_and_started_mid_run(private_postgres: PrivatePostgres, emulator: SlackEmulator) -> None:
    database.upgrade(private_postgres.url)
    runtime = build_runtime(make_settings(private_postgres.url, emulator), make_test_plan())
    app = InProcessApp(runtime, worker_threads=2).start()
    replacement: Worker | None = None
    try:
        slack = SlackClient(app.url, SIGNING_SECRET, emulator=emulator)
        room = open_incident(slack, emulator, runtime)

        # Acknowledged, then the database goes away before any worker runs it.
        app.worker.stop()
        before = slack.command("fact Acknowledged before the stop", user_id=MONITOR, channel_id=room.channel_id)
        assert before.status_code == 200 and not before.content, before.text
        private_postgres.stop()

        down = slack.command("fact Sent while the database is down", user_id=LEAD, channel_id=room.channel_id)
        assert down.status_code == 200
        assert down.json()["response_type"] == "ephemeral" and "was not run" in down.json()["text"]
        assert httpx.get(f"{app.url}/healthz", timeout=5).status_code == 503

        private_postgres.start()
        wait_until(lambda: httpx.get(f"{app.url}/healthz", timeout=5).status_code == 200,
                   what="/healthz after the restart", timeout=20)
        replacement = Worker(runtime, tables.run_job, threads=2, poll_seconds=0.05).start()
        after = slack.command("fact Sent after the restart", user_id=LEAD, channel_id=room.channel_id)
        assert after.status_code == 200 and not after.content, after.text
        wait_until(lambda: _facts(runtime) == ["Acknowledged before the stop", "Sent after the restart"],
                   what="both acknowledged facts recorded", timeout=20)
    finally:
        if replacement is not None:
            replacement.stop()
        app.stop()
        runtime.engine.dispose()
