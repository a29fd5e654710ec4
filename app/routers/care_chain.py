from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from app.deps import IdempotencyDep, PrincipalDep, SessionDep
from app.models.care_chain import (
    CoordinatorAssign,
    CoordinatorAssignmentPublic,
    EpisodeCreate,
    EpisodePublic,
    EpisodeUpdate,
)
from app.services import care_chain as service
from app.services.timeline import TimelineItem, timeline

router = APIRouter(prefix="/api/v1/clients/{client_id}", tags=["care chain"])

_RESPONSES: dict[int | str, dict[str, str]] = {
    404: {"description": "no such client or episode within your reach"},
    422: {"description": "invalid input, or a care-chain rule is not met (every broken rule listed)"},
}


@router.post(
    "/episodes",
    status_code=status.HTTP_201_CREATED,
    response_model=EpisodePublic,
    summary="Record an episode of the care chain (LVM phases, aftercare)",
    responses=_RESPONSES,
)
async def record_episode(
    client_id: uuid.UUID,
    data: EpisodeCreate,
    session: SessionDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
) -> Response:
    episode = await service.record_episode(session, principal, client_id, data)
    body = EpisodePublic.model_validate(episode, from_attributes=True)
    return await idem.respond(
        session, 201, body, {"Location": f"/api/v1/clients/{client_id}/episodes/{episode.id}"}
    )


@router.get("/episodes", response_model=list[EpisodePublic], summary="The client's episodes you may see")
async def list_episodes(
    client_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> list[EpisodePublic]:
    rows = await service.list_episodes(session, principal, client_id)
    return [EpisodePublic.model_validate(e, from_attributes=True) for e in rows]


@router.patch(
    "/episodes/{episode_id}",
    response_model=EpisodePublic,
    summary="Change an episode's dates or unit (recording organisation or responsible kommun)",
    responses=_RESPONSES,
)
async def update_episode(
    client_id: uuid.UUID,
    episode_id: uuid.UUID,
    data: EpisodeUpdate,
    session: SessionDep,
    principal: PrincipalDep,
) -> EpisodePublic:
    episode = await service.update_episode(session, principal, client_id, episode_id, data)
    return EpisodePublic.model_validate(episode, from_attributes=True)


@router.post(
    "/coordinators",
    status_code=status.HTTP_201_CREATED,
    response_model=CoordinatorAssignmentPublic,
    summary="Assign the client's samordnare; a hand-over ends the previous assignment and needs a note",
    responses=_RESPONSES,
)
async def assign_coordinator(
    client_id: uuid.UUID,
    data: CoordinatorAssign,
    session: SessionDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
) -> Response:
    assignment = await service.assign_coordinator(session, principal, client_id, data)
    body = CoordinatorAssignmentPublic.model_validate(assignment, from_attributes=True)
    return await idem.respond(session, 201, body)


@router.get(
    "/coordinators",
    response_model=list[CoordinatorAssignmentPublic],
    summary="Samordnare periods, oldest first",
)
async def list_coordinators(
    client_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> list[CoordinatorAssignmentPublic]:
    return await service.list_coordinators(session, principal, client_id)


@router.get(
    "/timeline",
    response_model=list[TimelineItem],
    summary="Episodes, plan events and samordnare periods in time order, as far as you may see them",
)
async def get_timeline(
    client_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> list[TimelineItem]:
    return await timeline(session, principal, client_id)
