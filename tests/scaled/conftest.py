"""Real scaled backends for the tests: a fresh PostgreSQL database, a Redis key prefix, a moto S3 server."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from konvrt import schema
from konvrt.db import Database
from tests.conftest import free_port

PG_SERVER = os.environ.get("KONVRT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("KONVRT_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _admin_engine():  # type: ignore[no-untyped-def]
    return create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT", poolclass=None)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Callable[[], str]]:
    """Makes fresh databases named konvrt_test_<random>; every one is dropped when the session ends."""
    engine = _admin_engine()
    made: list[str] = []

    def make() -> str:
        name = f"konvrt_test_{secrets.token_hex(6)}"
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"{PG_SERVER}/{name}"

    yield make
    with engine.connect() as conn:
        for name in made:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


@pytest.fixture
def empty_pg_url(pg_admin: Callable[[], str]) -> str:
    """A new, empty database of this test's own on the machine's PostgreSQL server."""
    return pg_admin()


@pytest.fixture
def pg_url(empty_pg_url: str) -> str:
    """A database of this test's own, upgraded to head as `konvrt db upgrade` does before a deploy."""
    db = Database(empty_pg_url)
    schema.upgrade(db.engine)
    db.dispose()
    return empty_pg_url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The machine's Redis; tests isolate themselves by a key prefix (see `queue_prefix`)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    client.close()
    yield REDIS_URL


@pytest.fixture
def queue_prefix() -> str:
    return f"konvrt-test-{secrets.token_hex(6)}"


class MotoServer:
    def __init__(self, endpoint: str, proc: subprocess.Popen[bytes]) -> None:
        self.endpoint, self.proc = endpoint, proc

    def new_bucket(self) -> str:
        import boto3

        name = f"konvrt-test-{secrets.token_hex(6)}"
        s3 = boto3.client("s3", **self.client_kwargs())
        s3.create_bucket(Bucket=name)
        return name

    def client_kwargs(self) -> dict[str, str]:
        return {
            "endpoint_url": self.endpoint,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "region_name": "us-east-1",
        }

    def settings(self, bucket: str, prefix: str = "konvrt") -> dict[str, str]:
        return {
            "storage_url": f"s3://{bucket}/{prefix}",
            "s3_endpoint_url": self.endpoint,
            "s3_access_key_id": "testing",
            "s3_secret_access_key": "testing",
            "s3_region": "us-east-1",
        }


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "moto_server exited"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("moto_server did not start")


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's standalone S3 server, a real HTTP endpoint speaking the S3 protocol, one per test process."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    exe = Path(sys.executable).with_name("moto_server")
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out)
    try:
        _wait_port(port, proc)
        yield MotoServer(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3_bucket(moto_server: MotoServer) -> str:
    return moto_server.new_bucket()
