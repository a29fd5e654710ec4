"""Test fixtures: a migrated real database (SQLite file or PostgreSQL), a transaction rolled back
after each test, an httpx client on the app, and tokens for each role in the demo organisations.

Pick the database with SAMPLAN_TEST_DB=sqlite (default) or SAMPLAN_TEST_DB=postgresql. When
PostgreSQL is asked for and cannot be reached, the run fails: it never silently skips.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState

from app.auth.dev_issuer import DevIssuer
from app.cli import migrate
from app.config import Settings
from app.db import SYSTEM, TENANT_KEY, Database, _apply_context, make_engine
from app.main import create_app
from app.services.demo import DEMO_ORGS, load_demo

BACKEND = os.environ.get("SAMPLAN_TEST_DB", "sqlite")
PG_HOST = os.environ.get("SAMPLAN_TEST_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("SAMPLAN_TEST_PG_PORT", "5432")
PG_ADMIN_URL = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/postgres"
APP_ROLE = "samplan_app"


def pytest_report_header() -> str:
    return f"samplan test database: {BACKEND}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgresql_only: runs in the PostgreSQL pass of the suite")
    config.addinivalue_line("markers", "sqlite_only: runs in the SQLite pass of the suite")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Backend-specific tests are deselected (not skipped) in the other backend's pass; .ci/run
    # runs both passes, so each such test runs exactly once.
    other = "sqlite_only" if BACKEND == "postgresql" else "postgresql_only"
    keep = [i for i in items if other not in i.keywords]
    dropped = [i for i in items if other in i.keywords]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@dataclass
class TestDatabase:
    """Where the tests' schema lives, and how to make more databases like it."""

    __test__ = False  # not a test class, despite the name

    backend: str
    app_url: str  # the service's (non-owner) connection
    owner_url: str  # the migration owner's connection
    tmp: Path

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "env": "dev",
            "data_dir": self.tmp / "data",
            "database_url": self.app_url,
            "migration_database_url": self.owner_url,
            "db_app_role": APP_ROLE,
            "db_pool_size": 5,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]


def _pg_url(database: str, user: str = "postgres") -> str:
    return f"postgresql+asyncpg://{user}@{PG_HOST}:{PG_PORT}/{database}"


async def _pg_admin(statements: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(
        host=PG_HOST, port=int(PG_PORT), user="postgres", database="postgres", timeout=5
    )
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def create_pg_database(name: str, template: str | None = None) -> None:
    template_sql = f" TEMPLATE {template}" if template else ""
    await _pg_admin([f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}{template_sql}"])


async def drop_pg_database(name: str) -> None:
    await _pg_admin([f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])


async def _seed(settings: Settings) -> None:
    db = Database(settings, engine=make_engine(settings.migration_database_url, settings))
    try:
        async with db.session(SYSTEM) as session:
            await load_demo(session)
            await session.commit()
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def test_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    tmp = tmp_path_factory.mktemp("samplan")
    if BACKEND == "sqlite":
        url = f"sqlite+aiosqlite:///{(tmp / 'test.db').as_posix()}"
        tdb = TestDatabase("sqlite", url, url, tmp)
        settings = tdb.settings()
        migrate(settings)
        asyncio.run(_seed(settings))
        shutil.copyfile(tmp / "test.db", tmp / "template.db")
        yield tdb
        return
    if BACKEND != "postgresql":
        pytest.exit(f"SAMPLAN_TEST_DB must be sqlite or postgresql, not {BACKEND!r}", returncode=2)
    name = f"samplan_test_{os.getpid()}"
    try:
        asyncio.run(create_pg_database(name))
    except Exception as exc:  # any failure to reach PostgreSQL must fail the run, never skip it
        pytest.exit(f"PostgreSQL tests were asked for but PostgreSQL is unreachable: {exc!r}", returncode=3)
    tdb = TestDatabase("postgresql", _pg_url(name, APP_ROLE), _pg_url(name), tmp)
    settings = tdb.settings()
    migrate(settings)
    # The service role may log in (trust auth in CI); in production the operator sets a password.
    asyncio.run(_pg_admin([f"ALTER ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS"]))
    asyncio.run(_seed(settings))
    asyncio.run(create_pg_database(f"{name}_tpl", template=name))
    yield tdb
    asyncio.run(drop_pg_database(name))
    asyncio.run(drop_pg_database(f"{name}_tpl"))


@pytest.fixture
async def fresh_database(test_database: TestDatabase, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    """A database of its own (migrated, demo data loaded) where commits are real, for tests of
    concurrency, faults, tampering and anything that needs a second connection."""
    if test_database.backend == "sqlite":
        shutil.copyfile(test_database.tmp / "template.db", tmp_path / "fresh.db")
        url = f"sqlite+aiosqlite:///{(tmp_path / 'fresh.db').as_posix()}"
        yield TestDatabase("sqlite", url, url, tmp_path)
        return
    name = f"samplan_fresh_{uuid.uuid4().hex[:12]}"
    await create_pg_database(name, template=f"samplan_test_{os.getpid()}_tpl")
    yield TestDatabase("postgresql", _pg_url(name, APP_ROLE), _pg_url(name), tmp_path)
    await drop_pg_database(name)


@pytest.fixture(scope="session")
async def app_engine(test_database: TestDatabase) -> AsyncIterator[AsyncEngine]:
    settings = test_database.settings()
    engine = make_engine(settings.database_url, settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(app_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One outer transaction per test; everything the app commits is a savepoint inside it."""
    async with app_engine.connect() as conn:
        outer = await conn.begin()
        yield conn
        if outer.is_active:
            await outer.rollback()


@pytest.fixture
def settings(test_database: TestDatabase) -> Settings:
    return test_database.settings()


@pytest.fixture
def database(settings: Settings, app_engine: AsyncEngine, connection: AsyncConnection) -> Database:
    db = Database(settings, engine=app_engine)
    db.sessionmaker = async_sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    return db


@pytest.fixture
async def app(settings: Settings, database: Database) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database=database)
    yield application
    await application.state.http.aclose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://samplan.test") as c:
        yield c


@pytest.fixture
async def session(database: Database) -> AsyncIterator[AsyncSession]:
    """A system-scope session in the test's transaction, for arranging and inspecting rows.

    It shares the test's connection with the app, whose requests leave their own tenant context
    on it; so the session's context is applied again before each of its statements."""
    async with database.session(SYSTEM) as s:

        @event.listens_for(s.sync_session, "do_orm_execute")
        def _reapply_context(state: ORMExecuteState) -> None:
            _apply_context(state.session.connection(), state.session.info.get(TENANT_KEY, SYSTEM))

        yield s


@dataclass(frozen=True)
class OrgRef:
    key: str
    id: uuid.UUID
    org_number: str
    name: str
    county_code: str


@pytest.fixture
async def orgs(session: AsyncSession) -> dict[str, OrgRef]:
    rows = (await session.execute(text("SELECT id, org_number, name, county_code FROM organisation"))).all()
    by_number = {r.org_number: r for r in rows}
    out = {}
    for spec in DEMO_ORGS:
        row = by_number[spec.org_number]
        out[spec.key] = OrgRef(spec.key, uuid.UUID(str(row.id)), row.org_number, row.name, row.county_code)
    return out


TokenFactory = Callable[..., str]
AuthFactory = Callable[..., dict[str, str]]


@pytest.fixture
def dev_issuer(app: FastAPI) -> DevIssuer:
    issuer: DevIssuer = app.state.dev_issuer
    return issuer


@pytest.fixture
def token(dev_issuer: DevIssuer, orgs: dict[str, OrgRef]) -> TokenFactory:
    """token("sthlm-stad", "handlaggare", subject=..., county=...)"""

    def make(
        org_key: str, *roles: str, subject: str | None = None, county: str | None = None, **kw: object
    ) -> str:
        org = orgs[org_key]
        return dev_issuer.mint(
            org_number=org.org_number,
            roles=list(roles),
            subject=subject or f"test-{org_key}-{'-'.join(roles)}",
            name=f"Test {org_key} {'/'.join(roles)}",
            county=county,
            **kw,  # type: ignore[arg-type]
        )

    return make


@pytest.fixture
def auth(token: TokenFactory) -> AuthFactory:
    """auth("sthlm-stad", "handlaggare") -> headers with a bearer token"""

    def make(org_key: str, *roles: str, **kw: object) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(org_key, *roles, **kw)}"}

    return make


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, object] = response.json()
    for key in ("type", "title", "status", "detail"):
        assert key in body, body
    assert body["status"] == status
    return body
