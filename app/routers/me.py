from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel

from app.deps import PrincipalDep
from app.models.identity import Role
from app.models.organisation import OrganisationKind

router = APIRouter(prefix="/api/v1", tags=["identity"])


class Me(BaseModel):
    user_id: uuid.UUID
    subject: str
    name: str | None
    organisation_id: uuid.UUID
    org_number: str
    organisation_kind: OrganisationKind
    roles: list[Role]
    issuer: str
    unit: str | None
    county: str | None


@router.get("/me", response_model=Me, summary="The caller as the service sees it")
async def me(principal: PrincipalDep) -> Me:
    return Me(
        user_id=principal.user_id,
        subject=principal.subject,
        name=principal.name,
        organisation_id=principal.organisation_id,
        org_number=principal.org_number,
        organisation_kind=principal.org_kind,
        roles=sorted(principal.roles),
        issuer=principal.issuer,
        unit=principal.unit_hsa_id,
        county=principal.county,
    )
