"""GET /api/v1/audit-events and /verify: an organisation's auditor reviews its own staff's
access, the chain verifies over HTTP and from the CLI, and concurrent writers keep it gap-free."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app import cli
from app.config import Settings, get_settings
from app.main import create_app
from app.models.identity import Role
from app.services import audit
from app.services.demo import DEMO_ORGS
from tests.conftest import OrgRef, assert_problem
from tests.services.test_audit import fresh_org_ids, make_principal, tamper_committed

if TYPE_CHECKING:
    from tests.conftest import AuthFactory, TestDatabase

EVENTS = "/api/v1/audit-events"
VERIFY = "/api/v1/audit-events/verify"


async def _create_units(
    client: httpx.AsyncClient, headers: dict[str, str], org_id: uuid.UUID, names: list[str]
) -> list[httpx.Response]:
    responses = []
    for name in names:
        response = await client.post(f"/api/v1/organisations/{org_id}/units", json={"name": name}, headers=headers)
        assert response.status_code == 201, response.text
        responses.append(response)
    return responses


async def _all_pages(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = await client.get(EVENTS, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


# --- listing -----------------------------------------------------------------------------


async def test_auditor_lists_own_organisations_events(
    client: httpx.AsyncClient, auth: AuthFactory, orgs: dict[str, OrgRef]
) -> None:
    sthlm = orgs["sthlm-stad"].id
    admin = auth("sthlm-stad", "org_admin", subject="olga-admin")
    created = await _create_units(client, admin, sthlm, ["Enhet A", "Enhet B", "Enhet C"])

    response = await client.get(EVENTS, headers=auth("sthlm-stad", "auditor"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    items = body["items"]
    assert [e["seq"] for e in items] == [1, 2, 3]
    assert [e["action"] for e in items] == ["unit.create"] * 3
    assert [e["object_type"] for e in items] == ["unit"] * 3
    assert [e["object_id"] for e in items] == [r.json()["id"] for r in created]
    assert {e["actor_subject"] for e in items} == {"olga-admin"}
    assert {e["actor_roles"] for e in items} == {"org_admin"}
    # Each event carries the id of the request that caused it.
    assert [e["request_id"] for e in items] == [r.headers["x-request-id"] for r in created]
    assert all(len(e["hash"]) == 64 for e in items)
    assert "prev_hash" not in items[0] and "organisation_id" not in items[0]


async def test_request_id_from_the_caller_is_kept(
    client: httpx.AsyncClient, auth: AuthFactory, orgs: dict[str, OrgRef]
) -> None:
    headers = auth("sthlm-stad", "org_admin") | {"X-Request-Id": "trace-abc.123"}
    await _create_units(client, headers, orgs["sthlm-stad"].id, ["Spårbar enhet"])
    (event,) = (await client.get(EVENTS, headers=auth("sthlm-stad", "auditor"))).json()["items"]
    assert event["request_id"] == "trace-abc.123"


@pytest.mark.parametrize("other", ["huddinge", "region-sthlm", "uppsala"])
async def test_other_organisations_auditor_sees_none_of_them(
    client: httpx.AsyncClient, auth: AuthFactory, orgs: dict[str, OrgRef], other: str
) -> None:
    sthlm = orgs["sthlm-stad"].id
    created = await _create_units(client, auth("sthlm-stad", "org_admin"), sthlm, ["Hemlig enhet"])
    unit_id = created[0].json()["id"]
    # The other organisation has an event of its own, which its auditor does see.
    await _create_units(client, auth(other, "org_admin"), orgs[other].id, ["Egen enhet"])

    items = (await client.get(EVENTS, headers=auth(other, "auditor"))).json()["items"]
    assert [(e["seq"], e["action"]) for e in items] == [(1, "unit.create")]
    assert unit_id not in {e["object_id"] for e in items}
    own = (await client.get(EVENTS, headers=auth("sthlm-stad", "auditor"))).json()["items"]
    assert [e["object_id"] for e in own] == [unit_id]
    # Filters cannot reach across either.
    filtered = await client.get(
        EVENTS, params={"action": "unit.create", "actor_subject": "test-sthlm-stad-org_admin"},
        headers=auth(other, "auditor"),
    )
    assert filtered.json()["items"] == []
    verify = (await client.get(VERIFY, headers=auth(other, "auditor"))).json()
    assert verify["organisation_id"] == str(orgs[other].id)


async def test_platform_admin_action_lands_in_the_admins_organisation(
    client: httpx.AsyncClient, auth: AuthFactory, orgs: dict[str, OrgRef]
) -> None:
    response = await client.post(
        "/api/v1/organisations",
        json={"name": "Testkommunen", "kind": "kommun", "org_number": "212000-9994", "county_code": "01"},
        headers=auth("region-sthlm", "platform_admin", subject="per"),
    )
    assert response.status_code == 201, response.text
    new_org = response.json()["id"]
    items = (await client.get(EVENTS, headers=auth("region-sthlm", "auditor"))).json()["items"]
    assert [(e["action"], e["object_id"], e["actor_subject"]) for e in items] == [
        ("organisation.create", new_org, "per")
    ]
    assert (await client.get(EVENTS, headers=auth("sthlm-stad", "auditor"))).json()["items"] == []


@pytest.mark.parametrize(
    "roles",
    [("handlaggare",), ("samordnare",), ("lasare",), ("org_admin",), ("system",), ("platform_admin",),
     ("handlaggare", "org_admin")],
)
async def test_non_auditors_are_refused(
    client: httpx.AsyncClient, auth: AuthFactory, orgs: dict[str, OrgRef], roles: tuple[str, ...]
) -> None:
    org = "region-sthlm" if "platform_admin" in roles else "sthlm-stad"
    for path in (EVENTS, VERIFY):
        body = assert_problem(await client.get(path, headers=auth(org, *roles)), 403)
        assert "auditor" in str(body["detail"])


async def test_rss_is_refused(client: httpx.AsyncClient, auth: AuthFactory) -> None:
    for path in (EVENTS, VERIFY):
        assert_problem(await client.get(path, headers=auth("region-sthlm", "rss", county="01")), 403)


async def test_a_token_is_required(client: httpx.AsyncClient) -> None:
    for path in (EVENTS, VERIFY):
        assert_problem(await client.get(path), 401)


async def test_a_refused_review_is_not_recorded_as_a_review(
    client: httpx.AsyncClient, auth: AuthFactory
) -> None:
    assert_problem(await client.get(EVENTS, headers=auth("sthlm-stad", "handlaggare")), 403)
    items = (await client.get(EVENTS, headers=auth("sthlm-stad", "auditor"))).json()["items"]
    assert items == []


# --- filters and pagination ----------------------------------------------------------------


async def test_filters_by_action_client_and_actor(
    client: httpx.AsyncClient,
    auth: AuthFactory,
    orgs: dict[str, OrgRef],
    session: AsyncSession,
    settings: Settings,
) -> None:
    sthlm = orgs["sthlm-stad"]
    client_1, client_2 = uuid.uuid4(), uuid.uuid4()
    hanna = make_principal(sthlm, Role.handlaggare, subject="hanna")
    sam = make_principal(sthlm, Role.samordnare, subject="sam")
    audit.record(session, hanna, "plan.read", "plan", uuid.uuid4(), client_id=client_1)
    audit.record(session, sam, "plan.update", "plan", uuid.uuid4(), client_id=client_1)
    audit.record(session, hanna, "plan.read", "plan", uuid.uuid4(), client_id=client_2)
    audit.record(session, hanna, "client.search", "client", None)
    # Another organisation's event about the same person stays with that organisation.
    audit.record(session, make_principal(orgs["region-sthlm"]), "plan.read", "plan", None, client_id=client_1)
    await audit.flush(session, settings.audit_pepper)
    await session.commit()
    auditor = auth("sthlm-stad", "auditor", subject="agnes")

    by_client = await _all_pages(client, auditor, client_id=str(client_1))
    assert [(e["seq"], e["action"], e["actor_subject"]) for e in by_client] == [
        (1, "plan.read", "hanna"),
        (2, "plan.update", "sam"),
    ]
    assert {e["client_id"] for e in by_client} == {str(client_1)}

    by_action = await _all_pages(client, auditor, action="plan.read")
    assert [e["seq"] for e in by_action] == [1, 3]
    by_actor = await _all_pages(client, auditor, actor_subject="hanna")
    assert [e["seq"] for e in by_actor] == [1, 3, 4]
    both = await _all_pages(client, auditor, action="plan.read", client_id=str(client_2))
    assert [e["seq"] for e in both] == [3]
    assert await _all_pages(client, auditor, action="plan.delete") == []
    assert await _all_pages(client, auditor, client_id=str(uuid.uuid4())) == []

    # Time windows need an offset; with one, they filter.
    assert_problem(await client.get(EVENTS, params={"since": "2020-01-01T00:00:00"}, headers=auditor), 400)
    assert await _all_pages(client, auditor, since="2999-01-01T00:00:00Z") == []
    assert [e["seq"] for e in await _all_pages(client, auditor, until="2999-01-01T00:00:00+01:00")][:4] == [
        1, 2, 3, 4,
    ]
    assert_problem(await client.get(EVENTS, params={"client_id": "not-a-uuid"}, headers=auditor), 422)


async def test_cursor_pagination_walks_every_event_once(
    client: httpx.AsyncClient, auth: AuthFactory, orgs: dict[str, OrgRef]
) -> None:
    admin = auth("sthlm-stad", "org_admin")
    created = await _create_units(client, admin, orgs["sthlm-stad"].id, [f"Enhet {i}" for i in range(7)])
    auditor = auth("sthlm-stad", "auditor")

    first = (await client.get(EVENTS, params={"limit": 3, "action": "unit.create"}, headers=auditor)).json()
    assert [e["seq"] for e in first["items"]] == [1, 2, 3]
    assert first["next_cursor"]
    second = (
        await client.get(
            EVENTS, params={"limit": 3, "action": "unit.create", "cursor": first["next_cursor"]}, headers=auditor
        )
    ).json()
    assert [e["seq"] for e in second["items"]] == [4, 5, 6]

    walked = await _all_pages(client, auditor, limit=3, action="unit.create")
    assert [e["seq"] for e in walked] == list(range(1, 8))
    assert [e["object_id"] for e in walked] == [r.json()["id"] for r in created]
    exact = (await client.get(EVENTS, params={"limit": 7, "action": "unit.create"}, headers=auditor)).json()
    assert len(exact["items"]) == 7 and exact["next_cursor"] is None

    for bad in ("garbage", "WyJ4Il0", "W10"):  # not base64 json / not an int / wrong width
        assert_problem(await client.get(EVENTS, params={"cursor": bad}, headers=auditor), 400)
    for limit in (0, 201):
        assert_problem(await client.get(EVENTS, params={"limit": limit}, headers=auditor), 422)


async def test_reviewing_the_log_is_itself_audited(
    client: httpx.AsyncClient, auth: AuthFactory, orgs: dict[str, OrgRef]
) -> None:
    await _create_units(client, auth("sthlm-stad", "org_admin"), orgs["sthlm-stad"].id, ["Enhet"])
    agnes = auth("sthlm-stad", "auditor", subject="agnes")
    person = uuid.uuid4()
    first = await client.get(EVENTS, headers=agnes)
    assert [e["action"] for e in first.json()["items"]] == ["unit.create"]  # not yet its own review
    second = await client.get(EVENTS, params={"client_id": str(person)}, headers=agnes)
    assert second.json()["items"] == []

    reviews = await _all_pages(client, auth("sthlm-stad", "auditor", subject="bertil"), action="audit.review")
    assert [(e["seq"], e["actor_subject"], e["object_type"]) for e in reviews] == [
        (2, "agnes", "audit_event"),
        (3, "agnes", "audit_event"),
    ]
    assert [e["client_id"] for e in reviews] == [None, str(person)]
    assert [e["request_id"] for e in reviews] == [first.headers["x-request-id"], second.headers["x-request-id"]]
    # Bertil's look at the reviews is recorded too, and the chain still holds.
    verify = (await client.get(VERIFY, headers=agnes)).json()
    assert verify == {
        "organisation_id": str(orgs["sthlm-stad"].id),
        "ok": True,
        "events_checked": 4,
        "first_broken_seq": None,
        "reason": None,
    }


# --- verification ----------------------------------------------------------------------------


async def test_verify_reports_an_intact_chain_with_its_length(
    client: httpx.AsyncClient, auth: AuthFactory, orgs: dict[str, OrgRef]
) -> None:
    auditor = auth("sthlm-stad", "auditor")
    empty = (await client.get(VERIFY, headers=auditor)).json()
    assert (empty["ok"], empty["events_checked"]) == (True, 0)

    await _create_units(client, auth("sthlm-stad", "org_admin"), orgs["sthlm-stad"].id, ["E1", "E2", "E3"])
    await _create_units(client, auth("huddinge", "org_admin"), orgs["huddinge"].id, ["H1"])
    response = await client.get(VERIFY, headers=auditor)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "organisation_id": str(orgs["sthlm-stad"].id),
        "ok": True,
        "events_checked": 3,
        "first_broken_seq": None,
        "reason": None,
    }
    # Verifying is not a review of the log's contents, so it adds no event.
    again = (await client.get(VERIFY, headers=auditor)).json()
    assert again["events_checked"] == 3
    huddinge = (await client.get(VERIFY, headers=auth("huddinge", "auditor"))).json()
    assert (huddinge["ok"], huddinge["events_checked"]) == (True, 1)


@asynccontextmanager
async def running_app(db: TestDatabase) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The real app over its own engine (no test transaction), for committed data."""
    app = create_app(db.settings())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://samplan.test") as c:
            yield app, c
    finally:
        await app.state.http.aclose()
        await app.state.db.dispose()


def _bearer(app: FastAPI, org_key: str, *roles: str, subject: str) -> dict[str, str]:
    spec = next(o for o in DEMO_ORGS if o.key == org_key)
    token = app.state.dev_issuer.mint(org_number=spec.org_number, roles=list(roles), subject=subject)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def cli_env(fresh_database: TestDatabase, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SAMPLAN_DATABASE_URL", fresh_database.app_url)
    monkeypatch.setenv("SAMPLAN_MIGRATION_DATABASE_URL", fresh_database.owner_url)
    monkeypatch.setenv("SAMPLAN_DATA_DIR", str(fresh_database.tmp / "data"))
    monkeypatch.setenv("SAMPLAN_ENV", "dev")
    monkeypatch.delenv("SAMPLAN_AUDIT_PEPPER", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _run_cli(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = await asyncio.to_thread(cli.main, ["audit", "verify"])  # the CLI runs its own event loop
    return code, capsys.readouterr().out.splitlines()


async def test_tampering_is_named_by_the_endpoint_and_the_cli(
    fresh_database: TestDatabase, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_app(fresh_database) as (app, c):
        admin = _bearer(app, "sthlm-stad", "org_admin", subject="olga")
        auditor = _bearer(app, "sthlm-stad", "auditor", subject="agnes")
        org_id = (await fresh_org_ids(fresh_database))["sthlm-stad"]
        for i in range(4):
            r = await c.post(f"/api/v1/organisations/{org_id}/units", json={"name": f"U{i}"}, headers=admin)
            assert r.status_code == 201, r.text
        huddinge_id = (await fresh_org_ids(fresh_database))["huddinge"]
        r = await c.post(
            f"/api/v1/organisations/{huddinge_id}/units",
            json={"name": "H"},
            headers=_bearer(app, "huddinge", "org_admin", subject="hugo"),
        )
        assert r.status_code == 201, r.text
        assert (await c.get(VERIFY, headers=auditor)).json()["events_checked"] == 4

        code, lines = await _run_cli(capsys)
        assert code == 0, lines
        assert "ok      Stockholms stad: 4 events" in lines
        assert "ok      Huddinge kommun: 1 events" in lines
        assert lines[-1] == f"{len(DEMO_ORGS)} chains, 0 broken"

        org_param: Any = org_id if fresh_database.backend == "postgresql" else org_id.hex
        await tamper_committed(
            fresh_database,
            "UPDATE audit_event SET actor_subject = 'someone-else' WHERE organisation_id = :org AND seq = 2",
            org=org_param,
        )
        report = (await c.get(VERIFY, headers=auditor)).json()
        assert report["ok"] is False
        assert report["first_broken_seq"] == 2
        assert report["events_checked"] == 1
        assert "altered" in report["reason"]
        # The other organisation's chain is intact.
        other = (await c.get(VERIFY, headers=_bearer(app, "huddinge", "auditor", subject="h-aud"))).json()
        assert (other["ok"], other["events_checked"]) == (True, 1)

        code, lines = await _run_cli(capsys)
        assert code == 1, lines
        assert (
            "BROKEN  Stockholms stad: first broken link at seq 2 (the event was altered); "
            "1 events verified before it"
        ) in lines
        assert "ok      Huddinge kommun: 1 events" in lines
        assert lines[-1] == f"{len(DEMO_ORGS)} chains, 1 broken"

        # Cutting off the tail as well: the earlier break is still the one named.
        await tamper_committed(
            fresh_database, "DELETE FROM audit_event WHERE organisation_id = :org AND seq = 4", org=org_param
        )
        report = (await c.get(VERIFY, headers=auditor)).json()
        assert (report["ok"], report["first_broken_seq"]) == (False, 2)


async def test_a_deleted_event_is_named_by_the_endpoint_and_the_cli(
    fresh_database: TestDatabase, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_app(fresh_database) as (app, c):
        admin = _bearer(app, "huddinge", "org_admin", subject="hugo")
        org_id = (await fresh_org_ids(fresh_database))["huddinge"]
        for i in range(3):
            r = await c.post(f"/api/v1/organisations/{org_id}/units", json={"name": f"U{i}"}, headers=admin)
            assert r.status_code == 201, r.text
        org_param: Any = org_id if fresh_database.backend == "postgresql" else org_id.hex
        await tamper_committed(
            fresh_database, "DELETE FROM audit_event WHERE organisation_id = :org AND seq = 3", org=org_param
        )
        report = (await c.get(VERIFY, headers=_bearer(app, "huddinge", "auditor", subject="a"))).json()
        assert (report["ok"], report["first_broken_seq"], report["events_checked"]) == (False, 3, 2)
        assert "removed" in report["reason"]
        code, lines = await _run_cli(capsys)
        assert code == 1
        assert any(line.startswith("BROKEN  Huddinge kommun: first broken link at seq 3") for line in lines)
        assert lines[-1].endswith("1 broken")


# --- concurrency ------------------------------------------------------------------------------


async def test_concurrent_writers_keep_the_chain_gap_free(fresh_database: TestDatabase) -> None:
    async with running_app(fresh_database) as (app, c):
        ids = await fresh_org_ids(fresh_database)
        sthlm_admin = _bearer(app, "sthlm-stad", "org_admin", subject="olga")
        huddinge_admin = _bearer(app, "huddinge", "org_admin", subject="hugo")

        async def create(org_key: str, headers: dict[str, str], name: str) -> httpx.Response:
            return await c.post(f"/api/v1/organisations/{ids[org_key]}/units", json={"name": name}, headers=headers)

        responses = await asyncio.gather(
            *(create("sthlm-stad", sthlm_admin, f"Parallell {i}") for i in range(20)),
            *(create("huddinge", huddinge_admin, f"Parallell {i}") for i in range(5)),
        )
        assert [r.status_code for r in responses] == [201] * 25, [r.text for r in responses if r.status_code != 201]

        auditor = _bearer(app, "sthlm-stad", "auditor", subject="agnes")
        report = (await c.get(VERIFY, headers=auditor)).json()
        assert report == {
            "organisation_id": str(ids["sthlm-stad"]),
            "ok": True,
            "events_checked": 20,
            "first_broken_seq": None,
            "reason": None,
        }
        events = (await c.get(EVENTS, params={"limit": 200, "action": "unit.create"}, headers=auditor)).json()
        assert [e["seq"] for e in events["items"]] == list(range(1, 21))
        assert sorted(e["object_id"] for e in events["items"]) == sorted(r.json()["id"] for r in responses[:20])
        assert len({e["hash"] for e in events["items"]}) == 20
        other = (await c.get(VERIFY, headers=_bearer(app, "huddinge", "auditor", subject="h"))).json()
        assert (other["ok"], other["events_checked"]) == (True, 5)
