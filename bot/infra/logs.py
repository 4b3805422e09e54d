"""Log lines: text for a terminal, or one JSON object per line (`WARROOM_LOG_FORMAT=json`) that names
the incident and the queued job a line is about, when they are known.

The job is the worker's (`bot.queue.jobs.current_job`). The incident is known where a job or a request
has found it (`about_incident`, around the work that follows); an exception raised out of that work
carries it to the line that logs the failure (the worker's, outside the block).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from bot.queue.jobs import current_job

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_INCIDENT_ATTRIBUTE = "warroom_incident_id"
_incident: ContextVar[int | None] = ContextVar("logged_incident", default=None)


@contextmanager
def about_incident(incident_id: int | None) -> Iterator[None]:
    """Log lines written inside this block name `incident_id`, and so does the line that logs an
    exception raised out of it."""
    token = _incident.set(incident_id)
    try:
        yield
    except BaseException as exc:
        if incident_id is not None and getattr(exc, _INCIDENT_ATTRIBUTE, None) is None:
            setattr(exc, _INCIDENT_ATTRIBUTE, incident_id)
        raise
    finally:
        _incident.reset(token)


def current_incident() -> int | None:
    """The incident the calling thread's work is about, or None when not known."""
    return _incident.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, pid, and incident_id and job_id when
    known; a traceback is one more field, never more lines."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        incident_id = current_incident()
        if incident_id is None and record.exc_info:
            incident_id = getattr(record.exc_info[1], _INCIDENT_ATTRIBUTE, None)
        if incident_id is not None:
            line["incident_id"] = incident_id
        job_id = current_job()
        if job_id is not None:
            line["job_id"] = job_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: str) -> None:
    """The process's logging: `text` lines, or `json` objects; in JSON every other thing a process
    writes to stderr by itself (warnings, uncaught exceptions) becomes a log line too."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    if log_format != "json":
        return
    logging.captureWarnings(True)
    crash_log = logging.getLogger("warroom")

    def log_uncaught(kind: type[BaseException], value: BaseException, trace: TracebackType | None) -> None:
        crash_log.critical("uncaught %s", kind.__name__, exc_info=(kind, value, trace))

    def log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        name = args.thread.name if args.thread else "a thread"
        crash_log.critical("uncaught %s in %s", args.exc_type.__name__, name,
                           exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook = log_uncaught
    threading.excepthook = log_uncaught_in_thread
