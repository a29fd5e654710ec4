"""Bearer token verification through the HTTP API (GET /api/v1/me) and `app.auth.tokens` directly.

Every refusal must be a 401 problem+json with a `WWW-Authenticate: Bearer` challenge and a detail
that says why, must not echo the token, must not register a user, and (for an external issuer)
must not fetch the issuer's keys when the token is refused before a key is needed.

respx: its default mocker patches httpcore's connection pools only. The test client goes through
`httpx.ASGITransport`, which never touches httpcore, so `respx.mock(base_url=IDP)` intercepts the
app's outbound JWKS requests and leaves the test client alone; no pass-through route is needed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from jose import jwt as jose_jwt
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth import tokens
from app.auth.dev_issuer import DevIssuer
from app.config import DEV_ISSUER, Settings
from app.db import SYSTEM, Database, bind_tenant
from app.main import create_app
from app.models.identity import TrustedIssuer, User
from tests.conftest import AuthFactory, OrgRef, TokenFactory, assert_problem

if TYPE_CHECKING:
    from tests.conftest import TestDatabase

ME = "/api/v1/me"
IDP = "https://idp.example.test"
JWKS_URL = f"{IDP}/jwks"
IDP_ORG = "huddinge"  # the organisation that trusts the external IdP
OTHER_ORG = "sthlm-stad"


# --- helpers ------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: object) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def craft(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS built by hand, so that nothing in the JWT library refuses to make it."""
    return f"{b64url_json(header)}.{b64url_json(claims)}.{b64url(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class RsaKey:
    kid: str
    private_pem: bytes
    public_pem: bytes
    jwk: dict[str, Any]

    def sign(self, claims: dict[str, Any], *, kid: str | None = None, algorithm: str = "RS256") -> str:
        token: str = jose_jwt.encode(
            claims, self.private_pem.decode(), algorithm=algorithm, headers={"kid": kid or self.kid}
        )
        return token


@cache
def rsa_key(kid: str) -> RsaKey:
    """An RSA key per kid, made once per test run (generation is the slow part)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = private.public_key().public_numbers()
    # The JWK is built from the key numbers with `cryptography`, independently of python-jose.
    jwk = {
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "alg": "RS256",
        "n": _int_b64(numbers.n),
        "e": _int_b64(numbers.e),
    }
    return RsaKey(
        kid=kid,
        private_pem=private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        public_pem=private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        jwk=jwk,
    )


class FakeClock:
    def __init__(self, start: float = 10_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def assert_unauthorized(response: httpx.Response, *fragments: str, token: str | None = None) -> str:
    body = assert_problem(response, 401)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer"), response.headers
    assert body["type"] == "https://samplan.se/problems/unauthorized"
    detail = str(body["detail"])
    assert detail, body
    for fragment in fragments:
        assert fragment.lower() in detail.lower(), detail
    if token:
        assert token not in response.text  # the refusal never echoes the token
    return detail


async def users_with_subject(session: AsyncSession, subject: str) -> int:
    await bind_tenant(session, SYSTEM)  # the app's sessions may have changed the connection's scope
    count = await session.scalar(select(func.count()).select_from(User).where(col(User.subject) == subject))
    return int(count or 0)


def now() -> int:
    return int(time.time())


# --- fixtures -----------------------------------------------------------------------------------


@dataclass
class ExternalIdp:
    """An identity provider outside Samplan, trusted for one organisation, publishing a JWKS via respx."""

    org: OrgRef
    router: respx.MockRouter
    route: respx.Route
    published: list[dict[str, Any]] = field(default_factory=list)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        t = now()
        claims: dict[str, Any] = {
            "iss": IDP,
            "aud": "samplan",
            "sub": f"ext-{uuid.uuid4().hex[:12]}",
            "iat": t,
            "nbf": t,
            "exp": t + 600,
            "org": self.org.org_number,
            "roles": ["handlaggare"],
            "name": "Extern Användare",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def publish(self, *keys: RsaKey) -> None:
        self.published[:] = [k.jwk for k in keys]

    @property
    def fetches(self) -> int:
        return self.route.call_count


@pytest.fixture
def clock(app: FastAPI) -> FakeClock:
    fake = FakeClock()
    app.state.jwks.clock = fake
    return fake


@pytest.fixture
async def idp(session: AsyncSession, orgs: dict[str, OrgRef]) -> AsyncIterator[ExternalIdp]:
    org = orgs[IDP_ORG]
    session.add(TrustedIssuer(organisation_id=org.id, issuer=IDP, audience="samplan", jwks_url=JWKS_URL))
    await session.flush()
    with respx.mock(base_url=IDP, assert_all_called=False) as router:
        published: list[dict[str, Any]] = []
        route = router.get("/jwks").mock(
            side_effect=lambda request: httpx.Response(200, json={"keys": published})
        )
        external = ExternalIdp(org=org, router=router, route=route, published=published)
        external.publish(rsa_key("idp-key-1"))
        yield external


@pytest.fixture
def dev_sign(settings: Settings, dev_issuer: DevIssuer) -> Callable[..., str]:
    """Sign arbitrary claims with the dev issuer's real key (read from the data folder)."""
    pem = settings.dev_key_path.read_bytes()

    def sign(claims: dict[str, Any], *, kid: str | None = None) -> str:
        return tokens.sign(claims, pem, kid=kid or dev_issuer.kid)

    return sign


@pytest.fixture
def dev_claims(orgs: dict[str, OrgRef]) -> Callable[..., dict[str, Any]]:
    def make(**overrides: Any) -> dict[str, Any]:
        t = now()
        claims: dict[str, Any] = {
            "iss": DEV_ISSUER,
            "aud": "samplan",
            "sub": f"dev-{uuid.uuid4().hex[:12]}",
            "iat": t,
            "nbf": t,
            "exp": t + 600,
            "org": orgs[OTHER_ORG].org_number,
            "roles": ["handlaggare"],
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    return make


DevSign = Callable[..., str]
DevClaims = Callable[..., dict[str, Any]]


# --- no token, wrong scheme, malformed -----------------------------------------------------------


async def test_no_token_is_refused(client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.get(ME), "bearer token is required")


@pytest.mark.parametrize("scheme", ["Token", "Basic", "JWT", "Bearer:"])
async def test_wrong_scheme_is_refused_even_with_a_valid_token(
    client: httpx.AsyncClient, token: TokenFactory, scheme: str
) -> None:
    good = token(OTHER_ORG, "handlaggare")
    assert (await client.get(ME, headers=bearer(good))).status_code == 200  # the token itself is fine
    response = await client.get(ME, headers={"Authorization": f"{scheme} {good}"})
    assert_unauthorized(response, "bearer token is required", token=good)


@pytest.mark.parametrize("value", ["", "Bearer", "Bearer ", "Bearer    "])
async def test_bearer_without_a_token_is_refused(client: httpx.AsyncClient, value: str) -> None:
    assert_unauthorized(await client.get(ME, headers={"Authorization": value}), "bearer token is required")


async def test_token_without_a_scheme_is_refused(client: httpx.AsyncClient, token: TokenFactory) -> None:
    good = token(OTHER_ORG, "handlaggare")
    assert_unauthorized(await client.get(ME, headers={"Authorization": good}), "bearer token", token=good)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("not-a-jwt", "well-formed"),
        ("a.b.c", "well-formed"),
        ("a.b", "well-formed"),
        ("...", "well-formed"),
        ("eyJhbGciOiJFUzI1NiJ9.%%%.abc", "payload is not readable"),
        (f"{b64url(b'not json')}.{b64url_json({'sub': 'x'})}.", "well-formed"),
        (f"{b64url_json(['ES256'])}.{b64url_json({'sub': 'x'})}.", "well-formed"),
        (f"{b64url_json({'alg': 'ES256', 'kid': 'k'})}.{b64url_json(['a', 'list'])}.", "payload"),
        (f"{b64url_json({'alg': 'ES256', 'kid': 'k'})}.{b64url(b'{broken')}.", "payload"),
    ],
)
async def test_malformed_token_is_refused(client: httpx.AsyncClient, raw: str, fragment: str) -> None:
    assert_unauthorized(await client.get(ME, headers=bearer(raw)), fragment)


async def test_tampered_payload_breaks_the_signature(
    client: httpx.AsyncClient, session: AsyncSession, dev_sign: DevSign, dev_claims: DevClaims
) -> None:
    claims = dev_claims(roles=["lasare"])
    good = dev_sign(claims)
    header, _, signature = good.split(".")
    forged = f"{header}.{b64url_json({**claims, 'roles': ['platform_admin', 'org_admin']})}.{signature}"
    assert_unauthorized(await client.get(ME, headers=bearer(forged)), "signature is not valid", token=forged)
    assert await users_with_subject(session, claims["sub"]) == 0
    # The untampered token is accepted, so it was the tampering that was refused.
    assert (await client.get(ME, headers=bearer(good))).json()["roles"] == ["lasare"]


async def test_token_without_kid_is_refused(
    client: httpx.AsyncClient, settings: Settings, dev_claims: DevClaims
) -> None:
    no_kid = jose_jwt.encode(dev_claims(), settings.dev_key_path.read_text(), algorithm="ES256")
    assert_unauthorized(await client.get(ME, headers=bearer(no_kid)), "kid")


# --- time claims ----------------------------------------------------------------------------------


async def test_expired_token_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    dev_sign: DevSign,
    dev_claims: DevClaims,
) -> None:
    t = now()
    past = t - settings.clock_skew_seconds - 60
    claims = dev_claims(iat=past - 600, nbf=past - 600, exp=past)
    expired = dev_sign(claims)
    assert_unauthorized(await client.get(ME, headers=bearer(expired)), "expired", token=expired)
    assert await users_with_subject(session, claims["sub"]) == 0


async def test_expired_token_within_clock_skew_is_still_accepted(
    client: httpx.AsyncClient, settings: Settings, dev_sign: DevSign, dev_claims: DevClaims
) -> None:
    assert settings.clock_skew_seconds >= 20
    t = now()
    claims = dev_claims(iat=t - 600, nbf=t - 600, exp=t - 5)
    response = await client.get(ME, headers=bearer(dev_sign(claims)))
    assert response.status_code == 200, response.text


async def test_token_not_yet_valid_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    dev_sign: DevSign,
    dev_claims: DevClaims,
) -> None:
    t = now()
    future = t + settings.clock_skew_seconds + 600
    claims = dev_claims(iat=t, nbf=future, exp=future + 600)
    early = dev_sign(claims)
    assert_unauthorized(await client.get(ME, headers=bearer(early)), "not yet valid", "nbf", token=early)
    assert await users_with_subject(session, claims["sub"]) == 0


async def test_token_without_exp_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, dev_sign: DevSign, dev_claims: DevClaims
) -> None:
    claims = dev_claims()
    del claims["exp"]
    forever = dev_sign(claims)
    # A missing claim is a claim problem, not a signature problem.
    detail = assert_unauthorized(await client.get(ME, headers=bearer(forever)), "'exp'", token=forever)
    assert "signature" not in detail
    assert await users_with_subject(session, claims["sub"]) == 0


async def test_token_without_sub_is_refused(
    client: httpx.AsyncClient, dev_sign: DevSign, dev_claims: DevClaims
) -> None:
    claims = dev_claims()
    del claims["sub"]
    detail = assert_unauthorized(await client.get(ME, headers=bearer(dev_sign(claims))), "'sub'")
    assert "signature" not in detail


@pytest.mark.parametrize(
    "bad",
    [{"exp": [1]}, {"exp": {}}, {"exp": "soon"}, {"exp": float("inf")}, {"nbf": {"a": 1}}, {"iat": [0]}],
    ids=["exp-list", "exp-object", "exp-string", "exp-infinite", "nbf-object", "iat-list"],
)
async def test_non_numeric_time_claims_are_refused_not_500(
    client: httpx.AsyncClient, dev_sign: DevSign, dev_claims: DevClaims, bad: dict[str, Any]
) -> None:
    claims = dev_claims()
    claims.update(bad)
    assert_unauthorized(await client.get(ME, headers=bearer(dev_sign(claims))), "not acceptable")


async def test_null_exp_is_refused_not_500(
    client: httpx.AsyncClient, dev_sign: DevSign, dev_claims: DevClaims
) -> None:
    claims = dev_claims()
    claims["exp"] = None  # dev_claims drops None overrides, so set it afterwards
    assert_unauthorized(await client.get(ME, headers=bearer(dev_sign(claims))), "not acceptable")


# --- issuer, audience, organisation ---------------------------------------------------------------


async def test_token_from_an_untrusted_issuer_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    dev_sign: DevSign,
    dev_claims: DevClaims,
    idp: ExternalIdp,
) -> None:
    claims = dev_claims(iss="https://nobody-trusts.example.test")
    stranger = dev_sign(claims)
    assert_unauthorized(
        await client.get(ME, headers=bearer(stranger)), "issuer is not trusted", token=stranger
    )
    # Also with a key the stranger would publish: nothing is fetched for an issuer nobody trusts.
    ext = rsa_key("idp-key-1").sign({**claims, "org": idp.org.org_number})
    assert_unauthorized(await client.get(ME, headers=bearer(ext)), "issuer is not trusted")
    assert idp.fetches == 0
    assert await users_with_subject(session, claims["sub"]) == 0


async def test_token_without_issuer_is_refused(
    client: httpx.AsyncClient, dev_sign: DevSign, dev_claims: DevClaims
) -> None:
    claims = dev_claims()
    del claims["iss"]
    assert_unauthorized(await client.get(ME, headers=bearer(dev_sign(claims))), "no issuer")


async def test_dev_token_with_the_wrong_audience_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, dev_sign: DevSign, dev_claims: DevClaims
) -> None:
    claims = dev_claims(aud="some-other-service")
    wrong = dev_sign(claims)
    assert_unauthorized(await client.get(ME, headers=bearer(wrong)), "audience", token=wrong)
    assert await users_with_subject(session, claims["sub"]) == 0


async def test_external_token_with_the_wrong_audience_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, idp: ExternalIdp
) -> None:
    claims = idp.claims(aud="another-app")
    wrong = rsa_key("idp-key-1").sign(claims)
    assert_unauthorized(await client.get(ME, headers=bearer(wrong)), "audience", token=wrong)
    assert await users_with_subject(session, claims["sub"]) == 0
    # Right key, right issuer: only the audience was wrong.
    good = rsa_key("idp-key-1").sign(idp.claims())
    assert (await client.get(ME, headers=bearer(good))).status_code == 200


async def test_external_token_claiming_another_organisation_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, orgs: dict[str, OrgRef], idp: ExternalIdp
) -> None:
    # The IdP is trusted for Huddinge only; its (validly signed) token speaks for Stockholms stad.
    claims = idp.claims(org=orgs[OTHER_ORG].org_number)
    overreach = rsa_key("idp-key-1").sign(claims)
    assert_unauthorized(
        await client.get(ME, headers=bearer(overreach)), "not trusted for the organisation", token=overreach
    )
    assert idp.fetches == 0
    assert await users_with_subject(session, claims["sub"]) == 0


async def test_dev_token_for_an_unknown_organisation_is_refused(
    client: httpx.AsyncClient, dev_sign: DevSign, dev_claims: DevClaims
) -> None:
    # A well-formed organisationsnummer (valid check digit) that is no organisation in Samplan.
    assert_unauthorized(
        await client.get(ME, headers=bearer(dev_sign(dev_claims(org="2120000159")))), "not trusted"
    )


@pytest.mark.parametrize("org", ["", "12345", "abcdefghij", 2120000142])
async def test_token_with_an_invalid_org_claim_is_refused(
    client: httpx.AsyncClient, dev_sign: DevSign, dev_claims: DevClaims, org: object
) -> None:
    assert_unauthorized(await client.get(ME, headers=bearer(dev_sign(dev_claims(org=org)))), "'org'")


async def test_external_token_is_accepted(
    client: httpx.AsyncClient, session: AsyncSession, idp: ExternalIdp
) -> None:
    claims = idp.claims(roles=["samordnare", "lasare", "not-a-samplan-role"], unit="SE2120000126-VUX1")
    good = rsa_key("idp-key-1").sign(claims)
    response = await client.get(ME, headers=bearer(good))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["organisation_id"] == str(idp.org.id)
    assert body["org_number"] == idp.org.org_number
    assert body["organisation_kind"] == "kommun"
    assert body["issuer"] == IDP
    assert body["subject"] == claims["sub"]
    assert body["name"] == "Extern Användare"
    assert body["unit"] == "SE2120000126-VUX1"
    assert sorted(body["roles"]) == ["lasare", "samordnare"]
    assert idp.fetches == 1
    assert await users_with_subject(session, claims["sub"]) == 1
    # The second request is served from the JWKS cache, and the user is not registered twice.
    again = await client.get(ME, headers=bearer(good))
    assert again.status_code == 200
    assert again.json()["user_id"] == body["user_id"]
    assert idp.fetches == 1
    assert await users_with_subject(session, claims["sub"]) == 1


async def test_external_token_with_a_hyphenated_org_number_is_accepted(
    client: httpx.AsyncClient, idp: ExternalIdp
) -> None:
    number = idp.org.org_number
    claims = idp.claims(org=f"{number[:6]}-{number[6:]}")
    response = await client.get(ME, headers=bearer(rsa_key("idp-key-1").sign(claims)))
    assert response.status_code == 200, response.text
    assert response.json()["org_number"] == number


# --- keys -------------------------------------------------------------------------------------------


async def test_unknown_kid_is_refused_after_exactly_one_refresh(
    client: httpx.AsyncClient, session: AsyncSession, idp: ExternalIdp, clock: FakeClock
) -> None:
    assert (await client.get(ME, headers=bearer(rsa_key("idp-key-1").sign(idp.claims())))).status_code == 200
    assert idp.fetches == 1
    clock.advance(120)  # past min_refresh_seconds, within ttl_seconds
    claims = idp.claims()
    stray = rsa_key("unpublished-key").sign(claims)
    assert_unauthorized(
        await client.get(ME, headers=bearer(stray)), "key the issuer does not publish", token=stray
    )
    assert idp.fetches == 2  # one refresh for the unknown kid, and no more
    # Trying again at once does not hammer the IdP.
    assert_unauthorized(await client.get(ME, headers=bearer(stray)), "does not publish")
    assert idp.fetches == 2
    assert await users_with_subject(session, claims["sub"]) == 0


async def test_unknown_kid_on_an_empty_cache_fetches_once(
    client: httpx.AsyncClient, idp: ExternalIdp, clock: FakeClock
) -> None:
    stray = rsa_key("unpublished-key").sign(idp.claims())
    assert_unauthorized(await client.get(ME, headers=bearer(stray)), "does not publish")
    assert idp.fetches == 1


async def test_published_kid_with_a_foreign_signature_is_refused(
    client: httpx.AsyncClient, idp: ExternalIdp
) -> None:
    # An attacker's key, but labelled with the IdP's kid.
    forged = rsa_key("attacker").sign(idp.claims(), kid="idp-key-1")
    assert_unauthorized(await client.get(ME, headers=bearer(forged)), "signature is not valid", token=forged)


async def test_unknown_kid_for_the_dev_issuer_is_refused(
    client: httpx.AsyncClient, dev_sign: DevSign, dev_claims: DevClaims
) -> None:
    stray = dev_sign(dev_claims(), kid="not-the-dev-kid")
    assert_unauthorized(await client.get(ME, headers=bearer(stray)), "key the issuer does not publish")


async def test_rotated_out_key_is_refused_once_the_cache_refreshes(
    client: httpx.AsyncClient, idp: ExternalIdp, clock: FakeClock, app: FastAPI
) -> None:
    old, new = rsa_key("idp-key-1"), rsa_key("idp-key-2")
    old_token = old.sign(idp.claims(sub="replayer"))
    assert (await client.get(ME, headers=bearer(old_token))).status_code == 200
    assert idp.fetches == 1

    idp.publish(new)  # the IdP rotates: only the new key is published from now on
    clock.advance(app.state.jwks.min_refresh_seconds + 1)
    new_token = new.sign(idp.claims(sub="fresh"))
    # The unknown new kid triggers a refresh, which also drops the old key from the cache.
    assert (await client.get(ME, headers=bearer(new_token))).status_code == 200
    assert idp.fetches == 2
    assert_unauthorized(await client.get(ME, headers=bearer(old_token)), "does not publish", token=old_token)
    assert idp.fetches == 2  # refused from the refreshed cache, within the refresh interval
    assert (await client.get(ME, headers=bearer(new_token))).status_code == 200


async def test_rotated_out_key_is_refused_after_the_cache_expires(
    client: httpx.AsyncClient, idp: ExternalIdp, clock: FakeClock, app: FastAPI
) -> None:
    old, new = rsa_key("idp-key-1"), rsa_key("idp-key-2")
    old_token = old.sign(idp.claims(sub="replayer"))
    assert (await client.get(ME, headers=bearer(old_token))).status_code == 200
    idp.publish(new)
    clock.advance(30)
    # Before the cache may refresh, the cached old key still verifies (the documented window).
    assert (await client.get(ME, headers=bearer(old_token))).status_code == 200
    assert idp.fetches == 1

    clock.advance(app.state.jwks.ttl_seconds)
    # Only the old token is replayed: the expired cache is refetched and the old key is gone.
    assert_unauthorized(await client.get(ME, headers=bearer(old_token)), "does not publish")
    assert idp.fetches == 2
    new_token = new.sign(idp.claims(sub="fresh"))
    assert (await client.get(ME, headers=bearer(new_token))).status_code == 200
    assert idp.fetches == 2


async def test_malformed_published_key_is_refused_not_500(
    client: httpx.AsyncClient, idp: ExternalIdp
) -> None:
    idp.published[:] = [{"kty": "RSA", "kid": "idp-key-1", "n": 5, "e": "AQAB"}]
    response = await client.get(ME, headers=bearer(rsa_key("idp-key-1").sign(idp.claims())))
    assert_unauthorized(response, "key is not usable")


async def test_published_private_key_is_refused(client: httpx.AsyncClient, idp: ExternalIdp) -> None:
    leaked = dict(rsa_key("idp-key-1").jwk, d="AQAB")
    idp.published[:] = [leaked]
    response = await client.get(ME, headers=bearer(rsa_key("idp-key-1").sign(idp.claims())))
    assert_unauthorized(response, "private key")


# --- algorithms -----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
async def test_alg_none_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    idp: ExternalIdp,
    dev_issuer: DevIssuer,
    dev_claims: DevClaims,
    alg: str,
) -> None:
    for header, claims in (
        ({"alg": alg, "typ": "JWT", "kid": dev_issuer.kid}, dev_claims()),
        ({"alg": alg, "typ": "JWT", "kid": "idp-key-1"}, idp.claims()),
    ):
        unsigned = craft(header, claims)
        assert unsigned.endswith(".")
        assert_unauthorized(await client.get(ME, headers=bearer(unsigned)), "algorithm is not allowed")
        assert await users_with_subject(session, claims["sub"]) == 0
    assert idp.fetches == 0


async def test_alg_missing_is_refused(
    client: httpx.AsyncClient, dev_issuer: DevIssuer, dev_claims: DevClaims
) -> None:
    unsigned = craft({"typ": "JWT", "kid": dev_issuer.kid}, dev_claims())
    assert_unauthorized(await client.get(ME, headers=bearer(unsigned)), "algorithm is not allowed")


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


async def test_hmac_signed_with_the_issuers_public_key_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, idp: ExternalIdp
) -> None:
    public_pem = rsa_key("idp-key-1").public_pem  # anyone can read this from the JWKS
    claims = idp.claims(roles=["platform_admin"])
    confused = hs256({"alg": "HS256", "typ": "JWT", "kid": "idp-key-1"}, claims, public_pem)
    assert_unauthorized(
        await client.get(ME, headers=bearer(confused)), "algorithm is not allowed", token=confused
    )
    # The same trick with the header claiming RS256 fails on the signature instead.
    lying = hs256({"alg": "RS256", "typ": "JWT", "kid": "idp-key-1"}, claims, public_pem)
    assert_unauthorized(await client.get(ME, headers=bearer(lying)), "signature is not valid", token=lying)
    assert await users_with_subject(session, claims["sub"]) == 0


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_hmac_signed_with_the_dev_issuers_public_key_is_refused(
    client: httpx.AsyncClient, dev_issuer: DevIssuer, settings: Settings, dev_claims: DevClaims, alg: str
) -> None:
    pem = settings.dev_key_path.read_bytes()
    public_pem = (
        serialization.load_pem_private_key(pem, password=None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    header = {"alg": alg, "typ": "JWT", "kid": dev_issuer.kid}
    signing_input = f"{b64url_json(header)}.{b64url_json(dev_claims())}"
    confused = f"{signing_input}.{b64url(hmac.new(public_pem, signing_input.encode(), digest).digest())}"
    assert_unauthorized(await client.get(ME, headers=bearer(confused)), "algorithm is not allowed")


async def test_header_algorithm_not_matching_the_key_type_is_refused(
    client: httpx.AsyncClient, idp: ExternalIdp
) -> None:
    # The IdP publishes an RSA key under this kid; the token claims to be ECDSA.
    claims = idp.claims()
    mismatched = craft({"alg": "ES256", "kid": "idp-key-1"}, claims, b"\x00" * 64)
    assert_unauthorized(
        await client.get(ME, headers=bearer(mismatched)), "does not match the token algorithm"
    )


async def test_key_published_for_another_algorithm_is_refused(
    client: httpx.AsyncClient, idp: ExternalIdp
) -> None:
    key = rsa_key("idp-key-1")
    idp.published[:] = [dict(key.jwk, alg="RS512")]
    response = await client.get(ME, headers=bearer(key.sign(idp.claims(), algorithm="RS256")))
    assert_unauthorized(response, "another algorithm")


# --- roles ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("roles", [[], ["admin", "superuser"], [None, 3], ["HANDLAGGARE"]])
async def test_token_without_a_samplan_role_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    dev_sign: DevSign,
    dev_claims: DevClaims,
    roles: list[Any],
) -> None:
    claims = dev_claims(roles=roles)
    assert_unauthorized(await client.get(ME, headers=bearer(dev_sign(claims))), "no Samplan role")
    assert await users_with_subject(session, claims["sub"]) == 0


async def test_token_without_roles_claim_is_refused(
    client: httpx.AsyncClient, dev_sign: DevSign, dev_claims: DevClaims
) -> None:
    claims = dev_claims()
    del claims["roles"]
    assert_unauthorized(await client.get(ME, headers=bearer(dev_sign(claims))), "no Samplan role")


async def test_roles_claim_must_be_a_list(
    client: httpx.AsyncClient, dev_sign: DevSign, dev_claims: DevClaims
) -> None:
    claims = dev_claims(roles="handlaggare")
    assert_unauthorized(await client.get(ME, headers=bearer(dev_sign(claims))), "'roles'", "list")


async def test_external_token_without_a_samplan_role_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, idp: ExternalIdp
) -> None:
    claims = idp.claims(roles=["Employee", "Domain Users"])
    assert_unauthorized(
        await client.get(ME, headers=bearer(rsa_key("idp-key-1").sign(claims))), "no Samplan role"
    )
    assert await users_with_subject(session, claims["sub"]) == 0


@pytest.mark.parametrize("county", [None, "", "99", "1", "001", "AB", 1])
async def test_rss_token_without_a_valid_county_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    dev_sign: DevSign,
    dev_claims: DevClaims,
    orgs: dict[str, OrgRef],
    county: object,
) -> None:
    claims = dev_claims(org=orgs["region-sthlm"].org_number, roles=["rss"])
    if county is not None:
        claims["county"] = county
    assert_unauthorized(await client.get(ME, headers=bearer(dev_sign(claims))), "'rss'", "'county'")
    assert await users_with_subject(session, claims["sub"]) == 0


async def test_rss_token_with_a_county_is_accepted(client: httpx.AsyncClient, auth: AuthFactory) -> None:
    response = await client.get(ME, headers=auth("region-sthlm", "rss", county="01"))
    assert response.status_code == 200, response.text
    assert response.json()["county"] == "01"
    assert response.json()["roles"] == ["rss"]


async def test_county_is_ignored_without_the_rss_role(client: httpx.AsyncClient, auth: AuthFactory) -> None:
    response = await client.get(ME, headers=auth("region-sthlm", "handlaggare", county="99"))
    assert response.status_code == 200, response.text
    assert response.json()["county"] is None


# --- platform_admin -------------------------------------------------------------------------------


@pytest.mark.parametrize("org_key", ["region-sthlm", "sthlm-stad", "uppsala"])
async def test_platform_admin_from_any_demo_org_in_dev_without_operator(
    client: httpx.AsyncClient, settings: Settings, auth: AuthFactory, orgs: dict[str, OrgRef], org_key: str
) -> None:
    assert settings.env == "dev" and not settings.operator_org_number
    response = await client.get(ME, headers=auth(org_key, "platform_admin"))
    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["platform_admin"]
    assert response.json()["organisation_id"] == str(orgs[org_key].id)


@pytest.fixture
async def operator_client(
    test_database: TestDatabase, database: Database
) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose operator is Region Stockholm; it shares the dev issuer key and the test transaction."""
    application = create_app(test_database.settings(operator_org_number="2321000016"), database=database)
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://samplan.test") as c:
            yield c
    finally:
        await application.state.http.aclose()


async def test_platform_admin_only_from_the_operator_when_one_is_set(
    operator_client: httpx.AsyncClient,
    session: AsyncSession,
    auth: AuthFactory,
    token: TokenFactory,
    orgs: dict[str, OrgRef],
) -> None:
    operator = await operator_client.get(ME, headers=auth("region-sthlm", "platform_admin"))
    assert operator.status_code == 200, operator.text
    assert operator.json()["organisation_id"] == str(orgs["region-sthlm"].id)

    for org_key in ("sthlm-stad", "region-uppsala"):
        impostor = token(org_key, "platform_admin", "handlaggare", subject=f"impostor-{org_key}")
        assert_unauthorized(
            await operator_client.get(ME, headers=bearer(impostor)), "operating organisation", token=impostor
        )
        assert await users_with_subject(session, f"impostor-{org_key}") == 0
        # The same organisation's ordinary roles still work on that app.
        assert (await operator_client.get(ME, headers=auth(org_key, "handlaggare"))).status_code == 200


async def test_operator_setting_accepts_a_hyphenated_org_number(
    test_database: TestDatabase, database: Database, auth: AuthFactory
) -> None:
    application = create_app(test_database.settings(operator_org_number="232100-0016"), database=database)
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://samplan.test") as c:
            assert (await c.get(ME, headers=auth("region-sthlm", "platform_admin"))).status_code == 200
            assert_unauthorized(await c.get(ME, headers=auth("huddinge", "platform_admin")), "operating")
    finally:
        await application.state.http.aclose()


# --- tokens.verify directly (defence in depth behind the header check) ---------------------------


def _verify(token: str, jwk: dict[str, Any], algorithm: str) -> dict[str, Any]:
    return tokens.verify(token, jwk, algorithm=algorithm, audience="samplan", issuer=IDP, leeway_seconds=30)


def _claims() -> dict[str, Any]:
    t = now()
    return {"iss": IDP, "aud": "samplan", "sub": "u", "exp": t + 60, "org": "2120000126", "roles": ["lasare"]}


def test_verify_accepts_a_good_rs256_token() -> None:
    key = rsa_key("idp-key-1")
    assert _verify(key.sign(_claims()), key.jwk, "RS256")["sub"] == "u"


@pytest.mark.parametrize("alg", ["HS256", "none", "PS256", "EdDSA"])
def test_verify_refuses_algorithms_outside_the_allow_list(alg: str) -> None:
    key = rsa_key("idp-key-1")
    confused = hs256({"alg": "HS256", "kid": key.kid}, _claims(), key.public_pem)
    with pytest.raises(tokens.TokenError, match="algorithm is not allowed"):
        _verify(confused, key.jwk, alg)


def test_verify_refuses_a_symmetric_jwk() -> None:
    secret = rsa_key("idp-key-1").public_pem
    oct_jwk = {"kty": "oct", "kid": "idp-key-1", "k": b64url(secret)}
    confused = hs256({"alg": "HS256", "kid": "idp-key-1"}, _claims(), secret)
    with pytest.raises(tokens.TokenError, match="does not match"):
        _verify(confused, oct_jwk, "RS256")


def test_unverified_header_refuses_hmac_and_none() -> None:
    for alg in ("HS256", "none"):
        with pytest.raises(tokens.TokenError, match="algorithm is not allowed"):
            tokens.unverified_header(craft({"alg": alg, "kid": "k"}, _claims()))
    assert tokens.unverified_header(rsa_key("idp-key-1").sign(_claims()))["kid"] == "idp-key-1"


def test_dev_public_jwk_carries_no_private_part() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    jwk = tokens.public_jwk(pem)
    assert "d" not in jwk and jwk["kty"] == "EC" and jwk["alg"] == "ES256" and jwk["kid"]
    signed = tokens.sign(_claims(), pem, kid=jwk["kid"])
    assert _verify(signed, jwk, "ES256")["roles"] == ["lasare"]


async def test_a_remembered_token_still_expires_on_time(app, dev_issuer, orgs) -> None:
    """Verified tokens are remembered (docs/performance.md), never past their `exp` plus the
    allowed clock skew."""
    import asyncio

    from app.errors import Unauthorized

    authenticator = app.state.authenticator
    authenticator.settings = authenticator.settings.model_copy(update={"clock_skew_seconds": 0})
    token = dev_issuer.mint(
        org_number=orgs["sthlm-stad"].org_number, roles=["handlaggare"], subject="short-lived", ttl_seconds=2
    )
    first = await authenticator.authenticate(token)
    assert await authenticator.authenticate(token) is first  # remembered: the same principal
    await asyncio.sleep(3.1)  # jose compares whole seconds: exp is refused from the second after it
    with pytest.raises(Unauthorized):
        await authenticator.authenticate(token)


async def test_a_token_is_verified_once_then_remembered(app, dev_issuer, orgs, monkeypatch) -> None:
    from app.auth import tokens

    calls = []
    real_verify = tokens.verify

    def counting_verify(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real_verify(*args, **kwargs)

    monkeypatch.setattr(tokens, "verify", counting_verify)
    authenticator = app.state.authenticator
    token = dev_issuer.mint(org_number=orgs["huddinge"].org_number, roles=["handlaggare"], subject="once")
    for _ in range(5):
        await authenticator.authenticate(token)
    assert len(calls) == 1
    # A different token (even of the same user) is verified on its own.
    other = dev_issuer.mint(
        org_number=orgs["huddinge"].org_number, roles=["handlaggare"], subject="once", ttl_seconds=60
    )
    await authenticator.authenticate(other)
    assert len(calls) == 2
