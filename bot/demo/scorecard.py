"""A drill's scorecard: when the bot alerted after the wave began, and when the team answered, against
War Room's post-mortem thresholds (the plan sets no targets yet). Read from the drill's database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from bot.background.runtime import Runtime
from bot.crisis import timeline
from bot.exports.report import SLOW_ACKNOWLEDGEMENT, SLOW_STATEMENT, build_report, duration_text
from models import Digest, Incident, SpikeAlert, TimelineEvent, transaction

if TYPE_CHECKING:
    from bot.demo.drill_setup import DrillSetup
    from bot.demo.replay import DrillRun


def _coordination(report: dict[str, Any] | None) -> dict[str, Any]:
    """The export's coordination metrics (bot/exports/tasks.py), or nothing when it has none."""
    section = next((s for s in (report or {}).get("sections", []) if s.key == "coordination_metrics"), None)
    return section.data if section is not None else {}


def _tasks_done_late(report: dict[str, Any] | None) -> str:
    figures = _coordination(report)
    return f"{figures['tasks_done_late']} of {figures['tasks']} tasks" if figures.get("tasks") else "no tasks"


def _updates_missed(report: dict[str, Any] | None) -> str:
    missed = _coordination(report).get("updates_missed", 0)
    return f"{missed} (overdue for the severity's update_minutes)" if missed else "none"


@dataclass(frozen=True)
class Scorecard:
    """How the drill went, from its database: when the bot alerted and when the team answered."""

    setup: DrillSetup
    began: datetime
    ended: datetime
    wall_seconds: float
    alerts: list[datetime]
    incident: dict[str, Any] | None = None  # the export's report of the first incident opened
    digests: list[datetime] = field(default_factory=list)  # when each digest of the incident was posted
    first_approval: datetime | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def opened_at(self) -> datetime | None:
        return datetime.fromisoformat(self.incident["incident"]["opened_at"]) if self.incident else None

    def figures(self) -> dict[str, float | None]:
        """The scorecard's durations in simulated seconds (None: it did not happen)."""
        opened = self.opened_at
        metrics = self.incident["metrics"] if self.incident else {}

        def seconds(start: datetime | None, end: datetime | None) -> float | None:
            return (end - start).total_seconds() if start and end else None

        statement = metrics.get("time_to_first_approved_statement")
        return {
            "first_alert_after_wave": seconds(self.began, self.alerts[0] if self.alerts else None),
            "open_after_first_alert": seconds(self.alerts[0] if self.alerts else None, opened),
            "open_after_wave": seconds(self.began, opened),
            "first_holding_statement_after_open": statement["seconds"] if statement else None,
            "first_approval_after_open": seconds(opened, self.first_approval),
        }

    def text(self) -> str:
        figures = self.figures()

        days = self.ended - self.began > timedelta(hours=20)  # a stream of days: times need their date

        def at(moment: datetime | None) -> str:
            return (f"{moment:%d %b %H:%M} UTC" if days else f"{moment:%H:%M} UTC") if moment else "—"

        def after(value: float | None, what: str) -> str:
            return f"{duration_text(value)} after {what}" if value is not None else "did not happen"

        def target(value: float | None, limit: timedelta) -> str:
            if value is None:
                return ""
            verdict = "met" if value <= limit.total_seconds() else "missed"
            return f"  (target {duration_text(limit.total_seconds())}: {verdict})"

        lines = [
            f"DRILL scorecard — {self.setup.incident_title}",
            f"stream: {self.setup.stream.path.name}, {self.setup.summary()}; took {duration_text(self.wall_seconds)}",
            f"{'the wave began':<26}{at(self.began)}  (the stream's first post)",
            f"{'first spike alert':<26}{at(self.alerts[0] if self.alerts else None)}  "
            f"{after(figures['first_alert_after_wave'], 'the wave began')} ({len(self.alerts)} in all)",
        ]
        if self.incident is None:
            lines.append(f"{'incident opened':<26}—  nobody opened an incident")
        else:
            report = self.incident
            metrics = report["metrics"]
            ack = metrics.get("time_to_first_acknowledgement")
            statement = figures["first_holding_statement_after_open"]
            approval = figures["first_approval_after_open"]
            resolved = metrics.get("time_to_resolve")
            planned = _coordination(report).get("first_statement_target_minutes")
            statement_target = timedelta(minutes=planned) if planned else SLOW_STATEMENT
            lines += [
                f"{'incident opened':<26}{at(self.opened_at)}  "
                + (after(figures["open_after_first_alert"], "the first alert") if self.alerts
                   else after(figures["open_after_wave"], "the wave began"))
                + f" (#{report['incident']['channel_name']})",
                f"{'first acknowledgement':<26}{at(_time(ack))}  "
                f"{after(ack['seconds'] if ack else None, 'opening')}"
                f"{target(ack['seconds'] if ack else None, SLOW_ACKNOWLEDGEMENT)}",
                f"{'first holding statement':<26}{at(_time(metrics.get('time_to_first_approved_statement')))}  "
                f"{after(statement, 'opening')}{target(statement, statement_target)} — the first approved draft",
                f"{'first approval':<26}{at(self.first_approval)}  {after(approval, 'opening')}",
                f"{'digests posted':<26}{len(self.digests)}"
                + (f"  at {', '.join(f'{moment:%H:%M}' for moment in self.digests)} UTC" if self.digests else ""),
                f"{'resolved':<26}{at(_time(resolved))}  {after(resolved['seconds'] if resolved else None, 'opening')}",
            ]
        lines += [
            f"{'tasks done late':<26}{_tasks_done_late(self.incident)}",
            f"{'updates missed':<26}{_updates_missed(self.incident)}",
            "targets: the severity's first_statement_minutes, else War Room's post-mortem thresholds",
        ]
        lines += [f"problem: {problem}" for problem in self.problems]
        return "\n".join(lines)


def _time(metric: dict[str, Any] | None) -> datetime | None:
    return datetime.fromisoformat(metric["at"]) if metric and metric.get("at") else None


def build_scorecard(runtime: Runtime, run: DrillRun, wall_seconds: float) -> Scorecard:
    with transaction(runtime.sessions) as session:
        # Alerts in the alert channel; a note into an open incident (volume doubled) is not a new alert.
        rows = session.execute(select(SpikeAlert.fired_at, SpikeAlert.figures).order_by(SpikeAlert.fired_at))
        alerts = [fired_at for fired_at, figures in rows if not (figures or {}).get("incidents")]
        incident = session.scalars(select(Incident).where(Incident.is_drill.is_(True))
                                   .order_by(Incident.opened_at, Incident.id)).first()
        if incident is None:
            return Scorecard(run.setup, run.began, run.now(), wall_seconds, alerts, problems=run.problems)
        report = build_report(session, incident.id, runtime.plan, {}, run.now())  # times only: no names
        digests = list(session.scalars(select(Digest.posted_at).where(Digest.incident_id == incident.id)
                                       .order_by(Digest.posted_at)))
        first_approval = session.scalar(
            select(func.min(TimelineEvent.at)).where(TimelineEvent.incident_id == incident.id,
                                                     TimelineEvent.kind == timeline.DRAFT_APPROVED))
    return Scorecard(run.setup, run.began, run.now(), wall_seconds, alerts, report,
                     digests=digests, first_approval=first_approval, problems=run.problems)


