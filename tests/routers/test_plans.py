"""Plans over HTTP: activation rules one at a time, the life cycle, bad input that changes nothing,
organisations outside a plan, the version history and the plan list."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.organisation import Unit
from app.models.plan import Consent, Plan, PlanVersion
from tests.conftest import assert_problem
from tests.plan_helpers import PlanDriver

PLANS = "/api/v1/plans"
TODAY = date.today()


@pytest.fixture
def drv(client: httpx.AsyncClient, auth, orgs) -> PlanDriver:
    return PlanDriver(client, auth, orgs)


# ---- helpers -------------------------------------------------------------------------------


def oid(drv: PlanDriver, key: str) -> str:
    return str(drv.orgs[key].id)


def if_match(version: int) -> dict[str, str]:
    return {"If-Match": f'"{version}"'}


async def current(drv: PlanDriver, pid: str, org: str = "sthlm-stad") -> dict[str, Any]:
    r = await drv.get(pid, org=org)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def version_of(drv: PlanDriver, pid: str) -> int:
    return int((await current(drv, pid))["version"])


def rules(body: dict[str, Any]) -> list[str]:
    return [e["rule"] for e in body["errors"]]


def names_field(body: dict[str, Any], name: str) -> bool:
    """A problem's `errors` name the field, either as the service's name or FastAPI's `body.x`."""
    fields = [str(e.get("field", "")) for e in body.get("errors") or []]
    return any(f == name or f.endswith("." + name) for f in fields)


def action(plan: dict[str, Any], action_id: str) -> dict[str, Any]:
    return next(a for a in plan["actions"] if a["id"] == action_id)


async def build(
    drv: PlanDriver,
    *,
    overall: bool = True,
    region: bool = True,
    consent: bool = True,
    own_action: bool = True,
    region_action: str | None = "accepted",
    follow_up: date | None = TODAY + timedelta(days=30),
) -> dict[str, Any]:
    """A kommun's draft; by default it meets every activation rule. Returns ids of what it made."""
    fields: dict[str, Any] = {"follow_up_date": str(follow_up) if follow_up else None}
    if overall:
        fields["overall_responsible_organisation_id"] = oid(drv, "sthlm-stad")
    plan = await drv.create_plan(**fields)
    pid = plan["id"]
    out: dict[str, Any] = {"pid": pid}
    if region:
        await drv.add_participant(pid, "region-sthlm")
    if consent:
        plan = await drv.add_consent(pid, ["sthlm-stad", "region-sthlm"] if region else ["sthlm-stad"])
        out["consent_id"] = plan["consents"][0]["id"]
    if own_action:
        _, out["own_action"] = await drv.add_action(pid, "sthlm-stad", description="Boendestöd")
    if region_action is not None:
        assert region, "a region action needs the region"
        _, aid = await drv.add_action(pid, "region-sthlm", description="Läkemedelsbehandling")
        out["region_action"] = aid
        if region_action == "accepted":
            r = await drv.post(pid, f"/actions/{aid}/accept", None, org="region-sthlm")
            assert r.status_code == 200, r.text
        elif region_action == "disputed":
            r = await drv.post(
                pid, f"/actions/{aid}/dispute", {"reason": "Kommunens ansvar"}, org="region-sthlm"
            )
            assert r.status_code == 200, r.text
    return out


async def expect_refused(
    drv: PlanDriver,
    response_call: Callable[[], Awaitable[httpx.Response]],
    pid: str,
    status: int,
    *,
    org: str = "sthlm-stad",
) -> dict[str, Any]:
    """The call answers a problem with `status`, and the plan is exactly as it was."""
    before = await current(drv, pid, org=org)
    body = assert_problem(await response_call(), status)
    after = await current(drv, pid, org=org)
    assert after == before
    return dict(body)


# ---- activation: each rule refused on its own ----------------------------------------------


async def _region_initiated(drv: PlanDriver) -> str:
    """A region's plan with everything but a kommun."""
    client = await drv.register_client("region-sthlm")
    plan = await drv.create_plan(
        "region-sthlm", client["id"], overall_responsible_organisation_id=oid(drv, "region-sthlm")
    )
    pid = plan["id"]
    await drv.add_consent(pid, ["region-sthlm"], by="region-sthlm")
    await drv.add_action(pid, "region-sthlm", by="region-sthlm")
    return str(pid)


async def _case(drv: PlanDriver, session: AsyncSession, case: str) -> tuple[str, str]:
    """Build a plan that fails exactly one rule; returns (plan id, the initiating organisation)."""
    if case == "consent_missing":
        return (await build(drv, consent=False, region_action=None))["pid"], "sthlm-stad"
    if case == "consent_withdrawn":
        made = await build(drv, region_action=None)
        r = await drv.post(made["pid"], f"/consents/{made['consent_id']}/withdraw", {"reason": "Återkallar"})
        assert r.status_code == 200, r.text
        return made["pid"], "sthlm-stad"
    if case == "consent_expired":
        made = await build(drv, region_action=None)
        await session.execute(
            update(Consent)
            .where(Consent.id == uuid.UUID(made["consent_id"]))  # type: ignore[arg-type]
            .values(valid_until=TODAY - timedelta(days=1))
        )
        await session.commit()
        return made["pid"], "sthlm-stad"
    if case == "no_kommun":
        return await _region_initiated(drv), "region-sthlm"
    if case == "no_region":
        return (await build(drv, region=False, region_action=None))["pid"], "sthlm-stad"
    if case == "no_overall":
        return (await build(drv, overall=False))["pid"], "sthlm-stad"
    if case == "no_actions":
        return (await build(drv, own_action=False, region_action=None))["pid"], "sthlm-stad"
    if case == "only_cancelled_actions":
        made = await build(drv, region_action=None)
        r = await drv.patch(made["pid"], f"/actions/{made['own_action']}", {"status": "cancelled"})
        assert r.status_code == 200, r.text
        return made["pid"], "sthlm-stad"
    if case == "action_proposed":
        return (await build(drv, region_action="proposed"))["pid"], "sthlm-stad"
    if case == "action_disputed":
        return (await build(drv, region_action="disputed"))["pid"], "sthlm-stad"
    if case == "follow_up_missing":
        return (await build(drv, follow_up=None))["pid"], "sthlm-stad"
    if case == "follow_up_past":
        # Set in the future (the API refuses a past date), then time passes.
        made = await build(drv)
        await session.execute(
            update(Plan).where(Plan.id == uuid.UUID(made["pid"])).values(follow_up_date=TODAY - timedelta(days=1))  # type: ignore[arg-type]
        )
        await session.commit()
        return made["pid"], "sthlm-stad"
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "rule"),
    [
        ("consent_missing", "consent"),
        ("consent_withdrawn", "consent"),
        ("consent_expired", "consent"),
        ("no_kommun", "kommun_participant"),
        ("no_region", "region_participant"),
        ("no_overall", "overall_responsibility"),
        ("no_actions", "actions"),
        ("only_cancelled_actions", "actions"),
        ("action_proposed", "action_accepted"),
        ("action_disputed", "action_accepted"),
        ("follow_up_missing", "follow_up_date"),
        ("follow_up_past", "follow_up_date"),
    ],
)
async def test_activation_refuses_each_rule_on_its_own(
    drv: PlanDriver, session: AsyncSession, case: str, rule: str
) -> None:
    pid, org = await _case(drv, session, case)
    version = (await current(drv, pid, org=org))["version"]
    body = await expect_refused(
        drv, lambda: drv.transition(pid, "active", version, org=org), pid, 422, org=org
    )
    assert body["type"].endswith("/rule-violation")
    assert rules(body) == [rule]
    assert all(e["message"] for e in body["errors"])
    after = await current(drv, pid, org=org)
    assert (after["status"], after["version"], after["activated_at"]) == ("draft", version, None)


async def test_activation_refusal_lists_every_unmet_rule(drv: PlanDriver) -> None:
    made = await build(
        drv, overall=False, consent=False, own_action=False, region_action=None, follow_up=None
    )
    pid = made["pid"]
    version = await version_of(drv, pid)
    body = await expect_refused(drv, lambda: drv.transition(pid, "active", version), pid, 422)
    assert rules(body) == ["consent", "overall_responsibility", "actions", "follow_up_date"]


# ---- activation and the rest of the life cycle ---------------------------------------------


async def test_a_ready_plan_activates(drv: PlanDriver) -> None:
    made = await build(drv)
    pid = made["pid"]
    version = await version_of(drv, pid)
    r = await drv.transition(pid, "active", version)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "active" and body["version"] == version + 1
    assert body["activated_at"] is not None
    assert r.headers["etag"] == f'"{version + 1}"'
    # Both huvudmän read the same active plan.
    assert (await current(drv, pid, org="region-sthlm"))["status"] == "active"
    history = (await drv.client.get(f"{PLANS}/{pid}/versions", headers=drv.h("sthlm-stad"))).json()
    assert history[-1]["change"] == "plan.activate" and history[-1]["version"] == version + 1


async def test_transitions_need_if_match_and_the_current_version(drv: PlanDriver) -> None:
    made = await build(drv)
    pid = made["pid"]
    version = await version_of(drv, pid)
    await expect_refused(drv, lambda: drv.post(pid, "/transitions", {"to": "active"}), pid, 428)
    await expect_refused(drv, lambda: drv.transition(pid, "active", version - 1), pid, 412)
    await expect_refused(
        drv, lambda: drv.post(pid, "/transitions", {"to": "open"}, **if_match(version)), pid, 422
    )


async def test_pause_and_activate_again_rechecks_every_rule(drv: PlanDriver) -> None:
    pid = (await build(drv))["pid"]
    r = await drv.transition(pid, "active", await version_of(drv, pid))
    assert r.status_code == 200, r.text
    first_activation = r.json()["activated_at"]
    r = await drv.transition(pid, "paused", r.json()["version"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "paused"
    # While paused the plan loses its follow-up date; it cannot come back without one.
    r = await drv.patch(pid, "", {"follow_up_date": None}, **if_match(r.json()["version"]))
    assert r.status_code == 200, r.text
    version = r.json()["version"]
    body = await expect_refused(drv, lambda: drv.transition(pid, "active", version), pid, 422)
    assert rules(body) == ["follow_up_date"]
    assert (await current(drv, pid))["status"] == "paused"
    new_date = str(TODAY + timedelta(days=14))
    r = await drv.patch(pid, "", {"follow_up_date": new_date}, **if_match(version))
    assert r.status_code == 200, r.text
    r = await drv.transition(pid, "active", r.json()["version"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert r.json()["activated_at"] == first_activation  # the first activation is kept


async def test_an_active_plan_keeps_what_activation_required(drv: PlanDriver) -> None:
    pid = (await build(drv))["pid"]
    r = await drv.transition(pid, "active", await version_of(drv, pid))
    version = r.json()["version"]
    for field in ("follow_up_date", "overall_responsible_organisation_id"):
        body = await expect_refused(
            drv, lambda f=field: drv.patch(pid, "", {f: None}, **if_match(version)), pid, 422
        )
        assert names_field(body, field)


async def test_close_an_active_plan_then_nothing_changes_it(drv: PlanDriver) -> None:
    made = await build(drv, region_action="proposed")
    pid = made["pid"]
    r = await drv.post(pid, f"/actions/{made['region_action']}/accept", None, org="region-sthlm")
    assert r.status_code == 200, r.text
    r = await drv.transition(pid, "active", r.json()["version"])
    assert r.status_code == 200, r.text
    r = await drv.transition(pid, "closed", r.json()["version"], org="region-sthlm")
    assert r.status_code == 200, r.text
    closed = r.json()
    assert closed["status"] == "closed" and closed["closed_at"] is not None
    version = closed["version"]

    # Anything from closed is a wrong transition.
    for target in ("active", "paused", "closed", "cancelled"):
        body = await expect_refused(drv, lambda t=target: drv.transition(pid, t, version), pid, 422)
        assert rules(body) == ["transition"]

    # Every change to its content is refused with plan_open.
    changes: list[Callable[[], Awaitable[httpx.Response]]] = [
        lambda: drv.patch(pid, "", {"title": "Ny titel"}, **if_match(version)),
        lambda: drv.post(pid, "/participants", {"kind": "client"}),
        lambda: drv.post(pid, "/participants", {"organisation_id": oid(drv, "sis"), "kind": "other"}),
        lambda: drv.post(pid, "/consents", _consent(drv)),
        lambda: drv.post(pid, "/needs", {"description": "Behov"}),
        lambda: drv.post(pid, "/goals", {"description": "Mål"}),
        lambda: drv.post(
            pid, "/actions", {"description": "Insats", "responsible_organisation_id": oid(drv, "sthlm-stad")}
        ),
        lambda: drv.patch(pid, f"/actions/{made['own_action']}", {"description": "Ändrad"}),
    ]
    for change in changes:
        body = await expect_refused(drv, change, pid, 422)
        assert rules(body) == ["plan_open"], body


async def test_a_cancelled_plan_refuses_decisions_and_edits(drv: PlanDriver) -> None:
    made = await build(drv, region_action="proposed")
    pid = made["pid"]
    r = await drv.post(pid, "/needs", {"description": "Boende"})
    need_id = r.headers["location"].rsplit("/", 1)[-1]
    r = await drv.post(pid, "/goals", {"description": "Eget boende"})
    goal_id = r.headers["location"].rsplit("/", 1)[-1]
    # A draft is cancelled (the only way out of draft besides activation).
    r = await drv.transition(pid, "cancelled", r.json()["version"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["cancelled_at"] is not None
    version = r.json()["version"]
    aid = made["region_action"]
    for call, org in [
        (lambda: drv.post(pid, f"/actions/{aid}/accept", None, org="region-sthlm"), "region-sthlm"),
        (
            lambda: drv.post(pid, f"/actions/{aid}/dispute", {"reason": "Nej"}, org="region-sthlm"),
            "region-sthlm",
        ),
        (lambda: drv.patch(pid, f"/needs/{need_id}", {"description": "Ändrat"}), "sthlm-stad"),
        (lambda: drv.patch(pid, f"/goals/{goal_id}", {"description": "Ändrat"}), "sthlm-stad"),
    ]:
        body = await expect_refused(drv, call, pid, 422, org=org)
        assert rules(body) == ["plan_open"]
    for target in ("active", "paused", "closed", "cancelled"):
        body = await expect_refused(drv, lambda t=target: drv.transition(pid, t, version), pid, 422)
        assert rules(body) == ["transition"]


async def test_cancel_from_draft(drv: PlanDriver) -> None:
    plan = await drv.create_plan()
    r = await drv.transition(plan["id"], "cancelled", plan["version"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert r.json()["version"] == plan["version"] + 1


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("draft", "paused"),
        ("draft", "closed"),
        ("active", "active"),
        ("active", "cancelled"),
        ("paused", "paused"),
        ("paused", "cancelled"),
    ],
)
async def test_transition_from_the_wrong_state(drv: PlanDriver, start: str, target: str) -> None:
    pid = (await build(drv))["pid"]
    if start in ("active", "paused"):
        r = await drv.transition(pid, "active", await version_of(drv, pid))
        assert r.status_code == 200, r.text
    if start == "paused":
        r = await drv.transition(pid, "paused", r.json()["version"])
        assert r.status_code == 200, r.text
    version = await version_of(drv, pid)
    body = await expect_refused(drv, lambda: drv.transition(pid, target, version), pid, 422)
    assert rules(body) == ["transition"]
    assert (await current(drv, pid))["status"] == start


# ---- bad input: plans ----------------------------------------------------------------------


async def _plans_of_client(drv: PlanDriver, client_id: str, org: str = "sthlm-stad") -> list[dict[str, Any]]:
    r = await drv.client.get(PLANS, params={"client_id": client_id}, headers=drv.h(org))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def _create(drv: PlanDriver, org: str = "sthlm-stad", **fields: Any) -> httpx.Response:
    body = {"title": "SIP", **fields}
    return await drv.client.post(PLANS, json=body, headers=drv.h(org))


async def test_create_with_an_unknown_client(drv: PlanDriver) -> None:
    body = assert_problem(await _create(drv, client_id=str(uuid.uuid4())), 422)
    assert names_field(body, "client_id")
    # A client known only to another kommun is just as unknown to the caller.
    other = await drv.register_client("huddinge")
    body = assert_problem(await _create(drv, client_id=other["id"]), 422)
    assert names_field(body, "client_id")
    assert await _plans_of_client(drv, other["id"], org="huddinge") == []


@pytest.mark.parametrize("holder", ["region-sthlm", "huddinge", "unknown"])
async def test_create_with_overall_responsibility_outside_the_plan(drv: PlanDriver, holder: str) -> None:
    client = await drv.register_client()
    org_id = str(uuid.uuid4()) if holder == "unknown" else oid(drv, holder)
    r = await _create(drv, client_id=client["id"], overall_responsible_organisation_id=org_id)
    body = assert_problem(r, 422)
    assert names_field(body, "overall_responsible_organisation_id")
    assert await _plans_of_client(drv, client["id"]) == []


async def test_sis_cannot_create_a_plan_it_holds_responsibility_for(drv: PlanDriver) -> None:
    client = await drv.register_client("sis")
    r = await _create(drv, "sis", client_id=client["id"], overall_responsible_organisation_id=oid(drv, "sis"))
    body = assert_problem(r, 422)
    assert names_field(body, "overall_responsible_organisation_id")
    assert await _plans_of_client(drv, client["id"], org="sis") == []
    # Without it, SiS may start the plan as an other actor.
    r = await _create(drv, "sis", client_id=client["id"])
    assert r.status_code == 201, r.text
    assert [p["kind"] for p in r.json()["participants"]] == ["other"]


async def test_patch_overall_responsibility_must_be_a_participating_huvudman(drv: PlanDriver) -> None:
    plan = await drv.create_plan()
    pid = plan["id"]
    await drv.add_participant(pid, "sis", kind="other")
    version = await version_of(drv, pid)
    for holder in ("region-sthlm", "sis", "huddinge", None):
        org_id = oid(drv, holder) if holder else str(uuid.uuid4())
        body = await expect_refused(
            drv,
            lambda o=org_id: drv.patch(
                pid, "", {"overall_responsible_organisation_id": o}, **if_match(version)
            ),
            pid,
            422,
        )
        assert names_field(body, "overall_responsible_organisation_id"), body
    # Once the region takes part as huvudman it may hold it.
    await drv.add_participant(pid, "region-sthlm")
    version = await version_of(drv, pid)
    r = await drv.patch(
        pid, "", {"overall_responsible_organisation_id": oid(drv, "region-sthlm")}, **if_match(version)
    )
    assert r.status_code == 200, r.text
    assert r.json()["overall_responsible_organisation_id"] == oid(drv, "region-sthlm")


async def test_patch_needs_if_match_and_refuses_nulls_and_empty_bodies(drv: PlanDriver) -> None:
    plan = await drv.create_plan()
    pid, version = plan["id"], plan["version"]
    await expect_refused(drv, lambda: drv.patch(pid, "", {"title": "X"}), pid, 428)
    await expect_refused(drv, lambda: drv.patch(pid, "", {"title": "X"}, **if_match(version + 1)), pid, 412)
    body = await expect_refused(
        drv, lambda: drv.patch(pid, "", {"title": None}, **if_match(version)), pid, 422
    )
    assert names_field(body, "title")
    await expect_refused(drv, lambda: drv.patch(pid, "", {}, **if_match(version)), pid, 422)
    await expect_refused(drv, lambda: drv.patch(pid, "", {"status": "active"}, **if_match(version)), pid, 422)


# ---- bad input: participants ---------------------------------------------------------------


async def test_unknown_organisation_as_participant(drv: PlanDriver) -> None:
    pid = (await drv.create_plan())["id"]
    body = await expect_refused(
        drv,
        lambda: drv.post(pid, "/participants", {"organisation_id": str(uuid.uuid4()), "kind": "huvudman"}),
        pid,
        422,
    )
    assert names_field(body, "organisation_id")


@pytest.mark.parametrize(
    ("org", "kind"), [("sis", "huvudman"), ("huddinge", "other"), ("region-sthlm", "other")]
)
async def test_participant_kind_must_fit_the_organisation(drv: PlanDriver, org: str, kind: str) -> None:
    pid = (await drv.create_plan())["id"]
    body = await expect_refused(
        drv,
        lambda: drv.post(pid, "/participants", {"organisation_id": oid(drv, org), "kind": kind}),
        pid,
        422,
    )
    assert names_field(body, "kind")


async def test_duplicate_participant(drv: PlanDriver) -> None:
    pid = (await drv.create_plan())["id"]
    await drv.add_participant(pid, "region-sthlm")
    r = await drv.post(pid, "/participants", {"kind": "client"})
    assert r.status_code == 201, r.text
    for body in (
        {"organisation_id": oid(drv, "region-sthlm"), "kind": "huvudman"},
        {"organisation_id": oid(drv, "sthlm-stad"), "kind": "huvudman"},  # the initiator
        {"kind": "client"},
    ):
        await expect_refused(drv, lambda b=body: drv.post(pid, "/participants", b), pid, 409)


async def _unit(session: AsyncSession, org_id: uuid.UUID) -> str:
    unit_id = (await session.execute(select(Unit.id).where(Unit.organisation_id == org_id))).scalars().first()
    await session.commit()
    assert unit_id is not None
    return str(unit_id)


async def test_unit_must_belong_to_the_participating_organisation(
    drv: PlanDriver, session: AsyncSession
) -> None:
    pid = (await drv.create_plan())["id"]
    region_unit = await _unit(session, drv.orgs["region-sthlm"].id)
    sis_unit = await _unit(session, drv.orgs["sis"].id)
    for unit_id in (sis_unit, str(uuid.uuid4())):
        body = await expect_refused(
            drv,
            lambda u=unit_id: drv.post(
                pid,
                "/participants",
                {"organisation_id": oid(drv, "region-sthlm"), "kind": "huvudman", "unit_id": u},
            ),
            pid,
            422,
        )
        assert names_field(body, "unit_id")
    r = await drv.post(
        pid,
        "/participants",
        {"organisation_id": oid(drv, "region-sthlm"), "kind": "huvudman", "unit_id": region_unit},
    )
    assert r.status_code == 201, r.text
    region = next(p for p in r.json()["participants"] if p["organisation_id"] == oid(drv, "region-sthlm"))
    assert region["unit_id"] == region_unit


async def test_narstaende_only_while_the_client_does_not_object(drv: PlanDriver) -> None:
    plan = await drv.create_plan()
    pid = plan["id"]
    r = await drv.patch(pid, "", {"relatives_objection": True}, **if_match(plan["version"]))
    assert r.status_code == 200, r.text
    relative = {"kind": "narstaende", "name": "Eva Andersson", "relation": "mor"}
    body = await expect_refused(drv, lambda: drv.post(pid, "/participants", relative), pid, 422)
    assert rules(body) == ["relatives_objection"]
    r = await drv.patch(pid, "", {"relatives_objection": False}, **if_match(r.json()["version"]))
    assert r.status_code == 200, r.text
    r = await drv.post(pid, "/participants", relative)
    assert r.status_code == 201, r.text
    assert [(p["kind"], p["name"]) for p in r.json()["participants"] if p["kind"] == "narstaende"] == [
        ("narstaende", "Eva Andersson")
    ]


# ---- bad input: consents -------------------------------------------------------------------


def _consent(drv: PlanDriver, **fields: Any) -> dict[str, Any]:
    return {
        "given_at": datetime.now(UTC).isoformat(),
        "obtained_by": "Hanna Handläggare",
        "method": "written",
        "scope_organisation_ids": [oid(drv, "sthlm-stad")],
        **fields,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("given_at", (datetime.now(UTC) + timedelta(days=1)).isoformat()),
        ("given_at", datetime.now(UTC).replace(tzinfo=None).isoformat()),  # no UTC offset
        ("valid_until", str(TODAY - timedelta(days=1))),
        ("scope_organisation_ids", [str(uuid.uuid4())]),
        ("scope_organisation_ids", []),
        ("method", "telepathic"),
    ],
)
async def test_bad_consent(drv: PlanDriver, field: str, value: Any) -> None:
    pid = (await drv.create_plan())["id"]
    body = await expect_refused(
        drv, lambda: drv.post(pid, "/consents", _consent(drv, **{field: value})), pid, 422
    )
    assert names_field(body, field), body


async def test_withdraw_a_consent_twice_or_of_another_plan(drv: PlanDriver) -> None:
    made = await build(drv, region_action=None)
    pid, cid = made["pid"], made["consent_id"]
    other = (await build(drv, region_action=None))["pid"]
    await expect_refused(
        drv, lambda: drv.post(other, f"/consents/{cid}/withdraw", {"reason": "x"}), other, 404
    )
    r = await drv.post(pid, f"/consents/{cid}/withdraw", {"reason": "Återkallar"})
    assert r.status_code == 200, r.text
    assert r.json()["consents"][0]["active"] is False
    await expect_refused(
        drv, lambda: drv.post(pid, f"/consents/{cid}/withdraw", {"reason": "igen"}), pid, 409
    )


# ---- bad input: needs, goals, actions ------------------------------------------------------


async def test_action_for_an_organisation_outside_the_plan(drv: PlanDriver) -> None:
    pid = (await drv.create_plan())["id"]
    body = await expect_refused(
        drv,
        lambda: drv.post(
            pid, "/actions", {"description": "Insats", "responsible_organisation_id": oid(drv, "huddinge")}
        ),
        pid,
        422,
    )
    assert rules(body) == ["action_responsible"]
    assert names_field(body, "responsible_organisation_id")
    body = await expect_refused(
        drv,
        lambda: drv.post(
            pid, "/actions", {"description": "Insats", "responsible_organisation_id": str(uuid.uuid4())}
        ),
        pid,
        422,
    )
    assert names_field(body, "responsible_organisation_id")


async def test_action_dates_in_order(drv: PlanDriver) -> None:
    pid = (await drv.create_plan())["id"]
    bad = {
        "description": "Insats",
        "responsible_organisation_id": oid(drv, "sthlm-stad"),
        "start_date": "2027-03-01",
        "end_date": "2027-02-01",
    }
    body = await expect_refused(drv, lambda: drv.post(pid, "/actions", bad), pid, 422)
    assert names_field(body, "end_date"), body
    _, aid = await drv.add_action(pid, "sthlm-stad", start_date="2027-03-01")
    body = await expect_refused(
        drv, lambda: drv.patch(pid, f"/actions/{aid}", {"end_date": "2027-02-01"}), pid, 422
    )
    assert names_field(body, "end_date")


async def test_goal_and_action_references_stay_within_the_plan(drv: PlanDriver) -> None:
    pid = (await drv.create_plan())["id"]
    other = (await drv.create_plan())["id"]
    r = await drv.post(other, "/needs", {"description": "Annan plans behov"})
    foreign_need = r.headers["location"].rsplit("/", 1)[-1]
    r = await drv.post(other, "/goals", {"description": "Annan plans mål"})
    foreign_goal = r.headers["location"].rsplit("/", 1)[-1]
    body = await expect_refused(
        drv, lambda: drv.post(pid, "/goals", {"description": "Mål", "need_id": foreign_need}), pid, 422
    )
    assert names_field(body, "need_id")
    r = await drv.post(pid, "/goals", {"description": "Mål"})
    goal_id = r.headers["location"].rsplit("/", 1)[-1]
    body = await expect_refused(
        drv, lambda: drv.patch(pid, f"/goals/{goal_id}", {"need_id": foreign_need}), pid, 422
    )
    assert names_field(body, "need_id")
    body = await expect_refused(
        drv,
        lambda: drv.post(
            pid,
            "/actions",
            {
                "description": "I",
                "responsible_organisation_id": oid(drv, "sthlm-stad"),
                "goal_id": foreign_goal,
            },
        ),
        pid,
        422,
    )
    assert names_field(body, "goal_id")
    # Another plan's need or goal is no object of this plan.
    await expect_refused(
        drv, lambda: drv.patch(pid, f"/goals/{foreign_goal}", {"description": "x"}), pid, 404
    )
    await expect_refused(
        drv, lambda: drv.patch(pid, f"/needs/{foreign_need}", {"description": "x"}), pid, 404
    )


async def test_accept_and_dispute_only_by_the_responsible_organisation(drv: PlanDriver) -> None:
    pid = (await build(drv, region_action=None))["pid"]
    await drv.add_participant(pid, "sis", kind="other")
    await drv.add_consent(pid, ["sthlm-stad", "region-sthlm", "sis"])
    _, aid = await drv.add_action(pid, "region-sthlm")
    for org in ("sthlm-stad", "sis"):  # a participant that sees the plan but is not responsible
        await expect_refused(
            drv, lambda o=org: drv.post(pid, f"/actions/{aid}/accept", None, org=o), pid, 403, org=org
        )
        await expect_refused(
            drv,
            lambda o=org: drv.post(pid, f"/actions/{aid}/dispute", {"reason": "x"}, org=o),
            pid,
            403,
            org=org,
        )
    # A lasare of the responsible organisation may not decide either.
    await expect_refused(
        drv,
        lambda: drv.post(pid, f"/actions/{aid}/accept", None, org="region-sthlm", role="lasare"),
        pid,
        403,
    )
    assert action(await current(drv, pid), aid)["status"] == "proposed"


async def test_dispute_and_accept_follow_the_action_status(drv: PlanDriver) -> None:
    made = await build(drv, region_action="proposed")
    pid, aid = made["pid"], made["region_action"]
    r = await drv.post(pid, f"/actions/{aid}/dispute", {"reason": "Kommunens ansvar"}, org="region-sthlm")
    assert r.status_code == 200, r.text
    assert action(r.json(), aid)["dispute_reason"] == "Kommunens ansvar"
    # A disputed action cannot be disputed again, but may still be accepted.
    await expect_refused(
        drv,
        lambda: drv.post(pid, f"/actions/{aid}/dispute", {"reason": "igen"}, org="region-sthlm"),
        pid,
        409,
    )
    r = await drv.post(pid, f"/actions/{aid}/accept", None, org="region-sthlm")
    assert r.status_code == 200, r.text
    assert action(r.json(), aid)["status"] == "accepted" and action(r.json(), aid)["dispute_reason"] is None
    # An accepted action can be neither disputed nor accepted again.
    await expect_refused(
        drv,
        lambda: drv.post(pid, f"/actions/{aid}/dispute", {"reason": "Ångrar"}, org="region-sthlm"),
        pid,
        409,
    )
    await expect_refused(
        drv, lambda: drv.post(pid, f"/actions/{aid}/accept", None, org="region-sthlm"), pid, 409
    )
    await expect_refused(
        drv, lambda: drv.post(pid, f"/actions/{uuid.uuid4()}/accept", None, org="region-sthlm"), pid, 404
    )


async def test_action_status_moves(drv: PlanDriver) -> None:
    made = await build(drv)
    pid, aid = made["pid"], made["region_action"]  # the kommun proposed it; the region accepted it
    # Only the responsible organisation starts or completes it.
    for status in ("started", "completed"):
        await expect_refused(drv, lambda s=status: drv.patch(pid, f"/actions/{aid}", {"status": s}), pid, 403)
    # accept and dispute have calls of their own.
    for status in ("accepted", "disputed", "proposed"):
        body = await expect_refused(
            drv,
            lambda s=status: drv.patch(pid, f"/actions/{aid}", {"status": s}, org="region-sthlm"),
            pid,
            422,
        )
        assert names_field(body, "status")
    r = await drv.patch(pid, f"/actions/{aid}", {"status": "started"}, org="region-sthlm")
    assert r.status_code == 200, r.text
    assert action(r.json(), aid)["status"] == "started"
    # started cannot be started again.
    await expect_refused(
        drv, lambda: drv.patch(pid, f"/actions/{aid}", {"status": "started"}, org="region-sthlm"), pid, 409
    )
    r = await drv.patch(pid, f"/actions/{aid}", {"status": "completed"}, org="region-sthlm")
    assert r.status_code == 200, r.text
    assert action(r.json(), aid)["status"] == "completed"
    # A completed action no longer changes, for anyone.
    for org, change in [
        ("region-sthlm", {"status": "cancelled"}),
        ("sthlm-stad", {"status": "cancelled"}),
        ("region-sthlm", {"description": "Ändrad"}),
        ("sthlm-stad", {"description": "Ändrad"}),
    ]:
        await expect_refused(
            drv, lambda o=org, c=change: drv.patch(pid, f"/actions/{aid}", c, org=o), pid, 409
        )


async def test_proposer_may_cancel_but_a_bystander_may_not(drv: PlanDriver) -> None:
    made = await build(drv, region_action="proposed")
    pid, aid = made["pid"], made["region_action"]
    await drv.add_participant(pid, "sis", kind="other")
    await drv.add_consent(pid, ["sthlm-stad", "region-sthlm", "sis"])
    # A proposed action cannot start before it is accepted, not even by its responsible organisation.
    await expect_refused(
        drv, lambda: drv.patch(pid, f"/actions/{aid}", {"status": "started"}, org="region-sthlm"), pid, 409
    )
    await expect_refused(
        drv,
        lambda: drv.patch(pid, f"/actions/{aid}", {"status": "cancelled"}, org="sis"),
        pid,
        403,
        org="sis",
    )
    r = await drv.patch(pid, f"/actions/{aid}", {"status": "cancelled"})  # the kommun proposed it
    assert r.status_code == 200, r.text
    assert action(r.json(), aid)["status"] == "cancelled"
    await expect_refused(drv, lambda: drv.patch(pid, f"/actions/{aid}", {"description": "Igen"}), pid, 409)
    # The responsible organisation may cancel an accepted action of its own.
    r = await drv.patch(pid, f"/actions/{made['own_action']}", {"status": "cancelled"})
    assert r.status_code == 200, r.text


async def test_editing_an_accepted_action_by_the_proposer_puts_it_back_to_proposed(drv: PlanDriver) -> None:
    made = await build(drv)
    pid, aid = made["pid"], made["region_action"]
    # The same description is no change: it stays accepted.
    r = await drv.patch(pid, f"/actions/{aid}", {"description": "Läkemedelsbehandling"})
    assert r.status_code == 200, r.text
    assert action(r.json(), aid)["status"] == "accepted"
    r = await drv.patch(pid, f"/actions/{aid}", {"description": "Läkemedelsbehandling och samtalsstöd"})
    assert r.status_code == 200, r.text
    changed = action(r.json(), aid)
    assert changed["status"] == "proposed" and changed["decided_at"] is None
    # ... so the plan cannot activate until the region accepts again.
    body = await expect_refused(drv, lambda: drv.transition(pid, "active", r.json()["version"]), pid, 422)
    assert rules(body) == ["action_accepted"]
    # The responsible organisation editing its own accepted action keeps it accepted.
    r = await drv.post(pid, f"/actions/{aid}/accept", None, org="region-sthlm")
    r = await drv.patch(pid, f"/actions/{aid}", {"description": "Ändrad av regionen"}, org="region-sthlm")
    assert r.status_code == 200, r.text
    assert action(r.json(), aid)["status"] == "accepted"


async def test_handing_an_action_to_another_organisation_needs_its_acceptance(drv: PlanDriver) -> None:
    made = await build(drv)
    pid, own = made["pid"], made["own_action"]
    # Giving it to the region and starting it in the same change would skip the region's acceptance.
    change = {"responsible_organisation_id": oid(drv, "region-sthlm"), "status": "started"}
    await expect_refused(drv, lambda: drv.patch(pid, f"/actions/{own}", change), pid, 403)
    change = {"responsible_organisation_id": oid(drv, "region-sthlm"), "status": "completed"}
    await expect_refused(drv, lambda: drv.patch(pid, f"/actions/{own}", change), pid, 403)
    # Handing it over alone makes it a proposal to the region.
    r = await drv.patch(pid, f"/actions/{own}", {"responsible_organisation_id": oid(drv, "region-sthlm")})
    assert r.status_code == 200, r.text
    assert action(r.json(), own)["status"] == "proposed"
    assert action(r.json(), own)["decided_at"] is None


async def test_a_started_action_handed_to_another_organisation_is_proposed_to_it(drv: PlanDriver) -> None:
    made = await build(drv)
    pid, aid = made["pid"], made["region_action"]
    await drv.add_participant(pid, "sis", kind="other")
    await drv.add_consent(pid, ["sthlm-stad", "region-sthlm", "sis"])
    r = await drv.patch(pid, f"/actions/{aid}", {"status": "started"}, org="region-sthlm")
    assert r.status_code == 200, r.text
    # Editing the text of a started action leaves it started ...
    r = await drv.patch(pid, f"/actions/{aid}", {"description": "Behandling, vecka 2"})
    assert action(r.json(), aid)["status"] == "started"
    # ... but SiS never took it on: handed to SiS it waits for SiS's answer.
    r = await drv.patch(pid, f"/actions/{aid}", {"responsible_organisation_id": oid(drv, "sis")})
    assert r.status_code == 200, r.text
    assert action(r.json(), aid)["status"] == "proposed"
    r = await drv.post(pid, f"/actions/{aid}/accept", None, org="sis")
    assert r.status_code == 200, r.text
    assert action(r.json(), aid)["status"] == "accepted"


# ---- organisations outside the plan --------------------------------------------------------

OUTSIDERS = ("huddinge", "uppsala", "region-uppsala")


async def _shared_plan(drv: PlanDriver) -> dict[str, str]:
    """A kommun's plan with the region invited but not covered by the consent, and SiS covered."""
    plan = await drv.create_plan(overall_responsible_organisation_id=oid(drv, "sthlm-stad"))
    pid = plan["id"]
    await drv.add_participant(pid, "region-sthlm")
    await drv.add_participant(pid, "sis", kind="other")
    plan = await drv.add_consent(pid, ["sthlm-stad", "sis"])
    r = await drv.post(pid, "/needs", {"description": "Boende"})
    need = r.headers["location"].rsplit("/", 1)[-1]
    r = await drv.post(pid, "/goals", {"description": "Eget boende", "need_id": need})
    goal = r.headers["location"].rsplit("/", 1)[-1]
    _, aid = await drv.add_action(pid, "region-sthlm")
    return {"pid": pid, "cid": plan["consents"][0]["id"], "nid": need, "gid": goal, "aid": aid}


ENDPOINTS: list[tuple[str, str, str, Any]] = [
    ("get", "GET", "", None),
    ("patch", "PATCH", "", {"title": "Kapad"}),
    ("transition", "POST", "/transitions", {"to": "cancelled"}),
    ("participant", "POST", "/participants", {"kind": "client"}),
    ("consent", "POST", "/consents", "consent"),
    ("withdraw", "POST", "/consents/{cid}/withdraw", {"reason": "x"}),
    ("need", "POST", "/needs", {"description": "x"}),
    ("need_patch", "PATCH", "/needs/{nid}", {"description": "x"}),
    ("goal", "POST", "/goals", {"description": "x"}),
    ("goal_patch", "PATCH", "/goals/{gid}", {"description": "x"}),
    ("action", "POST", "/actions", "own_action"),
    ("action_patch", "PATCH", "/actions/{aid}", {"description": "x"}),
    ("accept", "POST", "/actions/{aid}/accept", None),
    ("dispute", "POST", "/actions/{aid}/dispute", {"reason": "x"}),
    ("versions", "GET", "/versions", None),
    ("version", "GET", "/versions/1", None),
]


@pytest.mark.parametrize(("name", "method", "path", "body"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
async def test_organisations_outside_the_plan_get_404_and_change_nothing(
    drv: PlanDriver, name: str, method: str, path: str, body: Any
) -> None:
    ids = await _shared_plan(drv)
    pid = ids["pid"]
    url = f"{PLANS}/{pid}{path.format(**ids)}"
    before = await current(drv, pid)
    # Outsiders, and the region: it takes part but the consent does not cover it.
    for org in (*OUTSIDERS, "region-sthlm"):
        if body == "consent":
            payload: Any = _consent(drv, scope_organisation_ids=[oid(drv, org)])
        elif body == "own_action":
            payload = {"description": "x", "responsible_organisation_id": oid(drv, org)}
        else:
            payload = body
        headers = drv.h(org, **if_match(before["version"]))
        r = await drv.client.request(method, url, json=payload, headers=headers)
        problem = assert_problem(r, 404)
        assert pid not in str(problem["detail"])
        assert "etag" not in r.headers
    assert await current(drv, pid) == before
    # The same call by the covered organisations is not refused with 404.
    if method == "GET":
        for org in ("sthlm-stad", "sis"):
            r = await drv.client.get(url, headers=drv.h(org))
            assert r.status_code == 200, r.text


async def test_consent_covering_the_region_opens_the_plan_to_it(drv: PlanDriver) -> None:
    ids = await _shared_plan(drv)
    pid = ids["pid"]
    assert_problem(await drv.get(pid, org="region-sthlm"), 404)
    await drv.add_consent(pid, ["region-sthlm"])
    r = await drv.post(pid, f"/actions/{ids['aid']}/accept", None, org="region-sthlm")
    assert r.status_code == 200, r.text
    # A consent naming an organisation that does not take part opens nothing to it.
    await drv.add_consent(pid, ["huddinge"])
    assert_problem(await drv.get(pid, org="huddinge"), 404)


# ---- versions ------------------------------------------------------------------------------


async def _versions(drv: PlanDriver, pid: str, org: str = "sthlm-stad") -> list[dict[str, Any]]:
    r = await drv.client.get(f"{PLANS}/{pid}/versions", headers=drv.h(org))
    assert r.status_code == 200, r.text
    return list(r.json())


async def test_versions_list_every_change_without_gaps(drv: PlanDriver) -> None:
    made = await build(drv)
    pid = made["pid"]
    history = await _versions(drv, pid)
    plan = await current(drv, pid)
    assert [v["version"] for v in history] == list(range(1, plan["version"] + 1))
    assert [v["change"] for v in history] == [
        "plan.create",
        "plan.participant.add",
        "plan.consent.give",
        "plan.action.add",
        "plan.action.propose",
        "plan.action.accept",
    ]
    for v in history:
        assert v["changed_by"] and v["changed_by_organisation_id"] and v["changed_at"]
        assert "snapshot" not in v
    assert history[-1]["changed_by_organisation_id"] == oid(drv, "region-sthlm")
    assert history[-1]["changed_by"] == "test-region-sthlm-handlaggare"
    assert {v["changed_by_organisation_id"] for v in history[:-1]} == {oid(drv, "sthlm-stad")}
    # Each snapshot is the plan as it was at that version.
    for v in history:
        r = await drv.client.get(f"{PLANS}/{pid}/versions/{v['version']}", headers=drv.h("region-sthlm"))
        assert r.status_code == 200, r.text
        snap = r.json()
        assert snap["version"] == v["version"] and snap["snapshot"]["version"] == v["version"]
        assert snap["change"] == v["change"]
    first = (await drv.client.get(f"{PLANS}/{pid}/versions/1", headers=drv.h("sthlm-stad"))).json()
    assert first["snapshot"]["participants"][0]["organisation_id"] == oid(drv, "sthlm-stad")
    assert len(first["snapshot"]["participants"]) == 1 and first["snapshot"]["actions"] == []
    last = (
        await drv.client.get(f"{PLANS}/{pid}/versions/{plan['version']}", headers=drv.h("sthlm-stad"))
    ).json()
    assert last["snapshot"] == {**plan, "updated_at": last["snapshot"]["updated_at"]}


async def test_patch_by_two_organisations_shows_both_in_history(drv: PlanDriver) -> None:
    pid = (await build(drv))["pid"]
    version = await version_of(drv, pid)
    r = await drv.patch(pid, "", {"title": "Kommunens titel"}, **if_match(version))
    assert r.status_code == 200, r.text
    r = await drv.patch(
        pid,
        "",
        {"follow_up_date": str(TODAY + timedelta(days=60))},
        org="region-sthlm",
        **if_match(version + 1),
    )
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Kommunens titel" and r.json()["version"] == version + 2
    history = await _versions(drv, pid, org="region-sthlm")
    tail = [(v["change"], v["changed_by_organisation_id"], v["summary"]) for v in history[-2:]]
    assert tail == [
        ("plan.update", oid(drv, "sthlm-stad"), {"title": "Kommunens titel"}),
        ("plan.update", oid(drv, "region-sthlm"), {"follow_up_date": str(TODAY + timedelta(days=60))}),
    ]
    assert history[-1]["changed_by"] == "test-region-sthlm-handlaggare"
    assert history[-2]["changed_by"] == "test-sthlm-stad-handlaggare"


@pytest.mark.parametrize("number", ["0", "-1", "next", "2147483648", "99999999999999999999"])
async def test_a_version_that_does_not_exist_is_404(drv: PlanDriver, number: str) -> None:
    plan = await drv.create_plan()
    pid = plan["id"]
    n = str(plan["version"] + 1) if number == "next" else number
    assert_problem(await drv.client.get(f"{PLANS}/{pid}/versions/{n}", headers=drv.h("sthlm-stad")), 404)


async def test_versions_of_a_plan_out_of_reach_are_404(drv: PlanDriver) -> None:
    pid = (await build(drv))["pid"]
    for org in OUTSIDERS:
        assert_problem(await drv.client.get(f"{PLANS}/{pid}/versions", headers=drv.h(org)), 404)
        assert_problem(await drv.client.get(f"{PLANS}/{pid}/versions/1", headers=drv.h(org)), 404)
    for unknown in (f"{PLANS}/{uuid.uuid4()}/versions", f"{PLANS}/{uuid.uuid4()}/versions/1"):
        assert_problem(await drv.client.get(unknown, headers=drv.h("sthlm-stad")), 404)


# ---- the plan list -------------------------------------------------------------------------


async def _walk(drv: PlanDriver, org: str, **params: Any) -> tuple[list[str], int]:
    ids: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await drv.client.get(PLANS, params=query, headers=drv.h(org))
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        assert len(body["items"]) <= params.get("limit", 50)
        ids += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        assert body["items"], "a page with a next cursor must not be empty"
        assert pages < 100


async def test_list_walks_every_visible_plan_once(drv: PlanDriver, session: AsyncSession) -> None:
    mine = [(await drv.create_plan())["id"] for _ in range(5)]
    theirs = (await drv.create_plan("huddinge"))["id"]
    ids, pages = await _walk(drv, "sthlm-stad", limit=2)
    assert len(ids) == len(set(ids))
    assert set(mine) <= set(ids) and theirs not in ids
    # Pages of two: the last page may be full, and then one more (empty) page is not needed.
    assert pages == (len(ids) + 1) // 2
    # Plans created in the same instant are still each listed once (ties break on the id).
    same = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    await session.execute(
        update(Plan).where(Plan.id.in_([uuid.UUID(p) for p in mine])).values(created_at=same)  # type: ignore[attr-defined]
    )
    await session.commit()
    ids, _ = await _walk(drv, "sthlm-stad", limit=2)
    assert len(ids) == len(set(ids)) and set(mine) <= set(ids)
    # In order: oldest first, ties by id.
    listed_mine = [i for i in ids if i in mine]
    assert listed_mine == sorted(mine, key=uuid.UUID)


async def test_list_filters_by_client_and_status(drv: PlanDriver) -> None:
    client_a = (await drv.register_client())["id"]
    client_b = (await drv.register_client())["id"]
    a1 = await drv.create_plan(client_id=client_a)
    a2 = await drv.create_plan(client_id=client_a)
    b1 = await drv.create_plan(client_id=client_b)
    r = await drv.transition(a2["id"], "cancelled", a2["version"])
    assert r.status_code == 200, r.text
    ids, _ = await _walk(drv, "sthlm-stad", limit=1, client_id=client_a)
    assert sorted(ids) == sorted([a1["id"], a2["id"]])
    ids, _ = await _walk(drv, "sthlm-stad", client_id=client_a, status="cancelled")
    assert ids == [a2["id"]]
    ids, _ = await _walk(drv, "sthlm-stad", client_id=client_a, status="draft")
    assert ids == [a1["id"]]
    ids, _ = await _walk(drv, "sthlm-stad", client_id=client_b)
    assert ids == [b1["id"]]
    r = await drv.client.get(PLANS, params={"client_id": client_a}, headers=drv.h("sthlm-stad"))
    item = r.json()["items"][0]
    assert item["client_id"] == client_a and {"status", "version", "title"} <= item.keys()
    # Another organisation sees none of them, with or without the filter.
    for org in OUTSIDERS:
        ids, _ = await _walk(drv, org, client_id=client_a)
        assert ids == []
        ids, _ = await _walk(drv, org, limit=200)
        assert not {a1["id"], a2["id"], b1["id"]} & set(ids)


async def test_list_shows_a_plan_to_a_participant_only_with_consent(drv: PlanDriver) -> None:
    ids = await _shared_plan(drv)
    listed, _ = await _walk(drv, "region-sthlm", limit=200)
    assert ids["pid"] not in listed
    listed, _ = await _walk(drv, "sis", limit=200)
    assert ids["pid"] in listed


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"status": "open"}, {"client_id": "nope"}, {"cursor": "garbage!"}],
)
async def test_list_refuses_bad_parameters(drv: PlanDriver, params: dict[str, Any]) -> None:
    r = await drv.client.get(PLANS, params=params, headers=drv.h("sthlm-stad"))
    assert r.status_code in (400, 422), r.text
    assert_problem(r, r.status_code)


# ---- the database agrees with what the API said ---------------------------------------------


async def test_a_refused_activation_leaves_no_trace_in_the_database(
    drv: PlanDriver, session: AsyncSession
) -> None:
    pid = (await build(drv, follow_up=None))["pid"]
    version = await version_of(drv, pid)
    assert_problem(await drv.transition(pid, "active", version), 422)
    row = (
        await session.execute(
            select(Plan.status, Plan.version).where(Plan.id == uuid.UUID(pid))  # type: ignore[arg-type]
        )
    ).one()
    numbers = list(
        (
            await session.execute(
                select(PlanVersion.version).where(PlanVersion.plan_id == uuid.UUID(pid))  # type: ignore[arg-type]
            )
        ).scalars()
    )
    await session.commit()
    assert (row.status, row.version) == ("draft", version)
    assert sorted(numbers) == list(range(1, version + 1))


async def test_a_follow_up_date_in_the_past_is_refused_on_create_and_patch(client, auth, orgs) -> None:
    from datetime import date, timedelta

    from tests.plan_helpers import PlanDriver

    drv = PlanDriver(client, auth, orgs)
    cid = (await drv.register_client())["id"]
    yesterday = str(date.today() - timedelta(days=1))
    body = {"client_id": cid, "title": "SIP", "follow_up_date": yesterday}
    r = await client.post("/api/v1/plans", json=body, headers=drv.h("sthlm-stad"))
    problem = assert_problem(r, 422)
    assert [e["field"] for e in problem["errors"]] == ["follow_up_date"]  # type: ignore[union-attr]
    plan = await drv.create_plan(client_id=cid)
    r = await drv.patch(plan["id"], "", {"follow_up_date": yesterday}, **{"If-Match": f'"{plan["version"]}"'})
    assert_problem(r, 422)
    assert (await drv.get(plan["id"])).json()["follow_up_date"] == plan["follow_up_date"]
