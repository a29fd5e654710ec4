"""Organisations (huvudmän and other actors) and their units."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, ConfigDict
from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.types import UTCDateTime, enum_type, new_id, utcnow
from app.services import identifiers


class OrganisationKind(StrEnum):
    kommun = "kommun"
    region = "region"
    state = "state"
    other = "other"

    @property
    def is_huvudman(self) -> bool:
        return self in (OrganisationKind.kommun, OrganisationKind.region)


def _org_number(value: str) -> str:
    try:
        return identifiers.normalise_org_number(value)
    except identifiers.InvalidIdentifier as exc:
        raise ValueError(str(exc)) from None


def _county(value: str) -> str:
    try:
        return identifiers.validate_county_code(value)
    except identifiers.InvalidIdentifier as exc:
        raise ValueError(str(exc)) from None


def _hsa(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return identifiers.validate_hsa_id(value)
    except identifiers.InvalidIdentifier as exc:
        raise ValueError(str(exc)) from None


OrgNumber = Annotated[str, AfterValidator(_org_number)]
CountyCode = Annotated[str, AfterValidator(_county)]
HsaId = Annotated[str | None, AfterValidator(_hsa)]


class OrganisationBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    kind: OrganisationKind
    county_code: str = Field(min_length=2, max_length=2)


class OrganisationCreate(OrganisationBase):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Region Stockholm",
                    "kind": "region",
                    "org_number": "232100-0016",
                    "county_code": "01",
                }
            ]
        },
    )

    org_number: OrgNumber = Field(description="organisationsnummer, NNNNNN-NNNN or 10 digits")
    county_code: CountyCode = Field(description="län code, '01' to '25'")


class Organisation(OrganisationBase, table=True):
    __tablename__ = "organisation"

    kind: OrganisationKind = Field(sa_type=enum_type(OrganisationKind))
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_number: str = Field(max_length=10, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class OrganisationPublic(OrganisationBase):
    id: uuid.UUID
    org_number: str
    created_at: datetime


class UnitBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    hsa_id: str | None = Field(default=None, max_length=31)


class UnitCreate(UnitBase):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Beroendecentrum", "hsa_id": "SE2321000016-B7DX"}]},
    )

    hsa_id: HsaId = Field(default=None, description="HSA-id: SE + organisationsnummer + '-' + suffix")


class Unit(UnitBase, table=True):
    __tablename__ = "unit"
    __table_args__ = (UniqueConstraint("organisation_id", "name", name="uq_unit_org_name"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    hsa_id: str | None = Field(default=None, max_length=31, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class UnitPublic(UnitBase):
    id: uuid.UUID
    organisation_id: uuid.UUID
    created_at: datetime
