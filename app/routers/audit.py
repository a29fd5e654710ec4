from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from app.deps import PrincipalDep, SessionDep, SettingsDep
from app.models.audit import AuditEventPublic
from app.services import audit_review
from app.services.pagination import DEFAULT_LIMIT, Cursor, Limit, Page

router = APIRouter(prefix="/api/v1/audit-events", tags=["audit"])


class ChainVerification(BaseModel):
    organisation_id: uuid.UUID
    ok: bool
    events_checked: int
    first_broken_seq: int | None
    reason: str | None


@router.get("", response_model=Page[AuditEventPublic], summary="Your organisation's access log (auditor)")
async def list_events(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    client_id: uuid.UUID | None = None,
    actor_subject: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditEventPublic]:
    rows, next_cursor = await audit_review.list_events(
        session,
        principal,
        limit=limit,
        cursor=cursor,
        client_id=client_id,
        actor_subject=actor_subject,
        action=action,
        since=since,
        until=until,
    )
    return Page(
        items=[AuditEventPublic.model_validate(e, from_attributes=True) for e in rows],
        next_cursor=next_cursor,
    )


@router.get("/verify", response_model=ChainVerification, summary="Walk your organisation's hash chain")
async def verify(session: SessionDep, principal: PrincipalDep, settings: SettingsDep) -> ChainVerification:
    report = await audit_review.verify_own_chain(session, principal, settings.audit_pepper)
    return ChainVerification(
        organisation_id=report.organisation_id,
        ok=report.ok,
        events_checked=report.events_checked,
        first_broken_seq=report.first_broken_seq,
        reason=report.reason,
    )
