"""No lost updates: fifty concurrent writers on one plan, all with the same If-Match. Each round
exactly one wins (200 and the next version), the others get 412, nobody gets a 500, and the
version history has no gaps. Real commits on a database of the test's own (both backends),
through the app in-process and through a real socket to a `samplan serve` process.

SAMPLAN_FAULT_WRITERS (default 50) writers, SAMPLAN_FAULT_ROUNDS (default 3) rounds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.main import create_app
from app.services.demo import DEMO_ORGS
from tests.conftest import APP_ROLE, TestDatabase
from tests.plan_helpers import PlanDriver
from tests.reliability.live import Served, Tokens, env_int, half_written_plans, percentile, report


@dataclass
class _Ref:
    id: str


async def _org_refs(owner_url: str) -> dict[str, _Ref]:
    engine = create_async_engine(owner_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, org_number FROM organisation"))).all()
    finally:
        await engine.dispose()
    by_number = {r.org_number: str(uuid.UUID(str(r.id))) for r in rows}
    return {o.key: _Ref(by_number[o.org_number]) for o in DEMO_ORGS}


@pytest.fixture(params=["in-process", "socket"])
async def drv(
    request: pytest.FixtureRequest, fresh_database: TestDatabase, tmp_path: Path
) -> AsyncIterator[PlanDriver]:
    """The API over httpx: in-process (ASGI), or over a real socket to a `samplan serve` process."""
    orgs = await _org_refs(fresh_database.owner_url)
    tokens = Tokens(fresh_database.settings())

    def auth(org_key: str, *roles: str, subject: str | None = None) -> dict[str, str]:
        return tokens(org_key, roles[0], subject or f"live-{org_key}-{roles[0]}")

    if request.param == "in-process":
        # The service's default pool (10 + 10 overflow), not the suite's smaller one: fifty
        # writers at once is the point of the test.
        application = create_app(fresh_database.settings(db_pool_size=10))
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://samplan.test", timeout=60
            ) as c:
                yield PlanDriver(c, auth, orgs)
        finally:
            await application.state.http.aclose()
            await application.state.db.dispose()
        return
    served = Served(
        tmp_path,
        {
            "SAMPLAN_ENV": "dev",
            "SAMPLAN_DATA_DIR": str(fresh_database.settings().data_dir),
            "SAMPLAN_DATABASE_URL": fresh_database.app_url,
            "SAMPLAN_MIGRATION_DATABASE_URL": fresh_database.owner_url,
            "SAMPLAN_DB_APP_ROLE": APP_ROLE,
            "SAMPLAN_LOG_LEVEL": "WARNING",
        },
    )
    served.start()
    try:
        served.wait_healthy()
        async with httpx.AsyncClient(base_url=served.base_url, timeout=60) as c:
            yield PlanDriver(c, auth, orgs)
    finally:
        served.stop()


async def test_fifty_writers_one_version_exactly_one_wins_each_round(
    drv: PlanDriver, fresh_database: TestDatabase, request: pytest.FixtureRequest
) -> None:
    writers = env_int("SAMPLAN_FAULT_WRITERS", 50)
    rounds = env_int("SAMPLAN_FAULT_ROUNDS", 3)
    plan = await drv.ready_plan()  # a kommun and a region both take part
    pid, start_version = plan["id"], plan["version"]
    # Each writer is a different person, half at the kommun and half at the region.
    headers = [
        drv.auth("sthlm-stad" if i % 2 else "region-sthlm", "handlaggare", subject=f"writer-{i}")
        for i in range(writers)
    ]
    latencies: list[float] = []
    version = start_version
    winners: list[str] = []
    all_statuses: Counter[int] = Counter()

    async def write(i: int, version: int, round_no: int) -> tuple[httpx.Response, float]:
        started = time.perf_counter()
        response = await drv.client.patch(
            f"/api/v1/plans/{pid}",
            json={"title": f"Runda {round_no} skribent {i}"},
            headers={**headers[i], "If-Match": f'"{version}"'},
        )
        return response, time.perf_counter() - started

    for round_no in range(rounds):
        results = await asyncio.gather(*(write(i, version, round_no) for i in range(writers)))
        latencies += [seconds for _, seconds in results]
        statuses = Counter(r.status_code for r, _ in results)
        all_statuses.update(statuses)
        assert statuses == {200: 1, 412: writers - 1}, (
            statuses,
            [r.text for r, _ in results if r.status_code not in (200, 412)][:3],
        )
        winner = next(r for r, _ in results if r.status_code == 200)
        assert winner.headers["etag"] == f'"{version + 1}"'
        for loser, _ in results:
            if loser.status_code == 412:
                assert loser.headers["content-type"].startswith("application/problem+json")
        winners.append(winner.json()["title"])
        version += 1
        current = (await drv.get(pid)).json()
        assert current["version"] == version
        assert current["title"] == winners[-1]  # the winner's change is the one that stuck

    history = (await drv.client.get(f"/api/v1/plans/{pid}/versions", headers=drv.h("sthlm-stad"))).json()
    assert [v["version"] for v in history] == list(range(1, version + 1))
    assert await half_written_plans(fresh_database.owner_url) == {}
    report(
        f"writers/{fresh_database.backend}/{request.node.callspec.params['drv']}",
        {
            "writers": writers,
            "rounds": rounds,
            "requests": sum(all_statuses.values()),
            "statuses": dict(sorted(all_statuses.items())),
            "p50_ms": round(percentile(latencies, 0.5) * 1000),
            "p99_ms": round(percentile(latencies, 0.99) * 1000),
            "max_ms": round(max(latencies) * 1000),
        },
    )
