from __future__ import annotations

import httpx

from tests.conftest import assert_problem


async def test_health_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_checks_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_docs_and_schema_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    schema = (await client.get("/openapi.json")).json()
    assert "/api/v1/organisations" in schema["paths"]
    assert "/api/v1/me" in schema["paths"]


async def test_me_requires_a_token(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/api/v1/me"), 401)
    assert "bearer" in str(body["detail"]).lower()


async def test_me_describes_the_caller(client: httpx.AsyncClient, auth, orgs) -> None:
    response = await client.get("/api/v1/me", headers=auth("sthlm-stad", "handlaggare", "samordnare"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["organisation_id"] == str(orgs["sthlm-stad"].id)
    assert body["org_number"] == "2120000142"
    assert body["organisation_kind"] == "kommun"
    assert sorted(body["roles"]) == ["handlaggare", "samordnare"]
