"""`konvrt webhooks …`: show or rotate an account's webhook signing secret."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from konvrt import accounts, schema
from konvrt.config import Settings
from konvrt.db import Database
from konvrt.errors import KonvrtError
from konvrt.webhooks import secret_store

app = typer.Typer(help="Webhook signing secrets.", no_args_is_help=True)


def _database(settings: Settings) -> Database:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    schema.prepare(db.engine)
    return db


@app.command("secret")
def secret(
    email: str,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Make a new secret; the old one keeps signing alongside it for 24 h.")
    ] = False,
) -> None:
    """Print the account's webhook secret (whsec_…), creating it on first use."""
    settings = Settings()
    db = _database(settings)
    try:
        with db.write() as session:
            account = accounts.get_account(session, email)
            if rotate:
                overlap = timedelta(hours=settings.webhook_secret_overlap_hours)
                value = secret_store.rotate(session, account.id, overlap)
            else:
                value = secret_store.current_secret(session, account.id)
    except KonvrtError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(code=1) from None
    finally:
        db.dispose()
    if rotate:
        hours = f"{settings.webhook_secret_overlap_hours:g}"
        typer.echo(f"New secret below; the previous one keeps signing alongside it for {hours} h.", err=True)
    typer.echo(value)
