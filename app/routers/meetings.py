"""Meetings (kallelse, answers, minutes) and follow-ups of a plan. Every change bumps the plan's
version, which the responses carry as their `ETag`; `If-Match` is checked when given."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse

from app.deps import IdempotencyDep, IfMatchOptional, PrincipalDep, SessionDep, format_etag
from app.models.meeting import (
    FollowUpCreate,
    FollowUpPublic,
    FollowUpUpdate,
    MeetingCreate,
    MeetingPublic,
    MeetingResponseCreate,
    MeetingUpdate,
)
from app.services import meetings as service
from app.services.pagination import DEFAULT_LIMIT, Cursor, Limit, Page

router = APIRouter(prefix="/api/v1/plans/{plan_id}", tags=["meetings and follow-ups"])

_READ_RESPONSES: dict[int | str, dict[str, str]] = {
    404: {"description": "no such plan, meeting or follow-up within your reach"},
}
_CHANGE_RESPONSES: dict[int | str, dict[str, str]] = {
    **_READ_RESPONSES,
    403: {"description": "your role or organisation may not make this change"},
    409: {"description": "the meeting or follow-up is in a state that does not allow this change"},
    412: {"description": "If-Match does not match the plan's current version"},
    422: {"description": "invalid input, or a domain rule is not met (a closed plan: rule plan_open)"},
}
_ETAG = {
    "ETag": {"description": "the plan's version after the change, for If-Match", "schema": {"type": "string"}}
}


# ---- meetings ------------------------------------------------------------------------------


@router.post(
    "/meetings",
    status_code=status.HTTP_201_CREATED,
    response_model=MeetingPublic,
    summary="Call a meeting (kallelse) with participating organisations",
    description=(
        "The caller's organisation organises. Invitees must take part in the plan and the meeting "
        "must start in the future. `warnings` tells when the organiser and invitees do not include "
        "both a kommun and a region, or when an invitee cannot read the plan."
    ),
    responses={**_CHANGE_RESPONSES, 201: {"description": "the meeting", "headers": _ETAG}},
)
async def create_meeting(
    plan_id: uuid.UUID,
    data: MeetingCreate,
    session: SessionDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatchOptional,
) -> JSONResponse:
    meeting, version = await service.invite(session, principal, plan_id, data, if_match)
    headers = {"ETag": format_etag(version), "Location": f"/api/v1/plans/{plan_id}/meetings/{meeting.id}"}
    return await idem.respond(session, 201, meeting, headers)


@router.get(
    "/meetings",
    response_model=Page[MeetingPublic],
    summary="The plan's meetings, by start time",
    responses=_READ_RESPONSES,
)
async def list_meetings(
    plan_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[MeetingPublic]:
    items, next_cursor, version = await service.list_meetings(
        session, principal, plan_id, limit=limit, cursor=cursor
    )
    response.headers["ETag"] = format_etag(version)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/meetings/{meeting_id}",
    response_model=MeetingPublic,
    summary="One meeting with its invitees' answers and, once held, its minutes",
    responses=_READ_RESPONSES,
)
async def get_meeting(
    plan_id: uuid.UUID,
    meeting_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
) -> MeetingPublic:
    meeting, version = await service.read_meeting(session, principal, plan_id, meeting_id)
    response.headers["ETag"] = format_etag(version)
    return meeting


@router.post(
    "/meetings/{meeting_id}/responses",
    response_model=MeetingPublic,
    summary="An invited organisation accepts, declines or proposes another time",
    description="Only an invited organisation answers, and only for itself; others get 403.",
    responses={**_CHANGE_RESPONSES, 200: {"description": "the meeting", "headers": _ETAG}},
)
async def answer_meeting(
    plan_id: uuid.UUID,
    meeting_id: uuid.UUID,
    data: MeetingResponseCreate,
    session: SessionDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatchOptional,
) -> JSONResponse:
    meeting, version = await service.answer(session, principal, plan_id, meeting_id, data, if_match)
    return await idem.respond(session, 200, meeting, {"ETag": format_etag(version)})


@router.patch(
    "/meetings/{meeting_id}",
    response_model=MeetingPublic,
    summary="Move or re-place a meeting, change its invitees, or hold it with attendees and minutes",
    description=(
        "Time, place, purpose, questions and invitees change only before the meeting is held; a new "
        "time sets every answer back to pending. `held_at` (not in the future) holds the meeting; "
        "`attendees` and `record` (the minutes) go with it."
    ),
    responses={**_CHANGE_RESPONSES, 200: {"description": "the meeting", "headers": _ETAG}},
)
async def update_meeting(
    plan_id: uuid.UUID,
    meeting_id: uuid.UUID,
    data: MeetingUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchOptional,
    response: Response,
) -> MeetingPublic:
    meeting, version = await service.update(session, principal, plan_id, meeting_id, data, if_match)
    response.headers["ETag"] = format_etag(version)
    return meeting


# ---- follow-ups ----------------------------------------------------------------------------


@router.post(
    "/follow-ups",
    status_code=status.HTTP_201_CREATED,
    response_model=FollowUpPublic,
    summary="Schedule a follow-up of the plan",
    description=(
        "The due date is today or later. It becomes the plan's `follow_up_date` when it comes "
        "before the plan's current one, or the plan has none or only a past one."
    ),
    responses={**_CHANGE_RESPONSES, 201: {"description": "the follow-up", "headers": _ETAG}},
)
async def create_follow_up(
    plan_id: uuid.UUID,
    data: FollowUpCreate,
    session: SessionDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatchOptional,
) -> JSONResponse:
    follow_up, version = await service.add_follow_up(session, principal, plan_id, data, if_match)
    headers = {"ETag": format_etag(version), "Location": f"/api/v1/plans/{plan_id}/follow-ups/{follow_up.id}"}
    return await idem.respond(session, 201, follow_up, headers)


@router.get(
    "/follow-ups",
    response_model=Page[FollowUpPublic],
    summary="The plan's follow-ups, by due date",
    responses=_READ_RESPONSES,
)
async def list_follow_ups(
    plan_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[FollowUpPublic]:
    items, next_cursor, version = await service.list_follow_ups(
        session, principal, plan_id, limit=limit, cursor=cursor
    )
    response.headers["ETag"] = format_etag(version)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/follow-ups/{follow_up_id}",
    response_model=FollowUpPublic,
    summary="One follow-up",
    responses=_READ_RESPONSES,
)
async def get_follow_up(
    plan_id: uuid.UUID,
    follow_up_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
) -> FollowUpPublic:
    follow_up, version = await service.read_follow_up(session, principal, plan_id, follow_up_id)
    response.headers["ETag"] = format_etag(version)
    return follow_up


@router.patch(
    "/follow-ups/{follow_up_id}",
    response_model=FollowUpPublic,
    summary="Record a follow-up: held date, outcome and the next follow-up date",
    description=(
        "`held_date` is not in the future and comes with `outcome_code`; an outcome without a held "
        "date is refused. `next_follow_up_date` becomes the plan's `follow_up_date`."
    ),
    responses={**_CHANGE_RESPONSES, 200: {"description": "the follow-up", "headers": _ETAG}},
)
async def record_follow_up(
    plan_id: uuid.UUID,
    follow_up_id: uuid.UUID,
    data: FollowUpUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchOptional,
    response: Response,
) -> FollowUpPublic:
    follow_up, version = await service.record_follow_up(
        session, principal, plan_id, follow_up_id, data, if_match
    )
    response.headers["ETag"] = format_etag(version)
    return follow_up
