"""Migrations and the schema check, driven through Alembic's API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine

import migrations
from models import Base

MIGRATIONS_DIR = Path(migrations.__file__).parent


def alembic_config(url: str) -> Config:
    """An Alembic config for `url`, pointing at the bundled migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Undo migrations down to `revision`."""
    command.downgrade(alembic_config(url), revision)


def schema_differences(engine: Engine) -> list[Any]:
    """What autogenerate would change to make the database match the models (empty when in step)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


class SchemaNotReady(Exception):
    """The database is not at the migrations' head; the message says what to run."""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def ensure_schema(engine: Engine, url: str) -> None:
    """Make sure the schema is current. The embedded SQLite default upgrades itself; PostgreSQL
    is upgraded by the release step (`warroom db upgrade`), so a stale schema stops start-up."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    if url.startswith("sqlite"):
        upgrade(url)
        return
    raise SchemaNotReady(
        f"DATABASE_URL: the database is at revision {current or 'none'}, the code needs {head}; "
        "run `warroom db upgrade`"
    )
