"""The care-chain rules on their own: overlap, six months of LVM care, a new decision for new care,
and vård i annan form inside LVM care. No database."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.models.phase import Phase
from app.services.episode_rules import Span, add_months, change_problems, episode_problems, lvm_limit

_ids = iter(range(1, 10_000))


def span(
    phase: Phase, start: date, end: date | None = None, planned_end: date | None = None, id: object = None
) -> Span:
    return Span(id if id is not None else next(_ids), phase, start, end, planned_end)


def rules(new: Span, *others: Span) -> list[str]:
    return [p.rule for p in episode_problems(new, others)]


D = date(2026, 1, 10)


# ---- add_months and the six-month limit ------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 1, 15), 6, date(2026, 7, 15)),
        (date(2026, 9, 15), 6, date(2027, 3, 15)),  # over the year end
        (date(2026, 1, 31), 1, date(2026, 2, 28)),  # clamped to the month's last day
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # a leap year
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2026, 3, 31), 6, date(2026, 9, 30)),
        (date(2026, 12, 31), 2, date(2027, 2, 28)),
        (date(2027, 3, 15), -6, date(2026, 9, 15)),  # backwards over the year end
        (date(2026, 8, 31), -6, date(2026, 2, 28)),
        (date(2026, 5, 20), 0, date(2026, 5, 20)),
    ],
)
def test_add_months(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


def test_lvm_limit_is_six_months_with_month_end_clamping() -> None:
    assert lvm_limit(date(2026, 1, 15)) == date(2026, 7, 15)
    assert lvm_limit(date(2026, 8, 31)) == date(2027, 2, 28)
    assert lvm_limit(date(2027, 8, 31)) == date(2028, 2, 29)


# ---- overlap ---------------------------------------------------------------------------------


def test_same_phase_episodes_may_not_overlap() -> None:
    first = span(Phase.lvm_utredning, D, end=D + timedelta(days=20))
    assert rules(span(Phase.lvm_utredning, D + timedelta(days=5), end=D + timedelta(days=30)), first) == [
        "overlap"
    ]
    # Touching on one day is an overlap: both intervals include their end day.
    assert rules(span(Phase.lvm_utredning, D + timedelta(days=20)), first) == ["overlap"]
    # The day after is free.
    assert rules(span(Phase.lvm_utredning, D + timedelta(days=21), end=D + timedelta(days=30)), first) == []
    # An earlier episode ending the day before is free too.
    assert rules(span(Phase.lvm_utredning, D - timedelta(days=10), end=D - timedelta(days=1)), first) == []


def test_different_phases_may_overlap_unless_both_are_exclusive_care() -> None:
    utredning = span(Phase.lvm_utredning, D, end=D + timedelta(days=30))
    assert rules(span(Phase.lvm_ansokan, D + timedelta(days=10), end=D + timedelta(days=12)), utredning) == []
    vard = span(Phase.lvm_vard, D, end=D + timedelta(days=60))
    assert rules(span(Phase.utskrivning, D + timedelta(days=60), end=D + timedelta(days=60)), vard) == []


def test_lvm_vard_and_eftervard_may_not_overlap() -> None:
    vard = span(Phase.lvm_vard, D, end=D + timedelta(days=60))
    assert rules(span(Phase.eftervard, D + timedelta(days=60), end=D + timedelta(days=200)), vard) == [
        "overlap"
    ]
    assert rules(span(Phase.eftervard, D + timedelta(days=61), end=D + timedelta(days=200)), vard) == []
    # Both ways round: LVM care recorded into a running aftercare.
    eftervard = span(Phase.eftervard, D + timedelta(days=61), end=D + timedelta(days=200))
    assert rules(span(Phase.lvm_vard, D + timedelta(days=100), end=D + timedelta(days=150)), eftervard) == [
        "overlap"
    ]


def test_a_planned_end_counts_as_the_last_day_when_the_end_is_unknown() -> None:
    vard = span(Phase.lvm_vard, D, planned_end=D + timedelta(days=90))
    assert rules(span(Phase.eftervard, D + timedelta(days=90)), vard) == ["overlap"]
    assert rules(span(Phase.eftervard, D + timedelta(days=91)), vard) == []
    # A known end wins over the plan.
    ended = span(Phase.lvm_vard, D, end=D + timedelta(days=30), planned_end=D + timedelta(days=90))
    assert rules(span(Phase.eftervard, D + timedelta(days=31)), ended) == []


def test_an_open_ended_episode_lasts_until_further_notice() -> None:
    open_eftervard = span(Phase.eftervard, D)
    assert rules(span(Phase.eftervard, D + timedelta(days=3000)), open_eftervard) == ["overlap"]
    # Before it starts is free.
    assert (
        rules(span(Phase.eftervard, D - timedelta(days=100), end=D - timedelta(days=1)), open_eftervard) == []
    )
    # An open lvm_vard blocks any later aftercare.
    open_vard = span(Phase.lvm_vard, D)
    assert rules(span(Phase.eftervard, D + timedelta(days=400)), open_vard) == ["overlap"]
    # An open-ended lvm_vard alone breaks no rule (its end is not yet known).
    assert rules(span(Phase.lvm_vard, D)) == []


def test_the_episode_being_edited_does_not_conflict_with_itself() -> None:
    stored = span(Phase.eftervard, D, end=D + timedelta(days=100), id="e1")
    edited = span(Phase.eftervard, D + timedelta(days=10), end=D + timedelta(days=50), id="e1")
    assert rules(edited, stored) == []
    # ... but an edit into another episode of the same phase does conflict.
    other = span(Phase.eftervard, D + timedelta(days=200), end=D + timedelta(days=300), id="e2")
    assert rules(span(Phase.eftervard, D, end=D + timedelta(days=250), id="e1"), stored, other) == ["overlap"]
    # An lvm_vard edited to a later start is not its own "previous care".
    vard = span(Phase.lvm_vard, D, id="v1")
    assert rules(span(Phase.lvm_vard, D + timedelta(days=5), id="v1"), vard) == []


# ---- six months ------------------------------------------------------------------------------


def test_lvm_vard_may_last_six_months_and_not_a_day_more() -> None:
    start = date(2026, 1, 15)
    assert rules(span(Phase.lvm_vard, start, end=date(2026, 7, 15))) == []
    assert rules(span(Phase.lvm_vard, start, end=date(2026, 7, 16))) == ["lvm_six_months"]
    assert rules(span(Phase.lvm_vard, start, planned_end=date(2026, 7, 15))) == []
    problems = episode_problems(span(Phase.lvm_vard, start, planned_end=date(2026, 7, 16)), [])
    assert [p.rule for p in problems] == ["lvm_six_months"]
    assert "planned_end_date" in problems[0].message and "2026-07-15" in problems[0].message
    # Both dates over the limit: each is named.
    assert rules(span(Phase.lvm_vard, start, end=date(2026, 8, 1), planned_end=date(2026, 9, 1))) == [
        "lvm_six_months",
        "lvm_six_months",
    ]


def test_six_months_clamps_at_the_month_end() -> None:
    start = date(2026, 8, 31)
    assert rules(span(Phase.lvm_vard, start, end=date(2027, 2, 28))) == []
    assert rules(span(Phase.lvm_vard, start, end=date(2027, 3, 1))) == ["lvm_six_months"]
    # In a leap year February has 29 days.
    assert rules(span(Phase.lvm_vard, date(2027, 8, 31), end=date(2028, 2, 29))) == []
    assert rules(span(Phase.lvm_vard, date(2027, 8, 31), end=date(2028, 3, 1))) == ["lvm_six_months"]


def test_the_six_month_limit_is_only_for_lvm_vard() -> None:
    assert rules(span(Phase.eftervard, D, end=D + timedelta(days=365))) == []


# ---- a new decision for new LVM care -----------------------------------------------------------


def test_new_lvm_care_needs_a_new_decision() -> None:
    first_decision = span(Phase.lvm_ansokan, D - timedelta(days=5), end=D - timedelta(days=1))
    first = span(Phase.lvm_vard, D, end=D + timedelta(days=120))
    second_start = D + timedelta(days=300)
    second = span(Phase.lvm_vard, second_start, planned_end=second_start + timedelta(days=90))
    # Only the decision before the first care: not enough.
    assert rules(second, first_decision, first) == ["lvm_new_decision"]
    # A new application between the two periods satisfies it, and so does an immediate custody.
    for phase in (Phase.lvm_ansokan, Phase.omedelbart_omhandertagande):
        decision = span(phase, D + timedelta(days=290), end=D + timedelta(days=295))
        assert rules(second, first_decision, first, decision) == [], phase
    # A decision on the day the new care starts counts.
    same_day = span(Phase.lvm_ansokan, second_start, end=second_start)
    assert rules(second, first, same_day) == []
    # A decision after the new care started does not.
    later = span(Phase.lvm_ansokan, second_start + timedelta(days=1))
    assert rules(second, first, later) == ["lvm_new_decision"]
    # Other phases are no decision.
    for phase in (Phase.lvm_anmalan, Phase.lvm_utredning, Phase.utskrivning, Phase.eftervard):
        between = span(phase, D + timedelta(days=200), end=D + timedelta(days=210))
        assert rules(second, first, between) == ["lvm_new_decision"], phase


def test_the_first_lvm_care_needs_no_earlier_decision_episode() -> None:
    assert rules(span(Phase.lvm_vard, D, end=D + timedelta(days=30))) == []


def test_the_decision_must_come_after_the_latest_earlier_care() -> None:
    first = span(Phase.lvm_vard, D, end=D + timedelta(days=30))
    decision_1 = span(Phase.lvm_ansokan, D + timedelta(days=100))
    second = span(Phase.lvm_vard, D + timedelta(days=101), end=D + timedelta(days=130))
    third = span(Phase.lvm_vard, D + timedelta(days=300), end=D + timedelta(days=330))
    # The decision between the first and second care does not cover the third.
    assert rules(third, first, decision_1, second) == ["lvm_new_decision"]
    decision_2 = span(Phase.omedelbart_omhandertagande, D + timedelta(days=299))
    assert rules(third, first, decision_1, second, decision_2) == []


# ---- vård i annan form (27 §) ------------------------------------------------------------------


def test_vard_i_annan_form_inside_lvm_vard() -> None:
    vard = span(Phase.lvm_vard, D, end=D + timedelta(days=150))
    assert (
        rules(span(Phase.vard_i_annan_form, D + timedelta(days=60), end=D + timedelta(days=150)), vard) == []
    )
    assert rules(span(Phase.vard_i_annan_form, D, end=D + timedelta(days=1)), vard) == []
    # Inside a still running lvm_vard with a planned end.
    planned = span(Phase.lvm_vard, D, planned_end=D + timedelta(days=150))
    assert (
        rules(span(Phase.vard_i_annan_form, D + timedelta(days=60), end=D + timedelta(days=90)), planned)
        == []
    )


def test_vard_i_annan_form_outside_lvm_vard() -> None:
    vard = span(Phase.lvm_vard, D, end=D + timedelta(days=150))
    # Starting before the care.
    assert rules(span(Phase.vard_i_annan_form, D - timedelta(days=1), end=D + timedelta(days=10)), vard) == [
        "within_lvm_vard"
    ]
    # Ending after it.
    assert rules(
        span(Phase.vard_i_annan_form, D + timedelta(days=100), end=D + timedelta(days=151)), vard
    ) == ["within_lvm_vard"]
    # Entirely after it.
    assert rules(
        span(Phase.vard_i_annan_form, D + timedelta(days=200), end=D + timedelta(days=210)), vard
    ) == ["within_lvm_vard"]
    # Without any LVM care at all.
    assert rules(span(Phase.vard_i_annan_form, D, end=D + timedelta(days=10))) == ["within_lvm_vard"]
    # Inside the dates of aftercare is no use.
    eftervard = span(Phase.eftervard, D, end=D + timedelta(days=150))
    assert rules(
        span(Phase.vard_i_annan_form, D + timedelta(days=1), end=D + timedelta(days=5)), eftervard
    ) == ["within_lvm_vard"]


def test_vard_i_annan_form_may_not_pass_the_six_month_limit() -> None:
    start = date(2026, 8, 31)
    open_vard = span(Phase.lvm_vard, start)  # still running, no end known
    limit = date(2027, 2, 28)
    assert rules(span(Phase.vard_i_annan_form, date(2026, 12, 1), end=limit), open_vard) == []
    assert rules(
        span(Phase.vard_i_annan_form, date(2026, 12, 1), end=limit + timedelta(days=1)), open_vard
    ) == ["within_lvm_vard"]
    assert rules(
        span(Phase.vard_i_annan_form, date(2026, 12, 1), planned_end=limit + timedelta(days=1)), open_vard
    ) == ["within_lvm_vard"]
    # Open-ended vård i annan form would pass the limit.
    assert rules(span(Phase.vard_i_annan_form, date(2026, 12, 1)), open_vard) == ["within_lvm_vard"]


def test_every_broken_rule_is_listed() -> None:
    earlier = span(Phase.lvm_vard, D, end=D + timedelta(days=30))
    eftervard = span(Phase.eftervard, D + timedelta(days=31))  # open
    new = span(Phase.lvm_vard, D + timedelta(days=100), end=D + timedelta(days=400))
    assert sorted(rules(new, earlier, eftervard)) == ["lvm_new_decision", "lvm_six_months", "overlap"]


# ---- a change must not break the episodes that depend on it -------------------------------------


def test_shortening_lvm_care_may_not_leave_vard_i_annan_form_outside_it() -> None:
    vard = span(Phase.lvm_vard, D, planned_end=D + timedelta(days=150), id="v")
    annan = span(Phase.vard_i_annan_form, D + timedelta(days=60), end=D + timedelta(days=120), id="a")
    stored = [vard, annan]
    # Ending the care after the 27 § period, or on its last day, is fine.
    assert change_problems(span(Phase.lvm_vard, D, end=D + timedelta(days=120), id="v"), stored) == []
    # Ending it before the 27 § period ends breaks that period's rule, and the problem names it.
    problems = change_problems(span(Phase.lvm_vard, D, end=D + timedelta(days=100), id="v"), stored)
    assert [p.rule for p in problems] == ["within_lvm_vard"]
    assert f"vard_i_annan_form episode starting {D + timedelta(days=60)}" in problems[0].message
    # The same through the planned end, and by moving the start past the 27 § start.
    assert [
        p.rule
        for p in change_problems(span(Phase.lvm_vard, D, planned_end=D + timedelta(days=90), id="v"), stored)
    ] == ["within_lvm_vard"]
    moved = span(Phase.lvm_vard, D + timedelta(days=61), planned_end=D + timedelta(days=150), id="v")
    assert [p.rule for p in change_problems(moved, stored)] == ["within_lvm_vard"]
    # episode_problems alone (the changed episode's own rules) would not have noticed.
    assert episode_problems(span(Phase.lvm_vard, D, end=D + timedelta(days=100), id="v"), stored) == []


def test_moving_a_decision_may_not_leave_later_care_without_one() -> None:
    first = span(Phase.lvm_vard, D, end=D + timedelta(days=30), id="v1")
    decision = span(Phase.lvm_ansokan, D + timedelta(days=100), end=D + timedelta(days=104), id="d")
    second = span(Phase.lvm_vard, D + timedelta(days=105), id="v2")
    stored = [first, decision, second]
    # Changing the decision's dates within the gap is fine.
    assert change_problems(span(Phase.lvm_ansokan, D + timedelta(days=90), id="d"), stored) == []
    # Moving it after the second care started leaves that care without a decision.
    problems = change_problems(span(Phase.lvm_ansokan, D + timedelta(days=106), id="d"), stored)
    assert [p.rule for p in problems] == ["lvm_new_decision"]
    assert f"lvm_vard episode starting {D + timedelta(days=105)}" in problems[0].message
    # So does moving it before the first care.
    assert [
        p.rule for p in change_problems(span(Phase.lvm_ansokan, D - timedelta(days=5), id="d"), stored)
    ] == ["lvm_new_decision"]
    # Recording a new LVM care period between the decision and the second care takes the decision
    # away from the second care: the new care itself is fine, the second care is not.
    inserted = span(Phase.lvm_vard, D + timedelta(days=104), end=D + timedelta(days=104))
    assert [p.rule for p in change_problems(inserted, stored)] == ["lvm_new_decision"]


def test_change_problems_keeps_the_episodes_own_rules_and_ignores_old_breaches() -> None:
    vard = span(Phase.lvm_vard, D, end=D + timedelta(days=30), id="v")
    # Its own rules are reported as by episode_problems.
    over = span(Phase.lvm_vard, D, end=D + timedelta(days=400), id="v")
    assert [p.rule for p in change_problems(over, [vard])] == ["lvm_six_months"]
    # A 27 § period already outside LVM care (stored before the rule) does not block an unrelated change.
    stray = span(Phase.vard_i_annan_form, D + timedelta(days=200), end=D + timedelta(days=210), id="a")
    unrelated = span(Phase.lvm_utredning, D - timedelta(days=20), end=D - timedelta(days=10))
    assert change_problems(unrelated, [vard, stray]) == []
    # A new episode is checked against all stored ones.
    assert [p.rule for p in change_problems(span(Phase.lvm_vard, D + timedelta(days=10)), [vard])] == [
        "overlap",
        "lvm_new_decision",
    ]
