"""The worklist: the signals of DOMAIN.md for the caller's clients, computed in the database.

Each signal is one SQL query that returns only the rows that fire, so the cost follows the
caller's caseload, not the size of the national data set.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, exists, union
from sqlalchemy import select as rows_of
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import and_, col, or_

from app.auth import policies
from app.auth.principal import Principal
from app.models.care_chain import CoordinatorAssignment, Episode
from app.models.client import MASKED_NAME, Client, ClientLink
from app.models.meeting import Meeting, MeetingInvitee
from app.models.organisation import Organisation, OrganisationKind
from app.models.phase import Phase
from app.models.plan import COMMITTED_ACTION_STATUSES, Action, ActionStatus, Plan, PlanStatus
from app.services import access, audit, plan_rules
from app.services.episode_rules import LVM_MAX_MONTHS, add_months

DISCHARGE_HORIZON_DAYS = 14
DISCHARGED_LOOKBACK_DAYS = 30
SIX_MONTHS_WARNING_DAYS = 30
FOLLOW_UP_HORIZON_DAYS = 7


class Signal(StrEnum):
    discharge_without_aftercare_plan = "discharge_without_aftercare_plan"
    follow_up_overdue = "follow_up_overdue"
    lvm_care_near_six_months = "lvm_care_near_six_months"
    action_unanswered = "action_unanswered"
    meeting_without_other_huvudman = "meeting_without_other_huvudman"
    follow_up_due = "follow_up_due"


# Most urgent first: the period after LVM care is the most dangerous.
URGENCY = {s: i for i, s in enumerate(Signal)}


class WorklistItem(BaseModel):
    signal: Signal
    urgency: int
    client_id: uuid.UUID
    client_name: str
    plan_id: uuid.UUID | None = None
    episode_id: uuid.UUID | None = None
    action_id: uuid.UUID | None = None
    meeting_id: uuid.UUID | None = None
    reason: str
    since: date
    due: date | None = None


@dataclass(frozen=True)
class _Row:
    signal: Signal
    client_id: uuid.UUID
    reason: str
    since: date
    due: date | None = None
    plan_id: uuid.UUID | None = None
    episode_id: uuid.UUID | None = None
    action_id: uuid.UUID | None = None
    meeting_id: uuid.UUID | None = None


def _caller_clients(p: Principal, today: date) -> Any:
    """A predicate on a client id column: a samordnare's assigned clients; for handläggare also
    every client their organisation knows (a client link, or a plan it started).

    Two spellings of the same set, chosen per signal by measurement at national size
    (docs/performance.md): `probe=True` asks three index look-ups per candidate row, best where
    the signal's own conditions leave a handful of rows in the whole country (LVM care episodes);
    `probe=False` collects the organisation's clients once (a large kommun knows tens of
    thousands), best where the candidates are many (open plans, coming meetings)."""
    assigned_rows = rows_of(col(CoordinatorAssignment.client_id)).where(
        col(CoordinatorAssignment.user_id) == p.user_id,
        col(CoordinatorAssignment.start_date) <= today,
        or_(col(CoordinatorAssignment.end_date).is_(None), col(CoordinatorAssignment.end_date) > today),
    )
    linked_rows = rows_of(col(ClientLink.client_id)).where(
        col(ClientLink.organisation_id) == p.organisation_id
    )
    initiated_rows = rows_of(col(_INITIATED.c.client_id)).where(
        col(_INITIATED.c.initiating_organisation_id) == p.organisation_id
    )
    through_assignments = policies.works_through_assignments(p)
    members = (
        assigned_rows
        if through_assignments
        else rows_of(union(assigned_rows, linked_rows, initiated_rows).subquery().c[0])
    )

    def known(client_id: Any, *, probe: bool = False) -> ColumnElement[bool]:
        if not probe:
            return client_id.in_(members)  # type: ignore[no-any-return]
        assigned = exists(assigned_rows.where(col(CoordinatorAssignment.client_id) == client_id))
        if through_assignments:
            return assigned
        return or_(
            exists(linked_rows.where(col(ClientLink.client_id) == client_id)),
            exists(initiated_rows.where(col(_INITIATED.c.client_id) == client_id)),
            assigned,
        )

    return known


# A second name for the plan table, for "a plan the organisation started" inside queries that
# already select from plan.
_INITIATED = Plan.__table__.alias("initiated")  # type: ignore[attr-defined]


def _aftercare_plan_exists(p: Principal, client_id: Any, today: date) -> ColumnElement[bool]:
    """An active SIP for the client holding an aftercare action its owner has taken on, among the
    plans the caller's organisation may see (as PostgreSQL's row security also has it)."""
    return exists().where(
        col(Plan.client_id) == client_id,
        col(Plan.status) == PlanStatus.active,
        access.plan_visible_clause(p.organisation_id, today),
        exists().where(
            col(Action.plan_id) == col(Plan.id),
            col(Action.phase) == Phase.eftervard,
            col(Action.status).in_(COMMITTED_ACTION_STATUSES),
        ),
    )


async def _discharges(session: AsyncSession, p: Principal, clients: Any, today: date) -> list[_Row]:
    lo = today - timedelta(days=DISCHARGED_LOOKBACK_DAYS)
    hi = today + timedelta(days=DISCHARGE_HORIZON_DAYS)
    stmt = rows_of(
        col(Episode.id), col(Episode.client_id), col(Episode.end_date), col(Episode.planned_end_date)
    ).where(
        col(Episode.phase) == Phase.lvm_vard,
        clients(col(Episode.client_id), probe=True),
        access.episode_visible_clause(p.organisation_id),
        # coalesce(end, planned) in the window, spelt out so that the two indexes can answer it.
        or_(
            col(Episode.end_date).between(lo, hi),
            and_(col(Episode.end_date).is_(None), col(Episode.planned_end_date).between(lo, hi)),
        ),
        ~_aftercare_plan_exists(p, col(Episode.client_id), today),
    )
    rows = []
    for episode_id, client_id, end, planned in (await session.execute(stmt)).all():
        when = end or planned
        assert when is not None  # one of them is filtered on in SQL
        happened = end is not None and end <= today
        reason = (
            f"discharged from LVM care on {when} without an active SIP holding aftercare actions"
            if happened
            else f"discharge from LVM care planned for {when} and no active SIP holding aftercare actions"
        )
        rows.append(
            _Row(
                Signal.discharge_without_aftercare_plan,
                client_id,
                reason,
                since=when - timedelta(days=DISCHARGE_HORIZON_DAYS),
                due=when,
                episode_id=episode_id,
            )
        )
    return rows


async def _six_months(session: AsyncSession, p: Principal, clients: Any, today: date) -> list[_Row]:
    # start + 6 months - 30 days <= today  <=>  start <= (today + 30 days) - 6 months
    latest_start = add_months(today + timedelta(days=SIX_MONTHS_WARNING_DAYS), -LVM_MAX_MONTHS)
    stmt = rows_of(col(Episode.id), col(Episode.client_id), col(Episode.start_date)).where(
        col(Episode.phase) == Phase.lvm_vard,
        clients(col(Episode.client_id), probe=True),
        access.episode_visible_clause(p.organisation_id),
        col(Episode.start_date) <= latest_start,
        or_(col(Episode.end_date).is_(None), col(Episode.end_date) >= today),
    )
    rows = []
    for episode_id, client_id, start in (await session.execute(stmt)).all():
        limit = add_months(start, LVM_MAX_MONTHS)
        rows.append(
            _Row(
                Signal.lvm_care_near_six_months,
                client_id,
                f"LVM care since {start} reaches six months on {limit}",
                since=limit - timedelta(days=SIX_MONTHS_WARNING_DAYS),
                due=limit,
                episode_id=episode_id,
            )
        )
    return rows


async def _follow_ups(session: AsyncSession, p: Principal, clients: Any, today: date) -> list[_Row]:
    stmt = rows_of(col(Plan.id), col(Plan.client_id), col(Plan.follow_up_date)).where(
        col(Plan.status).in_((PlanStatus.active, PlanStatus.paused)),
        clients(col(Plan.client_id)),
        col(Plan.follow_up_date) <= today + timedelta(days=FOLLOW_UP_HORIZON_DAYS),
        access.principal_plan_clause(p, today),
    )
    rows = []
    for plan_id, client_id, due in (await session.execute(stmt)).all():
        assert due is not None  # filtered on in SQL
        overdue = due < today
        rows.append(
            _Row(
                Signal.follow_up_overdue if overdue else Signal.follow_up_due,
                client_id,
                f"the plan's follow-up was due {due}" if overdue else f"the plan's follow-up is due {due}",
                since=due if overdue else due - timedelta(days=FOLLOW_UP_HORIZON_DAYS),
                due=due,
                plan_id=plan_id,
            )
        )
    return rows


async def _unanswered(session: AsyncSession, p: Principal, today: date) -> list[_Row]:
    """Actions proposed to the caller's organisation: someone there must answer, whoever the client."""
    stmt = (
        rows_of(col(Action.id), col(Action.plan_id), col(Plan.client_id), col(Action.proposed_at))
        .join(Plan, col(Plan.id) == col(Action.plan_id))
        .where(
            col(Action.status) == ActionStatus.proposed,
            col(Action.responsible_organisation_id) == p.organisation_id,
            col(Plan.status).in_((PlanStatus.draft, PlanStatus.active, PlanStatus.paused)),
            access.principal_plan_clause(p, today),
        )
    )
    return [
        _Row(
            Signal.action_unanswered,
            client_id,
            "an action proposed to your organisation awaits acceptance or dispute",
            since=proposed_at.date(),
            plan_id=plan_id,
            action_id=action_id,
        )
        for action_id, plan_id, client_id, proposed_at in (await session.execute(stmt)).all()
    ]


def _meeting_has(kind: OrganisationKind) -> ColumnElement[bool]:
    """The meeting's organiser or one of its invitees is an organisation of this kind."""
    return or_(
        exists().where(
            col(Organisation.id) == col(Meeting.organiser_organisation_id), col(Organisation.kind) == kind
        ),
        exists().where(
            col(MeetingInvitee.meeting_id) == col(Meeting.id),
            col(Organisation.id) == col(MeetingInvitee.organisation_id),
            col(Organisation.kind) == kind,
        ),
    )


async def _lonely_meetings(session: AsyncSession, p: Principal, clients: Any, today: date) -> list[_Row]:
    """Meetings still to come to which no one from the kommun, or no one from the region, is called."""
    has_kommun = _meeting_has(OrganisationKind.kommun)
    has_region = _meeting_has(OrganisationKind.region)
    stmt = (
        rows_of(
            col(Meeting.id),
            col(Meeting.plan_id),
            col(Plan.client_id),
            col(Meeting.starts_at),
            col(Meeting.created_at),
            has_kommun,
        )
        .join(Plan, col(Plan.id) == col(Meeting.plan_id))
        .where(
            col(Meeting.held_at).is_(None),
            col(Meeting.starts_at) > datetime.now(UTC),
            col(Plan.status).in_(plan_rules.OPEN_STATUSES),
            clients(col(Plan.client_id)),
            access.principal_plan_clause(p, today),
            ~and_(has_kommun, has_region),
        )
    )
    rows = []
    for meeting_id, plan_id, client_id, starts_at, created_at, kommun in (await session.execute(stmt)).all():
        missing = "region" if kommun else "kommun"
        rows.append(
            _Row(
                Signal.meeting_without_other_huvudman,
                client_id,
                f"no one from the {missing} is invited to the meeting on {starts_at.date()}",
                since=created_at.date(),
                due=starts_at.date(),
                plan_id=plan_id,
                meeting_id=meeting_id,
            )
        )
    return rows


async def worklist(
    session: AsyncSession,
    p: Principal,
    *,
    today: date | None = None,
    signals: set[Signal] | None = None,
    start: int = 0,
    limit: int | None = None,
) -> tuple[list[WorklistItem], bool]:
    """The caller's signals, most urgent first, from position `start`, at most `limit` of them;
    and whether more follow. Only the clients on the page are named, and audited as read."""
    policies.require(policies.may_read_worklist(p))
    today = today or datetime.now(UTC).date()
    clients = _caller_clients(p, today)
    rows: list[_Row] = []
    rows += await _discharges(session, p, clients, today)
    rows += await _six_months(session, p, clients, today)
    rows += await _follow_ups(session, p, clients, today)
    rows += await _unanswered(session, p, today)
    rows += await _lonely_meetings(session, p, clients, today)
    if signals:
        rows = [r for r in rows if r.signal in signals]
    rows.sort(key=lambda r: (URGENCY[r.signal], r.since, str(r.client_id)))
    end = len(rows) if limit is None else start + limit
    page, more = rows[start:end], end < len(rows)
    names = await _client_names(session, p, {r.client_id for r in page})
    for client_id in sorted(names, key=str):
        audit.record(session, p, "worklist.read", "client", client_id, client_id=client_id)
    items = [
        WorklistItem(
            signal=r.signal,
            urgency=URGENCY[r.signal],
            client_id=r.client_id,
            client_name=names.get(r.client_id, MASKED_NAME),
            plan_id=r.plan_id,
            episode_id=r.episode_id,
            action_id=r.action_id,
            meeting_id=r.meeting_id,
            reason=r.reason,
            since=r.since,
            due=r.due,
        )
        for r in page
    ]
    return items, more


async def _client_names(
    session: AsyncSession, p: Principal, client_ids: set[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Names as clients.public shows them: a protected identity only to the registering organisation."""
    if not client_ids:
        return {}
    stmt = rows_of(
        col(Client.id), col(Client.given_name), col(Client.family_name), col(Client.protected_identity)
    ).where(col(Client.id).in_(client_ids))
    out = {}
    for client_id, given, family, protected in (await session.execute(stmt)).all():
        sees = not protected or await access.registering_organisation(session, client_id) == p.organisation_id
        out[client_id] = f"{given} {family}" if sees else MASKED_NAME
    return out
