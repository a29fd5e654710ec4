"""Meetings over HTTP: the kallelse and its warnings, answers by invitees only, moving and holding,
the worklist signal and the timeline, bad input that changes nothing, organisations outside the
plan, and row-level security on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db import SYSTEM, TenantContext, bind_tenant
from app.models.audit import AuditEvent
from app.models.meeting import Meeting
from app.services.meetings import OTHER_HUVUDMAN_WARNING
from tests.conftest import assert_problem
from tests.plan_helpers import PlanDriver

OUTSIDERS = ("huddinge", "uppsala", "region-uppsala")


@pytest.fixture
def drv(client: httpx.AsyncClient, auth, orgs) -> PlanDriver:
    return PlanDriver(client, auth, orgs)


# ---- helpers (test_follow_ups.py uses them too) --------------------------------------------


def oid(drv: PlanDriver, key: str) -> str:
    return str(drv.orgs[key].id)


def at(days: float = 0, **delta: float) -> str:
    """An ISO time with offset, `days` from now."""
    return (datetime.now(UTC) + timedelta(days=days, **delta)).isoformat()


def if_match(version: int | str) -> dict[str, str]:
    return {"If-Match": f'"{version}"'}


def etag(r: httpx.Response) -> int:
    return int(r.headers["etag"].strip('"'))


async def plan_state(drv: PlanDriver, pid: str, org: str = "sthlm-stad") -> dict[str, Any]:
    r = await drv.get(pid, org=org)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def shared_plan(drv: PlanDriver) -> str:
    """A kommun's draft with the region (huvudman) and SiS (other actor), all under consent."""
    plan = await drv.create_plan()
    pid = str(plan["id"])
    await drv.add_participant(pid, "region-sthlm")
    await drv.add_participant(pid, "sis", kind="other")
    await drv.add_consent(pid, ["sthlm-stad", "region-sthlm", "sis"])
    return pid


async def closed_plan(drv: PlanDriver) -> str:
    plan = await drv.ready_plan()
    r = await drv.transition(plan["id"], "active", plan["version"])
    assert r.status_code == 200, r.text
    r = await drv.transition(plan["id"], "closed", r.json()["version"])
    assert r.status_code == 200, r.text
    return str(plan["id"])


async def versions(drv: PlanDriver, pid: str) -> list[str]:
    r = await drv.client.get(f"/api/v1/plans/{pid}/versions", headers=drv.h("sthlm-stad"))
    assert r.status_code == 200, r.text
    return [v["change"] for v in r.json()]


def kallelse(drv: PlanDriver, *invitees: str, **fields: Any) -> dict[str, Any]:
    return {
        "starts_at": at(7),
        "purpose": "SIP-möte inför utskrivning",
        "questions": ["Boende", "Läkemedelsassisterad behandling"],
        "location": "Socialförvaltningen, rum 4",
        "invitee_organisation_ids": [oid(drv, k) for k in invitees],
        **fields,
    }


async def call_meeting(
    drv: PlanDriver, pid: str, *invitees: str, by: str = "sthlm-stad", **fields: Any
) -> dict[str, Any]:
    r = await drv.post(pid, "/meetings", kallelse(drv, *invitees, **fields), org=by)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def meeting_of(drv: PlanDriver, pid: str, mid: str, org: str = "sthlm-stad") -> dict[str, Any]:
    r = await drv.client.get(f"/api/v1/plans/{pid}/meetings/{mid}", headers=drv.h(org))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def expect_refused(
    drv: PlanDriver,
    call: Callable[[], Awaitable[httpx.Response]],
    pid: str,
    status: int,
    *,
    reads: Callable[[], Awaitable[Any]] | None = None,
) -> dict[str, Any]:
    """The call answers a problem with `status`, and the plan (and what `reads` returns) is unchanged."""
    before = await plan_state(drv, pid)
    before_extra = await reads() if reads else None
    body = assert_problem(await call(), status)
    assert await plan_state(drv, pid) == before
    if reads:
        assert await reads() == before_extra
    return dict(body)


def names_field(body: dict[str, Any], name: str) -> bool:
    fields = [str(e.get("field", "")) for e in body.get("errors") or []]
    return any(name in f.split(".") for f in fields)


async def worklist(drv: PlanDriver, org: str = "sthlm-stad") -> list[dict[str, Any]]:
    r = await drv.client.get("/api/v1/worklist", headers=drv.h(org))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def timeline(drv: PlanDriver, cid: str, org: str = "sthlm-stad") -> list[dict[str, Any]]:
    r = await drv.client.get(f"/api/v1/clients/{cid}/timeline", headers=drv.h(org))
    assert r.status_code == 200, r.text
    return list(r.json())


# ---- the life of a meeting -----------------------------------------------------------------


async def test_kallelse_answers_move_and_hold(drv: PlanDriver, session: AsyncSession) -> None:
    pid = await shared_plan(drv)
    version = (await plan_state(drv, pid))["version"]
    body = kallelse(drv, "region-sthlm", "sis")
    r = await drv.post(pid, "/meetings", body, **if_match(version))
    assert r.status_code == 201, r.text
    meeting = r.json()
    mid = meeting["id"]
    assert etag(r) == version + 1 == (await plan_state(drv, pid))["version"]
    assert r.headers["location"] == f"/api/v1/plans/{pid}/meetings/{mid}"
    assert meeting["plan_id"] == pid
    assert meeting["organiser_organisation_id"] == oid(drv, "sthlm-stad")
    assert meeting["questions"] == body["questions"] and meeting["location"] == body["location"]
    assert datetime.fromisoformat(meeting["starts_at"]) == datetime.fromisoformat(body["starts_at"])
    assert meeting["held_at"] is None and meeting["record"] is None and meeting["attendees"] == []
    assert meeting["warnings"] == []
    invitees = {i["organisation_id"]: i for i in meeting["invitees"]}
    assert set(invitees) == {oid(drv, "region-sthlm"), oid(drv, "sis")}
    assert all(i["response"] == "pending" and i["responded_at"] is None for i in invitees.values())
    assert invitees[oid(drv, "region-sthlm")]["organisation_kind"] == "region"

    # Every participant under consent reads it, in the list and alone.
    for org in ("sthlm-stad", "region-sthlm", "sis"):
        r = await drv.client.get(f"/api/v1/plans/{pid}/meetings", headers=drv.h(org))
        assert r.status_code == 200, r.text
        assert [m["id"] for m in r.json()["items"]] == [mid] and r.json()["next_cursor"] is None
        assert etag(r) == version + 1
        assert await meeting_of(drv, pid, mid, org) == meeting
    assert await meeting_of(drv, pid, mid, "sthlm-stad") == meeting

    # The region proposes another time, then accepts; SiS declines with a comment.
    proposal = at(8)
    r = await drv.post(
        pid, f"/meetings/{mid}/responses",
        {"response": "proposed_time", "proposed_starts_at": proposal, "comment": "Läkaren kan inte"},
        org="region-sthlm",
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert etag(r) == version + 2
    region = next(i for i in r.json()["invitees"] if i["organisation_id"] == oid(drv, "region-sthlm"))
    assert region["response"] == "proposed_time" and region["comment"] == "Läkaren kan inte"
    assert datetime.fromisoformat(region["proposed_starts_at"]) == datetime.fromisoformat(proposal)
    r = await drv.post(
        pid, f"/meetings/{mid}/responses", {"response": "declined", "comment": "Ej aktuellt"}, org="sis"
    )
    assert r.status_code == 200, r.text

    # The kommun moves the meeting to the proposed time: everyone answers again.
    r = await drv.patch(
        pid, f"/meetings/{mid}", {"starts_at": proposal, "location": "https://video.example.se/sip"}
    )
    assert r.status_code == 200, r.text
    assert etag(r) == version + 4
    moved = r.json()
    assert moved["location"] == "https://video.example.se/sip"
    assert all(i["response"] == "pending" and i["proposed_starts_at"] is None for i in moved["invitees"])
    r = await drv.post(pid, f"/meetings/{mid}/responses", {"response": "accepted"}, org="region-sthlm")
    assert r.status_code == 200, r.text
    # A new place only keeps the answers.
    r = await drv.patch(pid, f"/meetings/{mid}", {"location": "Beroendecentrum, rum 2"})
    assert r.status_code == 200, r.text
    assert {i["organisation_id"]: i["response"] for i in r.json()["invitees"]}[
        oid(drv, "region-sthlm")
    ] == "accepted"

    # The region holds it, with attendees and minutes.
    held_at = at(0, minutes=-1)
    attendees = [
        {"organisation_id": oid(drv, "sthlm-stad"), "name": "Hanna Handläggare", "role": "socialsekreterare"},
        {"organisation_id": oid(drv, "region-sthlm"), "name": "Lars Läkare", "role": "läkare"},
        {"name": "Kim Andersson", "role": "klient"},
    ]
    record = "Boendestöd från januari. Regionen ansvarar för LARO."
    r = await drv.patch(
        pid,
        f"/meetings/{mid}",
        {"held_at": held_at, "attendees": attendees, "record": record},
        org="region-sthlm",
    )
    assert r.status_code == 200, r.text
    held = r.json()
    assert datetime.fromisoformat(held["held_at"]) == datetime.fromisoformat(held_at)
    assert held["record"] == record and held["warnings"] == []
    assert held["attendees"][2] == {"organisation_id": None, "name": "Kim Andersson", "role": "klient"}
    # The minutes may be corrected afterwards; the time, place and invitees may not.
    r = await drv.patch(pid, f"/meetings/{mid}", {"record": record + " Uppföljning i mars."})
    assert r.status_code == 200, r.text
    assert r.json()["record"].endswith("i mars.")
    for change in ({"starts_at": at(9)}, {"location": "Annan plats"}, {"invitee_organisation_ids": []}):
        await expect_refused(drv, lambda c=change: drv.patch(pid, f"/meetings/{mid}", c), pid, 409)
    await expect_refused(
        drv,
        lambda: drv.post(pid, f"/meetings/{mid}/responses", {"response": "declined"}, org="sis"),
        pid,
        409,
    )

    assert (await versions(drv, pid))[-8:] == [
        "plan.meeting.invite",
        "plan.meeting.answer",
        "plan.meeting.answer",
        "plan.meeting.update",
        "plan.meeting.answer",
        "plan.meeting.update",
        "plan.meeting.hold",
        "plan.meeting.update",
    ]

    # The held meeting is on the client's timeline for those who see the plan.
    cid = (await plan_state(drv, pid))["client_id"]
    for org in ("sthlm-stad", "region-sthlm"):
        items = [i for i in await timeline(drv, cid, org) if i["kind"] == "meeting"]
        assert [(i["meeting_id"], i["plan_id"]) for i in items] == [(mid, pid)], org
        assert datetime.fromisoformat(items[0]["at"]) == datetime.fromisoformat(held_at)
        assert items[0]["title"].startswith("SIP-möte")

    # Reads and changes are in the audit trail, with the client.
    audited = {
        (e.action, e.object_type)
        for e in (
            await session.execute(select(AuditEvent).where(AuditEvent.client_id == uuid.UUID(cid)))
        ).scalars()
    }
    assert {
        ("plan.meeting.invite", "meeting"),
        ("plan.meeting.answer", "meeting_invitee"),
        ("plan.meeting.hold", "meeting"),
        ("plan.meetings.read", "plan"),
        ("plan.meeting.read", "meeting"),
    } <= audited


async def test_meetings_list_in_start_order_with_pages(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    ids = [(await call_meeting(drv, pid, "region-sthlm", starts_at=at(days)))["id"] for days in (9, 3, 6)]
    url = f"/api/v1/plans/{pid}/meetings"
    r = await drv.client.get(url, params={"limit": 2}, headers=drv.h("region-sthlm"))
    assert r.status_code == 200, r.text
    first = r.json()
    assert [m["id"] for m in first["items"]] == [ids[1], ids[2]] and first["next_cursor"]
    r = await drv.client.get(
        url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=drv.h("region-sthlm")
    )
    assert [m["id"] for m in r.json()["items"]] == [ids[0]] and r.json()["next_cursor"] is None
    for params in ({"limit": 0}, {"limit": 201}, {"cursor": "not-a-cursor!"}):
        r = await drv.client.get(url, params=params, headers=drv.h("sthlm-stad"))
        assert 400 <= r.status_code < 500, (params, r.text)
        assert_problem(r, r.status_code)


async def test_a_retried_kallelse_with_the_same_key_calls_one_meeting(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    body = kallelse(drv, "region-sthlm")
    first = await drv.post(pid, "/meetings", body, **{"Idempotency-Key": "kallelse-1"})
    again = await drv.post(pid, "/meetings", body, **{"Idempotency-Key": "kallelse-1"})
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json() and again.headers["etag"] == first.headers["etag"]
    r = await drv.client.get(f"/api/v1/plans/{pid}/meetings", headers=drv.h("sthlm-stad"))
    assert len(r.json()["items"]) == 1
    assert (await versions(drv, pid)).count("plan.meeting.invite") == 1
    # The same key with another body is refused.
    r = await drv.post(pid, "/meetings", {**body, "purpose": "Annat"}, **{"Idempotency-Key": "kallelse-1"})
    assert_problem(r, 422)


async def test_stale_if_match_is_refused(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    version = (await plan_state(drv, pid))["version"]
    await expect_refused(
        drv, lambda: drv.post(pid, "/meetings", kallelse(drv), **if_match(version - 1)), pid, 412
    )
    mid = (await call_meeting(drv, pid, "region-sthlm"))["id"]
    await expect_refused(
        drv, lambda: drv.patch(pid, f"/meetings/{mid}", {"location": "X"}, **if_match(version)), pid, 412
    )
    await expect_refused(
        drv,
        lambda: drv.post(
            pid,
            f"/meetings/{mid}/responses",
            {"response": "accepted"},
            org="region-sthlm",
            **if_match(version),
        ),
        pid,
        412,
    )


# ---- warnings and the worklist signal ------------------------------------------------------


async def test_a_kallelse_without_the_other_huvudman_warns_and_signals(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    cid = (await plan_state(drv, pid))["client_id"]
    # Only SiS invited: no one from the region.
    meeting = await call_meeting(drv, pid, "sis", starts_at=at(5))
    mid = meeting["id"]
    assert [w["code"] for w in meeting["warnings"]] == ["meeting_without_other_huvudman"]
    assert meeting["warnings"][0]["message"] == OTHER_HUVUDMAN_WARNING
    assert (await meeting_of(drv, pid, mid))["warnings"] == meeting["warnings"]

    items = [i for i in await worklist(drv) if i["signal"] == "meeting_without_other_huvudman"]
    assert len(items) == 1, items
    item = items[0]
    assert (item["client_id"], item["plan_id"], item["meeting_id"]) == (cid, pid, mid)
    assert item["since"] == meeting["created_at"][:10]
    assert item["due"] == datetime.fromisoformat(meeting["starts_at"]).date().isoformat()
    assert "region" in item["reason"]
    # In urgency order: after unanswered actions, before follow-ups merely due.
    from app.services.worklist import URGENCY, Signal

    assert URGENCY[Signal.action_unanswered] < item["urgency"] < URGENCY[Signal.follow_up_due]

    # Inviting the region fixes the kallelse and the signal.
    r = await drv.patch(
        pid, f"/meetings/{mid}", {"invitee_organisation_ids": [oid(drv, "sis"), oid(drv, "region-sthlm")]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == []
    assert {i["organisation_id"] for i in r.json()["invitees"]} == {oid(drv, "sis"), oid(drv, "region-sthlm")}
    assert not [i for i in await worklist(drv) if i["signal"] == "meeting_without_other_huvudman"]

    # Dropping SiS again keeps the region's answer.
    r = await drv.post(pid, f"/meetings/{mid}/responses", {"response": "accepted"}, org="region-sthlm")
    assert r.status_code == 200, r.text
    r = await drv.patch(pid, f"/meetings/{mid}", {"invitee_organisation_ids": [oid(drv, "region-sthlm")]})
    assert r.status_code == 200, r.text
    assert [(i["organisation_id"], i["response"]) for i in r.json()["invitees"]] == [
        (oid(drv, "region-sthlm"), "accepted")
    ]


async def test_the_signal_for_a_region_organiser_without_the_kommun(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    meeting = await call_meeting(drv, pid, by="region-sthlm")
    assert [w["code"] for w in meeting["warnings"]] == ["meeting_without_other_huvudman"]
    # The kommun's handläggare (the client is theirs) sees the signal; it names the missing kommun.
    items = [i for i in await worklist(drv) if i["signal"] == "meeting_without_other_huvudman"]
    assert [i["meeting_id"] for i in items] == [meeting["id"]]
    assert "kommun" in items[0]["reason"]
    # Organisations outside the plan see nothing of it.
    for org in OUTSIDERS:
        assert not [i for i in await worklist(drv, org) if i["signal"] == "meeting_without_other_huvudman"]


async def lonely_meetings(drv: PlanDriver) -> list[str]:
    return [i["meeting_id"] for i in await worklist(drv) if i["signal"] == "meeting_without_other_huvudman"]


async def test_no_signal_for_held_past_or_closed_meetings_or_with_both_huvudman(
    drv: PlanDriver, session: AsyncSession
) -> None:
    pid = await shared_plan(drv)
    await call_meeting(drv, pid, "region-sthlm")
    lonely = await call_meeting(drv, pid, "sis")
    assert await lonely_meetings(drv) == [lonely["id"]]
    r = await drv.patch(pid, f"/meetings/{lonely['id']}", {"held_at": at(0, minutes=-1)})
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == []
    assert await lonely_meetings(drv) == []
    # A meeting whose time has passed without being held is no longer a kallelse to fix.
    passed = await call_meeting(drv, pid, "sis")
    assert await lonely_meetings(drv) == [passed["id"]]
    await session.execute(
        update(Meeting)
        .where(col(Meeting.id) == uuid.UUID(passed["id"]))
        .values(starts_at=datetime.now(UTC) - timedelta(hours=1))
    )
    await session.commit()
    assert await lonely_meetings(drv) == []
    # Nor one on a closed plan.
    plan = await drv.ready_plan()
    closing = await call_meeting(drv, plan["id"])
    assert await lonely_meetings(drv) == [closing["id"]]
    r = await drv.transition(plan["id"], "active", (await plan_state(drv, plan["id"]))["version"])
    r = await drv.transition(plan["id"], "closed", r.json()["version"])
    assert r.status_code == 200, r.text
    assert await lonely_meetings(drv) == []


async def test_an_invitee_without_consent_is_warned_about(drv: PlanDriver) -> None:
    plan = await drv.create_plan()
    pid = plan["id"]
    await drv.add_participant(pid, "region-sthlm")
    await drv.add_consent(pid, ["sthlm-stad"])  # the region takes part but is not covered
    meeting = await call_meeting(drv, pid, "region-sthlm")
    assert [w["code"] for w in meeting["warnings"]] == ["invitee_cannot_read_plan"]
    assert "Region Stockholm" in meeting["warnings"][0]["message"]
    # The region cannot see the meeting, let alone answer it.
    assert_problem(
        await drv.post(
            pid, f"/meetings/{meeting['id']}/responses", {"response": "accepted"}, org="region-sthlm"
        ),
        404,
    )


# ---- bad input changes nothing -------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"starts_at": "past"}, "starts_at"),
        ({"starts_at": "2030-01-01T10:00:00"}, "starts_at"),  # no offset
        ({"purpose": ""}, "purpose"),
        ({"location": ""}, "location"),
        ({"questions": [""]}, "questions"),
        ({"invitee_organisation_ids": ["not-a-uuid"]}, "invitee_organisation_ids"),
        ({"invitee_organisation_ids": "organiser"}, "invitee_organisation_ids"),
        ({"held_at": "2026-01-01T10:00:00+01:00"}, "held_at"),  # no such field on a kallelse
    ],
)
async def test_bad_kallelse(drv: PlanDriver, change: dict[str, Any], field: str) -> None:
    pid = await shared_plan(drv)
    body = kallelse(drv, "region-sthlm")
    if change.get("starts_at") == "past":
        change = {"starts_at": at(0, minutes=-1)}
    if change.get("invitee_organisation_ids") == "organiser":
        change = {"invitee_organisation_ids": [oid(drv, "sthlm-stad"), oid(drv, "region-sthlm")]}
    body.update(change)
    problem = await expect_refused(drv, lambda: drv.post(pid, "/meetings", body), pid, 422)
    assert names_field(problem, field), problem
    r = await drv.client.get(f"/api/v1/plans/{pid}/meetings", headers=drv.h("sthlm-stad"))
    assert r.json()["items"] == []


@pytest.mark.parametrize("invitee", ["huddinge", "region-uppsala", "unknown"])
async def test_invitees_must_take_part_in_the_plan(drv: PlanDriver, invitee: str) -> None:
    pid = await shared_plan(drv)
    org_id = str(uuid.uuid4()) if invitee == "unknown" else oid(drv, invitee)
    body = {**kallelse(drv, "region-sthlm"), "invitee_organisation_ids": [oid(drv, "region-sthlm"), org_id]}
    problem = await expect_refused(drv, lambda: drv.post(pid, "/meetings", body), pid, 422)
    assert [e["rule"] for e in problem["errors"]] == ["invitee_participant"]
    assert org_id in problem["errors"][0]["message"]
    # Nor can an outsider be added later.
    mid = (await call_meeting(drv, pid, "region-sthlm"))["id"]

    async def read() -> dict[str, Any]:
        return await meeting_of(drv, pid, mid)

    await expect_refused(
        drv,
        lambda: drv.patch(pid, f"/meetings/{mid}", {"invitee_organisation_ids": [org_id]}),
        pid,
        422,
        reads=read,
    )


async def test_bad_answers(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    mid = (await call_meeting(drv, pid, "region-sthlm"))["id"]

    async def read() -> dict[str, Any]:
        return await meeting_of(drv, pid, mid)

    def answer(
        body: Any, org: str = "region-sthlm", role: str = "handlaggare"
    ) -> Callable[[], Awaitable[httpx.Response]]:
        return lambda: drv.post(pid, f"/meetings/{mid}/responses", body, org=org, role=role)

    # Organisations not invited, even the organiser and a participant under consent: 403.
    for org in ("sis", "sthlm-stad"):
        problem = await expect_refused(drv, answer({"response": "accepted"}, org=org), pid, 403, reads=read)
        assert "not invited" in str(problem["detail"])
    # A reader of the invited organisation may not answer for it.
    await expect_refused(drv, answer({"response": "accepted"}, role="lasare"), pid, 403, reads=read)
    for body, field in (
        ({"response": "proposed_time"}, "proposed_starts_at"),
        ({"response": "proposed_time", "proposed_starts_at": at(-1)}, "proposed_starts_at"),
        ({"response": "proposed_time", "proposed_starts_at": "2030-01-01T10:00:00"}, "proposed_starts_at"),
        ({"response": "accepted", "proposed_starts_at": at(3)}, "proposed_starts_at"),
        ({"response": "pending"}, "response"),
        ({"response": "maybe"}, "response"),
        ({"response": "accepted", "comment": "x" * 1001}, "comment"),
        ({"response": "accepted", "organisation_id": oid(drv, "sis")}, "organisation_id"),
    ):
        problem = await expect_refused(drv, answer(body), pid, 422, reads=read)
        assert names_field(problem, field), (body, problem)
    # Unknown meetings, and meetings of another plan, are not found.
    other = await shared_plan(drv)
    other_mid = (await call_meeting(drv, other, "region-sthlm"))["id"]
    for missing in (str(uuid.uuid4()), other_mid):
        await expect_refused(
            drv,
            lambda m=missing: drv.post(
                pid, f"/meetings/{m}/responses", {"response": "accepted"}, org="region-sthlm"
            ),
            pid,
            404,
        )


async def test_bad_changes_and_holding(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    mid = (await call_meeting(drv, pid, "region-sthlm"))["id"]

    async def read() -> dict[str, Any]:
        return await meeting_of(drv, pid, mid)

    cases: list[tuple[dict[str, Any], str]] = [
        ({"held_at": at(1)}, "held_at"),  # a meeting is not held in the future
        ({"held_at": at(-2)}, "held_at"),  # nor before it was called
        ({"held_at": "2026-01-01T10:00:00"}, "held_at"),
        ({"record": "Minnesanteckningar"}, "held_at"),  # minutes go with holding
        ({"attendees": [{"name": "Hanna", "role": "socialsekreterare"}]}, "held_at"),
        ({"starts_at": at(-1)}, "starts_at"),
        ({"starts_at": None}, "starts_at"),
        ({"location": None}, "location"),
        ({"held_at": None}, "held_at"),
        ({}, "body"),
        ({"held_at": at(0, minutes=-1), "attendees": [{"name": "", "role": "x"}]}, "attendees"),
        ({"held_at": at(0, minutes=-1), "attendees": [{"name": "A", "role": "x", "extra": 1}]}, "attendees"),
        (
            {
                "held_at": at(0, minutes=-1),
                "attendees": [{"organisation_id": str(uuid.uuid4()), "name": "A", "role": "x"}],
            },
            "attendees",
        ),
        ({"organiser_organisation_id": oid(drv, "region-sthlm")}, "organiser_organisation_id"),
        ({"record": "x" * 10001, "held_at": at(0, minutes=-1)}, "record"),
    ]
    for body, field in cases:
        problem = await expect_refused(
            drv, lambda b=body: drv.patch(pid, f"/meetings/{mid}", b), pid, 422, reads=read
        )
        assert names_field(problem, field), (body, problem)
    # A reader may not change a meeting.
    await expect_refused(
        drv,
        lambda: drv.patch(pid, f"/meetings/{mid}", {"location": "X"}, role="lasare"),
        pid,
        403,
        reads=read,
    )
    for missing in (str(uuid.uuid4()), "not-a-uuid"):
        r = await drv.patch(pid, f"/meetings/{missing}", {"location": "X"})
        assert r.status_code in (404, 422), r.text
        assert_problem(r, r.status_code)
    assert_problem(await drv.patch(pid, f"/meetings/{uuid.uuid4()}", {"location": "X"}), 404)


async def test_a_closed_plan_takes_no_meeting_changes(drv: PlanDriver) -> None:
    plan = await drv.ready_plan()
    pid = plan["id"]
    mid = (await call_meeting(drv, pid, "region-sthlm"))["id"]
    r = await drv.transition(pid, "active", (await plan_state(drv, pid))["version"])
    assert r.status_code == 200, r.text
    r = await drv.transition(pid, "closed", r.json()["version"])
    assert r.status_code == 200, r.text

    async def read() -> dict[str, Any]:
        return await meeting_of(drv, pid, mid)

    for call in (
        lambda: drv.post(pid, "/meetings", kallelse(drv, "region-sthlm")),
        lambda: drv.post(pid, f"/meetings/{mid}/responses", {"response": "accepted"}, org="region-sthlm"),
        lambda: drv.patch(pid, f"/meetings/{mid}", {"location": "X"}),
        lambda: drv.patch(pid, f"/meetings/{mid}", {"held_at": at(0, minutes=-1)}),
    ):
        problem = await expect_refused(drv, call, pid, 422, reads=read)
        assert [e["rule"] for e in problem["errors"]] == ["plan_open"]
    # It is still readable.
    assert (await read())["id"] == mid


# ---- organisations and roles outside the plan ----------------------------------------------


async def test_organisations_outside_the_plan_get_404_and_change_nothing(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    mid = (await call_meeting(drv, pid, "region-sthlm"))["id"]

    async def read() -> dict[str, Any]:
        return await meeting_of(drv, pid, mid)

    base = f"/api/v1/plans/{pid}"
    for org in OUTSIDERS:
        headers = drv.h(org)
        for call in (
            lambda h=headers: drv.client.post(f"{base}/meetings", json=kallelse(drv), headers=h),
            lambda h=headers: drv.client.get(f"{base}/meetings", headers=h),
            lambda h=headers: drv.client.get(f"{base}/meetings/{mid}", headers=h),
            lambda h=headers: drv.client.post(
                f"{base}/meetings/{mid}/responses", json={"response": "accepted"}, headers=h
            ),
            lambda h=headers: drv.client.patch(f"{base}/meetings/{mid}", json={"location": "X"}, headers=h),
        ):
            await expect_refused(drv, call, pid, 404, reads=read)
    # Roles that never read plan content get 404 too, even in the organiser's organisation.
    for role in ("rss", "org_admin", "auditor"):
        headers = drv.auth("sthlm-stad", role, county="01")
        assert_problem(await drv.client.get(f"{base}/meetings", headers=headers), 404)
        assert_problem(await drv.client.get(f"{base}/meetings/{mid}", headers=headers), 404)
        assert_problem(await drv.client.post(f"{base}/meetings", json=kallelse(drv), headers=headers), 404)
    # A lasare reads but does not call meetings.
    assert (
        await drv.client.get(f"{base}/meetings", headers=drv.h("sthlm-stad", "lasare"))
    ).status_code == 200
    await expect_refused(
        drv,
        lambda: drv.post(pid, "/meetings", kallelse(drv, "region-sthlm"), role="lasare"),
        pid,
        403,
        reads=read,
    )
    # No token: 401.
    r = await drv.client.get(f"{base}/meetings")
    assert_problem(r, 401)


async def test_withdrawn_consent_takes_the_meetings_away_from_the_region(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    mid = (await call_meeting(drv, pid, "region-sthlm"))["id"]
    assert (await meeting_of(drv, pid, mid, "region-sthlm"))["id"] == mid
    consent_id = (await plan_state(drv, pid))["consents"][0]["id"]
    r = await drv.post(pid, f"/consents/{consent_id}/withdraw", {"reason": "Klienten återkallar"})
    assert r.status_code == 200, r.text
    r = await drv.client.get(f"/api/v1/plans/{pid}/meetings/{mid}", headers=drv.h("region-sthlm"))
    assert_problem(r, 404)
    r = await drv.post(pid, f"/meetings/{mid}/responses", {"response": "accepted"}, org="region-sthlm")
    assert_problem(r, 404)


# ---- row-level security --------------------------------------------------------------------


@pytest.mark.postgresql_only
async def test_meeting_rows_are_under_plan_rls(drv: PlanDriver, session: AsyncSession, orgs) -> None:
    pid = await shared_plan(drv)
    await call_meeting(drv, pid, "region-sthlm")
    r = await drv.post(pid, "/follow-ups", {"due_date": str(datetime.now(UTC).date() + timedelta(days=20))})
    assert r.status_code == 201, r.text
    tables = ("meeting", "meeting_invitee", "follow_up")
    for context in (
        TenantContext(scope="org", organisation_id=None),
        TenantContext.org(orgs["huddinge"].id),
    ):
        await bind_tenant(session, context)
        for table in tables:
            count = (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()  # noqa: S608
            assert count == 0, (context, table)
    for org in ("sthlm-stad", "region-sthlm"):
        await bind_tenant(session, TenantContext.org(orgs[org].id))
        for table in tables:
            query = text(f"SELECT count(*) FROM {table} WHERE plan_id = :p")  # noqa: S608
            count = (await session.execute(query, {"p": uuid.UUID(pid)})).scalar_one()
            assert count == 1, (org, table)
    await bind_tenant(session, SYSTEM)
