"""bench/generate.py at a tiny scale with every FK check and trigger on: the data it writes is
what the service itself would accept and continue (audit chains, access rules, care-chain rules)."""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from app.auth.principal import Principal
from app.cli import migrate
from app.config import Settings
from app.db import Database, TenantContext
from app.errors import NotFound
from app.models.identity import Role
from app.models.organisation import OrganisationKind
from app.models.phase import Phase
from app.models.plan import PlanStatus
from app.services import access, identifiers, plans
from app.services.audit_review import verify_all_chains
from app.services.episode_rules import Span, episode_problems
from bench.generate import COUNTIES, TABLE_ORDER, generate
from tests.conftest import APP_ROLE, PG_HOST, PG_PORT, create_pg_database, drop_pg_database

pytestmark = pytest.mark.postgresql_only

SCALE = 0.002
SEED = 7
PEPPER = "bench-test-pepper"


@dataclass(frozen=True)
class Generated:
    name: str
    counts: dict[str, int]
    owner: Settings  # the superuser: sees everything
    app: Settings  # the service's role, under RLS

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{self.name}"


def _settings(name: str, user: str, data_dir: Path) -> Settings:
    url = f"postgresql+asyncpg://{user}@{PG_HOST}:{PG_PORT}/{name}"
    owner = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    return Settings(
        env="dev",
        data_dir=data_dir,
        database_url=url,
        migration_database_url=owner,
        db_app_role=APP_ROLE,
        db_pool_size=2,
        audit_pepper=PEPPER,
    )


async def _migrated(name: str, data_dir: Path) -> Settings:
    await create_pg_database(name)
    owner = _settings(name, "postgres", data_dir)
    await asyncio.to_thread(migrate, owner)
    return owner


@pytest.fixture(scope="module")
async def generated(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Generated]:
    data_dir = tmp_path_factory.mktemp("bench")
    name = f"samplan_gen_{uuid.uuid4().hex[:10]}"
    owner = await _migrated(name, data_dir)
    conn = await asyncpg.connect(f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres")
    try:  # as conftest does: the service role logs in with trust auth here
        await conn.execute(f"ALTER ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
    finally:
        await conn.close()
    gen = Generated(name, {}, owner, _settings(name, APP_ROLE, data_dir))
    counts = await generate(gen.dsn, scale=SCALE, seed=SEED, progress=False, checked=True, pepper=PEPPER)
    yield Generated(name, counts, owner, gen.app)
    await drop_pg_database(name)


async def _fetch(gen: Generated, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(gen.dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def test_row_counts_fit_the_scale(generated: Generated) -> None:
    c = generated.counts
    assert set(c) == set(TABLE_ORDER)
    for table in TABLE_ORDER:  # what it reports is what is there
        rows = await _fetch(generated, f"SELECT count(*) AS n FROM {table}")  # noqa: S608 - fixed names
        assert rows[0]["n"] == c[table], table
    assert c["organisation"] == 21 + 290 + 1 + 3  # the full national set at any scale
    assert c["client"] == round(300_000 * SCALE)
    assert 1.2 * c["client"] <= c["episode"] <= 1.6 * c["client"]
    assert 0.8 * 150_000 * SCALE <= c["plan"] <= 1.2 * 150_000 * SCALE
    assert 4 * c["plan"] <= c["plan_action"] <= 8 * c["plan"]
    assert 2 * c["plan"] <= c["plan_need"] <= 3 * c["plan"]
    assert c["plan"] < c["plan_version"] <= 4 * c["plan"]
    assert c["plan"] < c["plan_participant"]
    assert 1.0 * c["plan"] <= c["meeting"] <= 2.2 * c["plan"]
    assert 0.8 * c["plan"] <= c["follow_up"] <= 2.4 * c["plan"]
    assert 0.7 * c["plan"] <= c["consent"] <= c["plan"]
    assert c["client"] < c["client_link"] < 2.5 * c["client"]
    assert c["audit_event"] == round(1_000_000 * SCALE)
    assert 0 < c["audit_chain_head"] <= c["organisation"]
    statuses = {
        r["status"]: r["n"] for r in await _fetch(generated, "SELECT status, count(*) n FROM plan GROUP BY 1")
    }
    assert statuses.get("active", 0) + statuses.get("closed", 0) > 0.8 * c["plan"]
    assert statuses.get("active", 0) > 0


async def test_the_national_organisations(generated: Generated) -> None:
    rows = await _fetch(generated, "SELECT kind, county_code, org_number FROM organisation")
    kinds = collections.Counter(r["kind"] for r in rows)
    assert kinds["kommun"] == 290 and kinds["region"] == 21 and kinds["state"] == 1
    kommuner = collections.Counter(r["county_code"] for r in rows if r["kind"] == "kommun")
    assert kommuner == {code: n for code, _, _, n, _, _ in COUNTIES}
    assert sorted(r["county_code"] for r in rows if r["kind"] == "region") == sorted(identifiers.COUNTY_NAMES)
    numbers = [r["org_number"] for r in rows]
    assert len(set(numbers)) == len(numbers)
    for r in rows:
        assert identifiers.normalise_org_number(r["org_number"]) == r["org_number"]
        assert identifiers.is_region_org_number(r["org_number"]) == (r["kind"] == "region")
        identifiers.validate_county_code(r["county_code"])
    assert [r["org_number"] for r in rows if r["kind"] == "state"] == ["2021005489"]
    units = await _fetch(generated, "SELECT hsa_id FROM unit WHERE hsa_id IS NOT NULL")
    assert len(units) > 290
    for u in units:
        identifiers.validate_hsa_id(u["hsa_id"])
    users = await _fetch(
        generated,
        """SELECT o.kind, count(*) FILTER (WHERE u.roles::jsonb ? 'handlaggare') h,
                  count(*) FILTER (WHERE u.roles::jsonb ? 'rss') r
           FROM organisation o LEFT JOIN app_user u ON u.organisation_id = o.id GROUP BY o.id, o.kind""",
    )
    assert all(u["h"] >= 1 for u in users)  # every organisation has a handläggare to act as
    assert all(u["r"] == 1 for u in users if u["kind"] == "region")


async def test_every_personal_number_is_valid(generated: Generated) -> None:
    rows = await _fetch(generated, "SELECT personal_number, is_coordination_number, birth_date FROM client")
    assert len({r["personal_number"] for r in rows}) == len(rows)
    for r in rows:
        pnr = identifiers.parse_personal_number(r["personal_number"])
        assert pnr.value == r["personal_number"]
        assert pnr.is_coordination_number == r["is_coordination_number"]
        assert pnr.birth_date == r["birth_date"]
    coordination = sum(r["is_coordination_number"] for r in rows)
    assert 0 < coordination < 0.1 * len(rows)


async def test_every_audit_chain_verifies_with_the_service_s_own_check(generated: Generated) -> None:
    reports = await verify_all_chains(generated.owner)
    assert len(reports) == generated.counts["organisation"]
    broken = [(name, r.reason) for name, r in reports if not r.ok]
    assert broken == []
    assert sum(r.events_checked for _, r in reports) == generated.counts["audit_event"]
    heads = await _fetch(
        generated,
        """SELECT count(*) n FROM audit_chain_head h
           WHERE h.last_seq = (SELECT max(seq) FROM audit_event e WHERE e.organisation_id = h.organisation_id)
             AND h.last_hash = (SELECT hash FROM audit_event e WHERE e.organisation_id = h.organisation_id
                                AND e.seq = h.last_seq)""",
    )
    assert heads[0]["n"] == generated.counts["audit_chain_head"]


async def test_episodes_keep_the_care_chain_rules(generated: Generated) -> None:
    rows = await _fetch(
        generated, "SELECT id, client_id, phase, start_date, end_date, planned_end_date FROM episode"
    )
    by_client: dict[uuid.UUID, list[Span]] = collections.defaultdict(list)
    for r in rows:
        by_client[r["client_id"]].append(
            Span(r["id"], Phase(r["phase"]), r["start_date"], r["end_date"], r["planned_end_date"])
        )
    problems = [u.message for spans in by_client.values() for s in spans for u in episode_problems(s, spans)]
    assert problems == []
    assert any(r["phase"] == "lvm_vard" for r in rows) or len(rows) < 1000


async def test_an_active_plan_is_readable_by_a_consented_participant_and_no_one_else(
    generated: Generated,
) -> None:
    rows = await _fetch(
        generated,
        """SELECT p.id plan_id, o.id org_id, o.org_number, o.kind, o.county_code, u.id user_id, u.subject
           FROM plan p
           JOIN consent c ON c.plan_id = p.id AND c.withdrawn_at IS NULL
                         AND (c.valid_until IS NULL OR c.valid_until >= current_date)
           JOIN consent_scope cs ON cs.consent_id = c.id AND cs.organisation_id <> p.initiating_organisation_id
           JOIN organisation o ON o.id = cs.organisation_id AND o.kind IN ('kommun', 'region')
           JOIN app_user u ON u.organisation_id = o.id AND u.roles::jsonb ? 'handlaggare'
           WHERE p.status = 'active' ORDER BY p.id, u.subject LIMIT 1""",
    )
    assert rows, "no active plan with a consented participant"
    row = rows[0]
    outsider = (
        await _fetch(
            generated,
            """SELECT o.id, o.org_number, o.county_code, u.id user_id, u.subject FROM organisation o
               JOIN app_user u ON u.organisation_id = o.id AND u.roles::jsonb ? 'handlaggare'
               WHERE o.kind = 'kommun' AND o.county_code <> $1 ORDER BY o.org_number, u.subject LIMIT 1""",
            row["county_code"],
        )
    )[0]

    def principal(org_id: uuid.UUID, number: str, kind: str, county: str, user_id: uuid.UUID, subject: str):
        return Principal(
            subject=subject,
            user_id=user_id,
            organisation_id=org_id,
            org_number=number,
            org_kind=OrganisationKind(kind),
            org_county=county,
            roles=frozenset({Role.handlaggare}),
            issuer="urn:samplan:test",
        )

    reader = principal(
        row["org_id"], row["org_number"], row["kind"], row["county_code"], row["user_id"], row["subject"]
    )
    stranger = principal(
        outsider["id"], outsider["org_number"], "kommun", outsider["county_code"], outsider["user_id"],
        outsider["subject"],
    )  # fmt: skip
    db = Database(generated.app)  # the service's own role: RLS applies as well as the access module
    try:
        async with db.session(TenantContext.org(reader.organisation_id)) as session:
            vp = await access.load_plan(session, reader, row["plan_id"])
            detail = await plans.detail(session, vp)
        assert detail.status == PlanStatus.active
        assert reader.organisation_id in {p.organisation_id for p in detail.participants}
        assert detail.actions and detail.needs and detail.goals
        assert any(c.active and reader.organisation_id in c.scope_organisation_ids for c in detail.consents)
        assert detail.overall_responsible_organisation_id is not None
        async with db.session(TenantContext.org(stranger.organisation_id)) as session:
            with pytest.raises(NotFound):
                await access.load_plan(session, stranger, row["plan_id"])
    finally:
        await db.dispose()


async def test_the_same_seed_gives_the_same_data(generated: Generated, tmp_path: Path) -> None:
    name = f"samplan_gen_{uuid.uuid4().hex[:10]}"
    again = Generated(name, {}, await _migrated(name, tmp_path), generated.app)
    try:
        counts = await generate(again.dsn, scale=SCALE, seed=SEED, progress=False, pepper=PEPPER)
        assert counts == generated.counts
        digest = """SELECT md5(string_agg(x, ',' ORDER BY x)) d FROM (
                      SELECT id::text || personal_number x FROM client
                      UNION ALL SELECT id::text || status || version FROM plan
                      UNION ALL SELECT organisation_id::text || last_seq || last_hash FROM audit_chain_head) t"""
        assert (await _fetch(again, digest))[0]["d"] == (await _fetch(generated, digest))[0]["d"]
    finally:
        await drop_pg_database(name)
