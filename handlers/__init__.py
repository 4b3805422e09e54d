"""Thin Bolt listeners, one module per capability; `render/` turns domain results into Block Kit.

Every module here that defines `register(app, runtime)` is wired in by `register` below, and every
module's `JOBS` (kind → runner) serves `run_job`, so a new capability is one new module and no
edit to a shared list.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

from slack_bolt import App

from bot.runtime import Runtime


def _modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda module: module.name)
        if not info.ispkg
    ]


def register(app: App, runtime: Runtime) -> None:
    """Attach every handler module's listeners to `app`."""
    for module in _modules():
        attach = getattr(module, "register", None)
        if attach is not None:
            attach(app, runtime)


def run_job(runtime: Runtime, kind: str, payload: dict[str, Any]) -> None:
    """Run a queued job with the handler module that declared its kind (a module's `JOBS` mapping)."""
    for module in _modules():
        runner = getattr(module, "JOBS", {}).get(kind)
        if runner is not None:
            runner(runtime, payload)
            return
    raise LookupError(f"no handler runs jobs of kind {kind!r}")


def tell_job_failed(runtime: Runtime, kind: str, payload: dict[str, Any], reason: str) -> None:
    """Tell the requester of a job that failed for good (the worker's failure policy calls this)."""
    from handlers.commands import CRISIS_JOB, tell_crisis_failed
    from handlers.queued import INTERACTION_JOB, tell_interaction_failed

    if kind == CRISIS_JOB:
        tell_crisis_failed(runtime, payload, reason)
    elif kind == INTERACTION_JOB:
        tell_interaction_failed(runtime, payload, reason)
