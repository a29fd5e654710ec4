"""Webhooks over the API: org_admin only, https only, the secret shown once, deliveries visible, and
a receiver that hangs never slows the API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.db import Database
from app.main import create_app
from tests.conftest import AuthFactory, OrgRef, TestDatabase, assert_problem
from tests.plan_helpers import PlanDriver
from tests.receiver import Live, Receiver, Sleep, all_delivered, eventually

HOOK = {"url": "https://treserva.example.se/samplan/events", "event_types": ["action.proposed"]}


@pytest.fixture
def drv(client: httpx.AsyncClient, auth: AuthFactory, orgs: dict[str, OrgRef]) -> PlanDriver:
    return PlanDriver(client, auth, orgs)


async def _create(
    client: httpx.AsyncClient, auth: AuthFactory, org: str = "sthlm-stad", **body: Any
) -> dict[str, Any]:
    r = await client.post("/api/v1/webhooks", json={**HOOK, **body}, headers=auth(org, "org_admin"))
    assert r.status_code == 201, r.text
    hook: dict[str, Any] = r.json()
    return hook


async def _list(
    client: httpx.AsyncClient, auth: AuthFactory, org: str = "sthlm-stad"
) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/webhooks", headers=auth(org, "org_admin"))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()
    return items


# ---- CRUD ----------------------------------------------------------------------------------


async def test_org_admin_creates_lists_and_deletes_and_the_secret_is_shown_once(
    client: httpx.AsyncClient, auth: AuthFactory, orgs: dict[str, OrgRef]
) -> None:
    r = await client.post(
        "/api/v1/webhooks",
        json={**HOOK, "event_types": ["plan.created", "action.proposed", "plan.created"]},
        headers=auth("sthlm-stad", "org_admin"),
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    assert r.headers["location"] == f"/api/v1/webhooks/{hook['id']}"
    assert hook["url"] == HOOK["url"]
    assert hook["event_types"] == ["action.proposed", "plan.created"]  # sorted, no repeats
    assert hook["organisation_id"] == str(orgs["sthlm-stad"].id)
    assert hook["active"] is True
    assert len(hook["secret"]) >= 32
    other = await _create(client, auth)
    assert other["secret"] != hook["secret"]

    listed = await _list(client, auth)
    assert [h["id"] for h in listed] == [hook["id"], other["id"]]
    assert all("secret" not in h for h in listed)
    listing = await client.get("/api/v1/webhooks", headers=auth("sthlm-stad", "org_admin"))
    assert hook["secret"] not in listing.text and other["secret"] not in listing.text
    deliveries = await client.get(
        f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth("sthlm-stad", "org_admin")
    )
    assert deliveries.status_code == 200 and deliveries.json() == []
    assert hook["secret"] not in deliveries.text

    r = await client.delete(f"/api/v1/webhooks/{hook['id']}", headers=auth("sthlm-stad", "org_admin"))
    assert r.status_code == 204
    assert [h["id"] for h in await _list(client, auth)] == [other["id"]]
    r = await client.delete(f"/api/v1/webhooks/{hook['id']}", headers=auth("sthlm-stad", "org_admin"))
    assert_problem(r, 404)
    r = await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth("sthlm-stad", "org_admin"))
    assert_problem(r, 404)


@pytest.mark.parametrize("role", ["handlaggare", "samordnare", "lasare", "auditor", "system"])
async def test_only_org_admin_manages_webhooks(
    client: httpx.AsyncClient, auth: AuthFactory, role: str
) -> None:
    hook = await _create(client, auth)
    headers = auth("sthlm-stad", role)
    assert_problem(await client.post("/api/v1/webhooks", json=HOOK, headers=headers), 403)
    assert_problem(await client.get("/api/v1/webhooks", headers=headers), 403)
    # A known webhook of the caller's own organisation: 403, not 404.
    assert_problem(await client.delete(f"/api/v1/webhooks/{hook['id']}", headers=headers), 403)
    assert_problem(await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=headers), 403)
    assert [h["id"] for h in await _list(client, auth)] == [hook["id"]]  # nothing added or removed


async def test_another_organisations_webhook_is_not_found(
    client: httpx.AsyncClient, auth: AuthFactory
) -> None:
    hook = await _create(client, auth)
    admin_elsewhere = auth("region-sthlm", "org_admin")
    assert await _list(client, auth, "region-sthlm") == []
    assert_problem(await client.delete(f"/api/v1/webhooks/{hook['id']}", headers=admin_elsewhere), 404)
    r = await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=admin_elsewhere)
    assert_problem(r, 404)
    assert [h["id"] for h in await _list(client, auth)] == [hook["id"]]
    r = await client.get(
        "/api/v1/webhooks/00000000-0000-4000-8000-000000000000/deliveries", headers=admin_elsewhere
    )
    assert_problem(r, 404)


async def test_webhooks_need_a_token(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/api/v1/webhooks", json=HOOK), 401)
    assert_problem(await client.get("/api/v1/webhooks"), 401)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://treserva.example.se/hook"}, "url"),
        ({"url": "ftp://treserva.example.se/hook"}, "url"),
        ({"url": "treserva.example.se/hook"}, "url"),
        ({"url": "https:///no-host"}, "url"),
        ({"url": "https://user:secret@treserva.example.se/hook"}, "url"),
        ({"url": "https://token@treserva.example.se/hook"}, "url"),
        ({"url": "https://treserva.example.se:99999/hook"}, "url"),
        ({"url": "https://treserva.example.se:port/hook"}, "url"),
        ({"url": "https://[::1/hook"}, "url"),
        # The default public_base_url is http://127.0.0.1:8000: the service itself.
        ({"url": "https://127.0.0.1:8000/api/v1/webhooks"}, "url"),
        ({"event_types": ["plan.exploded"]}, "event_types"),
        ({"event_types": ["plan.created", "PLAN.CREATED"]}, "event_types"),
        ({"event_types": []}, "event_types"),
        ({"event_types": "plan.created"}, "event_types"),
        ({"url": None}, "url"),
        ({"secret": "my own secret"}, "secret"),
    ],
)
async def test_bad_webhooks_are_422_and_nothing_is_stored(
    client: httpx.AsyncClient, auth: AuthFactory, body: dict[str, Any], field: str
) -> None:
    r = await client.post("/api/v1/webhooks", json={**HOOK, **body}, headers=auth("sthlm-stad", "org_admin"))
    problem = assert_problem(r, 422)
    errors = problem.get("errors")
    assert isinstance(errors, list) and errors, problem
    assert any(field in str(e["field"]) for e in errors), errors
    assert "Traceback" not in r.text
    assert await _list(client, auth) == []


@pytest.fixture
async def app_behind_a_name(test_database: TestDatabase, database: Database) -> AsyncIterator[FastAPI]:
    application = create_app(
        test_database.settings(public_base_url="https://samplan.example.se"), database=database
    )
    yield application
    await application.state.http.aclose()


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("https://samplan.example.se/hook", 422),
        ("https://SAMPLAN.Example.SE/hook", 422),
        ("https://samplan.example.se:443/hook", 422),
        ("https://samplan.example.se./hook", 422),
        ("https://samplan.example.se:8443/hook", 201),
        ("https://hooks.samplan.example.se/hook", 201),
    ],
)
async def test_a_webhook_may_not_point_at_the_service_itself(
    app_behind_a_name: FastAPI, auth: AuthFactory, url: str, status: int
) -> None:
    transport = httpx.ASGITransport(app=app_behind_a_name, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://samplan.test") as c:
        headers = auth("sthlm-stad", "org_admin")
        r = await c.post("/api/v1/webhooks", json={**HOOK, "url": url}, headers=headers)
        assert r.status_code == status, r.text
        listed = (await c.get("/api/v1/webhooks", headers=headers)).json()
    if status == 422:
        assert_problem(r, 422)
        assert listed == []
    else:
        assert [h["url"] for h in listed] == [url]


# ---- deliveries follow the plans an organisation takes part in -----------------------------


async def test_deliveries_only_for_plans_taken_part_in_under_consent(
    client: httpx.AsyncClient, auth: AuthFactory, drv: PlanDriver
) -> None:
    types = ["plan.created", "consent.given", "action.proposed", "plan.cancelled"]
    own = await _create(client, auth, event_types=types)
    region = await _create(client, auth, "region-sthlm", event_types=types)
    sis = await _create(client, auth, "sis", event_types=types)
    uppsala = await _create(client, auth, "uppsala", event_types=types)

    plan = await drv.create_plan()
    pid = plan["id"]
    await drv.add_participant(pid, "region-sthlm")
    await drv.add_participant(pid, "sis", kind="other")  # takes part, but no consent names it
    await drv.add_consent(pid, ["sthlm-stad", "region-sthlm"])
    await drv.add_action(pid, "region-sthlm", description="Abstinensbehandling")
    r = await drv.transition(pid, "cancelled", (await drv.get(pid)).json()["version"])
    assert r.status_code == 200, r.text

    async def delivered_types(hook: dict[str, Any], org: str) -> list[str]:
        r = await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth(org, "org_admin"))
        assert r.status_code == 200, r.text
        return sorted(d["event_type"] for d in r.json())

    assert await delivered_types(own, "sthlm-stad") == sorted(types)
    # The region saw nothing before the consent named it.
    assert await delivered_types(region, "region-sthlm") == [
        "action.proposed",
        "consent.given",
        "plan.cancelled",
    ]
    assert await delivered_types(sis, "sis") == []
    assert await delivered_types(uppsala, "uppsala") == []


# ---- a receiver that hangs -----------------------------------------------------------------


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    r = Receiver(tmp_path / "receiver")
    yield r
    r.close()


async def test_a_hanging_receiver_never_slows_the_api_nor_loses_the_event(
    fresh_database: TestDatabase, receiver: Receiver
) -> None:
    async with Live(
        fresh_database,
        receiver,
        dispatcher_in_process=True,  # the default: delivery runs inside the service
        dispatcher_poll_seconds=0.05,
        webhook_timeout_seconds=4,
        webhook_backoff_base_seconds=0.2,
        webhook_backoff_max_seconds=0.5,
    ) as live:
        assert live.settings.dispatcher_in_process
        hook = await live.create_webhook(["plan.created", "plan.cancelled"])
        receiver.script(Sleep(10))  # the first delivery hangs past the 4 s timeout
        async with live.app.router.lifespan_context(live.app):
            plan = await live.drv.create_plan()
            await receiver.wait_for_count(1, within=10)
            hanging_since = time.monotonic()

            timings: dict[str, float] = {}

            async def timed(name: str, call: Any) -> httpx.Response:
                t0 = time.perf_counter()
                response: httpx.Response = await call
                timings[name] = time.perf_counter() - t0
                return response

            r = await timed("read", live.drv.get(plan["id"]))
            assert r.status_code == 200, r.text
            r = await timed("write", live.drv.post(plan["id"], "/needs", {"description": "Boende"}))
            assert r.status_code == 201, r.text
            r = await timed("transition", live.drv.transition(plan["id"], "cancelled", r.json()["version"]))
            assert r.status_code == 200, r.text
            r = await timed("second plan", live.drv.create_plan())
            r = await timed(
                "deliveries",
                live.client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=live.admin()),
            )
            assert r.status_code == 200
            assert max(timings.values()) < 2.0, timings
            # All of that happened while the receiver still held the first delivery.
            assert receiver.requests[0].answered is None
            assert time.monotonic() - hanging_since < 4

            async def all_done() -> list[dict[str, Any]] | None:
                items = await live.deliveries(hook["id"])
                return items if all_delivered(3)(items) else None

            items = await eventually(all_done, within=30, what="every event delivered after the hang")
        by_type: dict[str, list[dict[str, Any]]] = {}
        for d in items:
            by_type.setdefault(d["event_type"], []).append(d)
        first = next(d for d in by_type["plan.created"] if d["attempts"] > 1)
        assert [a["error"] for a in first["attempt_log"]] == ["ReadTimeout", None]
        assert first["attempt_log"][1]["status_code"] == 200
        assert sorted(receiver.event_counts()) == sorted(d["event_id"] for d in items)
