"""FastAPI dependencies as Annotated aliases: `PrincipalDep`, `SessionDep`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.authenticate import Authenticator
from app.auth.principal import Principal
from app.config import Settings
from app.db import Database, TenantContext
from app.errors import (
    BadRequest,
    PreconditionRequired,
    Problem,
    ServiceUnavailable,
    Unauthorized,
    _is_connection_error,
)
from app.ratelimit import RateLimiter
from app.services import audit, idempotency
from app.services.idempotency import Idempotency

log = logging.getLogger("samplan.errors")

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
    with database_outage_as_503():
        principal = await authenticator.authenticate(credentials.credentials)
    request.state.principal = principal
    # After authentication, so anonymous endpoints are never limited and a bad token never
    # charges anyone's bucket; 429 problem+json with Retry-After when a bucket is empty.
    _rate_limiter(request).check(principal)
    return principal


def _rate_limiter(request: Request) -> RateLimiter:
    """The app's limiter, made on first use (one per app, so per process and per test app)."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        limiter = RateLimiter(request.app.state.settings)
        request.app.state.rate_limiter = limiter
    return limiter


# Errors SQLAlchemy judged to be a lost connection, in the current request. The greenlets that
# SQLAlchemy's async layer runs in share the request's context, so the listener sees the list.
_disconnects_seen: ContextVar[list[str] | None] = ContextVar("samplan_disconnects_seen", default=None)


def _note_disconnect(context: ExceptionContext) -> None:
    # A failed pre-ping is followed by a fresh connection; only a lost one in use counts.
    if context.is_disconnect and not context.is_pre_ping:
        seen = _disconnects_seen.get()
        if seen is not None:
            seen.append(type(context.original_exception).__name__)


event.listen(Engine, "handle_error", _note_disconnect)


@contextmanager
def database_outage_as_503() -> Iterator[None]:
    """A database that goes away mid-request answers 503 problem+json with Retry-After as a
    Problem. Left to the catch-all handler it would answer the same, but Starlette re-raises from
    there and the server then drops the client's keep-alive connection. The error that reaches
    here may not be the connection error itself but a later one from the broken transaction
    (a PendingRollbackError from a `finally` that touched the session), so a disconnect that
    SQLAlchemy saw during the request counts too."""
    seen: list[str] = []
    _disconnects_seen.set(seen)
    try:
        yield
    except Problem:
        raise
    except Exception as exc:
        if not (seen or _database_unreachable(exc)):
            raise
        log.warning("database unavailable: %s", seen[0] if seen else _root_cause(exc))
        raise ServiceUnavailable("the database is not reachable right now; retry shortly") from exc


def _root_cause(exc: BaseException) -> str:
    """The driver's own exception class (never the message: it may quote SQL parameters)."""
    for _ in range(5):
        if exc.__cause__ is None:
            break
        exc = exc.__cause__
    return type(exc).__name__


def _database_unreachable(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if _is_connection_error(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


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
        with database_outage_as_503():
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


async def get_read_session(principal: PrincipalDep, db: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """A read-only session for reports, on the read replica when one is configured; what the
    request writes (its audit event) goes through SessionDep to the primary."""
    async with db.read_session(TenantContext.org(principal.organisation_id)) as session:
        with database_outage_as_503():
            yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


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


def format_etag(version: int) -> str:
    """A plan's ETag: its version in quotes, the form parse_if_match reads back."""
    return f'"{version}"'


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
