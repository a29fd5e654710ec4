"""`suppress` on its own: small counts are never shown, and no suppressed cell can be worked out
from the other cells of the same answer, neither by subtracting visible parts from a total nor by
any other combination of the additive relations (an exact linear-algebra attack over the
rationals). Tables of one to three dimensions with all their margins, some with a month series."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from fractions import Fraction
from itertools import combinations, product

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.services.coverage import Cell, CellKey, Coords, determined_cells, suppress

MIN = 5


def _small(v: int | None) -> bool:
    return v is not None and 1 <= v < MIN


def table_cells(
    indicator: str,
    dims: Sequence[tuple[str, int]],
    finest: dict[tuple[int, ...], tuple[int, int]],
    breakdowns: Iterable[Sequence[int]] | None = None,
    median: bool = False,
) -> list[Cell]:
    """Cells of every margin of a table given its finest (numerator, denominator) counts.
    `breakdowns`: which dimension index sets to publish (default all); the total always."""
    n = len(dims)
    subsets = (
        [tuple(s) for s in breakdowns]
        if breakdowns is not None
        else [s for k in range(1, n + 1) for s in combinations(range(n), k)]
    )
    cells = []
    for subset in [(), *subsets]:
        sums: dict[tuple[int, ...], list[int]] = defaultdict(lambda: [0, 0])
        for key, (num, den) in finest.items():
            proj = tuple(key[i] for i in subset)
            sums[proj][0] += num
            sums[proj][1] += den
        for values in product(*(range(dims[i][1]) for i in subset)):
            coords = frozenset((dims[i][0], str(v)) for i, v in zip(subset, values, strict=True))
            num, den = sums.get(values, [0, 0])
            cells.append(Cell(indicator, coords, None if median else num, den))
    return cells


def lines_of(cells: Sequence[Cell]) -> list[tuple[CellKey, list[CellKey]]]:
    """Independent of the service: every total and its parts along one dimension."""
    keys = {c.key for c in cells}
    out: dict[tuple[str, Coords, str], list[CellKey]] = defaultdict(list)
    for c in cells:
        for pair in c.coords:
            parent = c.coords - {pair}
            if (c.indicator, parent) in keys:
                out[(c.indicator, parent, pair[0])].append(c.key)
    return [((ind, parent), parts) for (ind, parent, _d), parts in out.items()]


def determined(cells: Sequence[Cell], hidden: frozenset[CellKey]) -> set[CellKey]:
    """Hidden cells whose value follows exactly from the visible cells and the additive relations:
    Gaussian elimination over the rationals on the relations restricted to the hidden cells. A
    hidden cell is determined when the reduced system has a row that names it alone."""
    found: set[CellKey] = set()
    by_indicator: dict[str, list[Cell]] = defaultdict(list)
    for c in cells:
        by_indicator[c.indicator].append(c)
    for group in by_indicator.values():
        unknown = sorted((c.key for c in group if c.key in hidden), key=repr)
        if not unknown:
            continue
        index = {k: i for i, k in enumerate(unknown)}
        rows: list[dict[int, Fraction]] = []
        for total, parts in lines_of(group):
            row: dict[int, Fraction] = {}
            for key, sign in [(total, 1), *((p, -1) for p in parts)]:
                if key in index:
                    row[index[key]] = row.get(index[key], Fraction(0)) + sign
            row = {k: v for k, v in row.items() if v}
            if row:
                rows.append(row)
        pivots: list[tuple[int, dict[int, Fraction]]] = []
        for row in rows:
            for col, prow in pivots:
                if col in row:
                    factor = row[col]
                    for k, v in prow.items():
                        row[k] = row.get(k, Fraction(0)) - factor * v
                    row = {k: v for k, v in row.items() if v}
            if not row:
                continue
            col = min(row)
            inv = 1 / row[col]
            row = {k: v * inv for k, v in row.items()}
            new_pivots = []
            for pcol, prow in pivots:
                if col in prow:
                    factor = prow[col]
                    prow = {
                        k: prow.get(k, Fraction(0)) - factor * row.get(k, Fraction(0)) for k in prow | row
                    }
                    prow = {k: v for k, v in prow.items() if v}
                new_pivots.append((pcol, prow))
            pivots = [*new_pivots, (col, row)]
        for col, prow in pivots:
            if len(prow) == 1:
                found.add(unknown[col])
    return found


def check(cells: Sequence[Cell], hidden: frozenset[CellKey]) -> None:
    by_key = {c.key: c for c in cells}
    assert hidden <= set(by_key)
    for c in cells:
        if _small(c.numerator) or _small(c.denominator):
            assert c.key in hidden, c
    for total, parts in lines_of(cells):
        n = sum(1 for k in [total, *parts] if k in hidden)
        assert n != 1, (total, parts)
    for ind, coords in hidden:
        if ind == "coverage" and ("both_huvudman", coords) in by_key:
            assert ("both_huvudman", coords) in hidden
    assert determined(cells, hidden) == set()


# ---- strategies ------------------------------------------------------------------------------

small_count = st.one_of(st.integers(0, 0), st.integers(1, 4), st.integers(5, 12), st.integers(0, 40))


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[Cell], str]:
    n_dims = draw(st.integers(1, 3))
    names = ["kommun", "gender", "age_band"][:n_dims]
    dims = [(name, draw(st.integers(1, 5 if n_dims < 3 else 3))) for name in names]
    finest = {}
    for key in product(*(range(size) for _n, size in dims)):
        den = draw(small_count)
        num = draw(st.integers(0, den))
        finest[key] = (num, den)
    all_subsets = [s for k in range(1, n_dims + 1) for s in combinations(range(n_dims), k)]
    publish = draw(st.sampled_from(["all", "finest only", "margins only"]))
    chosen: list[tuple[int, ...]] | None = None
    if publish == "finest only":
        chosen = [tuple(range(n_dims))]
    elif publish == "margins only":
        chosen = [s for s in all_subsets if len(s) == 1]
    cells = table_cells("coverage", dims, finest, chosen)
    # both_huvudman's denominator is coverage's numerator
    both_finest = {k: (draw(st.integers(0, num)), num) for k, (num, _den) in finest.items()}
    cells += table_cells("both_huvudman", dims, both_finest, chosen)
    cells += table_cells("median_days_to_first_meeting", dims, finest, chosen, median=True)
    return cells, publish


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_no_small_count_and_nothing_recoverable(table: tuple[list[Cell], str]) -> None:
    cells, _publish = table
    check(cells, suppress(cells))


@st.composite
def series(draw: st.DrawFn) -> list[Cell]:
    """A breakdown over months, with the whole period as the months' total (additive, as for the
    discharges)."""
    months = draw(st.integers(1, 6))
    groups = draw(st.integers(1, 5))
    finest = {}
    for key in product(range(months), range(groups)):
        den = draw(small_count)
        finest[key] = (draw(st.integers(0, den)), den)
    cells = []
    for month in [None, *range(months)]:
        for group in [None, *range(groups)]:
            num = den = 0
            for (m, g), (a, b) in finest.items():
                if (month is None or m == month) and (group is None or g == group):
                    num, den = num + a, den + b
            coords = set()
            if month is not None:
                coords.add(("month", f"2026-{month + 1:02d}"))
            if group is not None:
                coords.add(("gender", str(group)))
            cells.append(Cell("discharge_with_plan", frozenset(coords), num, den))
    return cells


@settings(max_examples=300, deadline=None)
@given(series())
def test_months_and_the_whole_period_are_protected_together(cells: list[Cell]) -> None:
    check(cells, suppress(cells))


# ---- examples --------------------------------------------------------------------------------


def one_dim(values: Sequence[tuple[int, int]], indicator: str = "coverage") -> list[Cell]:
    return table_cells(indicator, [("kommun", len(values))], {(i,): v for i, v in enumerate(values)})


def test_a_single_small_cell_takes_the_smallest_other_part_with_it() -> None:
    cells = one_dim([(6, 20), (2, 3), (10, 50), (8, 9)])
    hidden = suppress(cells)
    assert hidden == {("coverage", frozenset({("kommun", "1")})), ("coverage", frozenset({("kommun", "3")}))}
    check(cells, hidden)


def test_zeros_are_shown_and_not_used_to_protect_while_a_non_zero_part_can() -> None:
    cells = one_dim([(0, 0), (3, 3), (0, 0), (7, 30)])
    hidden = suppress(cells)
    assert ("coverage", frozenset({("kommun", "3")})) in hidden
    assert ("coverage", frozenset({("kommun", "0")})) not in hidden
    check(cells, hidden)


def test_when_only_zeros_are_left_the_total_goes() -> None:
    cells = one_dim([(0, 0), (1, 2), (0, 0)])
    hidden = suppress(cells)
    assert ("coverage", frozenset()) in hidden  # the total is 1/2 itself
    check(cells, hidden)


def test_nothing_small_nothing_suppressed() -> None:
    cells = one_dim([(0, 0), (5, 5), (0, 7), (12, 30)])
    assert suppress(cells) == frozenset()


def test_a_small_numerator_suppresses_the_cell_whatever_the_denominator() -> None:
    cells = one_dim([(1, 100), (50, 100), (40, 100)])
    hidden = suppress(cells)
    assert ("coverage", frozenset({("kommun", "0")})) in hidden
    check(cells, hidden)


def test_a_suppressed_coverage_cell_hides_both_huvudman_of_the_group() -> None:
    cov = one_dim([(0, 3), (6, 20), (9, 9)])
    both = one_dim([(0, 0), (5, 6), (5, 9)], "both_huvudman")
    hidden = suppress(cov + both)
    assert ("coverage", frozenset({("kommun", "0")})) in hidden
    assert ("both_huvudman", frozenset({("kommun", "0")})) in hidden
    check(cov + both, hidden)


def test_median_cells_are_suppressed_on_n() -> None:
    cells = one_dim([(0, 2), (0, 8), (0, 9)], "median_days_to_first_meeting")
    cells = [Cell(c.indicator, c.coords, None, c.denominator) for c in cells]
    hidden = suppress(cells)
    assert ("median_days_to_first_meeting", frozenset({("kommun", "0")})) in hidden
    check(cells, hidden)


def test_a_two_way_table_needs_more_than_a_second_cell_per_line() -> None:
    """The 2 x 2 pattern: one small cell in a kommun x gender table hides a rectangle."""
    finest = {
        (0, 0): (2, 2),
        (0, 1): (9, 9),
        (1, 0): (7, 7),
        (1, 1): (8, 8),
        (2, 0): (6, 6),
        (2, 1): (30, 30),
    }
    cells = table_cells("coverage", [("kommun", 3), ("gender", 2)], finest)
    hidden = suppress(cells)
    assert len([k for k in hidden if len(k[1]) == 2]) >= 4
    check(cells, hidden)


def test_the_answer_does_not_depend_on_the_order_of_the_cells() -> None:
    rng = random.Random(7)
    finest = {(i, j): (rng.randrange(0, 6), rng.randrange(6, 15)) for i in range(6) for j in range(4)}
    cells = table_cells("coverage", [("kommun", 6), ("gender", 4)], finest)
    first = suppress(cells)
    for _ in range(5):
        rng.shuffle(cells)
        assert suppress(cells) == first
    check(cells, first)


def test_a_large_sparse_four_way_table_stays_protected() -> None:
    rng = random.Random(11)
    dims = [("kommun", 12), ("gender", 4), ("age_band", 6), ("phase", 3)]
    finest = {}
    for key in product(*(range(n) for _d, n in dims)):
        den = rng.choice((0, 0, 0, 0, 1, 2, 3, 6, 10))
        finest[key] = (rng.randrange(den + 1), den)
    cells = table_cells("coverage", dims, finest)
    hidden = suppress(cells)
    by_key = {c.key: c for c in cells}
    for c in cells:
        if _small(c.numerator) or _small(c.denominator):
            assert c.key in hidden
    for total, parts in lines_of(cells):
        assert sum(1 for k in [total, *parts] if k in hidden) != 1
    assert hidden <= set(by_key)
    assert determined(cells, hidden) == set()


@settings(max_examples=300, deadline=None)
@given(tables(), st.randoms(use_true_random=False))
def test_the_exact_check_agrees_with_elimination_over_the_rationals(
    table: tuple[list[Cell], str], rnd: random.Random
) -> None:
    """`determined_cells` (modular arithmetic, in the service) against `determined` (Fractions,
    here) on arbitrary suppression patterns."""
    cells, _publish = table
    for indicator in ("coverage", "both_huvudman"):
        group = [c for c in cells if c.indicator == indicator]
        hidden = frozenset(c.key for c in group if rnd.random() < 0.4)
        assert determined_cells(lines_of(group), hidden) == determined(group, hidden)
