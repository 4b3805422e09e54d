"""Thin Bolt listeners, one module per capability; `render/` turns domain results into Block Kit.

`handlers/tables.py` lists every `/crisis` subcommand, queued interaction, module's listeners and job
kind in one place; a new capability is a new module plus its lines there. The app and the worker are
built with the three functions below. They import the tables when called, so importing one handler
module (say `handlers.render.drill` from bot/) does not import them all.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.background.runtime import Runtime


def register(app: App, runtime: Runtime) -> None:
    """Attach every module's listeners to `app` (the listener table)."""
    from handlers import tables

    tables.register(app, runtime)


def run_job(runtime: Runtime, kind: str, payload: dict[str, Any]) -> None:
    """Run a queued job with its kind's runner (the job table); the worker calls this."""
    from handlers import tables

    tables.run_job(runtime, kind, payload)


def tell_job_failed(runtime: Runtime, kind: str, payload: dict[str, Any], reason: str) -> None:
    """Tell the requester of a job that failed for good (the worker's failure policy calls this)."""
    from handlers import tables

    tables.tell_job_failed(runtime, kind, payload, reason)
