"""The ceiling: "read a plan" with nothing but the SQL.

The same SQL statements the service runs for `GET /api/v1/plans/{id}` (the plan under the access
rule, its participants and their organisations, consents and their scopes, needs, goals, actions),
on a plain asyncpg pool, serialised with the standard library. No authentication, no audit event,
no ORM, no row-level security (it connects as the table owner), no middleware.

Two of them, both served by the same uvicorn settings as `samplan serve` (h11, same worker count):
- `app`: one FastAPI route. The target ratio is measured against this one: same framework and
  server, so the ratio is what Samplan's own work (auth, audit, ORM, RLS, validation) costs.
- `bare`: a raw ASGI callable, the floor of Python on this server; reported for reference.

Run: `SAMPLAN_CEILING_DSN=postgresql://postgres@127.0.0.1:5432/db uvicorn bench.ceiling:app`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI
from fastapi import Response as FastAPIResponse

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PLAN = """
SELECT plan.* FROM plan
WHERE plan.id = $1 AND (
  plan.initiating_organisation_id = $2
  OR (EXISTS (SELECT 1 FROM plan_participant
              WHERE plan_participant.plan_id = plan.id AND plan_participant.organisation_id = $2
                AND plan_participant.kind IN ('huvudman', 'other'))
      AND EXISTS (SELECT 1 FROM consent_scope, consent
                  WHERE consent_scope.plan_id = plan.id AND consent_scope.organisation_id = $2
                    AND consent.id = consent_scope.consent_id AND consent.withdrawn_at IS NULL
                    AND (consent.valid_until IS NULL OR consent.valid_until >= $3))))
"""
PARTICIPANTS = "SELECT * FROM plan_participant WHERE plan_id = $1 ORDER BY added_at"
ORGANISATIONS = "SELECT * FROM organisation WHERE id = ANY($1::uuid[])"
CONSENTS = "SELECT * FROM consent WHERE plan_id = $1 ORDER BY recorded_at"
SCOPES = "SELECT * FROM consent_scope WHERE plan_id = $1"
NEEDS = "SELECT * FROM plan_need WHERE plan_id = $1 ORDER BY created_at"
GOALS = "SELECT * FROM plan_goal WHERE plan_id = $1 ORDER BY created_at"
ACTIONS = "SELECT * FROM plan_action WHERE plan_id = $1 ORDER BY proposed_at, id"


def _default(value: object) -> str:
    if isinstance(value, uuid.UUID | dt.date | dt.datetime):
        return str(value)
    raise TypeError(type(value).__name__)


async def _create_pool() -> asyncpg.Pool:
    return await asyncpg.create_pool(
        os.environ["SAMPLAN_CEILING_DSN"],
        min_size=2,
        max_size=int(os.environ.get("SAMPLAN_CEILING_POOL", "10")),
    )


async def read_plan(pool: asyncpg.Pool, plan_id: uuid.UUID, organisation_id: uuid.UUID) -> tuple[int, bytes]:
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        plan = await conn.fetchrow(PLAN, plan_id, organisation_id, dt.date.today())
        if plan is None:
            return 404, b'{"detail":"no such plan"}'
        participants = await conn.fetch(PARTICIPANTS, plan_id)
        org_ids = list({p["organisation_id"] for p in participants if p["organisation_id"]})
        orgs = {o["id"]: o for o in await conn.fetch(ORGANISATIONS, org_ids)}
        consents = await conn.fetch(CONSENTS, plan_id)
        scopes = await conn.fetch(SCOPES, plan_id)
        needs = await conn.fetch(NEEDS, plan_id)
        goals = await conn.fetch(GOALS, plan_id)
        actions = await conn.fetch(ACTIONS, plan_id)
    out = dict(plan)
    out["legal_basis"] = json.loads(out["legal_basis"])
    out["participants"] = [
        {
            **dict(p),
            "organisation_name": orgs[p["organisation_id"]]["name"] if p["organisation_id"] in orgs else None,
        }
        for p in participants
    ]
    out["consents"] = [
        {
            **dict(c),
            "scope_organisation_ids": [s["organisation_id"] for s in scopes if s["consent_id"] == c["id"]],
        }
        for c in consents
    ]
    out["needs"] = [dict(n) for n in needs]
    out["goals"] = [dict(g) for g in goals]
    out["actions"] = [dict(a) for a in actions]
    return 200, json.dumps(out, default=_default).encode()


@asynccontextmanager
async def _lifespan(application: FastAPI) -> AsyncIterator[None]:
    application.state.pool = await _create_pool()
    yield
    await application.state.pool.close()


app = FastAPI(lifespan=_lifespan, openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/plans/{plan_id}")
async def get_plan(plan_id: uuid.UUID, org: uuid.UUID) -> FastAPIResponse:
    status, body = await read_plan(app.state.pool, plan_id, org)
    return FastAPIResponse(content=body, status_code=status, media_type="application/json")


class Bare:
    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.pool = await _create_pool()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.pool is not None:
                        await self.pool.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path: str = scope["path"]
        status, body = 404, b'{"detail":"not found"}'
        if path == "/health":
            status, body = 200, b'{"status":"ok"}'
        elif path.startswith("/plans/"):
            query = dict(
                part.split("=", 1) for part in scope["query_string"].decode().split("&") if "=" in part
            )
            assert self.pool is not None
            status, body = await read_plan(
                self.pool, uuid.UUID(path.removeprefix("/plans/")), uuid.UUID(query["org"])
            )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


bare = Bare()
