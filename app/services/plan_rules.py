"""Pure domain decisions about plans: can it activate, which transitions exist, is consent active.

No database and no HTTP: these take loaded data and answer, so they are tested directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from app.models.organisation import OrganisationKind
from app.models.plan import (
    COMMITTED_ACTION_STATUSES,
    Action,
    ActionStatus,
    Consent,
    ParticipantKind,
    Plan,
    PlanParticipant,
    PlanStatus,
    TransitionTarget,
)


@dataclass(frozen=True)
class UnmetRule:
    rule: str
    message: str

    def as_error(self) -> dict[str, str]:
        return {"rule": self.rule, "message": self.message}


def consent_is_active(consent: Consent, now: datetime) -> bool:
    return consent_is_active_at(consent.withdrawn_at, consent.valid_until, now)


def consent_is_active_at(withdrawn_at: datetime | None, valid_until: date | None, now: datetime) -> bool:
    # Same rule as access.active_consent_clause and the RLS function.
    return withdrawn_at is None and (valid_until is None or valid_until >= now.date())


def huvudman_participants(
    participants: Iterable[PlanParticipant], kinds: Mapping[uuid.UUID, OrganisationKind]
) -> dict[uuid.UUID, OrganisationKind]:
    return {
        p.organisation_id: kinds[p.organisation_id]
        for p in participants
        if p.kind == ParticipantKind.huvudman
        and p.organisation_id is not None
        and p.organisation_id in kinds
        and kinds[p.organisation_id].is_huvudman  # only a kommun or a region is a huvudman
    }


def activation_problems(
    plan: Plan,
    participants: Iterable[PlanParticipant],
    org_kinds: Mapping[uuid.UUID, OrganisationKind],
    actions: Iterable[Action],
    consents: Iterable[Consent],
    now: datetime,
) -> list[UnmetRule]:
    """Every rule of DOMAIN.md that stops activation, not just the first."""
    participants = list(participants)
    actions = [a for a in actions if a.status != ActionStatus.cancelled]
    problems: list[UnmetRule] = []
    if not any(consent_is_active(c, now) for c in consents):
        problems.append(UnmetRule("consent", "the client's active consent is missing"))
    huvudmen = huvudman_participants(participants, org_kinds)
    if OrganisationKind.kommun not in huvudmen.values():
        problems.append(UnmetRule("kommun_participant", "no kommun takes part as huvudman"))
    if OrganisationKind.region not in huvudmen.values():
        problems.append(UnmetRule("region_participant", "no region takes part as huvudman"))
    if plan.overall_responsible_organisation_id is None:
        problems.append(
            UnmetRule("overall_responsibility", "no organisation holds the overall responsibility")
        )
    elif plan.overall_responsible_organisation_id not in huvudmen:
        problems.append(
            UnmetRule(
                "overall_responsibility",
                "the overall responsibility must be held by a participating kommun or region",
            )
        )
    if not actions:
        problems.append(UnmetRule("actions", "the plan has no actions"))
    participating = {p.organisation_id for p in participants if p.organisation_id is not None}
    for action in actions:
        if action.responsible_organisation_id not in participating:
            problems.append(
                UnmetRule(
                    "action_responsible",
                    f"action {action.id} has a responsible organisation that does not take part",
                )
            )
        elif action.status not in COMMITTED_ACTION_STATUSES:
            problems.append(
                UnmetRule(
                    "action_accepted",
                    f"action {action.id} is {action.status.value}, not accepted by its responsible organisation",
                )
            )
    if plan.follow_up_date is None:
        problems.append(UnmetRule("follow_up_date", "the plan has no follow-up date"))
    elif plan.follow_up_date < now.date():
        problems.append(UnmetRule("follow_up_date", "the follow-up date has passed"))
    return problems


# Which state may go where. Activation from paused re-checks every rule.
TRANSITIONS: dict[PlanStatus, frozenset[TransitionTarget]] = {
    PlanStatus.draft: frozenset({TransitionTarget.active, TransitionTarget.cancelled}),
    PlanStatus.active: frozenset({TransitionTarget.paused, TransitionTarget.closed}),
    PlanStatus.paused: frozenset({TransitionTarget.active, TransitionTarget.closed}),
    PlanStatus.closed: frozenset(),
    PlanStatus.cancelled: frozenset(),
}

OPEN_STATUSES = frozenset({PlanStatus.draft, PlanStatus.active, PlanStatus.paused})


def transition_allowed(current: PlanStatus, target: TransitionTarget) -> bool:
    return target in TRANSITIONS[current]
