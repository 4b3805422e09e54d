"""GET /metrics and JSON logs: what an operator sees before the room does. Signed requests into the real
app, the Slack emulator failing on cue, and `warroom serve` as real processes (its web process and its
worker child summed in one scrape)."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select, update

from bot.background.runtime import Runtime, build_runtime
from bot.crisis.plan import Plan
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.infra.clock import real_now
from bot.infra.logs import JsonFormatter, about_incident
from bot.infra.metrics import slack_surface
from bot.infra.settings import Settings
from bot.queue import jobs
from bot.server import ThreadedServer
from bot.web import create_web_app
from models import Incident, Job, transaction
from tests.conftest import BOT_TOKEN, DRAFTER, INGEST_TOKEN, LEAD, SIGNING_SECRET, AppServer, make_settings
from tests.fixtures_drafts import open_war_room, wait_for_draft
from tests.fixtures_lifecycle import open_incident, wait_until
from tests.fixtures_reliability import fresh_database_fixture  # noqa: F401 - provides fresh_database
from tests.openai_server import FakeOpenAI
from tests.test_cli import WARROOM, _env, _free_port

METRICS_TOKEN = "test-metrics-token"
BEARER = {"Authorization": f"Bearer {METRICS_TOKEN}"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def settings(database_url: str, emulator: SlackEmulator) -> Settings:
    return make_settings(database_url, emulator, warroom_metrics_token=METRICS_TOKEN)


def scrape(url: str) -> Samples:
    """GET /metrics with the token, parsed as Prometheus parses it: {(sample name, labels): value}."""
    response = httpx.get(f"{url}/metrics", headers=BEARER, timeout=10)
    assert response.status_code == 200, response.text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape_until(url: str, name: str, reaches: float, what: str, **labels: str) -> Samples:
    """Scrape until the sample `name{labels}` reaches `reaches` (work after the ack is counted when it ends)."""
    def reached() -> Samples | None:
        samples = scrape(url)
        return samples if value(samples, name, **labels) >= reaches else None

    return wait_until(reached, timeout=30, what=what)


@pytest.fixture
def web_only(runtime: Runtime) -> Iterator[str]:
    """The HTTP app with no worker, so queued jobs stay queued."""
    server = ThreadedServer(create_web_app(runtime, None)).start()
    yield server.url
    server.stop()


# ---- the endpoint ------------------------------------------------------------------------------


def test_metrics_answer_404_while_no_token_is_configured(database_url: str, emulator: SlackEmulator,
                                                         plan: Plan) -> None:
    runtime = build_runtime(make_settings(database_url, emulator), plan)
    server = ThreadedServer(create_web_app(runtime, None)).start()
    try:
        for headers in ({}, BEARER):
            response = httpx.get(f"{server.url}/metrics", headers=headers)
            assert response.status_code == 404
            assert "WARROOM_METRICS_TOKEN is not set" in response.json()["error"]
    finally:
        server.stop()
        runtime.engine.dispose()


def test_metrics_need_the_bearer_token_and_speak_prometheus(web_only: str) -> None:
    """A wrong or missing token is 401 (as POST /mentions answers): the route exists once configured."""
    for headers in ({}, {"Authorization": f"Bearer {METRICS_TOKEN}x"}, {"Authorization": f"Basic {METRICS_TOKEN}"},
                    {"Authorization": f"Bearer {INGEST_TOKEN}"}):
        response = httpx.get(f"{web_only}/metrics", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "warroom_" not in response.text

    response = httpx.get(f"{web_only}/metrics", headers=BEARER)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    families = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"warroom_slack_ack_seconds", "warroom_job_outcomes", "warroom_slack_api_errors",
            "warroom_llm_request_seconds", "warroom_llm_errors", "warroom_mentions_ingested",
            "warroom_mentions_refused", "warroom_queue_jobs", "warroom_queue_oldest_age_seconds"} <= families


# ---- what the app counts -----------------------------------------------------------------------


def test_a_crisis_command_is_timed_as_an_ack_and_its_job_counted_done(
        slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, app_server: AppServer) -> None:
    before = scrape(app_server.url)
    open_incident(slack, emulator, runtime, "Flights delayed")

    done = value(before, "warroom_job_outcomes_total", kind="crisis", outcome="done") + 1
    after = scrape_until(app_server.url, "warroom_job_outcomes_total", done, "the open's job counted done",
                         kind="crisis", outcome="done")
    assert value(after, "warroom_job_outcomes_total", kind="crisis", outcome="done") == done
    acks = value(after, "warroom_slack_ack_seconds_count", surface="command")
    assert acks == value(before, "warroom_slack_ack_seconds_count", surface="command") + 1
    assert value(after, "warroom_slack_ack_seconds_sum", surface="command") > value(
        before, "warroom_slack_ack_seconds_sum", surface="command")


def test_each_slack_surface_is_timed_under_its_name_and_unsigned_requests_are_not(
        slack: SlackClient, app_server: AppServer) -> None:
    before = scrape(app_server.url)
    message = {"type": "message", "ts": "1700000000.000100", "text": "a post", "user": LEAD, "blocks": []}
    slack.block_action("nothing_listens_to_this", value="1", message=message)
    slack.view_submission("nothing_listens_to_this", {}, view={"blocks": []})
    slack.message_shortcut("nothing_listens_to_this", message)
    slack.event({"type": "reaction_added", "user": LEAD, "reaction": "eyes",
                 "item": {"type": "message", "channel": "C0GENERAL1", "ts": "1700000000.000100"}})
    unsigned = slack.post(b"command=%2Fcrisis&text=help")
    assert unsigned.status_code == 401

    after = scrape(app_server.url)
    for surface in ("block_actions", "view_submission", "shortcut", "event"):
        assert value(after, "warroom_slack_ack_seconds_count", surface=surface) == value(
            before, "warroom_slack_ack_seconds_count", surface=surface) + 1, surface
    assert value(after, "warroom_slack_ack_seconds_count", surface="command") == value(
        before, "warroom_slack_ack_seconds_count", surface="command")


def test_slack_surface_names() -> None:
    assert slack_surface({"command": "/crisis", "text": "open x"}) == "command"
    assert slack_surface({"type": "event_callback", "event": {"type": "app_mention"}}) == "event"
    assert slack_surface({"type": "view_closed"}) == "view_closed"
    assert slack_surface({"type": "message_action"}) == "shortcut"
    assert slack_surface({"type": "block_suggestion"}) == "other"
    assert slack_surface({}) == "other"


def test_a_slack_error_is_counted_by_method_and_code_and_its_job_failed(
        slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, app_server: AppServer) -> None:
    room = open_war_room(runtime, emulator)
    before = scrape(app_server.url)
    emulator.fail("chat.postMessage", "channel_not_found")
    assert slack.command("fact Gates reopened at 15:00", user_id=LEAD, channel_id=room.channel_id).status_code == 200

    failed = value(before, "warroom_job_outcomes_total", kind="crisis", outcome="failed") + 1
    after = scrape_until(app_server.url, "warroom_job_outcomes_total", failed, "the job counted failed",
                         kind="crisis", outcome="failed")
    assert value(after, "warroom_job_outcomes_total", kind="crisis", outcome="failed") == failed
    error = {"method": "chat.postMessage", "error": "channel_not_found"}
    assert value(after, "warroom_slack_api_errors_total", **error) == value(
        before, "warroom_slack_api_errors_total", **error) + 1


def test_llm_latency_and_errors_are_counted(database_url: str, emulator: SlackEmulator, plan: Plan) -> None:
    """A draft the model writes is timed as ok; one it cannot write is timed as an error and counted by
    the client's exception class (here the API key refused, HTTP 401) and by the answer's own fault."""
    with FakeOpenAI(api_key="sk-test") as llm:
        runtime = build_runtime(make_settings(database_url, emulator, warroom_metrics_token=METRICS_TOKEN,
                                              openai_api_key="sk-test", openai_base_url=llm.base_url), plan)
        server = AppServer(runtime).start()
        try:
            slack = SlackClient(server.url, SIGNING_SECRET, emulator=emulator)
            room = open_war_room(runtime, emulator)
            before = scrape(server.url)
            for number, (fault, status) in enumerate(((None, "pending"), ("auth", "failed"), ("garbage", "failed"))):
                if fault:
                    llm.fail_next(fault)
                # A different question each time, so each makes a draft of its own.
                slack.command(f"draft x Where is bag {number}?", user_id=DRAFTER, channel_id=room.channel_id)
                wait_for_draft(runtime, room.incident_id, status, index=number)
            after = scrape(server.url)
        finally:
            server.stop()
            runtime.engine.dispose()
    timed = "warroom_llm_request_seconds_count"
    assert value(after, timed, outcome="ok") == value(before, timed, outcome="ok") + 1
    assert value(after, timed, outcome="error") == value(before, timed, outcome="error") + 2
    for error in ("AuthenticationError", "ValidationError"):
        assert value(after, "warroom_llm_errors_total", error=error) == value(
            before, "warroom_llm_errors_total", error=error) + 1, error


def test_queue_depth_and_oldest_age_by_kind_come_from_the_jobs_table(runtime: Runtime, web_only: str) -> None:
    assert not any(name.startswith("warroom_queue_") for name, _ in scrape(web_only))
    for kind in ("crisis", "crisis", "crisis", "interaction"):
        runtime.intake.submit(kind, {"test": True})
    with transaction(runtime.sessions) as session:
        session.execute(update(Job).where(Job.kind == "crisis").values(created_at=real_now() - timedelta(minutes=2)))
        claimed = jobs.claim_next(session, "a-test-worker")
    assert claimed is not None and claimed.kind == "crisis"

    samples = scrape(web_only)
    assert value(samples, "warroom_queue_jobs", kind="crisis", status="queued") == 2
    assert value(samples, "warroom_queue_jobs", kind="crisis", status="running") == 1
    assert value(samples, "warroom_queue_jobs", kind="interaction", status="queued") == 1
    crisis_age = value(samples, "warroom_queue_oldest_age_seconds", kind="crisis")
    assert crisis_age >= 120
    assert 0 <= value(samples, "warroom_queue_oldest_age_seconds", kind="interaction") < crisis_age


def _mention(n: int, **fields: Any) -> dict[str, Any]:
    return {"platform": "twitter", "id": f"metrics-{n}", "text": f"Acme Air lost my bag #{n}",
            "created_at": "2024-05-01T12:00:00Z", **fields}


def test_mentions_ingested_and_refused_are_counted(app_server: AppServer) -> None:
    auth = {"Authorization": f"Bearer {INGEST_TOKEN}"}
    ingested = ("warroom_mentions_ingested_total", {"source": "webhook"})
    before = scrape(app_server.url)
    good = httpx.post(f"{app_server.url}/mentions", json={"mentions": [_mention(1), _mention(2)]}, headers=auth)
    assert good.status_code == 202
    again = httpx.post(f"{app_server.url}/mentions", json={"mentions": [_mention(2)]}, headers=auth)
    assert again.json() == {"accepted": 0, "duplicates": 1}
    bad = httpx.post(f"{app_server.url}/mentions", json={"mentions": [_mention(3), _mention(4, created_at="soon")]},
                     headers=auth)
    assert bad.status_code == 400

    after = scrape(app_server.url)
    assert value(after, ingested[0], **ingested[1]) == value(before, ingested[0], **ingested[1]) + 2
    for reason in ("invalid", "batch_refused"):
        assert value(after, "warroom_mentions_refused_total", source="webhook", reason=reason) == value(
            before, "warroom_mentions_refused_total", source="webhook", reason=reason) + 1, reason


# ---- JSON log lines ----------------------------------------------------------------------------


def _json_lines(emit: Any) -> list[dict[str, Any]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.json_lines")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_log_line_names_the_job_and_incident_only_where_known() -> None:
    def emit(logger: logging.Logger) -> None:
        logger.info("outside any job")
        with jobs.running(41), about_incident(7):
            logger.warning("two\nlines, one record")
        with jobs.running(42):
            try:
                with about_incident(8):
                    raise RuntimeError("Slack said no")
            except RuntimeError:
                logger.exception("job %d failed", 42)  # outside the incident's block, as the worker logs it
            logger.info("after the failure")

    outside, inside, failure, after = _json_lines(emit)
    assert outside["message"] == "outside any job" and outside["level"] == "INFO"
    assert outside["logger"] == "tests.json_lines" and outside["time"].endswith("+00:00")
    assert "job_id" not in outside and "incident_id" not in outside
    assert (inside["message"], inside["job_id"], inside["incident_id"]) == ("two\nlines, one record", 41, 7)
    assert (failure["job_id"], failure["incident_id"], failure["level"]) == (42, 8, "ERROR")
    assert "RuntimeError: Slack said no" in failure["exception"]
    assert after["job_id"] == 42 and "incident_id" not in after


def test_warnings_and_uncaught_exceptions_are_json_lines_too(tmp_path: Path) -> None:
    program = ("import threading, warnings\n"
               "from bot.infra.logs import configure_logging\n"
               "configure_logging('INFO', 'json')\n"
               "warnings.warn('a deprecation')\n"
               "thread = threading.Thread(target=lambda: 1 / 0, name='doomed')\n"
               "thread.start(); thread.join()\n"
               "raise LookupError('the end')\n")
    result = subprocess.run([sys.executable, "-c", program], env=_env(), cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    warning, thread, main = [json.loads(line) for line in result.stderr.splitlines()]
    assert warning["logger"] == "py.warnings" and "a deprecation" in warning["message"]
    assert thread["message"] == "uncaught ZeroDivisionError in doomed" and "division by zero" in thread["exception"]
    assert main["level"] == "CRITICAL" and "LookupError: the end" in main["exception"]


def test_a_cli_failure_in_json_is_one_json_line(tmp_path: Path) -> None:
    result = subprocess.run([WARROOM, "serve"], env=_env(WARROOM_LOG_FORMAT="json"), cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    [line] = [json.loads(text) for text in result.stderr.splitlines()]
    assert line["level"] == "ERROR"
    assert line["message"] == "warroom: SLACK_BOT_TOKEN is not set; it is required for this command"


def test_an_unknown_log_format_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run([WARROOM, "plan", "check"], env=_env(WARROOM_LOG_FORMAT="xml"), cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["warroom: WARROOM_LOG_FORMAT: Input should be 'text' or 'json'"]


# ---- several processes: `warroom serve` and its worker child -----------------------------------


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    stderr: Path
    tmp: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stderr.read_text().splitlines()]


@pytest.fixture
def served(fresh_database: str, emulator: SlackEmulator, tmp_path: Path) -> Iterator[Served]:
    """`warroom serve` (its web process and worker child process) with /metrics and JSON logs on."""
    port = _free_port()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = _env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=emulator.api_url,
               DATABASE_URL=fresh_database, PORT=str(port), WARROOM_METRICS_TOKEN=METRICS_TOKEN,
               WARROOM_LOG_FORMAT="json", TMPDIR=str(tmp))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    stderr = tmp_path / "serve.stderr"
    with open(stderr, "wb") as errors:
        process = subprocess.Popen([WARROOM, "serve", "--no-scheduler", "--host", "127.0.0.1", "--worker-threads",
                                    "2"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=errors)
    server = Served(f"http://127.0.0.1:{port}", process, stderr, tmp)

    def up() -> bool:
        assert process.poll() is None, f"warroom serve exited:\n{stderr.read_text()[-3000:]}"
        try:
            return httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(up, timeout=30, what="warroom serve to answer /healthz")
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_one_scrape_of_serve_sums_its_web_process_and_its_worker_child(
        served: Served, emulator: SlackEmulator, fresh_database: str) -> None:
    """The ack is timed in the web process, the jobs run in the worker child: one scrape of the web process
    shows both (multiprocess mode in a directory `serve` made, removed when it stops), and every stderr
    line of both processes is a JSON object, the failed job's naming its job and incident."""
    slack = SlackClient(served.url, SIGNING_SECRET, emulator=emulator)
    assert slack.command("open Flights delayed", user_id=LEAD).status_code == 200
    samples = scrape_until(served.url, "warroom_job_outcomes_total", 1, "the worker child's job in the web's scrape",
                           kind="crisis", outcome="done")
    assert value(samples, "warroom_slack_ack_seconds_count", surface="command") == 1

    engine = create_engine(fresh_database)
    with engine.connect() as connection:
        incident_id, channel_id = wait_until(lambda: connection.execute(
            select(Incident.id, Incident.channel_id).where(Incident.status == "open")).first(),
            what="the incident open")
    engine.dispose()
    emulator.fail("chat.postMessage", "channel_not_found")
    assert slack.command("fact Gates reopened at 15:00", user_id=LEAD, channel_id=channel_id).status_code == 200
    samples = scrape_until(served.url, "warroom_job_outcomes_total", 1, "the failed job counted",
                           kind="crisis", outcome="failed")
    assert value(samples, "warroom_slack_api_errors_total", method="chat.postMessage", error="channel_not_found") == 1
    assert value(samples, "warroom_slack_ack_seconds_count", surface="command") == 2

    [metrics_dir] = served.tmp.glob("warroom-metrics-*")
    writers = {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("*.db")}
    assert str(served.process.pid) in writers and len(writers) == 2, "the web process and its worker child"

    served.stop()
    assert not metrics_dir.exists(), "serve removes the directory it made"
    lines = served.log_lines()  # each line parses as JSON, or this fails
    assert lines and all({"time", "level", "logger", "message", "pid"} <= set(line) for line in lines)
    [failure] = [line for line in lines if "failed on attempt" in line["message"]]
    assert failure["pid"] != served.process.pid, "logged by the worker child"
    assert failure["incident_id"] == incident_id and isinstance(failure["job_id"], int)
    assert "channel_not_found" in failure["exception"]
    assert BOT_TOKEN not in served.stderr.read_text() and METRICS_TOKEN not in served.stderr.read_text()


def test_serve_refuses_a_multiprocess_directory_that_is_not_there(tmp_path: Path) -> None:
    result = subprocess.run([WARROOM, "serve"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env=_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                                     PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "missing")))
    assert result.returncode == 2
    missing = tmp_path / "missing"
    assert result.stderr.splitlines() == [f"warroom: PROMETHEUS_MULTIPROC_DIR: {missing} is not a directory"]

