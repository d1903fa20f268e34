"""Sending webhook events: claim a due event, POST it signed, record the outcome, schedule a retry.

`WebhookSenders` runs its own threads, never an encode worker's, so a slow receiver holds no
encode. Every attempt is claimed with a conditional update and a lease, so two threads (or two
machines) never send the same attempt, and one that dies mid-attempt leaves a lease that runs out
and is retried. All state is in `webhook_deliveries`: a restart resumes where it stopped.

Outcome of one attempt: any 2xx delivers; 410 stops at once; anything else (another status, a
redirect, which is never followed, a timeout, a refused address) is retried after the next step
of the retry schedule, scaled by jitter, until the schedule runs out and the event is given up.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import or_, select, update

from konvrt import __version__
from konvrt.config import Settings
from konvrt.db import Database, utcnow
from konvrt.webhooks import events
from konvrt.webhooks.deadline import DeadlineTransport, deadline
from konvrt.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery
from konvrt.webhooks.netguard import PinnedTransport
from konvrt.webhooks.secret_store import signing_secrets
from konvrt.webhooks.signing import sign

log = logging.getLogger("konvrt.webhooks")

USER_AGENT = f"Konvrt-Webhooks/{__version__}"


@dataclass(frozen=True)
class Claim:
    """One attempt this sender owns: what to send, where, signed with which secrets."""

    event_id: str
    attempt: int
    url: str
    payload: bytes
    secrets: list[str]


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    started_at: datetime
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def retry_delay(failures: int, schedule: Sequence[float], jitter: float, rand: float) -> float | None:
    """Seconds until the next attempt after `failures` failed ones; None when the schedule is spent.

    `rand` in [0, 1) picks where in 1 ± `jitter` the delay falls, so retries from many jobs
    that failed together do not all arrive together.
    """
    if failures < 1 or failures > len(schedule):
        return None
    return max(0.0, schedule[failures - 1] * (1 + jitter * (2 * rand - 1)))


def _describe(response: httpx.Response) -> str | None:
    code = response.status_code
    if 200 <= code < 300:
        return None
    if code == 410:
        return "The receiver answered 410 Gone, so no further attempts will be made."
    if 300 <= code < 400:
        return f"The receiver answered {code} (a redirect); redirects are not followed."
    return f"The receiver answered {code}."


def _describe_error(exc: httpx.HTTPError, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"The receiver did not answer within {timeout:g} s."
    if isinstance(exc, httpx.ConnectError) and "address policy" in str(exc):
        return f"The webhook URL was {exc}."
    return f"Could not reach the receiver: {exc or type(exc).__name__}."


class WebhookSenders:
    """`settings.webhook_senders` threads that deliver due events until `stop()`."""

    def __init__(self, settings: Settings, db: Database, *, transport: httpx.BaseTransport | None = None) -> None:
        self.settings, self.db = settings, db
        self.stopping = threading.Event()
        self._wake = threading.Condition()
        self._wakeups = 0
        self._threads: list[threading.Thread] = []
        self._timeout = settings.webhook_timeout_seconds
        self._lease = timedelta(seconds=self._timeout + 60)  # an attempt never outlives its deadline (DNS aside)
        self.client = httpx.Client(
            transport=transport
            or PinnedTransport(
                allow_private=settings.webhook_allow_private,
                inner=DeadlineTransport(max_connections=max(32, 2 * settings.webhook_senders)),
            ),
            timeout=httpx.Timeout(self._timeout),
            follow_redirects=False,
            trust_env=False,
        )

    def start(self) -> None:
        events.add_listener(self.notify)
        for n in range(self.settings.webhook_senders):
            thread = threading.Thread(target=self._loop, name=f"konvrt-webhook-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def notify(self) -> None:
        """An event became due: wake one idle sender now instead of at its next poll."""
        with self._wake:
            self._wakeups += 1
            self._wake.notify()

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking events; an attempt in flight finishes (at most the webhook timeout)."""
        events.remove_listener(self.notify)
        self.stopping.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(self._timeout + 5 if timeout is None else timeout)
        self.client.close()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                worked = self.deliver_one()
            except Exception:  # a database hiccup: the row keeps its state, try again after a pause
                log.exception("webhook delivery loop error")
                worked = False
            if not worked:
                self._idle(self.settings.webhook_poll_seconds)

    def _idle(self, seconds: float) -> None:
        with self._wake:
            if self._wakeups == 0 and not self.stopping.is_set():
                self._wake.wait(seconds)
            self._wakeups = max(0, self._wakeups - 1)

    def deliver_one(self) -> bool:
        """Claim one due event, attempt it and record the outcome; False when nothing was due."""
        claim = self.claim()
        if claim is None:
            return False
        self.record(claim, self.attempt(claim))
        return True

    def claim(self) -> Claim | None:
        now = utcnow()
        due = (
            WebhookDelivery.state == DeliveryState.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
        )
        # Look in a read transaction first: idle senders polling must not queue for SQLite's write lock.
        with self.db.read() as session:
            candidates = session.scalars(
                select(WebhookDelivery.id).where(*due).order_by(WebhookDelivery.next_attempt_at).limit(8)
            ).all()
        if not candidates:
            return None
        with self.db.write() as session:
            for event_id in candidates:
                # Conditional update: whoever changes the row first owns this attempt.
                taken = session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == event_id, *due)
                    .values(lease_until=now + self._lease, attempts=WebhookDelivery.attempts + 1)
                )
                if taken.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                row = session.get(WebhookDelivery, event_id, populate_existing=True)
                assert row is not None
                return Claim(
                    event_id=row.id,
                    attempt=row.attempts,
                    url=row.url,
                    payload=row.payload.encode("utf-8"),
                    secrets=signing_secrets(session, row.account_id, now),
                )
        return None

    def headers(self, claim: Claim) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Konvrt-Event-Id": claim.event_id,
            "Konvrt-Delivery-Attempt": str(claim.attempt),
            "Konvrt-Signature": sign(claim.payload, claim.secrets, int(time.time())),
        }

    def attempt(self, claim: Claim) -> Outcome:
        started, clock = utcnow(), time.monotonic()
        status_code: int | None = None
        try:
            request = self.client.build_request("POST", claim.url, content=claim.payload, headers=self.headers(claim))
            # The body is never read: the status code is the whole answer, and a huge body costs nothing.
            with deadline(self._timeout):  # the whole attempt, however slowly the receiver trickles
                response = self.client.send(request, stream=True)
                response.close()
            status_code, error = response.status_code, _describe(response)
        except httpx.HTTPError as exc:
            error = _describe_error(exc, self._timeout)
        except Exception as exc:  # an invalid stored URL, say: recorded like any failed attempt
            error = f"The webhook could not be sent: {exc}."
        duration = round((time.monotonic() - clock) * 1000)
        return Outcome(status_code=status_code, error=error, started_at=started, duration_ms=duration)

    def record(self, claim: Claim, outcome: Outcome) -> None:
        now = utcnow()
        with self.db.write() as session:
            session.add(
                WebhookAttempt(
                    delivery_id=claim.event_id,
                    number=claim.attempt,
                    started_at=outcome.started_at,
                    duration_ms=outcome.duration_ms,
                    status_code=outcome.status_code,
                    error=outcome.error,
                )
            )
            row = session.get(WebhookDelivery, claim.event_id, populate_existing=True)
            if row is None or row.attempts != claim.attempt:
                return  # our lease ran out and another sender made a newer attempt: its result wins
            row.last_status_code, row.last_error, row.lease_until = outcome.status_code, outcome.error, None
            if outcome.delivered:
                row.state, row.delivered_at, row.next_attempt_at = DeliveryState.DELIVERED, now, None
            elif outcome.gone:
                row.state, row.next_attempt_at = DeliveryState.STOPPED, None
            else:
                self._schedule_retry(row, now)
        log.info("webhook %s attempt %d -> %s", claim.event_id, claim.attempt, outcome.status_code or outcome.error)

    def _schedule_retry(self, row: WebhookDelivery, now: datetime) -> None:
        row.failures += 1
        settings = self.settings
        delay = retry_delay(
            row.failures, settings.webhook_retry_schedule, settings.webhook_retry_jitter, random.random()
        )
        if delay is None:
            row.state, row.next_attempt_at = DeliveryState.FAILED, None
            attempts = "attempt" if row.failures == 1 else "attempts"
            row.last_error = f"{row.last_error} Gave up after {row.failures} failed {attempts}."
        else:
            row.next_attempt_at = now + timedelta(seconds=delay)
