"""Meetings (kallelse, answers, minutes) and follow-ups of a SIP."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, field_validator
from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.types import UTCDateTime, enum_type, new_id, utcnow


class MeetingResponse(StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    proposed_time = "proposed_time"


class MeetingAnswer(StrEnum):
    """What an invited organisation may answer (an answer is never `pending`)."""

    accepted = "accepted"
    declined = "declined"
    proposed_time = "proposed_time"


class FollowUpOutcome(StrEnum):
    continue_ = "continue"  # the plan goes on as it is
    revise = "revise"  # the plan needs changes
    close = "close"  # the plan has done its work and should be closed
    other = "other"


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{field} needs a UTC offset")
    return value


def _questions(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    cleaned = [q.strip() for q in value]
    if any(not q or len(q) > 500 for q in cleaned):
        raise ValueError("each question must be 1 to 500 characters")
    return cleaned


# ---- meetings ------------------------------------------------------------------------------


class MeetingAttendee(SQLModel):
    """Someone who took part in a held meeting: staff of an organisation, the client or a närstående."""

    model_config = ConfigDict(extra="forbid")

    organisation_id: uuid.UUID | None = Field(
        default=None,
        description="the organisation the attendee represents; none for the client or närstående",
    )
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(
        min_length=1, max_length=100, description="e.g. 'socialsekreterare', 'läkare', 'klient'"
    )


_MEETING_EXAMPLE: dict[str, Any] = {
    "starts_at": "2026-12-03T13:00:00+01:00",
    "purpose": "SIP-möte inför utskrivning från LVM-hemmet",
    "questions": ["Boende efter utskrivning", "Läkemedelsassisterad behandling"],
    "location": "Socialförvaltningen, Sankt Eriksgatan 117, rum 4",
    "invitee_organisation_ids": ["0b8f5c1e-8a0e-4a44-9a57-0a5b8f0f7d11"],
}


class MeetingCreate(SQLModel):
    """A kallelse: the caller's organisation is the organiser."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_MEETING_EXAMPLE]})

    starts_at: datetime = Field(description="when the meeting starts; in the future, with a UTC offset")
    purpose: str = Field(min_length=1, max_length=2000)
    questions: list[str] = Field(default_factory=list, max_length=30, description="questions to take up")
    location: str = Field(min_length=1, max_length=500, description="a place, or a link to a video meeting")
    invitee_organisation_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=50,
        description="participating organisations invited to the meeting (besides the organiser)",
    )

    @field_validator("starts_at")
    @classmethod
    def _starts_aware(cls, value: datetime) -> datetime:
        _aware(value, "starts_at")
        return value

    @field_validator("questions")
    @classmethod
    def _check_questions(cls, value: list[str]) -> list[str]:
        return _questions(value) or []


class MeetingUpdate(SQLModel):
    """Move or re-place a meeting that is not yet held, change who is invited, or hold it:
    `held_at` with `attendees` and `record` (the minutes)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"starts_at": "2026-12-04T09:00:00+01:00", "location": "https://video.example.se/sip-4711"},
                {
                    "held_at": "2026-12-04T09:05:00+01:00",
                    "attendees": [
                        {
                            "organisation_id": "0b8f5c1e-8a0e-4a44-9a57-0a5b8f0f7d11",
                            "name": "Hanna Handläggare",
                            "role": "socialsekreterare",
                        },
                        {"name": "Kim Andersson", "role": "klient"},
                    ],
                    "record": "Boendestöd från 1 januari. Regionen ansvarar för LARO. Uppföljning i mars.",
                },
            ]
        },
    )

    starts_at: datetime | None = None
    purpose: str | None = Field(default=None, min_length=1, max_length=2000)
    questions: list[str] | None = Field(default=None, max_length=30)
    location: str | None = Field(default=None, min_length=1, max_length=500)
    invitee_organisation_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=50, description="the new set of invitees; those kept keep their answers"
    )
    held_at: datetime | None = Field(default=None, description="when the meeting was held; not in the future")
    attendees: list[MeetingAttendee] | None = Field(default=None, max_length=50)
    record: str | None = Field(default=None, max_length=10000, description="short minutes")

    @field_validator("starts_at")
    @classmethod
    def _starts_aware(cls, value: datetime | None) -> datetime | None:
        return _aware(value, "starts_at")

    @field_validator("held_at")
    @classmethod
    def _held_aware(cls, value: datetime | None) -> datetime | None:
        return _aware(value, "held_at")

    @field_validator("questions")
    @classmethod
    def _check_questions(cls, value: list[str] | None) -> list[str] | None:
        return _questions(value)


class MeetingResponseCreate(SQLModel):
    """An invited organisation's answer, for itself."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"response": "accepted"},
                {
                    "response": "proposed_time",
                    "proposed_starts_at": "2026-12-04T09:00:00+01:00",
                    "comment": "Läkaren kan inte på torsdag.",
                },
            ]
        },
    )

    response: MeetingAnswer
    proposed_starts_at: datetime | None = Field(
        default=None, description="required with `proposed_time`, and only then; in the future"
    )
    comment: str | None = Field(default=None, max_length=1000)

    @field_validator("proposed_starts_at")
    @classmethod
    def _proposed_aware(cls, value: datetime | None) -> datetime | None:
        return _aware(value, "proposed_starts_at")


class Meeting(SQLModel, table=True):
    __tablename__ = "meeting"
    __table_args__ = (
        Index("ix_meeting_plan_starts", "plan_id", "starts_at"),
        # The worklist: meetings not yet held, coming up.
        Index("ix_meeting_open", "held_at", "starts_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    plan_id: uuid.UUID = Field(foreign_key="plan.id")
    starts_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    purpose: str = Field(max_length=2000)
    questions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    location: str = Field(max_length=500)
    organiser_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    held_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    record: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attendees: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class MeetingInvitee(SQLModel, table=True):
    __tablename__ = "meeting_invitee"
    __table_args__ = (
        UniqueConstraint("meeting_id", "organisation_id", name="uq_meeting_invitee"),
        Index("ix_meeting_invitee_plan", "plan_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    meeting_id: uuid.UUID = Field(foreign_key="meeting.id")
    plan_id: uuid.UUID = Field(foreign_key="plan.id")
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    response: MeetingResponse = Field(default=MeetingResponse.pending, sa_type=enum_type(MeetingResponse))
    proposed_starts_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    comment: str | None = Field(default=None, max_length=1000)
    responded_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    responded_by: str | None = Field(default=None, max_length=200)


class MeetingInviteePublic(SQLModel):
    organisation_id: uuid.UUID
    organisation_name: str | None = None
    organisation_kind: str | None = None
    response: MeetingResponse
    proposed_starts_at: datetime | None
    comment: str | None
    responded_at: datetime | None


class MeetingWarning(SQLModel):
    code: str = Field(description="meeting_without_other_huvudman, or invitee_cannot_read_plan")
    message: str


class MeetingPublic(SQLModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **{k: v for k, v in _MEETING_EXAMPLE.items() if k != "invitee_organisation_ids"},
                    "id": "3c1d7a52-6c55-4a5b-8d8e-2f3c0a9b6e01",
                    "plan_id": "9a1e2c44-0b7d-4f0e-a1c3-5d6e7f8a9b0c",
                    "organiser_organisation_id": "5f0c8a43-3f7e-4bde-9d55-0d1f1f5d2a10",
                    "created_by": "hanna@stockholm.se",
                    "created_at": "2026-11-24T10:00:00Z",
                    "updated_at": "2026-11-24T10:00:00Z",
                    "held_at": None,
                    "record": None,
                    "attendees": [],
                    "invitees": [
                        {
                            "organisation_id": "0b8f5c1e-8a0e-4a44-9a57-0a5b8f0f7d11",
                            "organisation_name": "Region Stockholm",
                            "organisation_kind": "region",
                            "response": "pending",
                            "proposed_starts_at": None,
                            "comment": None,
                            "responded_at": None,
                        }
                    ],
                    "warnings": [],
                }
            ]
        }
    )

    id: uuid.UUID
    plan_id: uuid.UUID
    starts_at: datetime
    purpose: str
    questions: list[str]
    location: str
    organiser_organisation_id: uuid.UUID
    created_by: str
    created_at: datetime
    updated_at: datetime
    held_at: datetime | None
    record: str | None
    attendees: list[MeetingAttendee]
    invitees: list[MeetingInviteePublic] = Field(default_factory=list)
    warnings: list[MeetingWarning] = Field(
        default_factory=list,
        description="what the kallelse lacks, e.g. no one from the other huvudman is invited",
    )


# ---- follow-ups ----------------------------------------------------------------------------


class FollowUpCreate(SQLModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"due_date": "2027-03-15"}]})

    due_date: date = Field(description="today or later")


class FollowUpUpdate(SQLModel):
    """Record a follow-up: when it was held, the outcome, and the next follow-up date (which
    becomes the plan's `follow_up_date`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "held_date": "2027-03-15",
                    "outcome_code": "revise",
                    "outcome_text": "Boendet fungerar; LARO-dosen ses över.",
                    "next_follow_up_date": "2027-06-15",
                }
            ]
        },
    )

    held_date: date | None = Field(default=None, description="not in the future")
    outcome_code: FollowUpOutcome | None = None
    outcome_text: str | None = Field(default=None, max_length=4000)
    next_follow_up_date: date | None = Field(default=None, description="after the held date, not in the past")


class FollowUp(SQLModel, table=True):
    __tablename__ = "follow_up"
    __table_args__ = (Index("ix_follow_up_plan_due", "plan_id", "due_date"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    plan_id: uuid.UUID = Field(foreign_key="plan.id")
    due_date: date
    held_date: date | None = None
    outcome_code: FollowUpOutcome | None = Field(default=None, sa_type=enum_type(FollowUpOutcome))
    outcome_text: str | None = Field(default=None, max_length=4000)
    next_follow_up_date: date | None = None
    created_by_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    recorded_by_organisation_id: uuid.UUID | None = Field(default=None, foreign_key="organisation.id")
    recorded_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class FollowUpPublic(SQLModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "7d2b9c1a-4e5f-4a6b-9c8d-1e2f3a4b5c6d",
                    "plan_id": "9a1e2c44-0b7d-4f0e-a1c3-5d6e7f8a9b0c",
                    "due_date": "2027-03-15",
                    "held_date": "2027-03-15",
                    "outcome_code": "revise",
                    "outcome_text": "Boendet fungerar; LARO-dosen ses över.",
                    "next_follow_up_date": "2027-06-15",
                    "created_by_organisation_id": "5f0c8a43-3f7e-4bde-9d55-0d1f1f5d2a10",
                    "created_at": "2026-12-03T14:00:00Z",
                    "recorded_by_organisation_id": "5f0c8a43-3f7e-4bde-9d55-0d1f1f5d2a10",
                    "recorded_at": "2027-03-15T15:00:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    plan_id: uuid.UUID
    due_date: date
    held_date: date | None
    outcome_code: FollowUpOutcome | None
    outcome_text: str | None
    next_follow_up_date: date | None
    created_by_organisation_id: uuid.UUID
    created_at: datetime
    recorded_by_organisation_id: uuid.UUID | None
    recorded_at: datetime | None
