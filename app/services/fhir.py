"""A plan as a FHIR R4 Bundle (type `collection`): CarePlan, Patient, CareTeam, Goal, Consent,
Organization and RelatedPerson resources.

`bundle` and the helpers before it are pure: they map an already loaded and access-checked plan
(`PlanPublic`), the client as the caller may see them (`ClientPublic`, masked by the same rule as
GET /clients/{id}) and the organisations and units the plan refers to. `read` loads those under the
caller's access rules and records the audit event.

Every resource's id is the Samplan id of what it describes (the CareTeam, which has no row of its
own, gets a UUID derived from the plan's), and every entry's fullUrl is `urn:uuid:<id>`, so
references inside the bundle resolve and stay the same from one export to the next.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal
from app.db import system_scope
from app.models.client import MASKED_NAME, ClientPublic, Gender
from app.models.organisation import Organisation, OrganisationKind, Unit
from app.models.phase import Phase
from app.models.plan import (
    ActionPublic,
    ActionStatus,
    ConsentPublic,
    GoalPublic,
    ParticipantKind,
    ParticipantPublic,
    PlanPublic,
    PlanStatus,
)
from app.models.types import utcnow
from app.services import access, audit, clients, identifiers, plans

MEDIA_TYPE = "application/fhir+json"

PERSONNUMMER_SYSTEM = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER_SYSTEM = "http://electronichealth.se/identifier/samordningsnummer"
ORGANISATIONSNUMMER_SYSTEM = "urn:oid:2.5.4.97"
HSA_ID_SYSTEM = "urn:oid:1.2.752.29.4.19"
CONSENT_SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
PARTICIPATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
LOINC_SYSTEM = "http://loinc.org"
PLAN_IDENTIFIER_SYSTEM = "urn:ietf:rfc:3986"
SAMPLAN_FHIR_BASE = "https://samplan.se/fhir"
PHASE_SYSTEM = f"{SAMPLAN_FHIR_BASE}/CodeSystem/care-chain-phase"
FOLLOW_UP_EXTENSION = f"{SAMPLAN_FHIR_BASE}/StructureDefinition/follow-up-date"

CONSENT_CATEGORY_TEXT = "SIP samtycke"
_CARE_TEAM_NAMESPACE = uuid.UUID("6f0d6a8e-4f3c-5d1e-9b7a-2c8e1f0a9d34")

CAREPLAN_STATUS: Mapping[PlanStatus, str] = {
    PlanStatus.draft: "draft",
    PlanStatus.active: "active",
    PlanStatus.paused: "on-hold",
    PlanStatus.closed: "completed",
    PlanStatus.cancelled: "revoked",
}
CARETEAM_STATUS: Mapping[PlanStatus, str] = {
    PlanStatus.draft: "proposed",
    PlanStatus.active: "active",
    PlanStatus.paused: "suspended",
    PlanStatus.closed: "inactive",
    PlanStatus.cancelled: "inactive",
}
GOAL_LIFECYCLE_STATUS: Mapping[PlanStatus, str] = {
    PlanStatus.draft: "proposed",
    PlanStatus.active: "active",
    PlanStatus.paused: "on-hold",
    PlanStatus.closed: "completed",
    PlanStatus.cancelled: "cancelled",
}
ACTIVITY_STATUS: Mapping[ActionStatus, str] = {
    ActionStatus.proposed: "not-started",
    ActionStatus.accepted: "scheduled",
    ActionStatus.disputed: "on-hold",
    ActionStatus.started: "in-progress",
    ActionStatus.completed: "completed",
    ActionStatus.cancelled: "cancelled",
}
ADMINISTRATIVE_GENDER: Mapping[Gender, str] = {
    Gender.kvinna: "female",
    Gender.man: "male",
    Gender.annat: "other",
    Gender.okant: "unknown",
}
PARTICIPANT_ROLE_TEXT: Mapping[ParticipantKind, str] = {
    ParticipantKind.huvudman: "Huvudman",
    ParticipantKind.other: "Annan aktör",
    ParticipantKind.client: "Klient",
    ParticipantKind.narstaende: "Närstående",
}
ORGANISATION_KIND_TEXT: Mapping[OrganisationKind, str] = {
    OrganisationKind.kommun: "Kommun",
    OrganisationKind.region: "Region",
    OrganisationKind.state: "Statlig myndighet",
    OrganisationKind.other: "Annan aktör",
}
PHASE_TEXT: Mapping[Phase, str] = {
    Phase.lvm_anmalan: "LVM-anmälan",
    Phase.lvm_utredning: "LVM-utredning",
    Phase.omedelbart_omhandertagande: "Omedelbart omhändertagande",
    Phase.lvm_ansokan: "Ansökan om LVM-vård",
    Phase.lvm_vard: "LVM-vård",
    Phase.vard_i_annan_form: "Vård i annan form",
    Phase.utskrivning: "Utskrivning",
    Phase.eftervard: "Eftervård",
    Phase.avslutad: "Avslutad",
}

Json = dict[str, Any]


# ---- small builders ------------------------------------------------------------------------


def full_url(resource_id: uuid.UUID) -> str:
    return f"urn:uuid:{resource_id}"


def care_team_id(plan_id: uuid.UUID) -> uuid.UUID:
    """The CareTeam has no row of its own: a name-based UUID keeps its id stable per plan."""
    return uuid.uuid5(_CARE_TEAM_NAMESPACE, str(plan_id))


def _ref(resource_type: str, resource_id: uuid.UUID, display: str | None = None) -> Json:
    ref: Json = {"reference": full_url(resource_id), "type": resource_type}
    if display:
        ref["display"] = display
    return ref


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _date(value: date) -> str:
    return value.isoformat()


def _period(start: str | None, end: str | None) -> Json | None:
    period = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    return period or None


def _org_ref(organisation_id: uuid.UUID, organisations: Mapping[uuid.UUID, Organisation]) -> Json:
    org = organisations.get(organisation_id)
    return _ref("Organization", organisation_id, org.name if org else None)


def _dedupe(ids: Iterable[uuid.UUID | None]) -> list[uuid.UUID]:
    seen: dict[uuid.UUID, None] = {}
    for i in ids:
        if i is not None:
            seen.setdefault(i, None)
    return list(seen)


def referenced_organisation_ids(plan: PlanPublic) -> list[uuid.UUID]:
    """Every organisation the bundle refers to, in a stable order (first reference first)."""
    return _dedupe(
        [
            plan.overall_responsible_organisation_id,
            *(p.organisation_id for p in plan.participants),
            *(a.responsible_organisation_id for a in plan.actions),
            *(o for c in plan.consents for o in c.scope_organisation_ids),
            *(c.recorded_by_organisation_id for c in plan.consents),
        ]
    )


def referenced_unit_ids(plan: PlanPublic) -> list[uuid.UUID]:
    return _dedupe(p.unit_id for p in plan.participants if p.organisation_id is not None)


def _is_masked(client: ClientPublic) -> bool:
    # The same rule as clients.public: a protected identity is masked for organisations that do not
    # know the client.
    return client.protected_identity and not client.known_to_caller


# ---- resources -----------------------------------------------------------------------------


def patient(client: ClientPublic) -> Json:
    """The client. The personal number is given only when the caller's organisation knows the client
    (ClientPublic.personal_number is None otherwise), and the name is masked by the same rule as
    GET /clients/{id}. Only the birth year is given, as there."""
    resource: Json = {"resourceType": "Patient", "id": str(client.id)}
    if client.protected_identity:
        resource["meta"] = {
            "security": [{"system": CONFIDENTIALITY_SYSTEM, "code": "R", "display": "restricted"}]
        }
    if client.personal_number is not None:
        pnr = identifiers.parse_personal_number(client.personal_number)
        system = SAMORDNINGSNUMMER_SYSTEM if pnr.is_coordination_number else PERSONNUMMER_SYSTEM
        resource["identifier"] = [{"use": "official", "system": system, "value": pnr.value}]
    resource["active"] = True
    if _is_masked(client):
        resource["name"] = [{"text": MASKED_NAME}]
    else:
        resource["name"] = [
            {
                "use": "official",
                "text": f"{client.given_name} {client.family_name}",
                "family": client.family_name,
                "given": [client.given_name],
            }
        ]
    resource["gender"] = ADMINISTRATIVE_GENDER[client.gender]
    resource["birthDate"] = f"{client.birth_year:04d}"
    return resource


def organization(org: Organisation) -> Json:
    return {
        "resourceType": "Organization",
        "id": str(org.id),
        "identifier": [{"use": "official", "system": ORGANISATIONSNUMMER_SYSTEM, "value": org.org_number}],
        "active": True,
        "type": [{"text": ORGANISATION_KIND_TEXT[org.kind]}],
        "name": org.name,
    }


def unit_organization(unit: Unit, organisations: Mapping[uuid.UUID, Organisation]) -> Json:
    """A unit (enhet) is an Organization that is part of its organisation."""
    resource: Json = {"resourceType": "Organization", "id": str(unit.id)}
    if unit.hsa_id:
        resource["identifier"] = [{"use": "official", "system": HSA_ID_SYSTEM, "value": unit.hsa_id}]
    resource.update(
        {
            "active": True,
            "name": unit.name,
            "partOf": _org_ref(unit.organisation_id, organisations),
        }
    )
    return resource


def related_person(participant: ParticipantPublic, client: ClientPublic) -> Json:
    """A närstående. Under a masked protected identity the relative's name is masked too: it
    would point to the client."""
    name = MASKED_NAME if _is_masked(client) else (participant.name or MASKED_NAME)
    resource: Json = {
        "resourceType": "RelatedPerson",
        "id": str(participant.id),
        "active": True,
        "patient": _ref("Patient", client.id),
        "name": [{"text": name}],
    }
    if participant.relation:
        resource["relationship"] = [{"text": participant.relation}]
    return resource


def _care_team_participant(
    participant: ParticipantPublic,
    client: ClientPublic,
    organisations: Mapping[uuid.UUID, Organisation],
    units: Mapping[uuid.UUID, Unit],
) -> Json:
    role_text = PARTICIPANT_ROLE_TEXT[participant.kind]
    if participant.kind == ParticipantKind.client:
        member = _ref("Patient", client.id)
    elif participant.kind == ParticipantKind.narstaende:
        member = _ref("RelatedPerson", participant.id)
        if participant.relation:
            role_text = f"{role_text} ({participant.relation})"
    elif participant.unit_id is not None and participant.unit_id in units:
        # The organisation takes part through one of its units; the unit's Organization names its
        # organisation in `partOf`. (onBehalfOf is for practitioner members only, ctm-1.)
        member = _ref("Organization", participant.unit_id, units[participant.unit_id].name)
    elif participant.organisation_id is not None:  # huvudman and other always name one
        member = _org_ref(participant.organisation_id, organisations)
    else:
        member = {"display": role_text}
    return {
        "role": [{"text": role_text}],
        "member": member,
        "period": {"start": _instant(participant.added_at)},
    }


def care_team(
    plan: PlanPublic,
    client: ClientPublic,
    organisations: Mapping[uuid.UUID, Organisation],
    units: Mapping[uuid.UUID, Unit],
) -> Json:
    resource: Json = {
        "resourceType": "CareTeam",
        "id": str(care_team_id(plan.id)),
        "status": CARETEAM_STATUS[plan.status],
        "name": plan.title,
        "subject": _ref("Patient", client.id),
        "period": _period(_instant(plan.created_at), _plan_end(plan)),
        "participant": [_care_team_participant(p, client, organisations, units) for p in plan.participants],
    }
    if plan.overall_responsible_organisation_id is not None:
        resource["managingOrganization"] = [_org_ref(plan.overall_responsible_organisation_id, organisations)]
    return resource


def goal(g: GoalPublic, plan: PlanPublic, client: ClientPublic) -> Json:
    resource: Json = {
        "resourceType": "Goal",
        "id": str(g.id),
        "lifecycleStatus": GOAL_LIFECYCLE_STATUS[plan.status],
        "description": {"text": g.description},
        "subject": _ref("Patient", client.id),
    }
    if g.target_date is not None:
        resource["target"] = [{"dueDate": _date(g.target_date)}]
    return resource


def consent(
    c: ConsentPublic, plan: PlanPublic, client: ClientPublic, organisations: Mapping[uuid.UUID, Organisation]
) -> Json:
    provision: Json = {
        "type": "permit",
        "period": _period(
            _date(c.given_at.astimezone(UTC).date()), _date(c.valid_until) if c.valid_until else None
        ),
        "actor": [
            {
                "role": {
                    "coding": [
                        {
                            "system": PARTICIPATION_TYPE_SYSTEM,
                            "code": "IRCP",
                            "display": "information recipient",
                        }
                    ],
                    "text": "Får ta del av planen",
                },
                "reference": _org_ref(org_id, organisations),
            }
            for org_id in c.scope_organisation_ids
        ],
    }
    return {
        "resourceType": "Consent",
        "id": str(c.id),
        "status": "active" if c.active else "inactive",
        "scope": {
            "coding": [
                {"system": CONSENT_SCOPE_SYSTEM, "code": "patient-privacy", "display": "Privacy Consent"}
            ]
        },
        "category": [
            {
                "coding": [{"system": LOINC_SYSTEM, "code": "59284-0", "display": "Patient Consent"}],
                "text": CONSENT_CATEGORY_TEXT,
            }
        ],
        "patient": _ref("Patient", client.id),
        "dateTime": _instant(c.given_at),
        "performer": [_ref("Patient", client.id)],
        "organization": [_org_ref(c.recorded_by_organisation_id, organisations)],
        # ppc-1 asks for a policy or a policy rule: the plan's legal basis, which is data (DOMAIN.md).
        "policyRule": {"text": "; ".join(plan.legal_basis) or "Samordnad individuell plan (SIP)"},
        "provision": provision,
    }


def _activity(a: ActionPublic, organisations: Mapping[uuid.UUID, Organisation]) -> Json:
    detail: Json = {}
    if a.phase is not None:
        detail["code"] = {
            "coding": [{"system": PHASE_SYSTEM, "code": a.phase.value, "display": PHASE_TEXT[a.phase]}],
            "text": PHASE_TEXT[a.phase],
        }
    if a.status == ActionStatus.disputed and a.dispute_reason:
        detail["statusReason"] = {"text": a.dispute_reason}
    if a.goal_id is not None:
        detail["goal"] = [_ref("Goal", a.goal_id)]
    detail["status"] = ACTIVITY_STATUS[a.status]
    scheduled = _period(
        _date(a.start_date) if a.start_date else None, _date(a.end_date) if a.end_date else None
    )
    if scheduled is not None:
        detail["scheduledPeriod"] = scheduled
    detail["performer"] = [_org_ref(a.responsible_organisation_id, organisations)]
    detail["description"] = a.description
    return {"detail": detail}


def _plan_end(plan: PlanPublic) -> str | None:
    ended = plan.closed_at or plan.cancelled_at
    return _instant(ended) if ended else None


def care_plan(
    plan: PlanPublic, client: ClientPublic, organisations: Mapping[uuid.UUID, Organisation]
) -> Json:
    resource: Json = {
        "resourceType": "CarePlan",
        "id": str(plan.id),
        "meta": {"versionId": str(plan.version), "lastUpdated": _instant(plan.updated_at)},
    }
    if plan.follow_up_date is not None:
        resource["extension"] = [{"url": FOLLOW_UP_EXTENSION, "valueDate": _date(plan.follow_up_date)}]
    resource.update(
        {
            "identifier": [{"system": PLAN_IDENTIFIER_SYSTEM, "value": full_url(plan.id)}],
            "status": CAREPLAN_STATUS[plan.status],
            "intent": "plan",
            "category": [{"text": "Samordnad individuell plan (SIP)"}],
            "title": plan.title,
            "subject": _ref("Patient", client.id),
            "period": _period(_instant(plan.activated_at or plan.created_at), _plan_end(plan)),
            "created": _instant(plan.created_at),
        }
    )
    # R4's CarePlan has no custodian element. Its `author` is "the individual or organization with
    # primary responsibility for the plan" and takes one reference, so the organisation with the
    # overall responsibility (övergripande ansvar, the fourth legal point) goes there; every
    # participating organisation is a `contributor`.
    if plan.overall_responsible_organisation_id is not None:
        resource["author"] = _org_ref(plan.overall_responsible_organisation_id, organisations)
    contributors = _dedupe(
        p.organisation_id
        for p in plan.participants
        if p.kind in (ParticipantKind.huvudman, ParticipantKind.other)
    )
    if contributors:
        resource["contributor"] = [_org_ref(o, organisations) for o in contributors]
    resource["careTeam"] = [_ref("CareTeam", care_team_id(plan.id))]
    if plan.goals:
        resource["goal"] = [_ref("Goal", g.id) for g in plan.goals]
    if plan.actions:
        resource["activity"] = [_activity(a, organisations) for a in plan.actions]
    notes = []
    if plan.legal_basis:
        notes.append({"text": "Rättslig grund: " + "; ".join(plan.legal_basis)})
    notes.extend({"text": f"Behov: {n.description}"} for n in plan.needs)
    if notes:
        resource["note"] = notes
    return resource


def _entry(resource: Json) -> Json:
    return {"fullUrl": full_url(uuid.UUID(resource["id"])), "resource": resource}


def bundle(
    plan: PlanPublic,
    client: ClientPublic,
    organisations: Mapping[uuid.UUID, Organisation],
    units: Mapping[uuid.UUID, Unit],
    *,
    generated_at: datetime,
) -> Json:
    """The plan as a FHIR R4 Bundle of type `collection` (a JSON-ready dict).

    `client` must be the client as the caller may see them (clients.public); `organisations` and
    `units` must hold every id from referenced_organisation_ids and referenced_unit_ids."""
    resources: list[Json] = [
        care_plan(plan, client, organisations),
        patient(client),
        care_team(plan, client, organisations, units),
        *(goal(g, plan, client) for g in plan.goals),
        *(consent(c, plan, client, organisations) for c in plan.consents),
        *(organization(organisations[o]) for o in referenced_organisation_ids(plan) if o in organisations),
        *(unit_organization(units[u], organisations) for u in referenced_unit_ids(plan) if u in units),
        *(related_person(p, client) for p in plan.participants if p.kind == ParticipantKind.narstaende),
    ]
    return {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": _instant(plan.updated_at)},
        "type": "collection",
        "timestamp": _instant(generated_at),
        "entry": [_entry(r) for r in resources],
    }


# ---- loading -------------------------------------------------------------------------------


async def read(session: AsyncSession, p: Principal, plan_id: uuid.UUID) -> Json:
    """GET /plans/{id}/fhir: the same reach as GET /plans/{id} (404 outside it), audited."""
    vp = await access.load_plan(session, p, plan_id)
    audit.record(session, p, "plan.fhir.read", "plan", plan_id, client_id=vp.plan.client_id)
    plan = await plans.detail(session, vp)
    client = clients.public(await access.load_client(session, p, plan.client_id))
    org_ids = referenced_organisation_ids(plan)
    organisations: dict[uuid.UUID, Organisation] = {}
    if org_ids:
        rows = await session.execute(select(Organisation).where(col(Organisation.id).in_(org_ids)))
        organisations = {o.id: o for o in rows.scalars()}
    units: dict[uuid.UUID, Unit] = {}
    unit_ids = referenced_unit_ids(plan)
    if unit_ids:
        # Units are the named organisations' own rows (tenant RLS); their names and HSA-ids are
        # catalogue data that every participant of the plan may know.
        async with system_scope(session):
            rows_u = await session.execute(select(Unit).where(col(Unit.id).in_(unit_ids)))
            units = {u.id: u for u in rows_u.scalars()}
    return bundle(plan, client, organisations, units, generated_at=utcnow())
