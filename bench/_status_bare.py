"""The baseline of bench.status_rate: a bare Starlette endpoint answering the status JSON it is given."""

from __future__ import annotations

import json
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_BODY = json.loads(os.environ.get("BENCH_BODY", "{}"))


async def status(request: Request) -> JSONResponse:
    return JSONResponse(_BODY)


app = Starlette(routes=[Route("/status", status)])
