"""One full plan story, built once over HTTP in a database of its own, for the security tests.

The story: Stockholms stad registers a client and starts a SIP; Region Stockholm takes part under
the client's consent; SiS takes part but the consent does not cover it. The plan has a need, a
goal, actions (one still proposed to the region), a meeting, a follow-up, an LVM episode at a SiS
home, a samordnare assignment, and Stockholms stad has a webhook.

The story is committed once per test run (package scope); every test then runs inside a
transaction on that database which is rolled back afterwards, as in the rest of the suite, so a
test may change the story freely. The fixtures `app_engine` and `settings` of the root conftest are
overridden here to point at the story's database; everything built on them (`connection`,
`database`, `app`, `client`, `session`, `orgs`, `token`, `auth`) works unchanged.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import SYSTEM, make_engine
from app.main import create_app
from app.models.events import EventType
from app.services.identifiers import make_personal_number
from tests.conftest import TestDatabase, _pg_url, create_pg_database, drop_pg_database

TODAY = datetime.now(UTC).date()  # the service's clock is UTC
TAG = uuid.uuid4().hex[:10]


def day(offset: int) -> str:
    return str(TODAY + timedelta(days=offset))


@dataclass(frozen=True)
class Caller:
    """A kind of caller in the matrix: an organisation, roles and a fixed subject."""

    name: str
    org: str
    roles: tuple[str, ...]
    subject: str
    county: str | None = None
    # What the caller may legitimately see of the story (see SECRET_KINDS below).
    may_see: frozenset[str] = frozenset()


# What the story holds that must stay inside the circle allowed to see it:
#   content: the client's name and the plan's content (title, need, goal, actions, meeting, episode);
#   pnr: the personal number, shown only to organisations that know the client (a client link);
#   webhook: Stockholms stad's webhook endpoint, for its org_admin;
#   webhook_secret: the signing secret, shown once at creation and never again, to anybody.
SECRET_KINDS = ("content", "pnr", "webhook", "webhook_secret")
_READS_STHLM = frozenset({"content", "pnr"})

CALLERS: dict[str, Caller] = {
    c.name: c
    for c in (
        # Positive controls: they show that ids and bodies are right, so a refusal elsewhere is about access.
        Caller("owner", "sthlm-stad", ("handlaggare",), "story-owner-hanna", may_see=_READS_STHLM),
        Caller(
            "participant",
            "region-sthlm",
            ("handlaggare",),
            "story-region-rita",
            may_see=frozenset({"content"}),
        ),
        Caller("coordinator", "sthlm-stad", ("samordnare",), "story-samordnare-anna", may_see=_READS_STHLM),
        # The callers the issue names.
        Caller("outsider", "huddinge", ("handlaggare",), "story-huddinge-hugo"),
        Caller("unconsented", "sis", ("handlaggare",), "story-sis-siri"),
        Caller("rss", "region-sthlm", ("rss",), "story-region-rss", county="01"),
        Caller("auditor", "sthlm-stad", ("auditor",), "story-sthlm-auditor"),
        Caller(
            "org_admin", "sthlm-stad", ("org_admin",), "story-sthlm-admin", may_see=frozenset({"webhook"})
        ),
        Caller("lasare", "sthlm-stad", ("lasare",), "story-sthlm-lasare", may_see=_READS_STHLM),
        Caller("system", "sthlm-stad", ("system",), "story-sthlm-system", may_see=_READS_STHLM),
        Caller("samordnare", "sthlm-stad", ("samordnare",), "story-samordnare-unassigned"),
        Caller("platform_admin", "region-sthlm", ("platform_admin",), "story-platform-admin"),
    )
}
# The second samordnare, the one a hand-over in the matrix goes to.
BO_SUBJECT = "story-samordnare-bo"


@dataclass
class Story:
    org: dict[str, str]  # demo org key -> organisation id
    client_id: str
    plan_id: str
    consent_id: str
    need_id: str
    goal_id: str
    own_action_id: str  # Stockholms stad's own action, accepted
    proposed_action_id: str  # proposed to Region Stockholm, unanswered
    meeting_id: str
    follow_up_id: str
    episode_id: str
    webhook_id: str
    anna_id: str  # the assigned samordnare (caller "coordinator")
    bo_id: str  # another samordnare of Stockholms stad, not assigned
    version: int  # the plan's version (ETag) at the end of the story
    personal_number: str
    secrets: dict[str, list[str]] = field(default_factory=dict)

    def path_params(self) -> dict[str, str]:
        return {
            "organisation_id": self.org["sthlm-stad"],
            "client_id": self.client_id,
            "episode_id": self.episode_id,
            "plan_id": self.plan_id,
            "consent_id": self.consent_id,
            "need_id": self.need_id,
            "goal_id": self.goal_id,
            "action_id": self.own_action_id,
            "meeting_id": self.meeting_id,
            "follow_up_id": self.follow_up_id,
            "webhook_id": self.webhook_id,
            "number": "1",
        }

    def leaked(self, text_: str, may_see: frozenset[str]) -> list[str]:
        """The secrets in `text_` that a caller allowed to see `may_see` must not see."""
        return [
            f"{kind}: {secret!r}"
            for kind, values in self.secrets.items()
            if kind not in may_see
            for secret in values
            if secret in text_
        ]


# ---- the story's own database --------------------------------------------------------------


@pytest.fixture(scope="package")
async def story_database(test_database: TestDatabase) -> AsyncIterator[TestDatabase]:
    """A copy of the migrated, demo-loaded template: the story is committed here, not in the
    database the other tests share. The data folder (and so the dev issuer's key) is the same."""
    tmp = test_database.tmp
    if test_database.backend == "sqlite":
        target = tmp / "security-story.db"
        shutil.copyfile(tmp / "template.db", target)
        url = f"sqlite+aiosqlite:///{target.as_posix()}"
        yield TestDatabase("sqlite", url, url, tmp)
        return
    name = f"samplan_story_{os.getpid()}"
    await create_pg_database(name, template=f"samplan_test_{os.getpid()}_tpl")
    yield TestDatabase("postgresql", _pg_url(name, "samplan_app"), _pg_url(name), tmp)
    await drop_pg_database(name)


@pytest.fixture(scope="package")
async def story(story_database: TestDatabase) -> Story:
    return await build_story(story_database.settings())


@pytest.fixture(scope="package")
async def app_engine(story_database: TestDatabase, story: Story) -> AsyncIterator[AsyncEngine]:
    """Overrides the root conftest's engine: the tests of this package run on the story's database."""
    settings = story_database.settings()
    engine = make_engine(settings.database_url, settings)
    yield engine
    await engine.dispose()


@pytest.fixture
def settings(story_database: TestDatabase) -> Settings:
    """Overrides the root conftest's settings, for the same reason."""
    return story_database.settings()


@pytest.fixture
def caller_headers(token: Any) -> Any:
    """caller_headers("lasare") -> the Authorization header of that caller kind."""

    def make(name: str) -> dict[str, str]:
        c = CALLERS[name]
        return {"Authorization": f"Bearer {token(c.org, *c.roles, subject=c.subject, county=c.county)}"}

    return make


# ---- building the story over HTTP ----------------------------------------------------------


def _ok(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}"
    return dict(r.json()) if r.content else {}


async def build_story(settings: Settings) -> Story:
    app = create_app(settings)  # its own Database: every request commits for real
    issuer = app.state.dev_issuer
    async with app.state.db.session(SYSTEM) as s:
        rows = (await s.execute(text("SELECT id, org_number FROM organisation"))).all()
        by_number = {r.org_number: str(uuid.UUID(str(r.id))) for r in rows}
        units = (
            await s.execute(text("SELECT id, hsa_id FROM unit WHERE hsa_id = 'SE2021005489-HORN'"))
        ).all()
    from app.services.demo import DEMO_ORGS

    org = {spec.key: by_number[spec.org_number] for spec in DEMO_ORGS}
    numbers = {spec.key: spec.org_number for spec in DEMO_ORGS}
    horno = str(uuid.UUID(str(units[0].id)))

    def h(key: str, role: str, subject: str, **extra: str) -> dict[str, str]:
        tok = issuer.mint(org_number=numbers[key], roles=[role], subject=subject, name=f"Story {subject}")
        return {"Authorization": f"Bearer {tok}", **extra}

    owner = CALLERS["owner"]
    hanna = h("sthlm-stad", "handlaggare", owner.subject)
    rita = h("region-sthlm", "handlaggare", CALLERS["participant"].subject)
    admin = h("sthlm-stad", "org_admin", CALLERS["org_admin"].subject)

    secrets: dict[str, list[str]] = {"content": [], "pnr": [], "webhook": [], "webhook_secret": []}

    def content(value: str) -> str:
        secrets["content"].append(value)
        return value

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://samplan.test") as c:
            # The webhook first, so that the story's events are queued for it.
            hook_url = f"https://hooks-{TAG}.stockholm.example/samplan"
            hook = _ok(
                await c.post(
                    "/api/v1/webhooks",
                    json={"url": hook_url, "event_types": [e.value for e in EventType],
                          "description": f"Treserva-krok {TAG}"},
                    headers=admin,
                ),
                201,
            )  # fmt: skip
            secrets["webhook"] += [hook_url, f"Treserva-krok {TAG}"]
            secrets["webhook_secret"].append(hook["secret"])

            pnr = make_personal_number(date(1979, 5, 17), int(TAG[:6], 16) % 1000)
            secrets["pnr"] += [pnr[2:8] + "-" + pnr[8:], pnr[2:]]  # 10 digits (with and without '-') and 12
            client = _ok(
                await c.post(
                    "/api/v1/clients",
                    json={"personal_number": pnr, "given_name": content(f"Ingeborg{TAG}"),
                          "family_name": content(f"Hemligsson{TAG}"), "gender": "kvinna"},
                    headers=hanna,
                ),
                201,
            )  # fmt: skip
            cid = client["id"]

            plan = _ok(
                await c.post(
                    "/api/v1/plans",
                    json={"client_id": cid, "title": content(f"SIP hemlig titel {TAG}"),
                          "legal_basis": ["SoL 2 kap. 7 §", "HSL 16 kap. 4 §"],
                          "overall_responsible_organisation_id": org["sthlm-stad"],
                          "follow_up_date": day(5), "client_participated": True},
                    headers=hanna,
                ),
                201,
            )  # fmt: skip
            pid = plan["id"]
            base = f"/api/v1/plans/{pid}"

            async def post(
                path: str, body: Any, who: dict[str, str] = hanna, status: int = 201
            ) -> httpx.Response:
                r = await c.post(base + path, json=body, headers=who)
                _ok(r, status)
                return r

            await post("/participants", {"organisation_id": org["region-sthlm"], "kind": "huvudman"})
            await post("/participants", {"organisation_id": org["sis"], "kind": "other", "unit_id": horno})
            r = await post(
                "/consents",
                {"given_at": datetime.now(UTC).isoformat(), "obtained_by": "Hanna Handläggare",
                 "method": "written", "scope_organisation_ids": [org["sthlm-stad"], org["region-sthlm"]]},
            )  # fmt: skip
            consent_id = r.headers["location"].rsplit("/", 1)[-1]
            r = await post("/needs", {"description": content(f"Behov av boende, hemligt {TAG}")})
            need_id = r.headers["location"].rsplit("/", 1)[-1]
            r = await post("/goals", {"description": content(f"Mål: egen bostad {TAG}"), "need_id": need_id})
            goal_id = r.headers["location"].rsplit("/", 1)[-1]
            r = await post(
                "/actions",
                {"description": content(f"Boendestöd i eftervården {TAG}"),
                 "responsible_organisation_id": org["sthlm-stad"], "phase": "eftervard", "goal_id": goal_id},
            )  # fmt: skip
            own_action_id = r.headers["location"].rsplit("/", 1)[-1]
            r = await post(
                "/actions",
                {"description": content(f"Läkemedelsassisterad behandling {TAG}"),
                 "responsible_organisation_id": org["region-sthlm"]},
            )  # fmt: skip
            region_action = r.headers["location"].rsplit("/", 1)[-1]
            await post(f"/actions/{region_action}/accept", None, who=rita, status=200)
            version = _ok(await c.get(base, headers=hanna), 200)["version"]
            await post(
                "/transitions", {"to": "active"}, who={**hanna, "If-Match": f'"{version}"'}, status=200
            )
            r = await post(
                "/actions",
                {"description": content(f"Psykiatrisk bedömning {TAG}"),
                 "responsible_organisation_id": org["region-sthlm"]},
            )  # fmt: skip
            proposed_action_id = r.headers["location"].rsplit("/", 1)[-1]
            r = await post(
                "/meetings",
                {"starts_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
                 "purpose": content(f"SIP-möte om eftervården {TAG}"),
                 "location": content(f"Beroendecentrum rum {TAG}"),
                 "invitee_organisation_ids": [org["region-sthlm"]]},
            )  # fmt: skip
            meeting_id = r.json()["id"]
            r = await post("/follow-ups", {"due_date": day(10)})
            follow_up_id = r.json()["id"]

            episode = _ok(
                await c.post(
                    f"/api/v1/clients/{cid}/episodes",
                    json={"phase": "lvm_vard", "start_date": day(-60), "planned_end_date": day(30),
                          "organisation_id": org["sis"], "unit_id": horno,
                          "note": content(f"Placerad på Hornö {TAG}")},
                    headers=hanna,
                ),
                201,
            )  # fmt: skip

            anna = h("sthlm-stad", "samordnare", CALLERS["coordinator"].subject)
            bo = h("sthlm-stad", "samordnare", BO_SUBJECT)
            anna_id = _ok(await c.get("/api/v1/me", headers=anna), 200)["user_id"]
            bo_id = _ok(await c.get("/api/v1/me", headers=bo), 200)["user_id"]
            _ok(
                await c.post(
                    f"/api/v1/clients/{cid}/coordinators",
                    json={"user_id": anna_id, "organisation_id": org["sthlm-stad"], "start_date": day(-10)},
                    headers=hanna,
                ),
                201,
            )
            # Every caller kind becomes a known user, so that first requests inside the tests do
            # not differ from later ones.
            for caller in CALLERS.values():
                tok = issuer.mint(
                    org_number=numbers[caller.org], roles=list(caller.roles), subject=caller.subject,
                    name=f"Story {caller.subject}", county=caller.county,
                )  # fmt: skip
                _ok(await c.get("/api/v1/me", headers={"Authorization": f"Bearer {tok}"}), 200)
            final = _ok(await c.get(base, headers=hanna), 200)
    finally:
        await app.state.http.aclose()
        await app.state.db.dispose()

    return Story(
        org=org,
        client_id=cid,
        plan_id=pid,
        consent_id=consent_id,
        need_id=need_id,
        goal_id=goal_id,
        own_action_id=own_action_id,
        proposed_action_id=proposed_action_id,
        meeting_id=meeting_id,
        follow_up_id=follow_up_id,
        episode_id=episode["id"],
        webhook_id=hook["id"],
        anna_id=anna_id,
        bo_id=bo_id,
        version=final["version"],
        personal_number=pnr,
        secrets=secrets,
    )
