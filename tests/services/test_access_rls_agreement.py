"""The access rule exists twice on purpose: in Python (app/services/access.py) and as PostgreSQL
RLS. This test holds the two to the same answers over plans in many states."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.db import SYSTEM, TenantContext, bind_tenant
from app.models.client import Client
from app.models.plan import Plan
from app.services import access
from tests.plan_helpers import PlanDriver

pytestmark = pytest.mark.postgresql_only


async def _plans_in_many_states(drv: PlanDriver) -> None:
    # initiator only
    await drv.create_plan()
    # participants without consent
    p = await drv.create_plan()
    await drv.add_participant(p["id"], "region-sthlm")
    # consent covering region only, SiS participates without coverage
    p = await drv.create_plan(org="huddinge")
    await drv.add_participant(p["id"], "region-sthlm", by="huddinge")
    await drv.add_participant(p["id"], "sis", kind="other", by="huddinge")
    await drv.add_consent(p["id"], ["huddinge", "region-sthlm"], by="huddinge")
    # consent covering an organisation that does not take part
    p = await drv.create_plan()
    await drv.add_consent(p["id"], ["sthlm-stad", "uppsala"])
    # a full plan, then consent withdrawn
    p = await drv.ready_plan()
    consent_id = p["consents"][0]["id"]
    r = await drv.post(p["id"], f"/consents/{consent_id}/withdraw", {"reason": "återkallat"})
    assert r.status_code == 200, r.text
    # a full active plan initiated by the region
    p = await drv.create_plan(org="region-sthlm")
    await drv.add_participant(p["id"], "sthlm-stad", by="region-sthlm")
    await drv.add_consent(p["id"], ["sthlm-stad", "region-sthlm"], by="region-sthlm")


async def _python_answer(session: AsyncSession, org_id: uuid.UUID) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    await bind_tenant(session, SYSTEM)  # RLS lets everything through; only the Python rule filters
    plans = set((await session.execute(select(Plan.id).where(access.plan_visible_clause(org_id)))).scalars())
    clients = set(
        (await session.execute(select(Client.id).where(access.client_visible_clause(org_id)))).scalars()
    )
    return plans, clients


async def _rls_answer(session: AsyncSession, org_id: uuid.UUID) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    await bind_tenant(session, TenantContext.org(org_id))  # no Python filter: only RLS
    plans = {uuid.UUID(str(r)) for r in (await session.execute(text("SELECT id FROM plan"))).scalars()}
    clients = {uuid.UUID(str(r)) for r in (await session.execute(text("SELECT id FROM client"))).scalars()}
    return plans, clients


async def test_python_rule_and_rls_agree(
    client: httpx.AsyncClient, auth, orgs, session: AsyncSession
) -> None:
    drv = PlanDriver(client, auth, orgs)
    await _plans_in_many_states(drv)
    seen_any = False
    for ref in orgs.values():
        python_plans, python_clients = await _python_answer(session, ref.id)
        rls_plans, rls_clients = await _rls_answer(session, ref.id)
        assert python_plans == rls_plans, ref.key
        assert python_clients == rls_clients, ref.key
        seen_any = seen_any or bool(python_plans)
    assert seen_any
    # And the children follow their plan: a region sees participants only of plans it may see.
    region = orgs["region-sthlm"].id
    await bind_tenant(session, TenantContext.org(region))
    child_plans = {
        uuid.UUID(str(r))
        for r in (await session.execute(text("SELECT DISTINCT plan_id FROM plan_participant"))).scalars()
    }
    python_plans, _ = await _python_answer(session, region)
    assert child_plans == python_plans


async def test_without_context_no_plan_or_client_is_visible(
    client: httpx.AsyncClient, auth, orgs, session: AsyncSession
) -> None:
    drv = PlanDriver(client, auth, orgs)
    await drv.ready_plan()
    await bind_tenant(session, TenantContext(scope="org", organisation_id=None))
    for table in (
        "plan",
        "plan_participant",
        "consent",
        "plan_action",
        "plan_version",
        "client",
        "client_link",
    ):
        count = (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()  # noqa: S608
        assert count == 0, table
    await bind_tenant(session, SYSTEM)
    assert (await session.execute(text("SELECT count(*) FROM plan"))).scalar_one() > 0
