"""Reports read through their own session, which can point at a read replica (docs/scaling.md).

The replica is stood in for by a second engine on the same database whose every transaction is
read-only, as on a hot standby: a write through it fails, so the test shows that the report's
aggregates went through the read engine and its audit event through the primary."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from app.auth.dev_issuer import DevIssuer
from app.db import SYSTEM, Database
from app.main import create_app
from app.services.demo import DEMO_ORGS

pytestmark = pytest.mark.postgresql_only


def _readonly_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET default_transaction_read_only = on")
    cursor.close()
    dbapi_connection.commit()  # the driver opened a transaction; a rollback would undo the SET


async def test_coverage_report_reads_from_the_replica_and_audits_on_the_primary(fresh_database) -> None:
    settings = fresh_database.settings(read_database_url=fresh_database.app_url)
    database = Database(settings)
    assert database.read_engine is not database.engine
    event.listen(database.read_engine.sync_engine, "connect", _readonly_on_connect)
    statements: dict[str, list[str]] = {"primary": [], "replica": []}

    def _recorder(name: str):  # type: ignore[no-untyped-def]
        def before(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
            statements[name].append(statement)

        return before

    event.listen(database.engine.sync_engine, "before_cursor_execute", _recorder("primary"))
    event.listen(database.read_engine.sync_engine, "before_cursor_execute", _recorder("replica"))
    app = create_app(settings, database=database)
    region = next(o for o in DEMO_ORGS if o.key == "region-sthlm")
    token = DevIssuer(settings).mint(
        org_number=region.org_number, roles=["rss"], subject="replica-rss", county="01"
    )
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://samplan.test"
            ) as client,
        ):
            r = await client.get(
                "/api/v1/reports/coverage",
                params={"county": "01", "from": "2025-01-01", "to": "2025-12-31", "group_by": "kommun"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["scope"]["county"] == "01"

        # The aggregates went through the replica, and nothing was written there.
        replica = " ".join(statements["replica"]).lower()
        assert "episode" in replica
        assert not any(
            s.lstrip().lower().startswith(("insert", "update", "delete")) for s in statements["replica"]
        )
        # The audit event was written through the primary and committed.
        assert any("insert into audit_event" in s.lower() for s in statements["primary"])
        async with database.session(SYSTEM) as session:
            count = await session.scalar(
                text("SELECT count(*) FROM audit_event WHERE action = 'report.coverage.read'")
            )
        assert count == 1
        # The stand-in really is read-only: the test would prove nothing otherwise.
        async with database.read_session(SYSTEM) as session:
            assert await session.scalar(text("SHOW transaction_read_only")) == "on"
    finally:
        await app.state.http.aclose()
        await database.dispose()
