"""Bearer token → Principal: issuer → organisation → roles."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from app.auth import tokens
from app.auth.dev_issuer import DevIssuer
from app.auth.jwks import JwksCache, JwksUnavailable
from app.auth.principal import Principal
from app.config import DEFAULT_AUDIENCE, Settings
from app.db import SYSTEM, Database
from app.errors import ServiceUnavailable, Unauthorized
from app.models.identity import Role, TrustedIssuer, User
from app.models.organisation import Organisation
from app.services import identifiers

_CACHE_SECONDS = 30.0
# Verified tokens remembered per process: the signature check and the key construction were a
# sixth of a plan read's CPU (docs/performance.md). Bounded; an entry lives at most
# _CACHE_SECONDS, like the issuer trust it was checked against, and never past the token's `exp`.
_VERIFIED_MAX = 10_000


@dataclass(frozen=True)
class _Trust:
    organisation: Organisation
    issuer: str
    audience: str
    jwks_url: str  # empty: the dev issuer


@dataclass(frozen=True)
class _Verified:
    """A token that passed every check, and what its validity still depends on."""

    principal: Principal
    valid_until: float  # epoch seconds: `exp` plus the allowed clock skew
    at: float  # monotonic time of the check
    issuer: str
    org_number: str
    kid: str
    jwk: dict[str, Any]


class Authenticator:
    def __init__(
        self, settings: Settings, db: Database, jwks: JwksCache, dev_issuer: DevIssuer | None
    ) -> None:
        self.settings = settings
        self.db = db
        self.jwks = jwks
        self.dev_issuer = dev_issuer
        # Short-lived caches so that a request costs no extra queries once its caller is known.
        self._trust_cache: dict[tuple[str, str], tuple[float, _Trust | None]] = {}
        self._known_users: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
        self._verified: OrderedDict[bytes, _Verified] = OrderedDict()  # by sha256 of the token

    def forget(self) -> None:
        self._trust_cache.clear()
        self._known_users.clear()
        self._verified.clear()

    async def authenticate(self, token: str) -> Principal:
        key = hashlib.sha256(token.encode()).digest()
        remembered = self._verified.get(key)
        if remembered is not None:
            if await self._still_good(remembered):
                self._verified.move_to_end(key)
                return remembered.principal
            del self._verified[key]
        entry = await self._verify(token)
        self._verified[key] = entry
        if len(self._verified) > _VERIFIED_MAX:
            self._verified.popitem(last=False)
        return entry.principal

    async def _still_good(self, entry: _Verified) -> bool:
        """A remembered token holds while it has not expired, its issuer is still trusted for the
        organisation and still publishes the key that signed it (a rotated-out key ends it as
        soon as the key cache notices, as for a token checked afresh)."""
        if time.time() >= entry.valid_until or time.monotonic() - entry.at >= _CACHE_SECONDS:
            return False
        trust = await self._trust(entry.issuer, entry.org_number)
        if trust is None or trust.organisation.id != entry.principal.organisation_id:
            return False
        return await self._signing_key(trust, entry.kid) == entry.jwk

    async def _verify(self, token: str) -> _Verified:
        """The full check of a token."""
        try:
            header = tokens.unverified_header(token)
            unverified = tokens.unverified_claims(token)
        except tokens.TokenError as exc:
            raise Unauthorized(str(exc)) from None
        iss = unverified.get("iss")
        org_claim = unverified.get("org")
        kid = header.get("kid")
        if not isinstance(iss, str) or not iss:
            raise Unauthorized("the token has no issuer")
        if not isinstance(org_claim, str):
            raise Unauthorized("the token has no 'org' claim")
        try:
            org_number = identifiers.normalise_org_number(org_claim)
        except identifiers.InvalidIdentifier:
            raise Unauthorized("the token's 'org' claim is not a valid organisationsnummer") from None
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("the token header has no key id ('kid')")

        trust = await self._trust(iss, org_number)
        if trust is None:
            raise Unauthorized("the token's issuer is not trusted for the organisation in its 'org' claim")

        public_jwk = await self._signing_key(trust, kid)
        if public_jwk is None:
            raise Unauthorized("the token is signed with a key the issuer does not publish")
        try:
            claims = tokens.verify(
                token,
                public_jwk,
                algorithm=header["alg"],
                audience=trust.audience,
                issuer=trust.issuer,
                leeway_seconds=self.settings.clock_skew_seconds,
            )
        except tokens.TokenError as exc:
            raise Unauthorized(str(exc)) from None
        return _Verified(
            principal=await self._principal(claims, trust),
            # The same bound verify applied: `exp` plus the allowed clock skew.
            valid_until=float(claims["exp"]) + self.settings.clock_skew_seconds,
            at=time.monotonic(),
            issuer=iss,
            org_number=org_number,
            kid=kid,
            jwk=public_jwk,
        )

    async def _trust(self, iss: str, org_number: str) -> _Trust | None:
        now = time.monotonic()
        cached = self._trust_cache.get((iss, org_number))
        if cached and now - cached[0] < _CACHE_SECONDS:
            return cached[1]
        trust: _Trust | None = None
        async with self.db.session(SYSTEM) as session:
            org = (
                await session.execute(select(Organisation).where(Organisation.org_number == org_number))
            ).scalar_one_or_none()
            if org is not None:
                if self.dev_issuer is not None and iss == self.dev_issuer.issuer:
                    trust = _Trust(org, iss, DEFAULT_AUDIENCE, "")
                else:
                    row = (
                        await session.execute(
                            select(TrustedIssuer).where(
                                TrustedIssuer.issuer == iss, TrustedIssuer.organisation_id == org.id
                            )
                        )
                    ).scalar_one_or_none()
                    if row is not None and row.jwks_url:
                        trust = _Trust(org, row.issuer, row.audience, row.jwks_url)
        self._trust_cache[(iss, org_number)] = (now, trust)
        return trust

    async def _signing_key(self, trust: _Trust, kid: str) -> dict[str, Any] | None:
        if not trust.jwks_url:
            assert self.dev_issuer is not None
            return self.dev_issuer.jwk if kid == self.dev_issuer.kid else None
        try:
            return await self.jwks.key(trust.jwks_url, kid)
        except JwksUnavailable as exc:
            raise ServiceUnavailable(
                f"the token issuer's keys cannot be fetched: {exc}", retry_after=5
            ) from None

    async def _principal(self, claims: dict[str, Any], trust: _Trust) -> Principal:
        org = trust.organisation
        raw_roles = claims.get("roles", [])
        if not isinstance(raw_roles, list):
            raise Unauthorized("the token's 'roles' claim must be a list")
        roles = frozenset(Role(r) for r in raw_roles if isinstance(r, str) and r in Role.__members__)
        if not roles:
            raise Unauthorized("the token carries no Samplan role")
        if Role.platform_admin in roles and not self._may_operate(org):
            raise Unauthorized("platform_admin tokens must come from the operating organisation")
        county = claims.get("county")
        if Role.rss in roles:
            try:
                county = identifiers.validate_county_code(str(county))
            except identifiers.InvalidIdentifier:
                raise Unauthorized("an 'rss' token needs a valid 'county' claim") from None
            if county != org.county_code:
                # An RSS follows up its own county: a token cannot name another one.
                raise Unauthorized("an 'rss' token's county must be its organisation's county")
        subject = str(claims["sub"])
        if len(subject) > 200:
            raise Unauthorized("the token's 'sub' claim is too long")
        name = claims.get("name") if isinstance(claims.get("name"), str) else None
        user_id = await self._ensure_user(org.id, subject, name, roles)
        unit = claims.get("unit")
        return Principal(
            subject=subject,
            user_id=user_id,
            organisation_id=org.id,
            org_number=org.org_number,
            org_kind=org.kind,
            org_county=org.county_code,
            roles=roles,
            issuer=trust.issuer,
            name=name[:200] if name else None,
            unit_hsa_id=unit if isinstance(unit, str) else None,
            county=county if Role.rss in roles else None,
        )

    def _may_operate(self, org: Organisation) -> bool:
        operator = self.settings.operator_org_number
        if operator:
            return org.org_number == identifiers.normalise_org_number(operator)
        return self.settings.env == "dev"

    async def _ensure_user(
        self, organisation_id: uuid.UUID, subject: str, name: str | None, roles: frozenset[Role]
    ) -> uuid.UUID:
        """Users are known from their first authenticated request, so that other records
        (coordinator assignments, audit reviews) can point at a real person."""
        key = (organisation_id, subject)
        if key in self._known_users:
            return self._known_users[key]
        async with self.db.session(SYSTEM) as session:
            user = (
                await session.execute(
                    select(User).where(User.organisation_id == organisation_id, User.subject == subject)
                )
            ).scalar_one_or_none()
            if user is None:
                user = User(
                    organisation_id=organisation_id,
                    subject=subject,
                    name=name or subject,
                    roles=sorted(r.value for r in roles),
                )
                session.add(user)
                try:
                    await session.commit()
                except IntegrityError:  # a concurrent first request registered the user
                    await session.rollback()
                    user = (
                        await session.execute(
                            select(User).where(
                                User.organisation_id == organisation_id, User.subject == subject
                            )
                        )
                    ).scalar_one()
        self._known_users[key] = user.id
        return user.id
