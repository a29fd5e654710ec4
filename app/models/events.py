"""Domain events (the outbox), who may receive them, webhooks and their delivery attempts."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict
from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.types import UTCDateTime, enum_type, new_id, utcnow


class EventType(StrEnum):
    plan_created = "plan.created"
    plan_activated = "plan.activated"
    plan_paused = "plan.paused"
    plan_closed = "plan.closed"
    plan_cancelled = "plan.cancelled"
    action_proposed = "action.proposed"
    action_accepted = "action.accepted"
    action_disputed = "action.disputed"
    meeting_invited = "meeting.invited"
    meeting_answered = "meeting.answered"
    meeting_held = "meeting.held"
    consent_given = "consent.given"
    consent_withdrawn = "consent.withdrawn"
    follow_up_due = "follow_up.due"
    follow_up_overdue = "follow_up.overdue"


class OutboxEvent(SQLModel, table=True):
    """One domain event, written in the same transaction as the change it reports. `seq` is the
    stable cursor of the pull feed. The payload holds ids and types only, never names or
    personal numbers: receivers fetch details through the API with their own access."""

    __tablename__ = "outbox_event"
    __table_args__ = (UniqueConstraint("dedupe_key", name="uq_outbox_dedupe"),)

    seq: int | None = Field(
        default=None,
        # INTEGER on SQLite, where only that is an auto-incrementing row id.
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    id: uuid.UUID = Field(default_factory=new_id, unique=True)
    event_type: EventType = Field(sa_type=enum_type(EventType))
    occurred_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    plan_id: uuid.UUID | None = Field(default=None, foreign_key="plan.id")
    actor_organisation_id: uuid.UUID | None = Field(default=None, foreign_key="organisation.id")
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # For events raised by time (follow-up due): one per plan and date, however often the scan runs.
    dedupe_key: str | None = Field(default=None, max_length=200)


class EventRecipient(SQLModel, table=True):
    """An organisation entitled to the event when it happened (it could read the plan then)."""

    __tablename__ = "event_recipient"
    __table_args__ = (Index("ix_event_recipient_org_seq", "organisation_id", "event_seq"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    event_seq: int = Field(
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("outbox_event.seq"), nullable=False
        )
    )
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")


class EventPublic(SQLModel):
    seq: int
    id: uuid.UUID
    event_type: EventType
    occurred_at: datetime
    plan_id: uuid.UUID | None
    actor_organisation_id: uuid.UUID | None
    payload: dict[str, Any]


class WebhookCreate(SQLModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"url": "https://treserva.example.se/samplan/events", "event_types": ["action.proposed"]}
            ]
        },
    )

    url: str = Field(min_length=8, max_length=1000)
    event_types: list[EventType] = Field(min_length=1, max_length=len(EventType))
    description: str | None = Field(default=None, max_length=200)


class Webhook(SQLModel, table=True):
    __tablename__ = "webhook"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    url: str = Field(max_length=1000)
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    description: str | None = Field(default=None, max_length=200)
    # The signing secret; shown once when the webhook is created.
    secret: str = Field(max_length=200)
    active: bool = True
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    deleted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class WebhookPublic(SQLModel):
    id: uuid.UUID
    organisation_id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    active: bool
    created_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="the HMAC-SHA256 signing secret; shown only in this answer")


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivering = "delivering"
    delivered = "delivered"
    dead = "dead"


class WebhookDelivery(SQLModel, table=True):
    """One event to one webhook, retried until delivered or dead-lettered."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_seq", name="uq_delivery_webhook_event"),
        Index("ix_delivery_due", "status", "next_attempt_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    webhook_id: uuid.UUID = Field(foreign_key="webhook.id", index=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    event_seq: int = Field(
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("outbox_event.seq"), nullable=False
        )
    )
    status: DeliveryStatus = Field(default=DeliveryStatus.pending, sa_type=enum_type(DeliveryStatus))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # A claim is a lease: a worker that dies mid-delivery leaves it to expire, and another retries.
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_attempt_delivery", "delivery_id", "attempt"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    delivery_id: uuid.UUID = Field(foreign_key="webhook_delivery.id")
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    attempt: int
    started_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    duration_ms: int
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=300)


class AttemptPublic(SQLModel):
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None


class DeliveryPublic(SQLModel):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: EventType
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[AttemptPublic] = Field(default_factory=list)
