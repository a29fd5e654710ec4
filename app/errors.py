"""RFC 9457 problem+json for every error, from one place."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger("samplan.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://samplan.se/problems/"


class Problem(Exception):
    """A domain or request error that becomes a problem+json response."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(Problem):
    pass


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="samplan"'})


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(Problem):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PreconditionRequired(Problem):
    status, slug, title = 428, "precondition-required", "Precondition required"


class UnprocessableEntity(Problem):
    status, slug, title = 422, "unprocessable", "Unprocessable request"


class RuleViolation(Problem):
    """A domain rule refused the change; `errors` lists every rule that is not met."""

    status, slug, title = 422, "rule-violation", "Domain rule not met"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ServiceUnavailable(Problem):
    status, slug, title = 503, "service-unavailable", "Service unavailable"

    def __init__(self, detail: str, retry_after: int = 2) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    request: Request | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + (slug or HTTPStatus(status).phrase.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            body["request_id"] = request_id
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        # Never echo the input: it may be a personal number.
        out.append(
            {
                "field": ".".join(str(p) for p in err.get("loc", ())),
                "message": str(err.get("msg", "invalid")).removeprefix("Value error, "),
                "code": str(err.get("type", "invalid")),
            }
        )
    return out


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        exc.status,
        exc.title,
        exc.detail,
        slug=exc.slug,
        errors=exc.errors,
        headers=exc.headers,
        request=request,
        extra=exc.extra,
    )


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return problem_response(
        422,
        "Validation failed",
        f"the request has invalid fields: {fields}",
        slug="validation",
        errors=errors,
        request=request,
    )


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    if status == 404 and detail == "Not Found":
        detail = "no such resource"
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 405:
        detail = f"method {request.method} is not allowed here"
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    # A condition the service also refuses itself (RequestGuard's 413) keeps one problem type.
    slug, title = _HTTP_PROBLEMS.get(status, (None, phrase))
    return problem_response(status, title, detail, slug=slug, headers=headers or None, request=request)


_HTTP_PROBLEMS = {cls.status: (cls.slug, cls.title) for cls in (PayloadTooLarge, UnsupportedMediaType)}


def _allowed_methods(request: Request) -> str:
    """Starlette names only the first route that matched the path; RFC 9110 wants all of them."""
    allowed = []
    for method in _METHODS:
        probe = {
            "type": "http",
            "method": method,
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
            "headers": [],
            "query_string": b"",
        }
        if any(route.matches(dict(probe))[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def _on_integrity(request: Request, exc: Exception) -> JSONResponse:
    # Constraint names only; the statement and parameters may hold personal data.
    log.info("integrity error on %s %s", request.method, request.url.path)
    return problem_response(
        409,
        "Conflict",
        "the change conflicts with existing data (a duplicate or a reference to something missing)",
        slug="conflict",
        request=request,
    )


async def _on_db_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return problem_response(
        503,
        "Service unavailable",
        "the database is not reachable right now; retry shortly",
        slug="service-unavailable",
        headers={"Retry-After": "2"},
        request=request,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    if _is_connection_error(exc):
        return await _on_db_unavailable(request, exc)
    log.error(
        "unhandled %s on %s %s (request %s)",
        type(exc).__name__,
        request.method,
        request.url.path,
        getattr(request.state, "request_id", "-"),
        exc_info=exc,
    )
    return problem_response(
        500, "Internal server error", "an unexpected error occurred", slug="internal", request=request
    )


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | PoolTimeoutError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    name = type(exc).__name__
    return name in {"CannotConnectNowError", "ConnectionDoesNotExistError", "InterfaceError"}


async def _on_replay(request: Request, exc: Exception) -> Response:
    from app.services.idempotency import IdempotentReplay

    assert isinstance(exc, IdempotentReplay)
    return exc.response()


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem. Validation errors and domain-rule refusals list every failing "
    "field or unmet rule in `errors`; some problems carry more members (e.g. `current_version`).",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "example": {
        "type": TYPE_BASE + "validation",
        "title": "Validation failed",
        "status": 422,
        "detail": "the request has invalid fields: body.title",
        "instance": "/api/v1/plans",
        "request_id": "5b0f2c1e-7d4a-4f0e-9a57-3c1d2e4f5a6b",
        "errors": [{"field": "body.title", "message": "Field required", "code": "missing"}],
    },
}

# The problems every authenticated API operation may answer, and those that depend on its shape.
_COMMON_PROBLEMS = {
    400: "malformed request: a bad cursor, header or Content-Length",
    401: "the bearer token is missing, expired or not from a trusted issuer",
    403: "your role or organisation may not do this",
    422: "invalid input (every failing field listed in `errors`) or a domain rule not met",
    429: "too many requests; retry after `Retry-After` seconds",
    503: "the database is not reachable right now; retry after `Retry-After` seconds",
}
_PATH_PROBLEMS = {404: "no such resource within your reach"}
_BODY_PROBLEMS = {
    413: "the request body is too large",
    415: "the request body must be JSON",
}
_WRITE_PROBLEMS = {409: "the change conflicts with the current state or with existing data"}
_IF_MATCH_PROBLEMS = {412: "If-Match does not match the plan's current version"}


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Document the problem+json answers in an OpenAPI document, in place: the `Problem` schema,
    the statuses each operation can answer (by its shape: authenticated, path parameters, a body,
    If-Match), and problem+json (not FastAPI's default `HTTPValidationError`) for every 4xx and
    5xx, as `_on_problem` and the other handlers answer them."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in openapi.get("paths", {}).values():
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            wanted = dict(_COMMON_PROBLEMS) if operation.get("security") else {}
            if any(p.get("in") == "path" for p in params):
                wanted.update(_PATH_PROBLEMS)
            if method in ("post", "put", "patch"):
                wanted.update(_BODY_PROBLEMS)
            if method in ("post", "put", "patch", "delete") and operation.get("security"):
                wanted.update(_WRITE_PROBLEMS)
            if any(p.get("in") == "header" and p.get("name", "").lower() == "if-match" for p in params):
                wanted.update(_IF_MATCH_PROBLEMS)
            responses = operation.setdefault("responses", {})
            for status, description in wanted.items():
                responses.setdefault(str(status), {"description": description})
            if responses.get("422", {}).get("description") == "Validation Error":
                responses["422"]["description"] = _COMMON_PROBLEMS[422]
            for status, response in responses.items():
                if status[:1] in ("4", "5"):
                    response["content"] = content
    if "#/components/schemas/HTTPValidationError" not in json.dumps(openapi.get("paths", {})):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return openapi


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as problem+json, and say so in the OpenAPI document."""
    from app.services.idempotency import IdempotentReplay

    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    app.add_exception_handler(IdempotentReplay, _on_replay)
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(IntegrityError, _on_integrity)
    app.add_exception_handler(OperationalError, _on_db_unavailable)
    app.add_exception_handler(PoolTimeoutError, _on_db_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)
