"""Domain events: written with the change (and gone with a failed one), ids and types only,
addressed to the organisations that may read the plan under consent, and the pull feed."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.config import Settings
from app.db import SYSTEM, Database
from app.main import make_http_client
from app.models.events import EventRecipient, EventType, OutboxEvent, WebhookDelivery
from app.services import audit, events
from app.services.dispatcher import Dispatcher
from tests.conftest import AuthFactory, OrgRef, TestDatabase, assert_problem
from tests.plan_helpers import PlanDriver, new_personal_number
from tests.receiver import Live


@pytest.fixture
def drv(client: httpx.AsyncClient, auth: AuthFactory, orgs: dict[str, OrgRef]) -> PlanDriver:
    return PlanDriver(client, auth, orgs)


async def _events(session: AsyncSession) -> list[OutboxEvent]:
    rows = await session.execute(select(OutboxEvent).order_by(col(OutboxEvent.seq)))
    return list(rows.scalars())


async def _recipients(session: AsyncSession, event: OutboxEvent) -> set[uuid.UUID]:
    rows = await session.execute(
        select(EventRecipient.organisation_id).where(EventRecipient.event_seq == event.seq)
    )
    return set(rows.scalars())


async def _version(drv: PlanDriver, pid: str, org: str = "sthlm-stad") -> int:
    r = await drv.get(pid, org)
    assert r.status_code == 200, r.text
    return int(r.json()["version"])


async def _ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


# ---- written with the change ---------------------------------------------------------------


async def test_an_event_is_written_with_its_change_and_refused_changes_write_none(
    drv: PlanDriver, session: AsyncSession, orgs: dict[str, OrgRef]
) -> None:
    plan = await drv.create_plan()
    [created] = await _events(session)
    assert created.event_type == EventType.plan_created
    assert str(created.plan_id) == plan["id"]
    assert created.actor_organisation_id == orgs["sthlm-stad"].id
    assert created.payload == {"plan_id": plan["id"], "status": "draft", "version": 1}
    assert await _recipients(session, created) == {orgs["sthlm-stad"].id}

    # Changes that raise no event, and refused changes, add nothing.
    r = await drv.post(plan["id"], "/needs", {"description": "Boende"})
    assert r.status_code == 201, r.text
    assert_problem(await drv.transition(plan["id"], "active", plan["version"]), 412)  # stale
    r = await drv.transition(plan["id"], "active", r.json()["version"])
    assert r.status_code == 422, r.text  # activation rules not met
    assert_problem(await drv.transition(plan["id"], "closed", 2), 422)  # draft cannot close
    assert [e.seq for e in await _events(session)] == [created.seq]

    version = await _version(drv, plan["id"])
    cancelled = await _ok(await drv.transition(plan["id"], "cancelled", version))
    events_now = await _events(session)
    assert [e.event_type for e in events_now] == [EventType.plan_created, EventType.plan_cancelled]
    assert events_now[1].payload["version"] == cancelled["version"] == version + 1
    assert events_now[1].payload["status"] == "cancelled"


@pytest.fixture
async def live(fresh_database: TestDatabase) -> AsyncIterator[Live]:
    async with Live(fresh_database) as service:
        yield service


async def test_a_change_that_fails_after_its_event_was_written_leaves_no_event(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a database with real commits: the event and the change share one transaction."""
    hook = await live.create_webhook(["action.proposed", "plan.created"], url="https://hooks.example.se/x")
    plan = await live.drv.create_plan()
    await live.drv.add_participant(plan["id"], "region-sthlm")
    before = await live.outbox()
    version = await _version(live.drv, plan["id"])

    emitted: list[EventType] = []
    real_emit, real_record = events.emit, audit.record

    async def spy_emit(session: Any, event_type: EventType, **kw: Any) -> Any:
        result = await real_emit(session, event_type, **kw)
        emitted.append(event_type)
        return result

    def failing_record(session: Any, p: Any, action: str, *args: Any, **kw: Any) -> Any:
        if action == "plan.action.propose":
            raise RuntimeError("the audit store is down")
        return real_record(session, p, action, *args, **kw)

    monkeypatch.setattr(events, "emit", spy_emit)
    monkeypatch.setattr(audit, "record", failing_record)
    r = await live.drv.post(
        plan["id"],
        "/actions",
        {"description": "Abstinensvård", "responsible_organisation_id": live.drv.orgs["region-sthlm"].id},
    )
    assert r.status_code == 500
    assert "audit store" not in r.text
    assert emitted == [EventType.action_proposed]  # the event was written, then the change failed

    after = await live.outbox()
    assert [e.id for e in after] == [e.id for e in before]
    assert await _version(live.drv, plan["id"]) == version
    async with live.app.state.db.session(SYSTEM) as s:
        seqs = {d.event_seq for d in (await s.execute(select(WebhookDelivery))).scalars()}
        recipient_seqs = {r.event_seq for r in (await s.execute(select(EventRecipient))).scalars()}
    assert seqs == {e.seq for e in before if e.event_type == EventType.plan_created}
    assert recipient_seqs == {e.seq for e in before}
    deliveries = await live.deliveries(hook["id"])
    assert [d["event_type"] for d in deliveries] == ["plan.created"]

    # The same change goes through once the failure is gone.
    monkeypatch.setattr(audit, "record", real_record)
    r = await live.drv.post(
        plan["id"],
        "/actions",
        {"description": "Abstinensvård", "responsible_organisation_id": live.drv.orgs["region-sthlm"].id},
    )
    assert r.status_code == 201, r.text
    assert [e.event_type for e in await live.outbox()][-1] == EventType.action_proposed


# ---- ids and types only --------------------------------------------------------------------

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_STATUSES = {"draft", "active", "paused", "closed", "cancelled"}


def _check_payload_value(key: str, value: object) -> None:
    if key.endswith("_id"):
        assert isinstance(value, str) and _UUID.match(value), (key, value)
    elif key == "version":
        assert isinstance(value, int) and not isinstance(value, bool), (key, value)
    elif key == "status":
        assert value in _STATUSES, (key, value)
    elif key == "follow_up_date":
        assert isinstance(value, str)
        date.fromisoformat(value)
    elif key == "reason":
        assert value == "consent_withdrawn", value  # a code, never the free text
    else:
        raise AssertionError(f"unexpected payload key {key!r}: {value!r}")


async def test_payloads_carry_ids_and_types_never_personal_numbers_or_names(
    drv: PlanDriver,
    session: AsyncSession,
    auth: AuthFactory,
    client: httpx.AsyncClient,
    settings: Settings,
    database: Database,
) -> None:
    personal_number = new_personal_number(date(1979, 11, 2))
    given, family = "Zlatanina", "Qvarnströmsson"
    secrets_in_story = {
        personal_number,
        personal_number[2:],
        f"{personal_number[:8]}-{personal_number[8:]}",
        f"{personal_number[2:8]}-{personal_number[8:]}",
        given,
        family,
        "Hanna Handläggare",
        "Mor till Zlatanina",
        "SIP för Q-familjen",
        "Insatsen är kommunens ansvar",
        "Vill inte längre",
        "Hemma hos",
        "känner vår läkare",
        "socialsekreterare",
        "deltog",
        "Test sthlm-stad",  # the token names
        "Test region-sthlm",
        "test-sthlm-stad",  # the token subjects
        "test-region-sthlm",
    }
    person = await drv.register_client(personal_number=personal_number, given_name=given, family_name=family)
    plan = await drv.create_plan(
        client_id=person["id"],
        title="SIP för Q-familjen",
        overall_responsible_organisation_id=str(drv.orgs["sthlm-stad"].id),
    )
    pid = plan["id"]
    await drv.add_participant(pid, "region-sthlm")
    r = await drv.post(pid, "/participants", {"kind": "narstaende", "name": "Mor till Zlatanina"})
    assert r.status_code == 201, r.text
    consent = await drv.add_consent(pid, ["sthlm-stad", "region-sthlm"], obtained_by="Hanna Handläggare")
    consent_id = next(c["id"] for c in consent["consents"])
    await drv.add_action(pid, "sthlm-stad", description="Boendestöd", phase="eftervard")
    _, accepted_id = await drv.add_action(pid, "region-sthlm", description="Behandling för Zlatanina")
    await _ok(await drv.post(pid, f"/actions/{accepted_id}/accept", None, org="region-sthlm"))
    _, disputed_id = await drv.add_action(pid, "region-sthlm", description="Boende hos Qvarnströmsson")
    reason = {"reason": "Insatsen är kommunens ansvar"}
    await _ok(await drv.post(pid, f"/actions/{disputed_id}/dispute", reason, org="region-sthlm"))
    await _ok(await drv.post(pid, f"/actions/{disputed_id}/accept", None, org="region-sthlm"))
    await _ok(await drv.transition(pid, "active", await _version(drv, pid)))
    await _ok(await drv.transition(pid, "paused", await _version(drv, pid), org="region-sthlm"))
    await _ok(await drv.transition(pid, "active", await _version(drv, pid)))

    # A meeting: called, answered, held with attendees and minutes that name the person.
    region_id = str(drv.orgs["region-sthlm"].id)
    kallelse = {
        "starts_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
        "purpose": "SIP-möte om Zlatanina",
        "questions": ["Boende hos Qvarnströmsson"],
        "location": "Hemma hos Qvarnströmsson",
        "invitee_organisation_ids": [region_id],
    }
    meeting = await _ok(await drv.post(pid, "/meetings", kallelse), 201)
    answer = {"response": "accepted", "comment": "Zlatanina känner vår läkare"}
    await _ok(await drv.post(pid, f"/meetings/{meeting['id']}/responses", answer, org="region-sthlm"))
    held = {
        "held_at": datetime.now(UTC).isoformat(),
        "attendees": [
            {
                "organisation_id": str(drv.orgs["sthlm-stad"].id),
                "name": "Hanna Handläggare",
                "role": "socialsekreterare",
            },
            {"name": f"{given} {family}", "role": "klient"},
        ],
        "record": f"{given} {family} ({personal_number}) deltog.",
    }
    await _ok(await drv.patch(pid, f"/meetings/{meeting['id']}", held))

    # The follow-up date comes: the dispatcher's scan raises follow_up.due, then overdue.
    dispatcher = Dispatcher(database, make_http_client(settings), settings)
    try:
        due = date.fromisoformat(plan["follow_up_date"])
        assert await dispatcher.scan_follow_ups(datetime.combine(due, datetime.min.time(), UTC)) == 1
        assert await dispatcher.scan_follow_ups(datetime.combine(due, datetime.min.time(), UTC)) == 0
        later = datetime.combine(due + timedelta(days=2), datetime.min.time(), UTC)
        assert await dispatcher.scan_follow_ups(later) == 1
    finally:
        await dispatcher.http.aclose()

    withdraw = {"reason": "Vill inte längre"}
    await _ok(await drv.post(pid, f"/consents/{consent_id}/withdraw", withdraw))  # pauses the plan
    await _ok(await drv.transition(pid, "closed", await _version(drv, pid)))
    other = await drv.create_plan(client_id=person["id"], title="SIP för Q-familjen")
    await _ok(await drv.transition(other["id"], "cancelled", other["version"]))

    outbox = await _events(session)
    kinds = [e.event_type.value for e in outbox]
    assert kinds == [
        "plan.created",
        "consent.given",
        "action.accepted",  # the kommun's own action: accepted as it is added
        "action.proposed",
        "action.accepted",
        "action.proposed",
        "action.disputed",
        "action.accepted",
        "plan.activated",
        "plan.paused",
        "plan.activated",
        "meeting.invited",
        "meeting.answered",
        "meeting.held",
        "follow_up.due",
        "follow_up.overdue",
        "consent.withdrawn",
        "plan.paused",
        "plan.closed",
        "plan.created",
        "plan.cancelled",
    ]
    for e in outbox:
        assert e.payload["plan_id"] == str(e.plan_id)
        for key, value in e.payload.items():
            _check_payload_value(key, value)
        text = json.dumps({"payload": e.payload, "dedupe_key": e.dedupe_key}, ensure_ascii=False)
        for secret in secrets_in_story:
            assert secret not in text, (e.event_type, secret)
        assert not re.search(r"(?<![0-9a-f-])\d{6}[-+]?\d{4}(?![0-9a-f-])", text), text
    by_kind = {e.event_type.value: e for e in outbox}  # the last of each kind
    assert by_kind["action.disputed"].payload["action_id"] == disputed_id
    assert by_kind["consent.withdrawn"].payload["consent_id"] == consent_id
    assert by_kind["plan.paused"].payload["reason"] == "consent_withdrawn"
    for kind in ("meeting.invited", "meeting.answered", "meeting.held"):
        assert by_kind[kind].payload["meeting_id"] == meeting["id"]
    assert by_kind["meeting.answered"].payload["organisation_id"] == region_id
    assert set(EventType) - {EventType(k) for k in kinds} == set()  # the story raised every kind

    # The same holds for what leaves the service: the pull feed.
    r = await client.get("/api/v1/events?limit=200", headers=auth("sthlm-stad", "system"))
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == len(outbox)
    for secret in secrets_in_story:
        assert secret not in r.text, secret


# ---- recipients under consent --------------------------------------------------------------


async def _feed(client: httpx.AsyncClient, auth: AuthFactory, org: str) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/events?limit=200", headers=auth(org, "system"))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_recipients_are_the_initiator_and_participants_under_active_consent(
    drv: PlanDriver,
    session: AsyncSession,
    client: httpx.AsyncClient,
    auth: AuthFactory,
    orgs: dict[str, OrgRef],
) -> None:
    stad, region, sis = orgs["sthlm-stad"].id, orgs["region-sthlm"].id, orgs["sis"].id
    plan = await drv.create_plan()
    pid = plan["id"]
    await drv.add_participant(pid, "region-sthlm")
    await drv.add_participant(pid, "sis", kind="other")
    await drv.add_action(pid, "region-sthlm", description="Före samtycket")  # region not yet covered
    consent = await drv.add_consent(pid, ["sthlm-stad", "region-sthlm"])  # SiS takes part, unnamed
    consent_id = consent["consents"][0]["id"]
    await drv.add_action(pid, "region-sthlm", description="Under samtycket")
    await _ok(await drv.post(pid, f"/consents/{consent_id}/withdraw", {"reason": "Återkallat"}))
    await drv.add_action(pid, "sthlm-stad", description="Efter återkallelsen")  # own: accepted at once
    await drv.add_action(pid, "region-sthlm", description="Efter återkallelsen")
    await _ok(await drv.transition(pid, "cancelled", await _version(drv, pid)))

    outbox = await _events(session)
    got = [(e.event_type.value, await _recipients(session, e)) for e in outbox]
    withdrawn = next(i for i, (kind, _) in enumerate(got) if kind == "consent.withdrawn")
    assert got[:3] == [
        ("plan.created", {stad}),
        ("action.proposed", {stad}),
        ("consent.given", {stad, region}),
    ]
    assert got[3] == ("action.proposed", {stad, region})
    assert withdrawn == 4
    assert got[withdrawn + 1 :] == [
        ("action.accepted", {stad}),
        ("action.proposed", {stad}),
        ("plan.cancelled", {stad}),
    ]
    assert all(sis not in orgs_ for _, orgs_ in got)

    # The pull feed says the same, organisation by organisation.
    region_feed = await _feed(client, auth, "region-sthlm")
    assert [e["seq"] for e in region_feed] == [e.seq for e in outbox[2:4]]
    assert await _feed(client, auth, "sis") == []
    assert [e["seq"] for e in await _feed(client, auth, "sthlm-stad")] == [e.seq for e in outbox]
    assert region not in await _recipients(session, outbox[-1])


async def test_a_new_consent_brings_the_events_back(
    drv: PlanDriver, session: AsyncSession, orgs: dict[str, OrgRef]
) -> None:
    region = orgs["region-sthlm"].id
    plan = await drv.create_plan()
    pid = plan["id"]
    await drv.add_participant(pid, "region-sthlm")
    first = await drv.add_consent(pid, ["region-sthlm"])
    await _ok(await drv.post(pid, f"/consents/{first['consents'][0]['id']}/withdraw", {"reason": "Nej"}))
    await drv.add_action(pid, "region-sthlm", description="Utan samtycke")
    await drv.add_consent(pid, ["region-sthlm"])
    await drv.add_action(pid, "region-sthlm", description="Med nytt samtycke")
    outbox = await _events(session)
    proposed = [e for e in outbox if e.event_type == EventType.action_proposed]
    assert [region in await _recipients(session, e) for e in proposed] == [False, True]


# ---- the pull feed -------------------------------------------------------------------------


async def test_the_feed_walks_every_event_once_in_seq_order(
    drv: PlanDriver,
    session: AsyncSession,
    client: httpx.AsyncClient,
    auth: AuthFactory,
    orgs: dict[str, OrgRef],
) -> None:
    system = auth("sthlm-stad", "system")
    for i in range(4):
        p = await drv.create_plan(title=f"Plan {i}")
        if i % 2:
            await _ok(await drv.transition(p["id"], "cancelled", p["version"]))
    await drv.create_plan(org="huddinge")  # another organisation's plan: never in this feed
    region_plan = await drv.create_plan(org="region-sthlm")

    mine = [e.seq for e in await _events(session) if orgs["sthlm-stad"].id in await _recipients(session, e)]
    assert len(mine) == 6

    walked: list[int] = []
    after, pages = "0", 0
    while True:
        r = await client.get(f"/api/v1/events?after={after}&limit=4", headers=system)
        page = await _ok(r)
        pages += 1
        assert pages < 10
        items = page["items"]
        assert len(items) <= 4
        if not items:
            assert page["next_cursor"] == after  # nothing new: the cursor stays where it was
            break
        walked += [e["seq"] for e in items]
        assert page["next_cursor"] == str(items[-1]["seq"])
        after = page["next_cursor"]
    assert walked == mine  # in order, no gaps, no repeats
    assert walked == sorted(set(walked))
    assert pages == 3

    everything = await _ok(await client.get("/api/v1/events?limit=200", headers=system))
    assert [e["seq"] for e in everything["items"]] == mine
    assert all(e["plan_id"] != region_plan["id"] for e in everything["items"])
    first = everything["items"][0]
    assert set(first) == {
        "seq",
        "id",
        "event_type",
        "occurred_at",
        "plan_id",
        "actor_organisation_id",
        "payload",
    }
    assert first["event_type"] == "plan.created"

    # The cursor is stable: what happens later comes after it, and only that.
    p = await drv.create_plan(title="Senare")
    page = await _ok(await client.get(f"/api/v1/events?after={after}", headers=system))
    assert [(e["event_type"], e["plan_id"]) for e in page["items"]] == [("plan.created", p["id"])]
    assert int(page["items"][0]["seq"]) > int(after)
    # Reading again from the same cursor gives the same answer.
    again = await _ok(await client.get(f"/api/v1/events?after={after}", headers=system))
    assert again["items"] == page["items"]


@pytest.mark.parametrize("role", ["handlaggare", "samordnare", "lasare", "org_admin", "auditor"])
async def test_the_feed_is_for_system_clients_only(
    drv: PlanDriver, client: httpx.AsyncClient, auth: AuthFactory, role: str
) -> None:
    await drv.create_plan()
    r = await client.get("/api/v1/events", headers=auth("sthlm-stad", role))
    body = assert_problem(r, 403)
    assert "items" not in body


async def test_the_feed_needs_a_token_and_a_valid_cursor(
    client: httpx.AsyncClient, auth: AuthFactory
) -> None:
    assert_problem(await client.get("/api/v1/events"), 401)
    system = auth("sthlm-stad", "system")
    for query in ("after=-1", "after=abc", "after=1.5", "limit=0", "limit=201"):
        assert_problem(await client.get(f"/api/v1/events?{query}", headers=system), 422)
    empty = await _ok(await client.get("/api/v1/events?after=999999999", headers=system))
    assert empty == {"items": [], "next_cursor": "999999999"}
