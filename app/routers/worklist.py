from __future__ import annotations

from fastapi import APIRouter, Query

from app.deps import PrincipalDep, SessionDep
from app.errors import BadRequest
from app.services.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, encode_cursor
from app.services.worklist import Signal, WorklistItem, worklist

router = APIRouter(prefix="/api/v1/worklist", tags=["worklist"])


@router.get(
    "",
    response_model=Page[WorklistItem],
    summary="Signals for your clients, most urgent first",
    description=(
        "Discharges without an aftercare plan, LVM care nearing six months, follow-ups due or overdue, "
        "and actions proposed to your organisation that nobody has answered."
    ),
)
async def get_worklist(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    signal: list[Signal] | None = Query(default=None, description="only these signals"),
) -> Page[WorklistItem]:
    # The list is ordered by urgency; the cursor is the position after the last item sent.
    start = 0
    if cursor:
        position = decode_cursor(cursor, 1)[0]
        if not (position.isascii() and position.isdigit()):
            raise BadRequest("the cursor is not one this service issued")
        start = int(position)
    page, more = await worklist(
        session, principal, signals=set(signal) if signal else None, start=start, limit=limit
    )
    return Page(items=page, next_cursor=encode_cursor([start + limit]) if more else None)
