"""The append-only audit trail: one SHA-256 hash chain per organisation."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.types import UTCDateTime, new_id, utcnow


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (
        UniqueConstraint("organisation_id", "seq", name="uq_audit_org_seq"),
        Index("ix_audit_event_client", "organisation_id", "client_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    # The organisation whose staff acted: its auditor reviews the event.
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    seq: int
    occurred_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    actor_subject: str = Field(max_length=200)
    actor_name: str | None = Field(default=None, max_length=200)
    actor_roles: str = Field(max_length=300)
    action: str = Field(max_length=100)
    object_type: str = Field(max_length=50)
    object_id: str | None = Field(default=None, max_length=100)
    client_id: uuid.UUID | None = Field(default=None)
    request_id: str | None = Field(default=None, max_length=100)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditChainHead(SQLModel, table=True):
    """The last link of each organisation's chain; its row lock serialises appends."""

    __tablename__ = "audit_chain_head"

    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", primary_key=True)
    last_seq: int = 0
    last_hash: str = Field(max_length=64)


class AuditEventPublic(SQLModel):
    id: uuid.UUID
    seq: int
    occurred_at: datetime
    actor_subject: str
    actor_name: str | None
    actor_roles: str
    action: str
    object_type: str
    object_id: str | None
    client_id: uuid.UUID | None
    request_id: str | None
    hash: str
