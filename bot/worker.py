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

from bot import jobs
from bot.runtime import Runtime
from models import transaction

log = logging.getLogger(__name__)

JobRunner = Callable[[Runtime, str, dict[str, Any]], None]
IDLE_POLL_SECONDS = 0.2
MAINTENANCE_SECONDS = 60.0


class Worker:
    """`threads` loops that claim a job, run it with `run_job`, and record the outcome."""

    def __init__(self, runtime: Runtime, run_job: JobRunner, *, threads: int = 4,
                 poll_seconds: float = IDLE_POLL_SECONDS) -> None:
        self.runtime = runtime
        self.run_job = run_job
        self.poll_seconds = poll_seconds
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"worker-{n}", daemon=True) for n in range(threads)
        ]
        self._last_maintenance = 0.0
        self._maintenance_lock = threading.Lock()

    def start(self) -> Worker:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the jobs in hand and stop; queued jobs stay queued for the next worker."""
        self._stop.set()
        self.runtime.work_available.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def run_once(self) -> bool:
        """Claim and run one job; False when there was none."""
        with transaction(self.runtime.sessions) as session:
            job = jobs.claim_next(session, self.name)
        if job is None:
            return False
        try:
            with jobs.running(job.id):
                self.run_job(self.runtime, job.kind, job.payload)
        except Exception as exc:  # a job must never take its worker thread down
            log.exception("job %d (%s) failed on attempt %d", job.id, job.kind, job.attempts)
            with transaction(self.runtime.sessions) as session:
                jobs.fail(session, job.id, f"{type(exc).__name__}: {exc}"[:2000], job.attempts)
            return True
        with transaction(self.runtime.sessions) as session:
            jobs.finish(session, job.id)
        return True

    def _maintain(self) -> None:
        with self._maintenance_lock:
            if time.monotonic() - self._last_maintenance < MAINTENANCE_SECONDS:
                return
            self._last_maintenance = time.monotonic()
        with transaction(self.runtime.sessions) as session:
            requeued = jobs.requeue_stale(session)
            jobs.purge_finished(session)
        if requeued:
            log.warning("requeued %d job(s) whose worker stopped mid-run", requeued)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._maintain()
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
                       parent_pid: int | None = None) -> None:
    """Run a worker until `stop` is set, or until the parent process (a `serve`) has gone."""
    worker = Worker(runtime, run_job, threads=threads).start()
    log.info("worker %s running %d thread(s)", worker.name, threads)
    try:
        while not stop.wait(1.0):
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("the serve process that started this worker is gone; stopping")
                break
    finally:
        worker.stop()
