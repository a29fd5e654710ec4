"""FastAPI dependencies as Annotated aliases: `PrincipalDep`, `SessionDep`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.authenticate import Authenticator
from app.auth.principal import Principal
from app.config import Settings
from app.db import Database, TenantContext
from app.errors import Unauthorized
from app.services import audit

_bearer = HTTPBearer(auto_error=False, description="A JWT from an issuer trusted for your organisation")


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("a bearer token is required")
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(credentials.credentials)
    request.state.principal = principal
    return principal


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_session(request: Request, principal: PrincipalDep, db: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request, scoped to the caller's organisation, committed (with its
    audit events) when the route returns and before the response is sent."""
    async with db.session(TenantContext.org(principal.organisation_id)) as session:
        session.info["request_id"] = getattr(request.state, "request_id", None)
        yield session
        await audit.flush(session, db.settings.audit_pepper)
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
