"""Follow-ups over HTTP: scheduling, recording the outcome and the next date (which becomes the
plan's follow-up date), the worklist and the timeline, bad input that changes nothing, and
organisations outside the plan."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.audit import AuditEvent
from app.models.plan import Plan
from tests.conftest import assert_problem
from tests.plan_helpers import PlanDriver
from tests.routers.test_meetings import (
    OUTSIDERS,
    etag,
    expect_refused,
    if_match,
    names_field,
    plan_state,
    shared_plan,
    timeline,
    versions,
    worklist,
)

TODAY = datetime.now(UTC).date()


@pytest.fixture
def drv(client: httpx.AsyncClient, auth, orgs) -> PlanDriver:
    return PlanDriver(client, auth, orgs)


def day(offset: int) -> str:
    return str(TODAY + timedelta(days=offset))


async def schedule(drv: PlanDriver, pid: str, due: str, by: str = "sthlm-stad") -> dict[str, Any]:
    r = await drv.post(pid, "/follow-ups", {"due_date": due}, org=by)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def follow_up_of(drv: PlanDriver, pid: str, fid: str, org: str = "sthlm-stad") -> dict[str, Any]:
    r = await drv.client.get(f"/api/v1/plans/{pid}/follow-ups/{fid}", headers=drv.h(org))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def active_plan(drv: PlanDriver, follow_up: str) -> dict[str, Any]:
    plan = await drv.ready_plan()
    r = await drv.patch(plan["id"], "", {"follow_up_date": follow_up}, **if_match(plan["version"]))
    assert r.status_code == 200, r.text
    r = await drv.transition(plan["id"], "active", r.json()["version"])
    assert r.status_code == 200, r.text
    return dict(r.json())


def follow_up_signals(items: list[dict[str, Any]], pid: str) -> list[str]:
    return [i["signal"] for i in items if i["plan_id"] == pid and i["signal"].startswith("follow_up")]


# ---- the life of a follow-up ---------------------------------------------------------------


async def test_schedule_record_and_the_next_date(drv: PlanDriver, session: AsyncSession) -> None:
    plan = await active_plan(drv, follow_up=day(30))
    pid, cid = plan["id"], plan["client_id"]
    # A follow-up before the plan's date becomes the plan's date; the worklist shows it due.
    r = await drv.post(pid, "/follow-ups", {"due_date": day(3)}, **if_match(plan["version"]))
    assert r.status_code == 201, r.text
    follow_up = r.json()
    fid = follow_up["id"]
    assert etag(r) == plan["version"] + 1
    assert r.headers["location"] == f"/api/v1/plans/{pid}/follow-ups/{fid}"
    assert follow_up["due_date"] == day(3) and follow_up["plan_id"] == pid
    assert follow_up["held_date"] is None and follow_up["outcome_code"] is None
    assert follow_up["created_by_organisation_id"] == str(drv.orgs["sthlm-stad"].id)
    assert (await plan_state(drv, pid))["follow_up_date"] == day(3)
    assert follow_up_signals(await worklist(drv), pid) == ["follow_up_due"]
    # A later one leaves the plan's date alone.
    later = await schedule(drv, pid, day(40), by="region-sthlm")
    assert (await plan_state(drv, pid))["follow_up_date"] == day(3)

    # Both huvudmän read them, by due date.
    for org in ("sthlm-stad", "region-sthlm"):
        r = await drv.client.get(f"/api/v1/plans/{pid}/follow-ups", headers=drv.h(org))
        assert r.status_code == 200, r.text
        assert [f["id"] for f in r.json()["items"]] == [fid, later["id"]]
        assert await follow_up_of(drv, pid, fid, org) == follow_up

    # The region records it held today, with an outcome and the next date.
    body = {
        "held_date": day(0),
        "outcome_code": "revise",
        "outcome_text": "LARO-dosen ses över.",
        "next_follow_up_date": day(60),
    }
    r = await drv.patch(pid, f"/follow-ups/{fid}", body, org="region-sthlm")
    assert r.status_code == 200, r.text
    recorded = r.json()
    assert {k: recorded[k] for k in body} == body
    assert recorded["recorded_by_organisation_id"] == str(drv.orgs["region-sthlm"].id)
    assert recorded["recorded_at"] is not None
    state = await plan_state(drv, pid)
    assert state["follow_up_date"] == day(60) and etag(r) == state["version"]
    assert follow_up_signals(await worklist(drv), pid) == []
    # The outcome text may be corrected; the next date then stays.
    r = await drv.patch(pid, f"/follow-ups/{fid}", {"outcome_text": "LARO-dosen höjs."})
    assert r.status_code == 200, r.text
    assert r.json()["outcome_text"] == "LARO-dosen höjs." and r.json()["next_follow_up_date"] == day(60)
    assert (await plan_state(drv, pid))["follow_up_date"] == day(60)

    assert (await versions(drv, pid))[-4:] == [
        "plan.follow_up.add",
        "plan.follow_up.add",
        "plan.follow_up.record",
        "plan.follow_up.record",
    ]
    # The held follow-up is on the timeline; the one still to come is not.
    items = [i for i in await timeline(drv, cid) if i["kind"] == "follow_up"]
    assert [(i["follow_up_id"], i["date"], i["plan_id"]) for i in items] == [(fid, day(0), pid)]
    assert items[0]["title"].startswith("Uppföljning")
    assert items[0]["organisation_id"] == str(drv.orgs["sthlm-stad"].id)

    audited = {
        (e.action, e.object_type)
        for e in (
            await session.execute(select(AuditEvent).where(AuditEvent.client_id == uuid.UUID(cid)))
        ).scalars()
    }
    assert {
        ("plan.follow_up.add", "follow_up"),
        ("plan.follow_up.record", "follow_up"),
        ("plan.follow_ups.read", "plan"),
        ("plan.follow_up.read", "follow_up"),
    } <= audited


async def test_a_follow_up_replaces_a_passed_plan_date(drv: PlanDriver, session: AsyncSession) -> None:
    plan = await active_plan(drv, follow_up=day(30))
    pid = plan["id"]
    await session.execute(
        update(Plan).where(Plan.id == uuid.UUID(pid)).values(follow_up_date=TODAY - timedelta(days=2))  # type: ignore[arg-type]
    )
    await session.commit()
    assert follow_up_signals(await worklist(drv), pid) == ["follow_up_overdue"]
    await schedule(drv, pid, day(20))
    assert (await plan_state(drv, pid))["follow_up_date"] == day(20)
    assert follow_up_signals(await worklist(drv), pid) == []


async def test_a_late_follow_up_recorded_without_a_next_date(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    fid = (await schedule(drv, pid, day(0)))["id"]
    before = (await plan_state(drv, pid))["follow_up_date"]
    r = await drv.patch(pid, f"/follow-ups/{fid}", {"held_date": day(0), "outcome_code": "close"})
    assert r.status_code == 200, r.text
    assert r.json()["next_follow_up_date"] is None and r.json()["outcome_text"] is None
    assert (await plan_state(drv, pid))["follow_up_date"] == before


async def test_follow_ups_list_with_pages(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    ids = [(await schedule(drv, pid, day(d)))["id"] for d in (9, 3, 6)]
    url = f"/api/v1/plans/{pid}/follow-ups"
    r = await drv.client.get(url, params={"limit": 2}, headers=drv.h("sthlm-stad"))
    assert [f["id"] for f in r.json()["items"]] == [ids[1], ids[2]] and r.json()["next_cursor"]
    r = await drv.client.get(
        url, params={"limit": 2, "cursor": r.json()["next_cursor"]}, headers=drv.h("sthlm-stad")
    )
    assert [f["id"] for f in r.json()["items"]] == [ids[0]] and r.json()["next_cursor"] is None
    r = await drv.client.get(url, params={"cursor": "bm90LWEtY3Vyc29y"}, headers=drv.h("sthlm-stad"))
    assert_problem(r, 400)


async def test_a_retried_schedule_with_the_same_key(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    first = await drv.post(pid, "/follow-ups", {"due_date": day(5)}, **{"Idempotency-Key": "fu-1"})
    again = await drv.post(pid, "/follow-ups", {"due_date": day(5)}, **{"Idempotency-Key": "fu-1"})
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert (await versions(drv, pid)).count("plan.follow_up.add") == 1


# ---- bad input changes nothing -------------------------------------------------------------


async def test_bad_schedules(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    existing = await schedule(drv, pid, day(10))

    async def read() -> Any:
        r = await drv.client.get(f"/api/v1/plans/{pid}/follow-ups", headers=drv.h("sthlm-stad"))
        return r.json()

    for body, field in (
        ({"due_date": day(-1)}, "due_date"),
        ({"due_date": "2027-02-30"}, "due_date"),
        ({}, "due_date"),
        ({"due_date": day(5), "held_date": day(0)}, "held_date"),
    ):
        problem = await expect_refused(
            drv, lambda b=body: drv.post(pid, "/follow-ups", b), pid, 422, reads=read
        )
        assert names_field(problem, field), (body, problem)
    # A second open follow-up on the same day.
    problem = await expect_refused(
        drv, lambda: drv.post(pid, "/follow-ups", {"due_date": day(10)}), pid, 409, reads=read
    )
    assert problem["follow_up_id"] == existing["id"]
    # A reader may not schedule.
    await expect_refused(
        drv, lambda: drv.post(pid, "/follow-ups", {"due_date": day(5)}, role="lasare"), pid, 403, reads=read
    )


async def test_bad_records(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    fid = (await schedule(drv, pid, day(10)))["id"]

    async def read() -> dict[str, Any]:
        return await follow_up_of(drv, pid, fid)

    cases: list[tuple[dict[str, Any], str]] = [
        ({"outcome_code": "continue"}, "held_date"),  # an outcome needs the held date
        ({"outcome_text": "Bra"}, "held_date"),
        ({"next_follow_up_date": day(30)}, "held_date"),
        ({"held_date": day(1), "outcome_code": "continue"}, "held_date"),  # not in the future
        ({"held_date": day(-400), "outcome_code": "continue"}, "held_date"),  # before the plan
        ({"held_date": day(0)}, "outcome_code"),  # held needs an outcome
        ({"held_date": day(0), "outcome_code": None}, "outcome_code"),
        ({"held_date": None, "outcome_code": "continue"}, "held_date"),
        ({"held_date": day(0), "outcome_code": "maybe"}, "outcome_code"),
        (
            {"held_date": day(0), "outcome_code": "close", "next_follow_up_date": day(0)},
            "next_follow_up_date",
        ),
        ({"held_date": day(0), "outcome_code": "close", "due_date": day(3)}, "due_date"),
        ({"held_date": day(0), "outcome_code": "close", "outcome_text": "x" * 4001}, "outcome_text"),
        ({}, "body"),
    ]
    for body, field in cases:
        problem = await expect_refused(
            drv, lambda b=body: drv.patch(pid, f"/follow-ups/{fid}", b), pid, 422, reads=read
        )
        assert names_field(problem, field), (body, problem)
    # Once held, a next date before it or already past is refused too.
    r = await drv.patch(pid, f"/follow-ups/{fid}", {"held_date": day(0), "outcome_code": "continue"})
    assert r.status_code == 200, r.text
    for next_date in (day(0), day(-1)):
        problem = await expect_refused(
            drv,
            lambda n=next_date: drv.patch(pid, f"/follow-ups/{fid}", {"next_follow_up_date": n}),
            pid,
            422,
            reads=read,
        )
        assert names_field(problem, "next_follow_up_date"), problem
    # Unknown follow-ups, and those of another plan, are not found.
    other = await shared_plan(drv)
    other_fid = (await schedule(drv, other, day(10)))["id"]
    for missing in (str(uuid.uuid4()), other_fid):
        await expect_refused(
            drv,
            lambda m=missing: drv.patch(
                pid, f"/follow-ups/{m}", {"held_date": day(0), "outcome_code": "other"}
            ),
            pid,
            404,
        )
        assert_problem(
            await drv.client.get(f"/api/v1/plans/{pid}/follow-ups/{missing}", headers=drv.h("sthlm-stad")),
            404,
        )
    # A reader may not record.
    await expect_refused(
        drv,
        lambda: drv.patch(
            pid, f"/follow-ups/{fid}", {"outcome_text": "x"}, org="region-sthlm", role="lasare"
        ),
        pid,
        403,
        reads=read,
    )
    # A stale If-Match.
    version = (await plan_state(drv, pid))["version"]
    await expect_refused(
        drv,
        lambda: drv.patch(pid, f"/follow-ups/{fid}", {"outcome_text": "x"}, **if_match(version - 1)),
        pid,
        412,
        reads=read,
    )


async def test_a_closed_plan_takes_no_follow_up_changes(drv: PlanDriver) -> None:
    plan = await drv.ready_plan()
    pid = plan["id"]
    fid = (await schedule(drv, pid, day(0)))["id"]
    r = await drv.transition(pid, "active", (await plan_state(drv, pid))["version"])
    assert r.status_code == 200, r.text
    r = await drv.transition(pid, "closed", r.json()["version"])
    assert r.status_code == 200, r.text

    async def read() -> dict[str, Any]:
        return await follow_up_of(drv, pid, fid)

    calls: list[Callable[[], Awaitable[httpx.Response]]] = [
        lambda: drv.post(pid, "/follow-ups", {"due_date": day(5)}),
        lambda: drv.patch(pid, f"/follow-ups/{fid}", {"held_date": day(0), "outcome_code": "close"}),
    ]
    for call in calls:
        problem = await expect_refused(drv, call, pid, 422, reads=read)
        assert [e["rule"] for e in problem["errors"]] == ["plan_open"]


# ---- organisations and roles outside the plan ----------------------------------------------


async def test_organisations_outside_the_plan_get_404_and_change_nothing(drv: PlanDriver) -> None:
    pid = await shared_plan(drv)
    fid = (await schedule(drv, pid, day(10)))["id"]

    async def read() -> dict[str, Any]:
        return await follow_up_of(drv, pid, fid)

    base = f"/api/v1/plans/{pid}"
    record = {"held_date": day(0), "outcome_code": "continue"}
    for org in OUTSIDERS:
        headers = drv.h(org)
        for call in (
            lambda h=headers: drv.client.post(f"{base}/follow-ups", json={"due_date": day(5)}, headers=h),
            lambda h=headers: drv.client.get(f"{base}/follow-ups", headers=h),
            lambda h=headers: drv.client.get(f"{base}/follow-ups/{fid}", headers=h),
            lambda h=headers: drv.client.patch(f"{base}/follow-ups/{fid}", json=record, headers=h),
        ):
            await expect_refused(drv, call, pid, 404, reads=read)
    for role in ("rss", "org_admin", "auditor"):
        headers = drv.auth("sthlm-stad", role, county="01")
        assert_problem(await drv.client.get(f"{base}/follow-ups", headers=headers), 404)
        assert_problem(await drv.client.patch(f"{base}/follow-ups/{fid}", json=record, headers=headers), 404)
    assert_problem(await drv.client.get(f"{base}/follow-ups"), 401)
