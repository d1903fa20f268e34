"""Delivery against a real receiver on loopback: bodies, signatures, retries, timeouts, redirects, restarts."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from konvrt import __version__
from konvrt.db import utcnow
from konvrt.webhooks import WebhookSignatureError, verify
from konvrt.webhooks.delivery import WebhookSenders, retry_delay
from konvrt.webhooks.events import webhook_status
from konvrt.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery
from konvrt.webhooks.secret_store import rotate
from tests.webhooks.conftest import Receiver, Reply, World, WorldFactory

ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def test_completed_event_is_the_seed_body_signed(world: World, receiver: Receiver) -> None:
    world.start_senders()
    job_id = world.finish(receiver.url + "/hooks/konvrt")
    row = world.wait_settled(job_id)
    assert row.state == DeliveryState.DELIVERED and row.attempts == 1 and row.last_status_code == 200

    (request,) = receiver.requests
    assert request.path == "/hooks/konvrt"
    body = request.headers
    assert body["content-type"] == "application/json"
    assert body["user-agent"] == f"Konvrt-Webhooks/{__version__}"
    assert body["konvrt-event-id"] == row.id and row.id.startswith("evt_")
    assert body["konvrt-delivery-attempt"] == "1"
    event = verify(request.body, body["konvrt-signature"], world.secret())
    assert list(event) == ["event", "job_id", "status", "output", "timestamp"]
    assert event["event"] == "job.completed" and event["job_id"] == job_id and event["status"] == "completed"
    assert event["output"]["download_url"] == f"/api/v1/download/{job_id}"
    assert event["output"]["size_bytes"] == 300
    assert ISO_Z.fullmatch(event["output"]["expires_at"]) and ISO_Z.fullmatch(event["timestamp"])


def test_failed_event_carries_the_error(world: World, receiver: Receiver) -> None:
    world.start_senders()
    job_id = world.finish(receiver.url, ok=False)
    world.wait_settled(job_id)
    (event,) = receiver.events()
    assert event == {
        "event": "job.failed",
        "job_id": job_id,
        "status": "failed",
        "error": "The input has no video stream.",
        "timestamp": event["timestamp"],
    }
    verify(receiver.requests[0].body, receiver.requests[0].headers["konvrt-signature"], world.secret())


def test_tampered_body_does_not_verify(world: World, receiver: Receiver) -> None:
    world.start_senders()
    world.wait_settled(world.finish(receiver.url))
    request = receiver.requests[0]
    with pytest.raises(WebhookSignatureError):
        verify(
            request.body.replace(b'"size_bytes":300', b'"size_bytes":301'),
            request.headers["konvrt-signature"],
            world.secret(),
        )


def test_a_job_without_webhook_url_queues_nothing(world: World) -> None:
    job_id = world.finish(None)
    with world.db.read() as session:
        assert session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)).all() == []


def test_500_500_200_is_exactly_three_attempts(world: World, receiver: Receiver) -> None:
    receiver.script = [Reply(500), Reply(500), Reply(200)]
    world.start_senders()
    job_id = world.finish(receiver.url)
    row = world.wait_settled(job_id)
    time.sleep(0.3)  # longer than the retry schedule: a fourth attempt would have arrived
    assert row.state == DeliveryState.DELIVERED and row.attempts == 3
    assert [r.headers["konvrt-delivery-attempt"] for r in receiver.requests] == ["1", "2", "3"]
    assert {r.headers["konvrt-event-id"] for r in receiver.requests} == {row.id}
    assert len({r.body for r in receiver.requests}) == 1, "every attempt sends the same bytes"
    with world.db.read() as session:
        codes = session.scalars(select(WebhookAttempt.status_code).order_by(WebhookAttempt.number)).all()
    assert codes == [500, 500, 200]


def test_retries_follow_the_schedule(world_factory: WorldFactory, receiver: Receiver) -> None:
    world = world_factory(webhook_retry_schedule=[0.2, 0.4])
    receiver.script = [Reply(503), Reply(503), Reply(503)]
    world.start_senders()
    row = world.wait_settled(world.finish(receiver.url))
    assert row.state == DeliveryState.FAILED and row.attempts == 3
    assert row.last_status_code == 503
    assert row.last_error == "The receiver answered 503. Gave up after 3 failed attempts."
    first, second, third = (r.at for r in receiver.requests)
    assert 0.2 <= second - first < 0.4
    assert 0.4 <= third - second < 0.6


def test_410_stops_at_once(world: World, receiver: Receiver) -> None:
    receiver.script = [Reply(410)]
    world.start_senders()
    row = world.wait_settled(world.finish(receiver.url))
    time.sleep(0.2)
    assert row.state == DeliveryState.STOPPED and len(receiver.requests) == 1
    assert row.last_status_code == 410 and "410 Gone" in (row.last_error or "")


def test_slow_receiver_times_out_and_is_retried(world_factory: WorldFactory, receiver: Receiver) -> None:
    world = world_factory(webhook_timeout_seconds=0.3)
    receiver.script = [Reply(200, delay=1.0)]
    world.start_senders()
    started = time.monotonic()
    job_id = world.finish(receiver.url)
    world.wait(job_id, lambda row: row.attempts >= 1 and row.last_error is not None)
    assert time.monotonic() - started < 0.9, "the attempt was cut off at the timeout"
    row = world.wait_settled(job_id)
    assert row.state == DeliveryState.DELIVERED and row.attempts == 2
    with world.db.read() as session:
        first = session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.number)).first()
        assert first is not None and first.error == "The receiver did not answer within 0.3 s."
        assert first.status_code is None


def test_redirect_is_not_followed(world: World, receiver: Receiver) -> None:
    receiver.script = [Reply(302, headers={"Location": receiver.url + "/elsewhere"}), Reply(200)]
    world.start_senders()
    row = world.wait_settled(world.finish(receiver.url + "/hook"))
    assert [r.path for r in receiver.requests] == ["/hook", "/hook"], "the retry goes to the URL, not the Location"
    with world.db.read() as session:
        first = session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.number)).first()
        assert first is not None and first.status_code == 302
        assert first.error == "The receiver answered 302 (a redirect); redirects are not followed."
    assert row.state == DeliveryState.DELIVERED


def test_restart_mid_retry_resumes_from_the_database(world_factory: WorldFactory, receiver: Receiver) -> None:
    world = world_factory(webhook_retry_schedule=[0.5])
    receiver.script = [Reply(500), Reply(200)]
    first = world.start_senders()
    job_id = world.finish(receiver.url)
    world.wait(job_id, lambda row: row.attempts == 1 and row.lease_until is None)
    first.stop()
    world.db.dispose()  # the process is gone; only the database file remains

    restarted = World(world.settings, type(world.db)(world.settings.resolved_database_url), world.account_id)
    restarted.start_senders()
    try:
        row = restarted.wait_settled(job_id)
    finally:
        for senders in restarted.senders:
            senders.stop()
        restarted.db.dispose()
    assert row.state == DeliveryState.DELIVERED and row.attempts == 2
    assert [r.headers["konvrt-delivery-attempt"] for r in receiver.requests] == ["1", "2"]


def test_an_attempt_lost_in_a_crash_is_retried_after_its_lease(world: World, receiver: Receiver) -> None:
    job_id = world.finish(receiver.url)
    crashed = WebhookSenders(world.settings, world.db)
    claim = crashed.claim()  # claimed, then the process died before sending
    crashed.client.close()
    assert claim is not None and claim.attempt == 1
    assert WebhookSenders(world.settings, world.db).claim() is None, "the lease keeps others off"
    with world.db.write() as session:  # time passes: the lease runs out
        session.execute(update(WebhookDelivery).values(lease_until=utcnow() - timedelta(seconds=1)))
    world.start_senders()
    row = world.wait_settled(job_id)
    assert row.state == DeliveryState.DELIVERED and row.attempts == 2
    assert [r.headers["konvrt-delivery-attempt"] for r in receiver.requests] == ["2"]


def test_private_target_refused_at_delivery_when_not_allowed(world_factory: WorldFactory, receiver: Receiver) -> None:
    """The URL was accepted (say the setting was on, or DNS said public); delivery checks again."""
    world = world_factory(webhook_allow_private=False, webhook_retry_schedule=[])
    world.start_senders()
    row = world.wait_settled(world.finish(receiver.url))
    assert receiver.requests == []
    assert row.state == DeliveryState.FAILED
    assert "refused by the webhook address policy: 127.0.0.1 is a loopback address" in (row.last_error or "")


def test_redeliver_sends_the_same_event_again(world: World, receiver: Receiver) -> None:
    from konvrt.webhooks.events import redeliver

    world.start_senders()
    job_id = world.finish(receiver.url)
    first = world.wait_settled(job_id)
    with world.db.write() as session:
        from konvrt.db import Job

        job = session.get(Job, job_id)
        assert job is not None
        redeliver(session, job)
    row = world.wait(job_id, lambda r: r.attempts == 2 and r.state == DeliveryState.DELIVERED)
    assert [r.headers["konvrt-delivery-attempt"] for r in receiver.requests] == ["1", "2"]
    assert {r.headers["konvrt-event-id"] for r in receiver.requests} == {first.id}
    assert receiver.requests[0].body == receiver.requests[1].body
    assert row.delivered_at is not None and first.delivered_at is not None and row.delivered_at > first.delivered_at


def test_status_object(world: World, receiver: Receiver) -> None:
    from konvrt.db import Job

    receiver.script = [Reply(500)]
    job_id = world.finish(receiver.url)
    pending_job = world.submit(receiver.url)
    with world.db.read() as session:
        job = session.get(Job, pending_job)
        assert job is not None
        assert webhook_status(session, job) == {
            "url": receiver.url,
            "event_id": None,
            "state": "pending",
            "attempts": 0,
            "last_status_code": None,
            "last_error": None,
            "delivered_at": None,
            "next_attempt_at": None,
        }
    senders = WebhookSenders(world.settings, world.db)
    try:
        assert senders.deliver_one()
    finally:
        senders.client.close()
    with world.db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None
        status = webhook_status(session, job)
    assert status is not None
    assert status["attempts"] == 1 and status["last_status_code"] == 500 and status["state"] == "pending"
    assert status["last_error"] == "The receiver answered 500."
    assert ISO_Z.fullmatch(status["next_attempt_at"]) and status["delivered_at"] is None


def test_rotation_signs_with_old_and_new_secret(world: World, receiver: Receiver) -> None:
    old = world.secret()
    with world.db.write() as session:
        new = rotate(session, world.account_id, timedelta(hours=24))
    world.start_senders()
    world.wait_settled(world.finish(receiver.url))
    request = receiver.requests[0]
    header = request.headers["konvrt-signature"]
    assert header.count("v1=") == 2
    verify(request.body, header, old)
    verify(request.body, header, new)


def test_rotated_secret_stops_signing_after_the_overlap(world: World, receiver: Receiver) -> None:
    old = world.secret()
    with world.db.write() as session:
        new = rotate(session, world.account_id, timedelta(0))
    world.start_senders()
    world.wait_settled(world.finish(receiver.url))
    request = receiver.requests[0]
    verify(request.body, request.headers["konvrt-signature"], new)
    with pytest.raises(WebhookSignatureError):
        verify(request.body, request.headers["konvrt-signature"], old)


def test_many_jobs_at_once_each_attempt_sent_once(world_factory: WorldFactory, receiver: Receiver) -> None:
    world = world_factory(webhook_senders=4)
    receiver.script = [Reply(500)] * 10  # the first ten attempts fail and are retried
    world.start_senders()
    world.start_senders()  # a second process's senders compete for the same rows
    ids = [world.finish(receiver.url) for _ in range(30)]
    for job_id in ids:
        assert world.wait_settled(job_id).state == DeliveryState.DELIVERED
    seen = [(r.headers["konvrt-event-id"], r.headers["konvrt-delivery-attempt"]) for r in receiver.requests]
    assert len(seen) == 40 and len(set(seen)) == 40


@pytest.mark.parametrize(("failures", "expected"), [(0, None), (1, 10.0), (2, 60.0), (6, 21600.0), (7, None)])
def test_retry_delay_walks_the_schedule(failures: int, expected: float | None) -> None:
    assert retry_delay(failures, [10, 60, 300, 1800, 7200, 21600], 0, 0.5) == expected


def test_retry_delay_jitter_stays_within_bounds() -> None:
    assert retry_delay(1, [100], 0.1, 0.0) == pytest.approx(90)
    assert retry_delay(1, [100], 0.1, 0.999999) == pytest.approx(110, abs=0.01)
