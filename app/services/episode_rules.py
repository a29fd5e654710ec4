"""Pure rules for the care chain: what may follow what, and how long LVM care may last."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from app.models.phase import Phase
from app.services.plan_rules import UnmetRule

LVM_MAX_MONTHS = 6
# A decision that starts (or restarts) LVM care: the application to court or an immediate custody.
DECISION_PHASES = frozenset({Phase.lvm_ansokan, Phase.omedelbart_omhandertagande})
# Care that the client receives in one place at a time.
EXCLUSIVE_CARE = frozenset({Phase.lvm_vard, Phase.eftervard})


@dataclass(frozen=True)
class Span:
    """An episode's dates, as the rules see them."""

    id: object
    phase: Phase
    start: date
    end: date | None  # the real end, when known
    planned_end: date | None

    @property
    def last_day(self) -> date:
        """The end if known, else the planned end, else open (date.max)."""
        return self.end or self.planned_end or date.max


def add_months(d: date, months: int) -> date:
    month_index = d.month - 1 + months
    year, month = d.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def lvm_limit(start: date) -> date:
    """The last day LVM care may last under one decision."""
    return add_months(start, LVM_MAX_MONTHS)


def _overlap(a: Span, b: Span) -> bool:
    return a.start <= b.last_day and b.start <= a.last_day


def episode_problems(new: Span, others: Iterable[Span]) -> list[UnmetRule]:
    """Every rule the new or changed episode breaks, given the client's other episodes."""
    others = [o for o in others if o.id != new.id]
    problems: list[UnmetRule] = []
    for other in others:
        if other.phase == new.phase and _overlap(new, other):
            problems.append(
                UnmetRule("overlap", f"overlaps another {new.phase.value} episode starting {other.start}")
            )
        elif new.phase in EXCLUSIVE_CARE and other.phase in EXCLUSIVE_CARE and _overlap(new, other):
            problems.append(
                UnmetRule("overlap", f"{new.phase.value} overlaps {other.phase.value} starting {other.start}")
            )
    if new.phase == Phase.lvm_vard:
        limit = lvm_limit(new.start)
        for label, value in (("end_date", new.end), ("planned_end_date", new.planned_end)):
            if value is not None and value > limit:
                problems.append(
                    UnmetRule(
                        "lvm_six_months",
                        f"LVM care may last at most six months (until {limit}); {label} {value} is later. "
                        "Continued care needs a new decision episode and a new lvm_vard episode",
                    )
                )
        previous = [o for o in others if o.phase == Phase.lvm_vard and o.start < new.start]
        if previous:
            last = max(previous, key=lambda o: o.start)
            decided = any(o.phase in DECISION_PHASES and last.start < o.start <= new.start for o in others)
            if not decided:
                problems.append(
                    UnmetRule(
                        "lvm_new_decision",
                        "a new period of LVM care needs a new decision episode (lvm_ansokan or "
                        f"omedelbart_omhandertagande) after the previous care started on {last.start}",
                    )
                )
    if new.phase == Phase.vard_i_annan_form:
        inside = any(
            o.phase == Phase.lvm_vard
            and o.start <= new.start
            and new.last_day <= min(o.last_day, lvm_limit(o.start))
            for o in others
        )
        if not inside:
            problems.append(
                UnmetRule(
                    "within_lvm_vard",
                    "vård i annan form (27 §) must lie within an lvm_vard period and its six months",
                )
            )
    return problems


# Rules of one episode that depend on the others, so that a change to another episode can break them.
DEPENDENT_RULES = frozenset({"lvm_new_decision", "within_lvm_vard"})


def change_problems(new: Span, existing: Iterable[Span]) -> list[UnmetRule]:
    """Every rule that recording or changing `new` breaks, given the client's stored episodes
    (which hold `new`'s earlier version when it is changed): its own rules, and the rules of other
    episodes that depend on it (vård i annan form inside LVM care, a decision before new LVM care)
    and held before the change."""
    before = list(existing)
    after = [s for s in before if s.id != new.id] + [new]
    problems = episode_problems(new, before)
    for other in after[:-1]:
        held = {u.rule for u in episode_problems(other, before)}
        for unmet in episode_problems(other, after):
            if unmet.rule in DEPENDENT_RULES and unmet.rule not in held:
                problems.append(
                    UnmetRule(
                        unmet.rule, f"the {other.phase.value} episode starting {other.start}: {unmet.message}"
                    )
                )
    return problems
