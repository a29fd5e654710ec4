"""The outbox dispatcher against a real HTTPS receiver on 127.0.0.1 and a database with real
commits: signatures, retries with back-off, dead-lettering, two workers, a killed worker, and the
time-based follow-up events."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlmodel import select

from app.config import Settings
from app.db import SYSTEM
from app.models.events import DeliveryStatus, EventType, OutboxEvent, WebhookDelivery
from app.models.plan import Plan
from app.services.dispatcher import backoff, sign, verify_signature
from tests.conftest import TestDatabase
from tests.receiver import Answer, Close, Hold, Live, Receiver, Sleep, all_delivered, eventually

VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    r = Receiver(tmp_path / "receiver")
    yield r
    r.close()


@pytest.fixture
async def live(fresh_database: TestDatabase, receiver: Receiver) -> AsyncIterator[Live]:
    async with Live(fresh_database, receiver) as service:
        yield service


# ---- signing and back-off (units) ----------------------------------------------------------


def test_signature_covers_timestamp_and_body_and_refuses_old_timestamps() -> None:
    now = str(int(time.time()))
    body = b'{"id":"e1","type":"plan.created"}'
    sig = sign("secret", now, body)
    assert sig.startswith("v1=") and len(sig) == 3 + 64
    assert verify_signature("secret", now, body, sig)
    assert not verify_signature("other secret", now, body, sig)
    assert not verify_signature("secret", now, body + b" ", sig)
    assert not verify_signature("secret", str(int(now) + 1), body, sig)
    old = str(int(time.time()) - 3600)
    assert not verify_signature("secret", old, body, sign("secret", old, body))
    assert not verify_signature("secret", "not a number", body, sig)


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    settings = Settings(webhook_backoff_base_seconds=10, webhook_backoff_max_seconds=3600)
    means = []
    for attempt in range(1, 14):
        step = min(10 * 2 ** (attempt - 1), 3600)
        samples = [backoff(attempt, settings).total_seconds() for _ in range(300)]
        assert all(step * 0.5 <= s <= step for s in samples), (attempt, min(samples), max(samples))
        # Jitter: the waits are spread, not one fixed value.
        assert len(set(samples)) > 250
        assert max(samples) - min(samples) > step * 0.3
        means.append(statistics.fmean(samples))
    # Doubling until the cap (10 * 2**8 = 2560 < 3600 < 5120), then flat at the cap.
    for earlier, later in itertools.pairwise(means[:9]):
        assert 1.6 < later / earlier < 2.5
    assert all(2700 * 0.95 < m < 2700 * 1.05 for m in means[9:])  # mean of U(1800, 3600)


def test_default_settings_retry_for_at_least_24_hours() -> None:
    settings = Settings()
    assert settings.webhook_retry_hours >= 24
    # The longest wait is far below the window, so the window holds many attempts.
    assert settings.webhook_backoff_max_seconds * 10 <= settings.webhook_retry_hours * 3600


# ---- delivery ------------------------------------------------------------------------------


async def test_deliveries_are_signed_and_the_receiver_verifies_them(live: Live, receiver: Receiver) -> None:
    hook = await live.create_webhook(["plan.created", "plan.cancelled"])
    plan = await live.drv.create_plan()
    r = await live.drv.post(plan["id"], "/needs", {"description": "Boende"})  # raises no event
    assert r.status_code == 201, r.text
    r = await live.drv.transition(plan["id"], "cancelled", r.json()["version"])
    assert r.status_code == 200, r.text
    dispatcher = live.dispatcher()
    items = await live.deliver_until(hook["id"], [dispatcher], all_delivered(2))

    got = receiver.requests
    assert len(got) == 2
    outbox = {str(e.id): e for e in await live.outbox()}
    for req in got:
        assert req.verified is True, req.headers
        assert req.answered == 200
        assert req.path == "/hook"
        assert req.headers["content-type"] == "application/json"
        body = req.json
        assert body["id"] == req.event_id
        assert body["type"] == req.event_type
        event = outbox[req.event_id]
        assert body["seq"] == event.seq
        assert body["plan_id"] == plan["id"] == str(event.plan_id)
        assert body["payload"] == event.payload
        # The signature is over "<timestamp>.<body>" with this webhook's secret, nothing else.
        ts = req.headers["samplan-timestamp"]
        assert abs(int(ts) - time.time()) < 60
        assert req.headers["samplan-signature"] == sign(hook["secret"], ts, req.body)
        assert not verify_signature("another secret", ts, req.body, req.headers["samplan-signature"])
    assert sorted(req.event_type for req in got) == ["plan.cancelled", "plan.created"]

    assert {d["event_id"] for d in items} == {r.event_id for r in got}
    for d in items:
        assert d["attempts"] == 1
        assert d["delivered_at"] is not None
        assert [(a["attempt"], a["status_code"], a["error"]) for a in d["attempt_log"]] == [(1, 200, None)]
    # Delivered means done: another round sends nothing more.
    assert await dispatcher.run_once() == 0
    assert len(receiver.requests) == 2


async def test_a_receiver_refusing_the_signature_is_a_failed_attempt(live: Live, receiver: Receiver) -> None:
    hook = await live.create_webhook(["plan.created"])
    receiver.secret = "not the webhook's secret"
    await live.drv.create_plan()
    dispatcher = live.dispatcher(webhook_backoff_base_seconds=30)
    await dispatcher.run_once()
    [delivery] = await live.deliveries(hook["id"])
    assert receiver.requests[0].verified is False
    assert delivery["status"] == "pending"
    assert delivery["attempt_log"][0]["status_code"] == 401
    assert delivery["attempt_log"][0]["error"] == "receiver answered 401"


async def test_retries_after_500_closed_connection_and_timeout_until_delivered(
    live: Live, receiver: Receiver
) -> None:
    hook = await live.create_webhook(["plan.created"])
    receiver.script(Answer(500), Close(), Sleep(3))
    await live.drv.create_plan()
    dispatcher = live.dispatcher(
        webhook_timeout_seconds=0.5, webhook_backoff_base_seconds=0.3, webhook_backoff_max_seconds=2
    )

    # First attempt: 500, then the delivery waits out a back-off of 0.15..0.3 s.
    assert await dispatcher.run_once() == 1
    [d] = await live.deliveries(hook["id"])
    assert d["status"] == "pending" and d["attempts"] == 1
    [first] = d["attempt_log"]
    ended = datetime.fromisoformat(first["started_at"]) + timedelta(milliseconds=first["duration_ms"])
    scheduled = datetime.fromisoformat(d["next_attempt_at"]) - ended
    assert timedelta(seconds=0.15) <= scheduled <= timedelta(seconds=0.3 + 0.2), scheduled
    if datetime.fromisoformat(d["next_attempt_at"]) - datetime.now(UTC) > timedelta(seconds=0.05):
        assert await dispatcher.run_once() == 0  # not due yet: nothing is sent early

    [d] = await live.deliver_until(hook["id"], [dispatcher], all_delivered(1))
    log = [(a["attempt"], a["status_code"], a["error"]) for a in d["attempt_log"]]
    assert log == [
        (1, 500, "receiver answered 500"),
        (2, None, "RemoteProtocolError"),
        (3, None, "ReadTimeout"),
        (4, 200, None),
    ]
    assert d["attempts"] == 4
    starts = [datetime.fromisoformat(a["started_at"]) for a in d["attempt_log"]]
    assert starts == sorted(starts)
    # Each retry waited at least half its back-off step after the previous attempt ended.
    for n in range(1, 4):
        prev = d["attempt_log"][n - 1]
        ended = starts[n - 1] + timedelta(milliseconds=prev["duration_ms"])
        assert starts[n] - ended >= timedelta(seconds=0.5 * 0.3 * 2 ** (n - 1)) - timedelta(milliseconds=20)
    timed_out = d["attempt_log"][2]
    assert 400 <= timed_out["duration_ms"] < 2500

    got = receiver.requests
    assert len(got) == 4
    assert len({r.event_id for r in got}) == 1  # the same event every time
    assert all(r.verified for r in got)
    assert got[-1].answered == 200


async def test_dead_lettered_after_the_retry_window(live: Live) -> None:
    url = "https://treserva.example.se/samplan/events"
    hook = await live.create_webhook(["plan.created"], url=url)
    await live.drv.create_plan()
    dispatcher = live.dispatcher(
        webhook_retry_hours=1.5 / 3600, webhook_backoff_base_seconds=0.1, webhook_backoff_max_seconds=0.2
    )
    # respx forces a failure no real server can be relied on to give: the connection is refused.
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as mock:
        route = mock.post(url).mock(side_effect=httpx.ConnectError("connection refused"))
        [d] = await live.deliver_until(
            hook["id"], [dispatcher], lambda items: items[0]["status"] == "dead", within=15
        )
        calls = route.call_count
        assert d["attempts"] == calls >= 2
        assert [a["attempt"] for a in d["attempt_log"]] == list(range(1, calls + 1))
        assert all(a["error"] == "ConnectError" and a["status_code"] is None for a in d["attempt_log"])
        assert d["delivered_at"] is None
        last = datetime.fromisoformat(d["attempt_log"][-1]["started_at"])
        assert last - datetime.fromisoformat(d["created_at"]) >= timedelta(seconds=1.0)
        # Dead is final: later rounds do not try again.
        await asyncio.sleep(0.4)
        for _ in range(3):
            assert await dispatcher.run_once() == 0
        assert route.call_count == calls
    [d] = await live.deliveries(hook["id"])
    assert d["status"] == "dead" and d["attempts"] == calls


async def test_two_dispatchers_deliver_each_event_exactly_once(live: Live, receiver: Receiver) -> None:
    hook = await live.create_webhook(["plan.created", "plan.cancelled"])
    for i in range(6):
        plan = await live.drv.create_plan(title=f"Plan {i}")
        r = await live.drv.transition(plan["id"], "cancelled", plan["version"])
        assert r.status_code == 200, r.text
    expected = {str(e.id) for e in await live.outbox()}
    assert len(expected) == 12
    receiver.script(*[Sleep(0.05)] * 12)  # slow enough that the two workers' rounds overlap
    first, second = live.dispatcher(), live.dispatcher()  # two Database objects, two pools
    assert first.db is not second.db

    claimed = [0, 0]

    async def both_rounds() -> bool:
        a, b = await asyncio.gather(first.run_once(batch=3), second.run_once(batch=3))
        claimed[0] += a
        claimed[1] += b
        return len(receiver.requests) >= 12 and a == b == 0

    await eventually(both_rounds, within=30, what="all 12 events delivered")
    counts = receiver.event_counts()
    assert set(counts) == expected
    assert all(n == 1 for n in counts.values()), counts
    assert claimed[0] + claimed[1] == 12
    assert claimed[0] > 0 and claimed[1] > 0, claimed
    items = await live.deliveries(hook["id"])
    assert len(items) == 12
    assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in items)
    assert all(len(d["attempt_log"]) == 1 for d in items)


async def test_an_expired_lease_is_taken_over_and_the_late_worker_cannot_overwrite(
    live: Live, receiver: Receiver
) -> None:
    hook = await live.create_webhook(["plan.created"])
    await live.drv.create_plan()
    slow, fast = live.dispatcher(webhook_lease_seconds=5), live.dispatcher(webhook_lease_seconds=5)
    now = datetime.now(UTC)
    [job_slow] = await slow.claim(now, 10)
    assert await fast.claim(now, 10) == []  # leased: nobody else takes it
    [job_fast] = await fast.claim(now + timedelta(seconds=6), 10)  # the lease ran out
    assert job_fast.delivery_id == job_slow.delivery_id
    assert job_fast.attempt == job_slow.attempt + 1
    await fast.deliver(job_fast)
    await slow.deliver(job_slow)  # the slow worker comes back late: its result is not recorded
    [d] = await live.deliveries(hook["id"])
    assert d["status"] == "delivered"
    assert d["attempts"] == 2
    # The slow worker's attempt is logged as lost when its lease was taken over; its late
    # result is not recorded.
    assert [a["attempt"] for a in d["attempt_log"]] == [1, 2]
    assert "lost" in d["attempt_log"][0]["error"]
    assert len(receiver.requests) == 2  # at least once: receivers deduplicate by event id
    assert len(receiver.event_counts()) == 1


async def test_a_deleted_webhook_gets_nothing_more(live: Live, receiver: Receiver) -> None:
    hook = await live.create_webhook(["plan.created"])
    await live.drv.create_plan()  # queued for the hook
    r = await live.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=live.admin())
    assert r.status_code == 204
    await live.drv.create_plan()  # after deletion: not queued at all
    dispatcher = live.dispatcher()
    await dispatcher.run_once()
    await dispatcher.run_once()
    assert receiver.requests == []
    async with live.app.state.db.session(SYSTEM) as s:
        rows = list((await s.execute(select(WebhookDelivery))).scalars())
    assert [row.status for row in rows] == [DeliveryStatus.dead]


async def test_a_killed_worker_loses_no_event(
    live: Live, receiver: Receiver, fresh_database: TestDatabase, tmp_path: Path
) -> None:
    hook = await live.create_webhook(["plan.created"])
    receiver.script(Hold(limit=30))  # the first request stays open until released
    await live.drv.create_plan()
    [event] = await live.outbox()

    env = {
        **os.environ,
        "SAMPLAN_ENV": "dev",
        "SAMPLAN_DATABASE_URL": fresh_database.app_url,
        "SAMPLAN_MIGRATION_DATABASE_URL": fresh_database.owner_url,
        "SAMPLAN_DATA_DIR": str(tmp_path / "worker-data"),
        "SAMPLAN_EXTRA_CA_FILE": str(receiver.ca_file),
        "SAMPLAN_WEBHOOK_LEASE_SECONDS": "2",
        "SAMPLAN_WEBHOOK_TIMEOUT_SECONDS": "20",
        "SAMPLAN_DISPATCHER_POLL_SECONDS": "0.2",
        "SAMPLAN_LOG_LEVEL": "WARNING",
    }

    def start_worker(name: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("wb")
        return subprocess.Popen(  # noqa: S603 - our own entry point
            [str(VENV_BIN / "samplan"), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )

    first = start_worker("first")
    second: subprocess.Popen[bytes] | None = None
    try:
        await receiver.wait_for_count(1, within=30)
        assert first.poll() is None
        [d] = await live.deliveries(hook["id"])
        assert d["status"] == "delivering"  # claimed, the request in flight
        first.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(first.wait, 10) == -signal.SIGKILL
        assert receiver.requests[0].answered is None  # the killed worker never got its answer

        second = start_worker("second")
        [d] = await live.deliver_until(hook["id"], [], all_delivered(1), within=30)
        got = receiver.requests
        assert len(got) >= 2
        assert {r.event_id for r in got} == {str(event.id)}
        assert got[-1].verified is True and got[-1].answered == 200
        assert d["attempts"] == 2
        # Both attempts are visible: the killed worker's as lost, the second as delivered.
        assert [a["attempt"] for a in d["attempt_log"]] == [1, 2]
        assert d["attempt_log"][0]["status_code"] is None
        assert "lost" in d["attempt_log"][0]["error"]
        assert d["attempt_log"][1]["status_code"] == 200
    finally:
        receiver.release()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.to_thread(proc.wait, 15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    await asyncio.to_thread(proc.wait, 5)
    assert second is not None
    assert second.returncode == 0, (tmp_path / "second.log").read_text()


# ---- follow-ups raised by time -------------------------------------------------------------


async def _active_plan(live: Live) -> dict[str, Any]:
    plan = await live.drv.ready_plan()
    r = await live.drv.transition(plan["id"], "active", plan["version"])
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _follow_up_events(live: Live) -> list[OutboxEvent]:
    kinds = (EventType.follow_up_due, EventType.follow_up_overdue)
    return [e for e in await live.outbox() if e.event_type in kinds]


async def test_follow_up_due_and_overdue_are_raised_once_per_plan_and_date(live: Live) -> None:
    hook = await live.create_webhook(["follow_up.due", "follow_up.overdue"])
    due = date.today() + timedelta(days=30)
    a, b = await _active_plan(live), await _active_plan(live)
    draft = await live.drv.create_plan()  # drafts have no follow-up to raise
    assert a["follow_up_date"] == b["follow_up_date"] == draft["follow_up_date"] == due.isoformat()
    first, second = live.dispatcher(), live.dispatcher()
    on_due = datetime.combine(due, datetime.min.time(), UTC) + timedelta(hours=8)

    assert await first.scan_follow_ups(on_due - timedelta(days=1)) == 0  # not yet due
    raised = await asyncio.gather(first.scan_follow_ups(on_due), second.scan_follow_ups(on_due))
    assert sum(raised) == 2
    assert await first.scan_follow_ups(on_due) == 0
    assert await second.scan_follow_ups(on_due + timedelta(hours=10)) == 0  # the same date

    later = on_due + timedelta(days=3)
    raised = await asyncio.gather(first.scan_follow_ups(later), second.scan_follow_ups(later))
    assert sum(raised) == 2
    assert await first.scan_follow_ups(later + timedelta(days=1)) == 0

    events = await _follow_up_events(live)
    seen = sorted((e.event_type.value, str(e.plan_id)) for e in events)
    assert seen == sorted([(t, p["id"]) for t in ("follow_up.due", "follow_up.overdue") for p in (a, b)])
    for e in events:
        assert e.payload == {"plan_id": str(e.plan_id), "follow_up_date": due.isoformat()}
        assert e.actor_organisation_id is None
    # Each became exactly one delivery to the subscribed webhook.
    items = await live.deliveries(hook["id"])
    assert sorted(d["event_id"] for d in items) == sorted(str(e.id) for e in events)


async def test_run_once_scans_for_follow_ups_on_its_first_round(live: Live) -> None:
    plan = await _active_plan(live)
    async with live.app.state.db.session(SYSTEM) as s:  # the follow-up date has come
        row = await s.get(Plan, uuid.UUID(plan["id"]))
        assert row is not None
        row.follow_up_date = date.today()
        await s.commit()
    await live.dispatcher().run_once()
    [event] = await _follow_up_events(live)
    assert event.event_type == EventType.follow_up_due
    assert str(event.plan_id) == plan["id"]


async def test_follow_up_scan_works_in_batches_and_skips_what_it_raised(live: Live) -> None:
    """At national size a scan finds thousands of plans; it commits batch by batch, so that another
    worker's scan never waits for all of it, and raises each event once whatever the batch size."""
    plans = [await _active_plan(live) for _ in range(5)]
    due = date.fromisoformat(plans[0]["follow_up_date"])
    on_due = datetime.combine(due, datetime.min.time(), UTC) + timedelta(hours=8)
    first, second = live.dispatcher(), live.dispatcher()
    raised = await asyncio.gather(
        first.scan_follow_ups(on_due, batch=2), second.scan_follow_ups(on_due, batch=3)
    )
    assert sum(raised) == 5
    assert await first.scan_follow_ups(on_due, batch=1) == 0
    events = await _follow_up_events(live)
    assert sorted(str(e.plan_id) for e in events) == sorted(p["id"] for p in plans)
