"""The `warroom` command as a deployer runs it: real processes, real ports, one-line errors."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.infra.database import head_revision
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.test_settings import DATABASE_PASSWORD, MALFORMED_DATABASE_URLS

WARROOM = shutil.which("warroom", path=str(Path(sys.executable).parent)) or "warroom"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(**values: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SLACK_", "OPENAI_", "WARROOM_", "DATABASE_URL", "PORT"))}
    env.update(values)
    return env


def test_serve_without_bot_token_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    result = subprocess.run([WARROOM, "serve"], env=_env(), cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    expected = "warroom: SLACK_BOT_TOKEN is not set; it is required for this command"
    assert result.stderr.strip().splitlines() == [expected]
    assert "Traceback" not in result.stderr


def test_malformed_port_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run([WARROOM, "serve"], env=_env(SLACK_BOT_TOKEN=BOT_TOKEN, PORT="eighty"), cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warroom: PORT:")


@pytest.mark.parametrize(("url", "problem"), MALFORMED_DATABASE_URLS,
                         ids=[str(i) for i in range(len(MALFORMED_DATABASE_URLS))])
@pytest.mark.parametrize("command", [["serve"], ["db", "upgrade"]], ids=["serve", "db-upgrade"])
def test_malformed_database_url_is_one_line_without_the_password(
    tmp_path: Path, command: list[str], url: str, problem: str
) -> None:
    result = subprocess.run([WARROOM, *command], env=_env(SLACK_BOT_TOKEN=BOT_TOKEN, DATABASE_URL=url),
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"warroom: DATABASE_URL: {problem}"]
    assert DATABASE_PASSWORD not in result.stderr + result.stdout


def test_plan_check_names_the_wrong_key_path(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yml"
    text = (Path(__file__).resolve().parents[1] / "plan.example.yml").read_text()
    plan.write_text(text.replace("    digest_minutes: 30", "    digest_minuets: 30"))
    result = subprocess.run([WARROOM, "plan", "check", str(plan)], env=_env(), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert f"{plan}: severities.sev2.digest_minuets: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_plan_check_accepts_the_example(tmp_path: Path) -> None:
    result = subprocess.run([WARROOM, "plan", "check"], env=_env(), cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    result = subprocess.run([WARROOM, "db", "upgrade"], env=_env(DATABASE_URL=url), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"database at revision {head_revision()}" in result.stdout


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, SlackEmulator]]:
    """`warroom serve` as a real process against the emulator, on a free port."""
    with SlackEmulator() as emulator:
        port = _free_port()
        env = _env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=emulator.api_url,
                   DATABASE_URL=f"sqlite:///{tmp_path / 'warroom.db'}", PORT=str(port))
        process = subprocess.Popen([WARROOM, "serve", "--no-scheduler"], env=env, cwd=tmp_path,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read() if process.stdout else ""
                    pytest.fail(f"warroom serve did not come up:\n{output}")
                time.sleep(0.1)
            yield url, emulator
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_serve_answers_signed_help_and_refuses_unsigned(served: tuple[str, SlackEmulator]) -> None:
    url, emulator = served
    client = SlackClient(url, SIGNING_SECRET, emulator=emulator)
    started = time.monotonic()
    response = client.command("help")
    assert time.monotonic() - started < 3.0
    assert response.status_code == 200
    assert "/crisis open" in response.json()["text"]

    unsigned = client.post(b"command=%2Fcrisis&text=help", {"Content-Type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 401
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok", "database": "ok"}
    # help and the refused request need nothing from Slack (auth.test at most, for the first signed request)
    assert {call.method for call in emulator.calls} <= {"auth.test"}
