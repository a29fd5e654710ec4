"""Helpers that drive the plan API the way a kommun, a region and SiS would."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from app.services.identifiers import make_personal_number

_serial = iter(range(1, 10_000))


def new_personal_number(birth: date = date(1985, 3, 14), coordination: bool = False) -> str:
    return make_personal_number(birth, next(_serial) % 1000, coordination=coordination)


class PlanDriver:
    """Thin wrapper over the HTTP API with the headers each caller needs."""

    def __init__(self, client: httpx.AsyncClient, auth: Any, orgs: dict[str, Any]) -> None:
        self.client = client
        self.auth = auth
        self.orgs = orgs

    def h(self, org: str, role: str = "handlaggare", **extra: str) -> dict[str, str]:
        return {**self.auth(org, role), **extra}

    async def register_client(self, org: str = "sthlm-stad", **fields: Any) -> dict[str, Any]:
        body = {
            "personal_number": fields.pop("personal_number", None) or new_personal_number(),
            "given_name": "Kim",
            "family_name": "Andersson",
            "gender": "kvinna",
            **fields,
        }
        r = await self.client.post("/api/v1/clients", json=body, headers=self.h(org))
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    async def create_plan(
        self, org: str = "sthlm-stad", client_id: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        if client_id is None:
            client_id = (await self.register_client(org))["id"]
        body = {
            "client_id": client_id,
            "title": "SIP inför utskrivning",
            "legal_basis": ["SoL 2 kap. 7 §", "HSL 16 kap. 4 §"],
            "follow_up_date": str(date.today() + timedelta(days=30)),
            **fields,
        }
        r = await self.client.post("/api/v1/plans", json=body, headers=self.h(org))
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def get(self, plan_id: str, org: str = "sthlm-stad", role: str = "handlaggare") -> httpx.Response:
        return await self.client.get(f"/api/v1/plans/{plan_id}", headers=self.h(org, role))

    async def post(
        self,
        plan_id: str,
        path: str,
        body: Any,
        org: str = "sthlm-stad",
        role: str = "handlaggare",
        **headers: str,
    ) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/plans/{plan_id}{path}", json=body, headers=self.h(org, role, **headers)
        )

    async def patch(
        self,
        plan_id: str,
        path: str,
        body: Any,
        org: str = "sthlm-stad",
        role: str = "handlaggare",
        **headers: str,
    ) -> httpx.Response:
        return await self.client.patch(
            f"/api/v1/plans/{plan_id}{path}", json=body, headers=self.h(org, role, **headers)
        )

    async def add_participant(
        self, plan_id: str, org_key: str, kind: str = "huvudman", by: str = "sthlm-stad"
    ) -> dict[str, Any]:
        r = await self.post(
            plan_id, "/participants", {"organisation_id": str(self.orgs[org_key].id), "kind": kind}, org=by
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def add_consent(
        self, plan_id: str, scope: list[str], by: str = "sthlm-stad", **fields: Any
    ) -> dict[str, Any]:
        body = {
            "given_at": datetime.now(UTC).isoformat(),
            "obtained_by": "Hanna Handläggare",
            "method": "written",
            "scope_organisation_ids": [str(self.orgs[k].id) for k in scope],
            **fields,
        }
        r = await self.post(plan_id, "/consents", body, org=by)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def add_action(
        self, plan_id: str, responsible: str, by: str = "sthlm-stad", **fields: Any
    ) -> tuple[dict[str, Any], str]:
        body = {
            "description": fields.pop("description", "Insats"),
            "responsible_organisation_id": str(self.orgs[responsible].id),
            **fields,
        }
        r = await self.post(plan_id, "/actions", body, org=by)
        assert r.status_code == 201, r.text
        plan = dict(r.json())
        return plan, r.headers["location"].rsplit("/", 1)[-1]

    async def transition(
        self, plan_id: str, to: str, version: int, org: str = "sthlm-stad"
    ) -> httpx.Response:
        return await self.post(plan_id, "/transitions", {"to": to}, org=org, **{"If-Match": f'"{version}"'})

    async def ready_plan(self) -> dict[str, Any]:
        """A draft that satisfies every activation rule: kommun + region, consent, accepted actions."""
        plan = await self.create_plan(overall_responsible_organisation_id=str(self.orgs["sthlm-stad"].id))
        pid = plan["id"]
        await self.add_participant(pid, "region-sthlm")
        await self.add_consent(pid, ["sthlm-stad", "region-sthlm"])
        await self.add_action(pid, "sthlm-stad", description="Boendestöd", phase="eftervard")
        _, action_id = await self.add_action(
            pid, "region-sthlm", description="Läkemedelsassisterad behandling"
        )
        r = await self.post(pid, f"/actions/{action_id}/accept", None, org="region-sthlm")
        assert r.status_code == 200, r.text
        return dict(r.json())
