"""Admin commands for the dashboard's people and credit requests, registered on `konvrt accounts` and
`konvrt credits`. Passwords are prompted for (never taken as an argument, which `ps` and shell
history would keep); one-time links are printed for the admin to pass on."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from konvrt import accounts
from konvrt.config import Settings
from konvrt.dashboard import credit_requests, passwords, people
from konvrt.db import Account
from konvrt.errors import KonvrtError
from konvrt.services import Services


def ask_password() -> str:
    """Prompt (hidden, twice) until the password meets the rules; from a pipe, read one line instead."""
    if not sys.stdin.isatty():
        try:
            return passwords.check_rules(sys.stdin.readline().rstrip("\r\n"))
        except KonvrtError as exc:
            raise _fail(exc) from None
    while True:
        value: str = typer.prompt("Dashboard password", hide_input=True, confirmation_prompt=True)
        try:
            return passwords.check_rules(value)
        except KonvrtError as exc:
            typer.echo(f"error: {exc.message}", err=True)


def add_owner(session: Session, settings: Settings, account: Account, password: str | None) -> str:
    """Give a new account its dashboard owner; returns the line telling the admin how they sign in."""
    user = people.add_owner(session, account, password)
    if password is not None:
        base = (settings.public_url or "http://127.0.0.1:8000").rstrip("/")
        return f"Dashboard: sign in at {base}/dashboard/signin as {user.email}."
    link = people.link_url(settings, people.issue_link(session, user))
    return f"Dashboard: a one-time sign-in link (valid 24 h; then choose a password):\n{link}"


def _fail(exc: KonvrtError) -> typer.Exit:
    typer.echo(f"error: {exc.message}", err=True)
    return typer.Exit(code=1)


def sign_in_link(email: str) -> None:
    """Print a one-time dashboard sign-in link for EMAIL (a lost password, or a first sign-in)."""
    services = Services.build(Settings())
    try:
        with services.db.write() as session:
            user = people.find(session, email)
            if user is None:
                user = people.owner_of(session, accounts.get_account(session, email))
            link = people.link_url(services.settings, people.issue_link(session, user))
    except KonvrtError as exc:
        raise _fail(exc) from None
    finally:
        services.db.dispose()
    typer.echo(f"One-time sign-in link for {email} (valid 24 h):\n{link}")


def invite(team_email: str, member_email: str) -> None:
    """Add MEMBER_EMAIL to the team account TEAM_EMAIL and print their one-time invitation link."""
    services = Services.build(Settings())
    try:
        with services.db.write() as session:
            member, token = people.invite(session, accounts.get_account(session, team_email), member_email)
            link = people.link_url(services.settings, token)
            typer.echo(f"Invited {member.email} to {team_email}. Send them this one-time link (valid 7 days):")
    except KonvrtError as exc:
        raise _fail(exc) from None
    finally:
        services.db.dispose()
    typer.echo(link)


def requests(everything: Annotated[bool, typer.Option("--all", help="Decided requests too.")] = False) -> None:
    """List credit-pack requests made in the dashboard (pending ones unless --all)."""
    services = Services.build(Settings())
    try:
        with services.db.read() as session:
            rows = credit_requests.listing(session, everything=everything)
    finally:
        services.db.dispose()
    if not rows:
        typer.echo("No pending credit requests." if not everything else "No credit requests.")
        return
    typer.echo(f"{'ID':>5}  {'ACCOUNT':<32} {'CREDITS':>8}  {'REQUESTED':<17} {'BY':<32} STATE")
    for row, email in rows:
        when = row.created_at.strftime("%Y-%m-%d %H:%M")
        typer.echo(f"{row.id:>5}  {email:<32} {row.credits:>8}  {when:<17} {row.requested_by:<32} {row.state}")


def _decide(request_id: int, *, approve: bool) -> None:
    services = Services.build(Settings())
    try:
        with services.db.write() as session:
            row = credit_requests.decide(session, request_id, approve=approve)
            account = session.get(Account, row.account_id)
            assert account is not None
            session.flush()
            session.refresh(account)
            if approve:
                typer.echo(
                    f"Approved request {row.id}: {row.credits} credits to {account.email}; balance {account.balance}."
                )
            else:
                typer.echo(f"Declined request {row.id} from {account.email}.")
    except KonvrtError as exc:
        raise _fail(exc) from None
    finally:
        services.db.dispose()


def approve(request_id: int) -> None:
    """Approve credit request ID: its pack is granted and shows in the account's ledger."""
    _decide(request_id, approve=True)


def decline(request_id: int) -> None:
    """Decline credit request ID; no credits are granted."""
    _decide(request_id, approve=False)


def register(accounts_app: typer.Typer, credits_app: typer.Typer) -> None:
    accounts_app.command("sign-in-link")(sign_in_link)
    accounts_app.command("invite")(invite)
    credits_app.command("requests")(requests)
    credits_app.command("approve")(approve)
    credits_app.command("decline")(decline)
