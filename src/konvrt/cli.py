"""The `konvrt` command: serve, worker, and the admin commands (accounts, keys, credits)."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Annotated

import typer
from sqlalchemy import make_url

from konvrt import accounts, billing, observability, schema
from konvrt.config import Settings
from konvrt.dashboard import cli as dashboard_cli
from konvrt.db import Database
from konvrt.errors import KonvrtError
from konvrt.services import Services
from konvrt.webhooks.cli import app as webhooks_app

app = typer.Typer(help="Konvrt: a self-hostable media-processing API.", no_args_is_help=True)
accounts_app = typer.Typer(help="Manage accounts and plans.", no_args_is_help=True)
keys_app = typer.Typer(help="Create and revoke API keys.", no_args_is_help=True)
credits_app = typer.Typer(help="Grant credit packs; approve the dashboard's requests for them.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
app.add_typer(credits_app, name="credits")
dashboard_cli.register(accounts_app, credits_app)  # sign-in-link, invite; credits requests/approve/decline
app.add_typer(webhooks_app, name="webhooks")
db_app = typer.Typer(help="The database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


def main() -> None:
    """The `konvrt` command: a KonvrtError that escapes a command (a database not upgraded, say) is
    one line on stderr and exit code 1, not a traceback."""
    try:
        app()
    except KonvrtError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        sys.exit(1)


def _services() -> Services:
    return Services.build(Settings())


def _fail(exc: KonvrtError) -> typer.Exit:
    typer.echo(f"error: {exc.message}", err=True)
    return typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_workers: Annotated[bool, typer.Option("--no-workers", help="Serve the API only.")] = False,
) -> None:
    """Run the API, with encode workers in the same process unless --no-workers."""
    import uvicorn

    from konvrt.app import create_app

    settings = Settings()
    services = Services.build(settings)
    if settings.demo_account:
        key = services.create_demo_account()
        if key is not None:
            base = settings.public_url or f"http://{host}:{port}"
            typer.echo("Created a demo pro account (demo@konvrt.local) with 500 credits. Its API key:\n")
            typer.echo(f"    {key}\n")
            typer.echo("Try it:\n")
            typer.echo(f'    curl -X POST {base}/api/v1/compress -H "Authorization: Bearer {key}" \\')
            typer.echo('      -F "file=@video.mp4" -F "codec=h264" -F "quality=23"\n')
    workers = 0 if no_workers else settings.workers
    observability.configure_logging(settings.log_format)  # uvicorn's loggers too (log_config=None)
    app = create_app(settings, services=services, workers=workers)
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=None)


@app.command()
def worker() -> None:
    """Run encode workers only (no API); stops gracefully on SIGTERM or Ctrl-C."""
    settings = Settings()
    services = _services()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    observability.configure_logging(settings.log_format)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, registry=observability.REGISTRY)
    services.start_workers(max(1, settings.workers))
    typer.echo(f"konvrt worker: {max(1, settings.workers)} workers running", err=True)
    stop.wait()
    services.close()


@accounts_app.command("create")
def accounts_create(
    email: str,
    plan: Annotated[str, typer.Option(help="free, pro or team.")] = "free",
    password: Annotated[
        bool, typer.Option("--password", help="Prompt for a dashboard password; without it, print a one-time link.")
    ] = False,
) -> None:
    """Create an account on a plan (pro and team include credits) with its dashboard owner."""
    secret = dashboard_cli.ask_password() if password else None
    services = _services()
    try:
        with services.db.write() as session:
            account = accounts.create_account(session, services.settings, email, plan)
            typer.echo(f"Created {account.email} on the {account.plan} plan with {account.balance} credits.")
            sign_in = dashboard_cli.add_owner(session, services.settings, account, secret)
    except KonvrtError as exc:
        raise _fail(exc) from None
    typer.echo(sign_in)


@accounts_app.command("set-plan")
def accounts_set_plan(email: str, plan: str) -> None:
    """Move an account to another plan; moving up grants the new plan's included credits."""
    services = _services()
    try:
        with services.db.write() as session:
            account = accounts.set_plan(session, services.settings, email, plan)
            typer.echo(f"{account.email} is now on the {account.plan} plan; balance {account.balance} credits.")
    except KonvrtError as exc:
        raise _fail(exc) from None


@keys_app.command("create")
def keys_create(email: str, name: Annotated[str, typer.Option(help="A label for the key.")] = "") -> None:
    """Create an API key; the key alone is printed on stdout, once."""
    services = _services()
    try:
        with services.db.write() as session:
            key = accounts.create_key(session, accounts.get_account(session, email), name=name)
    except KonvrtError as exc:
        raise _fail(exc) from None
    typer.echo(key.key)


@keys_app.command("revoke")
def keys_revoke(key_or_prefix: str) -> None:
    """Revoke a key, given whole or by its prefix."""
    services = _services()
    try:
        with services.db.write() as session:
            count = accounts.revoke_key(session, key_or_prefix)
    except KonvrtError as exc:
        raise _fail(exc) from None
    if count == 0:
        typer.echo("error: no live key matches that.", err=True)
        raise typer.Exit(code=1)
    typer.echo("Revoked 1 key.")


@credits_app.command("grant")
def credits_grant(email: str, amount: int) -> None:
    """Grant a credit pack of AMOUNT credits."""
    services = _services()
    try:
        with services.db.write() as session:
            account = accounts.get_account(session, email)
            billing.grant(session, account.id, amount, kind="pack", note="credit pack")
            session.refresh(account)
            typer.echo(f"Granted {amount} credits to {account.email}; balance {account.balance}.")
    except KonvrtError as exc:
        raise _fail(exc) from None


def _schema_database() -> tuple[Settings, Database]:
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings, Database(settings.resolved_database_url)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to this version's head (safe to run on many machines at once)."""
    settings, db = _schema_database()
    try:
        before = schema.upgrade(db.engine)
        after = schema.current(db.engine)
    finally:
        db.dispose()
    where = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
    if before == after:
        typer.echo(f"The schema of {where} is at {after} already (head).")
    else:
        typer.echo(f"Upgraded the schema of {where} from {before or 'empty'} to {after}.")


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision and this version's head."""
    _, db = _schema_database()
    try:
        found = schema.current(db.engine)
    finally:
        db.dispose()
    typer.echo(f"current: {found or 'empty'}\nhead:    {schema.head()}")
