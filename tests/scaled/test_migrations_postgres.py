"""Migrations on PostgreSQL: they build what the models describe, racing upgrades are safe, and a
database behind head refuses to serve rather than guess."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from konvrt import schema
from konvrt.db import Database
from tests.test_migrations import differences, konvrt


@pytest.mark.postgres
def test_migrations_on_postgresql_match_the_models_and_racing_upgrades_are_safe(empty_pg_url: str) -> None:
    # Four machines running `konvrt db upgrade` at once: one migrates, the others wait on its lock.
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: konvrt("db", "upgrade", database_url=empty_pg_url), range(4)))
    assert all(run.returncode == 0 for run in runs), [run.stderr for run in runs]
    assert sum("from empty to" in run.stdout for run in runs) == 1, [run.stdout for run in runs]
    db = Database(empty_pg_url)
    assert schema.current(db.engine) == schema.head()
    assert differences(db) == []
    db.dispose()


@pytest.mark.postgres
def test_serve_refuses_a_postgresql_database_behind_head(empty_pg_url: str, tmp_path: Path) -> None:
    refused = konvrt("serve", "--port", "1", database_url=empty_pg_url, data_dir=str(tmp_path))
    assert refused.returncode == 1
    assert "Run `konvrt db upgrade` first." in refused.stderr and "Traceback" not in refused.stderr
    upgraded = konvrt("db", "upgrade", database_url=empty_pg_url, data_dir=str(tmp_path))
    assert upgraded.returncode == 0 and "postgres@127.0.0.1" in upgraded.stdout, upgraded.stderr
    made = konvrt("accounts", "create", "pg@example.com", "--plan", "pro", database_url=empty_pg_url)
    assert made.returncode == 0, made.stderr
