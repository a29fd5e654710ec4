"""Alembic runs as the schema owner, on SQLite or PostgreSQL, from the same migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers every table on the metadata)
from alembic import context
from app.config import get_settings

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    # `samplan migrate` passes the URL in; otherwise the settings decide.
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    return str(url or get_settings().migration_database_url)


def _configure(connection: Connection) -> None:
    settings = get_settings()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    # The role the service connects as; migrations grant it exactly what it needs.
    context.get_context().opts["app_role"] = config.attributes.get("app_role", settings.db_app_role)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite" and engine.url.database:
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    async with engine.connect() as connection:
        await connection.run_sync(_configure)
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    asyncio.run(_run_async(_url()))


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")
run_migrations_online()
