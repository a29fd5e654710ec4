"""All table models, imported here so Alembic and the app see one metadata."""

from app.models.audit import AuditChainHead, AuditEvent
from app.models.care_chain import CoordinatorAssignment, Episode
from app.models.client import Client, ClientLink
from app.models.events import EventRecipient, OutboxEvent, Webhook, WebhookAttempt, WebhookDelivery
from app.models.idempotency import IdempotencyRecord
from app.models.identity import Role, TrustedIssuer, User
from app.models.meeting import FollowUp, Meeting, MeetingInvitee
from app.models.organisation import Organisation, OrganisationKind, Unit
from app.models.plan import (
    Action,
    Consent,
    ConsentScope,
    Goal,
    Need,
    Plan,
    PlanParticipant,
    PlanVersion,
)

__all__ = [
    "Action",
    "AuditChainHead",
    "AuditEvent",
    "Client",
    "ClientLink",
    "Consent",
    "ConsentScope",
    "CoordinatorAssignment",
    "Episode",
    "EventRecipient",
    "FollowUp",
    "Goal",
    "IdempotencyRecord",
    "Meeting",
    "MeetingInvitee",
    "Need",
    "Organisation",
    "OrganisationKind",
    "OutboxEvent",
    "Plan",
    "PlanParticipant",
    "PlanVersion",
    "Role",
    "TrustedIssuer",
    "Unit",
    "User",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
]
