"""GET /api/v1/reports/coverage: the numbers against the plain-Python oracle of DOMAIN.md, small
counts never shown and never recoverable from the same answer, who sees which county, the CSV
for Excel, and clear refusals of bad input."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.audit import AuditEvent
from app.services.coverage import Cell, CellKey
from app.services.identifiers import make_personal_number
from tests.conftest import assert_problem
from tests.services.test_coverage import (
    MEDIAN,
    RATIOS,
    Ep,
    Person,
    Pl,
    Shape,
    Truth,
    World,
    insert_world,
    make_world,
    oracle,
)
from tests.services.test_suppression import determined, lines_of

URL = "/api/v1/reports/coverage"
START, END = date(2026, 1, 1), date(2026, 12, 31)
DIMS = ("kommun", "gender", "age_band", "phase")


def rss(auth, county: str = "01") -> dict[str, str]:
    return auth("region-sthlm", "rss", county=county)


async def get(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> httpx.Response:
    query: dict[str, Any] = {"from": str(params.pop("start", START)), "to": str(params.pop("end", END))}
    query.update(params)
    return await client.get(URL, params=query, headers=headers)


def group_key(group: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for d in DIMS:
        if d in group["breakdown"]:
            pairs.append((d, str(group["kommun_id"]) if d == "kommun" else str(group[d])))
    return tuple(sorted(pairs))


def period_tables(body: dict[str, Any]) -> list[tuple[date, date, str | None, dict[Any, dict[str, Any]]]]:
    """Every period of an answer as (from, to, month, {group key: indicators})."""
    out = []
    periods = [{"from": body["period"]["from"], "to": body["period"]["to"], "month": None, **body}]
    periods += body.get("series") or []
    for per in periods:
        table = {(): per["total"]}
        for g in per["groups"]:
            key = group_key(g)
            assert key not in table, key
            table[key] = g["indicators"]
        out.append((date.fromisoformat(per["from"]), date.fromisoformat(per["to"]), per["month"], table))
    return out


def assert_matches_oracle(
    body: dict[str, Any], world: World, county: str, kommun_id: uuid.UUID | None = None
) -> tuple[int, int]:
    """Visible cells equal the oracle; every cell with a count from 1 to 4 is suppressed; no
    suppressed cell follows from the visible ones. Returns (cells, suppressed cells)."""
    cells: list[Cell] = []
    hidden: set[CellKey] = set()
    for start, end, month, table in period_tables(body):
        truth = oracle(world, county, start, end, kommun_id)
        for key, indicators in table.items():
            t = truth.get(key, Truth())
            coords = frozenset(key) | ({("month", month)} if month else set())
            for name in RATIOS:
                num, den = t.ratios[name]
                got = indicators[name]
                cells.append(Cell(name, coords, num, den))
                if got["suppressed"]:
                    hidden.add((name, coords))
                    assert got["numerator"] is got["denominator"] is got["value"] is None
                else:
                    assert num >= 0 and not 1 <= num <= 4 and not 1 <= den <= 4, (start, key, name, num, den)
                    assert (got["numerator"], got["denominator"]) == (num, den), (start, key, name)
                    assert got["value"] == (round(num / den, 4) if den else None)
            value, n = t.median()
            got = indicators[MEDIAN]
            cells.append(Cell(MEDIAN, coords, None, n))
            if got["suppressed"]:
                hidden.add((MEDIAN, coords))
                assert got["n"] is got["value"] is None
            else:
                assert not 1 <= n <= 4, (start, key, n)
                assert (got["n"], got["value"]) == (n, value), (start, key)
    # nothing recoverable by subtraction, nor by any combination of the additive relations
    for total, parts in lines_of(cells):
        assert sum(1 for k in (total, *parts) if k in hidden) != 1, (total, parts)
    assert determined(cells, frozenset(hidden)) == set()
    for name, coords in hidden:
        if name == "coverage":
            assert ("both_huvudman", coords) in hidden
    assert body["suppression"]["suppressed_cells"] == len(hidden)
    return len(cells), len(hidden)


# ---- the numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "group_by", "shape"),
    [
        (101, ["kommun"], Shape(clients=700, extra_kommuner=4)),
        (102, ["kommun,gender", "age_band"], Shape(clients=600, coordination_share=0.4)),
        (103, ["phase,age_band", "gender,phase"], Shape(clients=500, max_chains=4)),
        (104, ["kommun,gender,age_band,phase"], Shape(clients=400, extra_kommuner=1)),
        (105, [], Shape(clients=50)),
    ],
)
async def test_the_report_equals_the_definitions(
    client: httpx.AsyncClient, session: AsyncSession, orgs, auth, seed, group_by, shape
) -> None:
    world = make_world(seed, START, END, orgs, shape)
    await insert_world(session, world, orgs)
    r = await get(client, rss(auth), group_by=group_by)
    assert r.status_code == 200, r.text
    body = r.json()
    n_cells, _n_hidden = assert_matches_oracle(body, world, "01")
    assert n_cells > 0
    if shape.clients >= 500:
        assert body["total"]["coverage"]["denominator"] > 100  # a real population, shown
    assert body["scope"] == {
        "kind": "county",
        "county": "01",
        "county_name": "Stockholms län",
        "organisation_id": None,
        "organisation_name": None,
    }
    assert body["period"] == {"from": str(START), "to": str(END)}
    assert body["computed_at"].endswith(("Z", "+00:00"))
    for name in (*RATIOS, MEDIAN, "population", "counting_plan", "suppression"):
        assert name in body["definitions"]
    assert body["series"] is None


async def test_a_monthly_series(client: httpx.AsyncClient, session: AsyncSession, orgs, auth) -> None:
    start, end = date(2025, 12, 10), date(2026, 4, 20)
    world = make_world(111, start, end, orgs, Shape(clients=500, span_days=200))
    await insert_world(session, world, orgs)
    r = await get(client, rss(auth), start=start, end=end, interval="month", group_by=["gender"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(s["from"], s["to"], s["month"]) for s in body["series"]] == [
        ("2025-12-10", "2025-12-31", "2025-12"),
        ("2026-01-01", "2026-01-31", "2026-01"),
        ("2026-02-01", "2026-02-28", "2026-02"),
        ("2026-03-01", "2026-03-31", "2026-03"),
        ("2026-04-01", "2026-04-20", "2026-04"),
    ]
    assert_matches_oracle(body, world, "01")


async def test_an_empty_county(client: httpx.AsyncClient, session: AsyncSession, orgs, auth) -> None:
    world = make_world(121, START, END, orgs, Shape(clients=100, out_of_county_share=0.0))
    await insert_world(session, world, orgs)
    r = await get(client, auth("region-uppsala", "rss", county="03"), group_by=["kommun", "gender"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"]["coverage"] == {"numerator": 0, "denominator": 0, "value": None, "suppressed": False}
    assert body["total"]["median_days_to_first_meeting"] == {"n": 0, "value": None, "suppressed": False}
    assert [g["kommun"] for g in body["groups"] if g["breakdown"] == ["kommun"]] == ["Uppsala kommun"]
    assert body["suppression"]["suppressed_cells"] == 0
    assert_matches_oracle(body, world, "03")


# ---- suppression -----------------------------------------------------------------------------


def _ts(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 10, 0, tzinfo=UTC)


def _person(world: World, birth: date, gender: str, serial: int) -> uuid.UUID:
    p = Person(uuid.uuid4(), birth, gender, False, make_personal_number(birth, serial))
    world.persons[p.id] = p
    return p.id


async def test_a_small_kommun_is_suppressed_and_cannot_be_subtracted_out(
    client: httpx.AsyncClient, session: AsyncSession, orgs, auth
) -> None:
    """Stockholms stad 40 clients, Huddinge 3: Huddinge's cells are suppressed, and so is a
    second kommun's, so the county total minus Stockholm does not give Huddinge."""
    world = make_world(0, START, END, orgs, Shape(clients=0, extra_kommuner=2))
    extra = [o.id for o in world.kommuner("01") if o.id not in (orgs["sthlm-stad"].id, orgs["huddinge"].id)]
    layout = [(orgs["sthlm-stad"].id, 40), (orgs["huddinge"].id, 3), (extra[0], 12), (extra[1], 9)]
    serial = 100
    for kommun, n in layout:
        for i in range(n):
            serial += 1
            cid = _person(world, date(1980, 1, 1) + timedelta(days=i), "man" if i % 2 else "kvinna", serial)
            world.episodes.append(Ep(uuid.uuid4(), cid, "lvm_vard", date(2026, 2, 1), None, kommun))
            if i % 3 == 0:
                world.plans.append(Pl(uuid.uuid4(), cid, _ts(2026, 2, 3), _ts(2026, 2, 5), None, None, True))
    await insert_world(session, world, orgs)
    r = await get(client, rss(auth), group_by=["kommun"])
    assert r.status_code == 200, r.text
    body = r.json()
    by_name = {g["kommun"]: g["indicators"] for g in body["groups"]}
    assert by_name["Huddinge kommun"]["coverage"]["suppressed"] is True
    visible = [n for n, ind in by_name.items() if not ind["coverage"]["suppressed"]]
    assert "Stockholms stad" in visible
    assert len([n for n, ind in by_name.items() if ind["coverage"]["suppressed"]]) >= 2
    assert body["total"]["coverage"]["denominator"] == 64
    assert_matches_oracle(body, world, "01")


async def test_one_person_is_never_shown(
    client: httpx.AsyncClient, session: AsyncSession, orgs, auth
) -> None:
    world = make_world(0, START, END, orgs, Shape(clients=0, extra_kommuner=0))
    cid = _person(world, date(1990, 6, 1), "kvinna", 7)
    world.episodes.append(
        Ep(uuid.uuid4(), cid, "lvm_vard", date(2026, 3, 1), date(2026, 5, 1), orgs["huddinge"].id)
    )
    world.plans.append(Pl(uuid.uuid4(), cid, _ts(2026, 3, 2), _ts(2026, 3, 3), None, None, True))
    await insert_world(session, world, orgs)
    r = await get(client, rss(auth), group_by=["kommun,gender"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"]["coverage"]["suppressed"] is True
    assert body["total"]["discharge_with_plan"]["suppressed"] is True
    assert body["total"]["client_participation"]["suppressed"] is True
    for g in body["groups"]:
        for name, cell in g["indicators"].items():
            assert cell["suppressed"] or (cell.get("denominator", 0) == 0 and cell.get("n", 0) == 0), (
                g,
                name,
            )
    assert str(cid) not in r.text and world.persons[cid].personal_number not in r.text
    assert_matches_oracle(body, world, "01")


# ---- who sees what ---------------------------------------------------------------------------


async def test_rss_sees_its_own_county_only(
    client: httpx.AsyncClient, session: AsyncSession, orgs, auth
) -> None:
    world = make_world(131, START, END, orgs, Shape(clients=200, out_of_county_share=0.4))
    await insert_world(session, world, orgs)
    r = await get(client, rss(auth), county="03")
    body = assert_problem(r, 403)
    assert "own county" in str(body["detail"])
    r = await get(client, rss(auth))  # no county: the token's
    assert r.status_code == 200 and r.json()["scope"]["county"] == "01"
    r = await get(client, auth("region-uppsala", "rss", county="03"), county="03", group_by=["kommun"])
    assert r.status_code == 200, r.text
    assert_matches_oracle(r.json(), world, "03")
    r = await get(client, auth("region-uppsala", "rss", county="03"), county="01")
    assert_problem(r, 403)


async def test_a_regions_org_admin_sees_its_county(
    client: httpx.AsyncClient, session: AsyncSession, orgs, auth
) -> None:
    world = make_world(141, START, END, orgs, Shape(clients=200))
    await insert_world(session, world, orgs)
    r = await get(client, auth("region-sthlm", "org_admin"), group_by=["kommun"])
    assert r.status_code == 200, r.text
    assert r.json()["scope"]["kind"] == "county"
    assert_matches_oracle(r.json(), world, "01")
    assert_problem(await get(client, auth("region-sthlm", "org_admin"), county="03"), 403)


async def test_a_kommuns_org_admin_sees_the_population_attributed_to_it(
    client: httpx.AsyncClient, session: AsyncSession, orgs, auth
) -> None:
    world = make_world(151, START, END, orgs, Shape(clients=400, extra_kommuner=2))
    await insert_world(session, world, orgs)
    hudd = orgs["huddinge"].id
    r = await get(
        client, auth("huddinge", "org_admin"), group_by=["kommun", "gender,age_band"], interval="month"
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == {
        "kind": "kommun",
        "county": "01",
        "county_name": "Stockholms län",
        "organisation_id": str(hudd),
        "organisation_name": "Huddinge kommun",
    }
    assert {g["kommun"] for g in body["groups"] if "kommun" in g["breakdown"]} == {"Huddinge kommun"}
    assert_matches_oracle(body, world, "01", kommun_id=hudd)
    truth = oracle(world, "01", START, END, hudd)[()]
    county_truth = oracle(world, "01", START, END)[()]
    assert 0 < truth.ratios["coverage"][1] < county_truth.ratios["coverage"][1]
    assert_problem(await get(client, auth("huddinge", "org_admin"), county="03"), 403)


@pytest.mark.parametrize(
    ("org", "roles"),
    [
        ("sthlm-stad", ("handlaggare",)),
        ("sthlm-stad", ("samordnare",)),
        ("sthlm-stad", ("auditor",)),
        ("sthlm-stad", ("lasare",)),
        ("sthlm-stad", ("system",)),
        ("sis", ("org_admin",)),
        ("region-sthlm", ("platform_admin",)),
    ],
)
async def test_other_roles_are_refused(
    client: httpx.AsyncClient, auth, org: str, roles: tuple[str, ...]
) -> None:
    body = assert_problem(await get(client, auth(org, *roles), county="01"), 403)
    assert "rss" in str(body["detail"])


async def test_every_read_is_audited(client: httpx.AsyncClient, session: AsyncSession, orgs, auth) -> None:
    r = await get(client, rss(auth))
    assert r.status_code == 200
    rows = (
        await session.execute(
            select(
                AuditEvent.action, AuditEvent.object_type, AuditEvent.object_id, AuditEvent.client_id
            ).where(AuditEvent.organisation_id == orgs["region-sthlm"].id)
        )
    ).all()
    assert ("report.coverage.read", "report", "coverage/01", None) in [tuple(r) for r in rows]


# ---- CSV -------------------------------------------------------------------------------------


async def test_csv_for_excel(client: httpx.AsyncClient, session: AsyncSession, orgs, auth) -> None:
    world = make_world(161, START, END, orgs, Shape(clients=500, extra_kommuner=5))
    await insert_world(session, world, orgs)
    params = {"group_by": ["kommun,gender"], "interval": "month"}
    as_json = (await get(client, rss(auth), start=date(2026, 1, 1), end=date(2026, 3, 31), **params)).json()
    r = await get(
        client, {**rss(auth), "Accept": "text/csv"}, start=date(2026, 1, 1), end=date(2026, 3, 31), **params
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        r.headers["content-disposition"]
        == 'attachment; filename="samplan-coverage-01-2026-01-01-2026-03-31.csv"'
    )
    raw = r.content
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    n_groups = 1 + len(as_json["groups"])
    assert len(rows) == n_groups * 6 * (1 + 3)  # the whole period and three months
    names = {o.name for o in world.kommuner("01")}
    assert {row["kommun"] for row in rows if row["kommun"]} == names  # Swedish names, å ä ö intact
    assert any("ö" in n or "ä" in n or "å" in n for n in names)
    # every number equals the JSON answer's
    json_cells = {}
    for start, _end, month, table in period_tables(as_json):
        for key, indicators in table.items():
            for name, cell in indicators.items():
                json_cells[(str(start), month or "", key, name)] = cell
    for row in rows:
        key = []
        if row["kommun_id"]:
            key.append(("kommun", row["kommun_id"]))
        if row["gender"]:
            key.append(("gender", row["gender"]))
        cell = json_cells[(row["period_from"], row["month"], tuple(sorted(key)), row["indicator"])]
        assert row["suppressed"] == ("true" if cell["suppressed"] else "false")
        if cell["suppressed"]:
            assert row["value"] == ".."
            continue
        number = "n" if row["indicator"] == MEDIAN else "denominator"
        assert row[number] == str(cell[number])
        if cell["value"] is None:
            assert row["value"] == ""
        else:
            assert float(row["value"].replace(",", ".")) == pytest.approx(cell["value"])
            assert "." not in row["value"]  # a decimal comma
    assert {row["breakdown"] for row in rows} == {"total", "kommun", "gender", "kommun,gender"}


async def test_csv_keeps_a_kommun_name_from_becoming_a_formula(
    client: httpx.AsyncClient, session: AsyncSession, orgs, auth
) -> None:
    world = make_world(0, START, END, orgs, Shape(clients=0, extra_kommuner=0))
    odd = next(o for o in world.orgs.values() if o.county == "04")
    odd.name, odd.county = '=HYPERLINK("x")', "01"
    await insert_world(session, world, orgs)
    r = await get(client, {**rss(auth), "Accept": "text/csv"}, group_by=["kommun"])
    assert r.status_code == 200
    assert "'=HYPERLINK" in r.text and ";=HYPERLINK" not in r.text


@pytest.mark.parametrize(
    ("accept", "csv_wanted"),
    [
        ("text/csv", True),
        ("application/json", False),
        ("*/*", False),
        ("text/csv;q=0.5, application/json", False),
        ("application/json;q=0.4, text/csv", True),
        ("text/*", True),
    ],
)
async def test_content_negotiation(client: httpx.AsyncClient, auth, accept: str, csv_wanted: bool) -> None:
    r = await get(client, {**rss(auth), "Accept": accept})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv" if csv_wanted else "application/json")


async def test_neither_json_nor_csv_is_406(client: httpx.AsyncClient, auth) -> None:
    assert_problem(await get(client, {**rss(auth), "Accept": "application/xml"}), 406)


# ---- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": date(2026, 2, 1), "end": date(2026, 1, 31)}, "query.from"),
        ({"start": date(2016, 1, 1), "end": date(2026, 1, 1)}, "query.to"),
        ({"county": "99"}, "query.county"),
        ({"county": "1"}, "query.county"),
        ({"county": "ab"}, "query.county"),
        ({"group_by": ["kommune"]}, "query.group_by"),
        ({"group_by": ["kommun,"]}, "query.group_by"),
        ({"group_by": ["gender,gender"]}, "query.group_by"),
        ({"interval": "week"}, "query.interval"),
        ({"start": "2026-13-01"}, "query.from"),
    ],
)
async def test_bad_input_is_a_clear_422(
    client: httpx.AsyncClient, auth, params: dict[str, Any], field: str
) -> None:
    body = assert_problem(await get(client, rss(auth), **params), 422)
    errors = body["errors"]
    assert isinstance(errors, list)
    assert field in [e["field"] for e in errors], body


async def test_missing_dates_are_422(client: httpx.AsyncClient, auth) -> None:
    body = assert_problem(await client.get(URL, headers=rss(auth)), 422)
    errors = body["errors"]
    assert isinstance(errors, list)
    assert {"query.from", "query.to"} <= {e["field"] for e in errors}


async def test_ten_years_is_allowed(client: httpx.AsyncClient, auth) -> None:
    r = await get(client, rss(auth), start=date(2016, 1, 1), end=date(2025, 12, 31), interval="month")
    assert r.status_code == 200, r.text
    assert len(r.json()["series"]) == 120


async def test_an_answer_too_large_is_refused(client: httpx.AsyncClient, auth) -> None:
    r = await get(
        client,
        rss(auth),
        start=date(2016, 1, 1),
        end=date(2025, 12, 31),
        interval="month",
        group_by=["kommun,gender,age_band,phase"],
    )
    assert_problem(r, 422)


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(URL, params={"from": "2026-01-01", "to": "2026-01-31"}), 401)


async def test_openapi_documents_json_and_csv(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/api/v1/reports/coverage"]["get"]
    content = op["responses"]["200"]["content"]
    assert "example" in content["application/json"] and "example" in content["text/csv"]
    assert {p["name"] for p in op["parameters"]} >= {"from", "to", "county", "group_by", "interval"}
