"""Body size, list size and page size limits, and slow or huge requests that cannot hold workers:
a trickled body is cut off with 408, the server refuses work beyond its concurrency limit at once,
oversized headers are refused, idle keep-alive connections are closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from app.db import Database
from app.main import RequestGuard, create_app
from app.services.pagination import MAX_LIMIT
from tests.conftest import APP_ROLE, AuthFactory, OrgRef, TestDatabase, assert_problem
from tests.plan_helpers import PlanDriver
from tests.reliability.live import Served, Tokens

# ------------------------------------------------------------------------------- page size

LISTS = [
    ("/api/v1/plans", ("sthlm-stad", "handlaggare")),
    ("/api/v1/organisations", ("sthlm-stad", "handlaggare")),
    ("/api/v1/worklist", ("sthlm-stad", "handlaggare")),
    ("/api/v1/audit-events", ("sthlm-stad", "auditor")),
    ("/api/v1/events", ("sthlm-stad", "system")),
]


@pytest.mark.parametrize(("path", "who"), LISTS)
async def test_page_size_is_at_most_200(
    client: httpx.AsyncClient, auth: AuthFactory, path: str, who: tuple[str, str]
) -> None:
    headers = auth(*who)
    assert (await client.get(path, params={"limit": MAX_LIMIT}, headers=headers)).status_code == 200
    for bad in (MAX_LIMIT + 1, 10_000, 0, -1):
        body = assert_problem(await client.get(path, params={"limit": bad}, headers=headers), 422)
        assert body["errors"][0]["field"] == "query.limit"  # type: ignore[index]


# ------------------------------------------------------------------------------ list size


def _arrays_without_max_items(schema: dict[str, Any]) -> list[str]:
    """Every array in a request body must be bounded; walk the OpenAPI schema for ones that are not."""
    components = schema.get("components", {}).get("schemas", {})
    unbounded: list[str] = []
    seen: set[str] = set()

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in seen:
                    seen.add(name)
                    walk(components.get(name, {}), name)
                return
            if node.get("type") == "array" and "maxItems" not in node:
                unbounded.append(where)
            for key, value in node.items():
                walk(value, f"{where}.{key}" if key not in ("properties", "anyOf", "items") else where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                walk(media.get("schema", {}), f"{method.upper()} {path}")
    return unbounded


def test_every_list_in_a_request_body_has_a_maximum_length(app: FastAPI) -> None:
    assert _arrays_without_max_items(app.openapi()) == []


async def test_a_list_longer_than_its_maximum_is_refused_with_422(
    client: httpx.AsyncClient, auth: AuthFactory, orgs: dict[str, OrgRef]
) -> None:
    drv = PlanDriver(client, auth, orgs)
    person = await drv.register_client()
    body = {"client_id": person["id"], "title": "SIP", "legal_basis": [f"Lag {i}" for i in range(11)]}
    response = await client.post("/api/v1/plans", json=body, headers=drv.h("sthlm-stad"))
    errors = assert_problem(response, 422)["errors"]
    assert [e["field"] for e in errors] == ["body.legal_basis"]  # type: ignore[union-attr,index]
    plan = await drv.create_plan(client_id=person["id"])
    scope = [str(orgs["sthlm-stad"].id)] * 51
    response = await drv.post(
        plan["id"],
        "/consents",
        {
            "given_at": "2025-01-01T10:00:00+01:00",
            "obtained_by": "H",
            "method": "written",
            "scope_organisation_ids": scope,
        },
    )
    assert_problem(response, 422)


async def test_a_body_over_the_size_limit_is_refused_with_413_even_without_content_length(
    client: httpx.AsyncClient, auth: AuthFactory, settings: Any
) -> None:
    big = b'{"title": "' + b"x" * (settings.max_body_bytes + 10) + b'"}'

    async def chunks() -> Any:
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    headers = {**auth("sthlm-stad", "handlaggare"), "Content-Type": "application/json"}
    sized = await client.post("/api/v1/plans", content=big, headers=headers)
    assert_problem(sized, 413)
    streamed = await client.post("/api/v1/plans", content=chunks(), headers=headers)
    assert "content-length" not in streamed.request.headers
    assert_problem(streamed, 413)


# --------------------------------------------------------------- body read timeout (in-process)


def _scope() -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/plans",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "query_string": b"",
    }


async def _drive(app: Any, receive: Receive) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(_scope(), receive, send)
    return sent


async def test_a_trickled_body_is_cut_off_with_408_after_the_read_timeout(
    test_database: TestDatabase, database: Database
) -> None:
    # The real app with a short body read timeout; the client sends one chunk and then nothing.
    app = create_app(test_database.settings(body_read_timeout_seconds=0.3), database=database)
    chunks = [{"type": "http.request", "body": b'{"title": ', "more_body": True}]

    async def receive() -> Message:
        if chunks:
            return chunks.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("not reached")

    started = time.perf_counter()
    sent = await asyncio.wait_for(_drive(app, receive), timeout=5)
    elapsed = time.perf_counter() - started
    assert 0.3 <= elapsed < 2, elapsed
    start = sent[0]
    assert start["status"] == 408
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    assert headers["content-type"].startswith("application/problem+json")
    assert headers["connection"] == "close"
    assert b'"status":408' in sent[1]["body"]
    await app.state.http.aclose()


async def test_waiting_for_a_disconnect_after_the_body_is_not_timed() -> None:
    # Once the body is in, receive() waits for the client to go away; that may take longer than
    # the body read timeout without any 408.
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        body = await receive()
        assert body["type"] == "http.request" and not body.get("more_body")
        assert (await receive())["type"] == "http.disconnect"
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(0.6)
        return {"type": "http.disconnect"}

    sent = await _drive(RequestGuard(inner, max_body_bytes=1024, body_read_timeout=0.2), receive)
    assert sent[0]["status"] == 204


# ---------------------------------------------------------------- a real server on a socket


@pytest.fixture
def small_server(fresh_database: TestDatabase, tmp_path: Path) -> Iterator[tuple[Served, Tokens]]:
    served = Served(
        tmp_path,
        {
            "SAMPLAN_ENV": "dev",
            "SAMPLAN_DATA_DIR": str(fresh_database.settings().data_dir),
            "SAMPLAN_DATABASE_URL": fresh_database.app_url,
            "SAMPLAN_MIGRATION_DATABASE_URL": fresh_database.owner_url,
            "SAMPLAN_DB_APP_ROLE": APP_ROLE,
            "SAMPLAN_BODY_READ_TIMEOUT_SECONDS": "1.5",
            "SAMPLAN_SERVER_LIMIT_CONCURRENCY": "4",
            "SAMPLAN_SERVER_KEEP_ALIVE_SECONDS": "1",
            "SAMPLAN_SERVER_MAX_HEADER_BYTES": "8192",
            "SAMPLAN_LOG_LEVEL": "WARNING",
        },
    )
    served.start()
    try:
        served.wait_healthy()
        yield served, Tokens(fresh_database.settings())
    finally:
        served.stop()


async def _trickle_start(port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            "POST /api/v1/plans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n"
            '{"title": "'
        ).encode()
    )
    await writer.drain()
    return reader, writer


async def _read_status(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head


@pytest.mark.slow
async def test_slow_clients_cannot_hold_the_server(small_server: tuple[Served, Tokens]) -> None:
    served, tokens = small_server
    token = tokens()["Authorization"].removeprefix("Bearer ")
    # As many trickling uploads as the server takes at once (uvicorn counts open connections,
    # the asking one included, against limit_concurrency=4): they hold their connections ...
    trickling = [await _trickle_start(served.port, token) for _ in range(3)]
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=served.base_url, timeout=5) as http:
        # ... so more work is refused at once (503 from the server), not queued behind them ...
        refused = await http.get("/api/v1/me", headers=tokens())
        assert refused.status_code == 503
        assert time.monotonic() - started < 1.0
        # ... until the body read timeout cuts them off with 408 and closes their connections.
        for _, writer in trickling:
            writer.write(b"x")  # still trickling
            await writer.drain()
        for reader, writer in trickling:
            status, head = await asyncio.wait_for(_read_status(reader), timeout=5)
            assert status == 408, head
            assert b"application/problem+json" in head
            await asyncio.wait_for(reader.read(), timeout=5)  # then EOF: the server closed it
            writer.close()
        cut_off_after = time.monotonic() - started
        assert 1.0 <= cut_off_after < 4.0, cut_off_after
        assert (await http.get("/api/v1/me", headers=tokens())).status_code == 200


@pytest.mark.slow
async def test_huge_headers_are_refused_and_idle_connections_closed(
    small_server: tuple[Served, Tokens],
) -> None:
    served, _ = small_server
    padding = b"X-Padding: " + b"a" * 20_000 + b"\r\n"
    # Headers that never end: the parser gives up once they pass the limit (h11: 400) ...
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n" + padding)
    await writer.drain()
    status, head = await asyncio.wait_for(_read_status(reader), timeout=5)
    assert status == 400, head
    writer.close()
    # ... and headers that arrive whole but too large are refused by RequestGuard (431).
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n" + padding + b"\r\n")
    await writer.drain()
    status, head = await asyncio.wait_for(_read_status(reader), timeout=5)
    assert status == 431, head
    assert b"application/problem+json" in head
    writer.close()
    # ... as is a query string that would do the same.
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(b"GET /health?" + b"a=1&" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    status, head = await asyncio.wait_for(_read_status(reader), timeout=5)
    assert status == 431, head
    writer.close()

    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    status, _ = await asyncio.wait_for(_read_status(reader), timeout=5)
    assert status == 200
    # Keep-alive is 1 s here: an idle connection is closed by the server, not held forever.
    idle_started = time.monotonic()
    rest = await asyncio.wait_for(reader.read(), timeout=5)  # body, then EOF
    assert rest.endswith(b"}")
    assert 0.5 < time.monotonic() - idle_started < 4.0
    writer.close()
