"""The SIP: creation, co-authoring with versions, responsibility for actions, consent, life cycle.

Every change goes through `_commit_change`, which bumps the version (conditionally, when the caller
sent If-Match), stores a snapshot of the whole plan and records the audit event. Routers call one
function here per request.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic_core import to_jsonable_python
from sqlalchemy import BindParameter, bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth import policies
from app.auth.principal import Principal
from app.db import system_scope
from app.errors import Conflict, Forbidden, NotFound, PreconditionFailed, RuleViolation, UnprocessableEntity
from app.models.organisation import Organisation, Unit
from app.models.plan import (
    Action,
    ActionCreate,
    ActionDispute,
    ActionStatus,
    ActionUpdate,
    Consent,
    ConsentCreate,
    ConsentScope,
    ConsentWithdraw,
    Goal,
    GoalCreate,
    GoalUpdate,
    Need,
    NeedCreate,
    NeedUpdate,
    ParticipantCreate,
    ParticipantKind,
    Plan,
    PlanCreate,
    PlanParticipant,
    PlanPublic,
    PlanStatus,
    PlanUpdate,
    PlanVersion,
    TransitionRequest,
    TransitionTarget,
)
from app.models.types import utcnow
from app.services import access, audit, events, plan_rules
from app.services.access import VisiblePlan

_CONSENT_CLOCK_SKEW = timedelta(minutes=5)
_MAX_VERSION = 2**31 - 1  # plan_version.version is a 32-bit integer


def _field_error(field: str, message: str) -> UnprocessableEntity:
    return UnprocessableEntity(message, errors=[{"field": field, "message": message}])


def _require_open(plan: Plan) -> None:
    if plan.status not in plan_rules.OPEN_STATUSES:
        raise RuleViolation(
            f"the plan is {plan.status.value} and can no longer change",
            errors=[{"rule": "plan_open", "message": f"the plan is {plan.status.value}"}],
        )


async def _organisations(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Organisation]:
    if not ids:
        return {}
    rows = await session.execute(select(Organisation).where(Organisation.id.in_(ids)))  # type: ignore[attr-defined]
    return {o.id: o for o in rows.scalars()}


async def _organisation(session: AsyncSession, organisation_id: uuid.UUID, field: str) -> Organisation:
    org = await session.get(Organisation, organisation_id)
    if org is None:
        raise _field_error(field, "no organisation with this id")
    return org


# ---- reading -------------------------------------------------------------------------------


async def _participants(session: AsyncSession, plan_id: uuid.UUID) -> list[PlanParticipant]:
    rows = await session.execute(
        select(PlanParticipant).where(PlanParticipant.plan_id == plan_id).order_by(PlanParticipant.added_at)  # type: ignore[arg-type]
    )
    return list(rows.scalars())


async def _consents(session: AsyncSession, plan_id: uuid.UUID) -> list[tuple[Consent, list[uuid.UUID]]]:
    consents = list(
        (
            await session.execute(
                select(Consent).where(Consent.plan_id == plan_id).order_by(Consent.recorded_at)  # type: ignore[arg-type]
            )
        ).scalars()
    )
    scopes: dict[uuid.UUID, list[uuid.UUID]] = {c.id: [] for c in consents}
    for scope in (
        await session.execute(select(ConsentScope).where(ConsentScope.plan_id == plan_id))
    ).scalars():
        scopes.setdefault(scope.consent_id, []).append(scope.organisation_id)
    return [(c, sorted(scopes.get(c.id, []), key=str)) for c in consents]


async def _actions(session: AsyncSession, plan_id: uuid.UUID) -> list[Action]:
    rows = await session.execute(
        select(Action).where(Action.plan_id == plan_id).order_by(Action.proposed_at, Action.id)  # type: ignore[arg-type]
    )
    return list(rows.scalars())


# The statements that read a whole plan, built once: each is compiled once per process and
# reused, and returns plain rows (no ORM identities), which is most of what a read costs.
_PLAN_ID: BindParameter[uuid.UUID] = bindparam("plan_id")
_P, _O = PlanParticipant.__table__, Organisation.__table__  # type: ignore[attr-defined]
_C, _CS = Consent.__table__, ConsentScope.__table__  # type: ignore[attr-defined]
_N, _G, _A = Need.__table__, Goal.__table__, Action.__table__  # type: ignore[attr-defined]
_READ_PARTICIPANTS = (
    sa_select(_P, _O.c.name.label("organisation_name"), _O.c.kind.label("organisation_kind"))
    .select_from(_P.outerjoin(_O, _O.c.id == _P.c.organisation_id))
    .where(_P.c.plan_id == _PLAN_ID)
    .order_by(_P.c.added_at, _P.c.id)
)
_READ_CONSENTS = (
    sa_select(_C, _CS.c.organisation_id.label("scope_organisation_id"))
    .select_from(_C.outerjoin(_CS, _CS.c.consent_id == _C.c.id))
    .where(_C.c.plan_id == _PLAN_ID)
    .order_by(_C.c.recorded_at, _C.c.id)
)
_READ_NEEDS = sa_select(_N).where(_N.c.plan_id == _PLAN_ID).order_by(_N.c.created_at, _N.c.id)
_READ_GOALS = sa_select(_G).where(_G.c.plan_id == _PLAN_ID).order_by(_G.c.created_at, _G.c.id)
_READ_ACTIONS = sa_select(_A).where(_A.c.plan_id == _PLAN_ID).order_by(_A.c.proposed_at, _A.c.id)


async def detail(session: AsyncSession, vp: VisiblePlan) -> PlanPublic:
    plan = vp.plan
    now = datetime.now(UTC)
    params = {"plan_id": plan.id}
    participants = [dict(r) for r in (await session.execute(_READ_PARTICIPANTS, params)).mappings()]
    for p in participants:
        kind = p["organisation_kind"]
        p["organisation_kind"] = kind.value if kind is not None else None
    consents: dict[uuid.UUID, dict[str, Any]] = {}
    for row in (await session.execute(_READ_CONSENTS, params)).mappings():
        consent = consents.get(row["id"])
        if consent is None:
            consent = consents[row["id"]] = dict(row)
            consent["scope_organisation_ids"] = []
            consent["active"] = plan_rules.consent_is_active_at(
                row["withdrawn_at"], row["valid_until"], now
            )
        if row["scope_organisation_id"] is not None:
            consent["scope_organisation_ids"].append(row["scope_organisation_id"])
    for consent in consents.values():
        consent["scope_organisation_ids"].sort(key=str)
    needs = [dict(r) for r in (await session.execute(_READ_NEEDS, params)).mappings()]
    goals = [dict(r) for r in (await session.execute(_READ_GOALS, params)).mappings()]
    actions = [dict(r) for r in (await session.execute(_READ_ACTIONS, params)).mappings()]
    return PlanPublic.model_validate(
        {
            **plan.model_dump(exclude={"legal_basis"}),
            "legal_basis": list(plan.legal_basis),
            "participants": participants,
            "consents": list(consents.values()),
            "needs": needs,
            "goals": goals,
            "actions": actions,
            "disputed_action_count": sum(1 for a in actions if a["status"] == ActionStatus.disputed),
        }
    )


async def read(session: AsyncSession, p: Principal, plan_id: uuid.UUID) -> PlanPublic:
    vp = await access.load_plan(session, p, plan_id)
    audit.record(session, p, "plan.read", "plan", plan_id, client_id=vp.plan.client_id)
    return await detail(session, vp)


async def list_plans(
    session: AsyncSession,
    p: Principal,
    *,
    limit: int,
    cursor: str | None,
    client_id: uuid.UUID | None,
    status: PlanStatus | None,
) -> tuple[list[Plan], str | None]:
    from app.services.pagination import keyset_page

    stmt = access.visible_plans_query(p)
    if client_id is not None:
        stmt = stmt.where(Plan.client_id == client_id)
    if status is not None:
        stmt = stmt.where(Plan.status == status)
    rows, next_cursor = await keyset_page(
        session,
        stmt,
        [Plan.created_at, Plan.id],
        limit=limit,
        cursor=cursor,
        key=lambda pl: (pl.created_at.isoformat(), pl.id),
        parse=(datetime.fromisoformat, uuid.UUID),
    )
    for plan in rows:
        audit.record(session, p, "plan.list", "plan", plan.id, client_id=plan.client_id)
    return rows, next_cursor


async def versions(session: AsyncSession, p: Principal, plan_id: uuid.UUID) -> list[PlanVersion]:
    vp = await access.load_plan(session, p, plan_id)
    audit.record(session, p, "plan.versions.read", "plan", plan_id, client_id=vp.plan.client_id)
    rows = await session.execute(
        select(PlanVersion).where(PlanVersion.plan_id == plan_id).order_by(PlanVersion.version)  # type: ignore[arg-type]
    )
    return list(rows.scalars())


async def version(session: AsyncSession, p: Principal, plan_id: uuid.UUID, number: int) -> PlanVersion:
    vp = await access.load_plan(session, p, plan_id)
    row = None
    if 1 <= number <= _MAX_VERSION:  # any other number exists on no plan, and must not reach the driver
        row = (
            await session.execute(
                select(PlanVersion).where(PlanVersion.plan_id == plan_id, PlanVersion.version == number)
            )
        ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"the plan has no version {number}")
    audit.record(session, p, "plan.version.read", "plan", plan_id, client_id=vp.plan.client_id)
    return row


# ---- the one way to change a plan ----------------------------------------------------------


async def _load_for_change(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, if_match: int | None
) -> VisiblePlan:
    vp = await access.load_plan(session, p, plan_id)
    policies.require(policies.may_author(p))
    _check_version(vp, if_match)
    return vp


def _check_version(vp: VisiblePlan, if_match: int | None) -> None:
    if if_match is not None and if_match != vp.plan.version:
        raise PreconditionFailed(
            f"the plan is at version {vp.plan.version}, not {if_match}; reload it and apply your change again",
            extra={"current_version": vp.plan.version},
        )


async def _commit_change(
    session: AsyncSession,
    vp: VisiblePlan,
    change: str,
    summary: dict[str, Any],
    *,
    expected_version: int | None,
    object_type: str = "plan",
    object_id: uuid.UUID | None = None,
) -> PlanPublic:
    """Bump the version (only from `expected_version` when given), snapshot, audit."""
    plan, p = vp.plan, vp.principal
    now = utcnow()
    await session.flush()
    stmt = update(Plan).where(Plan.id == plan.id)  # type: ignore[arg-type]
    if expected_version is not None:
        stmt = stmt.where(Plan.version == expected_version)  # type: ignore[arg-type]
    new_version = (
        await session.execute(
            stmt.values(version=col(Plan.version) + 1, updated_at=now).returning(col(Plan.version))
        )
    ).scalar_one_or_none()
    if new_version is None:
        # Someone else's change to the same version committed first.
        raise PreconditionFailed(
            "the plan was changed by someone else; reload it and apply your change again"
        )
    plan.version = new_version
    plan.updated_at = now
    snapshot = await detail(session, vp)
    session.add(
        PlanVersion(
            plan_id=plan.id,
            version=new_version,
            change=change,
            summary=to_jsonable_python(summary),
            snapshot=snapshot.model_dump(mode="json"),
            changed_by=p.subject,
            changed_by_name=p.name,
            changed_by_organisation_id=p.organisation_id,
            changed_at=now,
        )
    )
    await session.flush()
    await events.emit_for_change(session, change, plan, p, summary)
    audit.record(session, p, change, object_type, object_id or plan.id, client_id=plan.client_id)
    return snapshot


PlanChild = TypeVar("PlanChild", Need, Goal, Action, Consent)


async def _child(
    session: AsyncSession,
    model: type[PlanChild],
    plan_id: uuid.UUID,
    child_id: uuid.UUID,
    *,
    field: str | None = None,
) -> PlanChild:
    """A need, goal, action or consent of this plan: 404 when addressed by the URL, 422 naming
    the field when referred to from the body."""
    child = await session.get(model, child_id)
    if child is None or child.plan_id != plan_id:
        noun = {Need: "need", Goal: "goal", Action: "action", Consent: "consent"}[model]
        if field is not None:
            raise _field_error(field, f"no such {noun} on this plan")
        raise NotFound(f"no such {noun} on this plan")
    return child


async def _check_ref(
    session: AsyncSession, model: type[PlanChild], plan_id: uuid.UUID, child_id: uuid.UUID | None, field: str
) -> None:
    if child_id is not None:
        await _child(session, model, plan_id, child_id, field=field)


# ---- create and update ---------------------------------------------------------------------


def _participant_kind_for(org: Organisation) -> ParticipantKind:
    return ParticipantKind.huvudman if org.kind.is_huvudman else ParticipantKind.other


async def create(session: AsyncSession, p: Principal, data: PlanCreate) -> PlanPublic:
    policies.require(policies.may_author(p))
    try:
        await access.load_client(session, p, data.client_id)
    except NotFound:
        raise _field_error("client_id", "no such client is known to your organisation") from None
    # No client link is added: seeing a client through a consented plan is not knowing them.
    if data.follow_up_date is not None and data.follow_up_date < utcnow().date():
        raise _field_error("follow_up_date", "a follow-up date cannot be in the past")
    initiator = await _organisation(session, p.organisation_id, "initiating organisation")
    if data.overall_responsible_organisation_id not in (None, initiator.id):
        # Only a participating huvudman may hold it, and at creation the initiator is the only participant.
        raise _field_error(
            "overall_responsible_organisation_id",
            "add the organisation as a participating huvudman first, then set the overall responsibility",
        )
    if data.overall_responsible_organisation_id is not None and not initiator.kind.is_huvudman:
        raise _field_error(
            "overall_responsible_organisation_id",
            "the overall responsibility must be held by a kommun or region",
        )
    plan = Plan(
        client_id=data.client_id,
        title=data.title,
        legal_basis=[b.strip() for b in data.legal_basis],
        initiating_organisation_id=p.organisation_id,
        created_by=p.subject,
        overall_responsible_organisation_id=data.overall_responsible_organisation_id,
        follow_up_date=data.follow_up_date,
        client_participated=data.client_participated,
        version=0,
    )
    session.add(plan)
    session.add(
        PlanParticipant(
            plan_id=plan.id,
            kind=_participant_kind_for(initiator),
            organisation_id=initiator.id,
            added_by_organisation_id=initiator.id,
        )
    )
    await session.flush()
    vp = VisiblePlan(plan, p, access._TOKEN)  # just created by the caller's organisation
    return await _commit_change(session, vp, "plan.create", {"title": plan.title}, expected_version=0)


async def patch(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, data: PlanUpdate, if_match: int
) -> PlanPublic:
    vp = await _load_for_change(session, p, plan_id, if_match)
    plan = vp.plan
    _require_open(plan)
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        raise _field_error("body", "nothing to change")
    for key in ("title", "client_participated", "relatives_objection"):
        if key in changes and changes[key] is None:
            raise _field_error(key, "may not be null")
    if "legal_basis" in changes:
        basis = changes["legal_basis"] or []
        if any(not b.strip() or len(b) > 200 for b in basis):
            raise _field_error("legal_basis", "each entry must be 1 to 200 characters")
        changes["legal_basis"] = [b.strip() for b in basis]
    if changes.get("overall_responsible_organisation_id") is not None:
        await _check_overall_responsible(session, plan, changes["overall_responsible_organisation_id"])
    if changes.get("follow_up_date") is not None and changes["follow_up_date"] < utcnow().date():
        raise _field_error("follow_up_date", "a follow-up date cannot be in the past")
    if plan.status == PlanStatus.active:
        # An active plan keeps what activation required.
        for key in ("follow_up_date", "overall_responsible_organisation_id"):
            if key in changes and changes[key] is None:
                raise _field_error(key, "an active plan must keep this")
    for key, value in changes.items():
        setattr(plan, key, value)
    return await _commit_change(session, vp, "plan.update", changes, expected_version=if_match)


async def _check_overall_responsible(session: AsyncSession, plan: Plan, organisation_id: uuid.UUID) -> None:
    org = await _organisation(session, organisation_id, "overall_responsible_organisation_id")
    if not org.kind.is_huvudman:
        raise _field_error(
            "overall_responsible_organisation_id",
            "the overall responsibility must be held by a kommun or region",
        )
    participant = await session.scalar(
        select(PlanParticipant.id).where(
            PlanParticipant.plan_id == plan.id,
            PlanParticipant.organisation_id == organisation_id,
            PlanParticipant.kind == ParticipantKind.huvudman,
        )
    )
    if participant is None:
        raise _field_error(
            "overall_responsible_organisation_id",
            "the organisation does not take part in the plan as huvudman",
        )


# ---- participants --------------------------------------------------------------------------


async def add_participant(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, data: ParticipantCreate, if_match: int | None
) -> tuple[PlanPublic, uuid.UUID]:
    vp = await _load_for_change(session, p, plan_id, if_match)
    plan = vp.plan
    _require_open(plan)
    participant = PlanParticipant(
        plan_id=plan.id,
        kind=data.kind,
        name=data.name,
        relation=data.relation,
        added_by_organisation_id=p.organisation_id,
    )
    if data.organisation_id is not None:
        org = await _organisation(session, data.organisation_id, "organisation_id")
        if data.kind == ParticipantKind.huvudman and not org.kind.is_huvudman:
            raise _field_error(
                "kind", f"a {org.kind.value} organisation takes part as 'other', not as huvudman"
            )
        if data.kind == ParticipantKind.other and org.kind.is_huvudman:
            raise _field_error("kind", f"a {org.kind.value} takes part as huvudman")
        existing = await session.scalar(
            select(PlanParticipant.id).where(
                PlanParticipant.plan_id == plan.id, PlanParticipant.organisation_id == org.id
            )
        )
        if existing is not None:
            raise Conflict(
                "the organisation already takes part in the plan", extra={"participant_id": str(existing)}
            )
        if data.unit_id is not None:
            async with system_scope(session):  # units belong to the invited organisation
                unit = await session.get(Unit, data.unit_id)
            if unit is None or unit.organisation_id != org.id:
                raise _field_error("unit_id", "no such unit in that organisation")
        participant.organisation_id = org.id
        participant.unit_id = data.unit_id
    elif data.kind == ParticipantKind.client:
        existing = await session.scalar(
            select(PlanParticipant.id).where(
                PlanParticipant.plan_id == plan.id, PlanParticipant.kind == ParticipantKind.client
            )
        )
        if existing is not None:
            raise Conflict("the client already takes part in the plan")
    elif data.kind == ParticipantKind.narstaende and plan.relatives_objection:
        raise RuleViolation(
            "a närstående cannot be added while the client objects",
            errors=[
                {"rule": "relatives_objection", "message": "the client objects to närstående taking part"}
            ],
        )
    session.add(participant)
    summary = {"kind": data.kind, "organisation_id": data.organisation_id}
    snapshot = await _commit_change(
        session, vp, "plan.participant.add", summary, expected_version=if_match,
        object_type="plan_participant", object_id=participant.id,
    )  # fmt: skip
    return snapshot, participant.id


# ---- consent -------------------------------------------------------------------------------


async def add_consent(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, data: ConsentCreate, if_match: int | None
) -> tuple[PlanPublic, uuid.UUID]:
    vp = await _load_for_change(session, p, plan_id, if_match)
    plan = vp.plan
    _require_open(plan)
    now = utcnow()
    if data.given_at > now + _CONSENT_CLOCK_SKEW:
        raise _field_error("given_at", "consent cannot be given in the future")
    if data.valid_until is not None and data.valid_until < now.date():
        raise _field_error("valid_until", "the consent would already have expired")
    scope = set(data.scope_organisation_ids)
    known = await _organisations(session, scope)
    unknown = sorted(str(o) for o in scope - known.keys())
    if unknown:
        raise UnprocessableEntity(
            "the consent names organisations that do not exist",
            errors=[
                {"field": "scope_organisation_ids", "message": f"unknown organisation {o}"} for o in unknown
            ],
        )
    consent = Consent(
        plan_id=plan.id,
        given_at=data.given_at,
        obtained_by=data.obtained_by,
        method=data.method,
        valid_until=data.valid_until,
        recorded_by_organisation_id=p.organisation_id,
    )
    session.add(consent)
    await session.flush()
    for organisation_id in sorted(scope, key=str):
        session.add(ConsentScope(consent_id=consent.id, plan_id=plan.id, organisation_id=organisation_id))
    summary = {"consent_id": consent.id, "scope_organisation_ids": sorted(scope, key=str)}
    snapshot = await _commit_change(
        session, vp, "plan.consent.give", summary, expected_version=if_match,
        object_type="consent", object_id=consent.id,
    )  # fmt: skip
    return snapshot, consent.id


async def withdraw_consent(
    session: AsyncSession,
    p: Principal,
    plan_id: uuid.UUID,
    consent_id: uuid.UUID,
    data: ConsentWithdraw,
    if_match: int | None,
) -> PlanPublic:
    vp = await _load_for_change(session, p, plan_id, if_match)
    plan = vp.plan
    consent = await _child(session, Consent, plan.id, consent_id)
    if consent.withdrawn_at is not None:
        raise Conflict("the consent is already withdrawn")
    now = utcnow()
    # Withdrawal can remove the caller's own access mid-change; the caller's right was checked
    # above, so finish the change outside the tenant scope.
    async with system_scope(session):
        consent.withdrawn_at = now
        consent.withdrawn_reason = data.reason
        consent.withdrawn_by_organisation_id = p.organisation_id
        await session.flush()
        still_active = [
            c for c, _ in await _consents(session, plan.id) if plan_rules.consent_is_active(c, now)
        ]
        paused = plan.status == PlanStatus.active and not still_active
        if paused:
            plan.status = PlanStatus.paused
        summary = {"consent_id": consent_id, "reason": data.reason, "plan_paused": paused}
        return await _commit_change(
            session, vp, "plan.consent.withdraw", summary, expected_version=if_match,
            object_type="consent", object_id=consent_id,
        )  # fmt: skip


# ---- needs and goals -----------------------------------------------------------------------


async def add_need(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, data: NeedCreate, if_match: int | None
) -> tuple[PlanPublic, uuid.UUID]:
    vp = await _load_for_change(session, p, plan_id, if_match)
    _require_open(vp.plan)
    need = Need(plan_id=plan_id, description=data.description, created_by_organisation_id=p.organisation_id)
    session.add(need)
    snapshot = await _commit_change(
        session, vp, "plan.need.add", {"need_id": need.id}, expected_version=if_match,
        object_type="plan_need", object_id=need.id,
    )  # fmt: skip
    return snapshot, need.id


async def update_need(
    session: AsyncSession,
    p: Principal,
    plan_id: uuid.UUID,
    need_id: uuid.UUID,
    data: NeedUpdate,
    if_match: int | None,
) -> PlanPublic:
    vp = await _load_for_change(session, p, plan_id, if_match)
    _require_open(vp.plan)
    need = await _child(session, Need, plan_id, need_id)
    changes = data.model_dump(exclude_unset=True)
    if not changes or changes.get("description") is None:
        raise _field_error("description", "give a new description")
    need.description = changes["description"]
    return await _commit_change(
        session,
        vp,
        "plan.need.update",
        changes,
        expected_version=if_match,
        object_type="plan_need",
        object_id=need_id,
    )


async def add_goal(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, data: GoalCreate, if_match: int | None
) -> tuple[PlanPublic, uuid.UUID]:
    vp = await _load_for_change(session, p, plan_id, if_match)
    _require_open(vp.plan)
    await _check_ref(session, Need, plan_id, data.need_id, "need_id")
    goal = Goal(
        plan_id=plan_id,
        need_id=data.need_id,
        description=data.description,
        target_date=data.target_date,
        created_by_organisation_id=p.organisation_id,
    )
    session.add(goal)
    snapshot = await _commit_change(
        session, vp, "plan.goal.add", {"goal_id": goal.id}, expected_version=if_match,
        object_type="plan_goal", object_id=goal.id,
    )  # fmt: skip
    return snapshot, goal.id


async def update_goal(
    session: AsyncSession,
    p: Principal,
    plan_id: uuid.UUID,
    goal_id: uuid.UUID,
    data: GoalUpdate,
    if_match: int | None,
) -> PlanPublic:
    vp = await _load_for_change(session, p, plan_id, if_match)
    _require_open(vp.plan)
    goal = await _child(session, Goal, plan_id, goal_id)
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        raise _field_error("body", "nothing to change")
    if "description" in changes and changes["description"] is None:
        raise _field_error("description", "may not be null")
    if "need_id" in changes:
        await _check_ref(session, Need, plan_id, changes["need_id"], "need_id")
    for key, value in changes.items():
        setattr(goal, key, value)
    return await _commit_change(
        session,
        vp,
        "plan.goal.update",
        changes,
        expected_version=if_match,
        object_type="plan_goal",
        object_id=goal_id,
    )


# ---- actions -------------------------------------------------------------------------------


async def _check_responsible(session: AsyncSession, plan_id: uuid.UUID, organisation_id: uuid.UUID) -> None:
    await _organisation(session, organisation_id, "responsible_organisation_id")
    participant = await session.scalar(
        select(PlanParticipant.id).where(
            PlanParticipant.plan_id == plan_id,
            PlanParticipant.organisation_id == organisation_id,
            col(PlanParticipant.kind).in_(access.ORG_PARTICIPANT_KINDS),
        )
    )
    if participant is None:
        raise RuleViolation(
            "the responsible organisation must take part in the plan",
            errors=[
                {
                    "field": "responsible_organisation_id",
                    "rule": "action_responsible",
                    "message": "the organisation does not take part in the plan",
                }
            ],
        )


async def add_action(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, data: ActionCreate, if_match: int | None
) -> tuple[PlanPublic, uuid.UUID]:
    vp = await _load_for_change(session, p, plan_id, if_match)
    _require_open(vp.plan)
    await _check_responsible(session, plan_id, data.responsible_organisation_id)
    await _check_ref(session, Goal, plan_id, data.goal_id, "goal_id")
    own = data.responsible_organisation_id == p.organisation_id
    now = utcnow()
    action = Action(
        plan_id=plan_id,
        goal_id=data.goal_id,
        description=data.description,
        responsible_organisation_id=data.responsible_organisation_id,
        phase=data.phase,
        start_date=data.start_date,
        end_date=data.end_date,
        # An organisation taking on its own action has accepted it; anyone else's starts proposed.
        status=ActionStatus.accepted if own else ActionStatus.proposed,
        proposed_by_organisation_id=p.organisation_id,
        proposed_at=now,
        decided_at=now if own else None,
        decided_by=p.subject if own else None,
    )
    session.add(action)
    change = "plan.action.add" if own else "plan.action.propose"
    snapshot = await _commit_change(
        session, vp, change,
        {"action_id": action.id, "responsible_organisation_id": data.responsible_organisation_id},
        expected_version=if_match, object_type="plan_action", object_id=action.id,
    )  # fmt: skip
    return snapshot, action.id


async def accept_action(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, action_id: uuid.UUID, if_match: int | None
) -> PlanPublic:
    vp = await access.load_plan(session, p, plan_id)
    action = await _child(session, Action, plan_id, action_id)
    policies.require(policies.may_decide_action(p, action.responsible_organisation_id))
    _check_version(vp, if_match)
    _require_open(vp.plan)
    if action.status not in (ActionStatus.proposed, ActionStatus.disputed):
        raise Conflict(
            f"the action is {action.status.value}; only a proposed or disputed action can be accepted"
        )
    action.status = ActionStatus.accepted
    action.dispute_reason = None
    action.decided_at = action.updated_at = utcnow()
    action.decided_by = p.subject
    return await _commit_change(
        session, vp, "plan.action.accept", {"action_id": action_id}, expected_version=if_match,
        object_type="plan_action", object_id=action_id,
    )  # fmt: skip


async def dispute_action(
    session: AsyncSession,
    p: Principal,
    plan_id: uuid.UUID,
    action_id: uuid.UUID,
    data: ActionDispute,
    if_match: int | None,
) -> PlanPublic:
    vp = await access.load_plan(session, p, plan_id)
    action = await _child(session, Action, plan_id, action_id)
    policies.require(policies.may_decide_action(p, action.responsible_organisation_id))
    _check_version(vp, if_match)
    _require_open(vp.plan)
    if action.status != ActionStatus.proposed:
        raise Conflict(f"the action is {action.status.value}; only a proposed action can be disputed")
    action.status = ActionStatus.disputed
    action.dispute_reason = data.reason
    action.decided_at = action.updated_at = utcnow()
    action.decided_by = p.subject
    return await _commit_change(
        session, vp, "plan.action.dispute", {"action_id": action_id, "reason": data.reason},
        expected_version=if_match, object_type="plan_action", object_id=action_id,
    )  # fmt: skip


_CONTENT_FIELDS = ("description", "responsible_organisation_id", "phase", "goal_id", "start_date", "end_date")
# Who may move an action to which status, from which.
_STATUS_MOVES: dict[ActionStatus, frozenset[ActionStatus]] = {
    ActionStatus.started: frozenset({ActionStatus.accepted}),
    ActionStatus.completed: frozenset({ActionStatus.accepted, ActionStatus.started}),
    ActionStatus.cancelled: frozenset(
        {ActionStatus.proposed, ActionStatus.disputed, ActionStatus.accepted, ActionStatus.started}
    ),
}


async def update_action(
    session: AsyncSession,
    p: Principal,
    plan_id: uuid.UUID,
    action_id: uuid.UUID,
    data: ActionUpdate,
    if_match: int | None,
) -> PlanPublic:
    vp = await _load_for_change(session, p, plan_id, if_match)
    _require_open(vp.plan)
    action = await _child(session, Action, plan_id, action_id)
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        raise _field_error("body", "nothing to change")
    if action.status in (ActionStatus.completed, ActionStatus.cancelled):
        raise Conflict(f"the action is {action.status.value} and can no longer change")
    new_status = changes.pop("status", None)
    new_responsible = changes.get("responsible_organisation_id") or action.responsible_organisation_id
    handed_over = new_responsible != action.responsible_organisation_id
    if new_status is not None:
        new_status = ActionStatus(new_status)
        if new_status not in _STATUS_MOVES:
            raise _field_error(
                "status", "use the accept and dispute calls, or set started, completed or cancelled"
            )
        if action.status not in _STATUS_MOVES[new_status]:
            raise Conflict(f"an action that is {action.status.value} cannot become {new_status.value}")
        owners = {action.responsible_organisation_id}
        if new_status == ActionStatus.cancelled:
            owners.add(action.proposed_by_organisation_id)
        elif handed_over:
            # Starting or completing an action while handing it over: only the organisation that
            # takes it on may do that, or it would carry an action it never accepted.
            owners = {new_responsible}
        if p.organisation_id not in owners:
            raise Forbidden("only the responsible organisation may change the action's status")
    for key in ("description", "responsible_organisation_id"):
        if key in changes and changes[key] is None:
            raise _field_error(key, "may not be null")
    if changes.get("responsible_organisation_id") is not None:
        await _check_responsible(session, plan_id, changes["responsible_organisation_id"])
    if "goal_id" in changes:
        await _check_ref(session, Goal, plan_id, changes["goal_id"], "goal_id")
    start = changes.get("start_date", action.start_date)
    end = changes.get("end_date", action.end_date)
    if start and end and end < start:
        raise _field_error("end_date", "end_date is before start_date")
    content_changed = any(k in changes and changes[k] != getattr(action, k) for k in _CONTENT_FIELDS)
    for key, value in changes.items():
        setattr(action, key, value)
    now = utcnow()
    if content_changed and new_status is None:
        # What was agreed changed: the responsible organisation must accept it again, unless it is
        # the one making the change.
        if action.responsible_organisation_id == p.organisation_id:
            if action.status in (ActionStatus.proposed, ActionStatus.disputed):
                action.status, action.decided_at, action.decided_by = ActionStatus.accepted, now, p.subject
        elif action.status != ActionStatus.started or handed_over:
            # A started action stays started through edits, but not when another organisation
            # is to carry it: that organisation must accept it first.
            action.status, action.decided_at, action.decided_by = ActionStatus.proposed, None, None
        action.dispute_reason = None if action.status != ActionStatus.disputed else action.dispute_reason
    if new_status is not None:
        action.status = new_status
    action.updated_at = now
    summary = {**changes, **({"status": new_status} if new_status else {}), "action_id": action_id}
    return await _commit_change(
        session, vp, "plan.action.update", summary, expected_version=if_match,
        object_type="plan_action", object_id=action_id,
    )  # fmt: skip


# ---- life cycle ----------------------------------------------------------------------------


async def activation_problems(session: AsyncSession, plan: Plan) -> list[plan_rules.UnmetRule]:
    participants = await _participants(session, plan.id)
    orgs = await _organisations(session, {p.organisation_id for p in participants if p.organisation_id})
    return plan_rules.activation_problems(
        plan,
        participants,
        {o.id: o.kind for o in orgs.values()},
        await _actions(session, plan.id),
        [c for c, _ in await _consents(session, plan.id)],
        utcnow(),
    )


async def transition(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, data: TransitionRequest, if_match: int
) -> PlanPublic:
    vp = await _load_for_change(session, p, plan_id, if_match)
    plan = vp.plan
    if not plan_rules.transition_allowed(plan.status, data.to):
        allowed = sorted(t.value for t in plan_rules.TRANSITIONS[plan.status])
        raise RuleViolation(
            f"a {plan.status.value} plan cannot become {data.to.value}",
            errors=[
                {
                    "rule": "transition",
                    "message": f"from {plan.status.value} the plan can become: {', '.join(allowed) or 'nothing'}",
                }
            ],
        )
    now = utcnow()
    if data.to == TransitionTarget.active:
        problems = await activation_problems(session, plan)
        if problems:
            raise RuleViolation(
                f"the plan cannot be activated: {len(problems)} rule(s) not met",
                errors=[u.as_error() for u in problems],
            )
        plan.status = PlanStatus.active
        plan.activated_at = plan.activated_at or now
    elif data.to == TransitionTarget.paused:
        plan.status = PlanStatus.paused
    elif data.to == TransitionTarget.closed:
        plan.status, plan.closed_at = PlanStatus.closed, now
    else:
        plan.status, plan.cancelled_at = PlanStatus.cancelled, now
    change = {
        TransitionTarget.active: "plan.activate",
        TransitionTarget.paused: "plan.pause",
        TransitionTarget.closed: "plan.close",
        TransitionTarget.cancelled: "plan.cancel",
    }[data.to]
    return await _commit_change(
        session, vp, change, {"to": data.to, "reason": data.reason}, expected_version=if_match
    )
