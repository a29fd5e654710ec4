"""Samplan behind PgBouncer in transaction mode (docs/scaling.md).

A transaction-mode pooler hands each transaction to whichever server connection is free. Two things
must then hold: the tenant context (set with set_config(..., true), transaction-local) never leaks
from one caller's transaction to another's, and no prepared statement is expected to survive its
transaction (SAMPLAN_DB_TRANSACTION_POOLER=true). These tests run a real PgBouncer (Debian's) with
fewer server connections than client connections, so that server connections are shared.
Under CI=true a missing PgBouncer fails the run instead of skipping it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db import Database, TenantContext
from app.main import create_app
from tests.conftest import APP_ROLE, PG_HOST, PG_PORT, TestDatabase
from tests.reliability.live import free_port

pytestmark = pytest.mark.postgresql_only

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def pgbouncer(fresh_database: TestDatabase) -> Iterator[tuple[int, str]]:
    """A PgBouncer in transaction mode with two server connections in front of the test's own
    database: (port, database name)."""
    with _pgbouncer(fresh_database, server_connections=2) as where:
        yield where


@contextlib.contextmanager
def _pgbouncer(fresh_database: TestDatabase, *, server_connections: int) -> Iterator[tuple[int, str]]:
    if not Path(PGBOUNCER).exists():
        if _under_ci():
            pytest.fail("PgBouncer is not installed (scripts/test.sh installs Debian's pgbouncer)")
        pytest.skip("PgBouncer is not installed; scripts/test.sh installs it")
    database = fresh_database.app_url.rsplit("/", 1)[1]
    port = free_port()
    # Its own folder under /tmp: PgBouncer drops root for the postgres user, who cannot enter
    # pytest's private temporary folders.
    folder = Path(tempfile.mkdtemp(prefix="samplan-pgbouncer-"))
    folder.chmod(0o755)
    (folder / "users.txt").write_text(f'"{APP_ROLE}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
samplan = host={PG_HOST} port={PG_PORT} dbname={database}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "users.txt"}
pool_mode = transaction
default_pool_size = {server_connections}
max_client_conn = 200
ignore_startup_parameters = extra_float_digits,statement_timeout
logfile = {folder / "pgbouncer.log"}
"""
    )
    command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        shutil.chown(folder, "postgres")
        for f in folder.iterdir():
            shutil.chown(f, "postgres")
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "PgBouncer did not start listening"
            time.sleep(0.05)
    try:
        yield port, "samplan"
    finally:
        process.kill()  # its SIGTERM waits for clients that the broken-on-purpose test may leave
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _through(pgbouncer: tuple[int, str], fresh_database: TestDatabase, *, pooler: bool) -> Database:
    port, name = pgbouncer
    settings = fresh_database.settings(
        database_url=f"postgresql+asyncpg://{APP_ROLE}@127.0.0.1:{port}/{name}",
        db_transaction_pooler=pooler,
        db_pool_size=10,
    )
    return Database(settings)


async def _organisations(fresh_database: TestDatabase) -> list[uuid.UUID]:
    owner = Database(fresh_database.settings(database_url=fresh_database.owner_url))
    try:
        async with owner.session() as session:
            rows = (await session.execute(text("SELECT id FROM organisation ORDER BY id"))).all()
        return [uuid.UUID(str(r.id)) for r in rows]
    finally:
        await owner.dispose()


async def _seen_by(db: Database, org: uuid.UUID) -> tuple[uuid.UUID, str, int]:
    """In one transaction as `org`: the tenant context the server sees, and how many units RLS lets
    it read (units are organisation-owned rows)."""
    async with db.session(TenantContext.org(org)) as session:
        seen = await session.scalar(text("SELECT current_setting('samplan.org_id', true)"))
        units = await session.scalar(text("SELECT count(*) FROM unit"))
        await asyncio.sleep(0)  # let other transactions interleave on the shared server connections
        again = await session.scalar(text("SELECT current_setting('samplan.org_id', true)"))
        assert seen == again
        await session.commit()
    return org, str(seen), int(units or 0)


async def test_tenant_context_never_leaks_between_transactions_behind_the_pooler(
    pgbouncer, fresh_database
) -> None:
    orgs = await _organisations(fresh_database)
    db = _through(pgbouncer, fresh_database, pooler=True)
    owner = Database(fresh_database.settings(database_url=fresh_database.owner_url))
    try:
        async with owner.session() as session:
            expected = {
                uuid.UUID(str(r.organisation_id)): int(r.n)
                for r in (
                    await session.execute(text("SELECT organisation_id, count(*) AS n FROM unit GROUP BY 1"))
                ).all()
            }
        calls = [orgs[i % len(orgs)] for i in range(300)]
        results = await asyncio.gather(*(_seen_by(db, org) for org in calls))
        for org, seen, units in results:
            assert seen == str(org)
            assert units == expected.get(org, 0)
        # Server connections really were shared: fewer than the client connections used.
        async with owner.session() as session:
            backends = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = :role AND datname = current_database()"
                ),
                {"role": APP_ROLE},
            )
        assert backends is not None and backends <= 2
    finally:
        await db.dispose()
        await owner.dispose()


async def test_without_the_pooler_setting_prepared_statements_go_missing(fresh_database) -> None:
    """Why the setting exists. asyncpg prepares each statement once per client connection and
    reuses it by name. Behind a transaction-mode pooler the client's next transaction may run on
    another server connection, where that name was never prepared. Made certain here: the client
    prepares a statement, a second client holds that server connection in an open transaction,
    and the first client's next transaction has to take the other one. With the setting, the same
    steps work."""
    query = text("SELECT count(*) FROM organisation")

    async def on_another_server(db: Database) -> None:
        async with db.engine.connect() as first, db.engine.connect() as second:
            assert await first.scalar(query) is not None
            await first.commit()
            assert await second.scalar(text("SELECT 1")) == 1  # holds a server until it commits
            try:
                assert await first.scalar(query) is not None
                await first.commit()
            finally:
                await second.commit()

    with _pgbouncer(fresh_database, server_connections=2) as where:
        broken = _through(where, fresh_database, pooler=False)
        try:
            with pytest.raises(DBAPIError, match="prepared statement"):
                await on_another_server(broken)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(broken.dispose(), 10)
        working = _through(where, fresh_database, pooler=True)
        try:
            await on_another_server(working)
        finally:
            await working.dispose()


async def test_the_service_answers_through_the_pooler(pgbouncer, fresh_database) -> None:
    settings = _through(pgbouncer, fresh_database, pooler=True).settings
    app = create_app(settings)
    from app.auth.dev_issuer import DevIssuer
    from app.services.demo import DEMO_ORGS

    sthlm = next(o for o in DEMO_ORGS if o.key == "sthlm-stad")
    headers = {
        "Authorization": "Bearer "
        + DevIssuer(settings).mint(org_number=sthlm.org_number, roles=["handlaggare"], subject="pooler-test")
    }
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://samplan.test") as c,
        ):
            answers = await asyncio.gather(*(c.get("/api/v1/me", headers=headers) for _ in range(40)))
            assert all(a.status_code == 200 for a in answers), [
                a.text for a in answers if a.status_code != 200
            ]
            assert {a.json()["org_number"] for a in answers} == {sthlm.org_number}
    finally:
        await app.state.http.aclose()
        await app.state.db.dispose()
