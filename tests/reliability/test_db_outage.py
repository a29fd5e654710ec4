"""PostgreSQL stopped and started while requests are running.

A private PostgreSQL instance (initdb into a temporary folder, on a free port on 127.0.0.1; the
machine's shared cluster on 5432 is never touched) serves a live `samplan serve` process. Clients
create plans, read them and add needs while the database is stopped with `pg_ctl stop -m
immediate` (a crash, as far as PostgreSQL can tell) and started again. During the outage every
request must fail fast with 503 problem+json and Retry-After; after the database is back requests
must succeed again within seconds without restarting the service; no plan may be half-written
and every acknowledged plan must be there.

Counts: SAMPLAN_FAULT_CLIENTS concurrent clients (8), SAMPLAN_FAULT_ROUNDS outages (1),
SAMPLAN_FAULT_OUTAGE_SECONDS each outage lasts (3).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.cli import migrate
from app.config import Settings
from app.db import SYSTEM, Database, make_engine
from app.services.demo import load_demo
from tests.conftest import APP_ROLE
from tests.reliability.live import (
    Outcome,
    Recorder,
    Served,
    Tokens,
    env_float,
    env_int,
    free_port,
    half_written_plans,
    percentile,
    plan_body,
    register_client,
    report,
    sleep_until,
)

pytestmark = [pytest.mark.postgresql_only, pytest.mark.slow]

FAIL_FAST_SECONDS = 5.0  # a request during the outage must be answered within this
RECOVERY_SECONDS = 10.0  # requests must succeed again within this after the database is back


@dataclass
class PrivatePostgres:
    """A PostgreSQL instance of the test's own, run as the `postgres` OS user (initdb refuses root)."""

    bindir: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - fixed binaries from the PostgreSQL install
            ["runuser", "-u", "postgres", "--", *args],  # noqa: S607
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )

    def initdb(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
            "--no-sync", "--no-instructions",
        )  # fmt: skip

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root}"
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "postgres.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop_immediately(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgresql+asyncpg://{user}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        path = self.root / "postgres.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@dataclass
class _Outage:
    stopping: float  # `pg_ctl stop -m immediate` called
    down: float  # ... and returned: the database is gone
    starting: float  # `pg_ctl start` called
    up: float  # ... and returned: the database accepts connections


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        pytest.fail("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    try:
        postgres = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("no `postgres` OS user to run a private PostgreSQL instance as")
    root = Path(tempfile.mkdtemp(prefix="samplan-pg-"))
    os.chown(root, postgres.pw_uid, postgres.pw_gid)
    pg = PrivatePostgres(Path(candidates[-1]).parent, root, free_port())
    try:
        pg.initdb()
        pg.start()
        yield pg
    finally:
        if pg.running():
            with contextlib.suppress(subprocess.CalledProcessError):
                pg.stop_immediately()
        shutil.rmtree(root, ignore_errors=True)


async def _prepare(pg: PrivatePostgres, settings: Settings) -> None:
    import asyncpg

    conn = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="postgres", database="postgres")
    try:
        await conn.execute("CREATE DATABASE samplan")
    finally:
        await conn.close()
    await asyncio.to_thread(migrate, settings)
    conn = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="postgres", database="samplan")
    try:
        await conn.execute(f"ALTER ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
    finally:
        await conn.close()
    db = Database(settings, engine=make_engine(settings.migration_database_url, settings))
    try:
        async with db.session(SYSTEM) as session:
            await load_demo(session)
            await session.commit()
    finally:
        await db.dispose()


async def _acked_plans_present(owner_url: str, acked: set[uuid.UUID]) -> set[uuid.UUID]:
    engine = create_async_engine(owner_url)
    try:
        async with engine.connect() as conn:
            stored = {uuid.UUID(str(r.id)) for r in await conn.execute(text("SELECT id FROM plan"))}
    finally:
        await engine.dispose()
    return acked & stored


async def test_requests_fail_fast_during_a_database_outage_and_recover_after(
    private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    clients = env_int("SAMPLAN_FAULT_CLIENTS", 8)
    rounds = env_int("SAMPLAN_FAULT_ROUNDS", 1)
    outage_seconds = env_float("SAMPLAN_FAULT_OUTAGE_SECONDS", 3.0)

    app_url, owner_url = private_pg.url("samplan", APP_ROLE), private_pg.url("samplan")
    data_dir = tmp_path / "data"
    settings = Settings(
        env="dev", data_dir=data_dir, database_url=app_url, migration_database_url=owner_url,
        db_app_role=APP_ROLE,
    )  # fmt: skip
    await _prepare(private_pg, settings)
    served = Served(
        tmp_path,
        {
            "SAMPLAN_ENV": "dev",
            "SAMPLAN_DATA_DIR": str(data_dir),
            "SAMPLAN_DATABASE_URL": app_url,
            "SAMPLAN_MIGRATION_DATABASE_URL": owner_url,
            "SAMPLAN_DB_APP_ROLE": APP_ROLE,
            "SAMPLAN_RATE_LIMIT_ENABLED": "false",  # one organisation's many requests, on purpose
            "SAMPLAN_LOG_LEVEL": "WARNING",
        },
    )
    tokens = Tokens(settings)
    recorder = Recorder()
    ready_probes = Recorder()
    acked: set[uuid.UUID] = set()
    outages: list[_Outage] = []

    served.start()
    try:
        served.wait_healthy()
        async with httpx.AsyncClient(base_url=served.base_url, timeout=3 * FAIL_FAST_SECONDS) as http:
            client_id = await register_client(http, tokens(subject="registrar"))
            stop = asyncio.Event()

            async def worker(i: int) -> None:
                headers = tokens(subject=f"worker-{i}")
                mine: list[str] = []
                n = 0
                while not stop.is_set():
                    n += 1
                    step = n % 3
                    if step == 1 or not mine:
                        _, r = await recorder.call(
                            "create",
                            lambda n=n: http.post(
                                "/api/v1/plans", json=plan_body(client_id, f"w{i} {n}"), headers=headers
                            ),
                        )
                        if r is not None and r.status_code == 201:
                            mine.append(r.json()["id"])
                            acked.add(uuid.UUID(mine[-1]))
                    elif step == 2:
                        await recorder.call(
                            "read", lambda: http.get(f"/api/v1/plans/{mine[-1]}", headers=headers)
                        )
                    else:
                        await recorder.call(
                            "need",
                            lambda n=n: http.post(
                                f"/api/v1/plans/{mine[-1]}/needs",
                                json={"description": f"behov {n}"},
                                headers=headers,
                            ),
                        )
                    await asyncio.sleep(0.01)

            async def prober() -> None:
                while not stop.is_set():
                    await ready_probes.call("ready", lambda: http.get("/ready"))
                    await asyncio.sleep(0.1)

            async def faults() -> None:
                await asyncio.sleep(1.5)  # load is running
                for _ in range(rounds):
                    stopping = time.monotonic()
                    await asyncio.to_thread(private_pg.stop_immediately)
                    down = time.monotonic()
                    await sleep_until(down + outage_seconds)
                    starting = time.monotonic()
                    await asyncio.to_thread(private_pg.start)
                    up = time.monotonic()
                    outages.append(_Outage(stopping, down, starting, up))
                    # Long enough to see recovery and then a stretch of steady success.
                    await sleep_until(up + RECOVERY_SECONDS / 2 + 2.0)
                stop.set()

            tasks = [asyncio.create_task(worker(i)) for i in range(clients)]
            tasks += [asyncio.create_task(prober()), asyncio.create_task(faults())]
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=60 + rounds * (outage_seconds + 20))

            # The service was never restarted: the same process answers.
            assert served.process is not None and served.process.poll() is None
            assert served.starts == 1
            assert (await http.get("/ready")).status_code == 200
    finally:
        served.stop()

    outcomes = recorder.outcomes
    # Never a 500, never a hang, never a dropped connection: success or a 503.
    unexpected = [o for o in outcomes if not o.ok and o.status != 503]
    assert not unexpected, "\n".join([*map(repr, unexpected[:10]), "--- service log:", served.log(8000)])
    assert max(o.seconds for o in outcomes) < FAIL_FAST_SECONDS, served.log()
    # Every outage answer was a handled 503: no request error escaped to the server (which would
    # log it and drop the client's keep-alive connection).
    log = served.log_path.read_text(errors="replace")
    assert "Exception in ASGI application" not in log and "unhandled" not in log, served.log(8000)

    during: list[Outcome] = []
    recoveries: list[float] = []
    next_stops = [o.stopping for o in outages[1:]] + [float("inf")]
    for outage, next_stop in zip(outages, next_stops, strict=True):
        down, up = outage.down, outage.up
        # Wholly while the database was down (its start not yet asked for).
        inside = [o for o in outcomes if o.started >= down and o.ended <= outage.starting]
        assert inside, "no requests ran during the outage"
        assert all(o.status == 503 for o in inside), [o for o in inside if o.status != 503][:5]
        during += inside
        first_ok = min((o.ended for o in outcomes if o.ok and o.started >= up), default=None)
        assert first_ok is not None, "nothing succeeded after the database came back"
        recoveries.append(first_ok - up)
        assert first_ok - up < RECOVERY_SECONDS
        # After the first success, everything succeeds (until the next outage, if any).
        later = [o for o in outcomes if o.started >= first_ok and o.ended < next_stop]
        failed_later = [f"+{o.started - up:.2f}s {o.kind} {o.status} {o.detail}" for o in later if not o.ok]
        assert later and not failed_later, "\n".join(
            [f"first success +{first_ok - up:.2f}s after restart", *failed_later[:10], served.log(3000)]
        )
    for o in during:
        assert o.content_type.startswith("application/problem+json"), o
        assert o.retry_after is not None and o.retry_after.isdigit() and int(o.retry_after) >= 1, o
    # /ready told the truth during the outage and came back by itself.
    ready_during = [
        p for p in ready_probes.outcomes for w in outages if p.started >= w.down and p.ended <= w.starting
    ]
    assert ready_during and all(p.status == 503 for p in ready_during)

    # All or nothing: no plan without its version 1 and participants, no gap in any history;
    # every plan the service acknowledged is stored.
    assert await half_written_plans(owner_url) == {}
    present = await _acked_plans_present(owner_url, acked)
    assert present == acked

    latencies = [o.seconds for o in during]
    report(
        "db-outage/postgresql",
        {
            "clients": clients,
            "outages": rounds,
            "outage_s": outage_seconds,
            "requests": len(outcomes),
            "ok": sum(1 for o in outcomes if o.ok),
            "503": sum(1 for o in outcomes if o.status == 503),
            "other": len(unexpected),
            "requests_inside_outage": len(during),
            "503_latency_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "503_latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "503_latency_max_ms": round(max(latencies) * 1000, 1),
            "pg_start_s": "/".join(f"{o.up - o.starting:.2f}" for o in outages),
            "recovery_s": "/".join(f"{r:.2f}" for r in recoveries),
            "plans_acknowledged": len(acked),
            "plans_present": len(present),
        },
    )
