"""Clients (the person a plan is for) and which organisations know them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from pydantic import ConfigDict, StrictBool, field_validator
from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.types import UTCDateTime, enum_type, new_id, utcnow
from app.services import identifiers


class Gender(StrEnum):
    kvinna = "kvinna"
    man = "man"
    annat = "annat"
    okant = "okant"


MASKED_NAME = "Skyddad identitet"


class ClientCreate(SQLModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "personal_number": "19121212-1212",
                    "given_name": "Tolvan",
                    "family_name": "Tolvansson",
                    "gender": "man",
                    "protected_identity": False,
                }
            ]
        },
    )

    personal_number: str = Field(
        min_length=10, max_length=13, description="personnummer or samordningsnummer, 10 or 12 digits"
    )
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    gender: Gender = Gender.okant
    # Strict: JSON true or false only, never 0, 1 or "yes" (the schema says boolean).
    protected_identity: StrictBool = False

    @field_validator("personal_number")
    @classmethod
    def _valid_personal_number(cls, value: str) -> str:
        try:
            return identifiers.parse_personal_number(value).value
        except identifiers.InvalidIdentifier as exc:
            raise ValueError(str(exc)) from None


class ClientSearch(SQLModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"personal_number": "191212121212"}]}
    )

    personal_number: str = Field(min_length=10, max_length=13)

    @field_validator("personal_number")
    @classmethod
    def _valid_personal_number(cls, value: str) -> str:
        return ClientCreate._valid_personal_number(value)


class Client(SQLModel, table=True):
    """One person is one client, whichever organisation registered them first."""

    __tablename__ = "client"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    personal_number: str = Field(max_length=12, unique=True)
    is_coordination_number: bool = False
    birth_date: date
    given_name: str = Field(max_length=100)
    family_name: str = Field(max_length=100)
    gender: Gender = Field(sa_type=enum_type(Gender))
    protected_identity: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ClientLink(SQLModel, table=True):
    """An organisation that knows the client (registered or looked them up to work with them)."""

    __tablename__ = "client_link"
    __table_args__ = (UniqueConstraint("client_id", "organisation_id", name="uq_client_link"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    client_id: uuid.UUID = Field(foreign_key="client.id", index=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ClientPublic(SQLModel):
    id: uuid.UUID
    personal_number: str | None = Field(description="only for organisations that know the client")
    given_name: str
    family_name: str
    gender: Gender
    birth_year: int
    protected_identity: bool
    known_to_caller: bool
    created: bool = Field(default=False, description="true when this request registered a new person")
