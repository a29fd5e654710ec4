"""`JwksCache` on its own (an httpx client, respx and a fake clock), and through the app when an
external issuer's JWKS cannot be fetched (503 problem+json, never 500)."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jose import jwt as jose_jwt
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.jwks import JwksCache, JwksUnavailable
from app.db import SYSTEM, bind_tenant
from app.models.identity import TrustedIssuer, User
from tests.conftest import OrgRef, assert_problem

IDP = "https://idp.example.test"
JWKS_URL = f"{IDP}/jwks"
OTHER_JWKS_URL = f"{IDP}/other/jwks"
TTL = 3600.0
MIN_REFRESH = 60.0


class FakeClock:
    def __init__(self, start: float = 50_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def jwk(kid: str, n: str = "AQAB") -> dict[str, Any]:
    """Key material does not matter to the cache; only the kid and the dict identity do."""
    return {"kty": "RSA", "kid": kid, "n": n, "e": "AQAB"}


class Jwks:
    """A mutable JWKS document served by respx; `failure` replaces the answer (a response or an error)."""

    def __init__(self, router: respx.MockRouter, path: str = "/jwks") -> None:
        self.keys: list[dict[str, Any]] = [jwk("k1"), jwk("k2")]
        self.failure: httpx.Response | Exception | None = None
        self.route = router.get(path).mock(side_effect=self._respond)

    def _respond(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["accept"] == "application/json"
        if isinstance(self.failure, Exception):
            raise self.failure
        if self.failure is not None:
            return self.failure
        return httpx.Response(200, json={"keys": self.keys})

    @property
    def fetches(self) -> int:
        return self.route.call_count


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=IDP, assert_all_called=False) as mock_router:
        yield mock_router


@pytest.fixture
def idp(router: respx.MockRouter) -> Jwks:
    return Jwks(router)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(http: httpx.AsyncClient, clock: FakeClock, router: respx.MockRouter) -> JwksCache:
    return JwksCache(http, ttl_seconds=TTL, min_refresh_seconds=MIN_REFRESH, clock=clock)


FAILURES: list[httpx.Response | Exception] = [
    httpx.Response(500, text="oops"),
    httpx.Response(503),
    httpx.Response(404),
    httpx.Response(302, headers={"Location": f"{IDP}/elsewhere"}),
    httpx.Response(200, text="<html>not json</html>"),
    httpx.ConnectError("connection refused"),
    httpx.ReadTimeout("too slow"),
]
FAILURE_IDS = ["500", "503", "404", "redirect", "not-json", "connect-error", "timeout"]


# --- caching ------------------------------------------------------------------------------------


async def test_first_lookup_fetches_once_and_the_second_is_cached(cache: JwksCache, idp: Jwks) -> None:
    assert await cache.key(JWKS_URL, "k1") == jwk("k1")
    assert idp.fetches == 1
    assert await cache.key(JWKS_URL, "k1") == jwk("k1")
    assert await cache.key(JWKS_URL, "k2") == jwk("k2")  # the same document holds k2
    assert idp.fetches == 1


async def test_cache_is_kept_per_url(cache: JwksCache, idp: Jwks, router: respx.MockRouter) -> None:
    other = Jwks(router, "/other/jwks")
    other.keys = [jwk("k1", n="OTHER")]
    assert (await cache.key(JWKS_URL, "k1"))["n"] == "AQAB"  # type: ignore[index]
    assert (await cache.key(OTHER_JWKS_URL, "k1"))["n"] == "OTHER"  # type: ignore[index]
    assert (await cache.key(JWKS_URL, "k1"))["n"] == "AQAB"  # type: ignore[index]
    assert (idp.fetches, other.fetches) == (1, 1)


async def test_concurrent_first_lookups_fetch_once(cache: JwksCache, idp: Jwks) -> None:
    results = await asyncio.gather(*(cache.key(JWKS_URL, "k1") for _ in range(20)))
    assert all(r == jwk("k1") for r in results)
    assert idp.fetches == 1


async def test_unknown_kid_triggers_exactly_one_refresh(
    cache: JwksCache, idp: Jwks, clock: FakeClock
) -> None:
    await cache.key(JWKS_URL, "k1")
    clock.advance(MIN_REFRESH + 1)
    assert await cache.key(JWKS_URL, "nope") is None
    assert idp.fetches == 2


async def test_unknown_kid_refresh_finds_a_newly_published_key(
    cache: JwksCache, idp: Jwks, clock: FakeClock
) -> None:
    await cache.key(JWKS_URL, "k1")
    idp.keys.append(jwk("k3"))
    clock.advance(MIN_REFRESH + 1)
    assert await cache.key(JWKS_URL, "k3") == jwk("k3")
    assert idp.fetches == 2
    assert await cache.key(JWKS_URL, "k3") == jwk("k3")
    assert idp.fetches == 2


async def test_unknown_kid_on_an_empty_cache_fetches_once(cache: JwksCache, idp: Jwks) -> None:
    assert await cache.key(JWKS_URL, "nope") is None
    assert idp.fetches == 1
    # The fetch just happened, so a second unknown kid does not fetch again.
    assert await cache.key(JWKS_URL, "nope-either") is None
    assert idp.fetches == 1


async def test_second_unknown_kid_within_min_refresh_does_not_fetch(
    cache: JwksCache, idp: Jwks, clock: FakeClock
) -> None:
    await cache.key(JWKS_URL, "k1")
    clock.advance(MIN_REFRESH + 1)
    assert await cache.key(JWKS_URL, "unknown-a") is None
    assert idp.fetches == 2
    idp.keys.append(jwk("unknown-b"))  # published now, but the cache may not look yet
    clock.advance(MIN_REFRESH - 1)
    assert await cache.key(JWKS_URL, "unknown-b") is None
    assert await cache.key(JWKS_URL, "unknown-a") is None
    assert idp.fetches == 2
    # Known keys are still served meanwhile.
    assert await cache.key(JWKS_URL, "k2") == jwk("k2")
    assert idp.fetches == 2


async def test_unknown_kid_after_min_refresh_fetches_again(
    cache: JwksCache, idp: Jwks, clock: FakeClock
) -> None:
    await cache.key(JWKS_URL, "k1")
    clock.advance(MIN_REFRESH + 1)
    assert await cache.key(JWKS_URL, "unknown-a") is None
    assert idp.fetches == 2
    idp.keys.append(jwk("unknown-b"))
    clock.advance(MIN_REFRESH)  # exactly the interval since the last fetch
    assert await cache.key(JWKS_URL, "unknown-b") == jwk("unknown-b")
    assert idp.fetches == 3


async def test_a_flood_of_unknown_kids_fetches_at_most_once_per_interval(
    cache: JwksCache, idp: Jwks, clock: FakeClock
) -> None:
    await cache.key(JWKS_URL, "k1")
    for _ in range(5):
        clock.advance(MIN_REFRESH + 1)
        results = await asyncio.gather(*(cache.key(JWKS_URL, f"junk-{uuid.uuid4()}") for _ in range(10)))
        assert results == [None] * 10
    assert idp.fetches == 1 + 5


async def test_known_kid_is_refetched_after_ttl(cache: JwksCache, idp: Jwks, clock: FakeClock) -> None:
    await cache.key(JWKS_URL, "k1")
    clock.advance(TTL - 1)
    assert await cache.key(JWKS_URL, "k1") == jwk("k1")
    assert idp.fetches == 1
    idp.keys = [jwk("k1", n="ROTATED-MATERIAL"), jwk("k2")]
    clock.advance(1)
    assert await cache.key(JWKS_URL, "k1") == jwk("k1", n="ROTATED-MATERIAL")
    assert idp.fetches == 2
    assert await cache.key(JWKS_URL, "k1") == jwk("k1", n="ROTATED-MATERIAL")
    assert idp.fetches == 2


async def test_key_removed_by_the_issuer_is_gone_after_ttl(
    cache: JwksCache, idp: Jwks, clock: FakeClock
) -> None:
    assert await cache.key(JWKS_URL, "k1") is not None
    idp.keys = [jwk("k2")]
    clock.advance(TTL)
    assert await cache.key(JWKS_URL, "k1") is None
    assert idp.fetches == 2
    assert await cache.key(JWKS_URL, "k2") == jwk("k2")
    assert idp.fetches == 2


async def test_keys_without_a_string_kid_are_ignored(cache: JwksCache, idp: Jwks) -> None:
    idp.keys = [{"kty": "RSA", "n": "x", "e": "AQAB"}, {"kty": "RSA", "kid": 7}, "not-a-key", jwk("k1")]  # type: ignore[list-item]
    assert await cache.key(JWKS_URL, "k1") == jwk("k1")
    assert await cache.key(JWKS_URL, "7") is None
    assert idp.fetches == 1


# --- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", FAILURES, ids=FAILURE_IDS)
async def test_failed_refresh_after_ttl_keeps_serving_cached_keys(
    cache: JwksCache, idp: Jwks, clock: FakeClock, failure: httpx.Response | Exception
) -> None:
    assert await cache.key(JWKS_URL, "k1") == jwk("k1")
    idp.failure = failure
    clock.advance(TTL + 1)
    assert await cache.key(JWKS_URL, "k1") == jwk("k1")
    assert idp.fetches == 2  # it did try
    # The failed refresh did not extend the stale keys' life: once the IdP is back (and a refresh
    # interval has passed, should the cache ever back off), the next lookup refreshes.
    idp.failure = None
    idp.keys = [jwk("k9")]
    clock.advance(MIN_REFRESH)
    assert await cache.key(JWKS_URL, "k1") is None
    assert idp.fetches == 3


@pytest.mark.parametrize("failure", FAILURES, ids=FAILURE_IDS)
async def test_after_a_failed_refresh_the_cache_waits_before_trying_again(
    cache: JwksCache, idp: Jwks, clock: FakeClock, failure: httpx.Response | Exception
) -> None:
    await cache.key(JWKS_URL, "k1")
    idp.failure = failure
    clock.advance(TTL + 1)
    for _ in range(5):  # an outage at the issuer: requests do not each wait for a fetch
        assert await cache.key(JWKS_URL, "k1") == jwk("k1")
        assert await cache.key(JWKS_URL, "unknown") is None
        clock.advance(MIN_REFRESH / 10)
    assert idp.fetches == 2
    clock.advance(MIN_REFRESH)
    await cache.key(JWKS_URL, "k1")
    assert idp.fetches == 3


@pytest.mark.parametrize("failure", FAILURES, ids=FAILURE_IDS)
async def test_failed_refresh_for_unknown_kid_keeps_cached_keys(
    cache: JwksCache, idp: Jwks, clock: FakeClock, failure: httpx.Response | Exception
) -> None:
    await cache.key(JWKS_URL, "k1")
    idp.failure = failure
    clock.advance(MIN_REFRESH + 1)
    assert await cache.key(JWKS_URL, "unknown") is None  # not an exception: the kid is simply unknown
    assert idp.fetches == 2
    assert await cache.key(JWKS_URL, "k2") == jwk("k2")


@pytest.mark.parametrize("failure", FAILURES, ids=FAILURE_IDS)
async def test_no_cache_and_a_failing_fetch_raises(
    cache: JwksCache, idp: Jwks, failure: httpx.Response | Exception
) -> None:
    idp.failure = failure
    with pytest.raises(JwksUnavailable, match="could not fetch"):
        await cache.key(JWKS_URL, "k1")
    assert idp.fetches == 1
    # Nothing was cached: once the IdP recovers the keys are fetched.
    idp.failure = None
    assert await cache.key(JWKS_URL, "k1") == jwk("k1")
    assert idp.fetches == 2


async def test_redirects_are_not_followed(cache: JwksCache, idp: Jwks, router: respx.MockRouter) -> None:
    elsewhere = router.get("/elsewhere").mock(return_value=httpx.Response(200, json={"keys": [jwk("k1")]}))
    idp.failure = httpx.Response(302, headers={"Location": f"{IDP}/elsewhere"})
    with pytest.raises(JwksUnavailable):
        await cache.key(JWKS_URL, "k1")
    assert elsewhere.call_count == 0


def json_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"keys": null}',
        b'{"keys": {"k1": {}}}',
        b'{"keys": "k1"}',
        b'[{"kid": "k1"}]',
        b'"keys"',
        b"42",
        b"null",
    ],
    ids=["empty", "null", "object", "string", "top-level-list", "top-level-string", "number", "json-null"],
)
async def test_jwks_without_a_keys_list_is_refused(cache: JwksCache, idp: Jwks, body: bytes) -> None:
    idp.failure = json_response(body)
    with pytest.raises(JwksUnavailable, match="no 'keys' list"):
        await cache.key(JWKS_URL, "k1")
    assert idp.fetches == 1


async def test_jwks_without_a_keys_list_does_not_replace_cached_keys(
    cache: JwksCache, idp: Jwks, clock: FakeClock
) -> None:
    await cache.key(JWKS_URL, "k1")
    idp.failure = json_response(b'{"not_keys": []}')
    clock.advance(TTL + 1)
    assert await cache.key(JWKS_URL, "k1") == jwk("k1")
    assert idp.fetches == 2


async def test_empty_keys_list_is_a_valid_empty_set(cache: JwksCache, idp: Jwks) -> None:
    idp.keys = []
    assert await cache.key(JWKS_URL, "k1") is None
    assert idp.fetches == 1


# --- through the app ------------------------------------------------------------------------------


def _rsa_token(claims: dict[str, Any], kid: str) -> str:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    token: str = jose_jwt.encode(claims, pem, algorithm="RS256", headers={"kid": kid})
    return token


@pytest.fixture
async def trusted(session: AsyncSession, orgs: dict[str, OrgRef]) -> OrgRef:
    org = orgs["uppsala"]
    session.add(TrustedIssuer(organisation_id=org.id, issuer=IDP, audience="samplan", jwks_url=JWKS_URL))
    await session.flush()
    return org


def _claims(org: OrgRef) -> dict[str, Any]:
    t = int(time.time())
    return {
        "iss": IDP,
        "aud": "samplan",
        "sub": f"ext-{uuid.uuid4().hex[:12]}",
        "iat": t,
        "exp": t + 600,
        "org": org.org_number,
        "roles": ["handlaggare"],
    }


@pytest.mark.parametrize("failure", FAILURES, ids=FAILURE_IDS)
async def test_failing_jwks_for_an_external_issuer_answers_503(
    client: httpx.AsyncClient,
    session: AsyncSession,
    trusted: OrgRef,
    idp: Jwks,
    failure: httpx.Response | Exception,
) -> None:
    idp.failure = failure
    claims = _claims(trusted)
    token = _rsa_token(claims, kid="k1")
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    body = assert_problem(response, 503)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["type"] == "https://samplan.se/problems/service-unavailable"
    assert "keys cannot be fetched" in str(body["detail"])
    assert int(response.headers["retry-after"]) > 0
    assert token not in response.text
    assert idp.fetches == 1
    await bind_tenant(session, SYSTEM)
    users = await session.scalar(
        select(func.count()).select_from(User).where(col(User.subject) == claims["sub"])
    )
    assert users == 0


async def test_jwks_outage_after_keys_are_cached_does_not_lock_callers_out(
    client: httpx.AsyncClient, app: FastAPI, trusted: OrgRef, idp: Jwks
) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = private.public_key().public_numbers()

    def b64(value: int) -> str:
        return (
            base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))
            .rstrip(b"=")
            .decode()
        )

    idp.keys = [{"kty": "RSA", "kid": "live", "alg": "RS256", "n": b64(numbers.n), "e": b64(numbers.e)}]
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    token = jose_jwt.encode(_claims(trusted), pem, algorithm="RS256", headers={"kid": "live"})
    clock = FakeClock()
    app.state.jwks.clock = clock
    headers = {"Authorization": f"Bearer {token}"}
    first = await client.get("/api/v1/me", headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["organisation_id"] == str(trusted.id)

    idp.failure = httpx.ConnectError("down")
    clock.advance(app.state.jwks.ttl_seconds + 1)
    # Another token of the same issuer: the first one is remembered as verified and would not
    # need the keys again.
    later = jose_jwt.encode(
        {**_claims(trusted), "jti": "later"}, pem, algorithm="RS256", headers={"kid": "live"}
    )
    again = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {later}"})
    assert again.status_code == 200, again.text
    assert idp.fetches == 2
