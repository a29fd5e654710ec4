"""Safe retries and optimistic concurrency: Idempotency-Key on creating POSTs, If-Match on plans."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.client import Client, ClientLink
from app.models.idempotency import IdempotencyRecord
from app.models.plan import Need, Plan, PlanVersion
from app.services.identifiers import make_personal_number
from tests.conftest import assert_problem
from tests.plan_helpers import PlanDriver, new_personal_number

CLIENTS = "/api/v1/clients"
PLANS = "/api/v1/plans"
REPLAYED = "idempotency-replayed"


@pytest.fixture
def drv(client: httpx.AsyncClient, auth, orgs) -> PlanDriver:
    return PlanDriver(client, auth, orgs)


async def _count(session: AsyncSession, model: Any, *where: Any) -> int:
    """Count rows through the test's system session, each read in a transaction of its own (so it
    starts in system scope, and the app's later savepoints are not nested in ours)."""
    await session.commit()
    try:
        return int(
            (await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one()
        )
    finally:
        await session.commit()


def _client_body(pnr: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "personal_number": pnr or new_personal_number(),
        "given_name": "Kim",
        "family_name": "Andersson",
        "gender": "kvinna",
        **fields,
    }


def _plan_body(client_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "title": "SIP inför utskrivning",
        "legal_basis": ["HSL 16 kap. 4 §"],
        **fields,
    }


def _h(auth: Any, org: str = "sthlm-stad", role: str = "handlaggare", **headers: str) -> dict[str, str]:
    subject = headers.pop("subject", None)
    base = auth(org, role, subject=subject) if subject else auth(org, role)
    return {**base, **headers}


async def _version(drv: PlanDriver, pid: str) -> int:
    r = await drv.get(pid)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == f'"{r.json()["version"]}"'
    return int(r.json()["version"])


# ---- Idempotency-Key: retries ---------------------------------------------------------------


async def test_a_retried_plan_create_returns_the_first_answer_and_creates_nothing(
    drv: PlanDriver, client: httpx.AsyncClient, auth, session: AsyncSession
) -> None:
    cid = (await drv.register_client())["id"]
    headers = _h(auth, **{"Idempotency-Key": "plan-create-0001"})
    body = _plan_body(cid)
    first = await client.post(PLANS, json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert REPLAYED not in first.headers
    plans = await _count(session, Plan)
    versions = await _count(session, PlanVersion)

    for _ in range(2):
        again = await client.post(PLANS, json=body, headers=headers)
        assert again.status_code == 201, again.text
        assert again.headers[REPLAYED] == "true"
        assert again.json() == first.json()
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["location"] == first.headers["location"] == f"{PLANS}/{first.json()['id']}"
        assert again.headers["content-type"].startswith("application/json")
    assert await _count(session, Plan) == plans
    assert await _count(session, PlanVersion) == versions
    assert await _count(session, Plan, Plan.client_id == uuid.UUID(cid)) == 1
    assert await _count(session, IdempotencyRecord, IdempotencyRecord.key == "plan-create-0001") == 1


async def test_a_retried_client_register_is_a_replay_not_a_link(
    client: httpx.AsyncClient, auth, session: AsyncSession
) -> None:
    headers = _h(auth, **{"Idempotency-Key": "register-kim"})
    body = _client_body()
    first = await client.post(CLIENTS, json=body, headers=headers)
    assert first.status_code == 201 and first.json()["created"] is True
    clients, links = await _count(session, Client), await _count(session, ClientLink)
    again = await client.post(CLIENTS, json=body, headers=headers)
    # Without the key this would be "200, created: false"; the retry gets the first answer.
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers[REPLAYED] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert (await _count(session, Client), await _count(session, ClientLink)) == (clients, links)


async def test_a_retried_sub_resource_post_adds_nothing(
    drv: PlanDriver, client: httpx.AsyncClient, auth, session: AsyncSession
) -> None:
    pid = (await drv.create_plan())["id"]
    body = {"description": "Boende efter utskrivning"}
    first = await drv.post(pid, "/needs", body, **{"Idempotency-Key": "need-1"})
    assert first.status_code == 201, first.text
    version = await _version(drv, pid)
    again = await drv.post(pid, "/needs", body, **{"Idempotency-Key": "need-1"})
    assert again.status_code == 201, again.text
    assert again.headers[REPLAYED] == "true"
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert len(again.json()["needs"]) == 1
    assert await _count(session, Need, Need.plan_id == uuid.UUID(pid)) == 1
    assert await _version(drv, pid) == version  # the replay bumped no version

    # Even after the plan moved on, a retry gets the first answer, not a second need.
    assert (await drv.post(pid, "/goals", {"description": "Eget boende"})).status_code == 201
    late = await drv.post(pid, "/needs", body, **{"Idempotency-Key": "need-1"})
    assert late.status_code == 201 and late.headers[REPLAYED] == "true"
    assert late.json() == first.json()
    assert await _count(session, Need, Need.plan_id == uuid.UUID(pid)) == 1


async def test_the_same_key_with_a_different_body_is_refused(
    drv: PlanDriver, client: httpx.AsyncClient, auth, session: AsyncSession
) -> None:
    cid = (await drv.register_client())["id"]
    headers = _h(auth, **{"Idempotency-Key": "k-1"})
    assert (await client.post(PLANS, json=_plan_body(cid), headers=headers)).status_code == 201
    plans = await _count(session, Plan)
    r = await client.post(PLANS, json=_plan_body(cid, title="En annan titel"), headers=headers)
    body = assert_problem(r, 422)
    assert REPLAYED not in r.headers
    assert [e["field"] for e in body["errors"]] == ["Idempotency-Key"]  # type: ignore[union-attr, index]
    assert await _count(session, Plan) == plans

    # The same key on another endpoint, even with an equal body, is a different request too.
    pid = (await drv.create_plan(client_id=cid))["id"]
    plans = await _count(session, Plan)
    need = {"description": "Stöd i boendet"}
    assert (await drv.post(pid, "/needs", need, **{"Idempotency-Key": "k-2"})).status_code == 201
    assert_problem(await drv.post(pid, "/goals", need, **{"Idempotency-Key": "k-2"}), 422)
    other_pid = (await drv.create_plan(client_id=cid))["id"]
    assert_problem(await drv.post(other_pid, "/needs", need, **{"Idempotency-Key": "k-2"}), 422)
    assert await _count(session, Need, Need.plan_id == uuid.UUID(other_pid)) == 0
    assert await _count(session, Plan) == plans + 1


async def test_a_key_is_per_user_and_per_organisation(
    drv: PlanDriver, client: httpx.AsyncClient, auth, session: AsyncSession
) -> None:
    cid = (await drv.register_client("sthlm-stad"))["id"]
    body = _plan_body(cid)
    key = {"Idempotency-Key": "shared-key"}
    hanna = await client.post(PLANS, json=body, headers=_h(auth, subject="hanna", **key))
    assert hanna.status_code == 201
    # Another handläggare of the same organisation, with the same key and body: a plan of her own.
    sara = await client.post(PLANS, json=body, headers=_h(auth, subject="sara", **key))
    assert sara.status_code == 201, sara.text
    assert REPLAYED not in sara.headers
    assert sara.json()["id"] != hanna.json()["id"]
    assert await _count(session, Plan, Plan.client_id == uuid.UUID(cid)) == 2

    # Another organisation, with the same key, the same subject and the same body.
    region = _h(auth, "region-sthlm", subject="hanna", **key)
    r = await client.post(CLIENTS, json=_client_body(), headers=region)
    assert r.status_code == 201 and REPLAYED not in r.headers  # not a 422: the key is the region's own
    pnr = make_personal_number(date(1960, 1, 1), 600)
    assert (await client.post(CLIENTS, json=_client_body(pnr), headers=_h(auth))).status_code == 201
    linked = await client.post(
        CLIENTS, json=_client_body(pnr), headers=_h(auth, "region-sthlm", **{"Idempotency-Key": "x"})
    )
    assert linked.status_code == 200 and linked.json()["created"] is False
    region_plan = await client.post(
        PLANS, json=_plan_body(linked.json()["id"]), headers=_h(auth, "region-sthlm", subject="sara", **key)
    )
    assert region_plan.status_code == 201 and REPLAYED not in region_plan.headers
    assert region_plan.json()["initiating_organisation_id"] != hanna.json()["initiating_organisation_id"]


@pytest.mark.parametrize(
    "key",
    ["x" * 201, "x" * 1000, "has space", " leading", "tab\there", "ünicode", ""],
    ids=["201-chars", "1000-chars", "space", "leading-space", "tab", "latin1", "empty"],
)
async def test_a_malformed_key_is_400_and_creates_nothing(
    drv: PlanDriver, client: httpx.AsyncClient, auth, session: AsyncSession, key: str
) -> None:
    cid = (await drv.register_client())["id"]
    plans, clients = await _count(session, Plan), await _count(session, Client)
    headers = {**auth("sthlm-stad", "handlaggare"), "Idempotency-Key": key.encode("latin-1")}  # type: ignore[dict-item]
    r = await client.post(PLANS, json=_plan_body(cid), headers=headers)
    body = assert_problem(r, 400)
    assert "Idempotency-Key" in str(body["detail"])
    assert_problem(await client.post(CLIENTS, json=_client_body(), headers=headers), 400)
    assert (await _count(session, Plan), await _count(session, Client)) == (plans, clients)


async def test_a_key_of_200_visible_characters_is_accepted(
    drv: PlanDriver, client: httpx.AsyncClient, auth
) -> None:
    cid = (await drv.register_client())["id"]
    key = ("abc-!~" * 40)[:200]
    first = await client.post(PLANS, json=_plan_body(cid), headers=_h(auth, **{"Idempotency-Key": key}))
    assert first.status_code == 201, first.text
    again = await client.post(PLANS, json=_plan_body(cid), headers=_h(auth, **{"Idempotency-Key": key}))
    assert again.headers[REPLAYED] == "true" and again.json()["id"] == first.json()["id"]


async def test_without_a_key_two_posts_create_two(
    drv: PlanDriver, client: httpx.AsyncClient, auth, session: AsyncSession
) -> None:
    cid = (await drv.register_client())["id"]
    body = _plan_body(cid)
    first = await client.post(PLANS, json=body, headers=_h(auth))
    second = await client.post(PLANS, json=body, headers=_h(auth))
    assert (first.status_code, second.status_code) == (201, 201)
    assert REPLAYED not in second.headers
    assert first.json()["id"] != second.json()["id"]
    assert await _count(session, Plan, Plan.client_id == uuid.UUID(cid)) == 2

    need = {"description": "Samma behov"}
    pid = first.json()["id"]
    assert (await drv.post(pid, "/needs", need)).status_code == 201
    assert (await drv.post(pid, "/needs", need)).status_code == 201
    assert await _count(session, Need, Need.plan_id == uuid.UUID(pid)) == 2


async def test_a_failed_request_is_not_remembered(
    drv: PlanDriver, client: httpx.AsyncClient, auth, session: AsyncSession
) -> None:
    plan = await drv.create_plan()
    pid, version = plan["id"], plan["version"]
    key = {"Idempotency-Key": "retry-after-412"}
    need = {"description": "Boende"}
    assert_problem(await drv.post(pid, "/needs", need, **key, **{"If-Match": f'"{version + 5}"'}), 412)
    # The refused attempt stored nothing, so the retry with the right version is carried out.
    r = await drv.post(pid, "/needs", need, **key, **{"If-Match": f'"{version}"'})
    assert r.status_code == 201, r.text
    assert REPLAYED not in r.headers
    assert await _count(session, Need, Need.plan_id == uuid.UUID(pid)) == 1
    # An invalid body is not remembered either: the same key then works with a valid one.
    assert_problem(await drv.post(pid, "/goals", {"description": ""}, **{"Idempotency-Key": "g"}), 422)
    assert (
        await drv.post(pid, "/goals", {"description": "Mål"}, **{"Idempotency-Key": "g"})
    ).status_code == 201


async def test_a_key_cannot_replay_another_orgs_answer(
    drv: PlanDriver, client: httpx.AsyncClient, auth, session: AsyncSession
) -> None:
    """Cross-organisation: an outsider reusing a key and body gets their own answer (here a 404
    for a plan they cannot see), never the stored one."""
    pid = (await drv.create_plan())["id"]
    key = {"Idempotency-Key": "need-secret"}
    first = await drv.post(pid, "/needs", {"description": "Hemligt"}, **key)
    assert first.status_code == 201
    r = await drv.post(pid, "/needs", {"description": "Hemligt"}, org="region-sthlm", **key)
    assert_problem(r, 404)
    assert "Hemligt" not in r.text and REPLAYED not in r.headers
    assert await _count(session, Need, Need.plan_id == uuid.UUID(pid)) == 1


# ---- If-Match on plans ----------------------------------------------------------------------


async def test_patch_needs_if_match(drv: PlanDriver, session: AsyncSession) -> None:
    pid = (await drv.create_plan(title="Första titeln"))["id"]
    versions = await _count(session, PlanVersion, PlanVersion.plan_id == uuid.UUID(pid))
    body = assert_problem(await drv.patch(pid, "", {"title": "Ny"}), 428)
    assert "If-Match" in str(body["detail"])
    assert (await drv.get(pid)).json()["title"] == "Första titeln"
    assert await _count(session, PlanVersion, PlanVersion.plan_id == uuid.UUID(pid)) == versions


@pytest.mark.parametrize("stale", [0, 2, 99])
async def test_patch_with_a_stale_if_match_is_412(drv: PlanDriver, session: AsyncSession, stale: int) -> None:
    plan = await drv.create_plan(title="Första titeln")
    pid = plan["id"]
    assert plan["version"] == 1
    r = await drv.patch(pid, "", {"title": "Ny"}, **{"If-Match": f'"{stale}"'})
    body = assert_problem(r, 412)
    assert body["current_version"] == 1
    assert "ETag" not in r.headers or r.headers["etag"] != '"2"'
    current = (await drv.get(pid)).json()
    assert (current["title"], current["version"]) == ("Första titeln", 1)
    assert await _count(session, PlanVersion, PlanVersion.plan_id == uuid.UUID(pid)) == 1


async def test_patch_after_someone_elses_change_is_412(drv: PlanDriver) -> None:
    plan = await drv.create_plan()
    pid, v1 = plan["id"], plan["version"]
    r = await drv.patch(pid, "", {"title": "Först"}, **{"If-Match": f'"{v1}"'})
    assert r.status_code == 200
    # A second author still holding the old ETag loses, with the version to reload.
    other = {**drv.auth("sthlm-stad", "handlaggare", subject="another-handlaggare"), "If-Match": f'"{v1}"'}
    r = await drv.client.patch(f"{PLANS}/{pid}", json={"title": "Sist"}, headers=other)
    assert assert_problem(r, 412)["current_version"] == v1 + 1
    assert (await drv.get(pid)).json()["title"] == "Först"


@pytest.mark.parametrize("value", ["abc", '"abc"', '"1.0"', '"-1"', '"1e3"', ""])
async def test_patch_with_a_malformed_if_match_is_400(drv: PlanDriver, value: str) -> None:
    pid = (await drv.create_plan(title="Första titeln"))["id"]
    assert_problem(await drv.patch(pid, "", {"title": "Ny"}, **{"If-Match": value}), 400)
    assert (await drv.get(pid)).json()["title"] == "Första titeln"


async def test_patch_with_the_current_if_match_succeeds_with_a_new_etag(
    drv: PlanDriver, session: AsyncSession
) -> None:
    plan = await drv.create_plan()
    pid = plan["id"]
    r = await drv.patch(pid, "", {"title": "Ny titel"}, **{"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    assert (r.json()["title"], r.json()["version"]) == ("Ny titel", 2)
    # The new ETag is the one to use next; the old one is now stale.
    r = await drv.patch(pid, "", {"client_participated": True}, **{"If-Match": r.headers["etag"]})
    assert r.status_code == 200 and r.headers["etag"] == '"3"'
    assert_problem(await drv.patch(pid, "", {"title": "X"}, **{"If-Match": '"2"'}), 412)
    assert await _count(session, PlanVersion, PlanVersion.plan_id == uuid.UUID(pid)) == 3


async def test_if_match_from_another_org_is_404_not_412(drv: PlanDriver) -> None:
    """Cross-organisation: a plan outside the caller's reach answers 404 whatever the version,
    so a 412 (with the current version) never confirms that it exists."""
    pid = (await drv.create_plan(title="Första titeln"))["id"]
    for version in ("1", "7"):
        for org in ("region-sthlm", "uppsala"):
            r = await drv.patch(pid, "", {"title": "Kapad"}, org=org, **{"If-Match": f'"{version}"'})
            body = assert_problem(r, 404)
            assert "current_version" not in body
            r = await drv.post(
                pid, "/transitions", {"to": "cancelled"}, org=org, **{"If-Match": f'"{version}"'}
            )
            assert_problem(r, 404)
            r = await drv.post(pid, "/needs", {"description": "x"}, org=org, **{"If-Match": f'"{version}"'})
            assert "current_version" not in assert_problem(r, 404)
    current = (await drv.get(pid)).json()
    assert (current["title"], current["status"], current["version"], current["needs"]) == (
        "Första titeln",
        "draft",
        1,
        [],
    )


async def test_a_reader_with_the_right_if_match_is_403(drv: PlanDriver) -> None:
    pid = (await drv.create_plan())["id"]
    r = await drv.patch(pid, "", {"title": "Ny"}, role="lasare", **{"If-Match": '"1"'})
    assert_problem(r, 403)
    assert await _version(drv, pid) == 1


async def test_transitions_follow_the_same_if_match_rules(drv: PlanDriver, session: AsyncSession) -> None:
    pid = (await drv.create_plan())["id"]
    cancel = {"to": "cancelled", "reason": "Klienten flyttade"}
    assert_problem(await drv.post(pid, "/transitions", cancel), 428)
    assert (
        assert_problem(await drv.post(pid, "/transitions", cancel, **{"If-Match": '"5"'}), 412)[
            "current_version"
        ]
        == 1
    )
    assert_problem(await drv.post(pid, "/transitions", cancel, **{"If-Match": "abc"}), 400)
    assert (await drv.get(pid)).json()["status"] == "draft"
    assert await _count(session, PlanVersion, PlanVersion.plan_id == uuid.UUID(pid)) == 1

    r = await drv.post(pid, "/transitions", cancel, **{"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert r.headers["etag"] == '"2"' and r.json()["version"] == 2
    assert (await drv.get(pid)).headers["etag"] == '"2"'


async def test_an_activation_with_the_right_if_match_moves_the_etag(drv: PlanDriver) -> None:
    plan = await drv.ready_plan()
    pid, version = plan["id"], plan["version"]
    assert assert_problem(await drv.transition(pid, "active", version - 1), 412)["current_version"] == version
    r = await drv.transition(pid, "active", version)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == f'"{version + 1}"'
    assert_problem(await drv.transition(pid, "paused", version), 412)
    assert (await drv.get(pid)).json()["status"] == "active"


async def test_sub_resource_posts_take_an_optional_if_match(drv: PlanDriver, session: AsyncSession) -> None:
    pid = (await drv.create_plan())["id"]
    needs = Need.plan_id == uuid.UUID(pid)

    # Without If-Match: accepted.
    r = await drv.post(pid, "/needs", {"description": "Utan villkor"})
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2
    # Stale: refused, and nothing changes.
    r = await drv.post(pid, "/needs", {"description": "Inaktuell"}, **{"If-Match": '"1"'})
    assert assert_problem(r, 412)["current_version"] == 2
    assert await _count(session, Need, needs) == 1
    assert await _version(drv, pid) == 2
    assert [n["description"] for n in (await drv.get(pid)).json()["needs"]] == ["Utan villkor"]
    # Malformed: refused.
    assert_problem(await drv.post(pid, "/needs", {"description": "Trasig"}, **{"If-Match": "abc"}), 400)
    assert await _count(session, Need, needs) == 1
    # Current: accepted, with the next version.
    r = await drv.post(pid, "/needs", {"description": "Med villkor"}, **{"If-Match": '"2"'})
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == '"3"' and r.json()["version"] == 3
    assert await _count(session, Need, needs) == 2
    # The other sub-resources refuse a stale version just the same.
    assert_problem(await drv.post(pid, "/goals", {"description": "Mål"}, **{"If-Match": '"2"'}), 412)
    r = await drv.post(
        pid,
        "/participants",
        {"organisation_id": str(drv.orgs["region-sthlm"].id), "kind": "huvudman"},
        **{"If-Match": '"2"'},
    )
    assert_problem(r, 412)
    assert await _version(drv, pid) == 3
    assert len((await drv.get(pid)).json()["participants"]) == 1
