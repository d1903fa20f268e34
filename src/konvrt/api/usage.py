"""GET /api/v1/usage: the plan and credit balance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from konvrt.api.deps import AccountDep

router = APIRouter()


@router.get("/api/v1/usage")
async def usage(account: AccountDep) -> dict[str, Any]:
    return {
        "plan": account.plan,
        "credits": {"balance": account.balance, "total_purchased": account.total_purchased},
    }
