"""The care chain over HTTP: one client through two rounds of LVM care with a hand-over between
samordnare, the timeline, bad input that changes nothing, and organisations outside the chain."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.care_chain import CoordinatorAssignment, Episode
from app.models.organisation import Unit
from app.services.episode_rules import add_months
from tests.conftest import assert_problem
from tests.plan_helpers import PlanDriver, new_personal_number

# The service's clock is UTC; so is the tests'.
TODAY = datetime.now(UTC).date()


@pytest.fixture
def drv(client: httpx.AsyncClient, auth, orgs) -> PlanDriver:
    return PlanDriver(client, auth, orgs)


# ---- helpers -------------------------------------------------------------------------------


def oid(drv: PlanDriver, key: str) -> str:
    return str(drv.orgs[key].id)


def day(offset: int) -> str:
    return str(TODAY + timedelta(days=offset))


def episodes_url(cid: str) -> str:
    return f"/api/v1/clients/{cid}/episodes"


def coordinators_url(cid: str) -> str:
    return f"/api/v1/clients/{cid}/coordinators"


def timeline_url(cid: str) -> str:
    return f"/api/v1/clients/{cid}/timeline"


async def record(
    drv: PlanDriver,
    cid: str,
    phase: str,
    start: str,
    *,
    org: str = "sthlm-stad",
    role: str = "handlaggare",
    **fields: Any,
) -> httpx.Response:
    body = {"phase": phase, "start_date": start, **fields}
    return await drv.client.post(episodes_url(cid), json=body, headers=drv.h(org, role))


async def recorded(drv: PlanDriver, cid: str, phase: str, start: str, **kw: Any) -> dict[str, Any]:
    r = await record(drv, cid, phase, start, **kw)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def patch_episode(
    drv: PlanDriver,
    cid: str,
    eid: str,
    body: dict[str, Any],
    org: str = "sthlm-stad",
    role: str = "handlaggare",
) -> httpx.Response:
    return await drv.client.patch(f"{episodes_url(cid)}/{eid}", json=body, headers=drv.h(org, role))


async def user_id(drv: PlanDriver, headers: dict[str, str]) -> str:
    """The user behind a token; the first request registers them."""
    r = await drv.client.get("/api/v1/me", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["user_id"])


async def assign(
    drv: PlanDriver,
    cid: str,
    headers: dict[str, str],
    user: str,
    org: str,
    start: str,
    note: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"user_id": user, "organisation_id": org, "start_date": start}
    if note is not None:
        body["handover_note"] = note
    return await drv.client.post(coordinators_url(cid), json=body, headers=headers)


async def unit(session: AsyncSession, drv: PlanDriver, org_key: str, index: int = 0) -> str:
    ids = (
        (
            await session.execute(
                select(Unit.id).where(Unit.organisation_id == drv.orgs[org_key].id).order_by(Unit.name)
            )
        )
        .scalars()
        .all()
    )
    await session.commit()
    return str(ids[index])


async def count(session: AsyncSession, model: Any, cid: str) -> int:
    n = await session.scalar(select(func.count()).select_from(model).where(model.client_id == uuid.UUID(cid)))
    await session.commit()
    return int(n or 0)


async def snapshot(session: AsyncSession, model: Any, cid: str) -> list[tuple[Any, ...]]:
    """Every row of the client's episodes or assignments, to show that a refusal changed nothing."""
    rows = (await session.execute(select(model).where(model.client_id == uuid.UUID(cid)))).scalars().all()
    out = sorted((tuple(sorted(r.model_dump().items())) for r in rows), key=repr)
    await session.commit()
    return out


async def active_plan(drv: PlanDriver, cid: str, follow_up: str) -> dict[str, Any]:
    """An active SIP of the kommun and the region for the client, with an accepted aftercare action."""
    plan = await drv.create_plan(
        client_id=cid, overall_responsible_organisation_id=oid(drv, "sthlm-stad"), follow_up_date=follow_up
    )
    pid = plan["id"]
    await drv.add_participant(pid, "region-sthlm")
    await drv.add_consent(pid, ["sthlm-stad", "region-sthlm"])
    await drv.add_action(pid, "sthlm-stad", description="Boendestöd efter utskrivning", phase="eftervard")
    _, aid = await drv.add_action(pid, "region-sthlm", description="Läkemedelsassisterad behandling")
    r = await drv.post(pid, f"/actions/{aid}/accept", None, org="region-sthlm")
    assert r.status_code == 200, r.text
    r = await drv.transition(pid, "active", r.json()["version"])
    assert r.status_code == 200, r.text
    return dict(r.json())


async def plan_ids(drv: PlanDriver, headers: dict[str, str], cid: str) -> list[str]:
    r = await drv.client.get("/api/v1/plans", params={"client_id": cid}, headers=headers)
    assert r.status_code == 200, r.text
    return [p["id"] for p in r.json()["items"]]


async def worklist_clients(drv: PlanDriver, headers: dict[str, str]) -> set[str]:
    r = await drv.client.get("/api/v1/worklist", headers=headers)
    assert r.status_code == 200, r.text
    return {i["client_id"] for i in r.json()["items"]}


# ---- the whole chain, twice, with a hand-over ---------------------------------------------------


async def test_one_client_through_two_rounds_with_a_hand_over(drv: PlanDriver, session: AsyncSession) -> None:
    kommun, region, sis = oid(drv, "sthlm-stad"), oid(drv, "region-sthlm"), oid(drv, "sis")
    horno, lunden = await unit(session, drv, "sis", 0), await unit(session, drv, "sis", 1)
    cid = (await drv.register_client())["id"]

    # Round one, about a year and a half ago: report, investigation, immediate custody, application,
    # care at an LVM-hem of SiS, 27 § care inside it, discharge, aftercare, closed.
    t = -500
    first = [
        await recorded(drv, cid, "lvm_anmalan", day(t), end_date=day(t)),
        await recorded(drv, cid, "lvm_utredning", day(t + 1), end_date=day(t + 20)),
        await recorded(drv, cid, "omedelbart_omhandertagande", day(t + 5), end_date=day(t + 6)),
        await recorded(drv, cid, "lvm_ansokan", day(t + 15), end_date=day(t + 20)),
        await recorded(
            drv,
            cid,
            "lvm_vard",
            day(t + 21),
            end_date=day(t + 170),
            planned_end_date=day(t + 190),
            organisation_id=sis,
            unit_id=horno,
        ),
        await recorded(
            drv,
            cid,
            "vard_i_annan_form",
            day(t + 120),
            end_date=day(t + 170),
            organisation_id=sis,
            unit_id=lunden,
        ),
        await recorded(drv, cid, "utskrivning", day(t + 170), end_date=day(t + 170), organisation_id=sis),
        await recorded(drv, cid, "eftervard", day(t + 171), end_date=day(t + 471)),
        await recorded(drv, cid, "avslutad", day(t + 472), end_date=day(t + 472)),
    ]
    care = first[4]
    assert (care["organisation_id"], care["unit_id"]) == (sis, horno)
    # The responsible kommun defaults to the recording kommun.
    assert {(e["responsible_kommun_id"], e["recorded_by_organisation_id"]) for e in first} == {
        (kommun, kommun)
    }

    # Round two: a new report and investigation; LVM care again needs a new decision first.
    await recorded(drv, cid, "lvm_anmalan", day(-27), end_date=day(-27))
    await recorded(drv, cid, "lvm_utredning", day(-26), end_date=day(-15))
    before = await snapshot(session, Episode, cid)
    body = assert_problem(
        await record(
            drv, cid, "lvm_vard", day(-10), planned_end_date=day(60), organisation_id=sis, unit_id=lunden
        ),
        422,
    )
    assert [e["rule"] for e in body["errors"]] == ["lvm_new_decision"]  # type: ignore[union-attr]
    assert await snapshot(session, Episode, cid) == before
    await recorded(drv, cid, "lvm_ansokan", day(-14), end_date=day(-10))
    second_care = await recorded(
        drv, cid, "lvm_vard", day(-10), planned_end_date=day(60), organisation_id=sis, unit_id=lunden
    )
    assert second_care["end_date"] is None and second_care["planned_end_date"] == day(60)

    r = await drv.client.get(episodes_url(cid), headers=drv.h("sthlm-stad"))
    assert r.status_code == 200, r.text
    phases = [e["phase"] for e in r.json()]
    assert phases == [
        "lvm_anmalan",
        "lvm_utredning",
        "omedelbart_omhandertagande",
        "lvm_ansokan",
        "lvm_vard",
        "vard_i_annan_form",
        "utskrivning",
        "eftervard",
        "avslutad",
        "lvm_anmalan",
        "lvm_utredning",
        "lvm_ansokan",
        "lvm_vard",
    ]

    # The region comes in through a SIP for the aftercare, follow-up in three days.
    plan = await active_plan(drv, cid, follow_up=day(3))
    pid = plan["id"]

    # Anna, samordnare in the kommun, has followed the client since round one.
    anna = drv.auth("sthlm-stad", "samordnare", subject="samordnare-anna")
    bo = drv.auth("region-sthlm", "samordnare", subject="samordnare-bo")
    anna_id, bo_id = await user_id(drv, anna), await user_id(drv, bo)
    r = await assign(drv, cid, drv.h("sthlm-stad"), anna_id, kommun, day(-200))
    assert r.status_code == 201, r.text
    assert r.json()["end_date"] is None and r.json()["handover_note"] is None

    assert (await drv.get(pid, org="sthlm-stad", role="samordnare")).status_code == 404  # not Anna's token
    assert (await drv.client.get(f"/api/v1/plans/{pid}", headers=anna)).status_code == 200
    assert await plan_ids(drv, anna, cid) == [pid]
    assert cid in await worklist_clients(drv, anna)
    # Bo, samordnare in the region, has no assignment yet: the region sees the plan, Bo does not.
    assert (await drv.get(pid, org="region-sthlm")).status_code == 200
    assert_problem(await drv.client.get(f"/api/v1/plans/{pid}", headers=bo), 404)
    assert await plan_ids(drv, bo, cid) == []
    assert cid not in await worklist_clients(drv, bo)

    # Anna hands the client over to Bo today; without a note the hand-over is refused.
    before = await snapshot(session, CoordinatorAssignment, cid)
    body = assert_problem(await assign(drv, cid, anna, bo_id, region, day(0)), 422)
    assert [e["field"] for e in body["errors"]] == ["handover_note"]  # type: ignore[union-attr]
    assert await snapshot(session, CoordinatorAssignment, cid) == before
    r = await assign(
        drv, cid, anna, bo_id, region, day(0), note="Eftervård hos Beroendecentrum; uppföljning om tre dagar."
    )
    assert r.status_code == 201, r.text
    assert (r.json()["user_id"], r.json()["organisation_id"], r.json()["start_date"]) == (
        bo_id,
        region,
        day(0),
    )

    r = await drv.client.get(coordinators_url(cid), headers=drv.h("sthlm-stad"))
    assert r.status_code == 200, r.text
    periods = [(a["user_id"], a["organisation_id"], a["start_date"], a["end_date"]) for a in r.json()]
    assert periods == [(anna_id, kommun, day(-200), day(0)), (bo_id, region, day(0), None)]
    assert r.json()[1]["handover_note"].startswith("Eftervård")
    assert r.json()[1]["assigned_by_organisation_id"] == kommun
    assert [a["user_name"] for a in r.json()] == [
        "Test sthlm-stad samordnare",
        "Test region-sthlm samordnare",
    ]

    # On the day of the hand-over, Anna has lost the client's plans and Bo has them.
    assert_problem(await drv.client.get(f"/api/v1/plans/{pid}", headers=anna), 404)
    assert await plan_ids(drv, anna, cid) == []
    assert cid not in await worklist_clients(drv, anna)
    assert (await drv.client.get(f"/api/v1/plans/{pid}", headers=bo)).status_code == 200
    assert await plan_ids(drv, bo, cid) == [pid]
    assert cid in await worklist_clients(drv, bo)
    # The organisations' handläggare keep their access.
    assert (await drv.get(pid)).status_code == 200
    assert (await drv.get(pid, org="region-sthlm")).status_code == 200

    # The timeline: episodes, plan events and both samordnare periods, in time order.
    r = await drv.client.get(timeline_url(cid), headers=drv.h("sthlm-stad"))
    assert r.status_code == 200, r.text
    items = r.json()
    seen = [(i["kind"], i["phase"] or i["change"] or i["title"]) for i in items]
    assert seen == [
        ("episode", "lvm_anmalan"),
        ("episode", "lvm_utredning"),
        ("episode", "omedelbart_omhandertagande"),
        ("episode", "lvm_ansokan"),
        ("episode", "lvm_vard"),
        ("episode", "vard_i_annan_form"),
        ("episode", "utskrivning"),
        ("episode", "eftervard"),
        ("coordinator_period", "Samordnare: Test sthlm-stad samordnare"),
        ("episode", "avslutad"),
        ("episode", "lvm_anmalan"),
        ("episode", "lvm_utredning"),
        ("episode", "lvm_ansokan"),
        ("episode", "lvm_vard"),
        ("coordinator_period", "Samordnare: Test region-sthlm samordnare"),
        ("plan_event", "plan.create"),
        ("plan_event", "plan.consent.give"),
        ("plan_event", "plan.activate"),
    ]
    dates = [i["date"] for i in items]
    assert dates == sorted(dates)
    anna_period = next(i for i in items if i["kind"] == "coordinator_period")
    assert (anna_period["date"], anna_period["end_date"], anna_period["organisation_id"]) == (
        day(-200),
        day(0),
        kommun,
    )
    lvm = [i for i in items if i["phase"] == "lvm_vard"]
    assert [(i["date"], i["end_date"], i["organisation_id"]) for i in lvm] == [
        (day(t + 21), day(t + 170), sis),
        (day(-10), day(60), sis),  # the planned end while the care runs
    ]
    events = [i for i in items if i["kind"] == "plan_event"]
    assert {i["plan_id"] for i in events} == {pid} and all(i["date"] == day(0) for i in events)
    assert [i["at"] for i in events] == sorted(i["at"] for i in events)

    # The region takes part in the plan under consent: it sees the plan events and the chain.
    r = await drv.client.get(timeline_url(cid), headers=drv.h("region-sthlm"))
    assert r.status_code == 200, r.text
    region_view = [(i["kind"], i["phase"] or i["change"] or i["title"]) for i in r.json()]
    assert region_view == seen
    # Bo sees it too; an organisation with nothing to do with the client gets 404.
    assert (await drv.client.get(timeline_url(cid), headers=bo)).status_code == 200
    for org in ("uppsala", "huddinge", "region-uppsala"):
        assert_problem(await drv.client.get(timeline_url(cid), headers=drv.h(org)), 404)


async def test_hand_over_between_two_samordnare_of_the_kommun(drv: PlanDriver, session: AsyncSession) -> None:
    kommun = oid(drv, "sthlm-stad")
    cid = (await drv.register_client())["id"]
    pid = (await active_plan(drv, cid, follow_up=day(30)))["id"]
    eva = drv.auth("sthlm-stad", "samordnare", subject="samordnare-eva")
    ola = drv.auth("sthlm-stad", "samordnare", subject="samordnare-ola")
    eva_id, ola_id = await user_id(drv, eva), await user_id(drv, ola)
    # A samordnare without an assignment reads no plans, though the kommun initiated it.
    for who in (eva, ola):
        assert_problem(await drv.client.get(f"/api/v1/plans/{pid}", headers=who), 404)

    assert (await assign(drv, cid, drv.h("sthlm-stad"), eva_id, kommun, day(-30))).status_code == 201
    assert (await drv.client.get(f"/api/v1/plans/{pid}", headers=eva)).status_code == 200
    assert_problem(await drv.client.get(f"/api/v1/plans/{pid}", headers=ola), 404)

    # Assigning the same samordnare again, or a hand-over that does not start after the current
    # assignment, is refused and changes nothing.
    before = await snapshot(session, CoordinatorAssignment, cid)
    body = assert_problem(await assign(drv, cid, eva, eva_id, kommun, day(0), note="Igen"), 422)
    assert [e["rule"] for e in body["errors"]] == ["already_assigned"]  # type: ignore[union-attr]
    body = assert_problem(await assign(drv, cid, eva, ola_id, kommun, day(-30), note="Samma dag"), 422)
    assert [e["field"] for e in body["errors"]] == ["start_date"]  # type: ignore[union-attr]
    assert await snapshot(session, CoordinatorAssignment, cid) == before

    # Eva hands over to Ola from today.
    r = await assign(
        drv, cid, eva, ola_id, kommun, day(0), note="Ola tar över; klienten vill ha möte varannan vecka."
    )
    assert r.status_code == 201, r.text
    assert_problem(await drv.client.get(f"/api/v1/plans/{pid}", headers=eva), 404)
    assert await plan_ids(drv, eva, cid) == []
    assert (await drv.client.get(f"/api/v1/plans/{pid}", headers=ola)).status_code == 200
    assert await plan_ids(drv, ola, cid) == [pid]
    r = await drv.client.get(coordinators_url(cid), headers=ola)
    assert [(a["user_id"], a["end_date"]) for a in r.json()] == [(eva_id, day(0)), (ola_id, None)]


async def test_a_hand_over_from_tomorrow_keeps_the_current_samordnare_today(
    drv: PlanDriver,
) -> None:
    kommun = oid(drv, "sthlm-stad")
    cid = (await drv.register_client())["id"]
    pid = (await active_plan(drv, cid, follow_up=day(30)))["id"]
    eva = drv.auth("sthlm-stad", "samordnare", subject="samordnare-eva")
    ola = drv.auth("sthlm-stad", "samordnare", subject="samordnare-ola")
    eva_id, ola_id = await user_id(drv, eva), await user_id(drv, ola)
    assert (await assign(drv, cid, drv.h("sthlm-stad"), eva_id, kommun, day(-30))).status_code == 201
    r = await assign(drv, cid, eva, ola_id, kommun, day(1), note="Ola börjar i morgon.")
    assert r.status_code == 201, r.text
    # end_date is exclusive: Eva is the samordnare until tomorrow, Ola from tomorrow.
    assert (await drv.client.get(f"/api/v1/plans/{pid}", headers=eva)).status_code == 200
    assert_problem(await drv.client.get(f"/api/v1/plans/{pid}", headers=ola), 404)


# ---- episodes: bad input changes nothing ---------------------------------------------------------


async def _chain_with_care(drv: PlanDriver, session: AsyncSession) -> tuple[str, dict[str, Any]]:
    """A client in LVM care at Hornö since 40 days, planned for 100 days."""
    cid = (await drv.register_client())["id"]
    await recorded(drv, cid, "lvm_ansokan", day(-45), end_date=day(-41))
    care = await recorded(
        drv,
        cid,
        "lvm_vard",
        day(-40),
        planned_end_date=day(60),
        organisation_id=oid(drv, "sis"),
        unit_id=await unit(session, drv, "sis"),
    )
    return cid, care


async def test_episode_rules_refuse_and_change_nothing(drv: PlanDriver, session: AsyncSession) -> None:
    cid, care = await _chain_with_care(drv, session)
    sis = oid(drv, "sis")
    before = await snapshot(session, Episode, cid)
    assert len(before) == 2

    async def refused(response: httpx.Response, status: int = 422) -> dict[str, Any]:
        body = assert_problem(response, status)
        assert await snapshot(session, Episode, cid) == before
        return body

    def rules(body: dict[str, Any]) -> list[str]:
        return [e["rule"] for e in body["errors"]]

    def fields(body: dict[str, Any]) -> list[str]:
        return [str(e["field"]).removeprefix("body.") for e in body["errors"]]

    # Overlapping episodes of the same phase.
    body = await refused(await record(drv, cid, "lvm_ansokan", day(-43), end_date=day(-30)))
    assert rules(body) == ["overlap"]
    # Aftercare while LVM care still runs (until its planned end).
    body = await refused(await record(drv, cid, "eftervard", day(30)))
    assert rules(body) == ["overlap"]
    # LVM care longer than six months, by its end or its planned end.
    over = str(add_months(date.fromisoformat(day(-40)), 6) + timedelta(days=1))
    other = await recorded(
        drv, cid, "lvm_anmalan", day(-60), end_date=day(-60)
    )  # an unrelated, valid episode
    before = await snapshot(session, Episode, cid)
    body = await refused(await patch_episode(drv, cid, care["id"], {"end_date": over}))
    assert rules(body) == ["lvm_six_months"]
    body = await refused(await patch_episode(drv, cid, care["id"], {"planned_end_date": over}))
    assert rules(body) == ["lvm_six_months"]
    body = await refused(
        await record(
            drv, cid, "lvm_vard", day(200), planned_end_date=str(add_months(date.fromisoformat(day(200)), 7))
        )
    )
    assert sorted(rules(body)) == ["lvm_new_decision", "lvm_six_months"]
    # A second lvm_vard without a new decision episode.
    body = await refused(
        await record(drv, cid, "lvm_vard", day(100), planned_end_date=day(150), organisation_id=sis)
    )
    assert rules(body) == ["lvm_new_decision"]
    # Vård i annan form outside LVM care: before it, past its planned end, open-ended past six months.
    for start, end in ((day(-50), day(-30)), (day(0), day(61)), (day(0), None)):
        body = await refused(await record(drv, cid, "vard_i_annan_form", start, end_date=end))
        assert rules(body) == ["within_lvm_vard"], (start, end)
    # End before start, when recording and when changing.
    body = await refused(await record(drv, cid, "eftervard", day(100), end_date=day(99)))
    assert "end_date is before start_date" in body["errors"][0]["message"]
    body = await refused(await record(drv, cid, "eftervard", day(100), planned_end_date=day(99)))
    assert "planned_end_date is before start_date" in body["errors"][0]["message"]
    body = await refused(await patch_episode(drv, cid, other["id"], {"end_date": day(-61)}))
    assert fields(body) == ["end_date"]
    body = await refused(await patch_episode(drv, cid, care["id"], {"start_date": day(61)}))
    assert fields(body) == ["planned_end_date"]
    body = await refused(await patch_episode(drv, cid, care["id"], {"start_date": None}))
    assert fields(body) == ["start_date"]
    body = await refused(await patch_episode(drv, cid, care["id"], {}))
    # A unit of another organisation than the one giving care.
    region_unit = await unit(session, drv, "region-sthlm")
    body = await refused(await record(drv, cid, "eftervard", day(100), unit_id=region_unit))
    assert fields(body) == ["unit_id"]
    body = await refused(
        await record(drv, cid, "eftervard", day(100), organisation_id=sis, unit_id=region_unit)
    )
    assert fields(body) == ["unit_id"]
    body = await refused(await patch_episode(drv, cid, care["id"], {"unit_id": region_unit}))
    assert fields(body) == ["unit_id"]
    body = await refused(await record(drv, cid, "eftervard", day(100), unit_id=str(uuid.uuid4())))
    assert fields(body) == ["unit_id"]
    # A responsible kommun that is not a kommun, or does not exist; an unknown care organisation.
    for not_kommun in (oid(drv, "region-sthlm"), sis, str(uuid.uuid4())):
        body = await refused(await record(drv, cid, "eftervard", day(100), responsible_kommun_id=not_kommun))
        assert fields(body) == ["responsible_kommun_id"]
    body = await refused(await record(drv, cid, "eftervard", day(100), organisation_id=str(uuid.uuid4())))
    assert fields(body) == ["organisation_id"]
    # Unknown phase, unknown field.
    await refused(await record(drv, cid, "lvm_forever", day(100)))
    await refused(await record(drv, cid, "eftervard", day(100), colour="blue"))
    await refused(await patch_episode(drv, cid, care["id"], {"phase": "eftervard"}))
    # Unknown episode, or an episode of another client.
    await refused(await patch_episode(drv, cid, str(uuid.uuid4()), {"end_date": day(1)}), 404)
    other_cid = (await drv.register_client())["id"]
    await refused(await patch_episode(drv, other_cid, care["id"], {"end_date": day(1)}), 404)


async def test_a_change_may_not_break_the_episodes_that_depend_on_it(
    drv: PlanDriver, session: AsyncSession
) -> None:
    cid, care = await _chain_with_care(drv, session)  # LVM care from day -40, planned until day 60
    annan = await recorded(drv, cid, "vard_i_annan_form", day(-10), end_date=day(30))
    decision = await recorded(drv, cid, "omedelbart_omhandertagande", day(80), end_date=day(81))
    await recorded(drv, cid, "lvm_vard", day(82), planned_end_date=day(120), organisation_id=oid(drv, "sis"))
    before = await snapshot(session, Episode, cid)

    # Ending the LVM care before the 27 § period ends would leave that period outside it.
    for change in ({"end_date": day(20)}, {"planned_end_date": day(20)}, {"start_date": day(-5)}):
        body = assert_problem(await patch_episode(drv, cid, care["id"], change), 422)
        assert [e["rule"] for e in body["errors"]] == ["within_lvm_vard"], change  # type: ignore[union-attr]
        assert "vard_i_annan_form" in body["errors"][0]["message"]  # type: ignore[index]
    # Moving the decision after the second care began would leave that care without a decision.
    body = assert_problem(
        await patch_episode(drv, cid, decision["id"], {"start_date": day(83), "end_date": day(84)}), 422
    )
    assert [e["rule"] for e in body["errors"]] == ["lvm_new_decision"]  # type: ignore[union-attr]
    assert await snapshot(session, Episode, cid) == before

    # In the right order it works: first the 27 § period ends, then the LVM care.
    r = await patch_episode(drv, cid, annan["id"], {"end_date": day(10)})
    assert r.status_code == 200, r.text
    r = await patch_episode(drv, cid, care["id"], {"end_date": day(20)})
    assert r.status_code == 200, r.text
    assert r.json()["end_date"] == day(20)


async def test_a_region_records_for_a_kommun_it_must_name(drv: PlanDriver, session: AsyncSession) -> None:
    cid = (await drv.register_client())["id"]
    await active_plan(drv, cid, follow_up=day(30))  # the region takes part under consent
    before = await snapshot(session, Episode, cid)
    body = assert_problem(await record(drv, cid, "eftervard", day(1), org="region-sthlm"), 422)
    assert [e["field"] for e in body["errors"]] == ["responsible_kommun_id"]  # type: ignore[union-attr]
    body = assert_problem(
        await record(
            drv, cid, "eftervard", day(1), org="region-sthlm", responsible_kommun_id=oid(drv, "region-sthlm")
        ),
        422,
    )
    assert [e["field"] for e in body["errors"]] == ["responsible_kommun_id"]  # type: ignore[union-attr]
    assert await snapshot(session, Episode, cid) == before
    # Naming the kommun works; the care organisation defaults to the recorder.
    e = await recorded(
        drv,
        cid,
        "eftervard",
        day(1),
        org="region-sthlm",
        responsible_kommun_id=oid(drv, "sthlm-stad"),
        unit_id=await unit(session, drv, "region-sthlm"),
    )
    assert (e["organisation_id"], e["recorded_by_organisation_id"], e["responsible_kommun_id"]) == (
        oid(drv, "region-sthlm"),
        oid(drv, "region-sthlm"),
        oid(drv, "sthlm-stad"),
    )
    assert await count(session, Episode, cid) == 1


# ---- episodes across organisations ---------------------------------------------------------------


async def test_episodes_across_organisations(drv: PlanDriver, session: AsyncSession) -> None:
    cid, care = await _chain_with_care(drv, session)
    n = await count(session, Episode, cid)
    # Organisations that do not know the client: 404 on list, create and patch, and nothing changes.
    for org in ("uppsala", "huddinge", "region-sthlm", "sis"):
        assert_problem(await drv.client.get(episodes_url(cid), headers=drv.h(org)), 404)
        assert_problem(await record(drv, cid, "eftervard", day(100), org=org), 404)
        assert_problem(await patch_episode(drv, cid, care["id"], {"end_date": day(1)}, org=org), 404)
    # Roles that never read client data see no client; a reader may look but not write.
    assert_problem(
        await drv.client.get(episodes_url(cid), headers=drv.auth("sthlm-stad", "rss", county="01")), 404
    )
    assert_problem(await record(drv, cid, "eftervard", day(100), role="org_admin"), 404)
    assert (await drv.client.get(episodes_url(cid), headers=drv.h("sthlm-stad", "lasare"))).status_code == 200
    assert_problem(await record(drv, cid, "eftervard", day(100), role="lasare"), 403)
    assert_problem(await patch_episode(drv, cid, care["id"], {"end_date": day(1)}, role="lasare"), 403)
    assert await count(session, Episode, cid) == n

    # Once the region takes part in a plan under consent, it sees the chain ...
    await active_plan(drv, cid, follow_up=day(30))
    r = await drv.client.get(episodes_url(cid), headers=drv.h("region-sthlm"))
    assert r.status_code == 200, r.text
    assert [e["phase"] for e in r.json()] == ["lvm_ansokan", "lvm_vard"]
    # ... but may not change an episode it neither recorded nor answers for as kommun.
    before = await snapshot(session, Episode, cid)
    assert_problem(await patch_episode(drv, cid, care["id"], {"end_date": day(1)}, org="region-sthlm"), 403)
    assert await snapshot(session, Episode, cid) == before
    # The region records aftercare for the kommun; the responsible kommun may change it.
    eftervard = await recorded(
        drv, cid, "eftervard", day(61), org="region-sthlm", responsible_kommun_id=oid(drv, "sthlm-stad")
    )
    r = await patch_episode(drv, cid, eftervard["id"], {"planned_end_date": day(300)})
    assert r.status_code == 200, r.text
    assert r.json()["planned_end_date"] == day(300)
    r = await patch_episode(drv, cid, eftervard["id"], {"note": "Via beroendecentrum"}, org="region-sthlm")
    assert r.status_code == 200, r.text
    assert (r.json()["planned_end_date"], r.json()["note"]) == (day(300), "Via beroendecentrum")

    # Another kommun that knows the same person records its own episode: each kommun sees its own.
    pnr = new_personal_number()
    both = (await drv.register_client(personal_number=pnr))["id"]
    assert (await drv.register_client("huddinge", personal_number=pnr))["id"] == both
    mine = await recorded(drv, both, "lvm_anmalan", day(-5))
    theirs = await recorded(drv, both, "lvm_utredning", day(-4), org="huddinge")
    r = await drv.client.get(episodes_url(both), headers=drv.h("sthlm-stad"))
    assert [e["id"] for e in r.json()] == [mine["id"]]
    r = await drv.client.get(episodes_url(both), headers=drv.h("huddinge"))
    assert [e["id"] for e in r.json()] == [theirs["id"]]
    # Huddinge cannot reach Stockholm's episode to change it.
    assert_problem(await patch_episode(drv, both, mine["id"], {"end_date": day(0)}, org="huddinge"), 404)
    assert (await session.get(Episode, uuid.UUID(mine["id"]))).end_date is None  # type: ignore[union-attr]
    await session.commit()


# ---- coordinators: bad input and other organisations ----------------------------------------------


async def test_coordinator_assignment_refusals_change_nothing(drv: PlanDriver, session: AsyncSession) -> None:
    kommun = oid(drv, "sthlm-stad")
    cid = (await drv.register_client())["id"]
    anna = drv.auth("sthlm-stad", "samordnare", subject="samordnare-anna")
    anna_id = await user_id(drv, anna)
    huddinge_samordnare = await user_id(drv, drv.auth("huddinge", "samordnare", subject="samordnare-hugo"))
    region_samordnare = await user_id(drv, drv.auth("region-sthlm", "samordnare", subject="samordnare-bo"))
    handlaggare = await user_id(drv, drv.h("sthlm-stad"))
    assert (await assign(drv, cid, drv.h("sthlm-stad"), anna_id, kommun, day(-10))).status_code == 201
    before = await snapshot(session, CoordinatorAssignment, cid)
    assert len(before) == 1

    async def refused(response: httpx.Response, status: int = 422) -> dict[str, Any]:
        body = assert_problem(response, status)
        assert await snapshot(session, CoordinatorAssignment, cid) == before
        return body

    def field(body: dict[str, Any]) -> str:
        return str(body["errors"][0]["field"])

    h, note = drv.h("sthlm-stad"), "Överlämning"
    # A samordnare of an organisation not involved with the client (the region is not, yet).
    body = await refused(await assign(drv, cid, h, huddinge_samordnare, oid(drv, "huddinge"), day(0), note))
    assert field(body) == "organisation_id"
    body = await refused(await assign(drv, cid, h, region_samordnare, oid(drv, "region-sthlm"), day(0), note))
    assert field(body) == "organisation_id"
    # An unknown organisation.
    body = await refused(await assign(drv, cid, h, region_samordnare, str(uuid.uuid4()), day(0), note))
    assert field(body) == "organisation_id"
    # A hand-over without a note, or with an empty one.
    eva_id = await user_id(drv, drv.auth("sthlm-stad", "samordnare", subject="samordnare-eva"))
    body = await refused(await assign(drv, cid, h, eva_id, kommun, day(0)))
    assert field(body) == "handover_note"
    body = await refused(await assign(drv, cid, h, eva_id, kommun, day(0), note=""))
    assert field(body).endswith("handover_note")
    # A user who does not exist, belongs to another organisation, or is no samordnare.
    body = await refused(await assign(drv, cid, h, str(uuid.uuid4()), kommun, day(0), note))
    assert field(body) == "user_id"
    body = await refused(await assign(drv, cid, h, region_samordnare, kommun, day(0), note))
    assert field(body) == "user_id"
    body = await refused(await assign(drv, cid, h, handlaggare, kommun, day(0), note))
    assert field(body) == "user_id" and "samordnare" in body["detail"]
    # Roles that may not assign, and organisations outside the client's circle.
    await refused(await assign(drv, cid, drv.h("sthlm-stad", "lasare"), eva_id, kommun, day(0), note), 403)
    await refused(await assign(drv, cid, drv.h("sthlm-stad", "system"), eva_id, kommun, day(0), note), 403)
    await refused(await assign(drv, cid, drv.h("sthlm-stad", "org_admin"), eva_id, kommun, day(0), note), 404)
    for org in ("uppsala", "huddinge", "region-sthlm"):
        await refused(await assign(drv, cid, drv.h(org), eva_id, kommun, day(0), note), 404)
    # A client that does not exist.
    assert_problem(await assign(drv, str(uuid.uuid4()), h, eva_id, kommun, day(0), note), 404)


async def test_coordinators_across_organisations(drv: PlanDriver, session: AsyncSession) -> None:
    kommun, region = oid(drv, "sthlm-stad"), oid(drv, "region-sthlm")
    cid = (await drv.register_client())["id"]
    anna_id = await user_id(drv, drv.auth("sthlm-stad", "samordnare", subject="samordnare-anna"))
    assert (await assign(drv, cid, drv.h("sthlm-stad"), anna_id, kommun, day(-10))).status_code == 201
    for org in ("uppsala", "huddinge", "region-sthlm", "sis"):
        assert_problem(await drv.client.get(coordinators_url(cid), headers=drv.h(org)), 404)
    assert_problem(await drv.client.get(coordinators_url(cid), headers=drv.h("sthlm-stad", "auditor")), 404)
    # The region becomes involved through a plan: its samordnare may now take over, and the region
    # sees the kommun's samordnare periods.
    await active_plan(drv, cid, follow_up=day(30))
    bo_id = await user_id(drv, drv.auth("region-sthlm", "samordnare", subject="samordnare-bo"))
    r = await assign(drv, cid, drv.h("region-sthlm"), bo_id, region, day(0), note="Regionen tar över")
    assert r.status_code == 201, r.text
    assert r.json()["assigned_by_organisation_id"] == region
    r = await drv.client.get(coordinators_url(cid), headers=drv.h("region-sthlm"))
    assert r.status_code == 200, r.text
    assert [(a["user_id"], a["end_date"]) for a in r.json()] == [(anna_id, day(0)), (bo_id, None)]
    for org in ("uppsala", "huddinge"):
        assert_problem(await drv.client.get(coordinators_url(cid), headers=drv.h(org)), 404)
    assert await count(session, CoordinatorAssignment, cid) == 2


# ---- timeline across organisations ---------------------------------------------------------------


async def test_timeline_across_organisations(drv: PlanDriver, session: AsyncSession) -> None:
    cid, _ = await _chain_with_care(drv, session)
    # Before any plan: only the kommun sees the client's timeline, and it has no plan events.
    r = await drv.client.get(timeline_url(cid), headers=drv.h("sthlm-stad"))
    assert r.status_code == 200, r.text
    assert [i["kind"] for i in r.json()] == ["episode", "episode"]
    for org in ("region-sthlm", "uppsala", "huddinge", "sis"):
        assert_problem(await drv.client.get(timeline_url(cid), headers=drv.h(org)), 404)
    assert_problem(
        await drv.client.get(timeline_url(cid), headers=drv.auth("sthlm-stad", "rss", county="01")), 404
    )
    assert_problem(await drv.client.get(timeline_url(str(uuid.uuid4())), headers=drv.h("sthlm-stad")), 404)

    # A draft the kommun keeps to itself: the region does not take part and sees nothing.
    draft = await drv.create_plan(client_id=cid)
    plan = await active_plan(drv, cid, follow_up=day(30))
    kommun_view = (await drv.client.get(timeline_url(cid), headers=drv.h("sthlm-stad"))).json()
    assert {i["plan_id"] for i in kommun_view if i["kind"] == "plan_event"} == {draft["id"], plan["id"]}
    r = await drv.client.get(timeline_url(cid), headers=drv.h("region-sthlm"))
    assert r.status_code == 200, r.text
    region_events = [i for i in r.json() if i["kind"] == "plan_event"]
    assert [(i["plan_id"], i["change"]) for i in region_events] == [
        (plan["id"], "plan.create"),
        (plan["id"], "plan.consent.give"),
        (plan["id"], "plan.activate"),
    ]
    assert [i["kind"] for i in r.json()].count("episode") == 2
    for org in ("uppsala", "huddinge"):
        assert_problem(await drv.client.get(timeline_url(cid), headers=drv.h(org)), 404)
