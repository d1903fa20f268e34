"""Alembic's environment: runs on the engine `konvrt.schema` hands over, one process at a time."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from konvrt import schema
from konvrt.db import UTCDateTime


# Migrations must not import the application's types: UTCDateTime is a timestamp with a zone.
def _render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run() -> None:
    engine = context.config.attributes["engine"]
    # konvrt_write makes SQLite's transaction BEGIN IMMEDIATE: a second process starting at the same
    # moment waits for the first to finish instead of creating the same tables again.
    with engine.execution_options(konvrt_write=True).connect() as connection:
        if connection.dialect.name == "postgresql":
            # Held until this connection closes; the key is arbitrary but fixed ("konvrt" in ASCII).
            connection.exec_driver_sql("SELECT pg_advisory_lock(107111110118114116)")
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=schema.metadata(),
            render_as_batch=True,  # SQLite alters tables by copying them
            render_item=_render_item,
            compare_type=True,
        )
        with context.begin_transaction():
            context.config.attributes["from"] = context.get_context().get_current_revision()  # read under the lock
            context.run_migrations()


run()
