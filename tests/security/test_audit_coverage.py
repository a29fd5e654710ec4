"""Every route that reads (or changes) client data leaves an audit event naming the client.

The routes come from the application's own route table: every route under /api/v1/clients,
/api/v1/plans and /api/v1/worklist must be classified below as a read or a change of client data,
and every other route as carrying no client data (with the reason); an unclassified route fails
`test_every_route_is_classified_for_audit`.

Each read is called by every caller kind the authorisation matrix lets read it, each change by
every caller kind the matrix lets make it, with the request id in X-Request-ID; the test then finds
the audit events of exactly that request (audit_event.request_id) and checks who, which
organisation, and which client.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.audit import AuditEvent
from tests.conftest import assert_problem
from tests.security.conftest import CALLERS, Story
from tests.security.test_authz_matrix import MATRIX, PUBLIC, READERS, _request, route_table

CLIENT_DATA_PREFIXES = ("/api/v1/clients", "/api/v1/plans", "/api/v1/worklist")

# Reads of client or plan data: every GET under the prefixes, and the search by personal number.
READS = {
    ("POST", "/api/v1/clients/search"),
    ("GET", "/api/v1/clients/{client_id}"),
    ("GET", "/api/v1/clients/{client_id}/episodes"),
    ("GET", "/api/v1/clients/{client_id}/coordinators"),
    ("GET", "/api/v1/clients/{client_id}/timeline"),
    ("GET", "/api/v1/plans"),
    ("GET", "/api/v1/plans/{plan_id}"),
    ("GET", "/api/v1/plans/{plan_id}/fhir"),
    ("GET", "/api/v1/plans/{plan_id}/versions"),
    ("GET", "/api/v1/plans/{plan_id}/versions/{number}"),
    ("GET", "/api/v1/plans/{plan_id}/meetings"),
    ("GET", "/api/v1/plans/{plan_id}/meetings/{meeting_id}"),
    ("GET", "/api/v1/plans/{plan_id}/follow-ups"),
    ("GET", "/api/v1/plans/{plan_id}/follow-ups/{follow_up_id}"),
    ("GET", "/api/v1/worklist"),
}

# Changes of client data: the rest of the routes under the prefixes.
CHANGES = {
    ("POST", "/api/v1/clients"),
    ("POST", "/api/v1/clients/{client_id}/episodes"),
    ("PATCH", "/api/v1/clients/{client_id}/episodes/{episode_id}"),
    ("POST", "/api/v1/clients/{client_id}/coordinators"),
    ("POST", "/api/v1/plans"),
    ("PATCH", "/api/v1/plans/{plan_id}"),
    ("POST", "/api/v1/plans/{plan_id}/transitions"),
    ("POST", "/api/v1/plans/{plan_id}/participants"),
    ("POST", "/api/v1/plans/{plan_id}/consents"),
    ("POST", "/api/v1/plans/{plan_id}/consents/{consent_id}/withdraw"),
    ("POST", "/api/v1/plans/{plan_id}/needs"),
    ("PATCH", "/api/v1/plans/{plan_id}/needs/{need_id}"),
    ("POST", "/api/v1/plans/{plan_id}/goals"),
    ("PATCH", "/api/v1/plans/{plan_id}/goals/{goal_id}"),
    ("POST", "/api/v1/plans/{plan_id}/actions"),
    ("PATCH", "/api/v1/plans/{plan_id}/actions/{action_id}"),
    ("POST", "/api/v1/plans/{plan_id}/actions/{action_id}/accept"),
    ("POST", "/api/v1/plans/{plan_id}/actions/{action_id}/dispute"),
    ("POST", "/api/v1/plans/{plan_id}/meetings"),
    ("POST", "/api/v1/plans/{plan_id}/meetings/{meeting_id}/responses"),
    ("PATCH", "/api/v1/plans/{plan_id}/meetings/{meeting_id}"),
    ("POST", "/api/v1/plans/{plan_id}/follow-ups"),
    ("PATCH", "/api/v1/plans/{plan_id}/follow-ups/{follow_up_id}"),
}

# Every other API route, and why it carries no client data.
NO_CLIENT_DATA = {
    ("GET", "/api/v1/me"): "the caller themself",
    ("POST", "/api/v1/organisations"): "the organisation register",
    ("GET", "/api/v1/organisations"): "the organisation register",
    ("GET", "/api/v1/organisations/{organisation_id}"): "the organisation register",
    ("POST", "/api/v1/organisations/{organisation_id}/units"): "units",
    ("GET", "/api/v1/organisations/{organisation_id}/units"): "units",
    ("POST", "/api/v1/organisations/{organisation_id}/issuers"): "token issuers",
    ("GET", "/api/v1/organisations/{organisation_id}/issuers"): "token issuers",
    ("POST", "/api/v1/webhooks"): "webhook configuration",
    ("GET", "/api/v1/webhooks"): "webhook configuration",
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): "webhook configuration",
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): "delivery status; events carry ids and types only",
    ("GET", "/api/v1/events"): "ids and types only, never names or personal numbers",
    ("GET", "/api/v1/audit-events"): "the access log itself (reviewing it is audited as audit.review)",
    ("GET", "/api/v1/audit-events/verify"): "hash-chain verification, counts only",
    ("GET", "/api/v1/reports/coverage"): "aggregates with small counts suppressed, never individuals",
}


def test_every_route_is_classified_for_audit(app: FastAPI) -> None:
    served = route_table(app) - PUBLIC.keys()
    under = {r for r in served if r[1].startswith(CLIENT_DATA_PREFIXES)}
    unclassified = sorted(under - READS - CHANGES)
    assert not unclassified, "client-data routes with no audit classification: " + ", ".join(
        f"{m} {p}" for m, p in unclassified
    )
    assert not {r for r in READS if r[0] not in ("GET", "POST")}
    assert all(m == "GET" for m, p in under - CHANGES if p != "/api/v1/clients/search")
    others = sorted(served - under - NO_CLIENT_DATA.keys())
    assert not others, "routes with no audit classification: " + ", ".join(f"{m} {p}" for m, p in others)
    stale = sorted((READS | CHANGES | NO_CLIENT_DATA.keys()) - served)
    assert not stale, "classified routes that do not exist: " + ", ".join(f"{m} {p}" for m, p in stale)


def _allowed(routes: set[tuple[str, str]], candidates: tuple[str, ...]) -> list[tuple[tuple[str, str], str]]:
    """(route, caller) for each caller kind the matrix lets through with a 2xx."""
    return [
        (route, caller)
        for route in sorted(routes)
        for caller in candidates
        if 200 <= MATRIX[route].expected[caller] < 300
    ]


# The story's readers (the worklist: its handläggare and samordnare) and authors.
READ_CELLS = _allowed(READS, READERS)
CHANGE_CELLS = _allowed(CHANGES, READERS)


async def _audit_rows(session: AsyncSession, request_id: str) -> list[AuditEvent]:
    rows = (
        (await session.execute(select(AuditEvent).where(AuditEvent.request_id == request_id))).scalars().all()
    )
    await session.commit()
    return list(rows)


async def _call(
    client: httpx.AsyncClient, story: Story, caller_headers: Any, route: tuple[str, str], caller: str
) -> tuple[httpx.Response, str]:
    request_id = f"audit-{uuid.uuid4().hex}"
    method, url, kwargs = _request(route, story, {**caller_headers(caller), "X-Request-ID": request_id})
    r = await client.request(method, url, **kwargs)
    assert 200 <= r.status_code < 300, f"{method} {route[1]} as {caller}: {r.status_code} {r.text[:300]}"
    assert r.headers["x-request-id"] == request_id
    return r, request_id


def _check(rows: list[AuditEvent], story: Story, caller: str, client_id: str) -> None:
    c = CALLERS[caller]
    assert rows, f"no audit event for the request as {caller}"
    assert {str(r.organisation_id) for r in rows} == {story.org[c.org]}
    assert {r.actor_subject for r in rows} == {c.subject}
    assert {r.actor_roles for r in rows} == {",".join(sorted(c.roles))}
    assert all(r.client_id is not None for r in rows), [(r.action, r.client_id) for r in rows]
    assert uuid.UUID(client_id) in {r.client_id for r in rows}, [(r.action, str(r.client_id)) for r in rows]


@pytest.mark.parametrize(("route", "caller"), READ_CELLS, ids=[f"{r[0]} {r[1]} [{c}]" for r, c in READ_CELLS])
async def test_every_read_of_client_data_is_audited(
    client: httpx.AsyncClient, session: AsyncSession, story: Story, caller_headers: Any,
    route: tuple[str, str], caller: str,
) -> None:  # fmt: skip
    _, request_id = await _call(client, story, caller_headers, route, caller)
    _check(await _audit_rows(session, request_id), story, caller, story.client_id)


@pytest.mark.parametrize(
    ("route", "caller"), CHANGE_CELLS, ids=[f"{r[0]} {r[1]} [{c}]" for r, c in CHANGE_CELLS]
)
async def test_every_change_of_client_data_is_audited(
    client: httpx.AsyncClient, session: AsyncSession, story: Story, caller_headers: Any,
    route: tuple[str, str], caller: str,
) -> None:  # fmt: skip
    r, request_id = await _call(client, story, caller_headers, route, caller)
    # Registering a client audits the new client; everything else the story's.
    expected_client = r.json()["id"] if route == ("POST", "/api/v1/clients") else story.client_id
    _check(await _audit_rows(session, request_id), story, caller, expected_client)


async def test_a_refused_search_by_personal_number_is_audited(
    client: httpx.AsyncClient, session: AsyncSession, story: Story, caller_headers: Any
) -> None:
    """Huddinge probing for the story's client by personal number is refused, and the attempt is
    in Huddinge's log (without the personal number)."""
    request_id = f"audit-{uuid.uuid4().hex}"
    r = await client.post(
        "/api/v1/clients/search",
        json={"personal_number": story.personal_number},
        headers={**caller_headers("outsider"), "X-Request-ID": request_id},
    )
    assert_problem(r, 404)
    rows = await _audit_rows(session, request_id)
    assert [(r.action, str(r.organisation_id), r.client_id) for r in rows] == [
        ("client.search.miss", story.org["huddinge"], None)
    ]
    assert not any(story.personal_number[2:] in repr(r.model_dump()) for r in rows)


async def test_the_chain_is_intact_after_every_audited_read(
    client: httpx.AsyncClient, story: Story, caller_headers: Any
) -> None:
    """Stockholms stad's hash chain verifies after one call of every audited read."""
    for route in sorted(READS):
        await _call(client, story, caller_headers, route, "owner")
    r = await client.get("/api/v1/audit-events/verify", headers=caller_headers("auditor"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["events_checked"] > 0, body
