"""The database schema's version: Alembic migrations (`konvrt/migrations`) brought to head, and the check
that a database is at head before a process uses it.

SQLite (one machine) is upgraded whenever a process opens it. PostgreSQL is shared by many machines of
possibly different versions, so it is upgraded only on purpose, by `konvrt db upgrade`; a process
that finds it behind refuses to start and says so.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Engine

import konvrt.cluster
import konvrt.dashboard.models
import konvrt.idempotency
import konvrt.webhooks.models  # noqa: F401  (every table's module, so Base.metadata is whole)
from konvrt.db import Base
from konvrt.errors import ServiceUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"


def metadata() -> MetaData:
    """Every table the code expects: what the migrations must produce."""
    return Base.metadata


def _config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Migrate to `revision`; returns the revision the database was at (None: empty)."""
    config = _config(engine)
    command.upgrade(config, revision)
    found: str | None = config.attributes.get("from")
    return found


def prepare(engine: Engine) -> None:
    """Make the database ready for this code: upgrade SQLite; on PostgreSQL, insist it is at head."""
    if current(engine) == head():
        return
    if engine.dialect.name == "sqlite":
        upgrade(engine)
        return
    found = current(engine) or "empty"
    raise ServiceUnavailable(
        f"The database schema is at {found}, but this Konvrt needs {head()}. Run `konvrt db upgrade` first.",
        code="schema_behind",
    )
