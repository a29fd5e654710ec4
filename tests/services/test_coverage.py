"""The coverage indicators against an independent, plain-Python reading of DOMAIN.md.

Seeded random data sets of many shapes (empty counties, samordningsnummer, episodes crossing the
period's edges, several chains per client, same-day starts, timestamps around midnight and the
summer-time changes) are inserted as rows; the service's SQL counts are compared, for every
indicator and every breakdown, with `oracle()` below, which reads only the generated rows and the
definitions. This module also holds the data generator and the oracle the router tests use.
"""

from __future__ import annotations

import random
import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import combinations, pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import UnprocessableEntity
from app.models.care_chain import Episode
from app.models.client import Client
from app.models.meeting import FollowUp, Meeting
from app.models.organisation import Organisation
from app.models.plan import Action, Plan
from app.models.types import UTCDateTime
from app.services import coverage
from app.services.coverage import (
    Counts,
    Dimension,
    Interval,
    ReportScope,
    compute_counts,
    days_between,
    local_date,
    periods_for,
    rollup,
)
from app.services.identifiers import luhn_check_digit, make_personal_number

STHLM = ZoneInfo("Europe/Stockholm")

# ---- the definitions, read directly from DOMAIN.md (no service code) -------------------------

CARE = ("lvm_vard", "vard_i_annan_form", "eftervard")  # in chain order
ALL_PHASES = (
    "lvm_anmalan",
    "lvm_utredning",
    "omedelbart_omhandertagande",
    "lvm_ansokan",
    "lvm_vard",
    "vard_i_annan_form",
    "utskrivning",
    "eftervard",
    "avslutad",
)
COMMITTED = ("accepted", "started", "completed")
ACTION_STATUSES = ("proposed", "accepted", "disputed", "started", "completed", "cancelled")
GENDERS = ("kvinna", "man", "annat", "okant")
BANDS = ("<25", "25-34", "35-44", "45-54", "55-64", "65+")
DIMS = ("kommun", "gender", "age_band", "phase")
RATIOS = ("coverage", "both_huvudman", "discharge_with_plan", "followup_on_time", "client_participation")
MEDIAN = "median_days_to_first_meeting"


@dataclass
class Org:
    id: uuid.UUID
    name: str
    kind: str
    county: str
    org_number: str


@dataclass
class Person:
    id: uuid.UUID
    birth: date
    gender: str
    coordination: bool
    personal_number: str


@dataclass
class Ep:
    id: uuid.UUID
    client_id: uuid.UUID
    phase: str
    start: date
    end: date | None
    kommun_id: uuid.UUID


@dataclass
class Act:
    org_id: uuid.UUID
    status: str
    phase: str | None


@dataclass
class Pl:
    id: uuid.UUID
    client_id: uuid.UUID
    created_at: datetime
    activated_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    participated: bool
    actions: list[Act] = field(default_factory=list)
    held: list[datetime | None] = field(default_factory=list)  # meetings: held_at or None
    followups: list[tuple[date, date | None]] = field(default_factory=list)  # (due, held)


@dataclass
class World:
    orgs: dict[uuid.UUID, Org]
    persons: dict[uuid.UUID, Person]
    episodes: list[Ep]
    plans: list[Pl]

    def kommuner(self, county: str) -> list[Org]:
        return [o for o in self.orgs.values() if o.kind == "kommun" and o.county == county]


def local(ts: datetime) -> date:
    return ts.astimezone(STHLM).date()


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def band(age: int) -> str:
    for lower, name in ((65, "65+"), (55, "55-64"), (45, "45-54"), (35, "35-44"), (25, "25-34")):
        if age >= lower:
            return name
    return "<25"


@dataclass
class Truth:
    """Per group (a dict of dimension -> value): every indicator as (numerator, denominator), and the
    median as (value, n)."""

    ratios: dict[str, list[int]] = field(default_factory=lambda: {r: [0, 0] for r in RATIOS})
    days: list[int] = field(default_factory=list)

    def median(self) -> tuple[float | None, int]:
        return (statistics.median(self.days) if self.days else None, len(self.days))


def oracle(
    world: World, county: str, start: date, end: date, kommun_id: uuid.UUID | None = None
) -> dict[tuple[tuple[str, str], ...], Truth]:
    """Every group of every breakdown (all subsets of DIMS), keyed by sorted (dimension, value)
    pairs; () is the total. Straight from the definitions in DOMAIN.md."""

    def in_county(e: Ep) -> bool:
        return world.orgs[e.kommun_id].county == county

    care = [e for e in world.episodes if e.phase in CARE and in_county(e)]
    overlapping: dict[uuid.UUID, list[Ep]] = defaultdict(list)
    for e in care:
        if e.start <= end and (e.end is None or e.end >= start):
            overlapping[e.client_id].append(e)
    group_of: dict[uuid.UUID, dict[str, str]] = {}
    for client_id, eps in overlapping.items():
        latest = max(
            eps,
            key=lambda e: (e.start, e.end is None, e.end or date.min, CARE.index(e.phase), -e.id.int),
        )
        if kommun_id is not None and latest.kommun_id != kommun_id:
            continue
        person = world.persons[client_id]
        group_of[client_id] = {
            "kommun": str(latest.kommun_id),
            "gender": person.gender,
            "age_band": band(age_on(person.birth, start)),
            "phase": latest.phase,
        }

    def counting(p: Pl) -> bool:
        return (
            p.client_id in group_of
            and p.activated_at is not None
            and local(p.activated_at) <= end
            and (p.closed_at is None or local(p.closed_at) >= start)
            and (p.cancelled_at is None or local(p.cancelled_at) >= start)
        )

    def kind(org_id: uuid.UUID) -> str:
        return world.orgs[org_id].kind

    plans_of: dict[uuid.UUID, list[Pl]] = defaultdict(list)
    for p in world.plans:
        plans_of[p.client_id].append(p)

    out: dict[tuple[tuple[str, str], ...], Truth] = defaultdict(Truth)

    def keys(g: dict[str, str]) -> Iterable[tuple[tuple[str, str], ...]]:
        for size in range(len(DIMS) + 1):
            for dims in combinations(DIMS, size):
                yield tuple(sorted((d, g[d]) for d in dims))

    def count(g: dict[str, str], indicator: str, hit: bool) -> None:
        for k in keys(g):
            out[k].ratios[indicator][0] += int(hit)
            out[k].ratios[indicator][1] += 1

    for client_id, g in group_of.items():
        counted = [p for p in plans_of[client_id] if counting(p)]
        covered = bool(counted)
        count(g, "coverage", covered)
        if covered:
            both = any(
                any(a.status in COMMITTED and kind(a.org_id) == "kommun" for a in p.actions)
                and any(a.status in COMMITTED and kind(a.org_id) == "region" for a in p.actions)
                for p in counted
            )
            count(g, "both_huvudman", both)
        for p in counted:
            count(g, "client_participation", p.participated)
            held = [h for h in p.held if h is not None]
            if held:
                for k in keys(g):
                    out[k].days.append((local(min(held)) - local(p.created_at)).days)
            for due, held_date in p.followups:
                if start <= due <= end:
                    count(g, "followup_on_time", held_date is not None and held_date <= due)

    for e in care:
        if e.phase != "lvm_vard" or e.end is None or not start <= e.end <= end:
            continue
        if e.client_id not in group_of:
            assert kommun_id is not None  # an ending care episode always puts its client in the population
            continue
        with_plan = any(
            p.activated_at is not None
            and local(p.activated_at) <= e.end
            and (p.closed_at is None or local(p.closed_at) >= e.end)
            and (p.cancelled_at is None or local(p.cancelled_at) >= e.end)
            and any(a.phase == "eftervard" and a.status in COMMITTED for a in p.actions)
            for p in plans_of[e.client_id]
        )
        count(group_of[e.client_id], "discharge_with_plan", with_plan)
    return out


# ---- the generator ---------------------------------------------------------------------------

KOMMUN_NAMES = (
    "Botkyrka kommun",
    "Danderyds kommun",
    "Ekerö kommun",
    "Järfälla kommun",
    "Lidingö stad",
    "Nacka kommun",
    "Södertälje kommun",
    "Täby kommun",
    "Upplands Väsby kommun",
    "Värmdö kommun",
    "Österåkers kommun",
    "Åre kommun",
)


@dataclass(frozen=True)
class Shape:
    clients: int = 120
    extra_kommuner: int = 3  # new kommuner in county 01 besides Stockholms stad and Huddinge
    coordination_share: float = 0.15
    max_chains: int = 3
    plan_rate: float = 0.8  # mean plans per client
    out_of_county_share: float = 0.15
    span_days: int = 500  # how far around the period the data spreads


def _org_number(rng: random.Random, taken: set[str], prefix: str) -> str:
    while True:
        body = prefix + f"{rng.randrange(10 ** (9 - len(prefix))):0{9 - len(prefix)}d}"
        number = body + str(luhn_check_digit(body))
        if number not in taken:
            taken.add(number)
            return number


def _stamp(rng: random.Random, day: date) -> datetime:
    """A time on a Swedish calendar day, often close to midnight (where UTC and local dates differ)."""
    roll = rng.random()
    if roll < 0.3:
        clock = time(23, rng.randrange(60), rng.randrange(60))
    elif roll < 0.55:
        clock = time(rng.randrange(2), rng.randrange(60), rng.randrange(60))
    else:
        clock = time(rng.randrange(24), rng.randrange(60), rng.randrange(60))
    return datetime.combine(day, clock, tzinfo=STHLM).astimezone(UTC)


def _around(rng: random.Random, start: date, end: date, span: int) -> date:
    lo, hi = start - timedelta(days=span), end + timedelta(days=span // 4)
    day = lo + timedelta(days=rng.randrange((hi - lo).days + 1))
    if rng.random() < 0.12:  # the period's edges and their neighbours
        day = rng.choice((start, end, start - timedelta(days=1), end + timedelta(days=1)))
    if rng.random() < 0.05:  # a summer-time change: the last Sunday of March or October
        month = rng.choice((3, 10))
        last = date(day.year, month, 31)
        day = last - timedelta(days=(last.weekday() + 1) % 7)
    return day


def make_world(seed: int, start: date, end: date, demo: dict[str, Any], shape: Shape = Shape()) -> World:
    """`demo`: the demo organisations (tests.conftest.orgs). Adds kommuner in county 01, a kommun
    in county 04 and an 'other' organisation."""
    rng = random.Random(seed)
    taken = {o.org_number for o in demo.values()}
    orgs: dict[uuid.UUID, Org] = {}
    for key, kind in (
        ("sthlm-stad", "kommun"),
        ("huddinge", "kommun"),
        ("uppsala", "kommun"),
        ("region-sthlm", "region"),
        ("region-uppsala", "region"),
        ("sis", "state"),
    ):
        ref = demo[key]
        orgs[ref.id] = Org(ref.id, ref.name, kind, ref.county_code, ref.org_number)
    for name in rng.sample(KOMMUN_NAMES, shape.extra_kommuner):
        o = Org(uuid.uuid4(), name, "kommun", "01", _org_number(rng, taken, "212"))
        orgs[o.id] = o
    far = Org(uuid.uuid4(), "Eskilstuna kommun", "kommun", "04", _org_number(rng, taken, "212"))
    other = Org(uuid.uuid4(), "Försäkringskassan", "other", "01", _org_number(rng, taken, "202"))
    orgs[far.id], orgs[other.id] = far, other

    home = [o.id for o in orgs.values() if o.kind == "kommun" and o.county == "01"]
    away = [o.id for o in orgs.values() if o.kind == "kommun" and o.county != "01"]
    owners = list(orgs)
    persons: dict[uuid.UUID, Person] = {}
    episodes: list[Ep] = []
    plans: list[Pl] = []
    used_numbers: set[str] = set()
    for _ in range(shape.clients):
        birth = date(rng.randrange(1935, 2010), rng.randrange(1, 13), 1) + timedelta(days=rng.randrange(31))
        if rng.random() < 0.03:
            birth = date(rng.choice((1960, 1976, 1988, 2000)), 2, 29)
        if rng.random() < 0.05:  # a birthday on the period's first day
            birth = birth.replace(month=start.month, day=min(start.day, 28))
        coordination = rng.random() < shape.coordination_share
        while True:
            number = make_personal_number(birth, rng.randrange(1000), coordination)
            if number not in used_numbers:
                used_numbers.add(number)
                break
        person = Person(uuid.uuid4(), birth, rng.choice(GENDERS), coordination, number)
        persons[person.id] = person
        for _chain in range(rng.randint(1, shape.max_chains)):
            kommun = rng.choice(away if rng.random() < shape.out_of_county_share else home)
            day = _around(rng, start, end, shape.span_days)
            for phase in rng.sample(ALL_PHASES, rng.randint(1, 4)):
                length = rng.randrange(0, 200)
                open_end = rng.random() < 0.2
                ep_end = None if open_end else day + timedelta(days=length)
                episodes.append(Ep(uuid.uuid4(), person.id, phase, day, ep_end, kommun))
                if rng.random() < 0.1:  # another care episode starting the same day
                    twin_kommun = rng.choice(home)
                    twin_end = None if rng.random() < 0.3 else day + timedelta(days=rng.randrange(0, 90))
                    episodes.append(Ep(uuid.uuid4(), person.id, rng.choice(CARE), day, twin_end, twin_kommun))
                if ep_end is None:
                    break
                day = ep_end + timedelta(days=rng.randrange(0, 10))
        n_plans = 0
        while rng.random() < shape.plan_rate / (1 + shape.plan_rate) and n_plans < 4:
            n_plans += 1
        for _plan in range(n_plans):
            created_day = _around(rng, start, end, shape.span_days)
            created = _stamp(rng, created_day)
            activated = closed = cancelled = None
            if rng.random() < 0.75:
                activated = max(created, _stamp(rng, created_day + timedelta(days=rng.randrange(0, 20))))
                if rng.random() < 0.45:
                    closed = _stamp(rng, local(activated) + timedelta(days=rng.randrange(0, 300)))
                    closed = max(closed, activated)
                if rng.random() < 0.03:  # an odd row: both activated and cancelled
                    cancelled = activated + timedelta(days=rng.randrange(0, 40))
            elif rng.random() < 0.3:
                cancelled = _stamp(rng, created_day + timedelta(days=rng.randrange(0, 30)))
            plan = Pl(uuid.uuid4(), person.id, created, activated, closed, cancelled, rng.random() < 0.6)
            for _a in range(rng.randrange(0, 5)):
                status = rng.choice(ACTION_STATUSES + COMMITTED)
                phase = rng.choice((None, "eftervard", "eftervard", *ALL_PHASES))
                plan.actions.append(Act(rng.choice(owners), status, phase))
            for _m in range(rng.randrange(0, 4)):
                held = None
                if rng.random() < 0.7:
                    held = _stamp(rng, created_day + timedelta(days=rng.randrange(-2, 60)))
                plan.held.append(held)
            for _f in range(rng.randrange(0, 4)):
                due = _around(rng, start, end, shape.span_days // 2)
                held_date = None if rng.random() < 0.3 else due + timedelta(days=rng.randrange(-15, 15))
                plan.followups.append((due, held_date))
            plans.append(plan)
    return World(orgs, persons, episodes, plans)


async def insert_world(session: AsyncSession, world: World, demo: dict[str, Any]) -> None:
    """Bulk inserts, system scope (the `session` fixture)."""
    now = datetime.now(UTC)
    demo_ids = {ref.id for ref in demo.values()}
    sis = demo["sis"].id
    new_orgs = [
        {
            "id": o.id,
            "name": o.name,
            "kind": o.kind,
            "county_code": o.county,
            "org_number": o.org_number,
            "created_at": now,
        }
        for o in world.orgs.values()
        if o.id not in demo_ids
    ]

    async def bulk(table: Any, rows: list[dict[str, Any]]) -> None:
        for i in range(0, len(rows), 5000):
            await session.execute(insert(table), rows[i : i + 5000])

    await bulk(Organisation.__table__, new_orgs)
    await bulk(
        Client.__table__,
        [
            {
                "id": p.id,
                "personal_number": p.personal_number,
                "is_coordination_number": p.coordination,
                "birth_date": p.birth,
                "given_name": "Test",
                "family_name": "Testsson",
                "gender": p.gender,
                "protected_identity": False,
                "created_at": now,
            }
            for p in world.persons.values()
        ],
    )
    await bulk(
        Episode.__table__,
        [
            {
                "id": e.id,
                "client_id": e.client_id,
                "phase": e.phase,
                "start_date": e.start,
                "end_date": e.end,
                "planned_end_date": None,
                "organisation_id": sis if e.phase == "lvm_vard" else e.kommun_id,
                "unit_id": None,
                "responsible_kommun_id": e.kommun_id,
                "recorded_by_organisation_id": e.kommun_id,
                "note": None,
                "created_at": now,
                "updated_at": now,
            }
            for e in world.episodes
        ],
    )
    plan_rows, action_rows, meeting_rows, followup_rows = [], [], [], []
    for p in world.plans:
        status = (
            "cancelled"
            if p.cancelled_at
            else "closed"
            if p.closed_at
            else "active"
            if p.activated_at
            else "draft"
        )
        initiator = next(iter(world.orgs))
        plan_rows.append(
            {
                "id": p.id,
                "client_id": p.client_id,
                "title": "SIP",
                "legal_basis": [],
                "status": status,
                "version": 1,
                "initiating_organisation_id": initiator,
                "created_by": "test",
                "overall_responsible_organisation_id": None,
                "follow_up_date": None,
                "client_participated": p.participated,
                "relatives_objection": False,
                "created_at": p.created_at,
                "updated_at": p.created_at,
                "activated_at": p.activated_at,
                "closed_at": p.closed_at,
                "cancelled_at": p.cancelled_at,
            }
        )
        for a in p.actions:
            action_rows.append(
                {
                    "id": uuid.uuid4(),
                    "plan_id": p.id,
                    "goal_id": None,
                    "description": "insats",
                    "responsible_organisation_id": a.org_id,
                    "phase": a.phase,
                    "start_date": None,
                    "end_date": None,
                    "status": a.status,
                    "dispute_reason": None,
                    "proposed_by_organisation_id": initiator,
                    "proposed_at": p.created_at,
                    "decided_at": None,
                    "decided_by": None,
                    "updated_at": p.created_at,
                }
            )
        for held in p.held:
            meeting_rows.append(
                {
                    "id": uuid.uuid4(),
                    "plan_id": p.id,
                    "starts_at": held or p.created_at + timedelta(days=3),
                    "purpose": "SIP-möte",
                    "questions": [],
                    "location": "Rum 4",
                    "organiser_organisation_id": initiator,
                    "created_by": "test",
                    "created_at": p.created_at,
                    "updated_at": p.created_at,
                    "held_at": held,
                    "record": None,
                    "attendees": [],
                }
            )
        for due, held_date in p.followups:
            followup_rows.append(
                {
                    "id": uuid.uuid4(),
                    "plan_id": p.id,
                    "due_date": due,
                    "held_date": held_date,
                    "outcome_code": None,
                    "outcome_text": None,
                    "next_follow_up_date": None,
                    "created_by_organisation_id": initiator,
                    "created_at": p.created_at,
                    "recorded_by_organisation_id": None,
                    "recorded_at": None,
                }
            )
    await bulk(Plan.__table__, plan_rows)
    await bulk(Action.__table__, action_rows)
    await bulk(Meeting.__table__, meeting_rows)
    await bulk(FollowUp.__table__, followup_rows)
    await session.flush()


# ---- comparing -------------------------------------------------------------------------------


def truth_key(breakdown: Sequence[Dimension], values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((d.value, v) for d, v in zip(breakdown, values, strict=True)))


def assert_counts_equal(counts: Counts, truth: Truth, where: str) -> None:
    got = {ind.value: list(nd) for ind, nd in counts.ratios().items()}
    assert got == truth.ratios, where
    value, n = truth.median()
    assert counts.meeting_plans == n, where
    assert counts.median_days() == value, where


async def compare(
    session: AsyncSession,
    world: World,
    county: str,
    start: date,
    end: date,
    *,
    interval: Interval | None = None,
    kommun_id: uuid.UUID | None = None,
) -> int:
    """Every group of every breakdown of every period; returns the number of groups compared."""
    scope = ReportScope("kommun" if kommun_id else "county", county, kommun_id)
    periods = periods_for(start, end, interval)
    dims = list(Dimension)
    finest = await compute_counts(session, scope, periods, dims)
    compared = 0
    for pid, period in enumerate(periods):
        truth = oracle(world, county, period.start, period.end, kommun_id)
        for size in range(len(dims) + 1):
            for breakdown in combinations(dims, size):
                got = rollup(finest[pid], dims, breakdown)
                wanted = {k for k in truth if {d for d, _ in k} == {d.value for d in breakdown}}
                nonzero = {truth_key(breakdown, v) for v, c in got.items() if c != Counts()}
                assert nonzero <= wanted, (period, breakdown)
                for key in wanted:
                    values = tuple(dict(key)[d.value] for d in breakdown)
                    where = f"{period} {breakdown} {values}"
                    assert_counts_equal(got.get(values, Counts()), truth[key], where)
                    compared += 1
    return compared


# ---- tests -----------------------------------------------------------------------------------

SHAPES = [
    (1, date(2026, 1, 1), date(2026, 12, 31), Shape()),
    (2, date(2026, 3, 29), date(2026, 3, 29), Shape(clients=150)),  # one day: the summer-time change
    (3, date(2025, 10, 26), date(2026, 3, 28), Shape(max_chains=5, plan_rate=2.0)),
    (4, date(2024, 2, 29), date(2027, 2, 28), Shape(coordination_share=0.6, span_days=1500)),
    (5, date(2026, 6, 15), date(2026, 7, 14), Shape(clients=60, extra_kommuner=0, out_of_county_share=0.5)),
    (6, date(2026, 1, 1), date(2026, 3, 31), Shape(clients=200, extra_kommuner=8, span_days=120)),
    (7, date(2019, 1, 1), date(2028, 12, 31), Shape(clients=80, span_days=3000)),
    (8, date(2026, 5, 1), date(2026, 5, 31), Shape(clients=1, max_chains=1)),
]


@pytest.mark.parametrize(("seed", "start", "end", "shape"), SHAPES, ids=[f"seed{s[0]}" for s in SHAPES])
async def test_counts_match_the_definitions(session: AsyncSession, orgs, seed, start, end, shape) -> None:
    world = make_world(seed, start, end, orgs, shape)
    await insert_world(session, world, orgs)
    compared = await compare(session, world, "01", start, end)
    assert compared > (50 if shape.clients > 10 else 0) or shape.clients <= 1
    # The other county of the data set: its own population, nothing of county 01's.
    await compare(session, world, "03", start, end)


@pytest.mark.parametrize("seed", [11, 12, 13])
async def test_monthly_series_match_the_definitions(session: AsyncSession, orgs, seed: int) -> None:
    start, end = date(2025, 11, 17), date(2026, 4, 9)  # partial months at both ends, two summer-time changes
    world = make_world(seed, start, end, orgs, Shape(clients=100, span_days=300))
    await insert_world(session, world, orgs)
    await compare(session, world, "01", start, end, interval=Interval.month)


@pytest.mark.parametrize("seed", [21, 22])
async def test_a_kommun_scope_is_the_population_attributed_to_it(
    session: AsyncSession, orgs, seed: int
) -> None:
    start, end = date(2026, 1, 1), date(2026, 6, 30)
    world = make_world(seed, start, end, orgs, Shape(clients=150))
    await insert_world(session, world, orgs)
    await compare(session, world, "01", start, end, kommun_id=orgs["huddinge"].id)
    await compare(session, world, "01", start, end, interval=Interval.month, kommun_id=orgs["sthlm-stad"].id)


async def test_an_empty_county_has_zero_everywhere(session: AsyncSession, orgs) -> None:
    start, end = date(2026, 1, 1), date(2026, 12, 31)
    world = make_world(31, start, end, orgs)
    lonely = Org(uuid.uuid4(), "Nyköpings kommun", "kommun", "05", "2120001231")
    world.orgs[lonely.id] = lonely
    await insert_world(session, world, orgs)
    for county in ("05", "25"):  # a kommun but no care episodes; no organisation at all
        scope = ReportScope("county", county)
        finest = await compute_counts(session, scope, periods_for(start, end, None), list(Dimension))
        assert finest[0] == {}
        assert oracle(world, county, start, end) == {}


async def test_clients_crossing_the_edges_and_same_day_starts(session: AsyncSession, orgs) -> None:
    """Hand-made cases at the edges: an episode ending the day before the period, one starting the
    day after, one ending on the first day, an open one, and two care episodes starting the same
    day (the open one wins)."""
    start, end = date(2026, 3, 1), date(2026, 3, 31)
    sthlm, hudd = orgs["sthlm-stad"].id, orgs["huddinge"].id
    world = World({}, {}, [], [])
    base = make_world(0, start, end, orgs, Shape(clients=0, extra_kommuner=0))
    world.orgs = base.orgs

    def person(birth: date, gender: str, serial: int, coordination: bool = False) -> uuid.UUID:
        p = Person(
            uuid.uuid4(), birth, gender, coordination, make_personal_number(birth, serial, coordination)
        )
        world.persons[p.id] = p
        return p.id

    a = person(date(2001, 3, 1), "kvinna", 11)  # turns 25 on the first day
    b = person(date(1990, 5, 5), "man", 12, coordination=True)
    c = person(date(1950, 1, 1), "annat", 13)
    d = person(date(1980, 1, 1), "okant", 14)
    world.episodes += [
        Ep(uuid.uuid4(), a, "lvm_vard", date(2026, 1, 1), date(2026, 2, 28), sthlm),  # ends before
        Ep(uuid.uuid4(), a, "eftervard", date(2026, 3, 1), None, hudd),  # open, from the first day
        Ep(uuid.uuid4(), b, "lvm_vard", date(2026, 4, 1), None, sthlm),  # starts after: not counted
        Ep(uuid.uuid4(), c, "lvm_vard", date(2025, 12, 1), date(2026, 3, 1), sthlm),  # ends on day one
        Ep(uuid.uuid4(), d, "vard_i_annan_form", date(2026, 3, 10), date(2026, 3, 20), sthlm),
        Ep(uuid.uuid4(), d, "eftervard", date(2026, 3, 10), None, hudd),  # same day, open: wins
    ]
    await insert_world(session, world, orgs)
    truth = oracle(world, "01", start, end)
    assert truth[()].ratios["coverage"] == [0, 3]
    assert truth[(("age_band", "25-34"),)].ratios["coverage"] == [0, 1]
    assert truth[(("kommun", str(hudd)),)].ratios["coverage"] == [0, 2]
    assert truth[(("phase", "eftervard"),)].ratios["coverage"] == [0, 2]
    assert truth[()].ratios["discharge_with_plan"] == [0, 1]
    await compare(session, world, "01", start, end)


async def test_local_dates_in_sql_follow_swedish_time(session: AsyncSession) -> None:
    """The dialect-specific part: Swedish dates of UTC timestamps around midnight and the
    summer-time changes, and day differences, on this backend."""
    stamps = []
    for year in (1999, 2012, 2024, 2026, 2031, 2040):
        for month in (3, 10):
            last = date(year, month, 31)
            last_sunday = last - timedelta(days=(last.weekday() + 1) % 7)
            switch = datetime.combine(last_sunday, time(1), tzinfo=UTC)
            for minutes in (-61, -60, -1, 0, 1, 59, 60, 61, 22 * 60 + 59, 23 * 60, 23 * 60 + 1):
                stamps.append(switch + timedelta(minutes=minutes))
        for day in (date(year, 1, 1), date(year, 7, 1), date(year, 12, 31)):
            for hh, mm in ((21, 59), (22, 0), (22, 1), (22, 59), (23, 0), (23, 1)):
                stamps.append(datetime.combine(day, time(hh, mm, 59, 999999), tzinfo=UTC))
    for ts in stamps:
        expr = local_date(literal(ts, UTCDateTime()))
        got = (await session.execute(select(expr))).scalar_one()
        got = date.fromisoformat(got) if isinstance(got, str) else got
        assert got == local(ts), ts
    d1, d2 = date(2026, 3, 28), date(2026, 11, 2)
    diff = (await session.execute(select(days_between(literal(d1), literal(d2))))).scalar_one()
    assert diff == (d2 - d1).days
    diff = (await session.execute(select(days_between(literal(d2), literal(d1))))).scalar_one()
    assert diff == (d1 - d2).days


async def test_report_sql_reads_no_row_of_a_person(session: AsyncSession, orgs) -> None:
    """The statement returns aggregates only: kind, period, group and three counts."""
    start, end = date(2026, 1, 1), date(2026, 12, 31)
    world = make_world(41, start, end, orgs, Shape(clients=30))
    await insert_world(session, world, orgs)
    stmt = coverage.counts_statement(ReportScope("county", "01"), periods_for(start, end, None), [])
    rows = (await session.execute(stmt)).all()
    assert {r[0] for r in rows} <= {"clients", "plans", "median", "followups"}
    assert all(len(r) == 7 for r in rows)
    assert (await session.execute(text("SELECT 1"))).scalar_one() == 1


# ---- pure helpers ----------------------------------------------------------------------------


@given(st.lists(st.integers(-50, 400), max_size=60))
def test_histogram_median_is_the_median(values: list[int]) -> None:
    hist: dict[int, int] = defaultdict(int)
    for v in values:
        hist[v] += 1
    expected = statistics.median(values) if values else None
    assert coverage.histogram_median(hist) == expected


@given(st.dates(date(1900, 1, 1), date(2090, 12, 31)), st.dates(date(2000, 1, 1), date(2060, 12, 31)))
def test_age_band_thresholds_agree_with_whole_years(birth: date, first_day: date) -> None:
    age = age_on(birth, first_day)
    for years in (25, 35, 45, 55, 65):
        assert (birth <= coverage.age_threshold(first_day, years)) == (age >= years)


@settings(max_examples=200)
@given(st.dates(date(2000, 1, 1), date(2040, 12, 31)), st.integers(0, 3652), st.booleans())
def test_periods_cover_the_period_month_by_month(start: date, days: int, monthly: bool) -> None:
    end = start + timedelta(days=days)
    periods = periods_for(start, end, Interval.month if monthly else None)
    assert (periods[0].start, periods[0].end, periods[0].month) == (start, end, None)
    months = periods[1:]
    if not monthly:
        assert months == []
        return
    assert months[0].start == start and months[-1].end == end
    for a, b in pairwise(months):
        assert b.start == a.end + timedelta(days=1) and b.start.day == 1
    for m in months:
        assert m.start.strftime("%Y-%m") == m.end.strftime("%Y-%m") == m.month


def test_ten_years_is_the_longest_period() -> None:
    coverage.check_period(date(2016, 1, 1), date(2025, 12, 31))
    coverage.check_period(date(2016, 2, 29), date(2026, 2, 27))
    with pytest.raises(UnprocessableEntity):
        coverage.check_period(date(2016, 1, 1), date(2026, 1, 1))
    with pytest.raises(UnprocessableEntity):
        coverage.check_period(date(2026, 1, 2), date(2026, 1, 1))


def test_breakdowns_include_their_margins() -> None:
    got = coverage.parse_breakdowns(["gender,kommun", "phase"])
    assert got == (
        (Dimension.kommun,),
        (Dimension.gender,),
        (Dimension.phase,),
        (Dimension.kommun, Dimension.gender),
    )
    for bad in (["kommune"], ["kommun,"], ["kommun,kommun"], ["x"] * 9):
        with pytest.raises(UnprocessableEntity):
            coverage.parse_breakdowns(bad)
