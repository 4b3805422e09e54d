"""The engine and sessions of models/db.py.

`reading`: the read-only sessions that answer inside Slack's ack (status, roles, tasks, the channel's
incident). They see what is committed, write nothing, and on PostgreSQL open no transaction.
The pool tests a PostgreSQL connection before use only when it sat idle: a connection the server
dropped meanwhile is replaced before anyone uses it, and a busy pool pays no round trip for it."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event, insert, select, text, update

from models import Base, Incident, db, make_engine, make_session_factory, reading, transaction
from models.db import ReadOnlySession


@pytest.fixture
def sessions(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


def _incident(title: str) -> Incident:
    return Incident(title=title, severity="sev2", opened_by="ULEAD01")


def test_reads_what_is_committed(sessions) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        session.add(_incident("Outage rumours"))
    with reading(sessions) as session:
        assert session.scalars(select(Incident.title)).all() == ["Outage rumours"]
    with transaction(sessions) as session:
        session.execute(update(Incident).values(title="Outage rumours, day 2"))
    with reading(sessions) as session:
        assert session.scalars(select(Incident.title)).all() == ["Outage rumours, day 2"]


@pytest.mark.parametrize("write", ["add", "update", "insert"])
def test_refuses_every_write_and_leaves_nothing_behind(sessions, write: str) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        session.add(_incident("Before"))
    with pytest.raises(ReadOnlySession), reading(sessions) as session:
        if write == "add":
            session.add(_incident("Sneaked in"))
            session.flush()
        elif write == "update":
            session.execute(update(Incident).values(title="Changed"))
        else:
            session.execute(insert(Incident).values(title="Sneaked in", severity="sev2", opened_by="U"))
    with transaction(sessions) as session:
        assert session.scalars(select(Incident.title)).all() == ["Before"]


def test_opens_no_transaction_on_postgresql(sessions) -> None:  # type: ignore[no-untyped-def]
    engine = sessions.kw["bind"]
    sent: list[str] = []
    event.listen(engine, "begin", lambda connection: sent.append("BEGIN"))
    event.listen(engine, "commit", lambda connection: sent.append("COMMIT"))
    with reading(sessions) as session:
        session.scalars(select(Incident)).all()
        session.scalars(select(Incident.id)).all()
        driver = session.connection().connection.driver_connection
        autocommit = getattr(driver, "autocommit", None)
    if engine.dialect.name == "sqlite":
        assert sent == ["BEGIN", "COMMIT"]  # in-process: one snapshot for all the reads
    else:
        assert autocommit is True
    # The pool's connection is back to transactions for the next, writing, user.
    with transaction(sessions) as session:
        session.add(_incident("Written"))
        assert session.connection().get_isolation_level() != "AUTOCOMMIT"
    with reading(sessions) as session:
        assert session.scalars(select(Incident.title)).all() == ["Written"]



def test_a_connection_the_server_dropped_while_idle_is_replaced_before_use(
    sessions, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setattr(db, "PING_WHEN_IDLE_SECONDS", 0.05)
    engine = sessions.kw["bind"]
    if engine.dialect.name == "sqlite":  # in-process: no server to drop it, and no ping
        assert not engine.pool.dispatch.checkout
        return
    with engine.connect() as connection:
        dropped = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = make_engine(engine.url.render_as_string(hide_password=False))
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped})
        connection.commit()
    admin.dispose()
    time.sleep(0.1)
    with engine.connect() as connection:  # the same pooled connection: tested, found dead, replaced
        assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != dropped


def test_a_connection_back_from_use_moments_ago_is_not_tested_again(
    sessions, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    engine = sessions.kw["bind"]
    pings: list[object] = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda connection: pings.append(connection) or real_ping(connection))
    for _ in range(5):
        with reading(sessions) as session:
            session.scalars(select(Incident.id)).all()
    assert pings == []
    monkeypatch.setattr(db, "PING_WHEN_IDLE_SECONDS", 0.05)
    time.sleep(0.1)
    with reading(sessions) as session:
        session.scalars(select(Incident.id)).all()
    assert len(pings) == (0 if engine.dialect.name == "sqlite" else 1)
