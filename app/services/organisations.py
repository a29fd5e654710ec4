"""Organisations, their units and the token issuers they trust."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.auth import policies
from app.auth.principal import Principal
from app.config import DEV_ISSUER
from app.db import system_scope
from app.errors import Conflict, NotFound, UnprocessableEntity
from app.models.identity import TrustedIssuer, TrustedIssuerCreate
from app.models.organisation import Organisation, OrganisationCreate, OrganisationKind, Unit, UnitCreate
from app.services import audit, identifiers
from app.services.pagination import keyset_page


async def create_organisation(session: AsyncSession, p: Principal, data: OrganisationCreate) -> Organisation:
    policies.require(policies.may_create_organisation(p))
    if data.kind == OrganisationKind.region and not identifiers.is_region_org_number(data.org_number):
        raise UnprocessableEntity(
            "a region's organisationsnummer starts with 2321",
            errors=[{"field": "org_number", "message": "regions have organisationsnummer 2321xx-xxxx"}],
        )
    existing = await session.scalar(select(Organisation.id).where(Organisation.org_number == data.org_number))
    if existing is not None:
        raise Conflict(
            "an organisation with this organisationsnummer is already registered",
            extra={"existing_id": str(existing)},
        )
    org = Organisation.model_validate(data)
    session.add(org)
    await session.flush()
    audit.record(session, p, "organisation.create", "organisation", org.id)
    return org


async def get_organisation(session: AsyncSession, organisation_id: uuid.UUID) -> Organisation:
    org = await session.get(Organisation, organisation_id)
    if org is None:
        raise NotFound("no such organisation")
    return org


async def list_organisations(
    session: AsyncSession,
    *,
    limit: int,
    cursor: str | None,
    kind: OrganisationKind | None = None,
    county_code: str | None = None,
) -> tuple[list[Organisation], str | None]:
    stmt = select(Organisation)
    if kind is not None:
        stmt = stmt.where(Organisation.kind == kind)
    if county_code is not None:
        stmt = stmt.where(Organisation.county_code == county_code)
    return await keyset_page(
        session,
        stmt,
        [Organisation.name, Organisation.id],
        limit=limit,
        cursor=cursor,
        key=lambda o: (o.name, o.id),
        parse=(str, uuid.UUID),
    )


async def create_unit(
    session: AsyncSession, p: Principal, organisation_id: uuid.UUID, data: UnitCreate
) -> Unit:
    await get_organisation(session, organisation_id)
    policies.require(policies.may_create_unit(p, organisation_id))
    if data.hsa_id is not None and await session.scalar(select(Unit.id).where(Unit.hsa_id == data.hsa_id)):
        raise Conflict("a unit with this HSA-id is already registered")
    if await session.scalar(
        select(Unit.id).where(Unit.organisation_id == organisation_id, Unit.name == data.name)
    ):
        raise Conflict("the organisation already has a unit with this name")
    unit = Unit.model_validate(data, update={"organisation_id": organisation_id})
    session.add(unit)
    await session.flush()
    audit.record(session, p, "unit.create", "unit", unit.id)
    return unit


async def list_units(
    session: AsyncSession, p: Principal, organisation_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[Unit], str | None]:
    await get_organisation(session, organisation_id)
    policies.require(policies.may_list_units(p, organisation_id))
    return await keyset_page(
        session,
        select(Unit).where(Unit.organisation_id == organisation_id),
        [Unit.name, Unit.id],
        limit=limit,
        cursor=cursor,
        key=lambda u: (u.name, u.id),
        parse=(str, uuid.UUID),
    )


async def add_trusted_issuer(
    session: AsyncSession, p: Principal, organisation_id: uuid.UUID, data: TrustedIssuerCreate
) -> TrustedIssuer:
    policies.require(policies.may_manage_issuers(p))
    await get_organisation(session, organisation_id)
    if data.issuer == DEV_ISSUER:
        raise UnprocessableEntity("the dev issuer is built in and cannot be registered")
    if str(data.jwks_url).startswith("http://"):
        raise UnprocessableEntity(
            "the JWKS URL must use https",
            errors=[{"field": "jwks_url", "message": "must be an https URL"}],
        )
    issuer = TrustedIssuer(
        organisation_id=organisation_id,
        issuer=data.issuer,
        audience=data.audience,
        jwks_url=str(data.jwks_url),
    )
    async with system_scope(session):  # the issuer row belongs to the other organisation
        if await session.scalar(
            select(TrustedIssuer.id).where(
                TrustedIssuer.issuer == data.issuer, TrustedIssuer.organisation_id == organisation_id
            )
        ):
            raise Conflict("this issuer is already trusted for the organisation")
        session.add(issuer)
        await session.flush()
    audit.record(session, p, "issuer.create", "trusted_issuer", issuer.id)
    return issuer


async def list_trusted_issuers(
    session: AsyncSession, p: Principal, organisation_id: uuid.UUID
) -> list[TrustedIssuer]:
    policies.require(policies.may_manage_issuers(p))
    await get_organisation(session, organisation_id)
    async with system_scope(session):
        rows = await session.execute(
            select(TrustedIssuer)
            .where(TrustedIssuer.organisation_id == organisation_id)
            .order_by(TrustedIssuer.issuer)
        )
        return list(rows.scalars().all())
