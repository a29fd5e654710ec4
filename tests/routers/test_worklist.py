"""The worklist over HTTP: every signal appears, and disappears when its cause is fixed; urgency
order, `since` and `due`, who sees which signals, the signal filter and cursor pagination."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.care_chain import Episode
from app.models.client import MASKED_NAME
from app.models.plan import Plan
from app.services.episode_rules import add_months
from app.services.pagination import encode_cursor
from app.services.worklist import URGENCY, Signal
from tests.conftest import assert_problem
from tests.plan_helpers import PlanDriver, new_personal_number

TODAY = datetime.now(UTC).date()
WORKLIST = "/api/v1/worklist"


@pytest.fixture
def drv(client: httpx.AsyncClient, auth, orgs) -> PlanDriver:
    return PlanDriver(client, auth, orgs)


# ---- helpers -------------------------------------------------------------------------------


def oid(drv: PlanDriver, key: str) -> str:
    return str(drv.orgs[key].id)


def day(offset: int) -> str:
    return str(TODAY + timedelta(days=offset))


async def worklist(
    drv: PlanDriver, headers: dict[str, str] | None = None, **params: Any
) -> list[dict[str, Any]]:
    r = await drv.client.get(WORKLIST, params=params, headers=headers or drv.h("sthlm-stad"))
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return list(r.json()["items"])


def signals(items: list[dict[str, Any]], client_id: str | None = None) -> list[str]:
    return [i["signal"] for i in items if client_id is None or i["client_id"] == client_id]


def only(items: list[dict[str, Any]], signal: str) -> dict[str, Any]:
    found = [i for i in items if i["signal"] == signal]
    assert len(found) == 1, items
    return found[0]


async def record(
    drv: PlanDriver, cid: str, phase: str, start: str, org: str = "sthlm-stad", **fields: Any
) -> dict[str, Any]:
    body = {"phase": phase, "start_date": start, **fields}
    r = await drv.client.post(f"/api/v1/clients/{cid}/episodes", json=body, headers=drv.h(org))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def in_lvm_care(drv: PlanDriver, start: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    """A new client placed at an LVM-hem of SiS from `start`, by decision of Stockholms stad."""
    cid = (await drv.register_client())["id"]
    care = await record(drv, cid, "lvm_vard", start, organisation_id=oid(drv, "sis"), **fields)
    return cid, care


async def plan_with_region(
    drv: PlanDriver, cid: str, follow_up: str, own_phase: str = "eftervard"
) -> dict[str, Any]:
    """A draft of the kommun with the region under consent, an accepted action of each, ready to activate."""
    plan = await drv.create_plan(
        client_id=cid, overall_responsible_organisation_id=oid(drv, "sthlm-stad"), follow_up_date=follow_up
    )
    pid = plan["id"]
    await drv.add_participant(pid, "region-sthlm")
    await drv.add_consent(pid, ["sthlm-stad", "region-sthlm"])
    await drv.add_action(pid, "sthlm-stad", description="Boendestöd", phase=own_phase)
    _, aid = await drv.add_action(pid, "region-sthlm", description="Läkemedelsassisterad behandling")
    r = await drv.post(pid, f"/actions/{aid}/accept", None, org="region-sthlm")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def activate(drv: PlanDriver, plan: dict[str, Any]) -> dict[str, Any]:
    r = await drv.transition(plan["id"], "active", plan["version"])
    assert r.status_code == 200, r.text
    return dict(r.json())


async def active_plan(drv: PlanDriver, cid: str, follow_up: str) -> dict[str, Any]:
    return await activate(drv, await plan_with_region(drv, cid, follow_up))


async def set_follow_up(drv: PlanDriver, plan: dict[str, Any], when: str) -> dict[str, Any]:
    current = (await drv.get(plan["id"])).json()
    r = await drv.patch(plan["id"], "", {"follow_up_date": when}, **{"If-Match": f'"{current["version"]}"'})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def user_id(drv: PlanDriver, headers: dict[str, str]) -> str:
    r = await drv.client.get("/api/v1/me", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["user_id"])


# ---- discharge without an aftercare plan --------------------------------------------------------


async def test_discharge_signal_until_an_active_sip_holds_accepted_aftercare(drv: PlanDriver) -> None:
    cid, care = await in_lvm_care(drv, day(-60), planned_end_date=day(10))
    item = only(await worklist(drv), "discharge_without_aftercare_plan")
    expected = {
        "signal": "discharge_without_aftercare_plan",
        "urgency": URGENCY[Signal.discharge_without_aftercare_plan],
        "client_id": cid,
        "client_name": "Kim Andersson",
        "plan_id": None,
        "episode_id": care["id"],
        "action_id": None,
        "reason": item["reason"],
        "since": day(-4),  # 14 days before the planned discharge
        "due": day(10),
    }
    assert {k: item.get(k, "missing") for k in expected} == expected
    assert all(v is None for k, v in item.items() if k.endswith("_id") and k not in expected)
    assert day(10) in item["reason"] and "planned" in item["reason"]

    # A draft with an accepted aftercare action is not enough.
    draft = await plan_with_region(drv, cid, follow_up=day(30), own_phase="lvm_vard")
    assert signals(await worklist(drv), cid) == ["discharge_without_aftercare_plan"]
    # An active plan without aftercare actions is not enough.
    plan = await activate(drv, draft)
    assert signals(await worklist(drv), cid) == ["discharge_without_aftercare_plan"]
    # An aftercare action proposed to the region, not yet accepted, is not enough.
    _, aid = await drv.add_action(
        plan["id"], "region-sthlm", description="Eftervård på mottagning", phase="eftervard"
    )
    assert signals(await worklist(drv), cid) == ["discharge_without_aftercare_plan"]
    # The region accepts it: the plan now holds accepted aftercare, and the signal is gone.
    r = await drv.post(plan["id"], f"/actions/{aid}/accept", None, org="region-sthlm")
    assert r.status_code == 200, r.text
    assert signals(await worklist(drv), cid) == []

    # Closing the plan brings it back: only an active SIP counts.
    r = await drv.transition(plan["id"], "closed", r.json()["version"])
    assert r.status_code == 200, r.text
    assert signals(await worklist(drv), cid) == ["discharge_without_aftercare_plan"]


async def test_only_a_plan_the_caller_may_see_counts_as_aftercare(drv: PlanDriver) -> None:
    """The same answer on SQLite and on PostgreSQL (where row security hides the plan anyway)."""
    pnr = new_personal_number()
    cid = (await drv.register_client(personal_number=pnr))["id"]
    await record(drv, cid, "lvm_vard", day(-60), organisation_id=oid(drv, "sis"), planned_end_date=day(10))
    # The region makes an active SIP with aftercare together with another kommun, Huddinge.
    await drv.register_client("region-sthlm", personal_number=pnr)
    plan = await drv.create_plan(
        "region-sthlm", client_id=cid, overall_responsible_organisation_id=oid(drv, "region-sthlm")
    )
    pid = plan["id"]
    await drv.add_participant(pid, "huddinge", by="region-sthlm")
    await drv.add_consent(pid, ["region-sthlm", "huddinge"], by="region-sthlm")
    await drv.add_action(pid, "region-sthlm", by="region-sthlm", description="Eftervård", phase="eftervard")
    _, aid = await drv.add_action(pid, "huddinge", by="region-sthlm", description="Boendestöd")
    r = await drv.post(pid, f"/actions/{aid}/accept", None, org="huddinge")
    assert r.status_code == 200, r.text
    r = await drv.transition(pid, "active", r.json()["version"], org="region-sthlm")
    assert r.status_code == 200, r.text
    # Stockholm cannot see that plan: for Stockholm the discharge still has no aftercare plan.
    assert_problem(await drv.get(pid), 404)
    assert signals(await worklist(drv), cid) == ["discharge_without_aftercare_plan"]
    # Once Stockholm takes part under the client's consent, the plan counts.
    await drv.add_participant(pid, "sthlm-stad", by="region-sthlm")
    await drv.add_consent(pid, ["region-sthlm", "huddinge", "sthlm-stad"], by="region-sthlm")
    assert signals(await worklist(drv), cid) == []


async def test_an_active_plan_with_aftercare_from_the_start_prevents_the_signal(drv: PlanDriver) -> None:
    cid, _ = await in_lvm_care(drv, day(-60), planned_end_date=day(3))
    assert signals(await worklist(drv), cid) == ["discharge_without_aftercare_plan"]
    plan = await plan_with_region(drv, cid, follow_up=day(30))
    assert signals(await worklist(drv), cid) == ["discharge_without_aftercare_plan"]  # still a draft
    await activate(drv, plan)
    assert signals(await worklist(drv), cid) == []


async def test_a_recorded_discharge_without_plan_is_allowed_and_signalled(drv: PlanDriver) -> None:
    # Recording a discharge without any plan is allowed (the coverage report counts such cases).
    cid, care = await in_lvm_care(drv, day(-100), end_date=day(-5))
    assert care["end_date"] == day(-5)
    item = only(await worklist(drv), "discharge_without_aftercare_plan")
    assert (item["client_id"], item["episode_id"]) == (cid, care["id"])
    assert (item["since"], item["due"]) == (day(-19), day(-5))
    assert "discharged" in item["reason"] and day(-5) in item["reason"]
    # A known end wins over a planned end.
    cid2, _ = await in_lvm_care(drv, day(-100), end_date=day(-2), planned_end_date=day(40))
    item = [i for i in await worklist(drv) if i["client_id"] == cid2]
    assert [(i["signal"], i["due"]) for i in item] == [("discharge_without_aftercare_plan", day(-2))]
    # Fixed by an active SIP with aftercare.
    await active_plan(drv, cid, follow_up=day(30))
    assert signals(await worklist(drv), cid) == []


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"planned_end_date": day(14)}, True),  # the horizon's last day
        ({"planned_end_date": day(15)}, False),
        ({"end_date": day(-30)}, True),  # discharged 30 days ago: still followed
        ({"end_date": day(-31)}, False),
        ({}, False),  # no discharge date known
    ],
)
async def test_discharge_horizon(drv: PlanDriver, fields: dict[str, str], shown: bool) -> None:
    cid, _ = await in_lvm_care(drv, day(-120), **fields)
    assert signals(await worklist(drv), cid) == (["discharge_without_aftercare_plan"] if shown else [])


# ---- six months of LVM care ------------------------------------------------------------------


async def test_lvm_care_nearing_six_months_until_the_episode_ends(drv: PlanDriver) -> None:
    start = add_months(TODAY + timedelta(days=30), -6)
    limit = add_months(start, 6)
    assert limit <= TODAY + timedelta(days=30)
    cid, care = await in_lvm_care(drv, str(start))
    item = only(await worklist(drv), "lvm_care_near_six_months")
    assert (item["client_id"], item["episode_id"], item["urgency"]) == (
        cid,
        care["id"],
        URGENCY[Signal.lvm_care_near_six_months],
    )
    assert (item["due"], item["since"]) == (str(limit), str(limit - timedelta(days=30)))
    assert str(start) in item["reason"] and str(limit) in item["reason"]
    # A day later start is still outside the warning window.
    later = start + timedelta(days=1)
    assert add_months(later, 6) > TODAY + timedelta(days=30)
    other, _ = await in_lvm_care(drv, str(later))
    assert signals(await worklist(drv), other) == []

    # Ending the care yesterday removes the six-month signal; the discharge without a plan shows.
    r = await drv.client.patch(
        f"/api/v1/clients/{cid}/episodes/{care['id']}",
        json={"end_date": day(-1)},
        headers=drv.h("sthlm-stad"),
    )
    assert r.status_code == 200, r.text
    assert signals(await worklist(drv), cid) == ["discharge_without_aftercare_plan"]
    assert signals(await worklist(drv, signal="lvm_care_near_six_months"), cid) == []


async def test_six_months_signal_for_care_already_past_its_limit(
    drv: PlanDriver, session: AsyncSession
) -> None:
    """Care running past six months (recorded before the rule, or never ended) keeps signalling."""
    start = add_months(TODAY, -7)
    _, care = await in_lvm_care(drv, str(add_months(TODAY, -5)))
    await session.execute(
        update(Episode).where(Episode.id == uuid.UUID(care["id"])).values(start_date=start)  # type: ignore[arg-type]
    )
    await session.commit()
    item = only(await worklist(drv), "lvm_care_near_six_months")
    assert item["due"] == str(add_months(start, 6)) and item["due"] < day(0)


# ---- follow-ups --------------------------------------------------------------------------------


async def test_follow_up_due_until_a_later_date_is_set(drv: PlanDriver) -> None:
    cid = (await drv.register_client())["id"]
    plan = await active_plan(drv, cid, follow_up=day(5))
    item = only(await worklist(drv), "follow_up_due")
    assert (item["client_id"], item["plan_id"], item["urgency"]) == (
        cid,
        plan["id"],
        URGENCY[Signal.follow_up_due],
    )
    assert (item["since"], item["due"]) == (day(-2), day(5))
    await set_follow_up(drv, plan, day(30))
    assert signals(await worklist(drv), cid) == []
    # The horizon is seven days.
    await set_follow_up(drv, plan, day(7))
    assert signals(await worklist(drv), cid) == ["follow_up_due"]
    await set_follow_up(drv, plan, day(8))
    assert signals(await worklist(drv), cid) == []
    # Today is due, not overdue.
    await set_follow_up(drv, plan, day(0))
    assert [(i["signal"], i["since"]) for i in await worklist(drv)] == [("follow_up_due", day(-7))]


async def test_follow_up_overdue_until_a_later_date_is_set(drv: PlanDriver, session: AsyncSession) -> None:
    cid = (await drv.register_client())["id"]
    plan = await active_plan(drv, cid, follow_up=day(30))
    assert signals(await worklist(drv), cid) == []
    # The API keeps follow-up dates in the future; time passing is what makes them overdue.
    await session.execute(
        update(Plan).where(Plan.id == uuid.UUID(plan["id"])).values(follow_up_date=TODAY - timedelta(days=3))  # type: ignore[arg-type]
    )
    await session.commit()
    item = only(await worklist(drv), "follow_up_overdue")
    assert (item["client_id"], item["plan_id"], item["urgency"]) == (
        cid,
        plan["id"],
        URGENCY[Signal.follow_up_overdue],
    )
    assert (item["since"], item["due"]) == (day(-3), day(-3))
    assert day(-3) in item["reason"]
    await set_follow_up(drv, plan, day(30))
    assert signals(await worklist(drv), cid) == []


async def test_follow_ups_only_for_active_or_paused_plans(drv: PlanDriver) -> None:
    cid = (await drv.register_client())["id"]
    draft = await plan_with_region(drv, cid, follow_up=day(2))
    assert signals(await worklist(drv), cid) == []  # a draft's date is not yet a follow-up
    plan = await activate(drv, draft)
    assert signals(await worklist(drv), cid) == ["follow_up_due"]
    r = await drv.transition(plan["id"], "paused", plan["version"])
    assert r.status_code == 200, r.text
    assert signals(await worklist(drv), cid) == ["follow_up_due"]
    r = await drv.transition(plan["id"], "closed", r.json()["version"])
    assert r.status_code == 200, r.text
    assert signals(await worklist(drv), cid) == []


# ---- actions nobody answered -------------------------------------------------------------------


async def test_action_proposed_to_the_callers_organisation_until_answered(drv: PlanDriver) -> None:
    region = drv.h("region-sthlm")
    cid = (await drv.register_client(protected_identity=True))["id"]
    plan = await drv.create_plan(client_id=cid)
    pid = plan["id"]
    await drv.add_participant(pid, "region-sthlm")
    _, first = await drv.add_action(pid, "region-sthlm", description="Abstinensbehandling")
    _, second = await drv.add_action(pid, "region-sthlm", description="Boende")
    # Without the client's consent the region cannot see the plan, nor its proposals.
    assert await worklist(drv, region) == []
    await drv.add_consent(pid, ["sthlm-stad", "region-sthlm"])
    items = await worklist(drv, region)
    assert [(i["signal"], i["plan_id"], i["urgency"]) for i in items] == [
        ("action_unanswered", pid, URGENCY[Signal.action_unanswered])
    ] * 2
    assert {i["action_id"] for i in items} == {first, second}
    assert all(i["since"] == day(0) and i["due"] is None and i["client_id"] == cid for i in items)
    # The region does not know the protected client: the name is masked. The kommun sees it.
    assert {i["client_name"] for i in items} == {MASKED_NAME}
    # The proposing kommun has nothing to answer.
    assert "action_unanswered" not in signals(await worklist(drv))

    # Accepting one and disputing the other are both answers.
    r = await drv.post(pid, f"/actions/{first}/accept", None, org="region-sthlm")
    assert r.status_code == 200, r.text
    assert [i["action_id"] for i in await worklist(drv, region)] == [second]
    r = await drv.post(pid, f"/actions/{second}/dispute", {"reason": "Kommunens ansvar"}, org="region-sthlm")
    assert r.status_code == 200, r.text
    assert await worklist(drv, region) == []


# ---- everything at once: order, filter, pages, and who sees what ------------------------------------


async def _every_signal(drv: PlanDriver, session: AsyncSession) -> dict[str, str]:
    """One client per signal, all for Stockholms stad's handläggare; returns signal -> client id."""
    discharge, _ = await in_lvm_care(drv, day(-60), planned_end_date=day(10))
    six_months, _ = await in_lvm_care(drv, str(add_months(TODAY + timedelta(days=10), -6)))
    due = (await drv.register_client())["id"]
    await active_plan(drv, due, follow_up=day(6))
    overdue = (await drv.register_client())["id"]
    late = await active_plan(drv, overdue, follow_up=day(30))
    await session.execute(
        update(Plan).where(Plan.id == uuid.UUID(late["id"])).values(follow_up_date=TODAY - timedelta(days=1))  # type: ignore[arg-type]
    )
    await session.commit()
    # The region proposes an action to the kommun in its own plan.
    unanswered = (await drv.register_client("region-sthlm"))["id"]
    plan = await drv.create_plan("region-sthlm", client_id=unanswered)
    await drv.add_participant(plan["id"], "sthlm-stad", by="region-sthlm")
    await drv.add_consent(plan["id"], ["region-sthlm", "sthlm-stad"], by="region-sthlm")
    await drv.add_action(plan["id"], "sthlm-stad", by="region-sthlm", description="Försörjningsstöd")
    return {
        "discharge_without_aftercare_plan": discharge,
        "follow_up_overdue": overdue,
        "lvm_care_near_six_months": six_months,
        "action_unanswered": unanswered,
        "follow_up_due": due,
    }


async def test_urgency_order_filter_and_pages(drv: PlanDriver, session: AsyncSession) -> None:
    clients = await _every_signal(drv, session)
    items = await worklist(drv)
    # Most urgent first: the discharge, then what is late, then what is coming.
    assert [(i["signal"], i["client_id"]) for i in items] == list(clients.items())
    urgencies = [i["urgency"] for i in items]
    assert urgencies == [URGENCY[Signal(s)] for s in clients] and urgencies == sorted(set(urgencies))
    assert urgencies[0] == 0  # nothing is more urgent than a discharge without aftercare

    # The filter: one signal, several, none that fire, an unknown one.
    assert signals(await worklist(drv, signal="follow_up_due")) == ["follow_up_due"]
    both = await worklist(drv, signal=["follow_up_due", "discharge_without_aftercare_plan"])
    assert signals(both) == ["discharge_without_aftercare_plan", "follow_up_due"]
    r = await drv.client.get(WORKLIST, params={"signal": "no_such_signal"}, headers=drv.h("sthlm-stad"))
    assert_problem(r, 422)

    # Pages of one, following next_cursor, give the same list in the same order.
    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        r = await drv.client.get(WORKLIST, params=params, headers=drv.h("sthlm-stad"))
        assert r.status_code == 200, r.text
        pages += 1
        seen += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert seen == items and pages == 5
    # Pages of two with a filter.
    r = await drv.client.get(
        WORKLIST,
        params={"limit": 2, "signal": ["follow_up_due", "follow_up_overdue", "action_unanswered"]},
        headers=drv.h("sthlm-stad"),
    )
    assert signals(r.json()["items"]) == ["follow_up_overdue", "action_unanswered"]
    r = await drv.client.get(
        WORKLIST,
        params={
            "limit": 2,
            "cursor": r.json()["next_cursor"],
            "signal": ["follow_up_due", "follow_up_overdue", "action_unanswered"],
        },
        headers=drv.h("sthlm-stad"),
    )
    assert signals(r.json()["items"]) == ["follow_up_due"] and r.json()["next_cursor"] is None
    # Bad paging input is a 4xx problem, never a 500.
    for params in (
        {"limit": 0},
        {"limit": 201},
        {"cursor": "not-a-cursor!"},
        {"cursor": encode_cursor(["one"])},
        {"cursor": encode_cursor([-3])},
        {"cursor": encode_cursor([1, 2])},
    ):
        r = await drv.client.get(WORKLIST, params=params, headers=drv.h("sthlm-stad"))
        assert 400 <= r.status_code < 500, (params, r.text)
        assert_problem(r, r.status_code)


async def test_other_organisations_do_not_see_the_signals(drv: PlanDriver, session: AsyncSession) -> None:
    clients = await _every_signal(drv, session)
    assert len(await worklist(drv)) == 5
    # Handläggare of other kommuner and regions: nothing of Stockholm's.
    for org in ("huddinge", "uppsala", "region-uppsala", "sis"):
        assert await worklist(drv, drv.h(org)) == [], org
    # The region sees only what is asked of itself (nothing here), not the kommun's clients' signals.
    assert set(clients.values()).isdisjoint(
        i["client_id"] for i in await worklist(drv, drv.h("region-sthlm"))
    )
    # A samordnare of the kommun sees only the clients assigned to them.
    anna = drv.auth("sthlm-stad", "samordnare", subject="samordnare-anna")
    assert await worklist(drv, anna) == []
    anna_id = await user_id(drv, anna)
    for signal in ("discharge_without_aftercare_plan", "follow_up_due"):
        r = await drv.client.post(
            f"/api/v1/clients/{clients[signal]}/coordinators",
            json={"user_id": anna_id, "organisation_id": oid(drv, "sthlm-stad"), "start_date": day(-1)},
            headers=drv.h("sthlm-stad"),
        )
        assert r.status_code == 201, r.text
    assert signals(await worklist(drv, anna)) == ["discharge_without_aftercare_plan", "follow_up_due"]


@pytest.mark.parametrize("role", ["lasare", "org_admin", "auditor", "system", "platform_admin", "rss"])
async def test_roles_other_than_handlaggare_and_samordnare_get_403(drv: PlanDriver, role: str) -> None:
    await in_lvm_care(drv, day(-60), planned_end_date=day(10))
    headers = drv.auth("region-sthlm", role, county="01") if role == "rss" else drv.h("sthlm-stad", role)
    assert_problem(await drv.client.get(WORKLIST, headers=headers), 403)
    # The same organisation's samordnare may read it.
    assert (await drv.client.get(WORKLIST, headers=drv.h("sthlm-stad", "samordnare"))).status_code == 200


async def test_unauthenticated_worklist_is_401(drv: PlanDriver) -> None:
    assert_problem(await drv.client.get(WORKLIST), 401)


async def test_only_the_clients_on_the_page_are_audited(drv: PlanDriver, session: AsyncSession) -> None:
    """A page names (and so reveals) only its own clients; the audit trail says exactly those."""
    clients = await _every_signal(drv, session)
    headers = drv.h("sthlm-stad")
    me = (await drv.client.get("/api/v1/me", headers=headers)).json()

    async def audited_clients() -> list[str]:
        rows = await session.execute(
            text(
                "SELECT object_id FROM audit_event WHERE action = 'worklist.read' AND actor_subject = :s "
                "ORDER BY seq"
            ),
            {"s": me["subject"]},
        )
        return [r.object_id for r in rows]

    before = await audited_clients()
    r = await drv.client.get(WORKLIST, params={"limit": 2}, headers=headers)
    assert r.status_code == 200, r.text
    page = [i["client_id"] for i in r.json()["items"]]
    assert len(page) == 2 and set(page) < set(clients.values())
    assert sorted((await audited_clients())[len(before) :]) == sorted(page)
