"""Engines and sessions. Nothing here connects until a function is called."""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Executable, create_engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 15_000


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        kwargs.setdefault(
            "connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Many threads write (web threads, scheduler): WAL lets readers run
            # beside one writer and busy_timeout makes writers queue, not fail.
            cursor = dbapi_connection.cursor()
            if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


# A pooled connection is tested with a round trip before use only when it has sat unused this long.
# SQLAlchemy's pool_pre_ping tests it every time: under load, when connections come back within
# milliseconds, that is one round trip more in every transaction (an ack's answer to `/crisis status`
# made two). A database restarted while a connection sat in the pool is still noticed before a request
# uses it; one that fails while in use is a disconnect, which makes the pool replace every connection
# it held before then.
PING_WHEN_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine.pool, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_WHEN_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and takes another (a new one after a restart).
            raise DisconnectionError("the pooled connection is gone") from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values usable after commit (we hand them to renderers)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with sessions() as session, session.begin():
        yield session


@contextmanager
def reading(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reads only, such as the answers given inside Slack's ack.

    On PostgreSQL it runs without a transaction of its own (autocommit): each statement sees what was
    committed when it started, exactly as under READ COMMITTED inside a transaction, and the BEGIN and
    COMMIT round trips are saved. On SQLite, in-process, the reads share one transaction and snapshot.
    Adding, changing or deleting through it raises ReadOnlySession, before anything reaches the database.
    """
    with _readers(sessions)() as session:
        if session.get_bind().dialect.name == "sqlite":
            with session.begin():
                yield session
        else:
            yield session


_READERS: weakref.WeakKeyDictionary[sessionmaker[Session], sessionmaker[Session]] = weakref.WeakKeyDictionary()


def _readers(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """The read-only twin of a session factory (made once): same engine and pool, autocommit on
    PostgreSQL, and writes refused."""
    readers = _READERS.get(sessions)
    if readers is None:
        engine = sessions.kw["bind"]
        if engine.dialect.name != "sqlite":
            engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        readers = make_session_factory(engine)
        event.listen(readers, "before_flush", _refuse_flush)
        event.listen(readers, "do_orm_execute", _refuse_dml)
        _READERS[sessions] = readers
    return readers


class ReadOnlySession(RuntimeError):
    """Something tried to write through a `reading` session."""


def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlySession("a reading session does not write")


def _refuse_dml(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlySession("a reading session does not write")


def rows_changed(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE and say how many rows it touched (0 for a compare-and-set that lost)."""
    result = session.execute(statement, execution_options={"synchronize_session": False})
    return int(cast(CursorResult[Any], result).rowcount)


def ping(engine: Engine) -> None:
    """A database round trip; raises when the database is unreachable."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
