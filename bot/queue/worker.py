"""The worker: runs the jobs that web processes acknowledged to Slack and queued in the database.

`warroom serve` starts one as a child process at a lower CPU priority (`nice`), so under load the
web threads that ack Slack within its 3 seconds always come first and the slow work (many Slack
calls, the LLM, uploads) takes what is left. Tests and the demo run one on threads in-process.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.background.runtime import Runtime
from bot.infra.errors import AlreadyTold, describe, is_transient
from bot.infra.metrics import JOB_OUTCOMES
from bot.queue import jobs
from models import transaction
from models.jobs import FAILED

log = logging.getLogger(__name__)

JobRunner = Callable[[Runtime, str, dict[str, Any]], None]
# Told when a job has failed for good (`reason` in a person's words), so its requester hears once.
JobFailed = Callable[[Runtime, str, dict[str, Any], str], None]
IDLE_POLL_SECONDS = 0.2


def _log_only(_runtime: Runtime, kind: str, _payload: dict[str, Any], reason: str) -> None:
    log.error("a %s job failed for good: %s", kind, reason)


class Worker:
    """`threads` loops that claim a job, run it with `run_job`, and record the outcome.

    The one failure policy: a job that returns is done; one that raises a transient failure (a
    database or Slack outage) is tried again with back-off up to MAX_ATTEMPTS; anything else, or the
    last attempt, is FAILED and `tell_failure` tells its requester once. A heartbeat thread keeps
    the running jobs' heartbeat fresh, and a sweep puts back (or, after MAX_ATTEMPTS, fails and
    tells) the jobs of workers that died. `stop` hands unfinished jobs back at once."""

    def __init__(self, runtime: Runtime, run_job: JobRunner, *, threads: int = 4,
                 poll_seconds: float = IDLE_POLL_SECONDS, tell_failure: JobFailed = _log_only) -> None:
        self.runtime = runtime
        self.run_job = run_job
        self.tell_failure = tell_failure
        self.poll_seconds = poll_seconds
        self.name = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"worker-{n}", daemon=True) for n in range(threads)
        ]
        self._heart = threading.Thread(target=self._beat_forever, name="worker-heartbeat", daemon=True)
        self._in_hand: dict[int, jobs.ClaimedJob] = {}
        self._in_hand_lock = threading.Lock()
        self._last_sweep = float("-inf")  # the first loop sweeps at once, whatever the host's uptime
        self._sweep_lock = threading.Lock()

    def start(self) -> Worker:
        for thread in self._threads:
            thread.start()
        self._heart.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the jobs in hand within `timeout`, hand back the rest at once, and stop."""
        self._stop.set()
        self.runtime.work_available.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._in_hand_lock:
            unfinished = list(self._in_hand.values())
        for job in unfinished:
            try:
                with transaction(self.runtime.sessions) as session:
                    handed = jobs.hand_back(session, job, self.name)
            except SQLAlchemyError:
                log.warning("could not hand back job %d; it is taken up when its heartbeat goes stale", job.id)
                continue
            if handed:
                log.warning("stopping: handed job %d (%s) back to the queue unfinished", job.id, job.kind)

    def run_once(self) -> bool:
        """Claim and run one job; False when there was none."""
        with transaction(self.runtime.sessions) as session:
            job = jobs.claim_next(session, self.name)
        if job is None:
            return False
        with self._in_hand_lock:
            self._in_hand[job.id] = job
        try:
            self._run(job)
        finally:
            with self._in_hand_lock:
                self._in_hand.pop(job.id, None)
        return True

    def _run(self, job: jobs.ClaimedJob) -> None:
        # The outcome is recorded inside the job's context too, so its log lines name the job.
        with jobs.running(job.id):
            try:
                self.run_job(self.runtime, job.kind, job.payload)
            except Exception as exc:  # a job must never take its worker thread down
                transient = is_transient(exc)
                log.exception("job %d (%s) failed on attempt %d (%s)", job.id, job.kind, job.attempts,
                              "transient" if transient else "permanent")
                with transaction(self.runtime.sessions) as session:
                    status = jobs.fail(session, job, self.name, f"{type(exc).__name__}: {exc}"[:2000],
                                       retry=transient)
                if status:
                    JOB_OUTCOMES.labels(job.kind, "failed" if status == FAILED else "retried").inc()
                if status == FAILED and not isinstance(exc, AlreadyTold):
                    self._tell(job, describe(exc))
                return
            with transaction(self.runtime.sessions) as session:
                finished = jobs.finish(session, job, self.name)
            if finished:
                JOB_OUTCOMES.labels(job.kind, "done").inc()
            else:
                log.warning("job %d (%s) was taken over by another worker before it finished here",
                            job.id, job.kind)

    def _tell(self, job: jobs.ClaimedJob, reason: str) -> None:
        try:
            self.tell_failure(self.runtime, job.kind, job.payload, reason)
        except Exception:  # Slack itself unreachable: the log and the job's row are all that is left
            log.exception("could not tell the requester that job %d (%s) failed", job.id, job.kind)

    def sweep(self) -> jobs.Recovered:
        """Put back the jobs of workers that died; fail and tell those that used up their attempts."""
        with transaction(self.runtime.sessions) as session:
            recovered = jobs.requeue_stale(session)
            jobs.purge_finished(session)
        if recovered.requeued:
            log.warning("requeued %d job(s) whose worker stopped mid-run", recovered.requeued)
            self.runtime.work_available.set()
        for job in recovered.exhausted:
            JOB_OUTCOMES.labels(job.kind, "failed").inc()
            self._tell(job, "it stopped its worker every time it ran")
        return recovered

    def _sweep_when_due(self) -> None:
        with self._sweep_lock:
            if time.monotonic() - self._last_sweep < jobs.SWEEP_SECONDS:
                return
            self._last_sweep = time.monotonic()
        self.sweep()

    def _beat_forever(self) -> None:
        while not self._stop.wait(jobs.HEARTBEAT_SECONDS):
            with self._in_hand_lock:
                job_ids = list(self._in_hand)
            try:
                with transaction(self.runtime.sessions) as session:
                    jobs.beat(session, self.name, job_ids)
            except SQLAlchemyError as exc:
                log.warning("worker heartbeat failed: %s", type(exc).__name__)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._sweep_when_due()
                if self.run_once():
                    continue
            except SQLAlchemyError as exc:
                # The database is down or busy: nothing is lost (jobs are rows); try again shortly.
                log.warning("worker cannot reach the database: %s", type(exc).__name__)
                self._stop.wait(2.0)
                continue
            woken = self.runtime.work_available.wait(self.poll_seconds)
            if woken:
                self.runtime.work_available.clear()


def run_worker_process(runtime: Runtime, run_job: JobRunner, *, threads: int, stop: threading.Event,
                       parent_pid: int | None = None, tell_failure: JobFailed = _log_only) -> None:
    """Run a worker until `stop` is set, or until the parent process (a `serve`) has gone."""
    worker = Worker(runtime, run_job, threads=threads, tell_failure=tell_failure).start()
    log.info("worker %s running %d thread(s)", worker.name, threads)
    try:
        while not stop.wait(1.0):
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("the serve process that started this worker is gone; stopping")
                break
    finally:
        worker.stop()
