"""Status polling is the API's hottest path. On the embedded default its reads run inline: a SQLite read
in WAL mode takes tens of microseconds, less than a hop to the thread pool and back costs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
import pytest

from konvrt import jobs
from tests.conftest import LiveServer


def _pending_job(server: LiveServer, key: str) -> str:
    from konvrt import accounts

    with server.services.db.write() as session:
        account_id = accounts.authenticate(session, f"Bearer {key}").id
        job_id = jobs.new_job_id()
        jobs.create(
            session,
            job_id=job_id,
            account_id=account_id,
            price=1,
            params={"codec": "h264"},
            filename="clip.mp4",
            size=1000,
            info={"duration": 1.0, "width": 64, "height": 64},
            webhook_url=None,
        )
    return job_id


def test_status_polls_make_no_thread_pool_hops_on_the_embedded_default(
    live_server_factory: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = live_server_factory(workers=0)
    key = server.account()
    job_id = _pending_job(server, key)
    hops: list[str] = []
    real_run_sync = anyio.to_thread.run_sync

    async def counting_run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", repr(func)))
        return await real_run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting_run_sync)
    with server.client(key) as client:
        assert client.get(f"/api/v1/status/{job_id}").status_code == 200  # records the key's first use
        hops.clear()
        for _ in range(3):
            res = client.get(f"/api/v1/status/{job_id}")
            assert res.status_code == 200 and res.json()["status"] == "pending"
    assert hops == []


@pytest.mark.redis
def test_reads_leave_the_loop_when_a_backend_is_across_the_network(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    assert live_server_factory(workers=0).services.reads_are_local
    shared_limits = live_server_factory(workers=0, ratelimit_url="redis://127.0.0.1:6379/0")
    assert not shared_limits.services.reads_are_local
