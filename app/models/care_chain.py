"""The client's care chain: episodes in the LVM phases and aftercare, and samordnare periods."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import ConfigDict, model_validator
from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from app.models.phase import Phase
from app.models.types import UTCDateTime, enum_type, new_id, utcnow

# Phases that count as care for the coverage report and the worklist (DOMAIN.md).
CARE_PHASES = frozenset({Phase.lvm_vard, Phase.vard_i_annan_form, Phase.eftervard})


class EpisodeCreate(SQLModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "phase": "lvm_vard",
                    "start_date": "2026-09-01",
                    "planned_end_date": "2027-02-28",
                    "organisation_id": "0b8f5c1e-8a0e-4a44-9a57-0a5b8f0f7d11",
                    "unit_id": "6a1e9c3b-2f0d-4e52-8c1b-5e7d9a0b1c2d",
                    "responsible_kommun_id": "3f0c8a43-3f7e-4bde-9d55-0d1f1f5d2a10",
                }
            ]
        },
    )

    phase: Phase
    start_date: date
    end_date: date | None = None
    planned_end_date: date | None = None
    organisation_id: uuid.UUID | None = Field(
        default=None,
        description="the organisation giving care in this phase (an LVM-hem's SiS); default: yours",
    )
    unit_id: uuid.UUID | None = None
    responsible_kommun_id: uuid.UUID | None = Field(
        default=None, description="the kommun whose socialnämnd answers for the care; default: yours"
    )
    note: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _dates(self) -> EpisodeCreate:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        if self.planned_end_date is not None and self.planned_end_date < self.start_date:
            raise ValueError("planned_end_date is before start_date")
        return self


class EpisodeUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"end_date": "2027-02-20"}]})

    start_date: date | None = None
    end_date: date | None = None
    planned_end_date: date | None = None
    unit_id: uuid.UUID | None = None
    note: str | None = Field(default=None, max_length=1000)


class Episode(SQLModel, table=True):
    __tablename__ = "episode"
    __table_args__ = (
        Index("ix_episode_client", "client_id", "start_date"),
        Index("ix_episode_kommun_phase", "responsible_kommun_id", "phase"),
        # The worklist's LVM signals: care ending (or planned to end) soon, care still open.
        Index("ix_episode_phase_end", "phase", "end_date"),
        Index("ix_episode_phase_planned_end", "phase", "planned_end_date"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id")
    phase: Phase = Field(sa_type=enum_type(Phase))
    start_date: date
    end_date: date | None = None
    planned_end_date: date | None = None
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    unit_id: uuid.UUID | None = Field(default=None, foreign_key="unit.id")
    responsible_kommun_id: uuid.UUID = Field(foreign_key="organisation.id")
    recorded_by_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    note: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class EpisodePublic(SQLModel):
    id: uuid.UUID
    client_id: uuid.UUID
    phase: Phase
    start_date: date
    end_date: date | None
    planned_end_date: date | None
    organisation_id: uuid.UUID
    unit_id: uuid.UUID | None
    responsible_kommun_id: uuid.UUID
    recorded_by_organisation_id: uuid.UUID
    note: str | None
    created_at: datetime
    updated_at: datetime


class CoordinatorAssign(SQLModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "user_id": "9d2b1c3a-1111-4c2e-8f00-2a3b4c5d6e7f",
                    "organisation_id": "3f0c8a43-3f7e-4bde-9d55-0d1f1f5d2a10",
                    "start_date": "2026-11-23",
                    "handover_note": "Klienten har eftervård hos beroendecentrum; nästa uppföljning 15/1.",
                }
            ]
        },
    )

    user_id: uuid.UUID
    organisation_id: uuid.UUID
    start_date: date
    handover_note: str | None = Field(default=None, min_length=1, max_length=4000)


class CoordinatorAssignment(SQLModel, table=True):
    """A samordnare's period with one client. One is active per client at a time."""

    __tablename__ = "coordinator_assignment"
    __table_args__ = (
        Index("ix_coordinator_client", "client_id", "start_date"),
        Index("ix_coordinator_user", "user_id", "end_date"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id")
    user_id: uuid.UUID = Field(foreign_key="app_user.id")
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    start_date: date
    end_date: date | None = None
    handover_note: str | None = Field(default=None, max_length=4000)
    assigned_by: str = Field(max_length=200)
    assigned_by_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class CoordinatorAssignmentPublic(SQLModel):
    id: uuid.UUID
    client_id: uuid.UUID
    user_id: uuid.UUID
    user_name: str | None = None
    organisation_id: uuid.UUID
    start_date: date
    end_date: date | None
    handover_note: str | None
    assigned_by_organisation_id: uuid.UUID
    created_at: datetime
