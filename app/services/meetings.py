"""Meetings (kallelse, answers, holding with minutes) and follow-ups of a SIP.

Both are plan content: every change goes through plans._load_for_change and plans._commit_change,
so it bumps the plan's version, is snapshotted, audited and raises its domain events. Routers call
one function here per request; changes return the object and the plan's new version (the ETag).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal
from app.errors import Conflict, Forbidden, NotFound, RuleViolation, UnprocessableEntity
from app.models.meeting import (
    FollowUp,
    FollowUpCreate,
    FollowUpPublic,
    FollowUpUpdate,
    Meeting,
    MeetingAnswer,
    MeetingAttendee,
    MeetingCreate,
    MeetingInvitee,
    MeetingInviteePublic,
    MeetingPublic,
    MeetingResponse,
    MeetingResponseCreate,
    MeetingUpdate,
    MeetingWarning,
)
from app.models.organisation import Organisation, OrganisationKind
from app.models.plan import Plan, PlanParticipant
from app.models.types import utcnow
from app.services import access, audit, plans
from app.services.access import VisiblePlan
from app.services.pagination import keyset_page

# Clients' clocks differ a little from ours: "not in the future" allows this much.
CLOCK_SKEW = timedelta(minutes=5)

OTHER_HUVUDMAN_WARNING = "no one from the other huvudman is invited"
_BOTH_HUVUDMAN = frozenset({OrganisationKind.kommun, OrganisationKind.region})


def _field_error(field: str, message: str) -> UnprocessableEntity:
    return UnprocessableEntity(message, errors=[{"field": field, "message": message}])


def _today() -> date:
    return datetime.now(UTC).date()


async def _organisations(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Organisation]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.execute(select(Organisation).where(col(Organisation.id).in_(wanted)))
    return {o.id: o for o in rows.scalars()}


async def _participating(session: AsyncSession, plan_id: uuid.UUID) -> set[uuid.UUID]:
    """The organisations taking part in the plan (as huvudman or other actor)."""
    rows = await session.execute(
        select(PlanParticipant.organisation_id).where(
            PlanParticipant.plan_id == plan_id,
            col(PlanParticipant.kind).in_(access.ORG_PARTICIPANT_KINDS),
        )
    )
    return {o for o in rows.scalars() if o is not None}


async def _readers(session: AsyncSession, plan_id: uuid.UUID, candidates: set[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `candidates` may read the plan now (the access rule, asked per organisation)."""
    readers = set()
    for organisation_id in candidates:
        visible = await session.scalar(
            select(Plan.id).where(Plan.id == plan_id, access.plan_visible_clause(organisation_id))
        )
        if visible is not None:
            readers.add(organisation_id)
    return readers


async def _check_invitees(
    session: AsyncSession, plan_id: uuid.UUID, ids: list[uuid.UUID], organiser: uuid.UUID
) -> list[uuid.UUID]:
    invitees = sorted(set(ids), key=str)
    if organiser in invitees:
        raise _field_error(
            "invitee_organisation_ids", "the organiser calls the meeting; list only the other organisations"
        )
    outsiders = [o for o in invitees if o not in await _participating(session, plan_id)]
    if outsiders:
        raise RuleViolation(
            "only organisations taking part in the plan can be invited",
            errors=[
                {
                    "field": "invitee_organisation_ids",
                    "rule": "invitee_participant",
                    "message": f"organisation {o} does not take part in the plan",
                }
                for o in outsiders
            ],
        )
    return invitees


def _warnings(
    meeting: Meeting,
    invitees: list[MeetingInvitee],
    orgs: dict[uuid.UUID, Organisation],
    readers: set[uuid.UUID],
) -> list[MeetingWarning]:
    """What a kallelse that is still to be held lacks."""
    if meeting.held_at is not None:
        return []
    out = []
    kinds = {
        orgs[o].kind
        for o in [meeting.organiser_organisation_id, *(i.organisation_id for i in invitees)]
        if o in orgs
    }
    if not kinds >= _BOTH_HUVUDMAN:
        out.append(MeetingWarning(code="meeting_without_other_huvudman", message=OTHER_HUVUDMAN_WARNING))
    for invitee in invitees:
        if invitee.organisation_id not in readers:
            org = orgs.get(invitee.organisation_id)
            name = org.name if org else str(invitee.organisation_id)
            out.append(
                MeetingWarning(
                    code="invitee_cannot_read_plan",
                    message=f"{name} is not covered by an active consent and cannot see the meeting",
                )
            )
    return out


async def _publics(session: AsyncSession, plan_id: uuid.UUID, meetings: list[Meeting]) -> list[MeetingPublic]:
    if not meetings:
        return []
    by_meeting: dict[uuid.UUID, list[MeetingInvitee]] = {m.id: [] for m in meetings}
    rows = await session.execute(
        select(MeetingInvitee)
        .where(col(MeetingInvitee.meeting_id).in_(by_meeting))
        .order_by(col(MeetingInvitee.organisation_id))
    )
    for invitee in rows.scalars():
        by_meeting[invitee.meeting_id].append(invitee)
    invited = {i.organisation_id for lst in by_meeting.values() for i in lst}
    orgs = await _organisations(session, invited | {m.organiser_organisation_id for m in meetings})
    pending = {i.organisation_id for m in meetings if m.held_at is None for i in by_meeting[m.id]}
    readers = await _readers(session, plan_id, pending)
    out = []
    for m in meetings:
        invitees = by_meeting[m.id]
        out.append(
            MeetingPublic(
                **m.model_dump(exclude={"attendees", "questions"}),
                questions=list(m.questions),
                attendees=[MeetingAttendee.model_validate(a) for a in m.attendees],
                invitees=[
                    MeetingInviteePublic(
                        **i.model_dump(),
                        organisation_name=orgs[i.organisation_id].name if i.organisation_id in orgs else None,
                        organisation_kind=(
                            orgs[i.organisation_id].kind.value if i.organisation_id in orgs else None
                        ),
                    )
                    for i in invitees
                ],
                warnings=_warnings(m, invitees, orgs, readers),
            )
        )
    return out


async def _public(session: AsyncSession, meeting: Meeting) -> MeetingPublic:
    return (await _publics(session, meeting.plan_id, [meeting]))[0]


async def _meeting(session: AsyncSession, plan_id: uuid.UUID, meeting_id: uuid.UUID) -> Meeting:
    meeting = await session.get(Meeting, meeting_id, populate_existing=True)
    if meeting is None or meeting.plan_id != plan_id:
        raise NotFound("no such meeting on this plan")
    return meeting


async def _commit(
    session: AsyncSession,
    vp: VisiblePlan,
    change: str,
    summary: dict[str, Any],
    if_match: int | None,
    object_type: str,
    object_id: uuid.UUID,
) -> int:
    snapshot = await plans._commit_change(
        session, vp, change, summary, expected_version=if_match, object_type=object_type, object_id=object_id
    )
    return snapshot.version


# ---- reading meetings ----------------------------------------------------------------------


async def list_meetings(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[MeetingPublic], str | None, int]:
    vp = await access.load_plan(session, p, plan_id)
    rows, next_cursor = await keyset_page(
        session,
        select(Meeting).where(Meeting.plan_id == plan_id),
        [col(Meeting.starts_at), col(Meeting.id)],
        limit=limit,
        cursor=cursor,
        key=lambda m: (m.starts_at.isoformat(), m.id),
        parse=(datetime.fromisoformat, uuid.UUID),
    )
    audit.record(session, p, "plan.meetings.read", "plan", plan_id, client_id=vp.plan.client_id)
    return await _publics(session, plan_id, rows), next_cursor, vp.plan.version


async def read_meeting(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, meeting_id: uuid.UUID
) -> tuple[MeetingPublic, int]:
    vp = await access.load_plan(session, p, plan_id)
    meeting = await _meeting(session, plan_id, meeting_id)
    audit.record(session, p, "plan.meeting.read", "meeting", meeting_id, client_id=vp.plan.client_id)
    return await _public(session, meeting), vp.plan.version


# ---- changing meetings ---------------------------------------------------------------------


async def invite(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, data: MeetingCreate, if_match: int | None
) -> tuple[MeetingPublic, int]:
    """A kallelse from the caller's organisation to participating organisations."""
    vp = await plans._load_for_change(session, p, plan_id, if_match)
    plans._require_open(vp.plan)
    now = utcnow()
    if data.starts_at <= now:
        raise _field_error("starts_at", "a meeting is called for a time in the future")
    invitees = await _check_invitees(session, plan_id, data.invitee_organisation_ids, p.organisation_id)
    meeting = Meeting(
        plan_id=plan_id,
        starts_at=data.starts_at,
        purpose=data.purpose,
        questions=data.questions,
        location=data.location,
        organiser_organisation_id=p.organisation_id,
        created_by=p.subject,
        created_at=now,
        updated_at=now,
    )
    session.add(meeting)
    await session.flush()
    for organisation_id in invitees:
        session.add(MeetingInvitee(meeting_id=meeting.id, plan_id=plan_id, organisation_id=organisation_id))
    summary = {
        "meeting_id": meeting.id,
        "starts_at": meeting.starts_at,
        "location": meeting.location,
        "invitee_organisation_ids": invitees,
    }
    version = await _commit(session, vp, "plan.meeting.invite", summary, if_match, "meeting", meeting.id)
    return await _public(session, meeting), version


async def answer(
    session: AsyncSession,
    p: Principal,
    plan_id: uuid.UUID,
    meeting_id: uuid.UUID,
    data: MeetingResponseCreate,
    if_match: int | None,
) -> tuple[MeetingPublic, int]:
    """An invited organisation accepts, declines or proposes another time, for itself."""
    vp = await plans._load_for_change(session, p, plan_id, if_match)
    meeting = await _meeting(session, plan_id, meeting_id)
    invitee = (
        await session.execute(
            select(MeetingInvitee).where(
                MeetingInvitee.meeting_id == meeting_id, MeetingInvitee.organisation_id == p.organisation_id
            )
        )
    ).scalar_one_or_none()
    if invitee is None:
        raise Forbidden("your organisation is not invited to this meeting; only invitees answer")
    plans._require_open(vp.plan)
    if meeting.held_at is not None:
        raise Conflict("the meeting is already held")
    now = utcnow()
    if data.response == MeetingAnswer.proposed_time:
        if data.proposed_starts_at is None:
            raise _field_error("proposed_starts_at", "propose a time with proposed_starts_at")
        if data.proposed_starts_at <= now:
            raise _field_error("proposed_starts_at", "propose a time in the future")
    elif data.proposed_starts_at is not None:
        raise _field_error("proposed_starts_at", "only a 'proposed_time' answer proposes a time")
    invitee.response = MeetingResponse(data.response.value)
    invitee.proposed_starts_at = data.proposed_starts_at
    invitee.comment = data.comment
    invitee.responded_at = now
    invitee.responded_by = p.subject
    summary = {
        "meeting_id": meeting_id,
        "organisation_id": p.organisation_id,
        "response": data.response,
        "proposed_starts_at": data.proposed_starts_at,
    }
    version = await _commit(
        session, vp, "plan.meeting.answer", summary, if_match, "meeting_invitee", invitee.id
    )
    return await _public(session, meeting), version


_PLANNING_FIELDS = ("starts_at", "purpose", "questions", "location", "invitee_organisation_ids")
_NOT_NULL = (*_PLANNING_FIELDS, "held_at", "attendees")


async def _check_attendees(session: AsyncSession, attendees: list[MeetingAttendee]) -> None:
    named = {a.organisation_id for a in attendees if a.organisation_id is not None}
    unknown = named - (await _organisations(session, named)).keys()
    if unknown:
        raise UnprocessableEntity(
            "attendees name organisations that do not exist",
            errors=[
                {"field": "attendees", "message": f"unknown organisation {o}"}
                for o in sorted(unknown, key=str)
            ],
        )


async def update(
    session: AsyncSession,
    p: Principal,
    plan_id: uuid.UUID,
    meeting_id: uuid.UUID,
    data: MeetingUpdate,
    if_match: int | None,
) -> tuple[MeetingPublic, int]:
    """Move, re-place or re-invite a meeting before it is held; hold it with attendees and minutes."""
    vp = await plans._load_for_change(session, p, plan_id, if_match)
    meeting = await _meeting(session, plan_id, meeting_id)
    plans._require_open(vp.plan)
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        raise _field_error("body", "nothing to change")
    for key in _NOT_NULL:
        if key in changes and changes[key] is None:
            raise _field_error(key, "may not be null")
    if meeting.held_at is not None and any(k in changes for k in _PLANNING_FIELDS):
        raise Conflict("the meeting is held; its time, place, purpose and invitees can no longer change")
    now = utcnow()
    if data.starts_at is not None and data.starts_at <= now:
        raise _field_error("starts_at", "a meeting is moved to a time in the future")
    held_at = data.held_at if data.held_at is not None else meeting.held_at
    if held_at is None and ("attendees" in changes or "record" in changes):
        raise _field_error("held_at", "attendees and minutes are recorded with when the meeting was held")
    if data.held_at is not None:
        if data.held_at > now + CLOCK_SKEW:
            raise _field_error("held_at", "a meeting cannot be held in the future")
        if data.held_at < meeting.created_at - CLOCK_SKEW:
            raise _field_error("held_at", "a meeting cannot be held before it was called")
    if data.attendees is not None:
        await _check_attendees(session, data.attendees)
    invitees: list[uuid.UUID] | None = None
    if data.invitee_organisation_ids is not None:
        invitees = await _check_invitees(
            session, plan_id, data.invitee_organisation_ids, meeting.organiser_organisation_id
        )

    holding = meeting.held_at is None and data.held_at is not None
    moved = data.starts_at is not None and data.starts_at != meeting.starts_at
    current = list(
        (
            await session.execute(select(MeetingInvitee).where(MeetingInvitee.meeting_id == meeting_id))
        ).scalars()
    )
    if invitees is not None:
        keep = set(invitees)
        for invitee in current:
            if invitee.organisation_id not in keep:
                await session.delete(invitee)
        have = {i.organisation_id for i in current}
        for organisation_id in invitees:
            if organisation_id not in have:
                session.add(
                    MeetingInvitee(meeting_id=meeting_id, plan_id=plan_id, organisation_id=organisation_id)
                )
        current = [i for i in current if i.organisation_id in keep]
    if moved:
        # The answers were to the old time: everyone answers again.
        for invitee in current:
            invitee.response = MeetingResponse.pending
            invitee.proposed_starts_at = invitee.comment = invitee.responded_at = invitee.responded_by = None
    for key in ("starts_at", "purpose", "questions", "location", "held_at", "record"):
        if key in changes:
            setattr(meeting, key, getattr(data, key))
    if data.attendees is not None:
        meeting.attendees = [a.model_dump(mode="json") for a in data.attendees]
    meeting.updated_at = now

    summary: dict[str, Any] = {"meeting_id": meeting_id, "changed": sorted(changes)}
    for key in ("starts_at", "location", "held_at"):
        if key in changes:
            summary[key] = changes[key]
    if invitees is not None:
        summary["invitee_organisation_ids"] = invitees
    if moved:
        summary["answers_reset"] = True
    change = "plan.meeting.hold" if holding else "plan.meeting.update"
    version = await _commit(session, vp, change, summary, if_match, "meeting", meeting_id)
    return await _public(session, meeting), version


# ---- follow-ups ----------------------------------------------------------------------------


def _follow_up_public(f: FollowUp) -> FollowUpPublic:
    return FollowUpPublic.model_validate(f, from_attributes=True)


async def _follow_up(session: AsyncSession, plan_id: uuid.UUID, follow_up_id: uuid.UUID) -> FollowUp:
    follow_up = await session.get(FollowUp, follow_up_id, populate_existing=True)
    if follow_up is None or follow_up.plan_id != plan_id:
        raise NotFound("no such follow-up on this plan")
    return follow_up


async def list_follow_ups(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[FollowUpPublic], str | None, int]:
    vp = await access.load_plan(session, p, plan_id)
    rows, next_cursor = await keyset_page(
        session,
        select(FollowUp).where(FollowUp.plan_id == plan_id),
        [col(FollowUp.due_date), col(FollowUp.id)],
        limit=limit,
        cursor=cursor,
        key=lambda f: (f.due_date.isoformat(), f.id),
        parse=(date.fromisoformat, uuid.UUID),
    )
    audit.record(session, p, "plan.follow_ups.read", "plan", plan_id, client_id=vp.plan.client_id)
    return [_follow_up_public(f) for f in rows], next_cursor, vp.plan.version


async def read_follow_up(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, follow_up_id: uuid.UUID
) -> tuple[FollowUpPublic, int]:
    vp = await access.load_plan(session, p, plan_id)
    follow_up = await _follow_up(session, plan_id, follow_up_id)
    audit.record(session, p, "plan.follow_up.read", "follow_up", follow_up_id, client_id=vp.plan.client_id)
    return _follow_up_public(follow_up), vp.plan.version


async def add_follow_up(
    session: AsyncSession, p: Principal, plan_id: uuid.UUID, data: FollowUpCreate, if_match: int | None
) -> tuple[FollowUpPublic, int]:
    """Schedule a follow-up. It becomes the plan's follow-up date when it comes before the plan's
    current one (or the plan has none, or only a date already passed)."""
    vp = await plans._load_for_change(session, p, plan_id, if_match)
    plan = vp.plan
    plans._require_open(plan)
    today = _today()
    if data.due_date < today:
        raise _field_error("due_date", "a follow-up is scheduled for today or later")
    existing = await session.scalar(
        select(FollowUp.id).where(
            FollowUp.plan_id == plan_id, FollowUp.due_date == data.due_date, col(FollowUp.held_date).is_(None)
        )
    )
    if existing is not None:
        raise Conflict(
            "the plan already has a follow-up due on that date", extra={"follow_up_id": str(existing)}
        )
    follow_up = FollowUp(
        plan_id=plan_id, due_date=data.due_date, created_by_organisation_id=p.organisation_id
    )
    session.add(follow_up)
    if plan.follow_up_date is None or plan.follow_up_date < today or data.due_date < plan.follow_up_date:
        plan.follow_up_date = data.due_date
    summary = {
        "follow_up_id": follow_up.id,
        "due_date": data.due_date,
        "plan_follow_up_date": plan.follow_up_date,
    }
    version = await _commit(session, vp, "plan.follow_up.add", summary, if_match, "follow_up", follow_up.id)
    return _follow_up_public(follow_up), version


async def record_follow_up(
    session: AsyncSession,
    p: Principal,
    plan_id: uuid.UUID,
    follow_up_id: uuid.UUID,
    data: FollowUpUpdate,
    if_match: int | None,
) -> tuple[FollowUpPublic, int]:
    """Record when a follow-up was held, its outcome, and the next follow-up date (which becomes
    the plan's follow-up date)."""
    vp = await plans._load_for_change(session, p, plan_id, if_match)
    plan = vp.plan
    follow_up = await _follow_up(session, plan_id, follow_up_id)
    plans._require_open(plan)
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        raise _field_error("body", "nothing to change")
    for key in ("held_date", "outcome_code"):
        if key in changes and changes[key] is None:
            raise _field_error(key, "may not be null")
    today = _today()
    held = data.held_date or follow_up.held_date
    if held is None:
        raise _field_error("held_date", "an outcome is recorded with the date the follow-up was held")
    if data.held_date is not None:
        if data.held_date > today:
            raise _field_error("held_date", "a follow-up cannot be held in the future")
        if data.held_date < plan.created_at.date():
            raise _field_error("held_date", "a follow-up cannot be held before the plan was started")
    if (data.outcome_code or follow_up.outcome_code) is None:
        raise _field_error("outcome_code", "record the outcome of the follow-up")
    next_date = data.next_follow_up_date
    if next_date is not None:
        if next_date <= held:
            raise _field_error("next_follow_up_date", "the next follow-up comes after this one was held")
        if next_date < today:
            raise _field_error("next_follow_up_date", "the next follow-up date is already past")
    for key in ("held_date", "outcome_code", "outcome_text", "next_follow_up_date"):
        if key in changes:
            setattr(follow_up, key, getattr(data, key))
    follow_up.recorded_by_organisation_id = p.organisation_id
    follow_up.recorded_at = utcnow()
    if next_date is not None:
        plan.follow_up_date = next_date
    summary = {
        "follow_up_id": follow_up_id,
        **changes,
        "plan_follow_up_date": plan.follow_up_date,
    }
    version = await _commit(
        session, vp, "plan.follow_up.record", summary, if_match, "follow_up", follow_up_id
    )
    return _follow_up_public(follow_up), version
