"""Engine, sessions and the per-transaction tenant context.

Every transaction on PostgreSQL starts with `set_config('samplan.org_id', ..., true)` so that
row-level security sees the caller's organisation. The context lives in `session.info`; a session
without a bound tenant sees no organisation-owned rows at all.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, SessionTransaction

from app.config import Settings

TENANT_KEY = "samplan_tenant"


@dataclass(frozen=True)
class TenantContext:
    """Whose rows a transaction may touch. `system` is for work done on no caller's behalf
    (token issuer lookup, platform administration, the outbox worker)."""

    scope: Literal["org", "system"]
    organisation_id: uuid.UUID | None = None

    @classmethod
    def org(cls, organisation_id: uuid.UUID) -> TenantContext:
        return cls(scope="org", organisation_id=organisation_id)


SYSTEM = TenantContext(scope="system")
NOBODY = TenantContext(scope="org", organisation_id=None)

_SET_CONTEXT = text(
    "SELECT set_config('samplan.scope', :scope, true), set_config('samplan.org_id', :org, true)"
)


def _apply_context(connection: Connection, ctx: TenantContext) -> None:
    if connection.dialect.name != "postgresql":
        return
    connection.execute(
        _SET_CONTEXT,
        {"scope": ctx.scope, "org": str(ctx.organisation_id) if ctx.organisation_id else ""},
    )


def _after_begin(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    _apply_context(connection, session.info.get(TENANT_KEY, NOBODY))


event.listen(Session, "after_begin", _after_begin)


async def bind_tenant(session: AsyncSession, ctx: TenantContext) -> None:
    """Set whose rows this session may touch, now and in every later transaction."""
    session.info[TENANT_KEY] = ctx
    if session.in_transaction():
        connection = await session.connection()
        await connection.run_sync(_apply_context, ctx)


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Take over transaction control so that every transaction starts with BEGIN IMMEDIATE:
    # writers queue on busy_timeout instead of failing when a read lock must be upgraded.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, settings: Settings) -> AsyncEngine:
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 10})
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout_s,
        "command_timeout": settings.db_statement_timeout_ms / 1000,
        "server_settings": {"statement_timeout": str(settings.db_statement_timeout_ms)},
    }
    if settings.db_transaction_pooler:
        # A pooler in transaction mode hands each transaction to any server connection: a prepared
        # statement kept for the next transaction may not exist there. The tenant context is
        # transaction-local (set_config(..., true)), so it is safe behind such a pooler.
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unique_statement_name
        # PgBouncer refuses startup parameters it does not know: give the role its statement_timeout
        # instead (ALTER ROLE ... SET statement_timeout, docs/scaling.md).
        connect_args.pop("server_settings")
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        pool_timeout=settings.db_connect_timeout_s,
        connect_args=connect_args,
    )


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4()}__"


class Database:
    """The engine and session factory the app uses; tests may rebind `sessionmaker`."""

    def __init__(self, settings: Settings, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url, settings)
        self.sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )
        # Reports read through their own engine so that they can move to a read replica without
        # touching the primary's pool; without a replica it is the primary's engine.
        self.read_engine = (
            make_engine(settings.read_database_url, settings)
            if settings.read_database_url and engine is None
            else self.engine
        )
        self._read_sessionmaker: async_sessionmaker[AsyncSession] | None = (
            async_sessionmaker(self.read_engine, expire_on_commit=False)
            if self.read_engine is not self.engine
            else None
        )

    @asynccontextmanager
    async def session(self, ctx: TenantContext = NOBODY) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            session.info[TENANT_KEY] = ctx
            yield session

    @asynccontextmanager
    async def read_session(self, ctx: TenantContext = NOBODY) -> AsyncIterator[AsyncSession]:
        """A session for reading only (reports): on the read replica when one is configured.
        Nothing written here is ever committed."""
        # Without a replica: the primary's (current) sessionmaker, which tests may have rebound.
        async with (self._read_sessionmaker or self.sessionmaker)() as session:
            session.info[TENANT_KEY] = ctx
            try:
                yield session
            finally:
                await session.rollback()

    async def ping(self) -> None:
        async with self.session() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


@asynccontextmanager
async def system_scope(session: AsyncSession) -> AsyncIterator[None]:
    """Briefly lift the tenant scope for deliberate cross-organisation work (platform
    administration). Callers must have checked the policy first."""
    previous = session.info.get(TENANT_KEY, NOBODY)
    await bind_tenant(session, SYSTEM)
    try:
        yield
    finally:
        await bind_tenant(session, previous)
