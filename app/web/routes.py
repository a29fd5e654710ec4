"""Serves the thin web client at /ui: static files under a strict Content-Security-Policy, and in
dev mode only the demo users with fresh tokens for the sign-in page.

The client itself talks only to the public API with the signed-in user's bearer token.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from app.auth.dev_issuer import DevIssuer
from app.config import Settings
from app.errors import NotFound
from app.services.demo import DEMO_ORGS, DEMO_USERS

STATIC_DIR = Path(__file__).resolve().parent / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}

# Tokens handed out by the dev sign-in page live as long as a working day, like `samplan demo`'s.
_DEV_TOKEN_TTL_SECONDS = 8 * 3600

router = APIRouter(prefix="/ui", include_in_schema=False)


def security_headers(*, cache: bool) -> dict[str, str]:
    return {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        # The files change with each release; revalidate rather than serve a stale client.
        "Cache-Control": "no-cache" if cache else "no-store",
    }


def _static_file(name: str) -> Path | None:
    """A file directly in the static folder, never outside it, and only of a served type."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = STATIC_DIR / name
    if path.suffix not in _MEDIA_TYPES or not path.is_file():
        return None
    if path.resolve().parent != STATIC_DIR:
        return None
    return path


def _file(path: Path) -> FileResponse:
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=security_headers(cache=True))


@router.get("", response_model=None)
async def ui_root() -> Response:
    # Relative asset URLs in index.html resolve against /ui/, so the page lives there.
    return RedirectResponse("/ui/", status_code=307, headers=security_headers(cache=False))


@router.get("/", response_model=None)
async def ui_index() -> Response:
    return _file(STATIC_DIR / "index.html")


class DevOrganisation(BaseModel):
    key: str
    name: str
    kind: str
    org_number: str
    county_code: str


class DevUser(BaseModel):
    subject: str
    name: str
    roles: list[str]
    county: str | None
    organisation: DevOrganisation
    token: str


def _dev_issuer(request: Request) -> DevIssuer | None:
    settings: Settings = request.app.state.settings
    issuer: DevIssuer | None = request.app.state.dev_issuer
    if settings.env != "dev" or not settings.dev_issuer_enabled or issuer is None:
        return None
    return issuer


@router.get("/dev-users", response_model=list[DevUser])
async def dev_users(request: Request) -> JSONResponse:
    """Dev mode only: the demo users, each with a freshly minted token. Absent (404) otherwise."""
    issuer = _dev_issuer(request)
    if issuer is None:
        raise NotFound("no such page")
    orgs = {o.key: o for o in DEMO_ORGS}
    users = []
    for user in DEMO_USERS:
        org = orgs[user.org_key]
        roles = [r.value for r in user.roles]
        token = issuer.mint(
            org_number=org.org_number,
            roles=roles,
            subject=user.subject,
            name=user.name,
            county=user.county,
            ttl_seconds=_DEV_TOKEN_TTL_SECONDS,
        )
        users.append(
            DevUser(
                subject=user.subject,
                name=user.name,
                roles=roles,
                county=user.county,
                organisation=DevOrganisation(
                    key=org.key,
                    name=org.name,
                    kind=org.kind.value,
                    org_number=org.org_number,
                    county_code=org.county_code,
                ),
                token=token,
            ).model_dump()
        )
    return JSONResponse(users, headers=security_headers(cache=False))


@router.get("/{name}", response_model=None)
async def ui_asset(name: str) -> Response:
    path = _static_file(name)
    if path is None:
        raise NotFound("no such file")
    return _file(path)
