"""The audit trail: who, from which organisation, in which role, did what, to what, when.

Services call `record`; the request's unit of work calls `flush` just before commit, so the events
land in the same transaction as the change they describe, and the chain lock is held briefly.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.auth.principal import Principal
from app.models.audit import AuditChainHead, AuditEvent
from app.models.types import new_id, utcnow

GENESIS = "0" * 64
_PENDING = "samplan_audit_pending"


@dataclass(frozen=True)
class _Pending:
    principal: Principal
    action: str
    object_type: str
    object_id: str | None
    client_id: uuid.UUID | None
    request_id: str | None
    occurred_at: datetime
    keep_on_failure: bool = False


def record(
    session: AsyncSession,
    principal: Principal,
    action: str,
    object_type: str,
    object_id: uuid.UUID | str | None = None,
    *,
    client_id: uuid.UUID | None = None,
    keep_on_failure: bool = False,
) -> None:
    """Queue an audit event for this transaction. Never put personal numbers or names here.

    `keep_on_failure`: the event records an attempt (a refused look-up) and is kept even when the
    request fails and its changes are rolled back."""
    session.info.setdefault(_PENDING, []).append(
        _Pending(
            principal=principal,
            action=action,
            object_type=object_type,
            object_id=str(object_id) if object_id is not None else None,
            client_id=client_id,
            request_id=session.info.get("request_id"),
            occurred_at=utcnow(),
            keep_on_failure=keep_on_failure,
        )
    )


def keep_only_attempts(session: AsyncSession) -> bool:
    """After a failed request: drop the queued events of changes that did not happen, keep the
    recorded attempts. True when any remain to be written."""
    pending: list[_Pending] = session.info.get(_PENDING, [])
    session.info[_PENDING] = [e for e in pending if e.keep_on_failure]
    return bool(session.info[_PENDING])


def event_hash(pepper: str, prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{pepper}|{prev_hash}|{canonical}".encode()).hexdigest()


_HASHED = (
    "id",
    "organisation_id",
    "seq",
    "occurred_at",
    "actor_subject",
    "actor_name",
    "actor_roles",
    "action",
    "object_type",
    "object_id",
    "client_id",
    "request_id",
)


def _hashed_row(row: dict[str, Any]) -> dict[str, Any]:
    """What the hash covers, in the form it is hashed in (the same for a new row and a stored one)."""
    return {
        "id": str(row["id"]),
        "organisation_id": str(row["organisation_id"]),
        "seq": row["seq"],
        "occurred_at": row["occurred_at"].isoformat(),
        "actor_subject": row["actor_subject"],
        "actor_name": row["actor_name"],
        "actor_roles": row["actor_roles"],
        "action": row["action"],
        "object_type": row["object_type"],
        "object_id": row["object_id"],
        "client_id": str(row["client_id"]) if row["client_id"] else None,
        "request_id": row["request_id"],
    }


def _hashed_fields(event: AuditEvent) -> dict[str, Any]:
    return _hashed_row({name: getattr(event, name) for name in _HASHED})


_HEAD = AuditChainHead.__table__  # type: ignore[attr-defined]
_EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]
# Built once: this runs in every request that touches client data.
_LOCK_HEAD = (
    sa_select(_HEAD.c.last_seq, _HEAD.c.last_hash)
    .where(_HEAD.c.organisation_id == bindparam("head_org"))
    .with_for_update()
)
_MOVE_HEAD = (
    sa_update(_HEAD)
    .where(_HEAD.c.organisation_id == bindparam("head_org"))
    .values(last_seq=bindparam("new_seq"), last_hash=bindparam("new_hash"))
)
_INSERT_EVENTS = sa_insert(_EVENTS)


async def _lock_head(session: AsyncSession, organisation_id: uuid.UUID) -> tuple[int, str]:
    """The organisation's chain head, locked until commit; created on the organisation's first event."""
    params = {"head_org": organisation_id}
    head = (await session.execute(_LOCK_HEAD, params)).one_or_none()
    if head is None:
        dialect = session.bind.dialect.name if session.bind else "sqlite"
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await session.execute(
            insert(AuditChainHead)
            .values(organisation_id=organisation_id, last_seq=0, last_hash=GENESIS)
            .on_conflict_do_nothing(index_elements=["organisation_id"])
        )
        head = (await session.execute(_LOCK_HEAD, params)).one()
    return int(head.last_seq), str(head.last_hash)


async def flush(session: AsyncSession, pepper: str) -> int:
    """Append the queued events to their organisations' chains. Returns how many."""
    pending: list[_Pending] = session.info.pop(_PENDING, [])
    if not pending:
        return 0
    by_org: dict[uuid.UUID, list[_Pending]] = {}
    for item in pending:
        by_org.setdefault(item.principal.organisation_id, []).append(item)
    for organisation_id in sorted(by_org):  # a fixed order, so two flushes never deadlock
        seq, prev = await _lock_head(session, organisation_id)
        rows: list[dict[str, Any]] = []
        for item in by_org[organisation_id]:
            seq += 1
            row: dict[str, Any] = {
                "id": new_id(),
                "organisation_id": organisation_id,
                "seq": seq,
                "occurred_at": item.occurred_at,
                "actor_subject": item.principal.subject,
                "actor_name": item.principal.name,
                "actor_roles": item.principal.roles_text,
                "action": item.action,
                "object_type": item.object_type,
                "object_id": item.object_id,
                "client_id": item.client_id,
                "request_id": item.request_id,
                "prev_hash": prev,
            }
            row["hash"] = prev = event_hash(pepper, prev, _hashed_row(row))
            rows.append(row)
        await session.execute(_INSERT_EVENTS, rows)
        await session.execute(_MOVE_HEAD, {"head_org": organisation_id, "new_seq": seq, "new_hash": prev})
    return len(pending)


@dataclass(frozen=True)
class ChainReport:
    organisation_id: uuid.UUID
    ok: bool
    events_checked: int
    first_broken_seq: int | None = None
    reason: str | None = None


async def verify_chain(
    session: AsyncSession, organisation_id: uuid.UUID, pepper: str, batch: int = 5000
) -> ChainReport:
    """Walk one organisation's chain in order and name the first broken link.

    The head is read first and bounds the walk: events that other transactions append while the
    walk runs lie beyond it and are left for the next run, instead of looking like a cut-off tail.
    (Events and their head commit together, so every event up to the head is visible by then.)"""
    head_stmt = select(AuditChainHead.last_seq, AuditChainHead.last_hash).where(
        AuditChainHead.organisation_id == organisation_id
    )
    head = (await session.execute(head_stmt)).one_or_none()
    prev = GENESIS
    expected_seq = 1
    checked = 0
    while True:
        stmt = select(AuditEvent).where(
            AuditEvent.organisation_id == organisation_id,
            AuditEvent.seq >= expected_seq,
        )
        if head is not None:
            stmt = stmt.where(AuditEvent.seq <= head.last_seq)
        rows = (
            (
                await session.execute(
                    stmt.order_by(AuditEvent.seq)  # type: ignore[arg-type]
                    .limit(batch)
                    .execution_options(populate_existing=True)  # what is stored, not what is cached
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for event in rows:
            if event.seq != expected_seq:
                return ChainReport(organisation_id, False, checked, expected_seq, "an event is missing")
            if event.prev_hash != prev:
                return ChainReport(
                    organisation_id, False, checked, event.seq, "the link to the previous event is broken"
                )
            if event_hash(pepper, prev, _hashed_fields(event)) != event.hash:
                return ChainReport(organisation_id, False, checked, event.seq, "the event was altered")
            prev = event.hash
            expected_seq += 1
            checked += 1
        session.expunge_all()
    if head is None:
        # No head when the walk began: either the chain was empty then (and its first events
        # committed since, with their head), or the head was removed.
        if checked and (await session.execute(head_stmt)).one_or_none() is None:
            return ChainReport(organisation_id, False, checked, checked + 1, "the chain head is missing")
        return ChainReport(organisation_id, True, checked)
    if head.last_seq != checked or head.last_hash != prev:
        return ChainReport(
            organisation_id, False, checked, checked + 1, "events after this point were removed"
        )
    return ChainReport(organisation_id, True, checked)
