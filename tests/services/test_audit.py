"""The audit service: one hash chain per organisation, appended in the caller's transaction,
verified link by link, and append-only in the database itself."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.sql.elements import TextClause

from app.auth.principal import Principal
from app.config import DEV_ISSUER
from app.db import SYSTEM, TENANT_KEY, Database, make_engine
from app.models.audit import AuditChainHead, AuditEvent
from app.models.identity import Role
from app.models.organisation import OrganisationKind
from app.services import audit
from app.services.demo import DEMO_ORGS
from tests.conftest import BACKEND, OrgRef

if TYPE_CHECKING:
    from tests.conftest import TestDatabase

PEPPER = "test-pepper"

_SQLITE_TRIGGERS = ("audit_event_no_update", "audit_event_no_delete")


def make_principal(
    org: OrgRef, *roles: Role, subject: str = "audit-tester", name: str | None = "Audit Tester"
) -> Principal:
    return Principal(
        subject=subject,
        user_id=uuid.uuid4(),
        organisation_id=org.id,
        org_number=org.org_number,
        org_kind=OrganisationKind.kommun,
        org_county=org.county_code,
        roles=frozenset(roles or (Role.handlaggare,)),
        issuer=DEV_ISSUER,
        name=name,
    )


async def fresh_org_ids(db: TestDatabase) -> dict[str, uuid.UUID]:
    """The demo organisations' ids in a fresh database, looked up there (not assumed)."""
    engine = create_async_engine(db.owner_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, org_number FROM organisation"))).all()
    finally:
        await engine.dispose()
    by_number = {r.org_number: uuid.UUID(str(r.id)) for r in rows}
    return {spec.key: by_number[spec.org_number] for spec in DEMO_ORGS}


async def tamper_committed(db: TestDatabase, *statements: TextClause | str, **params: Any) -> None:
    """Change audit rows in a database with real commits (a `fresh_database`), going around the
    append-only triggers the way only the schema owner can."""
    engine = create_async_engine(db.owner_url)
    try:
        async with engine.begin() as conn:
            if db.backend == "postgresql":
                await conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
            else:
                for trigger in _SQLITE_TRIGGERS:
                    await conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
            for statement in statements:
                await conn.execute(text(statement) if isinstance(statement, str) else statement, params)
            if db.backend == "postgresql":
                await conn.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))
    finally:
        await engine.dispose()


# --- appending -------------------------------------------------------------------------------


async def _chain(session: AsyncSession, organisation_id: uuid.UUID) -> list[AuditEvent]:
    rows = await session.execute(
        select(AuditEvent)
        .where(AuditEvent.organisation_id == organisation_id)
        .order_by(AuditEvent.seq)  # type: ignore[arg-type]
        .execution_options(populate_existing=True)
    )
    return list(rows.scalars().all())


def _assert_linked(events: Sequence[AuditEvent], pepper: str = PEPPER) -> None:
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    prev = audit.GENESIS
    for event in events:
        assert event.prev_hash == prev, event.seq
        assert len(event.hash) == 64
        assert audit.event_hash(pepper, prev, audit._hashed_fields(event)) == event.hash
        prev = event.hash


async def test_flush_appends_a_linked_chain_per_organisation(
    session: AsyncSession, orgs: dict[str, OrgRef]
) -> None:
    a = make_principal(orgs["sthlm-stad"], Role.handlaggare, subject="a-user")
    b = make_principal(orgs["huddinge"], Role.samordnare, Role.handlaggare, subject="b-user")
    client = uuid.uuid4()
    session.info["request_id"] = "req-1"

    assert await audit.flush(session, PEPPER) == 0  # nothing queued, nothing written
    audit.record(session, a, "plan.read", "plan", uuid.UUID(int=1), client_id=client)
    audit.record(session, b, "plan.read", "plan", "obj-b1")
    audit.record(session, a, "plan.update", "plan", uuid.UUID(int=2))
    audit.record(session, b, "plan.update", "plan", None)
    audit.record(session, a, "unit.create", "unit", uuid.UUID(int=3))
    # Nothing reaches the table before flush: the events belong to the caller's transaction.
    assert await _chain(session, a.organisation_id) == []
    assert await audit.flush(session, PEPPER) == 5

    audit.record(session, a, "plan.read", "plan", uuid.UUID(int=4))
    audit.record(session, a, "plan.read", "plan", uuid.UUID(int=5))
    assert await audit.flush(session, PEPPER) == 2
    assert await audit.flush(session, PEPPER) == 0  # the queue was emptied

    chain_a = await _chain(session, a.organisation_id)
    chain_b = await _chain(session, b.organisation_id)
    _assert_linked(chain_a)
    _assert_linked(chain_b)
    assert [e.action for e in chain_a] == ["plan.read", "plan.update", "unit.create", "plan.read", "plan.read"]
    assert [e.object_id for e in chain_a] == [str(uuid.UUID(int=i)) for i in range(1, 6)]
    assert [e.action for e in chain_b] == ["plan.read", "plan.update"]
    assert chain_b[1].object_id is None
    # Two organisations, two independent chains: both start from the genesis hash.
    assert chain_a[0].prev_hash == chain_b[0].prev_hash == audit.GENESIS
    assert {e.hash for e in chain_a}.isdisjoint({e.hash for e in chain_b})

    first = chain_a[0]
    assert first.client_id == client
    assert first.actor_subject == "a-user"
    assert first.actor_name == "Audit Tester"
    assert first.actor_roles == "handlaggare"
    assert first.request_id == "req-1"
    assert first.object_type == "plan"
    assert chain_b[0].actor_roles == "handlaggare,samordnare"
    assert all(e.organisation_id == a.organisation_id for e in chain_a)

    heads = {
        h.organisation_id: h
        for h in (
            await session.execute(select(AuditChainHead).execution_options(populate_existing=True))
        ).scalars()
    }
    assert heads[a.organisation_id].last_seq == 5
    assert heads[a.organisation_id].last_hash == chain_a[-1].hash
    assert heads[b.organisation_id].last_seq == 2
    assert heads[b.organisation_id].last_hash == chain_b[-1].hash


async def test_verify_chain_accepts_intact_chains(session: AsyncSession, orgs: dict[str, OrgRef]) -> None:
    a = make_principal(orgs["sthlm-stad"])
    b = make_principal(orgs["region-sthlm"])
    for i in range(7):
        audit.record(session, a, "plan.read", "plan", uuid.UUID(int=i))
        if i % 2:
            audit.record(session, b, "plan.read", "plan", uuid.UUID(int=i))
    await audit.flush(session, PEPPER)

    report = await audit.verify_chain(session, a.organisation_id, PEPPER)
    assert report == audit.ChainReport(a.organisation_id, True, 7)
    # A small batch size walks the chain in several pages with the same answer.
    assert await audit.verify_chain(session, a.organisation_id, PEPPER, batch=2) == report
    assert await audit.verify_chain(session, b.organisation_id, PEPPER) == audit.ChainReport(
        b.organisation_id, True, 3
    )
    # An organisation that has done nothing has an empty, intact chain.
    empty = orgs["uppsala"].id
    assert await audit.verify_chain(session, empty, PEPPER) == audit.ChainReport(empty, True, 0)


async def test_verify_chain_needs_the_pepper(session: AsyncSession, orgs: dict[str, OrgRef]) -> None:
    """Someone with database access but without the pepper cannot recompute the hashes."""
    a = make_principal(orgs["sthlm-stad"])
    audit.record(session, a, "plan.read", "plan", "x")
    audit.record(session, a, "plan.read", "plan", "y")
    await audit.flush(session, PEPPER)
    report = await audit.verify_chain(session, a.organisation_id, "another-pepper")
    assert not report.ok
    assert report.first_broken_seq == 1
    assert report.events_checked == 0
    assert "altered" in (report.reason or "")


# --- tampering, on both databases -----------------------------------------------------------


@dataclass
class ChainBench:
    """Writes audit events where they can be tampered with: inside the test's transaction on
    SQLite (the triggers are dropped in that transaction and come back on rollback), in a fresh
    database with real commits and an owner connection on PostgreSQL."""

    backend: str
    database: Database
    fresh: TestDatabase | None
    org_ids: dict[str, uuid.UUID]

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.database.session(SYSTEM) as s:
            yield s

    async def write(self, org_key: str, count: int) -> None:
        org = OrgRef(org_key, self.org_ids[org_key], "0000000000", org_key, "01")
        async with self.session() as s:
            for i in range(count):
                audit.record(s, make_principal(org), "plan.read", "plan", f"{org_key}-{i + 1}")
            await audit.flush(s, PEPPER)
            await s.commit()

    async def tamper(self, sql: str, **params: Any) -> None:
        if self.fresh is not None:
            await tamper_committed(self.fresh, sql, **params)
            return
        async with self.session() as s:
            for trigger in _SQLITE_TRIGGERS:
                await s.execute(text(f"DROP TRIGGER {trigger}"))
            await s.execute(text(sql), params)
            await s.commit()

    async def verify(self, org_key: str) -> audit.ChainReport:
        async with self.session() as s:  # a new session: nothing cached from the writes
            return await audit.verify_chain(s, self.org_ids[org_key], PEPPER)


@pytest.fixture
async def bench(
    database: Database, fresh_database: TestDatabase, orgs: dict[str, OrgRef]
) -> AsyncIterator[ChainBench]:
    if BACKEND == "sqlite":
        yield ChainBench("sqlite", database, None, {k: o.id for k, o in orgs.items()})
        return
    settings = fresh_database.settings()
    db = Database(settings, engine=make_engine(fresh_database.app_url, settings))
    try:
        yield ChainBench("postgresql", db, fresh_database, await fresh_org_ids(fresh_database))
    finally:
        await db.dispose()


async def test_bench_starts_intact(bench: ChainBench) -> None:
    await bench.write("sthlm-stad", 5)
    await bench.write("huddinge", 2)
    assert await bench.verify("sthlm-stad") == audit.ChainReport(bench.org_ids["sthlm-stad"], True, 5)
    assert await bench.verify("huddinge") == audit.ChainReport(bench.org_ids["huddinge"], True, 2)


_UPDATE = "UPDATE audit_event SET {} WHERE organisation_id = :org AND seq = :seq"
_DELETE_ONE = "DELETE FROM audit_event WHERE organisation_id = :org AND seq = :seq"

# (statement, seq to tamper with, first broken seq, events verified before it, word in the reason)
_TAMPERING = {
    "action": (_UPDATE.format("action = 'plan.export'"), 3, 3, 2, "altered"),
    "actor": (_UPDATE.format("actor_subject = 'someone-else'"), 1, 1, 0, "altered"),
    "last-object": (_UPDATE.format("object_id = NULL"), 5, 5, 4, "altered"),
    "hash": (_UPDATE.format("hash = :fake"), 2, 2, 1, "altered"),
    "prev-hash": (_UPDATE.format("prev_hash = :fake"), 4, 4, 3, "link"),
    "delete-middle": (_DELETE_ONE, 3, 3, 2, "missing"),
    "delete-first": (_DELETE_ONE, 1, 1, 0, "missing"),
    "delete-last": (_DELETE_ONE, 5, 5, 4, "removed"),
    "cut-tail": ("DELETE FROM audit_event WHERE organisation_id = :org AND seq >= :seq", 4, 4, 3, "removed"),
}


@pytest.mark.parametrize(
    ("sql", "seq", "broken_at", "checked", "reason"),
    [pytest.param(*case, id=name) for name, case in _TAMPERING.items()],
)
async def test_verify_chain_names_the_first_broken_link(
    bench: ChainBench, sql: str, seq: int, broken_at: int, checked: int, reason: str
) -> None:
    await bench.write("sthlm-stad", 5)
    await bench.write("huddinge", 3)
    org = bench.org_ids["sthlm-stad"]
    org_param: Any = org if bench.backend == "postgresql" else org.hex  # SQLite stores uuids as hex
    await bench.tamper(sql, org=org_param, seq=seq, fake="f" * 64)

    report = await bench.verify("sthlm-stad")
    assert not report.ok
    assert report.organisation_id == org
    assert report.first_broken_seq == broken_at
    assert report.events_checked == checked
    assert reason in (report.reason or ""), report.reason
    # The other organisation's chain is untouched and still verifies.
    assert await bench.verify("huddinge") == audit.ChainReport(bench.org_ids["huddinge"], True, 3)


async def test_a_rewritten_event_with_a_recomputed_hash_breaks_the_next_link(bench: ChainBench) -> None:
    """Rewriting an event and its hash (knowing the pepper) still breaks the link from the next one."""
    await bench.write("sthlm-stad", 4)
    org = bench.org_ids["sthlm-stad"]
    async with bench.session() as s:
        event = (
            await s.execute(select(AuditEvent).where(AuditEvent.organisation_id == org, AuditEvent.seq == 2))
        ).scalar_one()
        fields = audit._hashed_fields(event) | {"action": "plan.delete"}
        forged = audit.event_hash(PEPPER, event.prev_hash, fields)
    org_param: Any = org if bench.backend == "postgresql" else org.hex
    await bench.tamper(
        "UPDATE audit_event SET action = 'plan.delete', hash = :forged WHERE organisation_id = :org AND seq = 2",
        forged=forged,
        org=org_param,
    )
    report = await bench.verify("sthlm-stad")
    assert (report.ok, report.first_broken_seq, report.events_checked) == (False, 3, 2)
    assert "link" in (report.reason or "")


async def test_a_removed_chain_head_is_reported(bench: ChainBench) -> None:
    """The head is what catches a cut-off tail; events without a head mean it was removed."""
    await bench.write("sthlm-stad", 3)
    org = bench.org_ids["sthlm-stad"]
    org_param: Any = org if bench.backend == "postgresql" else org.hex
    await bench.tamper("DELETE FROM audit_chain_head WHERE organisation_id = :org", org=org_param)
    report = await bench.verify("sthlm-stad")
    assert not report.ok
    assert report.first_broken_seq == 4
    assert report.events_checked == 3
    assert "head" in (report.reason or "")


# --- append-only --------------------------------------------------------------------------


def _is_append_only_refusal(exc: BaseException) -> bool:
    return "append-only" in str(exc)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_event SET action = 'plan.export'",
        "UPDATE audit_event SET hash = hash",
        "DELETE FROM audit_event",
    ],
)
async def test_audit_events_are_append_only(session: AsyncSession, orgs: dict[str, OrgRef], sql: str) -> None:
    """On SQLite the trigger refuses; on PostgreSQL the service role lacks the privilege first."""
    audit.record(session, make_principal(orgs["sthlm-stad"]), "plan.read", "plan", "x")
    await audit.flush(session, PEPPER)
    with pytest.raises(DBAPIError) as caught:
        async with session.begin_nested():
            await session.execute(text(sql))
    if BACKEND == "postgresql":
        assert "permission denied" in str(caught.value)
    else:
        assert _is_append_only_refusal(caught.value)
    session.expunge_all()
    (event,) = await _chain(session, orgs["sthlm-stad"].id)
    assert event.action == "plan.read"


@pytest.mark.postgresql_only
async def test_service_role_lacks_update_delete_truncate_on_audit_event(session: AsyncSession) -> None:
    rows = (
        await session.execute(
            text(
                "SELECT p AS privilege, has_table_privilege(current_user, 'audit_event', p) AS granted "
                "FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p"
            )
        )
    ).all()
    assert {r.privilege: r.granted for r in rows} == {
        "SELECT": True,
        "INSERT": True,
        "UPDATE": False,
        "DELETE": False,
        "TRUNCATE": False,
    }
    assert await session.scalar(text("SELECT current_user")) == "samplan_app"


@pytest.mark.postgresql_only
async def test_triggers_refuse_changes_even_for_the_owner(fresh_database: TestDatabase) -> None:
    """The privilege is the first guard; the trigger holds even for a role that has it."""
    settings = fresh_database.settings()
    db = Database(settings, engine=make_engine(fresh_database.app_url, settings))
    org_id = (await fresh_org_ids(fresh_database))["sthlm-stad"]
    try:
        async with db.session(SYSTEM) as s:
            org = OrgRef("sthlm-stad", org_id, "2120000142", "Stockholms stad", "01")
            audit.record(s, make_principal(org), "plan.read", "plan", "x")
            await audit.flush(s, PEPPER)
            await s.commit()
    finally:
        await db.dispose()

    owner = create_async_engine(fresh_database.owner_url)
    try:
        for sql in (
            "UPDATE audit_event SET action = 'plan.export'",
            "DELETE FROM audit_event",
            "TRUNCATE audit_event",
        ):
            async with owner.connect() as conn:
                assert await conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
                with pytest.raises(DBAPIError) as caught:
                    await conn.execute(text(sql))
                assert _is_append_only_refusal(caught.value), caught.value
                await conn.rollback()
        async with owner.connect() as conn:
            assert await conn.scalar(text("SELECT action FROM audit_event")) == "plan.read"
            assert await conn.scalar(text("SELECT count(*) FROM audit_event")) == 1
    finally:
        await owner.dispose()

    # Tampering re-enables the triggers behind it.
    await tamper_committed(fresh_database, "UPDATE audit_event SET action = 'plan.export'")
    owner = create_async_engine(fresh_database.owner_url)
    try:
        async with owner.connect() as conn:
            with pytest.raises(DBAPIError) as caught:
                await conn.execute(text("DELETE FROM audit_event"))
            assert _is_append_only_refusal(caught.value)
    finally:
        await owner.dispose()


@pytest.mark.sqlite_only
async def test_sqlite_triggers_exist(session: AsyncSession) -> None:
    names = set(
        (
            await session.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_event'")
            )
        ).scalars()
    )
    assert names == set(_SQLITE_TRIGGERS)


# --- verification racing live appends --------------------------------------------------------


@pytest.mark.postgresql_only
async def test_verification_while_events_are_appended_is_not_a_false_alarm(
    fresh_database: TestDatabase,
) -> None:
    """`samplan audit verify` runs against a live service: an event committed by another
    transaction while the chain is being walked must not be reported as tampering."""
    settings = fresh_database.settings()
    db = Database(settings, engine=make_engine(fresh_database.app_url, settings))
    org = OrgRef("sthlm-stad", (await fresh_org_ids(fresh_database))["sthlm-stad"], "2120000142", "S", "01")

    async def append(count: int) -> None:
        async with db.session(SYSTEM) as s:
            for i in range(count):
                audit.record(s, make_principal(org), "plan.read", "plan", str(i))
            await audit.flush(s, PEPPER)
            await s.commit()

    appended: list[int] = []

    class InterleavingSession(AsyncSession):
        """Commits another event from a second connection just before the walk reads the chain
        head and before its second query, as a busy service would."""

        queries = 0

        async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
            InterleavingSession.queries += 1
            if InterleavingSession.queries == 2 or "audit_chain_head" in str(statement):
                await append(1)
                appended.append(1)
            return await super().execute(statement, *args, **kwargs)

    try:
        await append(3)
        async with InterleavingSession(db.engine) as s:
            s.info[TENANT_KEY] = SYSTEM
            report = await audit.verify_chain(s, org.id, PEPPER, batch=2)
        assert len(appended) == 2
        assert report.ok, report
        assert report.events_checked >= 3
        async with db.session(SYSTEM) as s:
            final = await audit.verify_chain(s, org.id, PEPPER)
        assert final == audit.ChainReport(org.id, True, 5)
    finally:
        await db.dispose()
