"""The pure plan rules: activation (each rule on its own, then together) and the transition table.

No database: Plan, PlanParticipant, Action and Consent are built directly.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from app.models.organisation import OrganisationKind
from app.models.plan import (
    Action,
    ActionStatus,
    Consent,
    ConsentMethod,
    ParticipantKind,
    Plan,
    PlanParticipant,
    PlanStatus,
    TransitionTarget,
)
from app.services import plan_rules
from app.services.plan_rules import TRANSITIONS, UnmetRule, activation_problems, transition_allowed

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
TODAY = NOW.date()

KOMMUN = uuid.uuid4()
REGION = uuid.uuid4()
SIS = uuid.uuid4()
OTHER_KOMMUN = uuid.uuid4()  # exists, but takes no part

KINDS: dict[uuid.UUID, OrganisationKind] = {
    KOMMUN: OrganisationKind.kommun,
    REGION: OrganisationKind.region,
    SIS: OrganisationKind.state,
    OTHER_KOMMUN: OrganisationKind.kommun,
}


def _participant(plan_id: uuid.UUID, org: uuid.UUID | None, kind: ParticipantKind) -> PlanParticipant:
    return PlanParticipant(
        id=uuid.uuid4(), plan_id=plan_id, kind=kind, organisation_id=org, added_by_organisation_id=KOMMUN
    )


def _action(plan_id: uuid.UUID, responsible: uuid.UUID, status: ActionStatus) -> Action:
    return Action(
        id=uuid.uuid4(),
        plan_id=plan_id,
        description="Insats",
        responsible_organisation_id=responsible,
        status=status,
        proposed_by_organisation_id=KOMMUN,
    )


def _consent(plan_id: uuid.UUID, *, valid_until: date | None = None, withdrawn: bool = False) -> Consent:
    return Consent(
        id=uuid.uuid4(),
        plan_id=plan_id,
        given_at=NOW - timedelta(days=1),
        obtained_by="Hanna Handläggare",
        method=ConsentMethod.written,
        valid_until=valid_until,
        recorded_by_organisation_id=KOMMUN,
        withdrawn_at=NOW - timedelta(hours=1) if withdrawn else None,
        withdrawn_reason="återkallat" if withdrawn else None,
    )


@dataclass
class Case:
    """A plan that meets every activation rule; tests break exactly one thing."""

    plan: Plan
    participants: list[PlanParticipant] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    consents: list[Consent] = field(default_factory=list)
    kinds: dict[uuid.UUID, OrganisationKind] = field(default_factory=lambda: dict(KINDS))

    def problems(self, now: datetime = NOW) -> list[UnmetRule]:
        return activation_problems(self.plan, self.participants, self.kinds, self.actions, self.consents, now)

    def rules(self, now: datetime = NOW) -> list[str]:
        return [p.rule for p in self.problems(now)]


def valid_case() -> Case:
    plan = Plan(
        id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        title="SIP inför utskrivning",
        initiating_organisation_id=KOMMUN,
        created_by="test",
        overall_responsible_organisation_id=KOMMUN,
        follow_up_date=TODAY + timedelta(days=30),
    )
    pid = plan.id
    return Case(
        plan=plan,
        participants=[
            _participant(pid, KOMMUN, ParticipantKind.huvudman),
            _participant(pid, REGION, ParticipantKind.huvudman),
            _participant(pid, SIS, ParticipantKind.other),
            _participant(pid, None, ParticipantKind.client),
        ],
        actions=[
            _action(pid, KOMMUN, ActionStatus.accepted),
            _action(pid, REGION, ActionStatus.accepted),
            _action(pid, SIS, ActionStatus.accepted),
        ],
        consents=[_consent(pid)],
    )


# ---- a valid plan --------------------------------------------------------------------------


def test_a_fully_valid_plan_has_no_problems() -> None:
    assert valid_case().problems() == []


@pytest.mark.parametrize("status", [ActionStatus.accepted, ActionStatus.started, ActionStatus.completed])
def test_every_committed_action_status_counts_as_accepted(status: ActionStatus) -> None:
    case = valid_case()
    for action in case.actions:
        action.status = status
    assert case.problems() == []


def test_follow_up_today_is_not_in_the_past() -> None:
    case = valid_case()
    case.plan.follow_up_date = TODAY
    assert case.problems() == []


def test_consent_valid_until_today_is_still_active() -> None:
    case = valid_case()
    case.consents = [_consent(case.plan.id, valid_until=TODAY)]
    assert case.problems() == []
    assert plan_rules.consent_is_active(case.consents[0], NOW)
    # The day after, the same consent has expired.
    assert not plan_rules.consent_is_active(case.consents[0], NOW + timedelta(days=1))
    assert case.rules(NOW + timedelta(days=1)) == ["consent"]


def test_one_active_consent_among_withdrawn_and_expired_ones_is_enough() -> None:
    case = valid_case()
    pid = case.plan.id
    case.consents = [
        _consent(pid, withdrawn=True),
        _consent(pid, valid_until=TODAY - timedelta(days=1)),
        _consent(pid, valid_until=TODAY + timedelta(days=365)),
    ]
    assert case.problems() == []


# ---- each rule on its own ------------------------------------------------------------------


def test_consent_missing() -> None:
    case = valid_case()
    case.consents = []
    assert case.rules() == ["consent"]


def test_consent_withdrawn() -> None:
    case = valid_case()
    case.consents = [_consent(case.plan.id, withdrawn=True)]
    assert case.rules() == ["consent"]
    assert not plan_rules.consent_is_active(case.consents[0], NOW)


def test_consent_expired() -> None:
    case = valid_case()
    case.consents = [_consent(case.plan.id, valid_until=TODAY - timedelta(days=1))]
    assert case.rules() == ["consent"]


def test_no_kommun_participant() -> None:
    case = valid_case()
    pid = case.plan.id
    # The region initiates and holds the overall responsibility; no kommun takes part.
    case.plan.overall_responsible_organisation_id = REGION
    case.participants = [p for p in case.participants if p.organisation_id != KOMMUN]
    case.actions = [_action(pid, REGION, ActionStatus.accepted)]
    assert case.rules() == ["kommun_participant"]


def test_a_kommun_that_takes_part_only_as_other_is_no_kommun_participant() -> None:
    case = valid_case()
    pid = case.plan.id
    case.plan.overall_responsible_organisation_id = REGION
    case.participants = [
        _participant(pid, REGION, ParticipantKind.huvudman),
        _participant(pid, KOMMUN, ParticipantKind.other),
    ]
    case.actions = [_action(pid, REGION, ActionStatus.accepted)]
    assert case.rules() == ["kommun_participant"]


def test_no_region_participant() -> None:
    case = valid_case()
    pid = case.plan.id
    case.participants = [p for p in case.participants if p.organisation_id != REGION]
    case.actions = [_action(pid, KOMMUN, ActionStatus.accepted)]
    assert case.rules() == ["region_participant"]


def test_overall_responsibility_missing() -> None:
    case = valid_case()
    case.plan.overall_responsible_organisation_id = None
    problems = case.problems()
    assert [p.rule for p in problems] == ["overall_responsibility"]
    assert problems[0].as_error() == {"rule": "overall_responsibility", "message": problems[0].message}


def test_overall_responsibility_held_by_a_non_participant() -> None:
    case = valid_case()
    case.plan.overall_responsible_organisation_id = OTHER_KOMMUN
    assert case.rules() == ["overall_responsibility"]


def test_overall_responsibility_held_by_an_unknown_organisation() -> None:
    case = valid_case()
    case.plan.overall_responsible_organisation_id = uuid.uuid4()
    assert case.rules() == ["overall_responsibility"]


def test_overall_responsibility_held_by_sis_as_other_actor() -> None:
    case = valid_case()
    case.plan.overall_responsible_organisation_id = SIS
    assert case.rules() == ["overall_responsibility"]


def test_overall_responsibility_held_by_a_state_organisation_recorded_as_huvudman() -> None:
    # Only a kommun or a region may hold it, whatever kind of participant row names the organisation.
    case = valid_case()
    pid = case.plan.id
    case.participants = [p for p in case.participants if p.organisation_id != SIS]
    case.participants.append(_participant(pid, SIS, ParticipantKind.huvudman))
    case.plan.overall_responsible_organisation_id = SIS
    assert case.rules() == ["overall_responsibility"]


def test_no_actions() -> None:
    case = valid_case()
    case.actions = []
    assert case.rules() == ["actions"]


def test_only_cancelled_actions_count_as_no_actions() -> None:
    case = valid_case()
    for action in case.actions:
        action.status = ActionStatus.cancelled
    assert case.rules() == ["actions"]


def test_action_whose_responsible_organisation_does_not_take_part() -> None:
    case = valid_case()
    stray = _action(case.plan.id, OTHER_KOMMUN, ActionStatus.accepted)
    case.actions.append(stray)
    problems = case.problems()
    assert [p.rule for p in problems] == ["action_responsible"]
    assert str(stray.id) in problems[0].message


@pytest.mark.parametrize("status", [ActionStatus.proposed, ActionStatus.disputed])
def test_action_not_accepted(status: ActionStatus) -> None:
    case = valid_case()
    pending = _action(case.plan.id, REGION, status)
    case.actions.append(pending)
    problems = case.problems()
    assert [p.rule for p in problems] == ["action_accepted"]
    assert str(pending.id) in problems[0].message and status.value in problems[0].message


def test_follow_up_date_missing() -> None:
    case = valid_case()
    case.plan.follow_up_date = None
    assert case.rules() == ["follow_up_date"]


def test_follow_up_date_in_the_past() -> None:
    case = valid_case()
    case.plan.follow_up_date = TODAY - timedelta(days=1)
    problems = case.problems()
    assert [p.rule for p in problems] == ["follow_up_date"]
    assert "passed" in problems[0].message


@pytest.mark.parametrize("status", [ActionStatus.proposed, ActionStatus.disputed])
def test_cancelled_actions_are_ignored(status: ActionStatus) -> None:
    case = valid_case()
    pid = case.plan.id
    # Neither an unaccepted nor a stray action matters once cancelled.
    for responsible in (REGION, OTHER_KOMMUN):
        action = _action(pid, responsible, status)
        action.status = ActionStatus.cancelled
        case.actions.append(action)
    assert case.problems() == []


# ---- several at once -----------------------------------------------------------------------


def test_every_unmet_rule_is_listed() -> None:
    plan = Plan(
        id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        title="Tom",
        initiating_organisation_id=SIS,
        created_by="test",
    )
    case = Case(plan=plan, participants=[_participant(plan.id, SIS, ParticipantKind.other)])
    assert case.rules() == [
        "consent",
        "kommun_participant",
        "region_participant",
        "overall_responsibility",
        "actions",
        "follow_up_date",
    ]


def test_each_bad_action_is_listed_beside_other_rules() -> None:
    case = valid_case()
    pid = case.plan.id
    case.consents = [_consent(pid, withdrawn=True)]
    case.plan.follow_up_date = TODAY - timedelta(days=3)
    proposed = _action(pid, REGION, ActionStatus.proposed)
    disputed = _action(pid, KOMMUN, ActionStatus.disputed)
    stray = _action(pid, OTHER_KOMMUN, ActionStatus.proposed)
    case.actions += [proposed, disputed, stray]
    problems = case.problems()
    assert [p.rule for p in problems] == [
        "consent",
        "action_accepted",
        "action_accepted",
        "action_responsible",
        "follow_up_date",
    ]
    # One entry per action, naming it.
    named = [p.message for p in problems if p.rule.startswith("action_")]
    for action, message in zip((proposed, disputed, stray), named, strict=True):
        assert str(action.id) in message


# ---- transitions ---------------------------------------------------------------------------

# The life cycle of DOMAIN.md, written out independently of the table in plan_rules.
EXPECTED_TRANSITIONS = {
    (PlanStatus.draft, TransitionTarget.active),
    (PlanStatus.draft, TransitionTarget.cancelled),
    (PlanStatus.active, TransitionTarget.paused),
    (PlanStatus.active, TransitionTarget.closed),
    (PlanStatus.paused, TransitionTarget.active),
    (PlanStatus.paused, TransitionTarget.closed),
}


@pytest.mark.parametrize("status", list(PlanStatus))
@pytest.mark.parametrize("target", list(TransitionTarget))
def test_transition_table(status: PlanStatus, target: TransitionTarget) -> None:
    expected = (status, target) in EXPECTED_TRANSITIONS
    assert transition_allowed(status, target) is expected
    assert (target in TRANSITIONS[status]) is expected


def test_every_status_has_a_row_and_closed_and_cancelled_are_final() -> None:
    assert set(TRANSITIONS) == set(PlanStatus)
    assert TRANSITIONS[PlanStatus.closed] == frozenset()
    assert TRANSITIONS[PlanStatus.cancelled] == frozenset()
    assert {PlanStatus.draft, PlanStatus.active, PlanStatus.paused} == plan_rules.OPEN_STATUSES


def test_huvudman_participants_ignores_other_actors_people_and_unknown_organisations() -> None:
    case = valid_case()
    pid = case.plan.id
    case.participants.append(_participant(pid, None, ParticipantKind.narstaende))
    case.participants.append(_participant(pid, uuid.uuid4(), ParticipantKind.huvudman))  # not in kinds
    assert plan_rules.huvudman_participants(case.participants, case.kinds) == {
        KOMMUN: OrganisationKind.kommun,
        REGION: OrganisationKind.region,
    }
