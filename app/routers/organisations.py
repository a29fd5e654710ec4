from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Response, status

from app.deps import PrincipalDep, SessionDep
from app.models.identity import TrustedIssuerCreate, TrustedIssuerPublic
from app.models.organisation import (
    CountyCode,
    OrganisationCreate,
    OrganisationKind,
    OrganisationPublic,
    UnitCreate,
    UnitPublic,
)
from app.services import organisations as service
from app.services.pagination import DEFAULT_LIMIT, Cursor, Limit, Page

router = APIRouter(prefix="/api/v1/organisations", tags=["organisations"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrganisationPublic,
    summary="Register an organisation (platform_admin)",
    responses={409: {"description": "the organisationsnummer is already registered"}},
)
async def create_organisation(
    data: OrganisationCreate, session: SessionDep, principal: PrincipalDep, response: Response
) -> OrganisationPublic:
    org = await service.create_organisation(session, principal, data)
    response.headers["Location"] = f"/api/v1/organisations/{org.id}"
    return OrganisationPublic.model_validate(org, from_attributes=True)


@router.get("", response_model=Page[OrganisationPublic], summary="The organisation register")
async def list_organisations(
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    kind: OrganisationKind | None = None,
    county_code: CountyCode | None = Query(default=None),
) -> Page[OrganisationPublic]:
    rows, next_cursor = await service.list_organisations(
        session, limit=limit, cursor=cursor, kind=kind, county_code=county_code
    )
    return Page(
        items=[OrganisationPublic.model_validate(o, from_attributes=True) for o in rows],
        next_cursor=next_cursor,
    )


@router.get("/{organisation_id}", response_model=OrganisationPublic, summary="One organisation")
async def get_organisation(organisation_id: uuid.UUID, session: SessionDep) -> OrganisationPublic:
    org = await service.get_organisation(session, organisation_id)
    return OrganisationPublic.model_validate(org, from_attributes=True)


@router.post(
    "/{organisation_id}/units",
    status_code=status.HTTP_201_CREATED,
    response_model=UnitPublic,
    summary="Add a unit (org_admin of the organisation)",
)
async def create_unit(
    organisation_id: uuid.UUID,
    data: UnitCreate,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
) -> UnitPublic:
    unit = await service.create_unit(session, principal, organisation_id, data)
    response.headers["Location"] = f"/api/v1/organisations/{organisation_id}/units/{unit.id}"
    return UnitPublic.model_validate(unit, from_attributes=True)


@router.get(
    "/{organisation_id}/units", response_model=Page[UnitPublic], summary="The organisation's own units"
)
async def list_units(
    organisation_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[UnitPublic]:
    rows, next_cursor = await service.list_units(
        session, principal, organisation_id, limit=limit, cursor=cursor
    )
    return Page(
        items=[UnitPublic.model_validate(u, from_attributes=True) for u in rows], next_cursor=next_cursor
    )


@router.post(
    "/{organisation_id}/issuers",
    status_code=status.HTTP_201_CREATED,
    response_model=TrustedIssuerPublic,
    summary="Trust a token issuer for the organisation (platform_admin)",
)
async def add_issuer(
    organisation_id: uuid.UUID, data: TrustedIssuerCreate, session: SessionDep, principal: PrincipalDep
) -> TrustedIssuerPublic:
    issuer = await service.add_trusted_issuer(session, principal, organisation_id, data)
    return TrustedIssuerPublic.model_validate(issuer, from_attributes=True)


@router.get(
    "/{organisation_id}/issuers",
    response_model=list[TrustedIssuerPublic],
    summary="The issuers trusted for the organisation (platform_admin)",
)
async def list_issuers(
    organisation_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> list[TrustedIssuerPublic]:
    rows = await service.list_trusted_issuers(session, principal, organisation_id)
    return [TrustedIssuerPublic.model_validate(i, from_attributes=True) for i in rows]
