"""The whole life of a SIP across three organisations, as the issue describes it."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import assert_problem
from tests.plan_helpers import PlanDriver


@pytest.fixture
def drv(client: httpx.AsyncClient, auth, orgs) -> PlanDriver:
    return PlanDriver(client, auth, orgs)


async def test_a_sip_from_draft_to_paused(drv: PlanDriver, orgs) -> None:
    kommun, region = (str(orgs[k].id) for k in ("sthlm-stad", "region-sthlm"))
    # A kommun initiates, holding the overall responsibility.
    plan = await drv.create_plan(overall_responsible_organisation_id=kommun)
    pid = plan["id"]
    assert plan["status"] == "draft" and plan["version"] == 1
    assert plan["initiating_organisation_id"] == kommun
    assert [p["organisation_id"] for p in plan["participants"]] == [kommun]

    # Region and SiS are invited; before consent neither can see the plan.
    await drv.add_participant(pid, "region-sthlm")
    await drv.add_participant(pid, "sis", kind="other")
    assert_problem(await drv.get(pid, org="region-sthlm"), 404)
    assert_problem(await drv.get(pid, org="sis"), 404)

    # The client consents to sharing with all three; now they see it.
    plan = await drv.add_consent(pid, ["sthlm-stad", "region-sthlm", "sis"])
    consent_id = plan["consents"][0]["id"]
    assert (await drv.get(pid, org="region-sthlm")).status_code == 200
    assert (await drv.get(pid, org="sis")).status_code == 200

    # Actions: the kommun's own is accepted at once; the region's two start proposed.
    plan, own = await drv.add_action(
        pid, "sthlm-stad", description="Boendestöd i eftervården", phase="eftervard"
    )
    plan, medical = await drv.add_action(pid, "region-sthlm", description="Substitutionsbehandling")
    plan, housing = await drv.add_action(pid, "region-sthlm", description="Bostad med särskild service")
    plan, sis_action = await drv.add_action(
        pid, "sis", description="Utslussning från LVM-hemmet", phase="lvm_vard"
    )
    statuses = {a["id"]: a["status"] for a in plan["actions"]}
    assert statuses == {own: "accepted", medical: "proposed", housing: "proposed", sis_action: "proposed"}

    # Only the responsible organisation decides: the kommun cannot accept the region's action.
    assert_problem(await drv.post(pid, f"/actions/{medical}/accept", None, org="sthlm-stad"), 403)
    # The region accepts one and disputes the other with a reason.
    r = await drv.post(pid, f"/actions/{medical}/accept", None, org="region-sthlm")
    assert r.status_code == 200, r.text
    r = await drv.post(
        pid, f"/actions/{housing}/dispute", {"reason": "Boende är socialtjänstens ansvar"}, org="region-sthlm"
    )
    assert r.status_code == 200, r.text
    # A dispute without a reason is refused.
    assert_problem(await drv.post(pid, f"/actions/{housing}/dispute", {}, org="region-sthlm"), 422)

    # The dispute stays visible, with its reason, to every participant, and is counted.
    for org in ("sthlm-stad", "region-sthlm", "sis"):
        body = (await drv.get(pid, org=org)).json()
        disputed = [a for a in body["actions"] if a["status"] == "disputed"]
        assert [a["dispute_reason"] for a in disputed] == ["Boende är socialtjänstens ansvar"]
        assert body["disputed_action_count"] == 1

    # Activation is refused while actions are unaccepted; the refusal lists every unmet rule.
    version = (await drv.get(pid)).json()["version"]
    body = assert_problem(await drv.transition(pid, "active", version), 422)
    rules = [e["rule"] for e in body["errors"]]  # type: ignore[union-attr]
    assert rules == ["action_accepted", "action_accepted"]

    # The kommun takes the housing action over itself; SiS accepts its own.
    r = await drv.patch(pid, f"/actions/{housing}", {"responsible_organisation_id": kommun})
    assert r.status_code == 200, r.text
    assert {a["id"]: a["status"] for a in r.json()["actions"]}[housing] == "accepted"
    assert (await drv.post(pid, f"/actions/{sis_action}/accept", None, org="sis")).status_code == 200

    version = (await drv.get(pid)).json()["version"]
    r = await drv.transition(pid, "active", version)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert r.headers["etag"] == f'"{version + 1}"'

    # The client withdraws consent: the plan pauses and the others lose access.
    r = await drv.post(pid, f"/consents/{consent_id}/withdraw", {"reason": "Klienten återkallar"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "paused"
    assert_problem(await drv.get(pid, org="region-sthlm"), 404)
    assert_problem(await drv.get(pid, org="sis"), 404)
    assert_problem(await drv.post(pid, f"/actions/{medical}/accept", None, org="region-sthlm"), 404)
    # The initiating kommun still holds its own information.
    assert (await drv.get(pid)).json()["status"] == "paused"

    # Every change made a version; each is readable with who made it.
    versions = (await drv.client.get(f"/api/v1/plans/{pid}/versions", headers=drv.h("sthlm-stad"))).json()
    numbers = [v["version"] for v in versions]
    assert numbers == list(range(1, len(numbers) + 1))
    assert versions[0]["change"] == "plan.create"
    assert versions[-1]["change"] == "plan.consent.withdraw"
    changed_by_region = [v for v in versions if v["changed_by_organisation_id"] == region]
    assert {v["change"] for v in changed_by_region} == {"plan.action.accept", "plan.action.dispute"}
    first = (await drv.client.get(f"/api/v1/plans/{pid}/versions/1", headers=drv.h("sthlm-stad"))).json()
    assert first["snapshot"]["status"] == "draft" and first["snapshot"]["actions"] == []


async def test_plan_is_invisible_to_organisations_outside_it(drv: PlanDriver) -> None:
    plan = await drv.ready_plan()
    pid = plan["id"]
    # A kommun in the same county and one in another county see nothing, not even that it exists.
    for org in ("huddinge", "uppsala", "region-uppsala"):
        assert_problem(await drv.get(pid, org=org), 404)
        assert_problem(await drv.post(pid, "/needs", {"description": "x"}, org=org), 404)
        listed = await drv.client.get("/api/v1/plans", headers=drv.h(org))
        assert pid not in [p["id"] for p in listed.json()["items"]]


@pytest.mark.parametrize("role", ["rss", "org_admin", "auditor"])
async def test_roles_that_never_read_plan_content(drv: PlanDriver, role: str) -> None:
    plan = await drv.ready_plan()
    extra = {"county": "01"} if role == "rss" else {}
    headers = drv.auth("sthlm-stad", role, **extra)
    r = await drv.client.get(f"/api/v1/plans/{plan['id']}", headers=headers)
    assert_problem(r, 404)
    listed = await drv.client.get("/api/v1/plans", headers=headers)
    assert listed.json()["items"] == []


async def test_lasare_reads_but_never_writes(drv: PlanDriver) -> None:
    plan = await drv.ready_plan()
    pid = plan["id"]
    assert (await drv.get(pid, role="lasare")).status_code == 200
    assert_problem(await drv.post(pid, "/needs", {"description": "Behov"}, role="lasare"), 403)
    r = await drv.patch(pid, "", {"title": "Ny titel"}, role="lasare", **{"If-Match": f'"{plan["version"]}"'})
    assert_problem(r, 403)
    assert (await drv.get(pid)).json()["version"] == plan["version"]
