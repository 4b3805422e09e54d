"""Migrations: empty database → head → base on SQLite and PostgreSQL, and autogenerate finds nothing to add."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from bot.infra.database import current_revision, downgrade, ensure_schema, head_revision, schema_differences, upgrade
from bot.infra.settings import normalise_database_url
from models import Base, make_engine

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.fixture(params=["sqlite"] + (["postgresql"] if POSTGRES_URL else []))
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    base = make_url(normalise_database_url(POSTGRES_URL or ""))
    name = f"warroom_migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield base.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_to_head_matches_models_and_downgrade_empties(empty_database: str) -> None:
    upgrade(empty_database)
    engine = make_engine(empty_database)
    try:
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)
        assert schema_differences(engine) == []
    finally:
        engine.dispose()

    downgrade(empty_database, "base")
    engine = make_engine(empty_database)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert current_revision(engine) is None
    finally:
        engine.dispose()


def test_autogenerate_detects_a_model_the_migrations_lack(empty_database: str) -> None:
    """The clean-autogenerate check above can fail: an unmigrated table is reported."""
    upgrade(empty_database)
    engine = make_engine(empty_database)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE facts"))
        differences = schema_differences(engine)
        assert any(diff[0] == "add_table" and diff[1].name == "facts" for diff in differences)
    finally:
        engine.dispose()


def test_sqlite_upgrades_itself_at_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    engine = make_engine(url)
    ensure_schema(engine, url)
    assert current_revision(engine) == head_revision()
    engine.dispose()
