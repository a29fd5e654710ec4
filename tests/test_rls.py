"""Row-level security on PostgreSQL: the service role sees an organisation's rows only inside that
organisation's transaction context, and the Python-side rule gives the same answers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from app.db import NOBODY, SYSTEM, TENANT_KEY, Database, TenantContext, bind_tenant, system_scope
from app.models.organisation import Unit
from app.services.demo import DEMO_ORGS
from tests.conftest import APP_ROLE, OrgRef

if TYPE_CHECKING:
    from tests.conftest import AuthFactory, TestDatabase

pytestmark = pytest.mark.postgresql_only

TENANT_TABLES = ("unit", "app_user", "trusted_issuer", "audit_event", "audit_chain_head")
_ID_COLUMN = {"audit_chain_head": "organisation_id"}  # its key is the organisation itself

A, B = "sthlm-stad", "huddinge"


async def set_context(conn: AsyncConnection, scope: str = "org", org: uuid.UUID | None = None) -> None:
    await conn.execute(
        text("SELECT set_config('samplan.scope', :scope, true), set_config('samplan.org_id', :org, true)"),
        {"scope": scope, "org": str(org) if org else ""},
    )


async def visible(conn: AsyncConnection, table: str) -> set[tuple[str, str]]:
    """(row key, organisation) of every row of `table` the current context lets through."""
    key = _ID_COLUMN.get(table, "id")
    rows = await conn.execute(text(f"SELECT {key}::text AS k, organisation_id::text AS o FROM {table}"))  # noqa: S608
    return {(r.k, r.o) for r in rows}


async def insert_rows(conn: AsyncConnection, org: uuid.UUID, tag: str) -> None:
    """One more row per tenant table for `org`, written in the current context."""
    params: dict[str, Any] = {"org": org, "tag": tag}
    await conn.execute(
        text("INSERT INTO unit (id, organisation_id, name, created_at) VALUES (gen_random_uuid(), :org, :tag, now())"),
        params,
    )
    await conn.execute(
        text(
            "INSERT INTO app_user (id, organisation_id, subject, name, roles, created_at) "
            "VALUES (gen_random_uuid(), :org, :tag, :tag, '[]', now())"
        ),
        params,
    )
    await conn.execute(
        text(
            "INSERT INTO trusted_issuer (id, organisation_id, issuer, audience, jwks_url, created_at) "
            "VALUES (gen_random_uuid(), :org, 'https://idp.example/' || :tag, 'samplan', "
            "'https://idp.example/jwks', now())"
        ),
        params,
    )
    await conn.execute(
        text(
            "INSERT INTO audit_event (id, organisation_id, seq, occurred_at, actor_subject, actor_roles, "
            "action, object_type, prev_hash, hash) "
            "VALUES (gen_random_uuid(), :org, 1, now(), :tag, 'handlaggare', 'plan.read', 'plan', "
            "repeat('0', 64), repeat('a', 64))"
        ),
        params,
    )
    await conn.execute(
        text("INSERT INTO audit_chain_head (organisation_id, last_seq, last_hash) VALUES (:org, 1, repeat('a', 64))"),
        params,
    )


@pytest.fixture
async def two_orgs(connection: AsyncConnection, orgs: dict[str, OrgRef]) -> tuple[uuid.UUID, uuid.UUID]:
    """Rows for A and B in every tenant table, inserted in system scope inside the test's
    transaction; the context is cleared afterwards."""
    a, b = orgs[A].id, orgs[B].id
    await set_context(connection, "system")
    await insert_rows(connection, a, "rls-a")
    await insert_rows(connection, b, "rls-b")
    await set_context(connection, "org", None)
    return a, b


# --- the role ---------------------------------------------------------------------------------


async def test_the_service_role_is_not_privileged(connection: AsyncConnection) -> None:
    assert await connection.scalar(text("SELECT current_user")) == APP_ROLE
    role = (
        await connection.execute(
            text("SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user")
        )
    ).one()
    assert (role.rolsuper, role.rolbypassrls, role.rolcreaterole, role.rolcreatedb) == (False, False, False, False)
    owners = {
        r.tablename: r.tableowner
        for r in await connection.execute(
            text("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")
        )
    }
    assert set(TENANT_TABLES) <= set(owners)
    assert APP_ROLE not in owners.values()
    rls = {
        r.relname: r.relrowsecurity
        for r in await connection.execute(
            text(
                "SELECT relname, relrowsecurity FROM pg_class "
                "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
            )
        )
    }
    assert all(rls[t] for t in TENANT_TABLES), rls
    # The service may not change the schema either.
    with pytest.raises(DBAPIError, match="must be owner"):
        async with connection.begin_nested():
            await connection.execute(text("ALTER TABLE unit DISABLE ROW LEVEL SECURITY"))


# --- what each context sees ------------------------------------------------------------------


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_each_context_sees_only_its_own_rows(
    connection: AsyncConnection, two_orgs: tuple[uuid.UUID, uuid.UUID], table: str
) -> None:
    a, b = two_orgs
    await set_context(connection, "system")
    everything = await visible(connection, table)
    of_a = {row for row in everything if row[1] == str(a)}
    of_b = {row for row in everything if row[1] == str(b)}
    assert of_a and of_b

    for scope, org in (("org", None), ("", None), ("org", uuid.uuid4()), ("admin", None), ("System", None)):
        await set_context(connection, scope, org)
        assert await visible(connection, table) == set(), (scope, org)
    await set_context(connection, "org", a)
    assert await visible(connection, table) == of_a
    await set_context(connection, "org", b)
    assert await visible(connection, table) == of_b


async def test_no_context_at_all_sees_nothing(
    fresh_database: TestDatabase, orgs: dict[str, OrgRef]
) -> None:
    """A connection on which set_config was never called, not even to clear it."""
    engine = create_async_engine(fresh_database.app_url)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT current_setting('samplan.org_id', true)")) is None
            for table in TENANT_TABLES:
                assert await visible(conn, table) == set(), table
            await set_context(conn, "org", orgs[A].id)
            assert await visible(conn, "unit")
    finally:
        await engine.dispose()


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_writes_outside_the_context_are_refused(
    connection: AsyncConnection, two_orgs: tuple[uuid.UUID, uuid.UUID], table: str
) -> None:
    a, b = two_orgs
    await set_context(connection, "org", a)
    # WITH CHECK: no new row for B under A's context.
    with pytest.raises(DBAPIError, match="row-level security"):
        async with connection.begin_nested():
            await insert_rows_one(connection, table, b)
    # USING: B's rows are out of reach for updates and deletes; they simply match nothing.
    if table != "audit_event":  # append-only: the service role has no UPDATE or DELETE at all
        key = _ID_COLUMN.get(table, "id")
        column = "last_seq" if table == "audit_chain_head" else "created_at"
        changed = await connection.execute(
            text(f"UPDATE {table} SET {column} = {column} WHERE organisation_id = :b"), {"b": b}  # noqa: S608
        )
        assert changed.rowcount == 0
        if table == "audit_chain_head":
            # A chain head is never deleted: the service role lacks the privilege altogether.
            with pytest.raises(DBAPIError, match="permission denied"):
                async with connection.begin_nested():
                    await connection.execute(
                        text("DELETE FROM audit_chain_head WHERE organisation_id = :b"), {"b": b}
                    )
        else:
            deleted = await connection.execute(
                text(f"DELETE FROM {table} WHERE organisation_id = :b AND {key} IS NOT NULL"), {"b": b}  # noqa: S608
            )
            assert deleted.rowcount == 0
        # WITH CHECK on update: A's row cannot be handed over to B.
        with pytest.raises(DBAPIError, match="row-level security"):
            async with connection.begin_nested():
                await connection.execute(
                    text(f"UPDATE {table} SET organisation_id = :b WHERE organisation_id = :a"),  # noqa: S608
                    {"a": a, "b": b},
                )
    await set_context(connection, "system")
    assert {o for _, o in await visible(connection, table)} >= {str(a), str(b)}


async def insert_rows_one(conn: AsyncConnection, table: str, org: uuid.UUID) -> None:
    statements = {
        "unit": "INSERT INTO unit (id, organisation_id, name, created_at) "
        "VALUES (gen_random_uuid(), :org, 'smuggled', now())",
        "app_user": "INSERT INTO app_user (id, organisation_id, subject, name, roles, created_at) "
        "VALUES (gen_random_uuid(), :org, 'smuggled', 'x', '[]', now())",
        "trusted_issuer": "INSERT INTO trusted_issuer (id, organisation_id, issuer, audience, jwks_url, created_at) "
        "VALUES (gen_random_uuid(), :org, 'https://evil.example', 'samplan', 'https://evil.example/jwks', now())",
        "audit_event": "INSERT INTO audit_event (id, organisation_id, seq, occurred_at, actor_subject, actor_roles, "
        "action, object_type, prev_hash, hash) VALUES (gen_random_uuid(), :org, 99, now(), 'x', 'x', 'x', 'x', "
        "repeat('0', 64), repeat('b', 64))",
        "audit_chain_head": "INSERT INTO audit_chain_head (organisation_id, last_seq, last_hash) "
        "SELECT id, 0, repeat('0', 64) FROM organisation WHERE id = :org",
    }
    await conn.execute(text(statements[table]), {"org": org})


async def test_the_same_insert_succeeds_in_the_right_context(
    connection: AsyncConnection, orgs: dict[str, OrgRef]
) -> None:
    """The refusals above are about the context, not about the statements."""
    b = orgs[B].id
    await set_context(connection, "org", b)
    for table in TENANT_TABLES:
        async with connection.begin_nested():
            await insert_rows_one(connection, table, b)
    assert {o for _, o in await visible(connection, "audit_chain_head")} == {str(b)}


# --- the context is per transaction ----------------------------------------------------------


@pytest.fixture
async def one_connection_engine(fresh_database: TestDatabase) -> AsyncIterator[AsyncEngine]:
    """The service role with a pool of exactly one connection, so that every transaction below
    runs on the same server session and a leaked setting would show."""
    engine = create_async_engine(fresh_database.app_url, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


async def test_set_config_is_transaction_local(
    one_connection_engine: AsyncEngine, orgs: dict[str, OrgRef]
) -> None:
    a = orgs[A].id
    async with one_connection_engine.connect() as conn:
        pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        await set_context(conn, "org", a)
        seen = await visible(conn, "unit")
        assert seen and {o for _, o in seen} == {str(a)}
        await conn.commit()
        # A new transaction on the same server session: the setting is gone.
        assert await conn.scalar(text("SELECT pg_backend_pid()")) == pid
        assert await conn.scalar(text("SELECT current_setting('samplan.org_id', true)")) == ""
        assert await visible(conn, "unit") == set()
        await set_context(conn, "system")
        assert len({o for _, o in await visible(conn, "unit")}) > 1
        await conn.rollback()
        assert await visible(conn, "unit") == set()
    # Back through the pool: still the same server session, still nothing.
    async with one_connection_engine.connect() as conn:
        assert await conn.scalar(text("SELECT pg_backend_pid()")) == pid
        assert await visible(conn, "unit") == set()


async def test_sessions_apply_their_context_to_every_transaction(
    one_connection_engine: AsyncEngine, fresh_database: TestDatabase, orgs: dict[str, OrgRef]
) -> None:
    a, b = orgs[A].id, orgs[B].id
    db = Database(fresh_database.settings(), engine=one_connection_engine)

    async def unit_orgs(session: AsyncSession) -> set[uuid.UUID]:
        return set((await session.execute(select(Unit.organisation_id))).scalars())

    async with db.session(TenantContext.org(a)) as session:
        assert await unit_orgs(session) == {a}
        await session.commit()
        assert await unit_orgs(session) == {a}  # the next transaction is scoped again
        await bind_tenant(session, TenantContext.org(b))  # switches the open transaction too
        assert await unit_orgs(session) == {b}
        async with system_scope(session):
            assert {a, b} <= await unit_orgs(session)
        assert await unit_orgs(session) == {b}
        await session.rollback()
        assert await unit_orgs(session) == {b}
    async with db.session() as session:  # no tenant bound: NOBODY
        assert session.info[TENANT_KEY] == NOBODY
        assert await unit_orgs(session) == set()
    async with db.session(SYSTEM) as session:
        assert {a, b} <= await unit_orgs(session)
    # The system scope of the last session did not stay behind on the pooled connection.
    async with one_connection_engine.connect() as conn:
        assert await visible(conn, "unit") == set()


# --- the Python rule and the RLS rule agree ---------------------------------------------------


async def test_http_unit_list_matches_the_rls_answer(
    client: httpx.AsyncClient, auth: AuthFactory, orgs: dict[str, OrgRef], connection: AsyncConnection
) -> None:
    for key, names in ((A, ["RLS Enhet 1", "RLS Enhet 2"]), (B, ["RLS Huddinge"])):
        for name in names:
            response = await client.post(
                f"/api/v1/organisations/{orgs[key].id}/units", json={"name": name}, headers=auth(key, "org_admin")
            )
            assert response.status_code == 201, response.text

    for key in (A, B):
        org = orgs[key].id
        response = await client.get(f"/api/v1/organisations/{org}/units", headers=auth(key, "org_admin"))
        assert response.status_code == 200, response.text
        assert response.json()["next_cursor"] is None
        over_http = {u["id"] for u in response.json()["items"]}

        await set_context(connection, "org", org)
        under_rls = {k for k, _ in await visible(connection, "unit")}
        assert over_http == under_rls
        demo_units = next(len(o.units) for o in DEMO_ORGS if o.key == key)
        assert len(over_http) == demo_units + (2 if key == A else 1)
        # And the other organisation's context shares nothing with it.
        other = orgs[B if key == A else A].id
        await set_context(connection, "org", other)
        assert over_http.isdisjoint({k for k, _ in await visible(connection, "unit")})

    # The policy refuses the other organisation's list outright.
    refused = await client.get(f"/api/v1/organisations/{orgs[B].id}/units", headers=auth(A, "org_admin"))
    assert refused.status_code == 403
