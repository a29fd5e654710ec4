from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import PrincipalDep, SessionDep
from app.models.events import EventPublic
from app.services import events as service
from app.services.pagination import DEFAULT_LIMIT, Limit, Page

router = APIRouter(prefix="/api/v1/events", tags=["events"])

# `seq` is a BIGINT: a larger `after` is refused as invalid rather than overflowing the driver.
_MAX_SEQ = 2**63 - 1


@router.get(
    "",
    response_model=Page[EventPublic],
    summary="The events addressed to your organisation, oldest first (system)",
    description="Pass the last `seq` you processed as `after`; `next_cursor` is that value for the next call.",
)
async def pull_events(
    session: SessionDep,
    principal: PrincipalDep,
    after: Annotated[int, Query(ge=0, le=_MAX_SEQ, description="the last seq already processed")] = 0,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[EventPublic]:
    rows = await service.feed(session, principal, after=after, limit=limit)
    items = [EventPublic.model_validate(e, from_attributes=True) for e in rows]
    return Page(items=items, next_cursor=str(items[-1].seq) if items else str(after))
