"""The service killed with SIGKILL in the middle of writes: after a restart every acknowledged
write is there, no plan is half-written, and every audit chain still verifies.

Counts come from the environment (small defaults for CI; docs/reliability.md has the long run):
SAMPLAN_FAULT_ROUNDS kills, SAMPLAN_FAULT_WRITERS concurrent writers, SAMPLAN_FAULT_WRITES
acknowledged writes per round before the kill.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import APP_ROLE, TestDatabase
from tests.reliability.live import (
    Recorder,
    Served,
    Tokens,
    env_int,
    half_written_plans,
    plan_body,
    register_client,
    report,
    run_audit_verify,
)

pytestmark = pytest.mark.slow


def _service_env(db: TestDatabase) -> dict[str, str]:
    return {
        "SAMPLAN_ENV": "dev",
        "SAMPLAN_DATA_DIR": str(db.settings().data_dir),
        "SAMPLAN_DATABASE_URL": db.app_url,
        "SAMPLAN_MIGRATION_DATABASE_URL": db.owner_url,
        "SAMPLAN_DB_APP_ROLE": APP_ROLE,
        # Writers here are many requests from one organisation on purpose; the limiter has its own tests.
        "SAMPLAN_RATE_LIMIT_ENABLED": "false",
        "SAMPLAN_LOG_LEVEL": "WARNING",
    }


async def _stored(owner_url: str) -> tuple[dict[uuid.UUID, str], dict[uuid.UUID, set[str]]]:
    """Plan titles and need descriptions as they are in the database."""
    engine = create_async_engine(owner_url)
    try:
        async with engine.connect() as conn:
            plans = {
                uuid.UUID(str(r.id)): r.title for r in await conn.execute(text("SELECT id, title FROM plan"))
            }
            needs: dict[uuid.UUID, set[str]] = {}
            for r in await conn.execute(text("SELECT plan_id, description FROM plan_need")):
                needs.setdefault(uuid.UUID(str(r.plan_id)), set()).add(r.description)
    finally:
        await engine.dispose()
    return plans, needs


@dataclass
class _Round:
    number: int
    client_id: str
    acked: int = 0
    enough: asyncio.Event = field(default_factory=asyncio.Event)
    killed: asyncio.Event = field(default_factory=asyncio.Event)


async def test_acknowledged_writes_survive_sigkill(fresh_database: TestDatabase, tmp_path: Path) -> None:
    rounds = env_int("SAMPLAN_FAULT_ROUNDS", 2)
    writers = env_int("SAMPLAN_FAULT_WRITERS", 12)
    kill_after = env_int("SAMPLAN_FAULT_WRITES", 40)

    env = _service_env(fresh_database)
    served = Served(tmp_path, env)
    tokens = Tokens(fresh_database.settings())
    recorder = Recorder()
    acked_plans: dict[uuid.UUID, str] = {}
    acked_needs: dict[uuid.UUID, set[str]] = {}
    restart_seconds: list[float] = []
    in_flight_lost = 0
    refused = 0

    async def writer(http: httpx.AsyncClient, i: int, rnd: _Round) -> None:
        """Create plans and add needs to them until the service is gone; remember every 2xx."""
        headers = tokens(subject=f"writer-{i}")
        mine: list[uuid.UUID] = []
        n = 0
        while not rnd.killed.is_set():
            n += 1
            if not mine or n % 3 == 0:
                title = f"r{rnd.number} w{i} plan {n}"
                outcome, response = await recorder.call(
                    "create",
                    lambda title=title: http.post(
                        "/api/v1/plans", json=plan_body(rnd.client_id, title), headers=headers
                    ),
                )
                if response is not None and response.status_code == 201:
                    plan_id = uuid.UUID(response.json()["id"])
                    acked_plans[plan_id] = title
                    mine.append(plan_id)
            else:
                plan_id = mine[n % len(mine)]
                description = f"r{rnd.number} w{i} need {n}"
                outcome, response = await recorder.call(
                    "need",
                    lambda plan_id=plan_id, description=description: http.post(
                        f"/api/v1/plans/{plan_id}/needs", json={"description": description}, headers=headers
                    ),
                )
                if response is not None and response.status_code == 201:
                    acked_needs.setdefault(plan_id, set()).add(description)
            if outcome.status is None:
                return  # the service is gone
            if outcome.status == 503:
                # Overload (more writers than database connections, each waiting longer than the
                # pool timeout): refused, not acknowledged, and said so properly.
                assert outcome.content_type.startswith("application/problem+json"), outcome
                assert outcome.retry_after is not None, outcome
                continue
            assert outcome.ok, (outcome, served.log())
            rnd.acked += 1
            if rnd.acked >= kill_after:
                rnd.enough.set()

    async def killer(rnd: _Round) -> None:
        await rnd.enough.wait()
        served.kill()  # mid-way: the writers have requests in flight right now
        rnd.killed.set()

    served.start()
    served.wait_healthy()
    try:
        for round_no in range(rounds):
            async with httpx.AsyncClient(base_url=served.base_url, timeout=15.0) as http:
                rnd = _Round(round_no, await register_client(http, tokens(subject="registrar")))
                tasks = [asyncio.create_task(writer(http, i, rnd)) for i in range(writers)]
                await asyncio.wait_for(asyncio.gather(killer(rnd), *tasks), timeout=120)

            in_flight_lost += sum(1 for o in recorder.outcomes if o.status is None)
            refused += sum(1 for o in recorder.outcomes if o.status == 503)
            recorder.outcomes = []

            started = time.monotonic()
            served.start()
            served.wait_healthy()
            restart_seconds.append(time.monotonic() - started)

            plans, needs = await _stored(fresh_database.owner_url)
            missing_plans = [p for p in acked_plans if p not in plans]
            assert not missing_plans, f"acknowledged plans lost after SIGKILL: {missing_plans}"
            assert all(plans[p] == title for p, title in acked_plans.items())
            missing_needs = {
                p: sorted(d - needs.get(p, set())) for p, d in acked_needs.items() if d - needs.get(p, set())
            }
            assert not missing_needs, f"acknowledged needs lost after SIGKILL: {missing_needs}"
            assert await half_written_plans(fresh_database.owner_url) == {}

        # After the last restart the service works as before.
        async with httpx.AsyncClient(base_url=served.base_url, timeout=15.0) as http:
            some_plan = next(iter(acked_plans))
            r = await http.get(f"/api/v1/plans/{some_plan}", headers=tokens(subject="reader"))
            assert r.status_code == 200, r.text
            versions = await http.get(f"/api/v1/plans/{some_plan}/versions", headers=tokens(subject="reader"))
            assert [v["version"] for v in versions.json()] == list(range(1, r.json()["version"] + 1))
    finally:
        served.stop()

    verify = run_audit_verify(env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "0 broken" in verify.stdout

    acked = len(acked_plans) + sum(len(d) for d in acked_needs.values())
    plans, needs = await _stored(fresh_database.owner_url)
    present = sum(1 for p in acked_plans if p in plans) + sum(
        len(d & needs.get(p, set())) for p, d in acked_needs.items()
    )
    report(
        f"sigkill/{fresh_database.backend}",
        {
            "rounds": rounds,
            "writers": writers,
            "writes_acknowledged": acked,
            "acknowledged_present": present,
            "refused_503_under_load": refused,
            "requests_without_answer_at_kill": in_flight_lost,
            "restart_to_healthy_s": "/".join(f"{s:.1f}" for s in restart_seconds),
            "audit_verify": verify.stdout.strip().splitlines()[-1],
        },
    )
    assert present == acked
