"""The SIP: plan, participants, consents, needs, goals, actions and the version history."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, StrictBool, ValidationInfo, field_validator, model_validator
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.phase import Phase
from app.models.types import UTCDateTime, enum_type, new_id, utcnow


class PlanStatus(StrEnum):
    draft = "draft"
    active = "active"
    paused = "paused"
    closed = "closed"
    cancelled = "cancelled"


class ParticipantKind(StrEnum):
    huvudman = "huvudman"
    other = "other"
    client = "client"
    narstaende = "narstaende"


class ActionStatus(StrEnum):
    proposed = "proposed"
    accepted = "accepted"
    disputed = "disputed"
    started = "started"
    completed = "completed"
    cancelled = "cancelled"


# Statuses in which the responsible organisation has taken the action on.
COMMITTED_ACTION_STATUSES = frozenset({ActionStatus.accepted, ActionStatus.started, ActionStatus.completed})


class ConsentMethod(StrEnum):
    written = "written"
    verbal = "verbal"
    digital = "digital"


_FORBID = ConfigDict(extra="forbid")


# ---- plan ----------------------------------------------------------------------------------


class PlanCreate(SQLModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "client_id": "5f0c8a43-3f7e-4bde-9d55-0d1f1f5d2a10",
                    "title": "SIP inför utskrivning från LVM-hem",
                    "legal_basis": ["SoL (2025:400) 2 kap.", "HSL 16 kap. 4 §"],
                    "overall_responsible_organisation_id": None,
                    "follow_up_date": "2027-01-15",
                    "client_participated": True,
                }
            ]
        },
    )

    client_id: uuid.UUID
    title: str = Field(min_length=1, max_length=200)
    legal_basis: list[str] = Field(
        default_factory=list, max_length=10, description="the legal basis as text, e.g. 'HSL 16 kap. 4 §'"
    )
    overall_responsible_organisation_id: uuid.UUID | None = None
    follow_up_date: date | None = None
    # Strict booleans in requests: JSON true or false only, never 0, 1 or "yes".
    client_participated: StrictBool = False

    @model_validator(mode="after")
    def _basis_lengths(self) -> PlanCreate:
        if any(not b.strip() or len(b) > 200 for b in self.legal_basis):
            raise ValueError("each legal_basis entry must be 1 to 200 characters")
        return self


class PlanUpdate(SQLModel):
    model_config = _FORBID

    title: str | None = Field(default=None, min_length=1, max_length=200)
    legal_basis: list[str] | None = Field(default=None, max_length=10)
    overall_responsible_organisation_id: uuid.UUID | None = None
    follow_up_date: date | None = None
    client_participated: StrictBool | None = None
    relatives_objection: StrictBool | None = Field(
        default=None, description="the client objects to närstående taking part"
    )


class Plan(SQLModel, table=True):
    __tablename__ = "plan"
    __table_args__ = (
        Index("ix_plan_client", "client_id"),
        Index("ix_plan_initiator", "initiating_organisation_id"),
        # The worklist: open plans whose follow-up is due.
        Index("ix_plan_status_follow_up", "status", "follow_up_date"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id")
    title: str = Field(max_length=200)
    legal_basis: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: PlanStatus = Field(default=PlanStatus.draft, sa_type=enum_type(PlanStatus))
    version: int = 1
    initiating_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    created_by: str = Field(max_length=200)
    overall_responsible_organisation_id: uuid.UUID | None = Field(default=None, foreign_key="organisation.id")
    follow_up_date: date | None = None
    client_participated: bool = False
    relatives_objection: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    activated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    cancelled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


# ---- participants --------------------------------------------------------------------------


class ParticipantCreate(SQLModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"organisation_id": "0b8f5c1e-8a0e-4a44-9a57-0a5b8f0f7d11", "kind": "huvudman"}]
        },
    )

    kind: ParticipantKind
    organisation_id: uuid.UUID | None = None
    unit_id: uuid.UUID | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200, description="for närstående")
    relation: str | None = Field(default=None, max_length=100, description="for närstående, e.g. 'mor'")

    @model_validator(mode="after")
    def _shape(self) -> ParticipantCreate:
        with_org = self.kind in (ParticipantKind.huvudman, ParticipantKind.other)
        if with_org and self.organisation_id is None:
            raise ValueError(f"a '{self.kind}' participant needs organisation_id")
        if not with_org and (self.organisation_id is not None or self.unit_id is not None):
            raise ValueError(f"a '{self.kind}' participant takes no organisation_id or unit_id")
        if self.kind == ParticipantKind.narstaende and not self.name:
            raise ValueError("a närstående participant needs a name")
        return self


class PlanParticipant(SQLModel, table=True):
    __tablename__ = "plan_participant"
    __table_args__ = (Index("ix_participant_plan", "plan_id"), Index("ix_participant_org", "organisation_id"))

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    plan_id: uuid.UUID = Field(foreign_key="plan.id")
    kind: ParticipantKind = Field(sa_type=enum_type(ParticipantKind))
    organisation_id: uuid.UUID | None = Field(default=None, foreign_key="organisation.id")
    unit_id: uuid.UUID | None = Field(default=None, foreign_key="unit.id")
    name: str | None = Field(default=None, max_length=200)
    relation: str | None = Field(default=None, max_length=100)
    added_by_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    added_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ParticipantPublic(SQLModel):
    id: uuid.UUID
    kind: ParticipantKind
    organisation_id: uuid.UUID | None
    organisation_name: str | None = None
    organisation_kind: str | None = None
    unit_id: uuid.UUID | None
    name: str | None
    relation: str | None
    added_at: datetime


# ---- consent -------------------------------------------------------------------------------


class ConsentCreate(SQLModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "given_at": "2026-11-20T10:00:00+01:00",
                    "obtained_by": "Hanna Handläggare, socialsekreterare",
                    "method": "written",
                    "scope_organisation_ids": ["0b8f5c1e-8a0e-4a44-9a57-0a5b8f0f7d11"],
                    "valid_until": "2027-11-20",
                }
            ]
        },
    )

    given_at: datetime
    obtained_by: str = Field(min_length=1, max_length=200)
    method: ConsentMethod
    scope_organisation_ids: list[uuid.UUID] = Field(min_length=1, max_length=50)
    valid_until: date | None = None

    @field_validator("given_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # A field validator, so that the problem names `given_at` rather than the whole body.
        if value.tzinfo is None:
            raise ValueError("given_at needs a UTC offset")
        return value


class ConsentWithdraw(SQLModel):
    model_config = _FORBID

    reason: str = Field(min_length=1, max_length=1000)


class Consent(SQLModel, table=True):
    __tablename__ = "consent"
    __table_args__ = (Index("ix_consent_plan", "plan_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    plan_id: uuid.UUID = Field(foreign_key="plan.id")
    given_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    obtained_by: str = Field(max_length=200)
    method: ConsentMethod = Field(sa_type=enum_type(ConsentMethod))
    valid_until: date | None = None
    recorded_by_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    withdrawn_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    withdrawn_reason: str | None = Field(default=None, max_length=1000)
    withdrawn_by_organisation_id: uuid.UUID | None = Field(default=None, foreign_key="organisation.id")


class ConsentScope(SQLModel, table=True):
    """One row per organisation a consent covers: joinable in SQL and in the RLS policy."""

    __tablename__ = "consent_scope"
    __table_args__ = (
        UniqueConstraint("consent_id", "organisation_id", name="uq_consent_scope"),
        Index("ix_consent_scope_plan_org", "plan_id", "organisation_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    consent_id: uuid.UUID = Field(foreign_key="consent.id")
    plan_id: uuid.UUID = Field(foreign_key="plan.id")
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")


class ConsentPublic(SQLModel):
    id: uuid.UUID
    given_at: datetime
    obtained_by: str
    method: ConsentMethod
    scope_organisation_ids: list[uuid.UUID]
    valid_until: date | None
    active: bool
    recorded_by_organisation_id: uuid.UUID
    recorded_at: datetime
    withdrawn_at: datetime | None
    withdrawn_reason: str | None


# ---- needs and goals -----------------------------------------------------------------------


class NeedCreate(SQLModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"description": "Boende efter utskrivning"}]}
    )

    description: str = Field(min_length=1, max_length=2000)


class NeedUpdate(SQLModel):
    model_config = _FORBID

    description: str | None = Field(default=None, min_length=1, max_length=2000)


class Need(SQLModel, table=True):
    __tablename__ = "plan_need"
    __table_args__ = (Index("ix_need_plan", "plan_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    plan_id: uuid.UUID = Field(foreign_key="plan.id")
    description: str = Field(max_length=2000)
    created_by_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class NeedPublic(SQLModel):
    id: uuid.UUID
    description: str
    created_by_organisation_id: uuid.UUID
    created_at: datetime


class GoalCreate(SQLModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"description": "Eget boende inom sex månader", "target_date": "2027-05-01"}]
        },
    )

    description: str = Field(min_length=1, max_length=2000)
    need_id: uuid.UUID | None = None
    target_date: date | None = None


class GoalUpdate(SQLModel):
    model_config = _FORBID

    description: str | None = Field(default=None, min_length=1, max_length=2000)
    need_id: uuid.UUID | None = None
    target_date: date | None = None


class Goal(SQLModel, table=True):
    __tablename__ = "plan_goal"
    __table_args__ = (Index("ix_goal_plan", "plan_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    plan_id: uuid.UUID = Field(foreign_key="plan.id")
    need_id: uuid.UUID | None = Field(default=None, foreign_key="plan_need.id")
    description: str = Field(max_length=2000)
    target_date: date | None = None
    created_by_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class GoalPublic(SQLModel):
    id: uuid.UUID
    need_id: uuid.UUID | None
    description: str
    target_date: date | None
    created_by_organisation_id: uuid.UUID
    created_at: datetime


# ---- actions (insatser) --------------------------------------------------------------------


class ActionCreate(SQLModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "description": "Abstinensbehandling och läkemedelsgenomgång",
                    "responsible_organisation_id": "0b8f5c1e-8a0e-4a44-9a57-0a5b8f0f7d11",
                    "phase": "eftervard",
                    "start_date": "2026-12-01",
                    "end_date": "2027-06-01",
                }
            ]
        },
    )

    description: str = Field(min_length=1, max_length=2000)
    responsible_organisation_id: uuid.UUID
    phase: Phase | None = None
    goal_id: uuid.UUID | None = None
    start_date: date | None = None
    end_date: date | None = None

    @field_validator("end_date")
    @classmethod
    def _dates(cls, value: date | None, info: ValidationInfo) -> date | None:
        # A field validator (start_date is validated first), so that the problem names `end_date`.
        start = info.data.get("start_date")
        if start and value and value < start:
            raise ValueError("end_date is before start_date")
        return value


class ActionUpdate(SQLModel):
    model_config = _FORBID

    description: str | None = Field(default=None, min_length=1, max_length=2000)
    responsible_organisation_id: uuid.UUID | None = None
    phase: Phase | None = None
    goal_id: uuid.UUID | None = None
    start_date: date | None = None
    end_date: date | None = None
    status: ActionStatus | None = Field(
        default=None, description="started, completed or cancelled; accept and dispute have their own calls"
    )


class ActionDispute(SQLModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "Insatsen är kommunens ansvar enligt SoL."}]},
    )

    reason: str = Field(min_length=1, max_length=2000)


class Action(SQLModel, table=True):
    __tablename__ = "plan_action"
    __table_args__ = (
        Index("ix_action_plan", "plan_id"),
        Index("ix_action_responsible_status", "responsible_organisation_id", "status"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    plan_id: uuid.UUID = Field(foreign_key="plan.id")
    goal_id: uuid.UUID | None = Field(default=None, foreign_key="plan_goal.id")
    description: str = Field(max_length=2000)
    responsible_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    phase: Phase | None = Field(default=None, sa_type=enum_type(Phase))
    start_date: date | None = None
    end_date: date | None = None
    status: ActionStatus = Field(sa_type=enum_type(ActionStatus))
    dispute_reason: str | None = Field(default=None, max_length=2000)
    proposed_by_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    proposed_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    decided_by: str | None = Field(default=None, max_length=200)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ActionPublic(SQLModel):
    id: uuid.UUID
    goal_id: uuid.UUID | None
    description: str
    responsible_organisation_id: uuid.UUID
    phase: Phase | None
    start_date: date | None
    end_date: date | None
    status: ActionStatus
    dispute_reason: str | None
    proposed_by_organisation_id: uuid.UUID
    proposed_at: datetime
    decided_at: datetime | None


# ---- transitions and versions --------------------------------------------------------------


class TransitionTarget(StrEnum):
    active = "active"
    paused = "paused"
    closed = "closed"
    cancelled = "cancelled"


class TransitionRequest(SQLModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"to": "active"}]})

    to: TransitionTarget
    reason: str | None = Field(default=None, max_length=1000)


class PlanVersion(SQLModel, table=True):
    """A snapshot of the whole plan after each change, with who made it and what it was."""

    __tablename__ = "plan_version"
    __table_args__ = (UniqueConstraint("plan_id", "version", name="uq_plan_version"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    plan_id: uuid.UUID = Field(foreign_key="plan.id")
    version: int
    change: str = Field(max_length=100)
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    changed_by: str = Field(max_length=200)
    changed_by_name: str | None = Field(default=None, max_length=200)
    changed_by_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    changed_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class PlanVersionSummary(SQLModel):
    version: int
    change: str
    summary: dict[str, Any]
    changed_by: str
    changed_by_name: str | None
    changed_by_organisation_id: uuid.UUID
    changed_at: datetime


class PlanVersionPublic(PlanVersionSummary):
    snapshot: dict[str, Any]


class PlanPublic(SQLModel):
    id: uuid.UUID
    client_id: uuid.UUID
    title: str
    legal_basis: list[str]
    status: PlanStatus
    version: int
    initiating_organisation_id: uuid.UUID
    created_by: str
    overall_responsible_organisation_id: uuid.UUID | None
    follow_up_date: date | None
    client_participated: bool
    relatives_objection: bool
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    participants: list[ParticipantPublic] = Field(default_factory=list)
    consents: list[ConsentPublic] = Field(default_factory=list)
    needs: list[NeedPublic] = Field(default_factory=list)
    goals: list[GoalPublic] = Field(default_factory=list)
    actions: list[ActionPublic] = Field(default_factory=list)
    disputed_action_count: int = 0


class PlanSummary(SQLModel):
    id: uuid.UUID
    client_id: uuid.UUID
    title: str
    status: PlanStatus
    version: int
    initiating_organisation_id: uuid.UUID
    overall_responsible_organisation_id: uuid.UUID | None
    follow_up_date: date | None
    created_at: datetime
    updated_at: datetime
