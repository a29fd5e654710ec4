"""Episodes of the care chain and samordnare assignments for one client."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth import policies
from app.auth.principal import Principal
from app.db import system_scope
from app.errors import Forbidden, NotFound, RuleViolation, UnprocessableEntity
from app.models.care_chain import (
    CoordinatorAssign,
    CoordinatorAssignment,
    CoordinatorAssignmentPublic,
    Episode,
    EpisodeCreate,
    EpisodeUpdate,
)
from app.models.client import ClientLink
from app.models.identity import Role, User
from app.models.organisation import Organisation, OrganisationKind, Unit
from app.models.plan import Plan, PlanParticipant
from app.models.types import utcnow
from app.services import access, audit
from app.services.episode_rules import Span, change_problems


def _field_error(field: str, message: str) -> UnprocessableEntity:
    return UnprocessableEntity(message, errors=[{"field": field, "message": message}])


def _span(e: Episode) -> Span:
    return Span(e.id, e.phase, e.start_date, e.end_date, e.planned_end_date)


async def _client_episodes(session: AsyncSession, client_id: uuid.UUID) -> list[Episode]:
    """All of the client's episodes, whoever recorded them: the chain rules need the whole chain,
    even the parts the caller cannot read."""
    async with system_scope(session):
        rows = await session.execute(
            select(Episode).where(Episode.client_id == client_id).order_by(col(Episode.start_date))
        )
        return list(rows.scalars())


def _check_chain(candidate: Episode, existing: list[Episode]) -> None:
    problems = change_problems(_span(candidate), [_span(e) for e in existing])
    if problems:
        raise RuleViolation(
            f"the episode breaks {len(problems)} care-chain rule(s)", errors=[u.as_error() for u in problems]
        )


async def _check_unit(session: AsyncSession, unit_id: uuid.UUID | None, organisation_id: uuid.UUID) -> None:
    if unit_id is None:
        return
    async with system_scope(session):  # units of other organisations, such as an LVM-hem of SiS
        unit = await session.get(Unit, unit_id)
    if unit is None or unit.organisation_id != organisation_id:
        raise _field_error("unit_id", "no such unit in the episode's organisation")


async def record_episode(
    session: AsyncSession, p: Principal, client_id: uuid.UUID, data: EpisodeCreate
) -> Episode:
    await access.load_client(session, p, client_id)
    policies.require(policies.may_author(p))
    organisation_id = data.organisation_id or p.organisation_id
    if await session.get(Organisation, organisation_id) is None:
        raise _field_error("organisation_id", "no organisation with this id")
    kommun_id = data.responsible_kommun_id
    if kommun_id is None:
        if p.org_kind != OrganisationKind.kommun:
            raise _field_error("responsible_kommun_id", "name the responsible kommun (yours is not a kommun)")
        kommun_id = p.organisation_id
    kommun = await session.get(Organisation, kommun_id)
    if kommun is None or kommun.kind != OrganisationKind.kommun:
        raise _field_error("responsible_kommun_id", "must be a kommun")
    await _check_unit(session, data.unit_id, organisation_id)
    episode = Episode(
        client_id=client_id,
        phase=data.phase,
        start_date=data.start_date,
        end_date=data.end_date,
        planned_end_date=data.planned_end_date,
        organisation_id=organisation_id,
        unit_id=data.unit_id,
        responsible_kommun_id=kommun_id,
        recorded_by_organisation_id=p.organisation_id,
        note=data.note,
    )
    _check_chain(episode, await _client_episodes(session, client_id))
    session.add(episode)
    await session.flush()
    audit.record(session, p, "episode.record", "episode", episode.id, client_id=client_id)
    return episode


async def update_episode(
    session: AsyncSession, p: Principal, client_id: uuid.UUID, episode_id: uuid.UUID, data: EpisodeUpdate
) -> Episode:
    await access.load_client(session, p, client_id)
    episode = (
        await session.execute(
            select(Episode).where(
                Episode.id == episode_id,
                Episode.client_id == client_id,
                access.episode_visible_clause(p.organisation_id),
            )
        )
    ).scalar_one_or_none()
    if episode is None:
        raise NotFound("no such episode")
    policies.require(policies.may_author(p))
    if p.organisation_id not in (episode.recorded_by_organisation_id, episode.responsible_kommun_id):
        raise Forbidden("only the recording organisation or the responsible kommun may change the episode")
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        raise _field_error("body", "nothing to change")
    if "start_date" in changes and changes["start_date"] is None:
        raise _field_error("start_date", "may not be null")
    if "unit_id" in changes:
        await _check_unit(session, changes["unit_id"], episode.organisation_id)
    candidate = Episode.model_validate({**episode.model_dump(), **changes})
    for field, value in (("end_date", candidate.end_date), ("planned_end_date", candidate.planned_end_date)):
        if value is not None and value < candidate.start_date:
            raise _field_error(field, f"{field} is before start_date")
    _check_chain(candidate, await _client_episodes(session, client_id))
    for key, value in changes.items():
        setattr(episode, key, value)
    episode.updated_at = utcnow()
    await session.flush()
    audit.record(session, p, "episode.update", "episode", episode.id, client_id=client_id)
    return episode


async def list_episodes(session: AsyncSession, p: Principal, client_id: uuid.UUID) -> list[Episode]:
    await access.load_client(session, p, client_id)
    rows = await session.execute(
        select(Episode)
        .where(Episode.client_id == client_id, access.episode_visible_clause(p.organisation_id))
        .order_by(col(Episode.start_date), col(Episode.created_at))
    )
    audit.record(session, p, "episode.list", "client", client_id, client_id=client_id)
    return list(rows.scalars())


# ---- samordnare ----------------------------------------------------------------------------


async def _involved(session: AsyncSession, client_id: uuid.UUID, organisation_id: uuid.UUID) -> bool:
    """The organisation knows the client or takes part in one of their plans."""
    async with system_scope(session):
        linked = await session.scalar(
            select(ClientLink.id).where(
                ClientLink.client_id == client_id, ClientLink.organisation_id == organisation_id
            )
        )
        if linked is not None:
            return True
        participant = await session.scalar(
            select(PlanParticipant.id)
            .join(Plan, col(Plan.id) == col(PlanParticipant.plan_id))
            .where(Plan.client_id == client_id, PlanParticipant.organisation_id == organisation_id)
        )
        return participant is not None


async def assign_coordinator(
    session: AsyncSession, p: Principal, client_id: uuid.UUID, data: CoordinatorAssign
) -> CoordinatorAssignment:
    """Make the user the client's samordnare from `start_date`, ending the previous assignment.
    A hand-over (there is an active samordnare) needs a note; the history stays."""
    await access.load_client(session, p, client_id)
    policies.require(policies.may_assign_coordinator(p))
    if await session.get(Organisation, data.organisation_id) is None:
        raise _field_error("organisation_id", "no organisation with this id")
    if not await _involved(session, client_id, data.organisation_id):
        raise _field_error("organisation_id", "the organisation is not involved with the client")
    async with system_scope(session):  # the user may belong to another involved organisation
        user = await session.get(User, data.user_id)
    if user is None or user.organisation_id != data.organisation_id:
        raise _field_error("user_id", "no such user in that organisation")
    if Role.samordnare.value not in user.roles:
        raise _field_error("user_id", "the user does not have the samordnare role")
    async with system_scope(session):
        # Lock the client's assignments so two hand-overs cannot both end the same one.
        current = (
            await session.execute(
                select(CoordinatorAssignment)
                .where(
                    CoordinatorAssignment.client_id == client_id,
                    col(CoordinatorAssignment.end_date).is_(None),
                )
                .with_for_update()
            )
        ).scalar_one_or_none()
        if current is not None:
            if current.user_id == data.user_id:
                raise RuleViolation(
                    "the user is already the client's samordnare",
                    errors=[{"rule": "already_assigned", "message": "already the active samordnare"}],
                )
            if not data.handover_note:
                raise _field_error("handover_note", "a hand-over from the previous samordnare needs a note")
            if data.start_date <= current.start_date:
                raise _field_error(
                    "start_date", f"must be after the current assignment's start {current.start_date}"
                )
            current.end_date = data.start_date
        assignment = CoordinatorAssignment(
            client_id=client_id,
            user_id=user.id,
            organisation_id=data.organisation_id,
            start_date=data.start_date,
            handover_note=data.handover_note,
            assigned_by=p.subject,
            assigned_by_organisation_id=p.organisation_id,
        )
        session.add(assignment)
        await session.flush()
    audit.record(
        session, p, "coordinator.assign", "coordinator_assignment", assignment.id, client_id=client_id
    )
    return assignment


async def list_coordinators(
    session: AsyncSession, p: Principal, client_id: uuid.UUID
) -> list[CoordinatorAssignmentPublic]:
    await access.load_client(session, p, client_id)
    async with system_scope(session):  # assignments and names of users across involved organisations
        rows = (
            await session.execute(
                select(CoordinatorAssignment, User.name)
                .join(User, col(User.id) == col(CoordinatorAssignment.user_id))
                .where(CoordinatorAssignment.client_id == client_id)
                .order_by(col(CoordinatorAssignment.start_date))
            )
        ).all()
    audit.record(session, p, "coordinator.list", "client", client_id, client_id=client_id)
    return [CoordinatorAssignmentPublic(**a.model_dump(), user_name=name) for a, name in rows]
