"""The `warroom` command line. Every failure is one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bot.crisis.plan import PlanError, load_plan, plan_path
from bot.infra.database import SchemaNotReady
from bot.infra.errors import CommandError
from bot.infra.logs import configure_logging
from bot.infra.settings import Settings, SettingsError, load_log_settings, load_settings
from bot.publishing.accounts import describe_accounts

EXIT_USAGE = 2




def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="warroom", description="War Room: a Slack war room for social-media crises.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the bot (HTTP on $PORT, or Socket Mode)")
    serve.add_argument("--no-scheduler", action="store_true", help="do not run the scheduler in this process")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")  # noqa: S104
    serve.add_argument("--threads", type=int, default=16, help="HTTP threads (default 16)")
    serve.add_argument("--worker-threads", type=int, default=4,
                       help="threads of the worker child process that runs acknowledged work (default 4; "
                       "0: no worker here, run `warroom worker` elsewhere)")

    worker = commands.add_parser("worker", help="run only a worker (acknowledged slash-command work)")
    worker.add_argument("--threads", type=int, default=4, help="worker threads (default 4)")
    worker.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority by N")
    worker.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)

    commands.add_parser("scheduler", help="run only the scheduler (digests, feed polling, spike checks)")

    db = commands.add_parser("db", help="database migrations")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="apply migrations (alembic upgrade head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    downgrade = db_commands.add_parser("downgrade", help="undo migrations down to REVISION")
    downgrade.add_argument("revision")
    db_commands.add_parser("current", help="show the database's revision")

    plan = commands.add_parser("plan", help="crisis plan")
    plan_commands = plan.add_subparsers(dest="plan_command", required=True, metavar="ACTION")
    check = plan_commands.add_parser("check", help="validate a plan")
    check.add_argument("file", nargs="?", type=Path, help="plan file (default: $WARROOM_PLAN, plan.yml, the example)")

    mentions = commands.add_parser("mentions", help="mentions")
    mention_commands = mentions.add_subparsers(dest="mentions_command", required=True, metavar="ACTION")
    imp = mention_commands.add_parser("import", help="import mentions from a CSV file")
    imp.add_argument("file", type=Path)
    score = mention_commands.add_parser("score", help="score a CSV of posts (column `text`): label,score per row")
    score.add_argument("file", type=Path)
    fixes = mention_commands.add_parser(
        "corrections", help="write monitors' sentiment corrections as labelled CSV (id,text,label,created_at,source)")
    fixes.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")

    export = commands.add_parser("export", help="write an incident's timeline export")
    export.add_argument("incident", help="incident id or channel name")
    export.add_argument("--format", choices=["md", "html", "json", "csv"], default="md")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")

    drill = commands.add_parser(
        "drill", help="replay a recorded mention stream into a practice incident on a simulated clock",
        description="Replay a recorded mention stream (JSON lines or CSV with the webhook's fields) into a "
        "practice incident, N times faster than real time; every message says DRILL. Offline (the built-in "
        "Slack emulator and a scripted team) unless a workspace is configured. Writes the export and a "
        "scorecard.")
    drill.add_argument("stream", help="a stream file, or the name of a drill in the plan's `drills`")
    drill.add_argument("--speed", type=float, help="times faster than real time (default 60: an hour a minute)")
    drill.add_argument("--title", help="the practice incident's title")
    drill.add_argument("--playbook", help="the practice incident's playbook")
    drill.add_argument("--platform", help="platform of rows that name none (the tweet dev sets: x)")
    drill.add_argument("--out", type=Path, default=Path("warroom-drill"), help="folder for the export and scorecard")
    drill.add_argument("--offline", action="store_true",
                       help="use the built-in Slack emulator and scripted team even when a workspace is configured")
    drill.add_argument("--quiet", action="store_true", help="no progress line")
    drill.add_argument("--report-to", help=argparse.SUPPRESS)  # /crisis drill: the channel to report to
    drill.add_argument("--plan-from-stdin", action="store_true", help=argparse.SUPPRESS)

    demo = commands.add_parser("demo", help="run a whole crisis offline and write its exports")
    demo.add_argument("--out", type=Path, default=Path("warroom-demo"), help="folder for the exports")
    demo.add_argument("--quiet", action="store_true", help="print only where the exports went")
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command == "plan":
        settings = load_settings()
        path = args.file or plan_path(settings.warroom_plan)
        plan = load_plan(path)
        print(f"{path}: ok — {plan.brand.name}, {len(plan.roles)} roles, {len(plan.playbooks)} playbooks")
        for line in describe_accounts(plan):  # which accounts, and whether their variables are set (not values)
            print(line)
        return 0
    if args.command == "drill":
        from bot.demo.drill import drill_command

        return drill_command(args)
    if args.command == "demo":
        from bot.demo.script import run_demo

        return run_demo(out_dir=args.out, quiet=args.quiet)
    if args.command == "mentions" and args.mentions_command == "score":
        from bot.listening.mention_import import score_csv

        return score_csv(args.file, sys.stdout)

    settings = load_settings()
    if args.command == "serve":
        own_metrics_dir = _share_metrics_between_processes(settings)
        from bot.server import serve

        try:
            serve(settings, scheduler=not args.no_scheduler, worker_threads=args.worker_threads, host=args.host,
                  threads=args.threads)
        finally:
            if own_metrics_dir is not None:
                shutil.rmtree(own_metrics_dir, ignore_errors=True)
        return 0
    if args.command == "worker":
        from bot.server import run_worker

        run_worker(settings, threads=args.threads, niceness=args.nice, parent_pid=args.parent_pid)
        return 0
    if args.command == "scheduler":
        from bot.server import run_scheduler

        run_scheduler(settings)
        return 0
    if args.command == "db":
        return _db(settings, args)
    if args.command == "mentions" and args.mentions_command == "corrections":
        from bot.listening.corrections import export_corrections

        return export_corrections(settings, args.output)
    if args.command == "mentions":
        from bot.listening.mention_import import import_csv

        # The plan says which imported posts escalate into open incidents.
        return import_csv(settings, args.file, load_plan(plan_path(settings.warroom_plan)))
    if args.command == "export":
        from bot.exports import export_command

        return export_command(settings, args.incident, args.format, args.output)
    raise CommandError(f"unknown command {args.command}")


def _share_metrics_between_processes(settings: Settings) -> str | None:
    """`serve` acks in this process and runs jobs in a worker child, so with /metrics on both write their
    metrics to one directory and a scrape sums them (prometheus_client's multiprocess mode, bot/infra/metrics.py).
    An operator's PROMETHEUS_MULTIPROC_DIR (several processes on one host) is used as it is; otherwise a
    new one is made here, before prometheus_client is imported (it reads the variable once, on import),
    inherited by the worker child, and returned so that it is removed when `serve` ends."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        if not os.path.isdir(given):
            raise CommandError(f"PROMETHEUS_MULTIPROC_DIR: {given} is not a directory")
        return None
    if settings.warroom_metrics_token is None:
        return None
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess directory was set")
    own = tempfile.mkdtemp(prefix="warroom-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = own
    return own


def _db(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.exc import OperationalError

    from bot.infra import database
    from models import make_engine

    try:
        if args.db_command == "upgrade":
            database.upgrade(settings.database_url, args.revision)
        elif args.db_command == "downgrade":
            database.downgrade(settings.database_url, args.revision)
        revision = database.current_revision(make_engine(settings.database_url))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        raise CommandError(f"DATABASE_URL: cannot reach the database ({reason})") from None
    print(f"database at revision {revision or 'base'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `warroom` console script."""
    try:
        log_format = load_log_settings().warroom_log_format
    except SettingsError as exc:
        print(f"warroom: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(os.environ.get("WARROOM_LOG_LEVEL", "INFO"), log_format)
    for noisy in ("alembic.runtime.migration", "apscheduler.executors.default", "waitress.queue"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (SettingsError, PlanError, SchemaNotReady, CommandError) as exc:
        if log_format == "json":  # every line on stderr is then a JSON object, this one too
            logging.getLogger("warroom").error("warroom: %s", exc)
        else:
            print(f"warroom: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
