"""Thin Bolt listeners, one module per capability; `render/` turns domain results into Block Kit.

Every module here that defines `register(app, runtime)` is wired in by `register` below,
so a new capability is one new module and no edit to a shared list.
"""

from __future__ import annotations

import importlib
import pkgutil

from slack_bolt import App

from bot.runtime import Runtime


def register(app: App, runtime: Runtime) -> None:
    """Attach every handler module's listeners to `app`."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda module: module.name):
        if info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        attach = getattr(module, "register", None)
        if attach is not None:
            attach(app, runtime)
