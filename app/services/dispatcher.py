"""Webhook delivery from the outbox: signed, retried with back-off and jitter, dead-lettered.

A delivery is claimed with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serialises
writers), so several workers never send the same attempt twice, and a worker that dies mid-delivery
leaves a lease that expires and another worker retries. Receivers deduplicate by event id: delivery
is at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlmodel import and_, col, or_, select

from app.config import Settings
from app.db import SYSTEM, Database
from app.models.events import (
    DeliveryStatus,
    EventType,
    OutboxEvent,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from app.models.plan import Plan, PlanStatus
from app.services import events

log = logging.getLogger("samplan.dispatcher")

SIGNATURE_HEADER = "Samplan-Signature"
TIMESTAMP_HEADER = "Samplan-Timestamp"
EVENT_ID_HEADER = "Samplan-Event-Id"
EVENT_TYPE_HEADER = "Samplan-Event-Type"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256 over "<timestamp>.<body>"."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(
    secret: str, timestamp: str, body: bytes, signature: str, *, max_age_s: int = 300
) -> bool:
    """What a receiver does: check the MAC and refuse old timestamps (replays)."""
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return False
    return age <= max_age_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


def backoff(attempt: int, settings: Settings) -> timedelta:
    """Exponential back-off with full jitter between half and all of the step."""
    step = min(
        settings.webhook_backoff_base_seconds * 2 ** (attempt - 1), settings.webhook_backoff_max_seconds
    )
    return timedelta(seconds=step * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not secrecy


@dataclass(frozen=True)
class _Job:
    delivery_id: uuid.UUID
    attempt: int
    url: str
    secret: str
    body: bytes
    event_id: uuid.UUID
    event_type: str


class Dispatcher:
    def __init__(self, db: Database, http: httpx.AsyncClient, settings: Settings) -> None:
        self.db = db
        self.http = http
        self.settings = settings
        # Minus infinity, not 0.0: the first round scans even on a host up for less than a minute.
        self._last_scan = float("-inf")

    async def claim(self, now: datetime, batch: int) -> list[_Job]:
        """Take due deliveries (and expired leases) under a new lease, in one short transaction."""
        lease_until = now + timedelta(seconds=self.settings.webhook_lease_seconds)
        async with self.db.session(SYSTEM) as session:
            due = or_(
                and_(
                    col(WebhookDelivery.status) == DeliveryStatus.pending,
                    col(WebhookDelivery.next_attempt_at) <= now,
                ),
                and_(
                    col(WebhookDelivery.status) == DeliveryStatus.delivering,
                    col(WebhookDelivery.lease_until) < now,
                ),
            )
            deliveries = (
                (
                    await session.execute(
                        select(WebhookDelivery)
                        .where(due)
                        .order_by(col(WebhookDelivery.next_attempt_at))
                        .limit(batch)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            jobs = []
            for d in deliveries:
                hook = await session.get(Webhook, d.webhook_id)
                event = (
                    await session.execute(select(OutboxEvent).where(OutboxEvent.seq == d.event_seq))
                ).scalar_one()
                if d.status == DeliveryStatus.delivering and d.lease_until is not None:
                    # The worker holding the lease never reported back (it died mid-delivery):
                    # its attempt is recorded as lost, so every attempt stays visible.
                    session.add(
                        WebhookAttempt(
                            delivery_id=d.id,
                            organisation_id=d.organisation_id,
                            attempt=d.attempts,
                            started_at=d.lease_until - timedelta(seconds=self.settings.webhook_lease_seconds),
                            duration_ms=0,
                            error="lost: the worker stopped before reporting (lease expired)",
                        )
                    )
                d.status = DeliveryStatus.delivering
                d.lease_until = lease_until
                d.attempts += 1
                if hook is None or not hook.active:
                    d.status, d.lease_until = DeliveryStatus.dead, None  # the webhook was removed
                    continue
                body = json.dumps(
                    {
                        "id": str(event.id),
                        "seq": event.seq,
                        "type": event.event_type.value,
                        "occurred_at": event.occurred_at.isoformat(),
                        "plan_id": str(event.plan_id) if event.plan_id else None,
                        "actor_organisation_id": str(event.actor_organisation_id)
                        if event.actor_organisation_id
                        else None,
                        "payload": event.payload,
                    },
                    separators=(",", ":"),
                ).encode()
                jobs.append(
                    _Job(d.id, d.attempts, hook.url, hook.secret, body, event.id, event.event_type.value)
                )
            await session.commit()
        return jobs

    async def deliver(self, job: _Job) -> None:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: str(job.event_id),
            EVENT_TYPE_HEADER: job.event_type,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(job.secret, timestamp, job.body),
        }
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            response = await self.http.post(
                job.url,
                content=job.body,
                headers=headers,
                timeout=self.settings.webhook_timeout_seconds,
                follow_redirects=False,
            )
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"receiver answered {status_code}"
        except Exception as exc:  # any failure (also httpx.InvalidURL, not an HTTPError) is an attempt
            error = f"{type(exc).__name__}"[:300]
        duration_ms = int((time.perf_counter() - t0) * 1000)
        await self._record(job, started, duration_ms, status_code, error)

    async def _record(
        self, job: _Job, started: datetime, duration_ms: int, status_code: int | None, error: str | None
    ) -> None:
        now = datetime.now(UTC)
        async with self.db.session(SYSTEM) as session:
            d = await session.get(WebhookDelivery, job.delivery_id, with_for_update=True)
            if d is None or d.status != DeliveryStatus.delivering or d.attempts != job.attempt:
                return  # our lease expired and another worker took over; its record wins
            session.add(
                WebhookAttempt(
                    delivery_id=d.id,
                    organisation_id=d.organisation_id,
                    attempt=job.attempt,
                    started_at=started,
                    duration_ms=duration_ms,
                    status_code=status_code,
                    error=error,
                )
            )
            d.lease_until = None
            if error is None:
                d.status, d.delivered_at = DeliveryStatus.delivered, now
            elif now - d.created_at >= timedelta(hours=self.settings.webhook_retry_hours):
                d.status = DeliveryStatus.dead
                log.warning("webhook delivery %s dead-lettered after %s attempts", d.id, d.attempts)
            else:
                d.status = DeliveryStatus.pending
                d.next_attempt_at = now + backoff(job.attempt, self.settings)
            await session.commit()

    async def scan_follow_ups(self, today: datetime, batch: int = 200) -> int:
        """Raise follow_up.due and follow_up.overdue once per plan and date.

        In batches of plans, each its own short transaction, skipping plans whose event exists:
        at national size a first scan finds thousands of plans past their follow-up date, and one
        long transaction held every other worker's scan waiting on its dedupe keys until the
        statement timeout, then started over a minute later."""
        day = today.date()
        raised = 0
        after: uuid.UUID | None = None
        while True:
            async with self.db.session(SYSTEM) as session:
                stmt = select(Plan).where(
                    col(Plan.status).in_((PlanStatus.active, PlanStatus.paused)),
                    col(Plan.follow_up_date) <= day,
                )
                if after is not None:
                    stmt = stmt.where(col(Plan.id) > after)
                # One order for every worker: concurrent scans then wait on the same first
                # dedupe key instead of deadlocking on each other's (PostgreSQL).
                plans = (await session.execute(stmt.order_by(col(Plan.id)).limit(batch))).scalars().all()
                if not plans:
                    return raised
                wanted = {}
                for plan in plans:
                    assert plan.follow_up_date is not None
                    kind = (
                        EventType.follow_up_due if plan.follow_up_date == day else EventType.follow_up_overdue
                    )
                    wanted[f"{kind.value}:{plan.id}:{plan.follow_up_date.isoformat()}"] = (plan, kind)
                done = set(
                    (
                        await session.execute(
                            select(OutboxEvent.dedupe_key).where(
                                col(OutboxEvent.dedupe_key).in_(list(wanted))
                            )
                        )
                    ).scalars()
                )
                for key, (plan, kind) in wanted.items():
                    if key in done:
                        continue
                    assert plan.follow_up_date is not None
                    event = await events.emit(
                        session,
                        kind,
                        plan=plan,
                        actor_organisation_id=None,
                        payload={"follow_up_date": plan.follow_up_date.isoformat()},
                        dedupe_key=key,
                    )
                    raised += event is not None
                await session.commit()
                after = plans[-1].id
                if len(plans) < batch:
                    return raised

    async def run_once(self, batch: int = 50) -> int:
        """One round: the time-based events (at most once a minute), then due deliveries."""
        now = datetime.now(UTC)
        if time.monotonic() - self._last_scan >= 60:
            self._last_scan = time.monotonic()
            await self.scan_follow_ups(now)
        jobs = await self.claim(now, batch)
        if jobs:
            await asyncio.gather(*(self.deliver(j) for j in jobs))
        return len(jobs)

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sent = await self.run_once()
            except Exception:  # a database outage must not kill the loop
                log.exception("dispatcher round failed; retrying")
                sent = 0
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.settings.dispatcher_poll_seconds)
