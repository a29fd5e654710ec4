"""Users and the token issuers each organisation trusts."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, HttpUrl
from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.types import UTCDateTime, new_id, utcnow


class Role(StrEnum):
    handlaggare = "handlaggare"
    samordnare = "samordnare"
    lasare = "lasare"
    org_admin = "org_admin"
    auditor = "auditor"
    rss = "rss"
    system = "system"
    platform_admin = "platform_admin"


class User(SQLModel, table=True):
    """A person or system account known to Samplan; `subject` is the token's `sub`."""

    __tablename__ = "app_user"
    __table_args__ = (UniqueConstraint("organisation_id", "subject", name="uq_user_org_subject"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    subject: str = Field(max_length=200)
    name: str = Field(max_length=200)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    unit_id: uuid.UUID | None = Field(default=None, foreign_key="unit.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class TrustedIssuerBase(SQLModel):
    issuer: str = Field(min_length=1, max_length=500)
    audience: str = Field(default="samplan", min_length=1, max_length=200)


class TrustedIssuerCreate(TrustedIssuerBase):
    model_config = ConfigDict(extra="forbid")

    jwks_url: HttpUrl


class TrustedIssuer(TrustedIssuerBase, table=True):
    """An identity provider whose tokens may speak for one organisation."""

    __tablename__ = "trusted_issuer"
    __table_args__ = (UniqueConstraint("issuer", "organisation_id", name="uq_issuer_org"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    # Empty for the dev issuer, whose key is read from the data folder instead.
    jwks_url: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class TrustedIssuerPublic(TrustedIssuerBase):
    id: uuid.UUID
    organisation_id: uuid.UUID
    jwks_url: str
    created_at: datetime
