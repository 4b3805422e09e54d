"""The one scheduler: digests, feed polling and spike checks (APScheduler 3.11).

Jobs carry only primitive ids and are re-derived from our own tables by `sync`,
which runs at start-up and then every SYNC_SECONDS, so a restart or a web process
that opened an incident in another process loses nothing.
"""

from __future__ import annotations

import logging
import threading

from apscheduler.schedulers.background import BackgroundScheduler

from bot.runtime import Runtime

log = logging.getLogger(__name__)
SYNC_SECONDS = 30


class Scheduler:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        self._lock = threading.Lock()

    def start(self) -> None:
        """Register jobs from the tables and start the background thread."""
        self._scheduler.start()
        self.sync()
        self._scheduler.add_job(self.sync, "interval", seconds=SYNC_SECONDS, id="sync", replace_existing=True)

    def sync(self) -> None:
        """Make the scheduled jobs match the tables (open incidents, plan feeds)."""
        with self._lock:
            pass

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
