"""FastAPI dependencies as Annotated aliases: `PrincipalDep`, `SessionDep`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.authenticate import Authenticator
from app.auth.principal import Principal
from app.config import Settings
from app.db import Database, TenantContext
from app.errors import BadRequest, PreconditionRequired, Problem, Unauthorized
from app.services import audit, idempotency
from app.services.idempotency import Idempotency

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


async def get_session(
    request: Request, principal: PrincipalDep, db: DatabaseDep
) -> AsyncIterator[AsyncSession]:
    """One transaction per request, scoped to the caller's organisation, committed (with its
    audit events) when the route returns and before the response is sent."""
    async with db.session(TenantContext.org(principal.organisation_id)) as session:
        session.info["request_id"] = getattr(request.state, "request_id", None)
        try:
            yield session
        except Problem:
            # The change is undone; attempts worth auditing (refused look-ups) are still written.
            await session.rollback()
            if audit.keep_only_attempts(session):
                await audit.flush(session, db.settings.audit_pepper)
                await session.commit()
            raise
        await audit.flush(session, db.settings.audit_pepper)
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_idempotency(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    idempotency_key: Annotated[
        str | None,
        Header(description="repeat a POST safely: the same key and body get the first answer"),
    ] = None,
) -> Idempotency:
    idem = idempotency.build(
        principal, idempotency_key, request.method, request.url.path, await request.body()
    )
    await idem.check(session)
    return idem


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]


def parse_if_match(value: str | None, *, required: bool) -> int | None:
    """ETags are the plan version in quotes: `"7"`."""
    if value is None:
        if required:
            raise PreconditionRequired("this change needs an If-Match header with the plan's ETag")
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 9:
        raise BadRequest('If-Match must be the plan\'s ETag, such as "3"')
    return int(tag)


def _if_match_required(
    if_match: Annotated[str | None, Header(description="the plan's ETag; required")] = None,
) -> int:
    version = parse_if_match(if_match, required=True)
    assert version is not None
    return version


def _if_match_optional(
    if_match: Annotated[str | None, Header(description="the plan's ETag; checked when given")] = None,
) -> int | None:
    return parse_if_match(if_match, required=False)


IfMatchRequired = Annotated[int, Depends(_if_match_required)]
IfMatchOptional = Annotated[int | None, Depends(_if_match_optional)]
