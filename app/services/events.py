"""Domain events: written to the outbox in the same transaction as the change, addressed to the
organisations that may read the plan at that moment, and queued for their webhooks."""

from __future__ import annotations

import secrets
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth import policies
from app.auth.principal import Principal
from app.config import Settings
from app.db import system_scope
from app.errors import NotFound, UnprocessableEntity
from app.models.events import (
    AttemptPublic,
    DeliveryPublic,
    EventRecipient,
    EventType,
    OutboxEvent,
    Webhook,
    WebhookAttempt,
    WebhookCreate,
    WebhookDelivery,
)
from app.models.plan import Plan, PlanParticipant
from app.models.types import utcnow
from app.services import access
from app.services.pagination import MAX_LIMIT

# Plan changes (plans._commit_change names) and the events they raise.
CHANGE_EVENTS: dict[str, tuple[EventType, ...]] = {
    "plan.create": (EventType.plan_created,),
    "plan.activate": (EventType.plan_activated,),
    "plan.pause": (EventType.plan_paused,),
    "plan.close": (EventType.plan_closed,),
    "plan.cancel": (EventType.plan_cancelled,),
    "plan.action.propose": (EventType.action_proposed,),
    # An organisation adding its own action has accepted it at once.
    "plan.action.add": (EventType.action_accepted,),
    "plan.action.accept": (EventType.action_accepted,),
    "plan.action.dispute": (EventType.action_disputed,),
    "plan.consent.give": (EventType.consent_given,),
    "plan.consent.withdraw": (EventType.consent_withdrawn,),
    "plan.meeting.invite": (EventType.meeting_invited,),
    "plan.meeting.answer": (EventType.meeting_answered,),
    "plan.meeting.hold": (EventType.meeting_held,),
}


async def plan_readers(session: AsyncSession, plan: Plan) -> set[uuid.UUID]:
    """The organisations that may read the plan now: the same rule as access.plan_visible_clause."""
    participants = (
        await session.execute(
            select(PlanParticipant.organisation_id).where(
                PlanParticipant.plan_id == plan.id,
                col(PlanParticipant.kind).in_(access.ORG_PARTICIPANT_KINDS),
            )
        )
    ).scalars()
    candidates = {o for o in participants if o is not None} | {plan.initiating_organisation_id}
    readers = set()
    for org in candidates:
        visible = await session.scalar(
            select(Plan.id).where(Plan.id == plan.id, access.plan_visible_clause(org))
        )
        if visible is not None:
            readers.add(org)
    return readers


async def emit(
    session: AsyncSession,
    event_type: EventType,
    *,
    plan: Plan | None,
    actor_organisation_id: uuid.UUID | None,
    payload: dict[str, Any],
    dedupe_key: str | None = None,
) -> OutboxEvent | None:
    """Write the event, its recipients and its webhook deliveries. Ids and types only in `payload`.
    Returns None when an event with the same dedupe key exists already."""
    async with system_scope(session):  # recipients and deliveries belong to other organisations
        event = OutboxEvent(
            event_type=event_type,
            plan_id=plan.id if plan else None,
            actor_organisation_id=actor_organisation_id,
            payload={"plan_id": str(plan.id) if plan else None, **payload},
            dedupe_key=dedupe_key,
        )
        try:
            # Added inside the savepoint: begin_nested() flushes what is pending first, so an event
            # added before it would hit the dedupe constraint outside the savepoint and spoil the
            # whole transaction instead of being skipped.
            async with session.begin_nested():
                session.add(event)
                await session.flush()
        except IntegrityError:
            if dedupe_key is None:
                raise
            return None
        assert event.seq is not None
        recipients = await plan_readers(session, plan) if plan else set()
        for organisation_id in sorted(recipients, key=str):
            session.add(EventRecipient(event_seq=event.seq, organisation_id=organisation_id))
        if recipients:
            hooks = (
                await session.execute(
                    select(Webhook).where(
                        col(Webhook.organisation_id).in_(recipients),
                        col(Webhook.active).is_(True),
                        col(Webhook.deleted_at).is_(None),
                    )
                )
            ).scalars()
            for hook in hooks:
                if event_type.value in hook.event_types:
                    session.add(
                        WebhookDelivery(
                            webhook_id=hook.id,
                            organisation_id=hook.organisation_id,
                            event_seq=event.seq,
                            next_attempt_at=event.occurred_at,
                        )
                    )
        await session.flush()
    return event


async def emit_for_change(
    session: AsyncSession, change: str, plan: Plan, p: Principal, summary: dict[str, Any]
) -> None:
    """Raise the events a plan change stands for (plans._commit_change calls this)."""
    ids = {k: str(v) for k, v in summary.items() if k.endswith("_id") and v is not None}
    for event_type in CHANGE_EVENTS.get(change, ()):
        await emit(
            session,
            event_type,
            plan=plan,
            actor_organisation_id=p.organisation_id,
            payload={"status": plan.status.value, "version": plan.version, **ids},
        )
    if change == "plan.consent.withdraw" and summary.get("plan_paused"):
        await emit(
            session,
            EventType.plan_paused,
            plan=plan,
            actor_organisation_id=p.organisation_id,
            payload={"status": plan.status.value, "version": plan.version, "reason": "consent_withdrawn"},
        )


# ---- pull feed -----------------------------------------------------------------------------


async def feed(session: AsyncSession, p: Principal, *, after: int, limit: int) -> list[OutboxEvent]:
    """Events addressed to the caller's organisation after `after`, oldest first."""
    policies.require(policies.may_pull_events(p))
    limit = min(limit, MAX_LIMIT)
    rows = await session.execute(
        select(OutboxEvent)
        .join(EventRecipient, col(EventRecipient.event_seq) == col(OutboxEvent.seq))
        .where(EventRecipient.organisation_id == p.organisation_id, col(OutboxEvent.seq) > after)
        .order_by(col(OutboxEvent.seq))
        .limit(limit)
    )
    return list(rows.scalars())


# ---- webhooks ------------------------------------------------------------------------------


def _check_url(url: str, settings: Settings) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port or 443  # raises ValueError for a port out of range or not a number
    except ValueError:
        raise UnprocessableEntity(
            "the webhook URL is not a valid URL", errors=[{"field": "url", "message": "not a valid URL"}]
        ) from None
    if parts.scheme != "https" or not parts.hostname:
        raise UnprocessableEntity(
            "webhook URLs must be https", errors=[{"field": "url", "message": "must be an https URL"}]
        )
    if parts.username or parts.password:
        raise UnprocessableEntity(
            "webhook URLs may not carry credentials",
            errors=[{"field": "url", "message": "no user:password@"}],
        )
    own = urlsplit(settings.public_base_url)
    default_port = {"https": 443, "http": 80}
    own_port = own.port or default_port.get(own.scheme, 0)
    # Host names compare without case and without the root label's trailing dot.
    if parts.hostname.lower().rstrip(".") == (own.hostname or "").lower().rstrip(".") and port == own_port:
        raise UnprocessableEntity(
            "a webhook may not point at Samplan itself",
            errors=[{"field": "url", "message": "points at this service"}],
        )
    return url


async def create_webhook(
    session: AsyncSession, p: Principal, data: WebhookCreate, settings: Settings
) -> Webhook:
    policies.require(policies.may_manage_webhooks(p))
    url = _check_url(data.url, settings)
    hook = Webhook(
        organisation_id=p.organisation_id,
        url=url,
        event_types=sorted({e.value for e in data.event_types}),
        description=data.description,
        secret=secrets.token_urlsafe(32),
        created_by=p.subject,
    )
    session.add(hook)
    await session.flush()
    return hook


async def list_webhooks(session: AsyncSession, p: Principal) -> list[Webhook]:
    policies.require(policies.may_manage_webhooks(p))
    rows = await session.execute(
        select(Webhook)
        .where(Webhook.organisation_id == p.organisation_id, col(Webhook.deleted_at).is_(None))
        .order_by(col(Webhook.created_at))
    )
    return list(rows.scalars())


async def _own_webhook(session: AsyncSession, p: Principal, webhook_id: uuid.UUID) -> Webhook:
    hook = await session.get(Webhook, webhook_id)
    if hook is None or hook.organisation_id != p.organisation_id or hook.deleted_at is not None:
        raise NotFound("no such webhook")
    policies.require(policies.may_manage_webhooks(p))
    return hook


async def delete_webhook(session: AsyncSession, p: Principal, webhook_id: uuid.UUID) -> None:
    hook = await _own_webhook(session, p, webhook_id)
    hook.active = False
    hook.deleted_at = utcnow()
    await session.flush()


async def deliveries(
    session: AsyncSession, p: Principal, webhook_id: uuid.UUID, *, limit: int
) -> list[DeliveryPublic]:
    await _own_webhook(session, p, webhook_id)
    rows = (
        await session.execute(
            select(WebhookDelivery, OutboxEvent.id, OutboxEvent.event_type)
            .join(OutboxEvent, col(OutboxEvent.seq) == col(WebhookDelivery.event_seq))
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(col(WebhookDelivery.created_at).desc())
            .limit(limit)
        )
    ).all()
    ids = [d.id for d, _, _ in rows]
    attempts: dict[uuid.UUID, list[AttemptPublic]] = {i: [] for i in ids}
    if ids:
        for a in (
            await session.execute(
                select(WebhookAttempt)
                .where(col(WebhookAttempt.delivery_id).in_(ids))
                .order_by(col(WebhookAttempt.attempt))
            )
        ).scalars():
            attempts[a.delivery_id].append(AttemptPublic.model_validate(a, from_attributes=True))
    return [
        DeliveryPublic(
            id=d.id,
            event_id=event_id,
            event_type=EventType(event_type),
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
            attempt_log=attempts[d.id],
        )
        for d, event_id, event_type in rows
    ]
