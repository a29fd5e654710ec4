"""Concurrent co-authoring on a real database with real commits: no lost updates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.main import create_app
from app.services.demo import DEMO_ORGS
from tests.conftest import TestDatabase
from tests.plan_helpers import PlanDriver


@pytest.fixture
async def live_app(fresh_database: TestDatabase) -> AsyncIterator[FastAPI]:
    application = create_app(fresh_database.settings())
    yield application
    await application.state.http.aclose()
    await application.state.db.dispose()


@pytest.fixture
async def live(live_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=live_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://samplan.test", timeout=30) as c:
        yield c


@pytest.fixture
async def live_drv(live: httpx.AsyncClient, live_app: FastAPI) -> PlanDriver:
    from dataclasses import dataclass

    @dataclass
    class Ref:
        id: str

    async with live_app.state.db.session() as s:  # no tenant: organisation is a public register
        rows = (await s.execute(text("SELECT id, org_number FROM organisation"))).all()
    by_number = {r.org_number: str(r.id) for r in rows}
    orgs = {o.key: Ref(by_number[o.org_number]) for o in DEMO_ORGS}
    issuer = live_app.state.dev_issuer

    def auth(org_key: str, *roles: str, **kw: str) -> dict[str, str]:
        number = next(o.org_number for o in DEMO_ORGS if o.key == org_key)
        token = issuer.mint(org_number=number, roles=list(roles), subject=f"live-{org_key}-{roles[0]}", **kw)
        return {"Authorization": f"Bearer {token}"}

    return PlanDriver(live, auth, orgs)


async def test_two_writers_on_the_same_version_one_wins_one_gets_412(live_drv: PlanDriver) -> None:
    plan = await live_drv.ready_plan()
    pid, version = plan["id"], plan["version"]
    if_match = {"If-Match": f'"{version}"'}
    first, second = await asyncio.gather(
        live_drv.patch(pid, "", {"title": "Titel A"}, **if_match),
        live_drv.patch(pid, "", {"title": "Titel B"}, org="region-sthlm", **if_match),
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 412], (first.text, second.text)
    winner = first if first.status_code == 200 else second
    after = (await live_drv.get(pid)).json()
    assert after["version"] == version + 1
    assert after["title"] == winner.json()["title"]
    history = (
        await live_drv.client.get(f"/api/v1/plans/{pid}/versions", headers=live_drv.h("sthlm-stad"))
    ).json()
    assert [v["version"] for v in history] == list(range(1, version + 2))


async def test_concurrent_changes_without_if_match_are_all_kept_in_order(live_drv: PlanDriver) -> None:
    plan = await live_drv.ready_plan()
    pid, version = plan["id"], plan["version"]
    n = 8
    responses = await asyncio.gather(
        *(
            live_drv.post(
                pid, "/needs", {"description": f"Behov {i}"}, org="sthlm-stad" if i % 2 else "region-sthlm"
            )
            for i in range(n)
        )
    )
    assert [r.status_code for r in responses] == [201] * n, [
        r.text for r in responses if r.status_code != 201
    ]
    after = (await live_drv.get(pid)).json()
    assert after["version"] == version + n
    assert sorted(need["description"] for need in after["needs"]) == sorted(f"Behov {i}" for i in range(n))
    history = (
        await live_drv.client.get(f"/api/v1/plans/{pid}/versions", headers=live_drv.h("sthlm-stad"))
    ).json()
    assert [v["version"] for v in history] == list(range(1, version + n + 1))
    # Each response's ETag names a distinct version: no two writers were given the same one.
    assert len({r.headers["etag"] for r in responses}) == n


async def test_a_failed_request_leaves_no_half_plan(live_drv: PlanDriver, live_app: FastAPI) -> None:
    plan = await live_drv.ready_plan()
    pid = plan["id"]
    # A participant whose unit belongs to another organisation is refused after the participant
    # row was already being built: nothing of it may remain.
    async with live_app.state.db.session() as s:
        from app.db import SYSTEM, bind_tenant

        await bind_tenant(s, SYSTEM)
        unit_of_sis = (
            await s.execute(
                text(
                    "SELECT u.id FROM unit u JOIN organisation o ON o.id = u.organisation_id WHERE o.org_number = '2021005489' LIMIT 1"
                )
            )
        ).scalar_one()
        before = (await s.execute(text("SELECT count(*) FROM plan_participant"))).scalar_one()
    r = await live_drv.post(
        pid,
        "/participants",
        {"organisation_id": live_drv.orgs["huddinge"].id, "kind": "huvudman", "unit_id": str(unit_of_sis)},
    )
    assert r.status_code == 422, r.text
    async with live_app.state.db.session() as s:
        from app.db import SYSTEM, bind_tenant

        await bind_tenant(s, SYSTEM)
        after = (await s.execute(text("SELECT count(*) FROM plan_participant"))).scalar_one()
    assert after == before
    assert (await live_drv.get(pid)).json()["version"] == plan["version"]
