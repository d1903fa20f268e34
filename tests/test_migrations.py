"""The schema comes from Alembic migrations: they build exactly the tables the code expects, and
`konvrt db upgrade` is idempotent. PostgreSQL's side is in tests/scaled/test_migrations_postgres.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from konvrt import schema
from konvrt.db import Database


def differences(db: Database) -> list[object]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, schema.metadata()))


def konvrt(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KONVRT_")}
    environ.update({f"KONVRT_{k.upper()}": v for k, v in env.items()})
    return subprocess.run([sys.executable, "-m", "konvrt", *args], env=environ, capture_output=True, text=True)


def test_migrations_build_what_the_models_describe_on_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'k.db'}")
    schema.upgrade(db.engine)
    assert schema.current(db.engine) == schema.head()
    assert differences(db) == [], "a model changed without a migration: write one (alembic revision --autogenerate)"
    assert set(inspect(db.engine).get_table_names()) == set(schema.metadata().tables) | {"alembic_version"}
    db.dispose()


def test_db_upgrade_command_is_idempotent_and_serve_upgrades_sqlite_itself(tmp_path: Path) -> None:
    first = konvrt("db", "upgrade", data_dir=str(tmp_path / "a"))
    assert first.returncode == 0 and f"from empty to {schema.head()}" in first.stdout, first.stderr
    again = konvrt("db", "upgrade", data_dir=str(tmp_path / "a"))
    assert again.returncode == 0 and "already (head)" in again.stdout
    current = konvrt("db", "current", data_dir=str(tmp_path / "a"))
    assert current.stdout.split() == ["current:", schema.head(), "head:", schema.head()]
    # Any command opening an embedded database brings it to head on its own.
    made = konvrt("accounts", "create", "m@example.com", "--plan", "pro", data_dir=str(tmp_path / "b"))
    assert made.returncode == 0, made.stderr
    db = Database(f"sqlite:///{tmp_path / 'b' / 'konvrt.db'}")
    assert schema.current(db.engine) == schema.head()
    db.dispose()
