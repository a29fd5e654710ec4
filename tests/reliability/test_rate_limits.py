"""Per-user and per-organisation rate limits: 429 problem+json with Retry-After, with small limits."""

from __future__ import annotations

import httpx
import pytest

from app.config import Settings
from app.db import Database
from app.main import create_app
from app.ratelimit import TokenBuckets
from tests.conftest import AuthFactory, TestDatabase, assert_problem

USER_BURST = 3
ORG_BURST = 5


@pytest.fixture
def settings(test_database: TestDatabase) -> Settings:
    # Replaces conftest's `settings`, so the `app` and `client` fixtures run with these limits.
    # One token a minute: nothing refills while a test runs.
    return test_database.settings(
        rate_limit_user_per_minute=1,
        rate_limit_user_burst=USER_BURST,
        rate_limit_org_per_minute=1,
        rate_limit_org_burst=ORG_BURST,
    )


async def _me(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.get("/api/v1/me", headers=headers)


def _assert_429(response: httpx.Response) -> int:
    body = assert_problem(response, 429)
    assert body["type"] == "https://samplan.se/problems/rate-limited"
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    # One token a minute: the next one is at most a minute away, and never "0".
    assert 1 <= int(retry_after) <= 60
    assert body["retry_after"] == int(retry_after)
    return int(retry_after)


async def test_a_user_over_their_limit_gets_429_with_retry_after(
    client: httpx.AsyncClient, auth: AuthFactory
) -> None:
    anna = auth("sthlm-stad", "handlaggare", subject="anna")
    for _ in range(USER_BURST):
        assert (await _me(client, anna)).status_code == 200
    refused = await _me(client, anna)
    _assert_429(refused)
    assert "your user" in refused.json()["detail"]
    # It stays refused: a refused request is not a free pass for the next.
    _assert_429(await _me(client, anna))


async def test_one_users_limit_does_not_hold_back_a_colleague(
    client: httpx.AsyncClient, auth: AuthFactory
) -> None:
    anna = auth("sthlm-stad", "handlaggare", subject="anna")
    bo = auth("sthlm-stad", "handlaggare", subject="bo")
    for _ in range(USER_BURST):
        assert (await _me(client, anna)).status_code == 200
    for _ in range(3):
        _assert_429(await _me(client, anna))
    # Anna's refused requests charged nothing to the organisation: Bo has ORG_BURST - USER_BURST left.
    for _ in range(ORG_BURST - USER_BURST):
        assert (await _me(client, bo)).status_code == 200


async def test_the_organisation_limit_is_shared_by_its_users_and_no_one_elses(
    client: httpx.AsyncClient, auth: AuthFactory
) -> None:
    users = [auth("sthlm-stad", "handlaggare", subject=f"user-{i}") for i in range(ORG_BURST + 1)]
    for headers in users[:ORG_BURST]:  # one request each: no user is near their own limit
        assert (await _me(client, headers)).status_code == 200
    refused = await _me(client, users[ORG_BURST])
    _assert_429(refused)
    assert "your organisation" in refused.json()["detail"]
    # Another organisation, and the same subject name at another organisation, are unaffected.
    assert (await _me(client, auth("region-sthlm", "handlaggare", subject="user-0"))).status_code == 200
    assert (await _me(client, auth("huddinge", "handlaggare", subject="user-9"))).status_code == 200


async def test_anonymous_and_unauthenticated_requests_are_not_limited_and_charge_nothing(
    client: httpx.AsyncClient, auth: AuthFactory
) -> None:
    for _ in range(3 * ORG_BURST):
        assert (await client.get("/health")).status_code == 200
        bad = await client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})
        assert bad.status_code == 401
    anna = auth("sthlm-stad", "handlaggare", subject="anna")
    for _ in range(USER_BURST):
        assert (await _me(client, anna)).status_code == 200


async def test_limits_can_be_switched_off(
    test_database: TestDatabase, database: Database, auth: AuthFactory
) -> None:
    unlimited = create_app(
        test_database.settings(rate_limit_enabled=False, rate_limit_user_burst=1, rate_limit_org_burst=1),
        database=database,
    )
    transport = httpx.ASGITransport(app=unlimited, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://samplan.test") as c:
            anna = auth("sthlm-stad", "handlaggare", subject="anna")
            for _ in range(5):
                assert (await _me(c, anna)).status_code == 200
    finally:
        await unlimited.state.http.aclose()


def test_a_bucket_refills_at_its_rate_and_retry_after_is_honest() -> None:
    now = [1000.0]
    buckets = TokenBuckets(per_minute=60, burst=2, clock=lambda: now[0])  # one a second
    for _ in range(2):
        assert buckets.wait_seconds("k") == 0
        buckets.take("k")
    wait = buckets.wait_seconds("k")
    assert wait == pytest.approx(1.0)
    now[0] += wait / 2
    assert buckets.wait_seconds("k") == pytest.approx(0.5)
    now[0] += 0.5
    assert buckets.wait_seconds("k") == 0
    now[0] += 3600  # never more than the burst
    for _ in range(2):
        assert buckets.wait_seconds("k") == 0
        buckets.take("k")
    assert buckets.wait_seconds("k") > 0


def test_idle_buckets_are_forgotten_so_many_subjects_cannot_grow_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app import ratelimit

    monkeypatch.setattr(ratelimit, "_SWEEP_ABOVE", 100)
    now = [0.0]
    buckets = TokenBuckets(per_minute=60, burst=5, clock=lambda: now[0])
    for i in range(100):
        buckets.wait_seconds(i)
        buckets.take(i)
    now[0] += 10  # all full again
    buckets.wait_seconds("new")
    assert len(buckets) == 1
