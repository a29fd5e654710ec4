"""Errors are problem+json everywhere, and RequestGuard's request id, size limit and content type."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import SYSTEM, bind_tenant
from tests.conftest import assert_problem

ORGS = "/api/v1/organisations"
SOLNA = {"name": "Solna stad", "kind": "kommun", "org_number": "212000-0183", "county_code": "01"}


def assert_no_trace(response: httpx.Response) -> None:
    for marker in ("Traceback", 'File "', "site-packages", '.py", line'):
        assert marker not in response.text, response.text


async def org_count(session: AsyncSession) -> int:
    await bind_tenant(session, SYSTEM)
    return int((await session.execute(text("SELECT count(*) FROM organisation"))).scalar_one())


# ------------------------------------------------------------------------------ routing errors


@pytest.mark.parametrize(
    "path", ["/nope", "/api/v1/nope", "/api/v2/organisations", "/api/v1/organisations/x/y/z"]
)
async def test_unknown_route_is_a_problem_404(client, auth, path) -> None:
    response = await client.get(path, headers=auth("sis", "lasare"))
    body = assert_problem(response, 404)
    assert body["type"] == "https://samplan.se/problems/not-found"
    assert body["instance"] == path
    assert_no_trace(response)


async def test_wrong_method_is_a_problem_405_with_allow(client, auth) -> None:
    response = await client.delete(ORGS, headers=auth("region-sthlm", "platform_admin"))
    body = assert_problem(response, 405)
    assert "DELETE" in str(body["detail"])
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed == {"GET", "POST"}  # every method the path answers, not only the first route's
    assert_no_trace(response)

    response = await client.put("/health", json={})
    assert "PUT" in str(assert_problem(response, 405)["detail"])
    assert response.headers["allow"] == "GET"
    response = await client.delete(f"{ORGS}/{uuid.uuid4()}/units", headers=auth("sis", "org_admin"))
    assert_problem(response, 405)
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "POST"}


async def test_missing_token_is_a_401_with_a_challenge(client) -> None:
    response = await client.get(ORGS)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].lower().startswith("bearer")


# ------------------------------------------------------------------------------- content type


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_a_non_json_body_is_a_415(client, auth, session, content_type) -> None:
    before = await org_count(session)
    headers = auth("region-sthlm", "platform_admin")
    if content_type:
        headers["Content-Type"] = content_type
    response = await client.post(ORGS, content=json.dumps(SOLNA).encode(), headers=headers)
    body = assert_problem(response, 415)
    assert "application/json" in str(body["detail"])
    assert response.headers["x-request-id"]
    assert_no_trace(response)
    assert await org_count(session) == before


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
async def test_json_content_types_with_parameters_are_accepted(client, auth, content_type) -> None:
    headers = {**auth("region-sthlm", "platform_admin"), "Content-Type": content_type}
    response = await client.post(ORGS, content=json.dumps(SOLNA).encode(), headers=headers)
    assert response.status_code == 201, response.text


# ---------------------------------------------------------------------------------- body size


async def test_a_body_over_the_limit_by_content_length_is_a_413(client, auth, settings, session) -> None:
    before = await org_count(session)
    payload = json.dumps({**SOLNA, "name": "x" * settings.max_body_bytes}).encode()
    assert len(payload) > settings.max_body_bytes
    response = await client.post(
        ORGS,
        content=payload,
        headers={**auth("region-sthlm", "platform_admin"), "Content-Type": "application/json"},
    )
    body = assert_problem(response, 413)
    assert str(settings.max_body_bytes) in str(body["detail"])
    assert response.headers["x-request-id"]
    assert_no_trace(response)
    assert await org_count(session) == before


async def test_the_limit_applies_before_authentication(client, settings) -> None:
    # No token: the size is refused first, without reading the body.
    response = await client.post(
        ORGS,
        content=b"{" + b" " * settings.max_body_bytes + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 413)


async def test_a_body_at_the_limit_is_read(client, auth, settings) -> None:
    # Exactly max_body_bytes: not refused for size (the name is too long, so validation answers).
    base = json.dumps({**SOLNA, "name": ""}).encode()
    payload = json.dumps({**SOLNA, "name": "x" * (settings.max_body_bytes - len(base))}).encode()
    assert len(payload) == settings.max_body_bytes
    response = await client.post(
        ORGS,
        content=payload,
        headers={**auth("region-sthlm", "platform_admin"), "Content-Type": "application/json"},
    )
    body = assert_problem(response, 422)
    assert "name" in str(body["detail"])


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    yield b'{"name": "'
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield b"x" * n
        sent += n
    yield b'", "kind": "kommun", "org_number": "2120000183", "county_code": "01"}'


async def test_a_streamed_body_over_the_limit_is_a_413(client, auth, settings, session) -> None:
    before = await org_count(session)
    headers = {**auth("region-sthlm", "platform_admin"), "Content-Type": "application/json"}
    request = client.build_request(
        "POST", ORGS, content=_chunks(settings.max_body_bytes * 2), headers=headers
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = await client.send(request)
    body = assert_problem(response, 413)
    assert str(settings.max_body_bytes) in str(body["detail"])
    assert response.headers["x-request-id"]
    assert_no_trace(response)
    assert await org_count(session) == before


async def test_both_413s_are_the_same_problem_type(client, auth, settings) -> None:
    headers = {**auth("region-sthlm", "platform_admin"), "Content-Type": "application/json"}
    declared = await client.post(ORGS, content=b"x" * (settings.max_body_bytes + 1), headers=headers)
    streamed = await client.send(
        client.build_request("POST", ORGS, content=_chunks(settings.max_body_bytes + 1), headers=headers)
    )
    a, b = assert_problem(declared, 413), assert_problem(streamed, 413)
    assert a["type"] == b["type"] == "https://samplan.se/problems/payload-too-large"
    assert a["title"] == b["title"]


async def test_a_small_streamed_body_is_accepted(client, auth) -> None:
    async def small() -> AsyncIterator[bytes]:
        raw = json.dumps(SOLNA).encode()
        yield raw[:10]
        yield raw[10:]

    headers = {**auth("region-sthlm", "platform_admin"), "Content-Type": "application/json"}
    response = await client.send(client.build_request("POST", ORGS, content=small(), headers=headers))
    assert response.status_code == 201, response.text


async def test_a_non_numeric_content_length_is_a_400(app: FastAPI) -> None:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": ORGS,
        "raw_path": ORGS.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"samplan.test"),
            (b"content-type", b"application/json"),
            (b"content-length", b"12abc"),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("samplan.test", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    assert headers["content-type"].startswith("application/problem+json")
    body = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
    assert body["status"] == 400


# ------------------------------------------------------------------------------- bad JSON body


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "Solna", ',
        b"not json at all",
        b'{"name": "Solna"}}',
        b"{'name': 1}",
        b'["a", "b"]',
        b"null",
    ],
)
async def test_malformed_json_is_a_422_problem(client, auth, session, raw) -> None:
    before = await org_count(session)
    response = await client.post(
        ORGS,
        content=raw,
        headers={**auth("region-sthlm", "platform_admin"), "Content-Type": "application/json"},
    )
    body = assert_problem(response, 422)
    assert isinstance(body["errors"], list) and body["errors"]
    assert all("field" in e and "message" in e for e in body["errors"])
    assert_no_trace(response)
    assert await org_count(session) == before


async def test_a_body_that_is_not_text_is_a_400_problem(client, auth, session) -> None:
    before = await org_count(session)
    response = await client.post(
        ORGS,
        content=b"\xff\xfe{",
        headers={**auth("region-sthlm", "platform_admin"), "Content-Type": "application/json"},
    )
    assert_problem(response, 400)
    assert_no_trace(response)
    assert await org_count(session) == before


async def test_validation_errors_do_not_echo_the_input(client, auth) -> None:
    secret = "19121212-1212"  # shaped like a personal number
    response = await client.post(
        ORGS, json={**SOLNA, "org_number": secret}, headers=auth("region-sthlm", "platform_admin")
    )
    assert_problem(response, 422)
    assert secret not in response.text
    assert "191212" not in response.text


# --------------------------------------------------------------------------------- request id


@pytest.mark.parametrize("given", ["abc-123", "req.42_X", "a" * 100, str(uuid.uuid4())])
async def test_a_well_formed_request_id_is_echoed(client, auth, given) -> None:
    ok = await client.get(ORGS, headers={**auth("sis", "lasare"), "X-Request-ID": given})
    assert ok.status_code == 200
    assert ok.headers["x-request-id"] == given
    problem = await client.get("/api/v1/nope", headers={"X-Request-ID": given})
    assert problem.headers["x-request-id"] == given
    assert assert_problem(problem, 404)["request_id"] == given


@pytest.mark.parametrize(
    "given", [b"has space", b"a" * 101, b"<script>", b"semi;colon", "ünicode".encode(), b"", b"../../etc"]
)
async def test_a_malformed_request_id_is_replaced(client, auth, given) -> None:
    response = await client.get(
        ORGS,
        headers=[
            (b"Authorization", auth("sis", "lasare")["Authorization"].encode()),
            (b"X-Request-ID", given),
        ],
    )
    assert response.status_code == 200
    replaced = response.headers["x-request-id"]
    assert replaced.encode() != given
    assert uuid.UUID(replaced).version == 4


async def test_every_response_gets_a_fresh_request_id(client) -> None:
    first = (await client.get("/health")).headers["x-request-id"]
    second = (await client.get("/health")).headers["x-request-id"]
    assert first != second
    assert uuid.UUID(first) and uuid.UUID(second)


# ----------------------------------------------------------------------------- unexpected 500


async def test_an_unexpected_error_is_a_bare_500_problem(app: FastAPI, client) -> None:
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app.add_api_route("/api/v1/test-boom", boom, methods=["GET"])
    response = await client.get("/api/v1/test-boom", headers={"X-Request-ID": "boom-1"})
    body = assert_problem(response, 500)
    assert body["detail"] == "an unexpected error occurred"
    assert body["request_id"] == "boom-1"
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert_no_trace(response)


async def test_no_error_body_carries_a_stack_trace(client, auth, settings) -> None:
    headers = auth("region-sthlm", "platform_admin")
    json_headers = {**headers, "Content-Type": "application/json"}
    responses = [
        await client.get("/nope"),
        await client.delete(ORGS, headers=headers),
        await client.post(ORGS, content=b"x", headers={**headers, "Content-Type": "text/plain"}),
        await client.post(ORGS, content=b"x" * (settings.max_body_bytes + 1), headers=json_headers),
        await client.post(ORGS, content=b"{", headers=json_headers),
        await client.post(ORGS, json={**SOLNA, "kind": "?"}, headers=headers),
        await client.get(ORGS, params={"cursor": "garbage"}, headers=headers),
        await client.get(ORGS, params={"limit": "0"}, headers=headers),
        await client.get(f"{ORGS}/{uuid.uuid4()}", headers=headers),
        await client.get(f"{ORGS}/not-a-uuid", headers=headers),
        await client.get(ORGS, headers={"Authorization": "Bearer a.b.c"}),
        await client.get(ORGS, headers={"Authorization": "Basic dXNlcjpwdw=="}),
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [404, 405, 415, 413, 422, 422, 400, 422, 404, 422, 401, 401]
    for response in responses:
        assert response.headers["content-type"].startswith("application/problem+json"), response.text
        assert_no_trace(response)
