"""`DrillRun`: feeds a drill's stream to the app over HTTP and runs the scheduler's jobs on the drill's clock."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select

from bot.background.runtime import Runtime
from bot.background.scheduler import Scheduler
from bot.demo.drill_setup import DrillSetup
from bot.demo.stream import webhook_item
from bot.exports.report import duration_text
from bot.infra.clock import DrillClock
from bot.listening.mention_import import ProgressBar
from bot.listening.mentions import NewMention
from models import SpikeAlert, transaction

log = logging.getLogger(__name__)

# A monitoring tool pushes what it saw every so often; the drill delivers each minute's posts together.
DELIVERY = timedelta(minutes=1)
INGEST_BATCH = 1000


# ---- the replay ---------------------------------------------------------------------------------------


class DrillRun:
    """Feeds the stream to the app and runs the scheduler's jobs, on the drill's clock."""

    def __init__(self, runtime: Runtime, app_url: str, setup: DrillSetup, clock: DrillClock, *,
                 ingest_token: str, progress: ProgressBar | None = None,
                 on_event: Callable[[], None] | None = None) -> None:
        self.runtime = runtime
        self.app_url = app_url
        self.setup = setup
        self.clock = clock
        self.ingest_token = ingest_token
        self.progress = progress
        self.on_event = on_event
        self.posts = setup.stream.shifted(clock.now())
        self.began = self.posts[0].created_at
        self.end = self.posts[-1].created_at
        self.delivered = 0
        from handlers.slack_gateway import job_gateway

        # Never started: the drill calls its job bodies itself. On the drill's client, so DRILL on every post.
        self.scheduler = Scheduler(runtime, job_gateway(runtime))
        self.http = httpx.Client(timeout=60)  # one connection pool: a client per post costs ~50 ms
        self.jobs = [(job, self.began if job.at_start else self.began + job.every)
                     for job in self.scheduler.periodic_jobs()]
        self.problems: list[str] = []

    def now(self) -> datetime:
        return self.clock.now()

    def alerts(self) -> int:
        with transaction(self.runtime.sessions) as session:
            return int(session.scalar(select(func.count()).select_from(SpikeAlert)) or 0)

    def last_alert(self) -> datetime | None:
        with transaction(self.runtime.sessions) as session:
            return session.scalar(select(func.max(SpikeAlert.fired_at)))

    def _next_delivery(self) -> datetime | None:
        if self.delivered >= len(self.posts):
            return None
        late = self.posts[self.delivered].created_at - self.began
        steps = -(-late // DELIVERY)  # the first delivery at or after the post
        return self.began + DELIVERY * steps

    def _next_digest(self) -> datetime | None:
        from bot.listening.digests import digest_due_times

        with transaction(self.runtime.sessions) as session:
            due = digest_due_times(session, self.runtime.plan).values()
        return min(due, default=None)

    def run_until(self, when: datetime, stop: Callable[[], bool] | None = None) -> bool:
        """Replay up to `when`; with `stop`, until it says so after an event. True when `stop` ended it."""
        while True:
            candidates = [when, self._next_delivery(), self._next_digest(), *(at for _, at in self.jobs)]
            at = max(min(moment for moment in candidates if moment is not None), self.now())
            self.clock.sleep_until(at)
            self._deliver(at)
            for index, (job, due) in enumerate(self.jobs):
                if due <= at:
                    self._guarded(job.name, job.run, at)
                    self.jobs[index] = (job, due + job.every)
            self._guarded("digests", self.scheduler.run_due_digests, at)
            self._draw()
            if self.on_event is not None:
                self.on_event()
            if stop is not None and stop():
                return True
            if at >= when:
                return False

    def wait(self, minutes: float) -> None:
        """Let `minutes` of simulated time pass (the stream and the jobs carry on)."""
        self.run_until(self.now() + timedelta(minutes=minutes))

    @property
    def stream_over(self) -> datetime:
        """When the last post has been delivered."""
        return self.end + DELIVERY

    def run_until_alert(self) -> bool:
        """Replay until a spike alert fires; False when the stream ended without one."""
        before = self.alerts()
        return self.run_until(self.stream_over, stop=lambda: self.alerts() > before)

    def run_to_end(self) -> None:
        """Replay the rest of the stream."""
        self.run_until(max(self.stream_over, self.now()))

    def finish(self) -> None:
        self.http.close()
        if self.progress is not None:
            self.progress(self.delivered, self._note, force=True)
            self.progress.finish()

    def _guarded(self, what: str, job: Callable[[datetime], object], at: datetime) -> None:
        # Like the scheduler's own threads: a failing job is logged and the drill carries on.
        try:
            job(at)
        except Exception as exc:
            log.exception("drill: %s failed", what)
            self.problems.append(f"{what} failed at {self.now():%H:%M} UTC: {exc}")

    def _deliver(self, at: datetime) -> None:
        due: list[NewMention] = []
        while self.delivered + len(due) < len(self.posts) and self.posts[self.delivered + len(due)].created_at <= at:
            due.append(self.posts[self.delivered + len(due)])
        for start in range(0, len(due), INGEST_BATCH):
            batch = due[start : start + INGEST_BATCH]
            response = self.http.post(f"{self.app_url}/mentions", json={"mentions": [webhook_item(p) for p in batch]},
                                      headers={"Authorization": f"Bearer {self.ingest_token}"})
            if response.status_code != 202:
                raise RuntimeError(f"POST /mentions answered {response.status_code}: "
                                   f"{' '.join(response.text.split())[:200]}")
        self.delivered += len(due)

    def _note(self) -> str:
        now = self.now()
        alerts = self.alerts()
        return (f" posts · {now:%d %b %H:%M} UTC, +{duration_text((now - self.began).total_seconds())} · "
                f"{alerts} alert{'s' if alerts != 1 else ''}")

    def _draw(self) -> None:
        if self.progress is not None:
            self.progress(self.delivered, self._note)


