"""Logguppföljning: an organisation's auditor reviews its own staff's access."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.auth import policies
from app.auth.principal import Principal
from app.config import Settings
from app.db import SYSTEM, Database
from app.errors import BadRequest
from app.models.audit import AuditEvent
from app.models.organisation import Organisation
from app.services import audit
from app.services.pagination import keyset_page


async def list_events(
    session: AsyncSession,
    p: Principal,
    *,
    limit: int,
    cursor: str | None,
    client_id: uuid.UUID | None = None,
    actor_subject: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[AuditEvent], str | None]:
    policies.require(policies.may_read_audit(p))
    for value in (since, until):
        if value is not None and value.tzinfo is None:
            raise BadRequest("'since' and 'until' need a UTC offset")
    stmt = select(AuditEvent).where(AuditEvent.organisation_id == p.organisation_id)
    if client_id is not None:
        stmt = stmt.where(AuditEvent.client_id == client_id)
    if actor_subject is not None:
        stmt = stmt.where(AuditEvent.actor_subject == actor_subject)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    if since is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.occurred_at < until)
    rows, next_cursor = await keyset_page(
        session, stmt, [AuditEvent.seq], limit=limit, cursor=cursor, key=lambda e: (e.seq,), parse=(int,)
    )
    # Reviewing the log is itself an access worth recording.
    audit.record(session, p, "audit.review", "audit_event", client_id=client_id)
    return rows, next_cursor


async def verify_own_chain(session: AsyncSession, p: Principal, pepper: str) -> audit.ChainReport:
    policies.require(policies.may_read_audit(p))
    return await audit.verify_chain(session, p.organisation_id, pepper)


async def verify_all_chains(settings: Settings) -> list[tuple[str, audit.ChainReport]]:
    """Every organisation's chain, for `samplan audit verify`."""
    db = Database(settings)
    try:
        async with db.session(SYSTEM) as session:
            orgs = (await session.execute(select(Organisation).order_by(Organisation.name))).scalars().all()
            reports = []
            for org in orgs:
                reports.append((org.name, await audit.verify_chain(session, org.id, settings.audit_pepper)))
            return reports
    finally:
        await db.dispose()
