"""All table models, imported here so Alembic and the app see one metadata."""

from app.models.audit import AuditChainHead, AuditEvent
from app.models.identity import Role, TrustedIssuer, User
from app.models.organisation import Organisation, OrganisationKind, Unit

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "Organisation",
    "OrganisationKind",
    "Role",
    "TrustedIssuer",
    "Unit",
    "User",
]
