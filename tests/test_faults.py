"""Faults: Slack rate limits, 5xx and dropped connections, a locked SQLite, a killed process. The bot keeps
serving, tells the user what failed, and loses nothing it acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.background.runtime import Runtime
from bot.crisis.timeline import DECISION_LOGGED, DRAFT_REQUESTED, FACT_ADDED, MESSAGE_ADDED, RUMOUR_TRACKED
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.queue import jobs
from handlers.render.drafts import APPROVE, REASON_INPUT, REJECT, REJECT_VIEW
from models import (
    Decision,
    Draft,
    Fact,
    Incident,
    Job,
    KeyMessage,
    Rumour,
    TimelineEvent,
    make_engine,
    transaction,
    utcnow,
)
from models.incidents import OPEN, OPENING
from models.jobs import DONE, RUNNING
from tests.conftest import BOT_TOKEN, DRAFTER, LEAD, SIGNING_SECRET
from tests.fixtures_drafts import action_ids, draft_message, message_text, open_war_room, wait_for_draft
from tests.fixtures_lifecycle import incidents, open_incident, rows, wait_until
from tests.fixtures_reliability import (  # noqa: F401 - provides fresh_database
    fresh_database_fixture,
    hold_job_writes,
    settle,
)
from tests.openai_server import FakeOpenAI

# The longest pause between two calls while the Slack client backs off (0.5 s, then 1 s; Retry-After 1 s).
RETRY_GAP_SECONDS = 1.6


def clear_faults(emulator: SlackEmulator) -> None:
    """Slack is healthy again."""
    emulator.clear_faults()


def told(emulator: SlackEmulator, words: str) -> list[str]:
    """Everything the app told people privately (respond and chat.postEphemeral) that contains `words`."""
    texts = [str(payload.get("text", "")) for _, payload in emulator.responses]
    texts += [str(ephemeral.get("text", "")) for ephemeral in emulator.ephemerals()]
    return [text for text in texts if words in text]


# ---- Slack answering badly, on each call of an open ----------------------------------------------

OPEN_CALLS = ("conversations.create", "conversations.invite", "conversations.setTopic", "chat.postMessage",
              "pins.add")


@pytest.mark.parametrize("method", OPEN_CALLS)
@pytest.mark.parametrize("fault", ["rate_limit", "server_error", "drop_connection"])
def test_open_rides_out_transient_slack_faults(slack: SlackClient, emulator: SlackEmulator, runtime: Runtime,
                                               method: str, fault: str) -> None:
    if fault == "rate_limit":
        emulator.rate_limit(method, times=1, retry_after=1)
    elif fault == "server_error":
        emulator.server_error(method, times=1)
    else:
        emulator.drop_connection(method, times=1)
    room = open_incident(slack, emulator, runtime, f"Transient {method} {fault}")
    assert len(emulator.calls_to(method)) >= 2, "the faulty call was retried"
    if method == "pins.add":
        assert emulator.channels[room.channel_id].pins, "the brief got pinned in the end"
    settle(emulator)
    assert [row.status for row in incidents(runtime)] == [OPEN]


@pytest.mark.parametrize("method", OPEN_CALLS)
def test_open_that_keeps_failing_tells_the_opener_and_a_retry_finishes_it(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, method: str
) -> None:
    emulator.server_error(method, times=10)  # more than the client retries
    response = slack.command("open Persistent trouble", user_id=LEAD)
    assert response.status_code == 200
    emulator.wait_for(lambda emu: told(emu, "Persistent trouble"), timeout=20)
    settle(emulator)
    [row] = incidents(runtime)
    assert row.status == OPENING and row.open_error, "the half-done open is kept, with what went wrong"

    clear_faults(emulator)  # Slack is back
    slack.command("open Persistent trouble", user_id=LEAD)
    wait_until(lambda: incidents(runtime)[0].status == OPEN, what="the retried open to finish", timeout=15)
    assert len(incidents(runtime)) == 1, "the retry resumed the same incident"
    assert len(emulator.calls_to("conversations.create")) - (method == "conversations.create") * 3 <= 1


def ask_for_draft(slack: SlackClient, channel_id: str) -> None:
    response = slack.command("draft x Where is my bag?", user_id=DRAFTER, channel_id=channel_id)
    assert response.status_code == 200


@pytest.mark.parametrize("fault", ["rate_limit", "server_error", "drop_connection"])
def test_draft_survives_a_transient_fault_posting_it(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, fault: str
) -> None:
    room = open_war_room(runtime, emulator)
    getattr(emulator, fault)("chat.postMessage", times=1)
    ask_for_draft(slack, room.channel_id)
    draft = wait_for_draft(runtime, room.incident_id, "pending", timeout=20)
    assert draft.slack_ts, "the draft has its message"
    emulator.wait_for(lambda emu: [m for m in emu.messages(room.channel_id) if m["ts"] == draft.slack_ts])
    settle(emulator)


def test_draft_whose_slack_post_keeps_failing_is_kept(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack's 5xx is transient: the job is tried again (with back-off) up to its attempts, the draft is
    made once, and the requester is told once at the end."""
    monkeypatch.setattr(jobs, "RETRY_BACKOFF_SECONDS", 0.1)
    room = open_war_room(runtime, emulator)
    emulator.server_error("chat.postMessage", times=60)
    ask_for_draft(slack, room.channel_id)
    # The worker drafts after the ack and Slack keeps failing with back-offs: wait for the outcome itself.
    draft = wait_for_draft(runtime, room.incident_id, "pending")
    assert draft.text, "the drafted reply is stored even though Slack failed"
    wait_until(lambda: [job for job in rows(runtime, Job) if job.status == "failed"], timeout=60,
               what="the job failed after its last attempt")
    [job] = rows(runtime, Job)
    assert job.attempts == jobs.MAX_ATTEMPTS
    assert len(rows(runtime, Draft, incident_id=room.incident_id)) == 1
    settle(emulator, quiet_seconds=RETRY_GAP_SECONDS)
    answers = [str(payload.get("text", "")) for _, payload in emulator.responses]
    assert len([text for text in answers if "failed" in text]) == 1, "the requester is told once that it failed"


# ---- a locked SQLite -----------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # SQLite's own write lock
def test_command_waits_out_a_briefly_locked_sqlite(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, database_url: str
) -> None:
    room = open_war_room(runtime, emulator)
    holder = hold_job_writes(runtime.engine, 0.6)  # shorter than the ack's database budget
    started = time.monotonic()
    response = slack.command("fact Gates reopened at 15:00", user_id=LEAD, channel_id=room.channel_id)
    acked_in = time.monotonic() - started
    holder.join()
    assert response.status_code == 200 and not response.content, response.text
    assert acked_in < 3.0, "Slack needs the ack within 3 seconds"
    wait_until(lambda: rows(runtime, Fact, incident_id=room.incident_id), what="the fact after the lock")
    settle(emulator)
    assert emulator.errors == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # SQLite's own write lock
def test_a_long_locked_sqlite_is_told_in_the_ack_and_nothing_half_done(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, database_url: str
) -> None:
    room = open_war_room(runtime, emulator)
    facts_before = len(rows(runtime, Fact, incident_id=room.incident_id))
    holder = hold_job_writes(runtime.engine, 2.5)  # longer than the budget, shorter than Slack's 3 s
    started = time.monotonic()
    response = slack.command("fact Gates reopened at 15:00", user_id=LEAD, channel_id=room.channel_id)
    acked_in = time.monotonic() - started
    holder.join()
    assert response.status_code == 200 and acked_in < 3.0
    body = response.json()
    assert body["response_type"] == "ephemeral" and "was not run" in body["text"]
    time.sleep(0.5)
    assert len(rows(runtime, Fact, incident_id=room.incident_id)) == facts_before
    with transaction(runtime.sessions) as session:
        assert session.scalars(select(Job)).all() == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # SQLite's own write lock
def test_clicks_and_forms_the_database_cannot_take_are_told_and_change_nothing(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, database_url: str
) -> None:
    """Buttons and modal saves are queued before their ack too: when the database cannot take the job,
    the clicker is told privately (a form keeps what was typed) and the draft is untouched."""
    room = open_war_room(runtime, emulator)
    slack.command("draft x Where is my bag?", user_id=DRAFTER, channel_id=room.channel_id)
    draft = wait_for_draft(runtime, room.incident_id, "pending")
    emulator.wait_for(lambda emu: REJECT in action_ids(draft_message(emu, draft)))
    slack.block_action(REJECT, user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: emulator.opened_views, what="the reject form")

    holder = hold_job_writes(runtime.engine, 2.5)
    with ThreadPoolExecutor(2) as pool:  # both inside the lock, as two people would click
        clicked = pool.submit(slack.block_action, APPROVE, user_id=LEAD,
                              channel_id=room.channel_id)
        submitted = pool.submit(slack.view_submission, REJECT_VIEW, {REASON_INPUT: {REASON_INPUT: "Too defensive"}},
                                user_id=LEAD)
        click, form = clicked.result(), submitted.result()
    holder.join()
    assert click.status_code == 200
    assert form.status_code == 200
    assert form.json()["response_action"] == "errors"
    assert "rejecting the draft was not done" in form.json()["errors"][REASON_INPUT]
    assert told(emulator, "approving the draft was not done")
    with transaction(runtime.sessions) as session:
        assert session.get(Draft, draft.id).status == "pending"  # type: ignore[union-attr]
        assert session.scalars(select(Job).where(Job.kind == "interaction")).all() == []

    slack.block_action(APPROVE, user_id=LEAD, channel_id=room.channel_id)
    assert wait_for_draft(runtime, room.incident_id, "approved").decided_by == LEAD


def test_a_click_whose_work_fails_for_good_is_failed_and_told_once(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    """A permanent failure (Slack refuses the draft message's update with an error that will not pass)
    is told to the clicker once and leaves the job failed, never done."""
    room = open_war_room(runtime, emulator)
    ask_for_draft(slack, room.channel_id)
    draft = wait_for_draft(runtime, room.incident_id, "pending")
    wait_until(lambda: APPROVE in action_ids(draft_message(emulator, draft)), what="the draft's buttons")
    emulator.fail("chat.update", "cant_update_message", times=5)
    slack.block_action(APPROVE, user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: [job for job in rows(runtime, Job) if job.kind == "interaction" and job.status == "failed"],
               what="the approval's job failed")
    settle(emulator, quiet_seconds=RETRY_GAP_SECONDS)
    [job] = [job for job in rows(runtime, Job) if job.kind == "interaction"]
    assert job.attempts == 1, "a permanent failure is not tried again"
    assert len(told(emulator, "Approving the draft failed")) == 1
    assert wait_for_draft(runtime, room.incident_id, "approved").id == draft.id  # the decision itself stands


# ---- kill -9 of serve mid-incident -----------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """`warroom serve` (scheduler in-process) as a real process on a free port."""

    def __init__(self, database_url: str, emulator: SlackEmulator, folder: Path,
                 env_extra: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"serve-{self.port}.log"
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("SLACK_", "WARROOM_", "DATABASE_URL", "OPENAI_"))}
        env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                   SLACK_API_URL=emulator.api_url, DATABASE_URL=database_url, PORT=str(self.port),
                   WARROOM_LOG_LEVEL="INFO")
        env.update(env_extra or {})
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen([str(Path(sys.executable).with_name("warroom")), "serve",
                                             "--host", "127.0.0.1"], env=env, cwd=folder, stdout=log_file,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"warroom serve did not start:\n{self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def kill_9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def kill_9_all(self) -> None:
        """`kill -9` the serve and every process under it (its worker child) at the same instant: all are
        stopped first, so none sees another die (the worker would hand its jobs back when its parent goes,
        and the serve would start a new worker when its child goes)."""
        pids = [self.process.pid]
        for pid in pids:  # grows as it goes: children of children too
            pids += _children(pid)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        # The children are reparented and reaped by init; gone, or dead and awaiting that.
        wait_until(lambda: all(_dead(pid) for pid in pids[1:]), what="every process of the serve to die")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _slash(emulator: SlackEmulator, text: str,
           channel_id: str = "C0GENERAL1") -> tuple[bytes, dict[str, str]]:
    body = urlencode({
        "token": "verification", "team_id": "T0001", "channel_id": channel_id, "channel_name": "general",
        "user_id": LEAD, "user_name": "lena", "command": "/crisis", "text": text, "api_app_id": "A0001",
        "response_url": emulator.response_url(channel_id, LEAD), "trigger_id": emulator.trigger_id(),
    }).encode()
    headers = SlackClient("", SIGNING_SECRET).sign(body)
    return body, {**headers, "Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(("subcommand", "model", "kind"), [
    ("fact", Fact, FACT_ADDED),
    ("message", KeyMessage, MESSAGE_ADDED),
    ("decide", Decision, DECISION_LOGGED),
    ("rumor", Rumour, RUMOUR_TRACKED),
])
def test_a_command_run_again_after_its_worker_died_records_its_change_once(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, subcommand: str, model: Any, kind: str
) -> None:
    """Jobs run at least once: a worker killed after committing a change but before marking its job done
    leaves the job running, and after STALE_AFTER it is queued again and run again. The change is there
    once; the echo in the channel is posted again (Slack has no way to tell whether the first got out)."""
    room = open_war_room(runtime, emulator)
    before = len(rows(runtime, model, incident_id=room.incident_id))
    response = slack.command(f"{subcommand} Gates reopened at 15:00", user_id=LEAD, channel_id=room.channel_id)
    assert response.status_code == 200

    def job_done() -> Job | None:
        [job] = rows(runtime, Job)
        return job if job.status == "done" else None

    job = wait_until(job_done, what="the command's job")
    # What a worker killed between its commit and `finish` leaves behind, found by the stale-job sweep.
    with transaction(runtime.sessions) as session:
        session.execute(update(Job).where(Job.id == job.id).values(
            status="running", finished_at=None, heartbeat_at=utcnow() - jobs.STALE_AFTER - timedelta(seconds=1)))
        assert jobs.requeue_stale(session).requeued == 1
    runtime.work_available.set()
    wait_until(lambda: (done := job_done()) is not None and done.attempts == 2, what="the job's second run")

    assert len(rows(runtime, model, incident_id=room.incident_id)) == before + 1
    with transaction(runtime.sessions) as session:
        events = session.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == room.incident_id,
                                                             TimelineEvent.kind == kind)).all()
    assert [event.request_key for event in events] == [f"job:{job.id}:{kind}"]
    echoes = [message for message in emulator.channels[room.channel_id].messages
              if "Gates reopened at 15:00" in str(message.get("text", ""))]
    assert 1 <= len(echoes) <= 2
    assert not told(emulator, "failed")


@pytest.mark.slow
def test_kill_9_mid_open_loses_nothing_acknowledged(emulator: SlackEmulator, tmp_path: Path,
                                                     fresh_database: str) -> None:
    database_url = fresh_database
    engine = make_engine(database_url)
    first = ServeProcess(database_url, emulator, tmp_path)
    second: ServeProcess | None = None
    try:
        # Slack stalls on the invite, so the process dies between the ack and the end of the open.
        emulator.drop_connection("conversations.invite", times=100)
        body, headers = _slash(emulator, "open sev2 Crash mid open")
        assert httpx.post(f"{first.url}/slack/events", content=body, headers=headers).status_code == 200
        emulator.wait_for(lambda emu: emu.calls_to("conversations.invite"), timeout=10)
        first.kill_9()
        with engine.connect() as connection:
            statuses = list(connection.execute(select(Incident.status)).scalars())
        assert statuses == [OPENING], "the acknowledged open was recorded before any Slack call"

        clear_faults(emulator)
        second = ServeProcess(database_url, emulator, tmp_path)
        # The same command again (what a user does when nothing appeared) resumes it.
        body, headers = _slash(emulator, "open sev2 Crash mid open")
        assert httpx.post(f"{second.url}/slack/events", content=body, headers=headers).status_code == 200

        def opened() -> bool:
            with engine.connect() as connection:
                return list(connection.execute(select(Incident.status)).scalars()) == [OPEN]

        wait_until(opened, what="the resumed open", timeout=20)
        with engine.connect() as connection:
            next_digest = connection.execute(select(Incident.next_digest_at)).scalar_one()
        assert next_digest is not None, "digests are scheduled for the resumed incident"
        log = second.log_path.read_text()
        assert "Traceback" not in log, log[-3000:]
    finally:
        first.stop()
        if second is not None:
            second.stop()
        engine.dispose()


def test_kill_9_after_open_then_restart_keeps_the_incident_and_its_digests(
    emulator: SlackEmulator, tmp_path: Path, fresh_database: str
) -> None:
    database_url = fresh_database
    engine = make_engine(database_url)
    first = ServeProcess(database_url, emulator, tmp_path)
    second: ServeProcess | None = None
    try:
        body, headers = _slash(emulator, "open sev1 Crash after open")
        assert httpx.post(f"{first.url}/slack/events", content=body, headers=headers).status_code == 200

        def opened() -> Incident | None:
            with engine.connect() as connection:
                row = connection.execute(select(Incident).where(Incident.status == OPEN)).first()
            return row  # type: ignore[return-value]

        row = wait_until(opened, what="the incident to open", timeout=20)
        settle(emulator)
        first.kill_9()

        second = ServeProcess(database_url, emulator, tmp_path)
        body, headers = _slash(emulator, "fact Nothing was lost", channel_id=row.channel_id)
        assert httpx.post(f"{second.url}/slack/events", content=body, headers=headers).status_code == 200
        with engine.connect() as connection:
            status = connection.execute(select(Incident.status).where(Incident.id == row.id)).scalar_one()
        assert status == OPEN
        wait_until(lambda: emulator.calls_to("chat.postMessage") and any(
            "Nothing was lost" in str(call.args) for call in emulator.calls_to("chat.postMessage")),
            what="the restarted bot to serve the incident", timeout=15)
        with engine.connect() as connection:
            assert connection.execute(select(Incident.next_digest_at)).scalar_one() is not None
    finally:
        first.stop()
        if second is not None:
            second.stop()
        engine.dispose()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _dead(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_serve_runs_its_worker_child_niced_so_acks_come_first(
    emulator: SlackEmulator, tmp_path: Path, fresh_database: str
) -> None:
    """On both databases (see bot.server.WORKER_NICENESS for SQLite's measurements)."""
    serve = ServeProcess(fresh_database, emulator, tmp_path)
    try:
        def worker_pid() -> int | None:
            for child in _children(serve.process.pid):
                if b"worker" in Path(f"/proc/{child}/cmdline").read_bytes():
                    return child
            return None

        child = wait_until(worker_pid, what="the worker child process")
        expected = 10
        wait_until(lambda: os.getpriority(os.PRIO_PROCESS, child) - os.getpriority(os.PRIO_PROCESS, 0) == expected,
                   what=f"the worker child at niceness +{expected}")
        time.sleep(0.5)
        assert os.getpriority(os.PRIO_PROCESS, child) - os.getpriority(os.PRIO_PROCESS, 0) == expected
    finally:
        serve.stop()


@pytest.mark.slow
def test_kill_9_of_every_process_mid_llm_call_then_restart_finishes_the_draft_once(
    emulator: SlackEmulator, tmp_path: Path, fresh_database: str
) -> None:
    """Issue 14: after a kill -9 of every process and a restart, work in flight is taken up again within
    2 minutes, exactly once. A `/crisis draft` whose LLM call hangs when the serve and its worker are
    killed is finished by the restarted worker: one draft, one message, one timeline event."""
    # The promise, from the constants: a dead worker's job is stale after STALE_AFTER, and a running
    # worker sweeps every SWEEP_SECONDS (and as it starts).
    assert jobs.STALE_AFTER.total_seconds() + jobs.SWEEP_SECONDS <= 120
    database_url = fresh_database
    engine = make_engine(database_url)
    llm = FakeOpenAI(api_key="sk-test", timeout_delay=120.0).start()  # a "timeout" fault stalls the call
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": llm.base_url}
    first = ServeProcess(database_url, emulator, tmp_path, env)
    second: ServeProcess | None = None
    try:
        body, headers = _slash(emulator, "open sev2 Crash mid draft")
        assert httpx.post(f"{first.url}/slack/events", content=body, headers=headers).status_code == 200

        def opened() -> Incident | None:
            with engine.connect() as connection:
                return connection.execute(select(Incident).where(Incident.status == OPEN)).first()  # type: ignore[return-value]

        incident = wait_until(opened, what="the incident to open", timeout=20)
        settle(emulator)
        llm.fail_next("timeout")
        body, headers = _slash(emulator, "draft twitter Where is my bag, Acme?", channel_id=incident.channel_id)
        assert httpx.post(f"{first.url}/slack/events", content=body, headers=headers).status_code == 200
        wait_until(llm.generation_requests, what="the draft's LLM call to be in flight", timeout=30)

        def running_job() -> Job | None:
            with Session(engine) as session:
                found = session.scalars(select(Job).where(Job.status == RUNNING)).all()
            return found[0] if len(found) == 1 and found[0].heartbeat_at is not None else None

        job = running_job()
        assert job is not None and job.attempts == 1, "the draft's job is running, with a heartbeat"
        first.kill_9_all()
        with Session(engine) as session:
            dead = session.get_one(Job, job.id)
            assert (dead.status, dead.claimed_by) == (RUNNING, job.claimed_by), "nothing was handed back"
            # What 60 s without a heartbeat leaves: the job's worker is known dead.
            session.execute(update(Job).where(Job.id == job.id).values(
                heartbeat_at=utcnow() - jobs.STALE_AFTER - timedelta(seconds=1)))
            session.commit()

        second = ServeProcess(database_url, emulator, tmp_path, env)  # the LLM answers normally now

        def job_done() -> Job | None:
            with Session(engine) as session:
                found = session.get_one(Job, job.id)
            return found if found.status == DONE else None

        done = wait_until(job_done, what="the restarted worker to finish the job", timeout=30)
        assert done.attempts == 2
        with Session(engine) as session:
            drafts = session.scalars(select(Draft).where(Draft.incident_id == incident.id)).all()
            events = session.scalars(select(TimelineEvent).where(
                TimelineEvent.incident_id == incident.id, TimelineEvent.kind == DRAFT_REQUESTED)).all()
        assert [draft.status for draft in drafts] == ["pending"]
        assert [event.request_key for event in events] == [f"job:{job.id}:{DRAFT_REQUESTED}"]
        [draft] = drafts
        shown = [message for message in emulator.messages(incident.channel_id)
                 if "Where is my bag, Acme?" in message_text(message)]
        assert [message["ts"] for message in shown] == [draft.slack_ts], "the draft's message, posted once"
        assert APPROVE in action_ids(draft_message(emulator, draft))
        assert len(llm.generation_requests()) == 2, "the call cut off by the kill, and the one that made it"
        assert "Traceback" not in second.log_path.read_text()
    finally:
        first.stop()
        if second is not None:
            second.stop()
        llm.stop()
        engine.dispose()
