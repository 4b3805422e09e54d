"""`warroom drill`: a recorded mention stream replayed into a practice incident on a simulated clock.

The stream is read and validated whole first (`bot.demo.stream`). Its times are shifted so its first
post is "now" (to the minute), and the drill's clock (`bot.infra.clock.DrillClock`) runs N× faster
than real time. The real
app runs on its own temporary database, so a drill never meets a real incident, its mentions never
reach a real digest or spike check, and what it leaves behind is its export and its scorecard.

`DrillRun` drives the replay. It posts each minute's posts through the real ingest path (`POST
/mentions` over HTTP, as a monitoring tool pushes them) and calls the scheduler's job bodies at their
simulated cadence (`Scheduler.periodic_jobs()`, and each open incident's digests when due), so spike
alerts and digests fire when they would have, and so will what later features add to that table. The
drill's clock stands still while the drill itself works, so every event is at exactly its simulated
moment however slow the machine.

The drill runs on a plan made from the one in force (`drill_plan`): channels are `<prefix>-drill-…`,
spike alerts go to the drill's own alert channel (`<prefix>-drill-alerts`, or the drill's
`alert_channel` when the plan names one), there are no feeds, and plan keys not known to be safe in
a drill (a publishing account, say) are left out. Its Slack client marks every message DRILL and
writes only to the drill's own channels (`handlers.drill_slack.DrillSlackClient`).

- Offline (no workspace configured, or `--offline`): Slack is the in-process emulator and a scripted
  team plays the plan's roles, like `warroom demo`.
- With a workspace (SLACK_BOT_TOKEN set): the drill is the bot for its duration, serving Slack on
  $PORT (or Socket Mode with SLACK_APP_TOKEN), and people respond for real. Point a practice Slack app
  at it: the live bot's app would send its requests to the live bot instead.
"""

import logging
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.background.runtime import Runtime, build_runtime
from bot.crisis.plan import Plan
from bot.demo.drill_setup import (  # noqa: F401 - re-exported: the drill's public names
    BUNDLED_STREAMS,
    DEFAULT_SPEED,
    DRILL_KEEPS,
    DRILL_REPLACES,
    DrillSetup,
    drill_plan,
    drill_prefix,
    plan_drill,
    stream_file,
)
from bot.demo.replay import DrillRun
from bot.demo.scorecard import Scorecard, build_scorecard
from bot.demo.slack_emulator import SlackEmulator
from bot.demo.stream import load_stream
from bot.demo.team import PEOPLE, SIGNING_SECRET, TEAM_ROLES, Team
from bot.infra.clock import DrillClock, real_now, running_on
from bot.infra.errors import CommandError
from bot.infra.settings import DEFAULT_LLM_MODEL, Settings
from bot.listening.mention_import import ProgressBar
from handlers.drill_slack import DrillSlackClient, open_alert_channel, post_drill_failure, post_drill_report
from models import Base, Incident, transaction
from models.incidents import RESOLVED

log = logging.getLogger(__name__)

BOT_TOKEN = "xoxb-drill-token"  # noqa: S105


# ---- running a drill ------------------------------------------------------------------------------------


def drill_progress(setup: DrillSetup) -> ProgressBar:
    """The drill's progress line on stderr: posts replayed, simulated time, alerts so far."""
    return ProgressBar(len(setup.stream.posts), label="drill", ends_at_total=False)


def write_exports(runtime: Runtime, incident_id: int, out_dir: Path) -> list[Path]:
    """All four formats of the incident's export into `out_dir`."""
    from bot.exports import FORMATS, export_filename, write_export
    from bot.exports.names import users_info_lookup

    out_dir.mkdir(parents=True, exist_ok=True)
    with transaction(runtime.sessions) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        names = {fmt: export_filename(incident, fmt) for fmt in FORMATS}
    written = []
    for fmt, name in names.items():
        path = out_dir / name
        with path.open("w", encoding="utf-8", newline="") as out:
            write_export(runtime.sessions, incident_id, fmt, runtime.plan, out, users_info_lookup(runtime.slack))
        written.append(path)
    return written


@contextmanager
def serve_app(runtime: Runtime, *, host: str = "127.0.0.1", port: int = 0,
              socket_mode_token: str | None = None) -> Iterator[str]:
    """The real Flask+Bolt app served by waitress, and its worker, on threads; yields its local URL."""
    from bot.server import InProcessApp

    app = InProcessApp(runtime, host=host, port=port, socket_mode_token=socket_mode_token).start()
    try:
        yield app.local_url
    finally:
        app.stop()


def offline_settings(database_url: str, api_url: str, ingest_token: str) -> Settings:
    """Every setting given explicitly, so nothing in the environment (an OpenAI key…) changes the drill."""
    return Settings(
        slack_bot_token=SecretStr(BOT_TOKEN), slack_signing_secret=SecretStr(SIGNING_SECRET), slack_app_token=None,
        slack_api_url=api_url, database_url=database_url, openai_api_key=None, openai_base_url=None,
        warroom_llm_model=DEFAULT_LLM_MODEL, warroom_plan=None, warroom_ingest_token=SecretStr(ingest_token),
        port=3000,
    )


def drill_client(settings: Settings, allowed: list[str]) -> DrillSlackClient:
    """The drill's Slack client: it marks every message DRILL and writes only to the drill's own channels."""
    from bot.background.runtime import make_slack_client

    return DrillSlackClient.like(make_slack_client(settings), allowed)


def drill_runtime(settings: Settings, plan: Plan, client: DrillSlackClient) -> Runtime:
    runtime = build_runtime(settings, plan, slack=client)
    runtime.drill = True
    return runtime


def _database(folder: str) -> str:
    from models import make_engine

    url = f"sqlite:///{Path(folder) / 'drill.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return url


@dataclass
class DrillResult:
    scorecard: Scorecard
    exports: list[Path]
    missing: list[str]
    failed: list[str]


TeamFactory = Callable[[DrillRun, SlackEmulator, str], Team]


def run_offline(setup: DrillSetup, plan: Plan, out_dir: Path, *, team: TeamFactory = Team,
                start: datetime | None = None, progress: bool = False,
                emulator: SlackEmulator | None = None) -> DrillResult:
    """The drill against the in-process Slack emulator with the scripted team; exports and scorecard in
    `out_dir`. `emulator` lets a caller watch Slack (tests); `start` fixes the drill's "now"."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="warroom-drill-") as folder, \
            (nullcontext(emulator) if emulator else SlackEmulator()) as slack_side:
        for user_id, (name, real_name) in PEOPLE.items():
            if user_id not in slack_side.users:
                slack_side.add_user(user_id, name, real_name=real_name, tz=plan.timezone)
        alerts = slack_side.add_channel(f"{drill_prefix(plan)}-alerts", list(PEOPLE))  # its id
        ingest_token = secrets.token_urlsafe(16)
        settings = offline_settings(_database(folder), slack_side.api_url, ingest_token)
        runtime = drill_runtime(settings, drill_plan(plan, alerts, TEAM_ROLES), drill_client(settings, [alerts]))
        clock = DrillClock(start or real_now().replace(second=0, microsecond=0), setup.speed)
        try:
            with running_on(clock), serve_app(runtime) as app_url:
                run = DrillRun(runtime, app_url, setup, clock, ingest_token=ingest_token,
                               progress=drill_progress(setup) if progress else None)
                players = team(run, slack_side, alerts)
                run.on_event = players.show
                try:
                    players.play()
                except (AssertionError, LookupError, RuntimeError, httpx.HTTPError) as exc:
                    players.failed.append(str(exc).splitlines()[0])
                    players.say(f"\n  (the drill stopped: {str(exc).splitlines()[0]})")
                run.finish()
                scorecard = build_scorecard(runtime, run, time.monotonic() - started)
                exports = (write_exports(runtime, _incident_id(scorecard), out_dir)
                           if scorecard.incident is not None else [])
            if slack_side.errors:
                players.failed += [f"Slack would refuse: {error}" for error in slack_side.errors]
        finally:
            runtime.engine.dispose()
    return DrillResult(scorecard, exports, players.missing, players.failed + run.problems)


def _incident_id(scorecard: Scorecard) -> int:
    assert scorecard.incident is not None
    return int(scorecard.incident["incident"]["id"])


def run_in_workspace(setup: DrillSetup, plan: Plan, settings: Settings, out_dir: Path, *, progress: bool,
                     say: Callable[[str], None]) -> DrillResult:
    """The drill in a real workspace: this process is the bot until the drill ends, people respond for
    real. It ends when the stream is over and every incident it opened is resolved (or at Ctrl-C)."""

    settings.require("slack_bot_token")
    if not settings.socket_mode:
        settings.require("slack_signing_secret")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="warroom-drill-") as folder:
        ingest_token = secrets.token_urlsafe(16)
        settings = settings.model_copy(update={"database_url": _database(folder),
                                               "warroom_ingest_token": SecretStr(ingest_token)})
        client = drill_client(settings, [])
        alert_channel = open_alert_channel(client, setup.alert_channel, f"{drill_prefix(plan)}-alerts",
                                           [m for role in plan.roles.values() for m in role.members])
        runtime = drill_runtime(settings, drill_plan(plan, alert_channel), client)
        clock = DrillClock(real_now().replace(second=0, microsecond=0), setup.speed)
        app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
        try:
            with running_on(clock), serve_app(runtime, host="0.0.0.0", port=settings.port,  # noqa: S104
                                              socket_mode_token=app_token) as app_url:
                run = DrillRun(runtime, app_url, setup, clock, ingest_token=ingest_token,
                               progress=drill_progress(setup) if progress else None)
                say(f"drill: alerts go to <#{alert_channel}>; Slack's requests to this process "
                    + ("over Socket Mode" if app_token else f"on port {settings.port}"))
                try:
                    run.run_to_end()
                    if _unresolved(runtime):
                        say("\ndrill: the stream is over; it ends when every drill incident is resolved "
                            "(Ctrl-C ends it now)")
                    while _unresolved(runtime):
                        run.wait(1)
                except KeyboardInterrupt:
                    say("\ndrill: stopped; writing what happened so far")
                run.finish()
                scorecard = build_scorecard(runtime, run, time.monotonic() - started)
                exports = (write_exports(runtime, _incident_id(scorecard), out_dir)
                           if scorecard.incident is not None else [])
        finally:
            runtime.engine.dispose()
    return DrillResult(scorecard, exports, [], run.problems)


def _unresolved(runtime: Runtime) -> bool:
    with transaction(runtime.sessions) as session:
        return session.scalar(select(func.count()).select_from(Incident).where(Incident.status != RESOLVED)) != 0


# ---- `warroom drill` ------------------------------------------------------------------------------------


def _setup(arguments: Any, plan: Plan, plan_file: Path) -> DrillSetup:
    """The stream and options the command line asked for (a plan drill's name, or a stream file)."""
    given = Path(arguments.stream)
    if arguments.stream in plan.drills and not given.exists():
        setup = plan_drill(plan, arguments.stream, plan_file)
    elif not given.exists():
        raise CommandError(f"{given}: no such file, and not a drill in the plan "
                           f"(its drills: {', '.join(sorted(plan.drills)) or 'none'})")
    else:
        defaults = {"platform": arguments.platform} if arguments.platform else {}
        setup = DrillSetup(load_stream(given, defaults), platform=arguments.platform)
    overrides = {key: getattr(arguments, key) for key in ("speed", "title", "playbook")
                 if getattr(arguments, key) is not None}
    setup = DrillSetup(**{**setup.__dict__, **overrides})
    if setup.speed <= 0:
        raise CommandError("--speed: give a number above 0 (60 replays an hour in a minute)")
    if setup.playbook is not None and setup.playbook not in plan.playbooks:
        raise CommandError(f"--playbook {setup.playbook}: not a playbook in the plan "
                           f"(its playbooks: {', '.join(plan.playbooks) or 'none'})")
    return setup


def drill_command(arguments: Any, out: TextIO = sys.stdout) -> int:
    """`warroom drill`: 0 when the drill ran through, 1 when a step failed, 2 on bad input (CommandError)."""
    from bot.crisis.plan import load_plan, plan_path
    from bot.infra.settings import load_settings

    settings = load_settings()
    plan_file = plan_path(settings.warroom_plan)
    plan = Plan.model_validate_json(sys.stdin.read()) if arguments.plan_from_stdin else load_plan(plan_file)
    setup = _setup(arguments, plan, plan_file)
    if arguments.report_to:
        # `/crisis drill`'s child: the export and scorecard go to Slack, and nothing stays on the server's disk.
        with tempfile.TemporaryDirectory(prefix="warroom-drill-report-") as folder:
            return _drill(arguments, setup, plan, settings, Path(folder), out)
    return _drill(arguments, setup, plan, settings, arguments.out, out)


def _drill(arguments: Any, setup: DrillSetup, plan: Plan, settings: Settings, out_dir: Path, out: TextIO) -> int:
    offline = arguments.offline or settings.slack_bot_token is None

    def say(line: str) -> None:
        if not arguments.quiet:
            print(line, file=sys.stderr, flush=True)

    where = "offline, with a scripted team" if offline else "in Slack: people respond for real"
    say(f"drill: {setup.summary()}, {where}")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # the app's INFO logs would break the progress line
    try:
        if offline:
            result = run_offline(setup, plan, out_dir, progress=not arguments.quiet)
        else:
            result = run_in_workspace(setup, plan, settings, out_dir, progress=not arguments.quiet, say=say)
    except Exception as exc:
        if arguments.report_to:

            post_drill_failure(settings, arguments.report_to, setup.incident_title, exc)
        raise
    finally:
        root.setLevel(level)
    out_dir.mkdir(parents=True, exist_ok=True)
    scorecard_file = out_dir / "scorecard.txt"
    scorecard_file.write_text(result.scorecard.text() + "\n", encoding="utf-8")
    if arguments.report_to:

        post_drill_report(settings, arguments.report_to, result.scorecard, result.exports)
    print(result.scorecard.text(), file=out)
    for path in [*result.exports, scorecard_file]:
        print(f"wrote {path}", file=out)
    return exit_code(result, "warroom drill")


def exit_code(result: DrillResult, program: str) -> int:
    """Say on stderr what the scripted team could not do (a step not built, a step that failed); 1 if any."""
    for problem in result.missing:
        print(f"{program}: not built yet: {problem}", file=sys.stderr)
    for problem in result.failed:
        print(f"{program}: {problem}", file=sys.stderr)
    return 1 if result.failed or result.missing else 0
