"""Fuzzing every operation of the OpenAPI schema with Schemathesis, with valid tokens.

Every response must not be a 5xx, and must have a documented status code, a documented content
type and a body that matches the documented schema; every request Schemathesis builds to be
invalid (negative data) must be refused with a 4xx. The schema is the app's own /openapi.json, read
in-process (`from_asgi`); the requests go in-process to one app for the module, on one database
connection: the module's transaction holds a small world, and each operation's test runs in a
savepoint inside it that is rolled back afterwards.

The world is a client with an episode and a coordinator, and a plan with a participant, consent,
need, goal, action, meeting and follow-up, plus a unit and a webhook. Three in four positive cases
are steered into it (path parameters and ids in the body become the world's ids, If-Match the
plan's current ETag), so the fuzzer reaches the domain code behind the 404s; the rest, and every
negative case, are sent as generated.

    SAMPLAN_FUZZ_EXAMPLES   examples per operation in the fuzzing phase (default 5, as in CI)
    SAMPLAN_FUZZ_COVERAGE   negative (default) or all: the coverage phase's negative half, or both
    SAMPLAN_FUZZ_SEED       replay a run (the seed is printed with every failure)
    SAMPLAN_FUZZ_STATS      write a JSON summary (requests by phase, mode and status) to this file

docs/fuzzing.md has the longer run and its numbers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis import checks
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.conftest import TestDatabase
from tests.plan_helpers import new_personal_number

EXAMPLES = int(os.environ.get("SAMPLAN_FUZZ_EXAMPLES", "5"))
SEED = int(os.environ.get("SAMPLAN_FUZZ_SEED") or random.SystemRandom().getrandbits(32))
COVERAGE = os.environ.get("SAMPLAN_FUZZ_COVERAGE", "negative")
STATS_FILE = os.environ.get("SAMPLAN_FUZZ_STATS")
assert COVERAGE in ("negative", "all"), "SAMPLAN_FUZZ_COVERAGE is negative or all"

# Who fuzzes: a handläggare runs every phase in both modes; the other roles run the fuzzing phase
# with positive data, to reach what their roles may do (an org_admin's units, a system's events).
ORG = "sthlm-stad"
FULL_ROLE = "handlaggare"
OTHER_ROLES = ["org_admin", "system"]

# Negative data must be refused with a 4xx; Schemathesis' default list also accepts any 5xx.
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "412", "413", "415", "422", "428"]

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]

# An app that only serves its /openapi.json (no database, no dev issuer), read in-process.
_schema_dir = tempfile.TemporaryDirectory(prefix="samplan-fuzz-schema-")
_schema_app = create_app(
    Settings(
        env="dev", data_dir=Path(_schema_dir.name), dev_issuer_enabled=False, dispatcher_in_process=False
    )
)


def _load_schema(phases: list[str], modes: list[str], coverage_modes: list[str] | None = None) -> Any:
    loaded = schemathesis.openapi.from_asgi(
        "/openapi.json", _schema_app, config=schemathesis.Config(seed=SEED)
    )
    # The test sends valid tokens; generated Authorization values would only ever test the 401s.
    loaded.config.generation.update(modes=modes, max_examples=EXAMPLES, with_security_parameters=False)
    loaded.config.phases.update(phases=phases)
    if coverage_modes:
        loaded.config.phases.coverage.generation.update(modes=coverage_modes)
    loaded.config.checks.negative_data_rejection.expected_statuses = REJECTED
    return loaded


# The coverage phase (every boundary and every way to break each parameter) is the slow one: CI
# runs its negative half, the longer run (SAMPLAN_FUZZ_COVERAGE=all) both.
schema = _load_schema(
    ["examples", "coverage", "fuzzing"],
    ["positive", "negative"],
    coverage_modes=["negative"] if COVERAGE == "negative" else None,
)
roles_schema = _load_schema(["fuzzing"], ["positive"])


def fuzz_settings(test_database: TestDatabase) -> Settings:
    # No rate limits (thousands of requests a minute from one user) and no in-process dispatcher.
    return test_database.settings(rate_limit_enabled=False, dispatcher_in_process=False)


# -- the world: made once per module in an outer transaction, each test in a savepoint inside it


@dataclass
class World:
    ids: dict[str, str]
    org_ids: dict[str, str]
    body_ids: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
async def world_connection(app_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with app_engine.connect() as conn:
        outer = await conn.begin()
        yield conn
        if outer.is_active:
            await outer.rollback()


@pytest.fixture
async def savepoint(world_connection: AsyncConnection, world: World) -> AsyncIterator[AsyncConnection]:
    """Replaces the suite's per-test transaction: a savepoint in the module's, rolled back after
    each test, so every operation starts from the same world."""
    nested = await world_connection.begin_nested()
    yield world_connection
    if nested.is_active:
        await nested.rollback()


def _last_segment(response: httpx.Response) -> str:
    assert response.status_code in (200, 201), response.text
    return response.headers["location"].rstrip("/").rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
async def fuzz_app(
    world_connection: AsyncConnection, test_database: TestDatabase, app_engine: AsyncEngine
) -> AsyncIterator[FastAPI]:
    """One app for the module, on the module's connection (each test's changes are undone by
    its savepoint); made once because making an app per operation costs more than fuzzing it."""
    settings = fuzz_settings(test_database)
    db = Database(settings, engine=app_engine)
    db.sessionmaker = async_sessionmaker(
        bind=world_connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    application = create_app(settings, database=db)
    yield application
    await application.state.http.aclose()


@pytest.fixture(scope="module")
async def fuzz_client(fuzz_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fuzz_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://samplan.test") as c:
        yield c


@pytest.fixture(scope="module")
async def world(fuzz_app: FastAPI, fuzz_client: httpx.AsyncClient) -> World:
    app, client = fuzz_app, fuzz_client
    orgs = (await client.get("/api/v1/organisations?limit=200", headers=_auth(app, ORG, "lasare"))).json()
    org_ids = {o["org_number"]: o["id"] for o in orgs["items"]}
    by_key = {key: org_ids[number] for key, number in _demo_numbers().items()}
    stad, region = by_key["sthlm-stad"], by_key["region-sthlm"]
    h = _auth(app, ORG, FULL_ROLE)
    admin = _auth(app, ORG, "org_admin")

    async def post(url: str, body: dict[str, Any], headers: dict[str, str] = h) -> httpx.Response:
        response = await client.post(url, json=body, headers=headers)
        assert response.status_code in (200, 201), f"{url}: {response.text}"
        return response

    today = date.today()
    coordinator = _auth(app, ORG, "samordnare")
    user_id = (await client.get("/api/v1/me", headers=coordinator)).json()["user_id"]
    unit_id = _last_segment(await post(f"/api/v1/organisations/{stad}/units", {"name": "Fuzz"}, admin))
    webhook_id = _last_segment(
        await post(
            "/api/v1/webhooks",
            {"url": "https://treserva.example.se/hook", "event_types": ["plan.created"]},
            admin,
        )
    )
    client_body = {
        "personal_number": new_personal_number(),
        "given_name": "Kim",
        "family_name": "Andersson",
        "gender": "kvinna",
    }
    client_id = (await post("/api/v1/clients", client_body)).json()["id"]
    episode_id = _last_segment(
        await post(
            f"/api/v1/clients/{client_id}/episodes",
            {"phase": "lvm_vard", "start_date": str(today - timedelta(days=30)), "organisation_id": stad},
        )
    )
    await post(
        f"/api/v1/clients/{client_id}/coordinators",
        {"user_id": user_id, "organisation_id": stad, "start_date": str(today)},
    )
    plan_body = {
        "client_id": client_id,
        "title": "SIP inför utskrivning",
        "legal_basis": ["SoL 2 kap. 7 §"],
        "overall_responsible_organisation_id": stad,
        "follow_up_date": str(today + timedelta(days=30)),
    }
    plan_id = (await post("/api/v1/plans", plan_body)).json()["id"]
    plan_url = f"/api/v1/plans/{plan_id}"
    await post(f"{plan_url}/participants", {"organisation_id": region, "kind": "huvudman"})
    consent = {
        "given_at": datetime.now(UTC).isoformat(),
        "obtained_by": "Hanna Handläggare",
        "method": "written",
        "scope_organisation_ids": [stad, region],
    }
    consent_id = _last_segment(await post(f"{plan_url}/consents", consent))
    need_id = _last_segment(await post(f"{plan_url}/needs", {"description": "Boende"}))
    goal_id = _last_segment(
        await post(f"{plan_url}/goals", {"description": "Eget boende", "need_id": need_id})
    )
    action_id = _last_segment(
        await post(f"{plan_url}/actions", {"description": "Boendestöd", "responsible_organisation_id": stad})
    )
    meeting = {
        "starts_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
        "purpose": "SIP-möte",
        "questions": ["Boende"],
        "location": "Socialförvaltningen",
        "invitee_organisation_ids": [region],
    }
    meeting_id = _last_segment(await post(f"{plan_url}/meetings", meeting))
    follow_up_id = _last_segment(
        await post(f"{plan_url}/follow-ups", {"due_date": str(today + timedelta(days=14))})
    )
    return World(
        ids={
            "organisation_id": stad,
            "client_id": client_id,
            "episode_id": episode_id,
            "plan_id": plan_id,
            "consent_id": consent_id,
            "need_id": need_id,
            "goal_id": goal_id,
            "action_id": action_id,
            "meeting_id": meeting_id,
            "follow_up_id": follow_up_id,
            "webhook_id": webhook_id,
            "number": "1",
        },
        org_ids={"sthlm-stad": stad, "region-sthlm": region},
        body_ids={
            "client_id": client_id,
            "need_id": need_id,
            "goal_id": goal_id,
            "unit_id": unit_id,
            "user_id": user_id,
        },
    )


def _demo_numbers() -> dict[str, str]:
    from app.services.demo import DEMO_ORGS

    return {spec.key: spec.org_number for spec in DEMO_ORGS}


def _auth(app: Any, org_key: str, role: str) -> dict[str, str]:
    token = app.state.dev_issuer.mint(
        org_number=_demo_numbers()[org_key],
        roles=[role],
        subject=f"fuzz-{org_key}-{role}",
        name=f"Fuzz {role}",
    )
    return {"Authorization": f"Bearer {token}"}


# -- sending a case to the test's app


_ORG_FIELDS = {"organisation_id", "responsible_organisation_id", "overall_responsible_organisation_id"}
_ORG_LIST_FIELDS = {"scope_organisation_ids", "invitee_organisation_ids"}


@dataclass
class Sender:
    client: httpx.AsyncClient
    loop: asyncio.AbstractEventLoop
    headers: dict[str, str]
    world: World
    steer_turn: Iterator[int] = field(default_factory=itertools.count)
    # Per test, so one operation's test replays alike alone or in the whole run.
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))

    def __call__(self, case: Any) -> httpx.Response:
        if case.meta is not None and not case.meta.generation.mode.is_negative and next(self.steer_turn) % 4:
            self._steer(case)
        kwargs = case.as_transport_kwargs(base_url=str(self.client.base_url), headers=self.headers)
        kwargs.pop("cookies", None)
        data = kwargs.pop("data", None)
        if isinstance(data, bytes | str):
            kwargs["content"] = data
        elif data is not None:
            kwargs["data"] = data
        response = self.loop.run_until_complete(self.client.request(**kwargs))
        STATS[_phase(case), _mode(case), response.status_code] += 1
        return response

    def _steer(self, case: Any) -> None:
        """Aim a positive case at the world: its ids, and the plan's current ETag."""
        for name in case.path_parameters or {}:
            if name in self.world.ids:
                case.path_parameters[name] = self.world.ids[name]
        if isinstance(case.body, dict):
            orgs = list(self.world.org_ids.values())
            for key, value in case.body.items():
                if value is None:
                    continue
                if key in self.world.body_ids:
                    case.body[key] = self.world.body_ids[key]
                elif key in _ORG_FIELDS or key == "responsible_kommun_id":
                    case.body[key] = orgs[0] if key == "responsible_kommun_id" else self.rng.choice(orgs)
                elif key in _ORG_LIST_FIELDS and isinstance(value, list):
                    case.body[key] = orgs[: max(1, min(len(value), len(orgs)))]
        plan_id = (case.path_parameters or {}).get("plan_id")
        if plan_id and any(name.lower() == "if-match" for name in case.headers or {}):
            current = self.loop.run_until_complete(
                self.client.get(f"/api/v1/plans/{plan_id}", headers=self.headers)
            )
            if current.status_code == 200:
                for name in list(case.headers):
                    if name.lower() == "if-match":
                        case.headers[name] = current.headers["etag"]


@pytest.fixture
async def loop() -> asyncio.AbstractEventLoop:
    """The loop the suite's async fixtures (and the database connection) live on; the sync
    Hypothesis test drives the app on it between examples."""
    return asyncio.get_running_loop()


@pytest.fixture
def send(
    fuzz_app: FastAPI,
    fuzz_client: httpx.AsyncClient,
    loop: asyncio.AbstractEventLoop,
    world: World,
    savepoint: AsyncConnection,
) -> Sender:
    return Sender(fuzz_client, loop, _auth(fuzz_app, ORG, FULL_ROLE), world)


@pytest.fixture(params=OTHER_ROLES)
def send_as_role(
    request: pytest.FixtureRequest,
    fuzz_app: FastAPI,
    fuzz_client: httpx.AsyncClient,
    loop: asyncio.AbstractEventLoop,
    world: World,
    savepoint: AsyncConnection,
) -> Sender:
    return Sender(fuzz_client, loop, _auth(fuzz_app, ORG, request.param), world)


def _validate(case: Any, response: httpx.Response) -> None:
    try:
        case.validate_response(response, checks=CHECKS)
    except Exception as exc:
        exc.add_note(
            f"replay with SAMPLAN_FUZZ_SEED={SEED} SAMPLAN_FUZZ_EXAMPLES={EXAMPLES} SAMPLAN_FUZZ_COVERAGE={COVERAGE}"
        )
        raise


_HYPOTHESIS = hypothesis_settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)


@_HYPOTHESIS
@schema.parametrize()
def test_api_as_handlaggare(case: Any, send: Sender) -> None:
    _validate(case, send(case))


@_HYPOTHESIS
@roles_schema.parametrize()
def test_api_as_other_roles(case: Any, send_as_role: Sender) -> None:
    _validate(case, send_as_role(case))


# -- numbers for docs/fuzzing.md

STATS: Counter[tuple[str, str, int]] = Counter()


def _phase(case: Any) -> str:
    return case.meta.phase.name.value if case.meta is not None else "explicit"


def _mode(case: Any) -> str:
    return case.meta.generation.mode.value if case.meta is not None else "positive"


@pytest.fixture(scope="module", autouse=True)
def _write_stats() -> Iterator[None]:
    started = time.perf_counter()
    yield
    if not STATS_FILE:
        return
    by_status: Counter[str] = Counter()
    by_phase_mode: Counter[str] = Counter()
    for (phase, mode, status), n in STATS.items():
        by_status[str(status)] += n
        by_phase_mode[f"{phase}/{mode}"] += n
    summary = {
        "seed": SEED,
        "examples_per_operation": EXAMPLES,
        "operations": len(list(schema.get_all_operations())),
        "requests": sum(STATS.values()),
        "seconds": round(time.perf_counter() - started, 1),
        "by_phase_and_mode": dict(sorted(by_phase_mode.items())),
        "by_status": dict(sorted(by_status.items())),
    }
    Path(STATS_FILE).write_text(json.dumps(summary, indent=2) + "\n")


# -- what the fuzzer found, pinned


async def test_nul_characters_are_refused_not_stored(
    fuzz_app: FastAPI, fuzz_client: httpx.AsyncClient, savepoint: AsyncConnection
) -> None:
    body = {
        "personal_number": new_personal_number(),
        "given_name": "Ki\x00m",
        "family_name": "A",
        "gender": "man",
    }
    r = await fuzz_client.post("/api/v1/clients", json=body, headers=_auth(fuzz_app, ORG, FULL_ROLE))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == ["body.given_name"]
    r = await fuzz_client.get(
        "/api/v1/audit-events", params={"action": "plan.\x00read"}, headers=_auth(fuzz_app, ORG, "auditor")
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "query.action"


async def test_an_event_seq_beyond_bigint_is_invalid_not_an_overflow(
    fuzz_app: FastAPI, fuzz_client: httpx.AsyncClient, savepoint: AsyncConnection
) -> None:
    r = await fuzz_client.get(
        "/api/v1/events", params={"after": 2**63}, headers=_auth(fuzz_app, ORG, "system")
    )
    assert r.status_code == 422, r.text


def test_every_api_operation_documents_its_problems() -> None:
    spec = _schema_app.openapi()
    assert spec["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if path.startswith("/api/"):
                assert {"401", "403", "422", "429"} <= responses.keys(), f"{method} {path}"
            for status, response in responses.items():
                if status[0] in "45":
                    assert list(response.get("content", {})) == ["application/problem+json"], (
                        f"{method} {path} {status}"
                    )


@pytest.mark.parametrize(("start", "end"), [("0003-01-01", "0003-01-01"), ("9995-01-01", "9995-06-30")])
async def test_a_report_period_far_from_now_is_invalid_not_a_crash(
    fuzz_app: FastAPI, fuzz_client: httpx.AsyncClient, savepoint: AsyncConnection, start: str, end: str
) -> None:
    r = await fuzz_client.get(
        "/api/v1/reports/coverage",
        params={"from": start, "to": end},
        headers=_auth(fuzz_app, ORG, "org_admin"),
    )
    assert r.status_code == 422, r.text
