"""The application: middleware, error handlers, routers, and the shared resources."""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import Depends, FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.authenticate import Authenticator
from app.auth.dev_issuer import DevIssuer
from app.auth.jwks import JwksCache
from app.config import Settings, get_settings
from app.db import Database
from app.errors import PROBLEM_JSON, install_error_handlers, problem_response
from app.nul_guard import reject_nul_characters
from app.routers import (
    audit,
    care_chain,
    clients,
    events,
    health,
    me,
    meetings,
    organisations,
    plans,
    reports,
    webhooks,
    worklist,
)
from app.services.dispatcher import Dispatcher
from app.web import routes as web_routes

access_log = logging.getLogger("samplan.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_JSON_TYPES = ("application/json", "application/merge-patch+json", "application/problem+json")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class _BodyTooLarge(StarletteHTTPException):
    """Raised while the body streams in; an HTTPException so FastAPI's body parsing passes it on
    as a 413 instead of calling it a parse error."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class _BodyReadTimeout(StarletteHTTPException):
    """Raised when the body has not fully arrived in time (a trickling client); 408, and the
    connection is closed because the rest of the body may still be on its way."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408, f"the request body did not arrive within {seconds:g} s", headers={"Connection": "close"}
        )


class RequestGuard:
    """Request id, body size limit, body read timeout, content type check and an access log line
    without bodies, query strings or tokens (personal numbers never travel in URLs, and nothing
    else is logged)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        body_read_timeout: float | None = None,
        max_header_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_read_timeout = body_read_timeout
        # h11's own limit only applies while headers are incomplete; this catches headers that
        # arrived whole in one read.
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given_id = headers.get("x-request-id", "")
        request_id = given_id if _REQUEST_ID.match(given_id) else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            early = self._early_refusal(scope, headers)
            if early is not None:
                await early(scope, receive, send_with_id)
                return
            received = 0
            body_done = False
            # The whole body must be in within body_read_timeout of the request's start. Only
            # reads of the body are timed: once it is complete, receive() waits for a disconnect
            # and may rightly wait as long as the response takes.
            body_deadline = started + self.body_read_timeout if self.body_read_timeout else None

            async def limited_receive() -> Message:
                nonlocal received, body_done
                if body_done or body_deadline is None:
                    message = await receive()
                else:
                    remaining = body_deadline - time.perf_counter()
                    try:
                        if remaining <= 0:
                            raise TimeoutError
                        message = await asyncio.wait_for(receive(), remaining)
                    except TimeoutError:
                        raise _BodyReadTimeout(self.body_read_timeout or 0) from None
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise _BodyTooLarge(self.max_body_bytes)
                    body_done = not message.get("more_body", False)
                else:
                    body_done = True
                return message

            try:
                await self.app(scope, limited_receive, send_with_id)
            except _BodyTooLarge:
                await self._too_large()(scope, receive, send_with_id)
            except _BodyReadTimeout as exc:
                # Normally the app's HTTPException handler has already answered; this is for a
                # read outside it. Connection: close makes the server drop the half-read request.
                timeout_response = problem_response(
                    408,
                    "Request timeout",
                    str(exc.detail),
                    slug="request-timeout",
                    headers={"Connection": "close"},
                )
                await timeout_response(scope, receive, send_with_id)
        finally:
            access_log.info(
                "%s %s %s %.1fms rid=%s",
                scope["method"],
                scope["path"],
                status_holder["status"],
                (time.perf_counter() - started) * 1000,
                request_id,
            )

    def _too_large(self) -> ASGIApp:
        return problem_response(
            413,
            "Payload too large",
            f"the request body is larger than {self.max_body_bytes} bytes",
            slug="payload-too-large",
        )

    def _early_refusal(self, scope: Scope, headers: dict[str, str]) -> ASGIApp | None:
        if self.max_header_bytes is not None:
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string", b""))
            size += sum(len(k) + len(v) + 4 for k, v in scope["headers"])
            if size > self.max_header_bytes:
                return problem_response(
                    431,
                    "Request header fields too large",
                    f"the request line and headers are larger than {self.max_header_bytes} bytes",
                    slug="headers-too-large",
                    headers={"Connection": "close"},
                )
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return problem_response(400, "Bad request", "Content-Length is not a number")
            if int(length) > self.max_body_bytes:
                return self._too_large()
        has_body = (length is not None and int(length) > 0) or "transfer-encoding" in headers
        if scope["method"] in _BODY_METHODS and has_body and scope["path"].startswith("/api/"):
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype not in _JSON_TYPES:
                return problem_response(
                    415,
                    "Unsupported media type",
                    "the request body must be JSON (Content-Type: application/json)",
                    slug="unsupported-media-type",
                )
        return None


def make_http_client(settings: Settings) -> httpx.AsyncClient:
    """The one outbound HTTP client (JWKS, webhooks), with timeouts and the trusted CAs."""
    verify: ssl.SSLContext | bool = True
    if settings.extra_ca_file is not None:
        verify = ssl.create_default_context()
        verify.load_verify_locations(cafile=str(settings.extra_ca_file))
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.http_timeout_seconds),
        follow_redirects=False,
        headers={"User-Agent": "samplan/0.1"},
        verify=verify,
    )


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check_safe_for_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        worker = None
        if settings.dispatcher_in_process:
            worker = asyncio.create_task(Dispatcher(app.state.db, app.state.http, settings).run_forever(stop))
        yield
        stop.set()
        if worker is not None:
            await worker
        await app.state.http.aclose()
        if database is None:
            await app.state.db.dispose()

    app = FastAPI(
        title="Samplan",
        version="0.1.0",
        summary="Samordnade individuella planer (SIP) shared by kommuner and regions",
        description=(
            "Kommun and region staff co-author SIPs with role-scoped access. Errors are RFC 9457 "
            f"`{PROBLEM_JSON}`. Authenticate with `Authorization: Bearer <JWT>` from an issuer trusted "
            "for your organisation; in dev mode `samplan dev-token` prints one."
        ),
        lifespan=lifespan,
        dependencies=[Depends(reject_nul_characters)],
    )
    app.state.settings = settings
    app.state.db = database or Database(settings)
    # One outbound HTTP client for the whole app (JWKS now, webhooks later), with timeouts.
    app.state.http = make_http_client(settings)
    app.state.dev_issuer = DevIssuer(settings) if settings.dev_issuer_enabled else None
    app.state.jwks = JwksCache(
        app.state.http,
        ttl_seconds=settings.jwks_cache_seconds,
        min_refresh_seconds=settings.jwks_min_refresh_seconds,
    )
    app.state.authenticator = Authenticator(settings, app.state.db, app.state.jwks, app.state.dev_issuer)

    install_error_handlers(app)
    for router in (
        health.router,
        me.router,
        organisations.router,
        clients.router,
        care_chain.router,
        plans.router,
        meetings.router,
        worklist.router,
        webhooks.router,
        events.router,
        audit.router,
        reports.router,
        web_routes.router,
    ):
        app.include_router(router)
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        body_read_timeout=settings.body_read_timeout_seconds,
        max_header_bytes=settings.server_max_header_bytes,
    )
    return app
