"""Usage (plan, balance, spending, the ledger) and buying credits (a request an administrator approves)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from konvrt.api.deps import ServicesDep
from konvrt.config import Settings
from konvrt.dashboard import credit_requests, usage_stats
from konvrt.dashboard.browser_sessions import Viewer
from konvrt.dashboard.web import CsrfChecked, ViewerDep, flash, redirect, render
from konvrt.db import Account, ApiKey
from konvrt.errors import KonvrtError
from konvrt.services import Services

router = APIRouter(include_in_schema=False)

KIND_LABELS = {"plan": "Plan credits", "pack": "Credit pack", "charge": "Job", "refund": "Refund"}


def rate_limit(settings: Settings, plan: str) -> int | None:
    """Requests per window for the plan's keys; None on the free plan, which has no API access."""
    return {"pro": settings.ratelimit_pro, "team": settings.ratelimit_team}.get(plan)


def _usage_context(services: Services, viewer: Viewer) -> dict[str, object]:
    with services.db.read() as session:
        account = session.get(Account, viewer.account.id)
        used_this_month, days = usage_stats.summary(session, viewer.account.id)
        entries = usage_stats.ledger(session, viewer.account.id)
        has_keys = session.query(ApiKey.id).filter(ApiKey.account_id == viewer.account.id).first() is not None
    assert account is not None
    return {
        "viewer": viewer,
        "nav": "usage",
        "account": account,
        "used_this_month": used_this_month,
        "chart": usage_stats.bar_chart(days),
        "days": days,
        "ledger": entries,
        "kinds": KIND_LABELS,
        "rate_requests": rate_limit(services.settings, account.plan),
        "rate_window": services.settings.ratelimit_window_seconds,
        "has_keys": has_keys,
    }


@router.get("/dashboard/usage")
def usage_page(request: Request, viewer: ViewerDep, services: ServicesDep) -> Response:
    return render(request, "usage.html", _usage_context(services, viewer))


def _credits_context(services: Services, viewer: Viewer) -> dict[str, object]:
    with services.db.read() as session:
        requests = credit_requests.for_account(session, viewer.account.id)
    return {"viewer": viewer, "nav": "credits", "packs": credit_requests.PACKS, "requests": requests}


@router.get("/dashboard/credits")
def credits_page(request: Request, viewer: ViewerDep, services: ServicesDep) -> Response:
    return render(request, "credits.html", _credits_context(services, viewer))


@router.post("/dashboard/credits", dependencies=[CsrfChecked])
def request_credits(
    request: Request, viewer: ViewerDep, services: ServicesDep, credits: Annotated[int, Form()] = 0
) -> Response:
    try:
        with services.db.write() as session:
            row = credit_requests.request_pack(session, viewer.account.id, viewer.email, credits)
            number, amount = row.id, row.credits
    except KonvrtError as exc:
        context = _credits_context(services, viewer) | {"error": exc.message}
        return render(request, "credits.html", context, status_code=exc.status)
    flash(request, f"Request {number} for {amount:,} credits is waiting for your administrator's approval.")
    return redirect("/dashboard/credits")
