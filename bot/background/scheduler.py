"""The one scheduler: digests, feed polling and spike checks (APScheduler 3.11).

Jobs carry only primitive ids and are re-derived from our own tables by `sync`,
which runs at start-up and then every SYNC_SECONDS, so a restart or a web process
that opened an incident in another process loses nothing.

- `digest:<incident id>` — a date job at the incident's `next_digest_at`. Running it claims the
  due digest with a compare-and-set on `next_digest_at` (so two processes never both post) and
  moves it to the next time on the severity's cadence after now: a digest that came due while no
  scheduler ran is posted once at start-up, not once per missed window.
- `feeds` — polls the plan's feeds every `feeds.poll_minutes`.
- `spikes` — the brand-wide spike check, every `feeds.poll_minutes` (at most the spike window).
- `update-reminders` — every minute, reminds each open incident's lead once when its stakeholder update is
  overdue for the severity's `update_minutes` (bot.flows.updates).
- `task-reminders` — every minute, the overdue tasks' reminders (their state is in the tasks table).
- `archive-channels` — when the plan sets `channel.archive_after_days`, archives resolved channels.

`periodic_jobs()` is the table of the fixed-cadence jobs; a drill runs the same table on its simulated
clock, so a job added there fires in drills too.

The job bodies (`run_due_digests`, `run_digest`, `poll_feeds`, `check_spikes`) take `now` and can be
called directly, so tests never wait on the clock. They post through the flows `bot.flows.digests`
and `bot.flows.alerts`, on the Slack port the composition root hands the scheduler.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from bot.background.runtime import Runtime
from bot.flows.alerts import check_spikes
from bot.flows.digests import post_digest
from bot.flows.port import SlackPort
from bot.flows.tasks import archive_due_channels, send_due_nudges
from bot.infra.logs import about_incident
from bot.listening.digests import claim_due_digest, digest_due_times
from models import Incident, transaction, utcnow
from models.incidents import OPEN

log = logging.getLogger(__name__)
SYNC_SECONDS = 30
UPDATE_REMINDER_EVERY = timedelta(minutes=1)
DIGEST_PREFIX = "digest:"
TASK_REMINDER_EVERY = timedelta(minutes=1)
ARCHIVE_EVERY = timedelta(minutes=30)


@dataclass(frozen=True)
class PeriodicJob:
    """A job body run every `every`: `run(now)`. `at_start`: also once as the scheduler starts."""

    name: str
    every: timedelta
    run: Callable[[datetime], object]
    at_start: bool = False


class Scheduler:
    def __init__(self, runtime: Runtime, port: SlackPort) -> None:
        self.runtime = runtime
        self.port = port
        # misfire_grace_time=None: a job that runs late (a busy or suspended process) still runs.
        self._scheduler = BackgroundScheduler(
            timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        )
        self._lock = threading.Lock()
        self._due: dict[str, datetime] = {}

    def start(self) -> None:
        """Register jobs from the tables and start the background thread."""
        self._scheduler.start()
        self.sync()
        self._scheduler.add_job(self.sync, "interval", seconds=SYNC_SECONDS, id="sync", replace_existing=True)
        for job in self.periodic_jobs():
            self._scheduler.add_job(self._run_periodic, "interval", seconds=job.every.total_seconds(), args=[job],
                                    id=job.name, replace_existing=True,
                                    next_run_time=utcnow() if job.at_start else None)

    def periodic_jobs(self) -> list[PeriodicJob]:
        """The jobs that run on a fixed cadence (a drill runs these same ones on its simulated clock)."""
        plan = self.runtime.plan
        every = timedelta(minutes=plan.feeds.poll_minutes)
        jobs = []
        if plan.feeds.rss or plan.feeds.mastodon or plan.feeds.bluesky:
            jobs.append(PeriodicJob("feeds", every, self.poll_feeds, at_start=True))
        jobs.append(PeriodicJob("spikes", min(every, timedelta(minutes=plan.spike.window_minutes)), self.check_spikes))
        jobs.append(PeriodicJob("update-reminders", UPDATE_REMINDER_EVERY, self.remind_updates))
        jobs.append(PeriodicJob("task-reminders", TASK_REMINDER_EVERY, self.send_task_reminders, at_start=True))
        if plan.channel.archive_after_days is not None:
            jobs.append(PeriodicJob("archive-channels", ARCHIVE_EVERY, self.archive_channels, at_start=True))
        return jobs

    def sync(self) -> None:
        """Make the scheduled jobs match the tables (open incidents, plan feeds)."""
        with self._lock:
            with transaction(self.runtime.sessions) as session:
                due = {f"{DIGEST_PREFIX}{incident_id}": at
                       for incident_id, at in digest_due_times(session, self.runtime.plan).items()}
            now = utcnow()
            for job in self._scheduler.get_jobs():
                if job.id.startswith(DIGEST_PREFIX) and job.id not in due:
                    job.remove()
                    self._due.pop(job.id, None)
            for job_id, at in due.items():
                if self._due.get(job_id) == at and self._scheduler.get_job(job_id) is not None:
                    continue
                # A past due time runs now: APScheduler would otherwise count it as missed.
                self._scheduler.add_job(self._job_digest, "date", run_date=max(at, now), id=job_id,
                                        args=[int(job_id.removeprefix(DIGEST_PREFIX))], replace_existing=True)
                self._due[job_id] = at

    def job_ids(self) -> list[str]:
        """Ids of the registered jobs (for tests and logs)."""
        return sorted(job.id for job in self._scheduler.get_jobs())

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    # ---- job bodies, callable directly ---------------------------------------------------------

    def run_digest(self, incident_id: int, now: datetime) -> int | None:
        """Post the incident's digest if it is due and this process wins the claim; the Digest id."""
        with about_incident(incident_id):  # its log lines name the incident
            with transaction(self.runtime.sessions) as session:
                claimed = claim_due_digest(session, self.runtime.plan, incident_id, now)
            if not claimed:
                return None
            return post_digest(self.runtime, self.port, incident_id, now=now)

    def run_due_digests(self, now: datetime) -> list[int]:
        """Post every open incident's due digest; the ids of the digests posted."""
        with transaction(self.runtime.sessions) as session:
            candidates = list(session.scalars(select(Incident.id).where(Incident.status == OPEN)))
        posted = []
        for incident_id in candidates:
            digest_id = self.run_digest(incident_id, now)
            if digest_id is not None:
                posted.append(digest_id)
        return posted

    def poll_feeds(self, now: datetime) -> int:
        """Poll every feed of the plan once; how many new mentions were stored."""
        from bot.listening.bluesky import poll_bluesky_feeds
        from bot.listening.feeds import poll_feeds

        results = poll_feeds(self.runtime.sessions, self.runtime.plan, now,
                             allow=self.runtime.settings.feed_allow_hosts)
        results += poll_bluesky_feeds(self.runtime.sessions, self.runtime.plan, now)
        return sum(result.accepted for result in results)

    def check_spikes(self, now: datetime) -> str | None:
        """Check for a brand-wide spike and alert when due (`bot.flows.alerts`); the alert's message ts."""
        return check_spikes(self.runtime, self.port, now)

    def remind_updates(self, now: datetime) -> int:
        """Remind each open incident's lead once when its stakeholder update is overdue; how many were."""
        from bot.flows.updates import remind_overdue_updates

        return remind_overdue_updates(self.runtime, self.port, now)
    def send_task_reminders(self, now: datetime) -> int:
        """Nudge the owners, then the rooms, of overdue tasks (state in the tasks table); how many were sent."""
        return send_due_nudges(self.runtime, self.port, now)

    def archive_channels(self, now: datetime) -> int:
        """Archive channels resolved `channel.archive_after_days` ago; how many were archived."""
        return archive_due_channels(self.runtime, self.port, now)

    # ---- APScheduler entry points: log, never raise into the scheduler thread --------------------

    def _job_digest(self, incident_id: int) -> None:
        try:
            self.run_digest(incident_id, utcnow())
        except Exception:
            log.exception("scheduled digest of incident %d failed", incident_id)
        finally:
            # Schedule the next one from the moved next_digest_at (the 30-s sync would too, later).
            self.sync()

    @staticmethod
    def _run_periodic(job: PeriodicJob) -> None:
        try:
            job.run(utcnow())
        except Exception:
            log.exception("scheduled job %s failed", job.name)
