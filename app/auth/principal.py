"""Who is calling: a Principal built from a verified bearer token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.models.identity import Role
from app.models.organisation import OrganisationKind


@dataclass(frozen=True)
class Principal:
    subject: str
    user_id: uuid.UUID
    organisation_id: uuid.UUID
    org_number: str
    org_kind: OrganisationKind
    org_county: str
    roles: frozenset[Role]
    issuer: str
    name: str | None = None
    unit_hsa_id: str | None = None
    county: str | None = None  # the county an `rss` caller follows up

    def has(self, *roles: Role) -> bool:
        return any(r in self.roles for r in roles)

    @property
    def roles_text(self) -> str:
        return ",".join(sorted(r.value for r in self.roles))
