"""Coverage indicators for RSS (DOMAIN.md, "Follow-up for RSS"), computed in the database.

The pipeline, per period (the whole period and, with `interval=month`, each calendar month of it):

1. **care episodes** of the county: episodes in `lvm_vard`, `vard_i_annan_form` or `eftervard`
   whose responsible kommun has the county's code;
2. **population**: the distinct clients with such an episode whose `[start_date, end_date]`
   overlaps the period, each attributed to the responsible kommun and phase of their
   latest-starting such episode, and to an age band by their age on the period's first day;
3. **counting plans**: the population's plans that were active at some time in the period;
4. one grouped aggregate per indicator, at the finest level of the breakdowns asked for.

Steps 1 to 4 are one SQL statement (SQLAlchemy Core, the same on PostgreSQL and SQLite) whose
result is counts per (period, group), never a person. Python then sums the finest groups up to
every requested breakdown and the total (all counts are additive over groups: every person,
episode, plan and follow-up falls in exactly one group of a breakdown), applies the suppression
of small counts (`suppress`, a pure function: primary suppression of counts from 1 to 4, then
secondary suppression until no suppressed cell follows from the answer's totals, checked by
exact elimination) and shapes the answer.

Choices the definitions leave open (also stated in the report's `definitions`):

- Dates of timestamps (a plan's creation, activation, closing; a meeting's `held_at`) are Swedish
  calendar dates, Europe/Stockholm. A period's edges become UTC instants in Python (plain
  comparisons, index-friendly); where a timestamp meets a date column (a discharge day) or two
  dates are subtracted, `local_date` and `days_between` compile per dialect: time zones and date
  arithmetic are the one place portable SQL does not reach. PostgreSQL uses its time zone
  database; SQLite, which has none, the EU summer-time rule Sweden has followed since 1996.
- Attribution ties (two care episodes starting the same day): the open one, else the one ending
  last, else the later phase in the chain, else the smaller episode id.
- Age: whole years on the period's first day from the real birth date (a samordningsnummer's day
  minus 60 is what `Client.birth_date` already holds); someone born on 29 February turns a year
  older on 1 March in common years.
- Every indicator is broken down by the group of the population client it concerns: a discharge,
  a plan or a follow-up counts in its client's kommun, gender, age band and phase (as attributed
  for the period), so that all indicators of one group speak about the same people.
- `discharge_with_plan`: the plan was activated on or before the end date and not closed or
  cancelled before it (a plan closed on the day of discharge still counts), and holds an
  `eftervard` action that is now accepted, started or completed.
- `median_days_to_first_meeting`: the first held meeting is the earliest `held_at` of the plan
  (whenever it was held); with an even count the median is the mean of the two middle values.
- Statuses (of actions) are the current ones; the database keeps no status history.

Index notes for a national data set are at the end of this module.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import combinations, product
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Date, Integer, String, and_, case, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import expression
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement

from app.auth import policies
from app.auth.principal import Principal
from app.db import system_scope
from app.errors import UnprocessableEntity
from app.models.care_chain import CARE_PHASES, Episode
from app.models.client import Client, Gender
from app.models.identity import Role
from app.models.meeting import FollowUp, Meeting
from app.models.organisation import Organisation, OrganisationKind
from app.models.phase import Phase
from app.models.plan import COMMITTED_ACTION_STATUSES, Action, Plan
from app.models.types import UTCDateTime, utcnow
from app.services import audit, identifiers

TZ = ZoneInfo("Europe/Stockholm")
MIN_COUNT = 5  # counts from 1 to MIN_COUNT - 1 are suppressed
MAX_YEARS = 10
MAX_CELLS = 200_000  # indicator cells in one answer (periods x groups x indicators)
MAX_BREAKDOWNS = 8


class Dimension(StrEnum):
    kommun = "kommun"
    gender = "gender"
    age_band = "age_band"
    phase = "phase"


DIMENSION_ORDER = {d: i for i, d in enumerate(Dimension)}


class Interval(StrEnum):
    month = "month"


class Indicator(StrEnum):
    coverage = "coverage"
    both_huvudman = "both_huvudman"
    discharge_with_plan = "discharge_with_plan"
    median_days_to_first_meeting = "median_days_to_first_meeting"
    followup_on_time = "followup_on_time"
    client_participation = "client_participation"


AGE_BANDS = ("<25", "25-34", "35-44", "45-54", "55-64", "65+")
_AGE_LOWER_BOUNDS = ((65, "65+"), (55, "55-64"), (45, "45-54"), (35, "35-44"), (25, "25-34"))
CARE_PHASE_ORDER = (Phase.lvm_vard, Phase.vard_i_annan_form, Phase.eftervard)
assert frozenset(CARE_PHASE_ORDER) == CARE_PHASES

DEFINITIONS: dict[str, str] = {
    "period": "Whole days, `from` and `to` both included. An interval with no end date is open. "
    "Timestamps (plan created, activated, closed, cancelled; meeting held) count on their "
    "Swedish calendar date (Europe/Stockholm).",
    "care_episode": "An episode in phase lvm_vard, vard_i_annan_form or eftervard. It belongs to the "
    "county of its responsible kommun.",
    "population": "The distinct clients with a care episode in the county whose [start_date, end_date] "
    "overlaps the period. A client is attributed to the responsible kommun and phase of their "
    "latest-starting such episode (ties: the open one, else the one ending last, else the later phase "
    "in the chain, else the smaller episode id), and to an age band by their age in whole years on "
    "the period's first day, from the birth date of the personal number (day minus 60 for a "
    "samordningsnummer; born 29 February: a year older on 1 March in common years).",
    "counting_plan": "A plan of a population client that was active at some time in the period: first "
    "activated on or before `to`, and not closed or cancelled before `from` (pauses do not interrupt "
    "it).",
    "breakdowns": "Every indicator is counted in the group of the population client it concerns "
    "(kommun, gender, age band and phase as attributed for the period). A combination such as "
    "kommun,gender also reports its margins (kommun alone, gender alone).",
    "coverage": "Population clients with at least one counting plan / population clients.",
    "both_huvudman": "Covered clients with a counting plan holding an accepted, started or completed "
    "action owned by a kommun and one owned by a region (the same plan) / covered clients.",
    "discharge_with_plan": "lvm_vard episodes in the county ending in the period whose client had, on "
    "the end date, a plan activated on or before that date and not closed or cancelled before it, "
    "with an eftervard action that is accepted, started or completed / lvm_vard episodes in the "
    "county ending in the period.",
    "median_days_to_first_meeting": "Median, over counting plans with a held meeting, of the days from "
    "the plan's creation date to the date of its first (earliest) held meeting; `n` is the number of "
    "plans. With an even n, the mean of the two middle values.",
    "followup_on_time": "Follow-ups of counting plans due in the period that were held on or before the "
    "due date / follow-ups of counting plans due in the period.",
    "client_participation": "Counting plans where the client took part / counting plans.",
    "suppression": f"A cell whose numerator or denominator (n for the median) is between 1 and "
    f"{MIN_COUNT - 1} is suppressed: numbers and value are null and `suppressed` is true. Where a "
    "suppressed cell could be recovered from a total of the same answer (a group's parent group, or "
    "the whole period for a month), further cells are suppressed so that every such total has none "
    "or at least two suppressed parts, and so that no suppressed cell follows from any combination "
    "of the answer's totals and visible cells. A suppressed coverage cell also suppresses "
    "both_huvudman of the same group (its denominator is coverage's numerator). The median itself "
    "is not additive; its n is protected like a count.",
    "statuses": "Action statuses are the current ones.",
}


# ==== request validation =====================================================================


def _invalid(field_name: str, message: str, code: str = "value_error") -> UnprocessableEntity:
    return UnprocessableEntity(
        f"the request has invalid fields: query.{field_name}",
        errors=[{"field": f"query.{field_name}", "message": message, "code": code}],
    )


def add_years(d: date, years: int) -> date:
    """The same day `years` later (or earlier); 29 February becomes 28 February in a common year."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


# A report covers a real period. Dates far out are refused before any arithmetic on them (ages,
# months, local midnights) can step outside the calendar's years 1 to 9999.
EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def check_period(start: date, end: date) -> None:
    for name, day in (("from", start), ("to", end)):
        if not EARLIEST_DAY <= day <= LATEST_DAY:
            raise _invalid(name, f"`{name}` must lie between {EARLIEST_DAY} and {LATEST_DAY}")
    if start > end:
        raise _invalid("from", "`from` is after `to`")
    if end >= add_years(start, MAX_YEARS):
        raise _invalid("to", f"the period is longer than {MAX_YEARS} years")


def check_county(county: str) -> str:
    try:
        return identifiers.validate_county_code(county)
    except identifiers.InvalidIdentifier as exc:
        raise _invalid("county", str(exc)) from None


Breakdown = tuple[Dimension, ...]


def parse_breakdowns(values: Sequence[str]) -> tuple[Breakdown, ...]:
    """`group_by` values, each one dimension or several joined by commas (a cross-tabulation).
    Returns the breakdowns to report: those asked for and all their margins, smallest first."""
    if len(values) > MAX_BREAKDOWNS:
        raise _invalid("group_by", f"at most {MAX_BREAKDOWNS} breakdowns")
    wanted: set[Breakdown] = set()
    for raw in values:
        names = [n.strip() for n in raw.split(",")]
        if any(not n for n in names):
            raise _invalid("group_by", "empty breakdown name")
        unknown = sorted({n for n in names if n not in Dimension.__members__})
        if unknown:
            known = ", ".join(d.value for d in Dimension)
            raise _invalid("group_by", f"unknown breakdown {', '.join(unknown)}; use {known}")
        if len(set(names)) != len(names):
            raise _invalid("group_by", "a breakdown names a dimension twice")
        dims = sorted((Dimension(n) for n in names), key=DIMENSION_ORDER.__getitem__)
        for size in range(1, len(dims) + 1):
            wanted.update(combinations(dims, size))
    return tuple(sorted(wanted, key=lambda b: (len(b), [DIMENSION_ORDER[d] for d in b])))


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    month: str | None = None  # "YYYY-MM" for a month of a series


def periods_for(start: date, end: date, interval: Interval | None) -> list[Period]:
    """The whole period first, then (with `interval=month`) each calendar month clipped to it."""
    periods = [Period(start, end)]
    if interval == Interval.month:
        first = start.replace(day=1)
        while first <= end:
            nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
            periods.append(Period(max(first, start), min(nxt - timedelta(days=1), end), f"{first:%Y-%m}"))
            first = nxt
    return periods


def local_midnight(d: date) -> datetime:
    """The start of a Swedish calendar day, in UTC."""
    return datetime.combine(d, time(0), tzinfo=TZ).astimezone(UTC)


def age_threshold(first_day: date, years: int) -> date:
    """The latest birth date of someone at least `years` old on `first_day`."""
    return add_years(first_day, -years)


# ==== scope ===================================================================================


@dataclass(frozen=True)
class ReportScope:
    kind: Literal["county", "kommun"]
    county: str
    kommun_id: uuid.UUID | None = None  # a kommun's org_admin: the population attributed to it


def default_county(p: Principal) -> str | None:
    if p.has(Role.rss):
        return p.county
    if p.has(Role.org_admin):
        return p.org_county
    return None


def scope_for(p: Principal, county: str) -> ReportScope:
    """After `policies.may_read_coverage` said yes. An rss token, and a region's org_admin, see
    the county; a kommun's org_admin sees the population attributed to the kommun."""
    if p.has(Role.rss) and p.county == county:
        return ReportScope("county", county)
    if p.org_kind == OrganisationKind.region:
        return ReportScope("county", county)
    return ReportScope("kommun", county, p.organisation_id)


# ==== SQL helpers: Swedish dates of UTC timestamps ===========================================


class local_date(expression.FunctionElement[date]):
    """The Europe/Stockholm calendar date of a UTC timestamp column."""

    type = Date()
    name = "local_date"
    inherit_cache = True


class days_between(expression.FunctionElement[int]):
    """days_between(a, b): whole days from date a to date b (b - a)."""

    type = Integer()
    name = "days_between"
    inherit_cache = True


@compiles(local_date, "postgresql")
def _local_date_pg(element: local_date, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = list(element.clauses)
    return f"CAST(({compiler.process(arg, **kw)} AT TIME ZONE 'Europe/Stockholm') AS DATE)"


@compiles(local_date, "sqlite")
def _local_date_sqlite(element: local_date, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite has no time zone database: Swedish time is UTC+1, and UTC+2 in EU summer time, from
    # the last Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC (the rule since
    # 1996). A last Sunday is the first Sunday on or after the 25th. Stored timestamps are UTC
    # text 'YYYY-MM-DD HH:MM:SS.ffffff', which compares correctly with datetime()'s text.
    (arg,) = list(element.clauses)
    ts = compiler.process(arg, **kw)
    year = f"strftime('%Y', {ts})"
    summer = (
        f"{ts} >= datetime({year} || '-03-25', 'weekday 0', '+1 hours') "
        f"AND {ts} < datetime({year} || '-10-25', 'weekday 0', '+1 hours')"
    )
    # Whole seconds first: SQLite rounds fractions to milliseconds, so 23:59:59.9999 would pass midnight.
    return f"date(substr({ts}, 1, 19), CASE WHEN {summer} THEN '+2 hours' ELSE '+1 hours' END)"


@compiles(days_between, "postgresql")
def _days_between_pg(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = list(element.clauses)
    return f"({compiler.process(b, **kw)} - {compiler.process(a, **kw)})"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = list(element.clauses)
    return f"CAST(julianday({compiler.process(b, **kw)}) - julianday({compiler.process(a, **kw)}) AS INTEGER)"


# ==== the counts ==============================================================================


@dataclass
class Counts:
    """The counts behind the indicators for one group of one period."""

    population: int = 0
    covered: int = 0
    both: int = 0
    discharges: int = 0
    discharges_with_plan: int = 0
    plans: int = 0
    participated: int = 0
    followups: int = 0
    followups_on_time: int = 0
    days_to_first_meeting: Counter[int] = field(default_factory=Counter)  # days -> plans

    def add(self, other: Counts) -> None:
        self.population += other.population
        self.covered += other.covered
        self.both += other.both
        self.discharges += other.discharges
        self.discharges_with_plan += other.discharges_with_plan
        self.plans += other.plans
        self.participated += other.participated
        self.followups += other.followups
        self.followups_on_time += other.followups_on_time
        self.days_to_first_meeting.update(other.days_to_first_meeting)

    def ratios(self) -> dict[Indicator, tuple[int, int]]:
        return {
            Indicator.coverage: (self.covered, self.population),
            Indicator.both_huvudman: (self.both, self.covered),
            Indicator.discharge_with_plan: (self.discharges_with_plan, self.discharges),
            Indicator.followup_on_time: (self.followups_on_time, self.followups),
            Indicator.client_participation: (self.participated, self.plans),
        }

    @property
    def meeting_plans(self) -> int:
        return sum(self.days_to_first_meeting.values())

    def median_days(self) -> float | None:
        return histogram_median(self.days_to_first_meeting)


def histogram_median(histogram: Mapping[int, int]) -> float | None:
    n = sum(histogram.values())
    if n == 0:
        return None
    wanted = sorted({(n - 1) // 2, n // 2})  # the middle position(s), 0-based
    found: list[int] = []
    seen = 0
    for value in sorted(histogram):
        count = histogram[value]
        found.extend(value for pos in wanted if seen <= pos < seen + count)
        seen += count
    return sum(found) / len(found)


GroupValues = tuple[str, ...]
Finest = dict[int, dict[GroupValues, Counts]]  # period index -> group values -> counts


def _periods_cte(periods: Sequence[Period]) -> Any:
    rows = []
    for pid, per in enumerate(periods):
        rows.append(
            select(
                literal(pid, Integer).label("pid"),
                literal(per.start, Date).label("pfrom"),
                literal(per.end, Date).label("pto"),
                literal(local_midnight(per.start), UTCDateTime()).label("ts_from"),
                literal(local_midnight(per.end + timedelta(days=1)), UTCDateTime()).label("ts_to"),
                *(
                    literal(age_threshold(per.start, years), Date).label(f"born_by_{years}")
                    for years, _ in _AGE_LOWER_BOUNDS
                ),
            )
        )
    return (union_all(*rows) if len(rows) > 1 else rows[0]).cte("period")


def counts_statement(scope: ReportScope, periods: Sequence[Period], dims: Sequence[Dimension]) -> Any:
    """One statement: rows (kind, pid, *dims, a, b, c, d, e), aggregated per period and finest
    group: `clients` (population, -, -, discharges, discharges with a plan), `plans` (counting
    plans, with the client taking part, covered clients, clients with a plan holding both
    huvudmän), `median` (days, plans), `followups` (due, on time)."""
    e, o, c = Episode.__table__, Organisation.__table__, Client.__table__  # type: ignore[attr-defined]
    pl, ac, mt, fu = Plan.__table__, Action.__table__, Meeting.__table__, FollowUp.__table__  # type: ignore[attr-defined]
    per = _periods_cte(periods)

    care = (
        select(
            e.c.id,
            e.c.client_id,
            e.c.phase,
            e.c.start_date,
            e.c.end_date,
            e.c.responsible_kommun_id.label("kommun_id"),
        )
        .join(o, o.c.id == e.c.responsible_kommun_id)
        .where(o.c.county_code == scope.county, e.c.phase.in_([ph.value for ph in CARE_PHASE_ORDER]))
        .cte("care_episode")
    )

    committed = [s.value for s in COMMITTED_ACTION_STATUSES]

    # Beyond the county's care episodes, rows are reached through indexed keys only: plans by
    # client id, actions, meetings and follow-ups by plan id, in joins or correlated subqueries
    # evaluated once per discharge or counting plan (CASE guards the discharge check). No CTE is
    # joined to another CTE on a key other than the period number, so a planner without fresh
    # statistics cannot turn the statement quadratic.

    def aftercare_plan_on(client_id: Any, day: Any) -> ColumnElement[bool]:
        """The client had on `day` a plan activated and not closed or cancelled before it,
        holding an eftervard action that is accepted, started or completed."""
        after = pl.alias("aftercare_plan")
        action = ac.alias("aftercare_action")
        return (
            select(after.c.id)
            .where(
                after.c.client_id == client_id,
                after.c.activated_at.is_not(None),
                local_date(after.c.activated_at) <= day,
                or_(after.c.closed_at.is_(None), local_date(after.c.closed_at) >= day),
                or_(after.c.cancelled_at.is_(None), local_date(after.c.cancelled_at) >= day),
                select(action.c.id)
                .where(
                    action.c.plan_id == after.c.id,
                    action.c.phase == Phase.eftervard.value,
                    action.c.status.in_(committed),
                )
                .exists(),
            )
            .exists()
        )

    # Care episodes overlapping each period; an lvm_vard one ending in the period is a discharge.
    discharged = and_(
        care.c.phase == Phase.lvm_vard.value, care.c.end_date >= per.c.pfrom, care.c.end_date <= per.c.pto
    )
    in_period = (
        select(
            per.c.pid,
            care.c.id,
            care.c.client_id,
            care.c.kommun_id,
            care.c.phase,
            care.c.start_date,
            care.c.end_date,
            case((discharged, 1), else_=0).label("discharge"),
            case(
                (discharged, case((aftercare_plan_on(care.c.client_id, care.c.end_date), 1), else_=0)),
                else_=0,
            ).label("discharge_with_plan"),
        )
        .select_from(
            care.join(
                per,
                and_(
                    care.c.start_date <= per.c.pto,
                    or_(care.c.end_date.is_(None), care.c.end_date >= per.c.pfrom),
                ),
            )
        )
        .subquery("care_in_period")
    )
    phase_rank = case(
        {ph.value: i for i, ph in enumerate(CARE_PHASE_ORDER)}, value=in_period.c.phase, else_=-1
    )
    client_in_period = (in_period.c.pid, in_period.c.client_id)
    latest_first = func.row_number().over(
        partition_by=client_in_period,
        order_by=(
            in_period.c.start_date.desc(),
            case((in_period.c.end_date.is_(None), 1), else_=0).desc(),
            in_period.c.end_date.desc(),
            phase_rank.desc(),
            in_period.c.id,
        ),
    )
    ranked = select(
        in_period.c.pid,
        in_period.c.client_id,
        in_period.c.kommun_id,
        in_period.c.phase,
        latest_first.label("rn"),
        func.sum(in_period.c.discharge).over(partition_by=client_in_period).label("discharges"),
        func.sum(in_period.c.discharge_with_plan)
        .over(partition_by=client_in_period)
        .label("discharges_with_plan"),
    ).cte("ranked")
    age_band = case(
        *((c.c.birth_date <= per.c[f"born_by_{years}"], band) for years, band in _AGE_LOWER_BOUNDS),
        else_=AGE_BANDS[0],
    )
    population_where = [ranked.c.rn == 1]
    if scope.kommun_id is not None:
        population_where.append(ranked.c.kommun_id == scope.kommun_id)
    pop = (
        select(
            ranked.c.pid,
            ranked.c.client_id,
            ranked.c.kommun_id.label("kommun"),
            c.c.gender.label("gender"),
            age_band.label("age_band"),
            ranked.c.phase.label("phase"),
            ranked.c.discharges,
            ranked.c.discharges_with_plan,
            per.c.pfrom,
            per.c.pto,
            per.c.ts_from,
            per.c.ts_to,
        )
        .select_from(ranked.join(c, c.c.id == ranked.c.client_id).join(per, per.c.pid == ranked.c.pid))
        .where(*population_where)
        .cte("population")
    )

    def group_cols(src: Any) -> list[Any]:
        return [src.c[d.value] for d in dims]

    def kind(name: str) -> Any:
        return literal(name, String).label("kind")

    zero = literal(0, Integer)

    def owned_by(plan_id: Any, kind_: OrganisationKind) -> ColumnElement[bool]:
        action = ac.alias()
        return (
            select(action.c.id)
            .where(
                action.c.plan_id == plan_id,
                action.c.status.in_(committed),
                action.c.responsible_organisation_id.in_(select(o.c.id).where(o.c.kind == kind_.value)),
            )
            .exists()
        )

    clients_q = select(
        kind("clients"),
        pop.c.pid,
        *group_cols(pop),
        func.count().label("a"),
        zero.label("b"),
        zero.label("c"),
        func.sum(pop.c.discharges).label("d"),
        func.sum(pop.c.discharges_with_plan).label("e"),
    ).group_by(pop.c.pid, *group_cols(pop))

    counting = (
        select(
            pop.c.pid,
            pop.c.client_id,
            *group_cols(pop),
            pop.c.pfrom,
            pop.c.pto,
            pl.c.id.label("plan_id"),
            pl.c.client_participated,
            pl.c.created_at,
        )
        .select_from(pop.join(pl, pl.c.client_id == pop.c.client_id))
        .where(
            pl.c.activated_at.is_not(None),
            pl.c.activated_at < pop.c.ts_to,
            or_(pl.c.closed_at.is_(None), pl.c.closed_at >= pop.c.ts_from),
            or_(pl.c.cancelled_at.is_(None), pl.c.cancelled_at >= pop.c.ts_from),
        )
        .cte("counting_plan")
    )
    holds_both = and_(
        owned_by(counting.c.plan_id, OrganisationKind.kommun),
        owned_by(counting.c.plan_id, OrganisationKind.region),
    )
    # A client belongs to one group per period, so distinct clients add up over groups.
    plans_q = select(
        kind("plans"),
        counting.c.pid,
        *group_cols(counting),
        func.count().label("a"),
        func.sum(case((counting.c.client_participated.is_(True), 1), else_=0)).label("b"),
        func.count(counting.c.client_id.distinct()).label("c"),
        func.count(case((holds_both, counting.c.client_id)).distinct()).label("d"),
        zero.label("e"),
    ).group_by(counting.c.pid, *group_cols(counting))

    first_held = (
        select(func.min(mt.c.held_at))
        .where(mt.c.plan_id == counting.c.plan_id, mt.c.held_at.is_not(None))
        .scalar_subquery()
    )
    waited = select(
        counting.c.pid,
        *group_cols(counting),
        days_between(local_date(counting.c.created_at), local_date(first_held)).label("days"),
    ).subquery("waited")
    median_q = (
        select(
            kind("median"),
            waited.c.pid,
            *group_cols(waited),
            waited.c.days.label("a"),
            func.count().label("b"),
            zero.label("c"),
            zero.label("d"),
            zero.label("e"),
        )
        .where(waited.c.days.is_not(None))
        .group_by(waited.c.pid, *group_cols(waited), waited.c.days)
    )

    followups_q = (
        select(
            kind("followups"),
            counting.c.pid,
            *group_cols(counting),
            func.count().label("a"),
            func.sum(
                case((and_(fu.c.held_date.is_not(None), fu.c.held_date <= fu.c.due_date), 1), else_=0)
            ).label("b"),
            zero.label("c"),
            zero.label("d"),
            zero.label("e"),
        )
        .select_from(counting.join(fu, fu.c.plan_id == counting.c.plan_id))
        .where(fu.c.due_date >= counting.c.pfrom, fu.c.due_date <= counting.c.pto)
        .group_by(counting.c.pid, *group_cols(counting))
    )
    return union_all(clients_q, plans_q, median_q, followups_q)


def _group_value(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, StrEnum):
        return value.value
    return str(value)


async def compute_counts(
    session: AsyncSession, scope: ReportScope, periods: Sequence[Period], dims: Sequence[Dimension]
) -> Finest:
    """Counts per period and finest group (values in `dims` order). Needs the system scope."""
    finest: Finest = {pid: defaultdict(Counts) for pid in range(len(periods))}
    width = len(dims)
    result = await session.execute(counts_statement(scope, periods, dims))
    for row in result.all():
        kind, pid = row[0], int(row[1])
        key = tuple(_group_value(v) for v in row[2 : 2 + width])
        a, b, c, d, e = (int(v or 0) for v in row[2 + width :])
        acc = finest[pid][key]
        if kind == "clients":
            acc.population += a
            acc.discharges += d
            acc.discharges_with_plan += e
        elif kind == "plans":
            acc.plans += a
            acc.participated += b
            acc.covered += c
            acc.both += d
        elif kind == "median":
            acc.days_to_first_meeting[a] += b
        elif kind == "followups":
            acc.followups += a
            acc.followups_on_time += b
    return finest


def rollup(
    finest: Mapping[GroupValues, Counts], dims: Sequence[Dimension], breakdown: Breakdown
) -> dict[GroupValues, Counts]:
    """Sum the finest groups up to `breakdown` (a subset of `dims`; () is the total)."""
    positions = [dims.index(d) for d in breakdown]
    out: dict[GroupValues, Counts] = defaultdict(Counts)
    for values, counts in finest.items():
        out[tuple(values[i] for i in positions)].add(counts)
    return out


# ==== suppression =============================================================================


Coords = frozenset[tuple[str, str]]
CellKey = tuple[str, Coords]


@dataclass(frozen=True)
class Cell:
    """One indicator for one group of one period. `coords` names the group as (dimension, value)
    pairs; the empty set is the total. A month of a series carries ("month", "YYYY-MM").
    A median cell has no numerator and its `denominator` is n."""

    indicator: str
    coords: Coords
    numerator: int | None
    denominator: int

    @property
    def key(self) -> CellKey:
        return (self.indicator, self.coords)


# A suppressed cell of the key indicator hides a number the linked indicators show too
# (coverage's numerator is both_huvudman's denominator), so they are suppressed with it.
LINKED_INDICATORS: Mapping[str, tuple[str, ...]] = {
    Indicator.coverage.value: (Indicator.both_huvudman.value,)
}


def _sort_key(key: CellKey) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (key[0], tuple(sorted(key[1])))


_PRIME = (1 << 61) - 1  # a Mersenne prime: exact elimination in modular arithmetic


def determined_cells(
    lines: Sequence[tuple[CellKey, Sequence[CellKey]]], hidden: Iterable[CellKey]
) -> set[CellKey]:
    """The suppressed cells whose value follows from the visible ones: every line says
    total - sum(parts) = 0; with the visible members moved to the right-hand side, this is a
    linear system in the suppressed cells, and a cell is determined when the reduced row echelon
    form has a row naming it alone. Gaussian elimination modulo a 61-bit prime (the relations
    have coefficients 0 and 1, so this agrees with the rationals except with negligible
    probability), with an index from each column to the pivot rows holding it, so that the work
    follows the suppressed cells and the lines they are in."""
    hidden = set(hidden)
    column: dict[CellKey, int] = {}
    pivots: dict[int, dict[int, int]] = {}  # pivot column -> reduced row, pivot coefficient 1
    holders: dict[int, set[int]] = defaultdict(set)  # column -> pivot columns whose row holds it
    # Sparse first: lines with few suppressed members, and as pivot the column in the fewest
    # rows. Any choice gives a row space basis in which each pivot column is in one row only, so
    # a cell is determined exactly when a row names it alone; this one keeps the rows short.
    ordered = sorted(lines, key=lambda line: sum(1 for m in (line[0], *line[1]) if m in hidden))
    for total, parts in ordered:
        row: dict[int, int] = {}
        for member, sign in ((total, 1), *((p, -1) for p in parts)):
            if member in hidden:
                col = column.setdefault(member, len(column))
                row[col] = (row.get(col, 0) + sign) % _PRIME
        for col in [c for c in row if c in pivots]:
            factor = row.get(col, 0)
            if factor:
                for c, v in pivots[col].items():
                    row[c] = (row.get(c, 0) - factor * v) % _PRIME
        row = {c: v for c, v in row.items() if v}
        if not row:
            continue
        pivot = min(row, key=lambda c: (len(holders.get(c, ())), c))
        inverse = pow(row[pivot], _PRIME - 2, _PRIME)
        row = {c: v * inverse % _PRIME for c, v in row.items()}
        for other in list(holders.get(pivot, ())):
            other_row = pivots[other]
            factor = other_row.get(pivot, 0)
            for c, v in row.items():
                value = (other_row.get(c, 0) - factor * v) % _PRIME
                if value:
                    if c not in other_row:
                        holders[c].add(other)
                    other_row[c] = value
                elif c in other_row:
                    del other_row[c]
                    holders[c].discard(other)
        pivots[pivot] = row
        for c in row:
            holders[c].add(pivot)
    keys = {col: key for key, col in column.items()}
    return {keys[p] for p, row in pivots.items() if len(row) == 1}


def suppress(
    cells: Iterable[Cell],
    *,
    min_count: int = MIN_COUNT,
    linked: Mapping[str, Sequence[str]] = LINKED_INDICATORS,
) -> frozenset[CellKey]:
    """The keys of the cells to suppress.

    Primary: a numerator or denominator from 1 to `min_count - 1`. Secondary: the cells form
    additive lines, each a total and its parts along one dimension (a cell whose coords lack one
    pair of a present cell is that cell's total, and its parts are all present cells with one more
    pair of that dimension); a line with exactly one suppressed member would give it away by
    subtraction, so another member is suppressed: the smallest non-zero part, else the total,
    else a zero part. Repeated until every line has none or at least two suppressed members;
    then no suppressed cell may follow from the lines taken together either (`determined_cells`),
    else one more cell next to it is suppressed and the whole is checked again.
    Deterministic: the same cells always give the same answer."""
    by_key: dict[CellKey, Cell] = {}
    for cell in cells:
        if cell.key in by_key:
            raise ValueError(f"duplicate cell {cell.key!r}")
        by_key[cell.key] = cell

    parts_of: dict[tuple[str, Coords, str], list[CellKey]] = defaultdict(list)
    for key, cell in by_key.items():
        for pair in cell.coords:
            parent = cell.coords - {pair}
            if (cell.indicator, parent) in by_key:
                parts_of[(cell.indicator, parent, pair[0])].append(key)
    lines: list[tuple[CellKey, tuple[CellKey, ...]]] = []
    for (indicator, parent, _dim), found in sorted(
        parts_of.items(), key=lambda item: (item[0][0], tuple(sorted(item[0][1])), item[0][2])
    ):
        lines.append(((indicator, parent), tuple(sorted(found, key=_sort_key))))
    lines_of: dict[CellKey, list[int]] = defaultdict(list)
    for i, (line_total, line_parts) in enumerate(lines):
        lines_of[line_total].append(i)
        for part in line_parts:
            lines_of[part].append(i)

    hidden: set[CellKey] = set()
    pending: deque[int] = deque()

    def hide(key: CellKey) -> None:
        if key in hidden:
            return
        hidden.add(key)
        pending.extend(lines_of[key])
        for other in linked.get(key[0], ()):
            if (other, key[1]) in by_key:
                hide((other, key[1]))

    def small(value: int | None) -> bool:
        return value is not None and 1 <= value < min_count

    for key in sorted(by_key, key=_sort_key):
        cell = by_key[key]
        if small(cell.numerator) or small(cell.denominator):
            hide(key)

    def size(key: CellKey) -> tuple[int, int, tuple[str, tuple[tuple[str, str], ...]]]:
        cell = by_key[key]
        return (cell.denominator, cell.numerator or 0, _sort_key(key))

    def protect(line: int) -> None:
        """Suppress one more member of a line: the smallest visible non-zero part, else the
        total, else a zero part."""
        total, parts = lines[line]
        visible_parts = [p for p in parts if p not in hidden]
        nonzero = [p for p in visible_parts if by_key[p].denominator > 0]
        if nonzero:
            hide(min(nonzero, key=size))
        elif total not in hidden:
            hide(total)
        elif visible_parts:
            hide(min(visible_parts, key=size))

    lines_by_indicator: dict[str, list[tuple[CellKey, tuple[CellKey, ...]]]] = defaultdict(list)
    for line in lines:
        lines_by_indicator[line[0][0]].append(line)
    checked_size: dict[str, int] = {}  # suppressed cells of an indicator at its last exact check
    while True:
        while pending:
            i = pending.popleft()
            total, parts = lines[i]
            if sum(1 for m in (total, *parts) if m in hidden) == 1:
                protect(i)
        # Several lines together can still pin a cell down (two suppressed parts in every line is
        # not enough in general); find such cells exactly and suppress one more cell next to each.
        # Indicators are separate systems; one is checked again only when it has changed.
        exposed: set[CellKey] = set()
        for indicator in sorted(lines_by_indicator):
            own = {k for k in hidden if k[0] == indicator}
            if checked_size.get(indicator) == len(own):
                continue
            checked_size[indicator] = len(own)
            exposed |= determined_cells(lines_by_indicator[indicator], own)
        if not exposed:
            break
        for key in sorted(exposed, key=_sort_key):
            candidates = [
                i for i in lines_of[key] if any(m not in hidden for m in (lines[i][0], *lines[i][1]))
            ]
            if candidates:
                protect(
                    min(candidates, key=lambda i: sum(1 for m in (lines[i][0], *lines[i][1]) if m in hidden))
                )
    return frozenset(hidden)


# ==== the answer ==============================================================================


class IndicatorValue(BaseModel):
    numerator: int | None = Field(description="null when suppressed")
    denominator: int | None = Field(description="null when suppressed")
    value: float | None = Field(
        description="numerator / denominator, 4 decimals; null when 0/0 or suppressed"
    )
    suppressed: bool = False


class MedianValue(BaseModel):
    n: int | None = Field(description="plans with a held meeting; null when suppressed")
    value: float | None = Field(description="median days; null when n is 0 or suppressed")
    suppressed: bool = False


class Indicators(BaseModel):
    coverage: IndicatorValue
    both_huvudman: IndicatorValue
    discharge_with_plan: IndicatorValue
    median_days_to_first_meeting: MedianValue
    followup_on_time: IndicatorValue
    client_participation: IndicatorValue


class ReportGroup(BaseModel):
    breakdown: list[Dimension] = Field(description="the dimensions this group is a cell of")
    kommun_id: uuid.UUID | None = None
    kommun: str | None = Field(default=None, description="the kommun's name in the organisation register")
    gender: Gender | None = None
    age_band: str | None = None
    phase: Phase | None = None
    indicators: Indicators


class PeriodResult(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date
    month: str | None = Field(default=None, description="YYYY-MM for a month of the series")
    total: Indicators
    groups: list[ReportGroup]


class ReportPeriod(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date


class ReportScopeOut(BaseModel):
    kind: Literal["county", "kommun"] = Field(
        description="county: the whole county; kommun: the population attributed to one kommun"
    )
    county: str
    county_name: str
    organisation_id: uuid.UUID | None = None
    organisation_name: str | None = None


class SuppressionInfo(BaseModel):
    min_count: int = Field(description="counts from 1 to min_count - 1 are suppressed")
    suppressed_cells: int = Field(description="suppressed indicator cells in this answer")


class CoverageReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    scope: ReportScopeOut
    period: ReportPeriod
    interval: Interval | None
    breakdowns: list[list[Dimension]] = Field(description="the breakdowns reported, margins included")
    computed_at: datetime
    definitions: dict[str, str]
    suppression: SuppressionInfo
    total: Indicators
    groups: list[ReportGroup]
    series: list[PeriodResult] | None = Field(default=None, description="with interval=month: each month")


@dataclass(frozen=True)
class Kommun:
    id: str
    name: str


_SWEDISH_LAST = str.maketrans({"å": "{", "ä": "|", "ö": "}", "é": "e", "ü": "y"})


def swedish_sort_key(name: str) -> str:
    return name.lower().translate(_SWEDISH_LAST)


def _categories(kommuner: Sequence[Kommun]) -> dict[Dimension, list[str]]:
    return {
        Dimension.kommun: [k.id for k in kommuner],
        Dimension.gender: [g.value for g in Gender],
        Dimension.age_band: list(AGE_BANDS),
        Dimension.phase: [ph.value for ph in CARE_PHASE_ORDER],
    }


def _coords(breakdown: Breakdown, values: GroupValues, period: Period) -> Coords:
    pairs = {(d.value, v) for d, v in zip(breakdown, values, strict=True)}
    if period.month is not None:
        pairs.add(("month", period.month))
    return frozenset(pairs)


def _cells_of(counts: Counts, coords: Coords) -> list[Cell]:
    cells = [Cell(ind.value, coords, num, den) for ind, (num, den) in counts.ratios().items()]
    cells.append(Cell(Indicator.median_days_to_first_meeting.value, coords, None, counts.meeting_plans))
    return cells


def _indicators(counts: Counts, coords: Coords, hidden: frozenset[CellKey]) -> Indicators:
    values: dict[str, Any] = {}
    for ind, (num, den) in counts.ratios().items():
        if (ind.value, coords) in hidden:
            values[ind.value] = IndicatorValue(numerator=None, denominator=None, value=None, suppressed=True)
        else:
            values[ind.value] = IndicatorValue(
                numerator=num, denominator=den, value=round(num / den, 4) if den else None
            )
    median = Indicator.median_days_to_first_meeting.value
    if (median, coords) in hidden:
        values[median] = MedianValue(n=None, value=None, suppressed=True)
    else:
        values[median] = MedianValue(n=counts.meeting_plans, value=counts.median_days())
    return Indicators(**values)


def build_report(
    *,
    scope: ReportScope,
    scope_name: str | None,
    periods: Sequence[Period],
    breakdowns: Sequence[Breakdown],
    dims: Sequence[Dimension],
    kommuner: Sequence[Kommun],
    finest: Finest,
    interval: Interval | None,
    computed_at: datetime,
) -> CoverageReport:
    """Roll the finest counts up to every breakdown, suppress, and shape the answer."""
    names = {k.id: k.name for k in kommuner}
    categories = _categories(kommuner)
    tables: list[tuple[Period, Breakdown, GroupValues, Counts]] = []
    for pid, period in enumerate(periods):
        for breakdown in ((), *breakdowns):
            sums = rollup(finest[pid], dims, breakdown)
            for values in product(*(categories[d] for d in breakdown)):
                tables.append((period, breakdown, values, sums.get(values) or Counts()))
    cells = [c for period, b, v, counts in tables for c in _cells_of(counts, _coords(b, v, period))]
    hidden = suppress(cells)

    results: list[PeriodResult] = []
    by_period: dict[Period, PeriodResult] = {}
    for period in periods:
        by_period[period] = PeriodResult(
            from_=period.start, to=period.end, month=period.month, total=_EMPTY, groups=[]
        )
        results.append(by_period[period])
    for period, breakdown, values, counts in tables:
        indicators = _indicators(counts, _coords(breakdown, values, period), hidden)
        if not breakdown:
            by_period[period].total = indicators
            continue
        group: dict[str, Any] = dict(zip((d.value for d in breakdown), values, strict=True))
        if "kommun" in group:
            group["kommun_id"] = uuid.UUID(group["kommun"])
            group["kommun"] = names.get(group["kommun"], group["kommun"])
        by_period[period].groups.append(
            ReportGroup(breakdown=list(breakdown), indicators=indicators, **group)
        )

    whole = results[0]
    return CoverageReport(
        scope=ReportScopeOut(
            kind=scope.kind,
            county=scope.county,
            county_name=identifiers.COUNTY_NAMES[scope.county],
            organisation_id=scope.kommun_id,
            organisation_name=scope_name,
        ),
        period=ReportPeriod(from_=whole.from_, to=whole.to),
        interval=interval,
        breakdowns=[list(b) for b in breakdowns],
        computed_at=computed_at,
        definitions=DEFINITIONS,
        suppression=SuppressionInfo(min_count=MIN_COUNT, suppressed_cells=len(hidden)),
        total=whole.total,
        groups=whole.groups,
        series=results[1:] if interval is not None else None,
    )


_NOTHING = IndicatorValue(numerator=0, denominator=0, value=None)
_EMPTY = Indicators(
    coverage=_NOTHING,
    both_huvudman=_NOTHING,
    discharge_with_plan=_NOTHING,
    median_days_to_first_meeting=MedianValue(n=0, value=None),
    followup_on_time=_NOTHING,
    client_participation=_NOTHING,
)


async def _kommuner(session: AsyncSession, scope: ReportScope) -> list[Kommun]:
    o = Organisation.__table__  # type: ignore[attr-defined]
    stmt = select(o.c.id, o.c.name).where(
        o.c.county_code == scope.county, o.c.kind == OrganisationKind.kommun
    )
    if scope.kommun_id is not None:
        stmt = select(o.c.id, o.c.name).where(o.c.id == scope.kommun_id)
    rows = (await session.execute(stmt)).all()
    return sorted((Kommun(str(r.id), r.name) for r in rows), key=lambda k: (swedish_sort_key(k.name), k.id))


async def _add_unlisted_kommuner(
    session: AsyncSession, kommuner: list[Kommun], finest: Finest, dims: Sequence[Dimension]
) -> list[Kommun]:
    """A responsible 'kommun' that the register does not list as one (data from before the
    kind check) still gets its own group, so that no one falls out of the breakdown."""
    if Dimension.kommun not in dims:
        return kommuner
    i = list(dims).index(Dimension.kommun)
    known = {k.id for k in kommuner}
    extra = {values[i] for groups in finest.values() for values in groups} - known
    if not extra:
        return kommuner
    o = Organisation.__table__  # type: ignore[attr-defined]
    rows = (
        await session.execute(select(o.c.id, o.c.name).where(o.c.id.in_([uuid.UUID(x) for x in extra])))
    ).all()
    return kommuner + sorted(
        (Kommun(str(r.id), r.name) for r in rows), key=lambda k: swedish_sort_key(k.name)
    )


def cell_count(periods: int, breakdowns: Sequence[Breakdown], sizes: Mapping[Dimension, int]) -> int:
    groups = 1
    for breakdown in breakdowns:
        n = 1
        for d in breakdown:
            n *= sizes[d]
        groups += n
    return periods * groups * len(Indicator)


async def coverage_report(
    session: AsyncSession,
    p: Principal,
    *,
    read_session: AsyncSession | None = None,
    county: str | None,
    start: date,
    end: date,
    group_by: Sequence[str],
    interval: Interval | None,
) -> CoverageReport:
    """The coverage report for the caller's county (rss, a region's org_admin) or kommun (a
    kommun's org_admin). Refusals: 403 for other roles or another county, 422 for bad input."""
    policies.require(policies.may_read_coverage_reports(p))
    check_period(start, end)
    breakdowns = parse_breakdowns(group_by)
    if county is None:
        county = default_county(p)
        if county is None:
            raise _invalid("county", "name the county")
    county = check_county(county)
    policies.require(policies.may_read_coverage(p, county))
    scope = scope_for(p, county)
    periods = periods_for(start, end, interval)
    dims = sorted({d for b in breakdowns for d in b}, key=DIMENSION_ORDER.__getitem__)

    audit.record(session, p, "report.coverage.read", "report", f"coverage/{county}")
    # The aggregates may come from a read replica; the audit event goes to the primary.
    reader = read_session if read_session is not None else session
    async with system_scope(reader):  # aggregates over every organisation's rows in the county
        kommuner = await _kommuner(reader, scope)
        sizes = {d: len(values) for d, values in _categories(kommuner).items()}
        if cell_count(len(periods), breakdowns, sizes) > MAX_CELLS:
            raise _invalid(
                "group_by", "the answer would be too large: fewer or smaller breakdowns, or no monthly series"
            )
        finest = await compute_counts(reader, scope, periods, dims)
        kommuner = await _add_unlisted_kommuner(reader, kommuner, finest, dims)
    scope_name = kommuner[0].name if scope.kommun_id is not None and kommuner else None
    return build_report(
        scope=scope,
        scope_name=scope_name,
        periods=periods,
        breakdowns=breakdowns,
        dims=dims,
        kommuner=kommuner,
        finest=finest,
        interval=interval,
        computed_at=utcnow(),
    )


# ==== CSV =====================================================================================

CSV_DELIMITER = ";"  # Excel in a Swedish locale splits on ';' (',' is the decimal separator there)
CSV_COLUMNS = (
    "period_from",
    "period_to",
    "month",
    "breakdown",
    "kommun",
    "kommun_id",
    "gender",
    "age_band",
    "phase",
    "indicator",
    "numerator",
    "denominator",
    "n",
    "value",
    "suppressed",
    "computed_at",
)
SUPPRESSED_MARK = ".."  # SCB's sign for a figure that is not published


def _number(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text.replace(".", ",")


def _text(value: str | None) -> str:
    """Text cells never start a formula in a spreadsheet."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value or ""


def to_csv(report: CoverageReport) -> str:
    """One row per group and indicator; UTF-8 with a byte order mark so that Excel reads å, ä, ö."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=CSV_DELIMITER, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    whole = PeriodResult(
        from_=report.period.from_, to=report.period.to, total=report.total, groups=report.groups
    )
    computed = report.computed_at.isoformat()
    for period in [whole, *(report.series or [])]:
        rows: list[tuple[str, ReportGroup | None, Indicators]] = [("total", None, period.total)]
        rows += [(",".join(g.breakdown), g, g.indicators) for g in period.groups]
        for breakdown, group, indicators in rows:
            head = [
                period.from_.isoformat(),
                period.to.isoformat(),
                period.month or "",
                breakdown,
                _text(group.kommun if group else None),
                str(group.kommun_id) if group and group.kommun_id else "",
                group.gender.value if group and group.gender else "",
                group.age_band if group and group.age_band else "",
                group.phase.value if group and group.phase else "",
            ]
            for ind in Indicator:
                cell = getattr(indicators, ind.value)
                mark = SUPPRESSED_MARK if cell.suppressed else None
                if isinstance(cell, MedianValue):
                    numbers = ["", "", mark or _number(cell.n)]
                else:
                    numbers = [mark or _number(cell.numerator), mark or _number(cell.denominator), ""]
                value = mark or _number(cell.value)
                writer.writerow(
                    [*head, ind.value, *numbers, value, "true" if cell.suppressed else "false", computed]
                )
    return out.getvalue()


# ==== indexes for a national data set =========================================================
# The statement filters episodes by county (through the responsible kommun) and phase, then by
# date overlap; it reaches plans by client, and actions, meetings and follow-ups by plan. At
# national scale these would help (not created here; a migration's job):
# - episode (responsible_kommun_id, phase, start_date, end_date, client_id): the care episodes of
#   a county's kommuner and their overlap test from the index alone (ix_episode_kommun_phase has
#   the first two columns);
# - organisation (county_code, kind): the kommuner of a county;
# - plan (client_id, activated_at) including closed_at, cancelled_at, created_at,
#   client_participated: counting plans by client without reading the plan rows (ix_plan_client
#   has the first column);
# - plan_action (plan_id, status, responsible_organisation_id) and (plan_id, phase, status);
# - meeting (plan_id, held_at) WHERE held_at IS NOT NULL: the first held meeting per plan;
# - follow_up (plan_id, due_date) exists (ix_follow_up_plan_due), add held_date to cover it.
