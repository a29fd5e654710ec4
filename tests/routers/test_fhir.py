"""GET /api/v1/plans/{id}/fhir: the plan as a FHIR Bundle, validated with the `fhir.resources` models.

Which FHIR models: `fhir.resources` has FHIR R4 (4.0.1) models only in its releases up to 6.1, which
need pydantic 1; Samplan runs on pydantic 2. So the bundle is validated with the R4B (4.3.0) models
of fhir.resources 8 (`fhir.resources.R4B`). R4B is a technical correction of R4: Bundle, CarePlan,
CareTeam, Goal, Consent, Patient, Organization and RelatedPerson have the same elements, cardinalities
and required value sets in both. Beyond what the models check, the tests check that every fullUrl is
`urn:uuid:<id>`, that every reference resolves inside the bundle to a resource of the referenced type,
and the mappings themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.models.audit import AuditEvent
from app.models.client import MASKED_NAME
from app.models.organisation import Unit
from app.services import fhir
from tests.conftest import assert_problem
from tests.plan_helpers import PlanDriver, new_personal_number

PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER = "http://electronichealth.se/identifier/samordningsnummer"
ORGNR = "urn:oid:2.5.4.97"
HSA = "urn:oid:1.2.752.29.4.19"
TODAY = datetime.now(UTC).date()


@pytest.fixture
def drv(client: httpx.AsyncClient, auth, orgs) -> PlanDriver:
    return PlanDriver(client, auth, orgs)


# ---- helpers -------------------------------------------------------------------------------


def _refs(node: Any) -> Iterator[dict[str, Any]]:
    """Every Reference (a dict with a `reference`) anywhere in a resource."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _codes(words: str) -> set[str]:
    return set(words.split())


# Codes bound to required R4 value sets, which the models do not check (they take any code).
REQUIRED_CODES: dict[tuple[str, str], set[str]] = {
    ("Bundle", "type"): _codes(
        "document message transaction transaction-response batch batch-response history searchset collection"
    ),
    ("CarePlan", "status"): _codes("draft active on-hold revoked completed entered-in-error unknown"),
    ("CarePlan", "intent"): _codes("proposal plan order option"),
    ("CareTeam", "status"): _codes("proposed active suspended inactive entered-in-error"),
    ("Goal", "lifecycleStatus"): _codes(
        "proposed planned accepted active on-hold completed cancelled entered-in-error rejected"
    ),
    ("Consent", "status"): _codes("draft proposed active rejected inactive entered-in-error"),
    ("Patient", "gender"): _codes("male female other unknown"),
}
ACTIVITY_STATUSES = _codes(
    "not-started scheduled in-progress on-hold completed cancelled stopped unknown entered-in-error"
)


def _check_required_codes(resource: dict[str, Any]) -> None:
    kind = resource["resourceType"]
    for (resource_type, element), codes in REQUIRED_CODES.items():
        if resource_type == kind and element in resource:
            assert resource[element] in codes, (kind, element, resource[element])
    for activity in resource.get("activity", []) if kind == "CarePlan" else []:
        assert activity["detail"]["status"] in ACTIVITY_STATUSES, activity
    if kind == "Consent":
        assert resource["provision"]["type"] in {"deny", "permit"}


def validate(body: dict[str, Any]) -> dict[str, Any]:
    """Validate the whole bundle and each resource with the FHIR models; check fullUrls and that
    every reference resolves inside the bundle to a resource of the referenced type."""
    Bundle.model_validate(body)
    assert body["resourceType"] == "Bundle" and body["type"] == "collection"
    _check_required_codes(body)
    by_url: dict[str, dict[str, Any]] = {}
    for entry in body["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        _check_required_codes(resource)
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
        uuid.UUID(resource["id"])
        assert entry["fullUrl"] not in by_url, f"duplicate fullUrl {entry['fullUrl']}"
        by_url[entry["fullUrl"]] = resource
    for resource in by_url.values():
        for ref in _refs(resource):
            target = by_url.get(ref["reference"])
            assert target is not None, f"unresolved reference {ref} in {resource['resourceType']}"
            assert ref.get("type", target["resourceType"]) == target["resourceType"], ref
    return body


async def get_bundle(
    drv: PlanDriver, pid: str, org: str = "sthlm-stad", role: str = "handlaggare"
) -> dict[str, Any]:
    r = await drv.client.get(f"/api/v1/plans/{pid}/fhir", headers=drv.h(org, role))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json"), r.headers
    return validate(r.json())


def of_type(body: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in body["entry"] if e["resource"]["resourceType"] == resource_type]


def one(body: dict[str, Any], resource_type: str) -> dict[str, Any]:
    (resource,) = of_type(body, resource_type)
    return resource


def by_id(body: dict[str, Any], resource_id: str) -> dict[str, Any]:
    return next(e["resource"] for e in body["entry"] if e["resource"]["id"] == resource_id)


def ref_id(ref: dict[str, Any]) -> str:
    assert ref["reference"].startswith("urn:uuid:")
    return str(ref["reference"].removeprefix("urn:uuid:"))


def oid(drv: PlanDriver, key: str) -> str:
    return str(drv.orgs[key].id)


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def created_id(r: httpx.Response) -> str:
    assert r.status_code == 201, r.text
    return str(r.headers["location"].rsplit("/", 1)[-1])


async def hsa_unit(session: AsyncSession, drv: PlanDriver, org_key: str) -> tuple[str, str]:
    row = (
        (
            await session.execute(
                select(Unit)
                .where(Unit.organisation_id == drv.orgs[org_key].id, col(Unit.hsa_id).is_not(None))
                .order_by(col(Unit.name))
            )
        )
        .scalars()
        .first()
    )
    await session.commit()
    assert row is not None
    return str(row.id), str(row.hsa_id)


async def audit_events(session: AsyncSession, action: str) -> list[AuditEvent]:
    await session.commit()
    rows = await session.execute(select(AuditEvent).where(col(AuditEvent.action) == action))
    events = list(rows.scalars())
    await session.commit()
    return events


async def full_plan(drv: PlanDriver, session: AsyncSession) -> dict[str, Any]:
    """A draft with kommun, region (through a unit), SiS (through a unit), the client, a närstående,
    a need, goals, actions with phases and dates, and a consent with an end date."""
    kommun, region = oid(drv, "sthlm-stad"), oid(drv, "region-sthlm")
    plan = await drv.create_plan(overall_responsible_organisation_id=kommun)
    pid = plan["id"]
    region_unit, region_hsa = await hsa_unit(session, drv, "region-sthlm")
    sis_unit, sis_hsa = await hsa_unit(session, drv, "sis")
    for body in (
        {"organisation_id": region, "kind": "huvudman", "unit_id": region_unit},
        {"organisation_id": oid(drv, "sis"), "kind": "other", "unit_id": sis_unit},
        {"kind": "client"},
        {"kind": "narstaende", "name": "Eva Andersson", "relation": "mor"},
    ):
        created_id(await drv.post(pid, "/participants", body))
    given_at = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    valid_until = TODAY + timedelta(days=365)
    consent = await drv.add_consent(
        pid,
        ["sthlm-stad", "region-sthlm", "sis"],
        given_at=given_at.isoformat(),
        valid_until=str(valid_until),
    )
    need = created_id(await drv.post(pid, "/needs", {"description": "Boende efter utskrivning"}))
    goal = created_id(
        await drv.post(
            pid,
            "/goals",
            {"description": "Eget boende inom sex månader", "need_id": need, "target_date": "2027-05-01"},
        )
    )
    goal2 = created_id(await drv.post(pid, "/goals", {"description": "Drogfrihet"}))
    _, own = await drv.add_action(
        pid,
        "sthlm-stad",
        description="Boendestöd",
        phase="eftervard",
        goal_id=goal,
        start_date="2026-12-01",
        end_date="2027-06-01",
    )
    _, medical = await drv.add_action(pid, "region-sthlm", description="Läkemedelsassisterad behandling")
    _, sis_action = await drv.add_action(pid, "sis", description="Utslussning", phase="lvm_vard")
    return {
        "pid": pid,
        "client_id": plan["client_id"],
        "consent": consent["consents"][0]["id"],
        "given_at": given_at,
        "valid_until": valid_until,
        "goal": goal,
        "goal2": goal2,
        "own": own,
        "medical": medical,
        "sis_action": sis_action,
        "region_unit": region_unit,
        "region_hsa": region_hsa,
        "sis_unit": sis_unit,
        "sis_hsa": sis_hsa,
    }


# ---- the whole bundle ----------------------------------------------------------------------


async def test_the_bundle_of_a_full_plan_validates_and_maps_every_part(
    drv: PlanDriver, session: AsyncSession
) -> None:
    made = await full_plan(drv, session)
    pid = made["pid"]
    plan = (await drv.get(pid)).json()
    body = await get_bundle(drv, pid)
    kommun, region, sis = (oid(drv, k) for k in ("sthlm-stad", "region-sthlm", "sis"))
    patient_id = plan["client_id"]

    # CarePlan
    cp = one(body, "CarePlan")
    assert cp["id"] == pid
    assert (cp["status"], cp["intent"], cp["title"]) == ("draft", "plan", plan["title"])
    assert cp["meta"]["versionId"] == str(plan["version"])
    assert ref_id(cp["subject"]) == patient_id and cp["subject"]["type"] == "Patient"
    assert when(cp["period"]["start"]) == when(plan["created_at"]) and "end" not in cp["period"]
    assert ref_id(cp["author"]) == kommun  # the overall responsibility
    assert [ref_id(c) for c in cp["contributor"]] == [kommun, region, sis]
    (team_ref,) = cp["careTeam"]
    assert by_id(body, ref_id(team_ref))["resourceType"] == "CareTeam"
    assert [ref_id(g) for g in cp["goal"]] == [made["goal"], made["goal2"]]
    assert {"text": "Rättslig grund: SoL 2 kap. 7 §; HSL 16 kap. 4 §"} in cp["note"]
    assert {"text": "Behov: Boende efter utskrivning"} in cp["note"]
    assert cp["extension"] == [{"url": fhir.FOLLOW_UP_EXTENSION, "valueDate": plan["follow_up_date"]}]

    # One activity per action, in the plan's order, with performer, status, phase and dates.
    details = [a["detail"] for a in cp["activity"]]
    assert [d["description"] for d in details] == [a["description"] for a in plan["actions"]]
    assert [ref_id(d["performer"][0]) for d in details] == [kommun, region, sis]
    assert all(len(d["performer"]) == 1 and d["performer"][0]["type"] == "Organization" for d in details)
    assert [d["status"] for d in details] == ["scheduled", "not-started", "not-started"]
    assert details[0]["code"]["coding"][0] == {
        "system": fhir.PHASE_SYSTEM,
        "code": "eftervard",
        "display": "Eftervård",
    }
    assert details[2]["code"]["coding"][0]["code"] == "lvm_vard"
    assert "code" not in details[1]
    assert details[0]["scheduledPeriod"] == {"start": "2026-12-01", "end": "2027-06-01"}
    assert "scheduledPeriod" not in details[1]
    assert [ref_id(g) for g in details[0]["goal"]] == [made["goal"]]
    assert "kind" not in details[0]

    # Patient: the kommun registered the client, so it sees the personnummer and the name.
    pat = one(body, "Patient")
    assert pat["id"] == patient_id
    client = (await drv.client.get(f"/api/v1/clients/{patient_id}", headers=drv.h("sthlm-stad"))).json()
    assert pat["identifier"] == [
        {"use": "official", "system": PERSONNUMMER, "value": client["personal_number"]}
    ]
    assert pat["name"][0]["family"] == "Andersson" and pat["name"][0]["given"] == ["Kim"]
    assert pat["gender"] == "female" and pat["birthDate"] == str(client["birth_year"])
    assert "meta" not in pat

    # Organizations: each referenced organisation with its organisationsnummer; units with HSA-ids.
    orgs = {o["id"]: o for o in of_type(body, "Organization")}
    assert set(orgs) == {kommun, region, sis, made["region_unit"], made["sis_unit"]}
    for key in ("sthlm-stad", "region-sthlm", "sis"):
        o = orgs[oid(drv, key)]
        assert o["identifier"] == [{"use": "official", "system": ORGNR, "value": drv.orgs[key].org_number}]
        assert len(o["identifier"][0]["value"]) == 10 and o["identifier"][0]["value"].isdigit()
        assert o["name"] == drv.orgs[key].name
    for unit, hsa, parent in (
        (made["region_unit"], made["region_hsa"], region),
        (made["sis_unit"], made["sis_hsa"], sis),
    ):
        assert orgs[unit]["identifier"] == [{"use": "official", "system": HSA, "value": hsa}]
        assert ref_id(orgs[unit]["partOf"]) == parent

    # CareTeam: organisations (through their units where named), the client and the närstående.
    team = one(body, "CareTeam")
    assert team["status"] == "proposed" and ref_id(team["subject"]) == patient_id
    assert [ref_id(m) for m in team["managingOrganization"]] == [kommun]
    members = [(ref_id(p["member"]), p["member"]["type"], p["role"][0]["text"]) for p in team["participant"]]
    relative = next(p for p in plan["participants"] if p["kind"] == "narstaende")
    assert members == [
        (kommun, "Organization", "Huvudman"),
        (made["region_unit"], "Organization", "Huvudman"),
        (made["sis_unit"], "Organization", "Annan aktör"),
        (patient_id, "Patient", "Klient"),
        (relative["id"], "RelatedPerson", "Närstående (mor)"),
    ]
    for member, participant in zip(team["participant"], plan["participants"], strict=True):
        assert when(member["period"]["start"]) == when(participant["added_at"])
    rp = one(body, "RelatedPerson")
    assert rp["name"] == [{"text": "Eva Andersson"}] and rp["relationship"] == [{"text": "mor"}]
    assert ref_id(rp["patient"]) == patient_id

    # Goals
    goals = {g["id"]: g for g in of_type(body, "Goal")}
    assert goals[made["goal"]]["description"] == {"text": "Eget boende inom sex månader"}
    assert goals[made["goal"]]["target"] == [{"dueDate": "2027-05-01"}]
    assert "target" not in goals[made["goal2"]]
    assert all(
        g["lifecycleStatus"] == "proposed" and ref_id(g["subject"]) == patient_id for g in goals.values()
    )

    # Consent
    consent = one(body, "Consent")
    assert consent["id"] == made["consent"] and consent["status"] == "active"
    assert consent["scope"]["coding"][0]["code"] == "patient-privacy"
    assert consent["scope"]["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/consentscope"
    assert [c["text"] for c in consent["category"]] == ["SIP samtycke"]
    assert ref_id(consent["patient"]) == patient_id
    assert when(consent["dateTime"]) == made["given_at"]
    assert [ref_id(o) for o in consent["organization"]] == [kommun]
    provision = consent["provision"]
    assert provision["type"] == "permit"
    assert sorted(ref_id(a["reference"]) for a in provision["actor"]) == sorted([kommun, region, sis])
    assert all(a["role"]["coding"][0]["code"] == "IRCP" for a in provision["actor"])
    assert provision["period"]["end"] == str(made["valid_until"])


async def test_full_urls_are_stable_from_one_read_to_the_next(drv: PlanDriver, session: AsyncSession) -> None:
    made = await full_plan(drv, session)
    first = await get_bundle(drv, made["pid"])
    second = await get_bundle(drv, made["pid"])
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in second["entry"]]
    assert first["entry"] == second["entry"]


# ---- statuses ------------------------------------------------------------------------------


async def test_care_plan_status_and_period_follow_the_plan_through_its_life(drv: PlanDriver) -> None:
    plan = await drv.ready_plan()
    pid = plan["id"]

    async def status_and_period() -> tuple[str, dict[str, str], str, str]:
        body = await get_bundle(drv, pid)
        cp, team = one(body, "CarePlan"), one(body, "CareTeam")
        return cp["status"], cp["period"], team["status"], of_type(body, "Goal")[0]["lifecycleStatus"]

    created_goal = await drv.post(pid, "/goals", {"description": "Stabilt boende"})
    assert created_goal.status_code == 201, created_goal.text
    status, period, team, goal = await status_and_period()
    assert (status, team, goal) == ("draft", "proposed", "proposed")
    assert when(period["start"]) == when(plan["created_at"]) and "end" not in period

    version = created_goal.json()["version"]
    expected = [
        ("active", "active", "active", "active"),
        ("paused", "on-hold", "suspended", "on-hold"),
        ("active", "active", "active", "active"),
        ("closed", "completed", "inactive", "completed"),
    ]
    for target, care_plan_status, team_status, goal_status in expected:
        r = await drv.transition(pid, target, version)
        assert r.status_code == 200, r.text
        now, version = r.json(), r.json()["version"]
        status, period, team, goal = await status_and_period()
        assert (status, team, goal) == (care_plan_status, team_status, goal_status), target
        assert when(period["start"]) == when(now["activated_at"])
        if target == "closed":
            assert when(period["end"]) == when(now["closed_at"])
        else:
            assert "end" not in period


async def test_a_cancelled_plan_is_revoked(drv: PlanDriver) -> None:
    plan = await drv.create_plan()
    r = await drv.transition(plan["id"], "cancelled", plan["version"])
    assert r.status_code == 200, r.text
    body = await get_bundle(drv, plan["id"])
    cp = one(body, "CarePlan")
    assert cp["status"] == "revoked"
    assert when(cp["period"]["start"]) == when(plan["created_at"])
    assert when(cp["period"]["end"]) == when(r.json()["cancelled_at"])
    assert one(body, "CareTeam")["status"] == "inactive"


async def test_every_action_status_maps_to_an_activity_status(drv: PlanDriver) -> None:
    plan = await drv.ready_plan()  # Boendestöd (kommun, accepted), Läkemedelsassisterad (region, accepted)
    pid = plan["id"]
    started = next(a["id"] for a in plan["actions"] if a["description"] == "Läkemedelsassisterad behandling")
    r = await drv.patch(pid, f"/actions/{started}", {"status": "started"}, org="region-sthlm")
    assert r.status_code == 200, r.text
    _, completed = await drv.add_action(pid, "region-sthlm", description="Abstinensbehandling")
    r = await drv.post(pid, f"/actions/{completed}/accept", None, org="region-sthlm")
    assert r.status_code == 200, r.text
    for status in ("started", "completed"):
        r = await drv.patch(pid, f"/actions/{completed}", {"status": status}, org="region-sthlm")
        assert r.status_code == 200, r.text
    _, disputed = await drv.add_action(pid, "region-sthlm", description="Bostad med särskild service")
    r = await drv.post(
        pid,
        f"/actions/{disputed}/dispute",
        {"reason": "Boende är socialtjänstens ansvar"},
        org="region-sthlm",
    )
    assert r.status_code == 200, r.text
    await drv.add_action(pid, "region-sthlm", description="Psykiatrisk bedömning")  # stays proposed
    _, cancelled = await drv.add_action(pid, "region-sthlm", description="Tandvård")
    r = await drv.patch(pid, f"/actions/{cancelled}", {"status": "cancelled"})
    assert r.status_code == 200, r.text
    plan = (await drv.get(pid)).json()
    assert {a["status"] for a in plan["actions"]} == {
        "proposed",
        "accepted",
        "disputed",
        "started",
        "completed",
        "cancelled",
    }

    cp = one(await get_bundle(drv, pid), "CarePlan")
    expected = {
        "proposed": "not-started",
        "accepted": "scheduled",
        "disputed": "on-hold",
        "started": "in-progress",
        "completed": "completed",
        "cancelled": "cancelled",
    }
    assert len(cp["activity"]) == len(plan["actions"])
    for action, activity in zip(plan["actions"], cp["activity"], strict=True):
        detail = activity["detail"]
        assert detail["description"] == action["description"]
        assert detail["status"] == expected[action["status"]], action["description"]
        assert ref_id(detail["performer"][0]) == action["responsible_organisation_id"]
    disputed_detail = next(a["detail"] for a in cp["activity"] if a["detail"]["status"] == "on-hold")
    assert disputed_detail["statusReason"] == {"text": "Boende är socialtjänstens ansvar"}


# ---- the client as the caller may see them -------------------------------------------------


async def test_an_organisation_that_does_not_know_the_client_gets_no_personal_number(
    drv: PlanDriver,
) -> None:
    plan = await drv.ready_plan()
    pid = plan["id"]
    kommun_view = one(await get_bundle(drv, pid), "Patient")
    region_view = one(await get_bundle(drv, pid, org="region-sthlm"), "Patient")
    assert [i["system"] for i in kommun_view["identifier"]] == [PERSONNUMMER]
    assert "identifier" not in region_view
    # Not a protected identity: the name is shown to both.
    assert region_view["name"] == kommun_view["name"]
    assert region_view["name"][0]["family"] == "Andersson"


async def test_a_protected_identity_is_masked_for_an_organisation_that_does_not_know_the_client(
    drv: PlanDriver,
) -> None:
    cid = (await drv.register_client(protected_identity=True))["id"]
    plan = await drv.create_plan(client_id=cid)
    pid = plan["id"]
    await drv.add_participant(pid, "region-sthlm")
    r = await drv.post(
        pid, "/participants", {"kind": "narstaende", "name": "Eva Andersson", "relation": "mor"}
    )
    assert r.status_code == 201, r.text
    await drv.add_consent(pid, ["sthlm-stad", "region-sthlm"])

    region = await get_bundle(drv, pid, org="region-sthlm")
    pat = one(region, "Patient")
    assert pat["name"] == [{"text": MASKED_NAME}]
    assert "identifier" not in pat
    assert pat["meta"]["security"][0]["code"] == "R"
    assert one(region, "RelatedPerson")["name"] == [{"text": MASKED_NAME}]  # the relative would point to her
    assert "Andersson" not in str(region)

    kommun = await get_bundle(drv, pid)
    pat = one(kommun, "Patient")
    assert pat["name"][0]["family"] == "Andersson" and pat["meta"]["security"][0]["code"] == "R"
    assert [i["system"] for i in pat["identifier"]] == [PERSONNUMMER]
    assert one(kommun, "RelatedPerson")["name"] == [{"text": "Eva Andersson"}]


async def test_a_samordningsnummer_has_its_own_system(drv: PlanDriver) -> None:
    number = new_personal_number(date(1990, 7, 1), coordination=True)
    cid = (await drv.register_client(personal_number=number))["id"]
    plan = await drv.create_plan(client_id=cid)
    pat = one(await get_bundle(drv, plan["id"]), "Patient")
    assert pat["identifier"] == [{"use": "official", "system": SAMORDNINGSNUMMER, "value": number}]
    assert pat["birthDate"] == "1990"


# ---- consents ------------------------------------------------------------------------------


async def test_a_withdrawn_consent_is_inactive_and_keeps_its_actors(drv: PlanDriver) -> None:
    plan = await drv.ready_plan()
    pid = plan["id"]
    consent_id = plan["consents"][0]["id"]
    body = one(await get_bundle(drv, pid), "Consent")
    assert body["status"] == "active" and "end" not in body["provision"]["period"]
    r = await drv.post(pid, f"/consents/{consent_id}/withdraw", {"reason": "Klienten återkallar"})
    assert r.status_code == 200, r.text
    bundle = await get_bundle(drv, pid)
    consent = one(bundle, "Consent")
    assert consent["status"] == "inactive"
    assert sorted(ref_id(a["reference"]) for a in consent["provision"]["actor"]) == sorted(
        [oid(drv, "sthlm-stad"), oid(drv, "region-sthlm")]
    )
    assert one(bundle, "CarePlan")["status"] == "draft"  # a draft stays a draft; the consent is what changed
    # The region is no longer covered: the export is out of its reach, as the plan is.
    assert_problem(await drv.client.get(f"/api/v1/plans/{pid}/fhir", headers=drv.h("region-sthlm")), 404)


# ---- reach ---------------------------------------------------------------------------------


async def test_organisations_outside_the_plan_get_404(drv: PlanDriver) -> None:
    plan = await drv.ready_plan()
    pid = plan["id"]
    await drv.add_participant(pid, "sis", kind="other")  # takes part, but no consent covers it
    for org in ("huddinge", "uppsala", "region-uppsala", "sis"):
        r = await drv.client.get(f"/api/v1/plans/{pid}/fhir", headers=drv.h(org))
        problem = assert_problem(r, 404)
        assert pid not in str(problem["detail"])
    r = await drv.client.get(f"/api/v1/plans/{uuid.uuid4()}/fhir", headers=drv.h("sthlm-stad"))
    assert_problem(r, 404)


@pytest.mark.parametrize("role", ["rss", "org_admin", "auditor"])
async def test_roles_that_never_read_plans_get_404(drv: PlanDriver, auth, role: str) -> None:
    plan = await drv.ready_plan()
    headers = auth("sthlm-stad", role, county="01") if role == "rss" else auth("sthlm-stad", role)
    r = await drv.client.get(f"/api/v1/plans/{plan['id']}/fhir", headers=headers)
    assert_problem(r, 404)


async def test_readers_get_the_bundle_and_a_samordnare_only_for_assigned_clients(
    drv: PlanDriver, auth
) -> None:
    plan = await drv.ready_plan()
    pid = plan["id"]
    for role in ("lasare", "system"):
        assert one(await get_bundle(drv, pid, role=role), "CarePlan")["id"] == pid
    anna = auth("sthlm-stad", "samordnare", subject="samordnare-anna-fhir")
    assert_problem(await drv.client.get(f"/api/v1/plans/{pid}/fhir", headers=anna), 404)
    me = await drv.client.get("/api/v1/me", headers=anna)
    assert me.status_code == 200, me.text
    r = await drv.client.post(
        f"/api/v1/clients/{plan['client_id']}/coordinators",
        json={
            "user_id": me.json()["user_id"],
            "organisation_id": oid(drv, "sthlm-stad"),
            "start_date": str(TODAY),
        },
        headers=drv.h("sthlm-stad"),
    )
    assert r.status_code == 201, r.text
    r = await drv.client.get(f"/api/v1/plans/{pid}/fhir", headers=anna)
    assert r.status_code == 200, r.text
    validate(r.json())


# ---- audit ---------------------------------------------------------------------------------


async def test_every_export_is_audited_with_the_client(drv: PlanDriver, session: AsyncSession) -> None:
    plan = await drv.ready_plan()
    pid = plan["id"]
    before = len(await audit_events(session, "plan.fhir.read"))
    await get_bundle(drv, pid, org="region-sthlm")
    # Refused reads leave no export event.
    assert_problem(await drv.client.get(f"/api/v1/plans/{pid}/fhir", headers=drv.h("huddinge")), 404)
    assert_problem(
        await drv.client.get(f"/api/v1/plans/{pid}/fhir", headers=drv.auth("sthlm-stad", "auditor")), 404
    )
    events = await audit_events(session, "plan.fhir.read")
    assert len(events) == before + 1
    (event,) = [e for e in events if e.object_id == pid]
    assert event.object_type == "plan"
    assert event.client_id == uuid.UUID(plan["client_id"])
    assert event.organisation_id == drv.orgs["region-sthlm"].id
    assert event.actor_roles == "handlaggare"
