"""The object-level authorisation matrix (OWASP API1 BOLA, API3 property level, API5 function level).

For every route of the application's own route table, every caller kind gets exactly the status in
MATRIX, with a valid body (and If-Match) so that a refusal is about access and never about input;
errors are problem+json; and no response carries what the caller may not see of the story
(tests/security/conftest.py): the client's name and personal number, the plan's content, another
organisation's webhook. A route missing from MATRIX (or PUBLIC) fails `test_every_route_is_classified`.

Conventions the expectations follow (API.md): an object outside the caller's reach answers 404,
also to roles that never read plan or client content (rss, auditor, org_admin, platform_admin);
a known object the caller's role or organisation may not change answers 403; a foreign object
named in a body (POST /plans with another organisation's client) answers 422 naming the field,
exactly as for an id that does not exist.

Below the matrix: id-swapping and token attacks across organisations.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import get_principal
from app.models.care_chain import CoordinatorAssignment, Episode
from app.models.events import Webhook
from app.models.organisation import Unit
from app.services.identifiers import luhn_check_digit
from tests.conftest import assert_problem
from tests.plan_helpers import PlanDriver, new_personal_number
from tests.security.conftest import CALLERS, TAG, Story, day

try:  # FastAPI >= 0.16x keeps included routers as branches of the route table
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI: app.routes is flat
    iter_route_contexts = None

# ---- who is who ----------------------------------------------------------------------------

ALL = tuple(CALLERS)
# Read the story's plan and client: Stockholms stad's reading roles, its assigned samordnare, and
# Region Stockholm under the client's consent.
READERS = ("owner", "participant", "coordinator", "lasare", "system")
AUTHORS = ("owner", "participant", "coordinator", "system")
STHLM_STAFF = tuple(c for c in ALL if CALLERS[c].org == "sthlm-stad")


def each(names: Iterable[str], status: int) -> dict[str, int]:
    return dict.fromkeys(names, status)


def expect(default: int, *groups: dict[str, int], **single: int) -> dict[str, int]:
    """The status for every caller kind: `default`, then groups, then single callers."""
    table = dict.fromkeys(ALL, default)
    for group in (*groups, single):
        unknown = set(group) - set(ALL)
        assert not unknown, f"unknown caller kinds {unknown}"
        table.update(group)
    return table


# Plan content: 200 to readers, 404 to everybody else.
PLAN_READ = expect(404, each(READERS, 200))


# Plan changes: authors change (2xx), the lasare of the owning organisation sees the plan but may
# not change it (403), everybody else does not see it (404).
def plan_change(ok: int) -> dict[str, int]:
    return expect(404, each(AUTHORS, ok), lasare=403)


# Accept, dispute, answer: only the organisation the action is proposed to (the meeting is called
# to): Region Stockholm. Stockholms stad sees the plan, so 403.
ONLY_THE_REGION = expect(404, participant=200, owner=403, coordinator=403, system=403, lasare=403)


@dataclass(frozen=True)
class Case:
    expected: dict[str, int]
    body: Callable[[Story], Any] | None = None
    query: Callable[[Story], dict[str, str]] | None = None
    # Path parameters taken from another Story attribute than the default one.
    params: dict[str, str] = field(default_factory=dict)
    if_match: bool = False  # send the plan's current ETag


def _now_plus(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def _org_number() -> str:
    nine = f"802{random.randrange(10**6):06d}"
    return nine + str(luhn_check_digit(nine))


def _consent(s: Story) -> dict[str, Any]:
    return {
        "given_at": datetime.now(UTC).isoformat(),
        "obtained_by": "Rita Regionläkare",
        "method": "written",
        "scope_organisation_ids": [s.org["sthlm-stad"], s.org["region-sthlm"]],
    }


P = "/api/v1/plans/{plan_id}"
C = "/api/v1/clients/{client_id}"

MATRIX: dict[tuple[str, str], Case] = {
    # ---- identity and the organisation register ----
    ("GET", "/api/v1/me"): Case(expect(200)),
    ("POST", "/api/v1/organisations"): Case(
        expect(403, platform_admin=201),
        body=lambda s: {
            "name": f"Förening {TAG}",
            "kind": "other",
            "org_number": _org_number(),
            "county_code": "01",
        },
    ),
    ("GET", "/api/v1/organisations"): Case(expect(200)),
    ("GET", "/api/v1/organisations/{organisation_id}"): Case(expect(200)),
    # Units and issuers of Stockholms stad.
    ("POST", "/api/v1/organisations/{organisation_id}/units"): Case(
        expect(403, org_admin=201), body=lambda s: {"name": f"Ny enhet {TAG}"}
    ),
    ("GET", "/api/v1/organisations/{organisation_id}/units"): Case(expect(403, each(STHLM_STAFF, 200))),
    ("POST", "/api/v1/organisations/{organisation_id}/issuers"): Case(
        expect(403, platform_admin=201),
        body=lambda s: {
            "issuer": f"https://idp-{TAG}.stockholm.example",
            "jwks_url": f"https://idp-{TAG}.stockholm.example/jwks",
        },
    ),
    ("GET", "/api/v1/organisations/{organisation_id}/issuers"): Case(expect(403, platform_admin=200)),
    # ---- clients ----
    # The unassigned samordnare ("samordnare") gets 404 on the story's client as on its plans:
    # "a samordnare without another reading role reaches clients through their assignments"
    # (app/auth/policies.py, works_through_assignments). The worklist keeps to that rule.
    ("POST", "/api/v1/clients"): Case(
        expect(201, rss=403, auditor=403, org_admin=403, lasare=403, platform_admin=403),
        body=lambda s: {
            "personal_number": new_personal_number(),
            "given_name": "Ny",
            "family_name": "Klient",
        },
    ),
    ("POST", "/api/v1/clients/search"): Case(
        expect(404, each(READERS, 200)), body=lambda s: {"personal_number": s.personal_number}
    ),
    ("GET", C): Case(expect(404, each(READERS, 200))),
    ("POST", C + "/episodes"): Case(
        expect(404, each(AUTHORS, 201), lasare=403),
        body=lambda s: {
            "phase": "lvm_utredning",
            "start_date": day(-120),
            "end_date": day(-90),
            "responsible_kommun_id": s.org["sthlm-stad"],
        },
    ),
    ("GET", C + "/episodes"): Case(expect(404, each(READERS, 200))),
    ("PATCH", C + "/episodes/{episode_id}"): Case(
        # Only the recording organisation or the responsible kommun (both Stockholms stad) change it.
        expect(404, owner=200, coordinator=200, system=200, participant=403, lasare=403),
        body=lambda s: {"note": "Ändrad anteckning"},
    ),
    ("POST", C + "/coordinators"): Case(
        # handlaggare and samordnare assign; system and lasare may not.
        expect(404, owner=201, participant=201, coordinator=201, system=403, lasare=403),
        body=lambda s: {
            "user_id": s.bo_id,
            "organisation_id": s.org["sthlm-stad"],
            "start_date": day(0),
            "handover_note": "Bo tar över efter semestern.",
        },
    ),
    ("GET", C + "/coordinators"): Case(expect(404, each(READERS, 200))),
    ("GET", C + "/timeline"): Case(expect(404, each(READERS, 200))),
    # ---- plans ----
    ("POST", "/api/v1/plans"): Case(
        # The client is named in the body: organisations that cannot reach them get 422 on client_id.
        expect(403, each(AUTHORS, 201), outsider=422, unconsented=422, samordnare=422),
        body=lambda s: {
            "client_id": s.client_id,
            "title": "Ny SIP",
            "legal_basis": ["SoL 2 kap. 7 §"],
            "follow_up_date": day(20),
        },
    ),
    # A filtered list: 200 to everybody; the leak check shows who does not get the story's plan.
    ("GET", "/api/v1/plans"): Case(expect(200)),
    ("GET", P): Case(PLAN_READ),
    ("GET", P + "/fhir"): Case(PLAN_READ),
    ("PATCH", P): Case(plan_change(200), body=lambda s: {"client_participated": False}, if_match=True),
    ("POST", P + "/transitions"): Case(
        plan_change(200), body=lambda s: {"to": "paused", "reason": "Klienten på resa"}, if_match=True
    ),
    ("POST", P + "/participants"): Case(
        plan_change(201),
        body=lambda s: {"organisation_id": s.org["huddinge"], "kind": "huvudman"},
        if_match=True,
    ),
    ("POST", P + "/consents"): Case(plan_change(201), body=_consent, if_match=True),
    ("POST", P + "/consents/{consent_id}/withdraw"): Case(
        plan_change(200), body=lambda s: {"reason": "Klienten återkallar"}, if_match=True
    ),
    ("POST", P + "/needs"): Case(
        plan_change(201), body=lambda s: {"description": "Nytt behov"}, if_match=True
    ),
    ("PATCH", P + "/needs/{need_id}"): Case(
        plan_change(200), body=lambda s: {"description": "Ändrat behov"}, if_match=True
    ),
    ("POST", P + "/goals"): Case(plan_change(201), body=lambda s: {"description": "Nytt mål"}, if_match=True),
    ("PATCH", P + "/goals/{goal_id}"): Case(
        plan_change(200), body=lambda s: {"target_date": day(60)}, if_match=True
    ),
    ("POST", P + "/actions"): Case(
        plan_change(201),
        body=lambda s: {"description": "Ny insats", "responsible_organisation_id": s.org["sthlm-stad"]},
        if_match=True,
    ),
    ("PATCH", P + "/actions/{action_id}"): Case(
        plan_change(200), body=lambda s: {"description": "Ändrad insats"}, if_match=True
    ),
    ("POST", P + "/actions/{action_id}/accept"): Case(
        ONLY_THE_REGION, params={"action_id": "proposed_action_id"}, if_match=True
    ),
    ("POST", P + "/actions/{action_id}/dispute"): Case(
        ONLY_THE_REGION,
        body=lambda s: {"reason": "Det är kommunens ansvar"},
        params={"action_id": "proposed_action_id"},
        if_match=True,
    ),
    ("GET", P + "/versions"): Case(PLAN_READ),
    ("GET", P + "/versions/{number}"): Case(PLAN_READ),
    # ---- meetings and follow-ups ----
    ("POST", P + "/meetings"): Case(
        plan_change(201),
        body=lambda s: {
            "starts_at": _now_plus(14),
            "purpose": "Nytt möte",
            "location": "Rum 1",
            "invitee_organisation_ids": [s.org["sis"]],
        },
        if_match=True,
    ),
    ("GET", P + "/meetings"): Case(PLAN_READ),
    ("GET", P + "/meetings/{meeting_id}"): Case(PLAN_READ),
    ("POST", P + "/meetings/{meeting_id}/responses"): Case(
        ONLY_THE_REGION, body=lambda s: {"response": "accepted"}, if_match=True
    ),
    ("PATCH", P + "/meetings/{meeting_id}"): Case(
        plan_change(200), body=lambda s: {"location": "Nytt rum"}, if_match=True
    ),
    ("POST", P + "/follow-ups"): Case(plan_change(201), body=lambda s: {"due_date": day(20)}, if_match=True),
    ("GET", P + "/follow-ups"): Case(PLAN_READ),
    ("GET", P + "/follow-ups/{follow_up_id}"): Case(PLAN_READ),
    ("PATCH", P + "/follow-ups/{follow_up_id}"): Case(
        plan_change(200), body=lambda s: {"held_date": day(0), "outcome_code": "continue"}, if_match=True
    ),
    # ---- the worklist: each handläggare and samordnare gets their own (the leak check matters) ----
    ("GET", "/api/v1/worklist"): Case(
        expect(
            403, owner=200, participant=200, coordinator=200, outsider=200, unconsented=200, samordnare=200
        )
    ),
    # ---- webhooks (Stockholms stad's), events, audit, reports ----
    ("POST", "/api/v1/webhooks"): Case(
        expect(403, org_admin=201),
        body=lambda s: {"url": "https://hooks.example.org/samplan", "event_types": ["plan.created"]},
    ),
    ("GET", "/api/v1/webhooks"): Case(expect(403, org_admin=200)),
    # Another organisation's webhook does not exist for the caller (404); in the own organisation,
    # roles other than org_admin are refused (403).
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): Case(expect(404, each(STHLM_STAFF, 403), org_admin=204)),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): Case(
        expect(404, each(STHLM_STAFF, 403), org_admin=200)
    ),
    ("GET", "/api/v1/events"): Case(expect(403, system=200)),
    ("GET", "/api/v1/audit-events"): Case(expect(403, auditor=200)),
    ("GET", "/api/v1/audit-events/verify"): Case(expect(403, auditor=200)),
    ("GET", "/api/v1/reports/coverage"): Case(
        expect(403, rss=200, org_admin=200), query=lambda s: {"from": day(-365), "to": day(0)}
    ),
}

# Routes that answer without a token, by design.
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/health"): "liveness",
    ("GET", "/ready"): "readiness",
    ("GET", "/openapi.json"): "the API description",
    ("GET", "/docs"): "Swagger UI",
    ("GET", "/docs/oauth2-redirect"): "Swagger UI",
    ("GET", "/redoc"): "ReDoc",
    ("GET", "/ui"): "the thin client's page",
    ("GET", "/ui/"): "the thin client's page",
    ("GET", "/ui/{name}"): "the thin client's static files",
    ("GET", "/ui/dev-users"): "dev mode only: demo users with tokens; 404 without the dev issuer",
}


def route_table(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route the application serves, HEAD aside."""
    routes: Iterable[Any] = iter_route_contexts(app.routes) if iter_route_contexts else app.routes
    out = set()
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        assert path is not None and methods, f"a route without a path or methods: {route!r}"
        out |= {(m, path) for m in methods if m != "HEAD"}
    return out


def test_every_route_is_classified(app: FastAPI) -> None:
    served = route_table(app)
    missing = sorted(served - MATRIX.keys() - PUBLIC.keys())
    assert not missing, "routes missing from the authorisation matrix: " + ", ".join(
        f"{m} {p}" for m, p in missing
    )
    stale = sorted((MATRIX.keys() | PUBLIC.keys()) - served)
    assert not stale, "matrix entries for routes that do not exist: " + ", ".join(
        f"{m} {p}" for m, p in stale
    )
    assert not MATRIX.keys() & PUBLIC.keys()


def test_every_api_route_needs_a_token(app: FastAPI) -> None:
    """Every route in MATRIX is an APIRoute that depends on the bearer token (so it never answers
    anonymously); the PUBLIC ones are the only exceptions."""
    api_routes = {
        (m, r.path): r
        for r in (iter_route_contexts(app.routes) if iter_route_contexts else app.routes)
        if isinstance(getattr(r, "original_route", r), APIRoute)
        for m in r.methods
    }
    for key in MATRIX:
        route = api_routes[key]
        original = getattr(route, "original_route", route)
        assert any(d.call is get_principal for d in _walk(original.dependant)), (
            f"{key} does not authenticate its caller"
        )


def _walk(dependant: Any) -> Iterable[Any]:
    for d in dependant.dependencies:
        yield d
        yield from _walk(d)


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
async def test_anonymous_callers_get_401(
    client: httpx.AsyncClient, story: Story, route: tuple[str, str]
) -> None:
    method, url, kwargs = _request(route, story, {})
    r = await client.request(method, url, **kwargs)
    assert_problem(r, 401)


def _request(route: tuple[str, str], s: Story, headers: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    method, template = route
    case = MATRIX[route]
    values = s.path_params()
    for name, attribute in case.params.items():
        values[name] = getattr(s, attribute)
    url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)
    kwargs: dict[str, Any] = {"headers": dict(headers)}
    if case.body is not None:
        kwargs["json"] = case.body(s)
    if case.query is not None:
        kwargs["params"] = case.query(s)
    if case.if_match:
        kwargs["headers"]["If-Match"] = f'"{s.version}"'
    return method, url, kwargs


CELLS = [(route, caller) for route in sorted(MATRIX) for caller in ALL]


@pytest.mark.parametrize(("route", "caller"), CELLS, ids=[f"{r[0]} {r[1]} [{c}]" for r, c in CELLS])
async def test_matrix(
    client: httpx.AsyncClient, story: Story, caller_headers: Any, route: tuple[str, str], caller: str
) -> None:
    method, url, kwargs = _request(route, story, caller_headers(caller))
    r = await client.request(method, url, **kwargs)
    expected = MATRIX[route].expected[caller]
    assert r.status_code == expected, (
        f"{route[0]} {route[1]} as {caller}: expected {expected}, got {r.status_code}: {r.text[:400]}"
    )
    if r.status_code >= 400:
        assert_problem(r, expected)
    leaks = story.leaked(r.text, CALLERS[caller].may_see)
    assert not leaks, f"{route[0]} {route[1]} as {caller} ({r.status_code}) shows what it may not: {leaks}"


@pytest.mark.parametrize("route", sorted(PUBLIC), ids=lambda r: f"{r[0]} {r[1]}")
async def test_public_routes_carry_no_story_data(
    client: httpx.AsyncClient, story: Story, route: tuple[str, str]
) -> None:
    path = route[1].replace("{name}", "index.html")
    r = await client.get(path, follow_redirects=True)
    assert r.status_code == 200, r.text[:300]
    assert not story.leaked(r.text, frozenset())


async def test_dev_users_are_absent_without_the_dev_issuer(settings: Any, database: Any) -> None:
    from app.main import create_app

    app = create_app(settings.model_copy(update={"dev_issuer_enabled": False}), database=database)
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://samplan.test") as c:
            assert_problem(await c.get("/ui/dev-users"), 404)
    finally:
        await app.state.http.aclose()


# ---- id swapping and token attacks across organisations -----------------------------------
#
# A token of one organisation used with another organisation's ids, in the path or in the body.
# Each attack is refused, changes nothing, and shows nothing of the other organisation.


@pytest.fixture
def drv(client: httpx.AsyncClient, auth: Any, orgs: Any) -> PlanDriver:
    return PlanDriver(client, auth, orgs)


def _h(drv: PlanDriver, caller: str, **extra: str) -> dict[str, str]:
    c = CALLERS[caller]
    return {**drv.auth(c.org, *c.roles, subject=c.subject, county=c.county), **extra}


async def _huddinge_plan(drv: PlanDriver) -> dict[str, str]:
    """Huddinge's own client and plan, with a need, goal, action, consent, meeting and follow-up."""
    client = await drv.register_client("huddinge")
    plan = await drv.create_plan("huddinge", client_id=client["id"])
    pid = plan["id"]
    await drv.add_participant(pid, "region-sthlm", by="huddinge")
    consent = await drv.add_consent(pid, ["huddinge", "region-sthlm"], by="huddinge")
    ids = {"client_id": client["id"], "plan_id": pid, "consent_id": consent["consents"][0]["id"]}
    for path, body, key in (
        ("/needs", {"description": "Huddinges behov"}, "need_id"),
        ("/goals", {"description": "Huddinges mål"}, "goal_id"),
        ("/actions", {"description": "Huddinges insats", "responsible_organisation_id": str(drv.orgs["huddinge"].id)}, "action_id"),
        ("/follow-ups", {"due_date": day(9)}, "follow_up_id"),
        ("/meetings", {"starts_at": _now_plus(3), "purpose": "Huddinges möte", "location": "Huddinge",
                       "invitee_organisation_ids": [str(drv.orgs["region-sthlm"].id)]}, "meeting_id"),
    ):  # fmt: skip
        r = await drv.post(pid, path, body, org="huddinge")
        assert r.status_code == 201, r.text
        ids[key] = r.headers["location"].rsplit("/", 1)[-1]
    r = await drv.client.post(
        f"/api/v1/clients/{client['id']}/episodes",
        json={"phase": "lvm_utredning", "start_date": day(-20)},
        headers=drv.h("huddinge"),
    )
    assert r.status_code == 201, r.text
    ids["episode_id"] = r.json()["id"]
    return ids


# (method, path on the attacker's own parent, the story's child id to splice in, body)
_SPLICED: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("PATCH", "/api/v1/plans/{plan_id}/needs/{x}", "need_id", {"description": "Kapat"}),
    ("PATCH", "/api/v1/plans/{plan_id}/goals/{x}", "goal_id", {"description": "Kapat"}),
    ("PATCH", "/api/v1/plans/{plan_id}/actions/{x}", "own_action_id", {"description": "Kapat"}),
    ("POST", "/api/v1/plans/{plan_id}/actions/{x}/accept", "proposed_action_id", None),
    ("POST", "/api/v1/plans/{plan_id}/actions/{x}/dispute", "proposed_action_id", {"reason": "Kapat"}),
    ("POST", "/api/v1/plans/{plan_id}/consents/{x}/withdraw", "consent_id", {"reason": "Kapat"}),
    ("GET", "/api/v1/plans/{plan_id}/meetings/{x}", "meeting_id", None),
    ("PATCH", "/api/v1/plans/{plan_id}/meetings/{x}", "meeting_id", {"location": "Kapat"}),
    ("POST", "/api/v1/plans/{plan_id}/meetings/{x}/responses", "meeting_id", {"response": "accepted"}),
    ("GET", "/api/v1/plans/{plan_id}/follow-ups/{x}", "follow_up_id", None),
    (
        "PATCH",
        "/api/v1/plans/{plan_id}/follow-ups/{x}",
        "follow_up_id",
        {"held_date": day(0), "outcome_code": "other"},
    ),
    ("PATCH", "/api/v1/clients/{client_id}/episodes/{x}", "episode_id", {"note": "Kapat"}),
]


@pytest.mark.parametrize("caller", ["outsider", "participant"])
@pytest.mark.parametrize(
    ("method", "template", "child", "body"), _SPLICED, ids=[f"{m} {t}" for m, t, _, _ in _SPLICED]
)
async def test_the_storys_child_ids_under_the_callers_own_parent_are_404(
    drv: PlanDriver, story: Story, session: AsyncSession, caller: str,
    method: str, template: str, child: str, body: dict[str, Any] | None,
) -> None:  # fmt: skip
    """Huddinge (outside the story) and Region Stockholm (inside it, under consent) address the
    story's needs, goals, actions, consents, meetings, follow-ups and episode through a plan or
    client of their own, which they may change: 404, and the story is unchanged."""
    own = await _huddinge_plan(drv)
    # Region Stockholm takes part in Huddinge's plan too, under consent.
    headers = _h(drv, "participant") if caller == "participant" else drv.h("huddinge")
    before = await _story_rows(session, story)
    url = template.format(plan_id=own["plan_id"], client_id=own["client_id"], x=getattr(story, child))
    r = await drv.client.request(method, url, json=body, headers=headers)
    assert_problem(r, 404)
    assert not story.leaked(r.text, frozenset())
    assert await _story_rows(session, story) == before


async def _story_rows(session: AsyncSession, s: Story) -> list[Any]:
    from app.models.meeting import FollowUp, Meeting, MeetingInvitee
    from app.models.plan import Action, Consent, Goal, Need, Plan

    rows: list[Any] = []
    for model, column in (
        (Plan, Plan.id), (Need, Need.plan_id), (Goal, Goal.plan_id), (Action, Action.plan_id),
        (Consent, Consent.plan_id), (Meeting, Meeting.plan_id), (MeetingInvitee, MeetingInvitee.plan_id),
        (FollowUp, FollowUp.plan_id),
    ):  # fmt: skip
        found = (await session.execute(select(model).where(column == uuid.UUID(s.plan_id)))).scalars().all()
        rows += sorted(repr(sorted(r.model_dump().items())) for r in found)
    for model in (Episode, CoordinatorAssignment):
        found = (
            (await session.execute(select(model).where(model.client_id == uuid.UUID(s.client_id))))
            .scalars()
            .all()
        )
        rows += sorted(repr(sorted(r.model_dump().items())) for r in found)
    await session.commit()
    return rows


async def test_units_of_another_organisation(
    client: httpx.AsyncClient, story: Story, caller_headers: Any, session: AsyncSession
) -> None:
    """Stockholms stad's org_admin cannot add or list Huddinge's units."""
    admin = caller_headers("org_admin")
    url = f"/api/v1/organisations/{story.org['huddinge']}/units"
    before = (
        (
            await session.execute(
                select(Unit.name).where(Unit.organisation_id == uuid.UUID(story.org["huddinge"]))
            )
        )
        .scalars()
        .all()
    )
    await session.commit()
    assert_problem(await client.post(url, json={"name": "Stadens enhet hos Huddinge"}, headers=admin), 403)
    r = await client.get(url, headers=admin)
    assert_problem(r, 403)
    for name in before:
        assert name not in r.text
    after = (
        (
            await session.execute(
                select(Unit.name).where(Unit.organisation_id == uuid.UUID(story.org["huddinge"]))
            )
        )
        .scalars()
        .all()
    )
    assert sorted(after) == sorted(before)


async def test_webhooks_of_another_organisation(
    client: httpx.AsyncClient, story: Story, auth: Any, caller_headers: Any, session: AsyncSession
) -> None:
    """Huddinge's org_admin can neither see, read the deliveries of, nor delete Stockholms stad's webhook."""
    huddinge = auth("huddinge", "org_admin")
    r = await client.get("/api/v1/webhooks", headers=huddinge)
    assert r.status_code == 200 and story.webhook_id not in r.text
    assert not story.leaked(r.text, frozenset())
    for method, path in (("GET", "/deliveries"), ("DELETE", "")):
        r = await client.request(method, f"/api/v1/webhooks/{story.webhook_id}{path}", headers=huddinge)
        assert_problem(r, 404)
        assert not story.leaked(r.text, frozenset())
    hook = await session.get(Webhook, uuid.UUID(story.webhook_id))
    assert hook is not None and hook.active and hook.deleted_at is None
    await session.commit()
    r = await client.get("/api/v1/webhooks", headers=caller_headers("org_admin"))
    assert story.webhook_id in r.text
    assert story.secrets["webhook_secret"][0] not in r.text  # the secret is shown once, at creation


@pytest.mark.parametrize("caller", ["org_admin", "owner", "system"])
async def test_issuers_are_for_the_platform_admin_only(
    client: httpx.AsyncClient, story: Story, caller_headers: Any, caller: str
) -> None:
    """No role of an organisation may trust an issuer, for itself or for another organisation
    (an issuer trusted for Huddinge could mint Huddinge tokens)."""
    for key in ("huddinge", "sthlm-stad"):
        url = f"/api/v1/organisations/{story.org[key]}/issuers"
        body = {"issuer": f"https://evil-{TAG}.example", "jwks_url": f"https://evil-{TAG}.example/jwks"}
        assert_problem(await client.post(url, json=body, headers=caller_headers(caller)), 403)
        assert_problem(await client.get(url, headers=caller_headers(caller)), 403)


async def test_coordinators_with_a_user_of_another_organisation(
    drv: PlanDriver, story: Story, session: AsyncSession
) -> None:
    """A samordnare of Huddinge (not involved with the client) cannot be made the story client's
    samordnare, whether Huddinge or Stockholms stad is named as the organisation."""
    hugo = await _user_id(drv, drv.auth("huddinge", "samordnare", subject="story-huddinge-samordnare"))
    url = f"/api/v1/clients/{story.client_id}/coordinators"
    before = await _story_rows(session, story)
    for org, field_ in (("huddinge", "organisation_id"), ("sthlm-stad", "user_id")):
        body = {
            "user_id": hugo,
            "organisation_id": story.org[org],
            "start_date": day(0),
            "handover_note": "Över till Huddinge",
        }
        problem = assert_problem(await drv.client.post(url, json=body, headers=drv.h("sthlm-stad")), 422)
        assert [e["field"] for e in problem["errors"]] == [field_]  # type: ignore[union-attr]
        assert "story-huddinge-samordnare" not in str(problem)
    assert await _story_rows(session, story) == before


async def _user_id(drv: PlanDriver, headers: dict[str, str]) -> str:
    r = await drv.client.get("/api/v1/me", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["user_id"])


async def test_samordnare_cannot_assign_themselves_to_a_client(
    client: httpx.AsyncClient, story: Story, caller_headers: Any, session: AsyncSession
) -> None:
    """A samordnare reaches clients through assignments. One who is not assigned must not be able
    to take the client over (and with it the client's plans) by assigning themselves."""
    me = caller_headers("samordnare")
    my_id = (await client.get("/api/v1/me", headers=me)).json()["user_id"]
    body = {
        "user_id": my_id,
        "organisation_id": story.org["sthlm-stad"],
        "start_date": day(0),
        "handover_note": "Jag tar över.",
    }
    r = await client.post(f"/api/v1/clients/{story.client_id}/coordinators", json=body, headers=me)
    assert_problem(r, 404)
    assert_problem(await client.get(f"/api/v1/plans/{story.plan_id}", headers=me), 404)


@pytest.mark.parametrize("org_key", ["sthlm-stad", "huddinge"])
async def test_episodes_with_a_unit_of_another_organisation(
    drv: PlanDriver, story: Story, session: AsyncSession, org_key: str
) -> None:
    """An episode's unit must belong to the episode's organisation: a unit of Huddinge cannot be
    hung on Stockholms stad's episode, nor Stockholms stad's unit on Huddinge's."""
    other = "huddinge" if org_key == "sthlm-stad" else "sthlm-stad"
    foreign_unit = await _unit_of(session, story, other)
    if org_key == "sthlm-stad":
        cid = story.client_id
        patch = await drv.client.patch(
            f"/api/v1/clients/{cid}/episodes/{story.episode_id}",
            json={"unit_id": foreign_unit},
            headers=drv.h("sthlm-stad"),
        )
        problem = assert_problem(patch, 422)
        assert [e["field"] for e in problem["errors"]] == ["unit_id"]  # type: ignore[union-attr]
    else:
        cid = (await drv.register_client("huddinge"))["id"]
    before = await _story_rows(session, story)
    r = await drv.client.post(
        f"/api/v1/clients/{cid}/episodes",
        json={
            "phase": "lvm_utredning",
            "start_date": day(-200),
            "end_date": day(-190),
            "unit_id": foreign_unit,
        },
        headers=drv.h(org_key),
    )
    problem = assert_problem(r, 422)
    assert [e["field"] for e in problem["errors"]] == ["unit_id"]  # type: ignore[union-attr]
    assert await _story_rows(session, story) == before


async def test_consent_naming_an_organisation_that_does_not_take_part_gives_it_nothing(
    drv: PlanDriver, story: Story, caller_headers: Any
) -> None:
    """A consent whose scope names Huddinge, which does not take part, does not let Huddinge in;
    nor can Huddinge record such a consent itself."""
    body = _consent(story) | {"scope_organisation_ids": [story.org["huddinge"], story.org["sis"]]}
    r = await drv.client.post(f"/api/v1/plans/{story.plan_id}/consents", json=body, headers=drv.h("huddinge"))
    assert_problem(r, 404)
    r = await drv.client.post(
        f"/api/v1/plans/{story.plan_id}/consents", json=body, headers=caller_headers("owner")
    )
    assert r.status_code == 201, r.text
    # Huddinge does not take part, so the consent alone gives it nothing.
    for path in ("", "/versions", "/fhir"):
        assert_problem(
            await drv.client.get(f"/api/v1/plans/{story.plan_id}{path}", headers=drv.h("huddinge")), 404
        )
    assert_problem(await drv.client.get(f"/api/v1/clients/{story.client_id}", headers=drv.h("huddinge")), 404)
    # SiS takes part and is now covered: it reads the plan, still without the personal number.
    r = await drv.client.get(f"/api/v1/plans/{story.plan_id}", headers=caller_headers("unconsented"))
    assert r.status_code == 200, r.text
    assert not story.leaked(r.text, frozenset({"content"}))


async def test_actions_meetings_and_responsibility_for_an_organisation_that_does_not_take_part(
    drv: PlanDriver, story: Story, session: AsyncSession, caller_headers: Any
) -> None:
    """Actions, meeting invitations and the overall responsibility cannot be given to Huddinge,
    which does not take part in the plan."""
    huddinge = story.org["huddinge"]
    owner = {**caller_headers("owner"), "If-Match": f'"{story.version}"'}
    base = f"/api/v1/plans/{story.plan_id}"
    sis_unit = await _unit_of(session, story, "sis")
    before = await _story_rows(session, story)
    attempts = [
        ("POST", "/actions", {"description": "Huddinges ansvar", "responsible_organisation_id": huddinge}),
        ("PATCH", f"/actions/{story.own_action_id}", {"responsible_organisation_id": huddinge}),
        ("POST", "/meetings", {"starts_at": _now_plus(5), "purpose": "Möte", "location": "Rum",
                               "invitee_organisation_ids": [huddinge]}),
        ("PATCH", f"/meetings/{story.meeting_id}", {"invitee_organisation_ids": [huddinge]}),
        ("PATCH", "", {"overall_responsible_organisation_id": huddinge}),
        ("POST", "/participants", {"organisation_id": story.org["huddinge"], "kind": "huvudman",
                                   "unit_id": sis_unit}),
    ]  # fmt: skip
    for method, path, body in attempts:
        r = await drv.client.request(method, base + path, json=body, headers=owner)
        assert_problem(r, 422)
        assert "Huddinge" not in r.text, r.text
    assert await _story_rows(session, story) == before


async def _unit_of(session: AsyncSession, story: Story, key: str) -> str:
    unit_id = (
        (await session.execute(select(Unit.id).where(Unit.organisation_id == uuid.UUID(story.org[key]))))
        .scalars()
        .first()
    )
    await session.commit()
    return str(unit_id)


async def test_a_foreign_client_in_a_body_answers_like_an_unknown_one(
    client: httpx.AsyncClient, story: Story, auth: Any
) -> None:
    """Huddinge naming the story's client (or searching its personal number) gets exactly the answer
    a non-existent client or person gets: no oracle for who is a client of Stockholms stad."""
    huddinge = auth("huddinge", "handlaggare")
    answers = []
    for client_id in (story.client_id, str(uuid.uuid4())):
        body = {"client_id": client_id, "title": "SIP", "legal_basis": ["SoL"], "follow_up_date": day(5)}
        problem = assert_problem(await client.post("/api/v1/plans", json=body, headers=huddinge), 422)
        answers.append((problem["detail"], problem["errors"]))
    assert answers[0] == answers[1]
    answers = []
    for pnr in (story.personal_number, new_personal_number()):
        r = await client.post("/api/v1/clients/search", json={"personal_number": pnr}, headers=huddinge)
        problem = assert_problem(r, 404)
        answers.append(problem["detail"])
    assert answers[0] == answers[1]
    r = await client.get("/api/v1/plans", params={"client_id": story.client_id}, headers=huddinge)
    assert r.status_code == 200 and r.json()["items"] == []


@pytest.mark.parametrize(("org_key", "sees"), [("huddinge", False), ("sis", False), ("region-sthlm", True)])
async def test_event_feed_and_audit_log_of_other_organisations(
    client: httpx.AsyncClient, story: Story, auth: Any, org_key: str, sees: bool
) -> None:
    """The pull feed carries the story's events to Region Stockholm (covered by the consent) and to
    nobody outside it; an auditor reads only their own organisation's log."""
    r = await client.get("/api/v1/events", params={"limit": 200}, headers=auth(org_key, "system"))
    assert r.status_code == 200, r.text
    assert any(e["plan_id"] == story.plan_id for e in r.json()["items"]) is sees
    assert not story.leaked(r.text, frozenset())
    r = await client.get(
        "/api/v1/audit-events",
        params={"client_id": story.client_id, "limit": 200},
        headers=auth(org_key, "auditor"),
    )
    assert r.status_code == 200, r.text
    owners = {e["actor_subject"] for e in r.json()["items"]}
    assert CALLERS["owner"].subject not in owners
    assert not story.leaked(r.text, frozenset())


async def test_withdrawn_consent_takes_the_plan_away_from_the_region(
    client: httpx.AsyncClient, story: Story, caller_headers: Any
) -> None:
    """Once the client withdraws the consent, Region Stockholm reads nothing of the plan or the
    client any more (DOMAIN: withdrawn consent removes the other organisations' access)."""
    owner = {**caller_headers("owner"), "If-Match": f'"{story.version}"'}
    r = await client.post(
        f"/api/v1/plans/{story.plan_id}/consents/{story.consent_id}/withdraw",
        json={"reason": "Återkallat"},
        headers=owner,
    )
    assert r.status_code == 200 and r.json()["status"] == "paused", r.text
    region = caller_headers("participant")
    for route in MATRIX:
        method, template = route
        if method != "GET" or not ({"{plan_id}", "{client_id}"} & set(re.findall(r"\{\w+\}", template))):
            continue
        m, url, kwargs = _request(route, story, region)
        r = await client.request(m, url, **kwargs)
        assert_problem(r, 404)
    r = await client.get("/api/v1/plans", headers=region)
    assert r.status_code == 200 and story.plan_id not in r.text
    assert not story.leaked(r.text, frozenset())


async def test_extra_claims_naming_another_organisation_are_ignored(
    client: httpx.AsyncClient, story: Story, dev_issuer: Any, orgs: Any
) -> None:
    """A Huddinge token carrying claims that name Stockholms stad (its id, its org number under
    other names) is Huddinge's, and reads nothing of the story."""
    extra = {
        "organisation_id": story.org["sthlm-stad"], "org_id": story.org["sthlm-stad"],
        "orgs": [orgs["sthlm-stad"].org_number], "tenant": orgs["sthlm-stad"].org_number,
        "county": "01", "unit": "SE2120000142-X",
    }  # fmt: skip
    tok = dev_issuer.mint(
        org_number=orgs["huddinge"].org_number, roles=["handlaggare"], subject="story-claims", extra=extra
    )
    headers = {"Authorization": f"Bearer {tok}"}
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert me["organisation_id"] == story.org["huddinge"]
    assert_problem(await client.get(f"/api/v1/plans/{story.plan_id}", headers=headers), 404)
    assert_problem(await client.get(f"/api/v1/clients/{story.client_id}", headers=headers), 404)


async def test_an_rss_token_reads_its_own_organisations_county_only(
    client: httpx.AsyncClient, story: Story, auth: Any
) -> None:
    """The county an rss token follows up must be its organisation's: Region Stockholm's issuer
    cannot hand out an rss token for Uppsala län (03) and so read Uppsala's figures."""
    params = {"from": day(-365), "to": day(0), "county": "03"}
    r = await client.get(
        "/api/v1/reports/coverage", params=params, headers=auth("region-sthlm", "rss", county="03")
    )
    # Refused at authentication: such a token is not accepted for anything.
    body = assert_problem(r, 401)
    assert "county" in str(body["detail"])
    assert_problem(await client.get("/api/v1/me", headers=auth("region-sthlm", "rss", county="03")), 401)


async def test_a_protected_identity_stays_masked_for_an_organisation_that_relinks_by_personal_number(
    client: httpx.AsyncClient, auth: Any
) -> None:
    """DOMAIN: a protected identity's name is masked for everyone but their own handläggare.
    Huddinge registering the same personal number (with names of its own) links Huddinge to the
    person; the answer must not hand Huddinge the name Stockholms stad recorded."""
    pnr = new_personal_number()
    r = await client.post(
        "/api/v1/clients",
        json={
            "personal_number": pnr,
            "given_name": f"Skyddad{TAG}",
            "family_name": f"Person{TAG}",
            "protected_identity": True,
        },
        headers=auth("sthlm-stad", "handlaggare"),
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/v1/clients",
        json={"personal_number": pnr, "given_name": "Okänd", "family_name": "Okänd"},
        headers=auth("huddinge", "handlaggare"),
    )
    assert r.status_code == 200, r.text
    assert f"Skyddad{TAG}" not in r.text and f"Person{TAG}" not in r.text, r.text


async def test_the_leak_check_sees_the_story(
    client: httpx.AsyncClient, story: Story, caller_headers: Any
) -> None:
    """The leak check is not vacuous: the callers who may see the story's secrets do get them."""
    owner = caller_headers("owner")
    r = await client.get(f"/api/v1/plans/{story.plan_id}", headers=owner)
    assert story.leaked(r.text, frozenset({"pnr", "webhook", "webhook_secret"})), r.text
    r = await client.get(f"/api/v1/clients/{story.client_id}", headers=owner)
    assert story.leaked(r.text, frozenset({"content", "webhook", "webhook_secret"})), r.text
    r = await client.get("/api/v1/webhooks", headers=caller_headers("org_admin"))
    assert story.leaked(r.text, frozenset({"content", "pnr", "webhook_secret"})), r.text
    # Region Stockholm reads the client through the plan, without the personal number.
    r = await client.get(f"/api/v1/clients/{story.client_id}", headers=caller_headers("participant"))
    assert r.status_code == 200 and r.json()["personal_number"] is None
    assert story.leaked(r.text, frozenset({"pnr", "webhook", "webhook_secret"}))


# What each organisation's database context lets through of the story, by table (PostgreSQL's
# row security, the backstop of the same rule). SiS is named on the LVM episode (its LVM-hem), so
# the episode row is in its reach; the API still refuses it, since SiS cannot reach the client.
_STORY_ROWS = {
    "plan": "id = :plan", "plan_participant": "plan_id = :plan", "consent": "plan_id = :plan",
    "consent_scope": "plan_id = :plan", "plan_need": "plan_id = :plan", "plan_goal": "plan_id = :plan",
    "plan_action": "plan_id = :plan", "plan_version": "plan_id = :plan", "meeting": "plan_id = :plan",
    "meeting_invitee": "plan_id = :plan", "follow_up": "plan_id = :plan", "outbox_event": "plan_id = :plan",
    "client": "id = :client", "client_link": "client_id = :client", "episode": "client_id = :client",
    "coordinator_assignment": "client_id = :client", "audit_event": "client_id = :client",
    "webhook": "id = :hook", "webhook_delivery": "webhook_id = :hook",
}  # fmt: skip
_NOT_FOR_THE_REGION = {"client_link", "webhook", "webhook_delivery"}


@pytest.mark.postgresql_only
@pytest.mark.parametrize("org_key", ["sthlm-stad", "region-sthlm", "huddinge", "sis", "uppsala"])
async def test_row_security_hides_the_story_from_organisations_outside_it(
    session: AsyncSession, story: Story, org_key: str
) -> None:
    from sqlalchemy import text

    from app.db import SYSTEM, TenantContext, bind_tenant

    await bind_tenant(session, TenantContext.org(uuid.UUID(story.org[org_key])))
    params = {"plan": story.plan_id, "client": story.client_id, "hook": story.webhook_id}
    seen = {}
    for table, where in _STORY_ROWS.items():
        sql = f"SELECT count(*) FROM {table} WHERE {where}"  # noqa: S608 - names from _STORY_ROWS
        seen[table] = (await session.execute(text(sql), params)).scalar_one()
    await bind_tenant(session, SYSTEM)
    await session.commit()
    if org_key == "sthlm-stad":
        expected = set(_STORY_ROWS)
    elif org_key == "region-sthlm":
        expected = set(_STORY_ROWS) - _NOT_FOR_THE_REGION
    elif org_key == "sis":
        expected = {"episode"}
    else:
        expected = set()
    assert {t for t, n in seen.items() if n} == expected, seen


async def test_a_participant_cannot_turn_plan_access_into_the_personal_number(
    client: httpx.AsyncClient, story: Story, caller_headers: Any
) -> None:
    """Region Stockholm reads the client through the plan, without the personal number. Starting a
    plan of its own for the client must not hand it the number (nor may any other call)."""
    region = caller_headers("participant")
    body = {"client_id": story.client_id, "title": "Regionens SIP", "legal_basis": ["HSL 16 kap. 4 §"]}
    r = await client.post("/api/v1/plans", json=body, headers=region)
    assert r.status_code in (201, 422), r.text
    for path in (f"/api/v1/clients/{story.client_id}", f"/api/v1/plans/{story.plan_id}/fhir"):
        r = await client.get(path, headers=region)
        assert r.status_code == 200, r.text
        assert not story.leaked(r.text, frozenset({"content"})), r.text


async def test_the_same_subject_in_another_organisation_is_another_user(
    client: httpx.AsyncClient, story: Story, auth: Any
) -> None:
    """Users are (organisation, subject): a Huddinge token whose `sub` is the story's assigned
    samordnare (or its handläggare) gets none of their access."""
    for subject, role in (
        (CALLERS["coordinator"].subject, "samordnare"),
        (CALLERS["owner"].subject, "handlaggare"),
    ):
        headers = auth("huddinge", role, subject=subject)
        me = (await client.get("/api/v1/me", headers=headers)).json()
        assert me["organisation_id"] == story.org["huddinge"] and me["user_id"] != story.anna_id
        for path in (f"/api/v1/plans/{story.plan_id}", f"/api/v1/clients/{story.client_id}"):
            r = await client.get(path, headers=headers)
            assert_problem(r, 404)
        r = await client.get("/api/v1/worklist", headers=headers)
        assert r.status_code == 200 and not story.leaked(r.text, frozenset()), r.text


async def test_an_idempotency_key_replays_only_for_the_user_who_sent_it(
    client: httpx.AsyncClient, story: Story, caller_headers: Any, auth: Any
) -> None:
    """Stockholms stad's handläggare adds a need with an Idempotency-Key. The same key, path and
    body from Huddinge, even under the same `sub`, is not a replay of that answer."""
    body = {"description": f"Behov med nyckel {TAG}"}
    url = f"/api/v1/plans/{story.plan_id}/needs"
    key = {"Idempotency-Key": f"need-{TAG}"}
    r = await client.post(url, json=body, headers={**caller_headers("owner"), **key})
    assert r.status_code == 201, r.text
    for headers in (
        auth("huddinge", "handlaggare"),
        auth("huddinge", "handlaggare", subject=CALLERS["owner"].subject),
    ):
        r = await client.post(url, json=body, headers={**headers, **key})
        assert_problem(r, 404)
        assert "Idempotency-Replayed" not in r.headers and f"nyckel {TAG}" not in r.text
