"""The only way to reach plan and client rows: queries already scoped to what the caller's
organisation may see.

The rule, once in Python here and once as the PostgreSQL RLS functions `samplan_plan_visible` and
`samplan_client_visible` (migration 0002); a test holds the two to the same answers:

- a plan is visible to its initiating organisation, and to an organisation that takes part in it
  (as huvudman or other actor) and is named in an active consent of the plan;
- a client is visible to an organisation that knows them (a client link) or sees one of their plans.

Roles narrow this further: `rss`, `org_admin` and `auditor` never read plan content, and a
samordnare (without another authoring role) reads only the plans of clients assigned to them today.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import BindParameter, ColumnElement, bindparam, exists
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import and_, col, or_, select
from sqlmodel.sql.expression import SelectOfScalar

from app.auth import policies
from app.auth.principal import Principal
from app.db import system_scope
from app.errors import NotFound
from app.models.care_chain import CoordinatorAssignment, Episode
from app.models.client import Client, ClientLink
from app.models.plan import Consent, ConsentScope, ParticipantKind, Plan, PlanParticipant

ORG_PARTICIPANT_KINDS = (ParticipantKind.huvudman, ParticipantKind.other)


def active_consent_clause(today: date | BindParameter[date]) -> ColumnElement[bool]:
    """A recorded consent that is neither withdrawn nor expired. (`given_at` cannot lie in the
    future: input validation refuses that, so the rule needs no clock comparison that the
    application and the database could disagree on.)"""
    return and_(
        col(Consent.withdrawn_at).is_(None),
        or_(col(Consent.valid_until).is_(None), col(Consent.valid_until) >= today),
    )


# An organisation id or a date, given as a value or as a bind parameter of a statement built once.
OrgId = uuid.UUID | BindParameter[uuid.UUID]
Day = date | BindParameter[date]


def consent_covers(plan_id: object, organisation_id: OrgId, today: Day) -> ColumnElement[bool]:
    return exists().where(
        col(ConsentScope.plan_id) == plan_id,
        col(ConsentScope.organisation_id) == organisation_id,
        col(Consent.id) == col(ConsentScope.consent_id),
        active_consent_clause(today),
    )


def plan_visible_clause(organisation_id: OrgId, today: Day | None = None) -> ColumnElement[bool]:
    if today is None:
        today = datetime.now(UTC).date()
    participates = exists().where(
        col(PlanParticipant.plan_id) == col(Plan.id),
        col(PlanParticipant.organisation_id) == organisation_id,
        col(PlanParticipant.kind).in_(ORG_PARTICIPANT_KINDS),
    )
    return or_(
        col(Plan.initiating_organisation_id) == organisation_id,
        and_(participates, consent_covers(col(Plan.id), organisation_id, today)),
    )


def coordinator_clause(client_id: object, user_id: OrgId, today: Day) -> ColumnElement[bool]:
    """The user is the client's samordnare today."""
    return exists().where(
        col(CoordinatorAssignment.client_id) == client_id,
        col(CoordinatorAssignment.user_id) == user_id,
        col(CoordinatorAssignment.start_date) <= today,
        or_(col(CoordinatorAssignment.end_date).is_(None), col(CoordinatorAssignment.end_date) > today),
    )


def principal_plan_clause(p: Principal, today: date | None = None) -> ColumnElement[bool]:
    """The organisation's rule, narrowed for a samordnare (who works through assignments only) to
    the clients they are assigned to today: the assignment ends, the access ends."""
    today = today or datetime.now(UTC).date()
    return _plan_rule(p.organisation_id, p.user_id, today, policies.works_through_assignments(p))


def _plan_rule(org: OrgId, user: OrgId, today: Day, through_assignments: bool) -> ColumnElement[bool]:
    org_rule = plan_visible_clause(org, today)
    if through_assignments:
        return and_(org_rule, coordinator_clause(col(Plan.client_id), user, today))
    return org_rule


def episode_visible_clause(organisation_id: uuid.UUID) -> ColumnElement[bool]:
    """Episodes are seen by the organisations named on them, and by those that see a plan of the
    client under consent."""
    named = or_(
        col(Episode.recorded_by_organisation_id) == organisation_id,
        col(Episode.organisation_id) == organisation_id,
        col(Episode.responsible_kommun_id) == organisation_id,
    )
    via_plan = exists().where(
        col(Plan.client_id) == col(Episode.client_id), plan_visible_clause(organisation_id)
    )
    return or_(named, via_plan)


def client_visible_clause(organisation_id: uuid.UUID) -> ColumnElement[bool]:
    linked = exists().where(
        col(ClientLink.client_id) == col(Client.id), col(ClientLink.organisation_id) == organisation_id
    )
    via_plan = exists().where(col(Plan.client_id) == col(Client.id), plan_visible_clause(organisation_id))
    return or_(linked, via_plan)


@dataclass(frozen=True)
class VisiblePlan:
    """A plan the principal's organisation may see. Services that read or change plan content take
    this, never a bare Plan, so a forgotten access check is a type error."""

    plan: Plan
    principal: Principal
    _token: object = field(repr=False, compare=False)

    @property
    def id(self) -> uuid.UUID:
        return self.plan.id


@dataclass(frozen=True)
class VisibleClient:
    client: Client
    principal: Principal
    known_to_caller: bool  # a client link exists: the caller's organisation knows the person
    # A protected identity (skyddade personuppgifter) is shown only to the organisation that
    # registered the client, "their own handläggare"; others that know the person see it masked.
    sees_protected_identity: bool
    _token: object = field(repr=False, compare=False)


_TOKEN = object()

# load_plan's statements, built once per variant and run with bind parameters: building the access
# clause anew for each request cost more than running it.
_ORG_ID: BindParameter[uuid.UUID] = bindparam("access_org_id")
_USER_ID: BindParameter[uuid.UUID] = bindparam("access_user_id")
_TODAY: BindParameter[date] = bindparam("access_today")
_PLAN_ID: BindParameter[uuid.UUID] = bindparam("access_plan_id")


def _load_plan_statement(through_assignments: bool, for_update: bool) -> SelectOfScalar[Plan]:
    rule = _plan_rule(_ORG_ID, _USER_ID, _TODAY, through_assignments)
    stmt = select(Plan).where(col(Plan.id) == _PLAN_ID, rule)
    if for_update:
        stmt = stmt.with_for_update()
    return stmt.execution_options(populate_existing=True)


_LOAD_PLAN = {(a, u): _load_plan_statement(a, u) for a in (False, True) for u in (False, True)}


async def load_plan(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, *, for_update: bool = False
) -> VisiblePlan:
    """The plan if the caller may read it; 404 otherwise, with no hint that it exists."""
    if policies.may_read_plans(p) is not True:
        raise NotFound("no such plan")
    # principal_plan_clause's rule, in a statement built once.
    stmt = _LOAD_PLAN[(policies.works_through_assignments(p), for_update)]
    params = {
        "access_plan_id": plan_id,
        "access_org_id": p.organisation_id,
        "access_user_id": p.user_id,
        "access_today": datetime.now(UTC).date(),
    }
    plan = (await session.execute(stmt, params)).scalar_one_or_none()
    if plan is None:
        raise NotFound("no such plan")
    return VisiblePlan(plan, p, _TOKEN)


def visible_plans_query(p: Principal):  # type: ignore[no-untyped-def]
    """Select of the plans the caller may read (empty for roles that never read plans)."""
    stmt = select(Plan)
    if policies.may_read_plans(p) is not True:
        return stmt.where(False)
    return stmt.where(principal_plan_clause(p))


def principal_client_clause(p: Principal, today: date | None = None) -> ColumnElement[bool]:
    """The organisation's rule for clients, narrowed for a samordnare to the clients assigned to
    them today, as for plans."""
    org_rule = client_visible_clause(p.organisation_id)
    if policies.works_through_assignments(p):
        return and_(
            org_rule, coordinator_clause(col(Client.id), p.user_id, today or datetime.now(UTC).date())
        )
    return org_rule


async def load_client(session: AsyncSession, p: Principal, client_id: uuid.UUID) -> VisibleClient:
    if policies.may_read_clients(p) is not True:
        raise NotFound("no such client")
    client = (
        await session.execute(select(Client).where(Client.id == client_id, principal_client_clause(p)))
    ).scalar_one_or_none()
    if client is None:
        raise NotFound("no such client")
    linked = await session.scalar(
        select(ClientLink.id).where(
            ClientLink.client_id == client_id, ClientLink.organisation_id == p.organisation_id
        )
    )
    sees = (
        not client.protected_identity
        or await registering_organisation(session, client_id) == p.organisation_id
    )
    return VisibleClient(client, p, linked is not None, sees, _TOKEN)


async def registering_organisation(session: AsyncSession, client_id: uuid.UUID) -> uuid.UUID | None:
    """The organisation that registered the client first (its link is the oldest)."""
    async with system_scope(session):  # the oldest link may be another organisation's
        return await session.scalar(
            select(ClientLink.organisation_id)
            .where(ClientLink.client_id == client_id)
            .order_by(col(ClientLink.created_at), col(ClientLink.id))
            .limit(1)
        )


def vouch_client(
    client: Client, p: Principal, known_to_caller: bool, sees_protected_identity: bool
) -> VisibleClient:
    """For the client service, which has just linked the caller's organisation to the client."""
    return VisibleClient(client, p, known_to_caller, sees_protected_identity, _TOKEN)
