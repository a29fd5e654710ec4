"""A national-scale Samplan data set for benchmarks, written straight into PostgreSQL.

    python -m bench.generate --database-url postgresql://postgres@127.0.0.1:5432/samplan_bench --scale 1.0

The database must be migrated to the newest revision and empty. At scale 1.0: every kommun, region
and SiS with its LVM-hem, plus three other national actors (always the full set, at any scale),
300 000 clients, about 400 000 care-chain episodes, 150 000 SIPs with their participants, consents,
needs, goals, about 900 000 actions, versions, meetings and follow-ups, and 1 000 000 audit events
whose per-organisation hash chains are exactly those app/services/audit.py writes and verifies, so
the running service continues them. The hashes use SAMPLAN_AUDIT_PEPPER (or the dev default), read
as the service reads it, unless a pepper is given: run the service with the same one.

Rows are made in Python from one seed (the same seed gives the same data set) and streamed with
COPY in chunks; the run ends with VACUUM (ANALYZE). By default FK checks and triggers are skipped
while loading (`session_replication_role = replica`); `checked=True` keeps them, so any broken
reference fails the load (the tests use it at a tiny scale). The data's "now" is NOW below:
episodes and plans run from 2016-01-01 to then, and some are still open. Users are
`bench-<org_number>-<role>-<n>` (handlaggare, samordnare, rss).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import random
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

import asyncpg  # type: ignore[import-untyped]

from app.services.audit import GENESIS, event_hash
from app.services.episode_rules import lvm_limit
from app.services.identifiers import luhn_check_digit, make_personal_number

Row = tuple[Any, ...]

NOW = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
TODAY = NOW.date()
LAST_DAY = TODAY - timedelta(days=1)  # the last day a plan may start on
FIRST_DAY = date(2016, 1, 1)
SPAN_DAYS = (TODAY - FIRST_DAY).days
NEW_SOL = date(2025, 7, 1)  # the new Socialtjänstlag (2025:400) replaced the 2001 act
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CLIENTS = 300_000
PLANS = 150_000
AUDIT_EVENTS = 1_000_000
CHUNK = 20_000
# Rows per COPY where rows are large (snapshots, minutes), to keep the buffers' memory modest.
CHUNKS = {"plan_version": 2_000, "meeting": 5_000, "audit_event": 10_000}
WORKERS = 3  # COPY connections in the fast mode

# Care chain probabilities, tuned so that 300 000 clients have about 400 000 episodes and a few
# hundred are in LVM care on NOW (DOMAIN.md: 372 people in LVM care on one day in 2017).
P_SECOND_CHAIN = 0.04
P_SECOND_CHAIN_AFTER_CARE = 0.25
P_INVESTIGATION = 0.22  # of reports (Stockholm: 63 of 254)
P_INVESTIGATION_REPEAT = 0.45
P_CARE = 0.07  # of investigations
P_CARE_REPEAT = 0.40
# Plans per chain kind; report-only chains fill up to PLANS.
P_PLAN_CARE = 0.95
P_PLAN_INVESTIGATION = 0.70
P_SECOND_PLAN = 0.06
# Audit: the share of the natural write events (plan.create, plan.action.add, ...) kept; reads
# (plan.read, client.read, ...) fill the rest of the total.
P_WRITE_EVENT = 0.08

TABLE_ORDER = (
    "organisation",
    "unit",
    "app_user",
    "client",
    "client_link",
    "episode",
    "coordinator_assignment",
    "plan",
    "plan_participant",
    "consent",
    "consent_scope",
    "plan_need",
    "plan_goal",
    "plan_action",
    "plan_version",
    "meeting",
    "meeting_invitee",
    "follow_up",
    "audit_event",
    "audit_chain_head",
)

COLUMNS: dict[str, tuple[str, ...]] = {
    "organisation": ("id", "name", "kind", "county_code", "org_number", "created_at"),
    "unit": ("id", "organisation_id", "name", "hsa_id", "created_at"),
    "app_user": ("id", "organisation_id", "subject", "name", "roles", "unit_id", "created_at"),
    "client": (
        "id", "personal_number", "is_coordination_number", "birth_date", "given_name", "family_name",
        "gender", "protected_identity", "created_at",
    ),
    "client_link": ("id", "client_id", "organisation_id", "created_by", "created_at"),
    "episode": (
        "id", "client_id", "phase", "start_date", "end_date", "planned_end_date", "organisation_id",
        "unit_id", "responsible_kommun_id", "recorded_by_organisation_id", "note", "created_at", "updated_at",
    ),
    "coordinator_assignment": (
        "id", "client_id", "user_id", "organisation_id", "start_date", "end_date", "handover_note",
        "assigned_by", "assigned_by_organisation_id", "created_at",
    ),
    "plan": (
        "id", "client_id", "title", "legal_basis", "status", "version", "initiating_organisation_id",
        "created_by", "overall_responsible_organisation_id", "follow_up_date", "client_participated",
        "relatives_objection", "created_at", "updated_at", "activated_at", "closed_at", "cancelled_at",
    ),
    "plan_participant": (
        "id", "plan_id", "kind", "organisation_id", "unit_id", "name", "relation",
        "added_by_organisation_id", "added_at",
    ),
    "consent": (
        "id", "plan_id", "given_at", "obtained_by", "method", "valid_until", "recorded_by_organisation_id",
        "recorded_at", "withdrawn_at", "withdrawn_reason", "withdrawn_by_organisation_id",
    ),
    "consent_scope": ("id", "consent_id", "plan_id", "organisation_id"),
    "plan_need": ("id", "plan_id", "description", "created_by_organisation_id", "created_at"),
    "plan_goal": (
        "id", "plan_id", "need_id", "description", "target_date", "created_by_organisation_id", "created_at",
    ),
    "plan_action": (
        "id", "plan_id", "goal_id", "description", "responsible_organisation_id", "phase", "start_date",
        "end_date", "status", "dispute_reason", "proposed_by_organisation_id", "proposed_at", "decided_at",
        "decided_by", "updated_at",
    ),
    "plan_version": (
        "id", "plan_id", "version", "change", "summary", "snapshot", "changed_by", "changed_by_name",
        "changed_by_organisation_id", "changed_at",
    ),
    "meeting": (
        "id", "plan_id", "starts_at", "purpose", "questions", "location", "organiser_organisation_id",
        "created_by", "created_at", "updated_at", "held_at", "record", "attendees",
    ),
    "meeting_invitee": (
        "id", "meeting_id", "plan_id", "organisation_id", "response", "proposed_starts_at", "comment",
        "responded_at", "responded_by",
    ),
    "follow_up": (
        "id", "plan_id", "due_date", "held_date", "outcome_code", "outcome_text", "next_follow_up_date",
        "created_by_organisation_id", "created_at", "recorded_by_organisation_id", "recorded_at",
    ),
    "audit_event": (
        "id", "organisation_id", "seq", "occurred_at", "actor_subject", "actor_name", "actor_roles",
        "action", "object_type", "object_id", "client_id", "request_id", "prev_hash", "hash",
    ),
    "audit_chain_head": ("organisation_id", "last_seq", "last_hash"),
}  # fmt: skip

# ---- the organisations ---------------------------------------------------------------------

# (code, region, the region's seat, kommuner, population in thousands, the largest kommuner by name)
COUNTIES: tuple[tuple[str, str, str, int, int, tuple[str, ...]], ...] = (
    ("01", "Region Stockholm", "Stockholm", 26, 2450, (
        "Stockholms stad", "Huddinge kommun", "Nacka kommun", "Södertälje kommun", "Botkyrka kommun",
        "Haninge kommun", "Järfälla kommun", "Solna stad", "Sollentuna kommun", "Täby kommun")),
    ("03", "Region Uppsala", "Uppsala", 8, 400, ("Uppsala kommun", "Enköpings kommun", "Östhammars kommun")),
    ("04", "Region Sörmland", "Eskilstuna", 9, 300, (
        "Eskilstuna kommun", "Nyköpings kommun", "Katrineholms kommun")),
    ("05", "Region Östergötland", "Linköping", 13, 470, (
        "Linköpings kommun", "Norrköpings kommun", "Motala kommun")),
    ("06", "Region Jönköpings län", "Jönköping", 13, 370, ("Jönköpings kommun", "Värnamo kommun")),
    ("07", "Region Kronoberg", "Växjö", 8, 205, ("Växjö kommun", "Ljungby kommun")),
    ("08", "Region Kalmar län", "Kalmar", 12, 245, ("Kalmar kommun", "Västerviks kommun")),
    ("09", "Region Gotland", "Visby", 1, 61, ("Gotlands kommun",)),
    ("10", "Region Blekinge", "Karlskrona", 5, 159, ("Karlskrona kommun", "Ronneby kommun")),
    ("12", "Region Skåne", "Malmö", 33, 1400, (
        "Malmö stad", "Helsingborgs stad", "Lunds kommun", "Kristianstads kommun", "Landskrona stad")),
    ("13", "Region Halland", "Halmstad", 6, 340, ("Halmstads kommun", "Varbergs kommun", "Kungsbacka kommun")),
    ("14", "Västra Götalandsregionen", "Göteborg", 49, 1750, (
        "Göteborgs stad", "Borås stad", "Mölndals stad", "Trollhättans stad", "Uddevalla kommun",
        "Skövde kommun")),
    ("17", "Region Värmland", "Karlstad", 16, 283, ("Karlstads kommun", "Arvika kommun")),
    ("18", "Region Örebro län", "Örebro", 12, 306, ("Örebro kommun", "Karlskoga kommun")),
    ("19", "Region Västmanland", "Västerås", 10, 280, ("Västerås stad", "Köpings kommun")),
    ("20", "Region Dalarna", "Falun", 15, 288, ("Falu kommun", "Borlänge kommun")),
    ("21", "Region Gävleborg", "Gävle", 10, 287, ("Gävle kommun", "Sandvikens kommun", "Hudiksvalls kommun")),
    ("22", "Region Västernorrland", "Sundsvall", 7, 245, (
        "Sundsvalls kommun", "Örnsköldsviks kommun", "Härnösands kommun")),
    ("23", "Region Jämtland Härjedalen", "Östersund", 8, 132, ("Östersunds kommun",)),
    ("24", "Region Västerbotten", "Umeå", 15, 275, ("Umeå kommun", "Skellefteå kommun")),
    ("25", "Region Norrbotten", "Luleå", 14, 250, (
        "Luleå kommun", "Piteå kommun", "Bodens kommun", "Kiruna kommun")),
)  # fmt: skip

# The real organisationsnummer of the demo kommuner (app/services/demo.py), so that demo data
# loaded on top finds them instead of adding twins.
KOMMUN_SERIALS = {"Stockholms stad": 14, "Huddinge kommun": 12, "Uppsala kommun": 300}
SIS_NUMBER = "2021005489"
# The demo's two LVM-hem keep their names and HSA-ids for the same reason.
LVM_HOMES = (
    ("Hornö", "HORN"), ("Lunden", "LUND"), ("Rebecka", "REBE"), ("Runnagården", "RUNN"),
    ("Renforsen", "RENF"), ("Hessleby", "HESS"), ("Älvgården", "ALVG"), ("Östfora", "OSTF"),
    ("Venngarn", "VENN"), ("Gudhem", "GUDH"), ("Lägnet", "LAGN"), ("Karlsvik", "KARV"),
    ("Björkbacken", "BJOR"), ("Sirius", "SIRI"), ("Ljungbacken", "LJUN"), ("Fagerhult", "FAGE"),
    ("Nordsjö", "NORD"), ("Rällsö", "RALL"), ("Stigby", "STIG"), ("Vemyra", "VEMY"),
)  # fmt: skip
# Other actors ("measures by others"): (name, the first nine digits of the organisationsnummer, action)
OTHER_ACTORS = (
    ("Försäkringskassan", "202100552", "Utredning av rätt till sjukpenning och aktivitetsersättning"),
    ("Arbetsförmedlingen", "202100211", "Arbetsmarknadsinsats: förberedande insatser inför arbete"),
    ("Kriminalvården", "202100077", "Samordning med frivården inför villkorlig frigivning"),
)
KOMMUN_UNITS = (
    ("Socialtjänsten, vuxenenheten", "VUX"),
    ("Beroendeenheten", "BER"),
    ("Mottagningsenheten för vuxna", "MOT"),
)
REGION_UNITS = (
    ("Beroendecentrum", "BEC"),
    ("Psykiatrisk mottagning", "PSM"),
    ("Akutpsykiatrin", "AKP"),
    ("Infektionsmottagningen", "INF"),
)

# ---- names and texts -----------------------------------------------------------------------

WOMEN = (
    "Anna", "Eva", "Maria", "Karin", "Sara", "Lena", "Emma", "Kerstin", "Ingrid", "Linnea", "Johanna",
    "Elin", "Malin", "Sofia", "Hanna", "Ida", "Camilla", "Jenny", "Helena", "Susanne", "Fatima", "Amina",
)  # fmt: skip
MEN = (
    "Lars", "Anders", "Johan", "Karl", "Per", "Erik", "Mikael", "Peter", "Jan", "Thomas", "Daniel",
    "Fredrik", "Hans", "Andreas", "Stefan", "Mats", "Marcus", "Jonas", "Magnus", "Mattias", "Ali", "Ahmed",
)  # fmt: skip
FAMILY = (
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
    "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Jansson", "Hansson", "Bengtsson", "Jönsson",
    "Lindberg", "Jakobsson", "Magnusson", "Lindström", "Olofsson", "Lindqvist", "Lindgren", "Berg",
    "Axelsson", "Bergström", "Lundberg", "Lind", "Lundgren", "Mattsson", "Berglund", "Fredriksson",
    "Sandberg", "Henriksson", "Hassan", "Mohammed", "Yilmaz", "Nguyen", "Kowalski", "Virtanen",
)  # fmt: skip

NEEDS = (
    "Boende efter utskrivning", "Behandling av alkoholberoende", "Behandling av opioidberoende",
    "Psykiatrisk bedömning och behandling", "Sysselsättning och meningsfull vardag",
    "Ekonomi och skulder", "Somatisk hälsa och tandvård", "Stöd i föräldraskapet",
    "Nätverk och relationer", "Återfallsprevention", "Läkemedelsgenomgång", "Kontakt med frivården",
)  # fmt: skip
GOALS = (
    "Eget boende inom sex månader", "Drogfrihet under eftervården", "Stabil läkemedelsbehandling",
    "Sysselsättning minst halvtid", "Ordnad ekonomi med budget",
    "Regelbunden kontakt med beroendevården", "Inga akuta inläggningar", "Förbättrad fysisk hälsa",
    "Fungerande vardag med stöd",
)  # fmt: skip
KOMMUN_ACTIONS = (
    "Boendestöd två gånger i veckan", "Öppenvårdsbehandling enligt SoL",
    "Stödsamtal med socialsekreterare varannan vecka", "Träningslägenhet med boendestöd",
    "Ekonomiskt bistånd och budgetrådgivning", "Sysselsättning via arbetsmarknadsenheten",
    "Återfallsprevention i grupp", "Kontaktperson enligt SoL", "Samordnad utslussning från LVM-hemmet",
    "Strukturerad eftervård enligt SoL",
)  # fmt: skip
REGION_ACTIONS = (
    "Abstinensbehandling", "Läkemedelsassisterad behandling vid opioidberoende (LARO)",
    "Psykiatrisk bedömning", "Läkemedelsgenomgång", "Behandling av hepatit C", "Somatisk hälsokontroll",
    "ADHD-utredning", "Återbesök på beroendemottagningen", "Nödvändig tandvård",
)  # fmt: skip
SIS_ACTIONS = (
    "Motiverande behandling på LVM-hemmet", "Utslussning i samverkan med kommunen",
    "Vård i annan form enligt 27 § LVM", "Kartläggning av behandlingsbehov (ASI)",
    "Återfallsprevention under vistelsen",
)  # fmt: skip
DISPUTE_REASONS = (
    "Insatsen är kommunens ansvar enligt SoL.",
    "Insatsen är hälso- och sjukvård och därmed regionens ansvar.",
    "Behovet är inte utrett; vi kan inte ta på oss insatsen nu.",
    "Insatsen ryms inte i vårt uppdrag.",
    "Klienten är inte folkbokförd i kommunen.",
)
TITLES = (
    ("SIP: missbruk och psykisk ohälsa", "Samordnad individuell plan", "SIP: boende och behandling"),
    ("SIP under utredning enligt 7 § LVM", "SIP: missbruk och psykisk ohälsa", "Samordnad individuell plan"),
    ("SIP inför utskrivning från LVM-hem", "SIP under LVM-vård och eftervård", "SIP: eftervård efter LVM"),
)
QUESTIONS = (
    "Boende efter utskrivning", "Läkemedelsassisterad behandling", "Sysselsättning", "Ekonomi",
    "Vem har det övergripande ansvaret?", "Kontakt med närstående", "Återfallsprevention",
)  # fmt: skip
LOCATIONS = (
    "Socialförvaltningen, mötesrum 4", "Beroendecentrum, konferensrummet", "Videomöte (länk i kallelsen)",
    "LVM-hemmet, besöksrummet", "Vårdcentralen, rum 2",
)  # fmt: skip
RECORDS = (
    "Planen gicks igenom med klienten. Ansvaret för insatserna fördelades och nästa uppföljning bestämdes.",
    "Boendestöd startar efter utskrivningen. Regionen ansvarar för läkemedelsbehandlingen; kommunen har "
    "det övergripande ansvaret.",
    "Insatserna löper enligt planen; boendestödet justeras. Klienten är nöjd med kontakten.",
    "Klienten deltog via video. Behovet av sysselsättning lyftes; Arbetsförmedlingen kontaktas.",
)
OUTCOMES = (
    ("continue", 0.55, "Planen fortsätter som den är."),
    ("revise", 0.30, "Planen behöver justeras; nya insatser föreslås."),
    ("close", 0.08, "Målen är i stort sett nådda; planen kan avslutas."),
    ("other", 0.07, "Klienten uteblev; ny tid bokas."),
)
RELATIONS = ("mor", "far", "syster", "bror", "partner", "vuxen dotter", "vuxen son", "god man")
ANSWER_COMMENTS = {"declined": "Vi kan inte delta den dagen.", "proposed_time": "Läkaren kan inte då."}
ROLE_TITLE = {
    "kommun": "socialsekreterare",
    "region": "sjuksköterska",
    "state": "behandlare",
    "other": "handläggare",
}
EPISODE_NOTES = {
    "lvm_anmalan": ("Anmälan från polisen", "Anmälan från akutmottagningen", "Anmälan från anhörig"),
    "lvm_utredning": ("Utredning enligt 7 § LVM inledd", "Läkarintyg begärt"),
    "lvm_vard": ("Placerad på LVM-hem efter dom i förvaltningsrätten",),
    "eftervard": ("Eftervård enligt SoL: boendestöd och öppenvård",),
}

# ---- small helpers -------------------------------------------------------------------------


def uid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def days(n: int) -> timedelta:
    return timedelta(days=n)


def at(rng: random.Random, d: date) -> datetime:
    """A time in working hours on the day, never after NOW."""
    moment = datetime(d.year, d.month, d.day, 7, tzinfo=UTC) + timedelta(
        seconds=rng.randrange(10 * 3600), microseconds=rng.randrange(1_000_000)
    )
    return moment if moment <= NOW else NOW


def between(rng: random.Random, a: datetime, b: datetime) -> datetime:
    if b <= a:
        return a
    return a + (b - a) * rng.random()


def to_us(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def iso(moment: datetime | None) -> str | None:
    """As pydantic writes datetimes in JSON."""
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def isodate(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def org_number(nine: str) -> str:
    return nine + str(luhn_check_digit(nine))


def weighted(rng: random.Random, options: Sequence[tuple[str, float]]) -> str:
    r = rng.random() * sum(w for _, w in options)
    for value, weight in options:
        r -= weight
        if r < 0:
            return value
    return options[-1][0]


# ---- progress and loading ------------------------------------------------------------------


class Progress:
    """One line on stderr per phase, rewritten in place."""

    def __init__(self, label: str, total: int, enabled: bool) -> None:
        self.label, self.total, self.enabled = label, max(total, 1), enabled
        self.started = self.shown = time.monotonic()
        self.done = 0

    def update(self, done: int, *, force: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        if not self.enabled or (not force and now - self.shown < 0.25):
            return
        self.shown = now
        pct = 100.0 * min(done, self.total) / self.total
        sys.stderr.write(
            f"\r{self.label:<20} {done:>11,}/{self.total:<11,} {pct:5.1f}%  {now - self.started:7.1f} s"
        )
        sys.stderr.flush()

    def finish(self, done: int | None = None) -> None:
        self.update(self.done if done is None else done, force=True)
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


class Loader:
    """Buffers rows per table and COPYs them in chunks.

    Fast mode: several connections with FK checks and triggers off, COPYs running in the background
    while the next rows are made. Checked mode: one connection, all checks on, and every flush
    writes the buffers in FK order, so parents always land before their children."""

    def __init__(self, dsn: str, *, checked: bool) -> None:
        self.dsn, self.checked = dsn, checked
        self.chunk = {t: CHUNKS.get(t, CHUNK) for t in TABLE_ORDER}
        self.buffers: dict[str, list[Row]] = {t: [] for t in TABLE_ORDER}
        self.counts: dict[str, int] = dict.fromkeys(TABLE_ORDER, 0)
        self.conns: list[Any] = []
        self.free: asyncio.Queue[Any] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()
        self.errors: list[BaseException] = []

    async def open(self) -> Any:
        for _ in range(1 if self.checked else WORKERS):
            conn = await asyncpg.connect(self.dsn)
            await conn.execute("SET synchronous_commit = off")
            if not self.checked:
                await conn.execute("SET session_replication_role = replica")
            self.conns.append(conn)
            self.free.put_nowait(conn)
        return self.conns[0]

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for conn in self.conns:
            if not conn.is_closed():
                if not self.checked:
                    with contextlib.suppress(Exception):  # the connection closes anyway
                        await conn.execute("RESET session_replication_role")
                await conn.close()

    def add(self, table: str, row: Row) -> None:
        self.buffers[table].append(row)

    async def maybe_flush(self) -> None:
        """Let the background COPYs run, and start new ones for full buffers."""
        self._raise()
        if self.checked:
            if any(len(b) >= self.chunk[t] for t, b in self.buffers.items()):
                await self.flush_all()
            return
        for table in TABLE_ORDER:
            if len(self.buffers[table]) >= self.chunk[table]:
                await self._submit(table)
        await asyncio.sleep(0)

    async def flush_all(self) -> None:
        for table in TABLE_ORDER:
            if self.buffers[table]:
                await self._submit(table)
        if self.tasks:
            await asyncio.wait(list(self.tasks))
        self._raise()

    def _raise(self) -> None:
        if self.errors:
            raise self.errors[0]

    async def _submit(self, table: str) -> None:
        rows, self.buffers[table] = self.buffers[table], []
        conn = await self.free.get()
        if self.checked:
            await self._copy(conn, table, rows)
            return
        task = asyncio.create_task(self._copy(conn, table, rows))
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]

    async def _copy(self, conn: Any, table: str, rows: list[Row]) -> None:
        try:
            await conn.copy_records_to_table(table, records=rows, columns=COLUMNS[table])
            self.counts[table] += len(rows)
        finally:
            self.free.put_nowait(conn)


# ---- the world: organisations, units, users ------------------------------------------------


@dataclass
class Org:
    idx: int
    id: uuid.UUID
    name: str
    kind: str
    number: str
    county: str
    weight: float = 0.0  # kommuner: share of the clients
    region: int = -1  # kommuner: their county's region
    units: list[uuid.UUID] = field(default_factory=list)
    handl: list[int] = field(default_factory=list)  # users
    samord: list[int] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    org: int
    subject: str
    name: str
    roles: str  # as Principal.roles_text


class Chain(NamedTuple):
    """One pass of a client through (part of) the care chain, as plans see it."""

    client: int
    kind: int  # 0 a report only, 1 up to an investigation, 2 LVM care
    start: date  # the report
    focus: date  # the investigation's or the LVM care's start
    vard_end: date | None
    unit: int  # the LVM-hem (index into World.lvm_units) or -1
    eft_start: date | None
    end: date | None  # None while the chain is still open


@dataclass
class World:
    orgs: list[Org] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    kommuner: list[int] = field(default_factory=list)
    kommun_cum: list[float] = field(default_factory=list)
    regions: dict[str, int] = field(default_factory=dict)
    sis: int = -1
    lvm_units: list[uuid.UUID] = field(default_factory=list)
    others: list[int] = field(default_factory=list)


def build_world(rng: random.Random, loader: Loader, scale: float) -> World:
    world = World()
    created = datetime(2015, 9, 1, 8, tzinfo=UTC)

    def add_org(name: str, kind: str, number: str, county: str) -> Org:
        org = Org(len(world.orgs), uid(rng), name, kind, number, county)
        world.orgs.append(org)
        loader.add("organisation", (org.id, name, kind, county, number, created))
        return org

    def add_unit(org: Org, name: str, hsa: str | None) -> None:
        unit_id = uid(rng)
        org.units.append(unit_id)
        loader.add("unit", (unit_id, org.id, name, hsa, created))

    def add_user(org: Org, role: str, n: int, unit: uuid.UUID | None = None) -> int:
        given = rng.choice(WOMEN if rng.random() < 0.7 else MEN)
        user = User(
            uid(rng), org.idx, f"bench-{org.number}-{role}-{n}", f"{given} {rng.choice(FAMILY)}", role
        )
        world.users.append(user)
        unit = unit if unit is not None else (rng.choice(org.units) if org.units else None)
        loader.add("app_user", (user.id, org.id, user.subject, user.name, dumps([role]), unit, created))
        return len(world.users) - 1

    total_pop = sum(c[4] for c in COUNTIES)
    used_serials = set(KOMMUN_SERIALS.values())
    next_serial = 100
    for i, (county, region_name, seat, n_kommuner, population, big) in enumerate(COUNTIES):
        region = add_org(region_name, "region", org_number(f"2321000{i + 1:02d}"), county)
        world.regions[county] = region.idx
        for name, code in REGION_UNITS[: rng.randint(2, 4)]:
            add_unit(region, f"{name} {seat}", f"SE{region.number}-{code}1")
        zipf = [1.0 / (r + 1) ** 1.1 for r in range(n_kommuner)]
        for j in range(n_kommuner):
            name = big[j] if j < len(big) else f"Kommun {county}{j + 1:02d}"
            serial = KOMMUN_SERIALS.get(name)
            if serial is None:
                while next_serial in used_serials:
                    next_serial += 1
                serial = next_serial
                used_serials.add(serial)
            kommun = add_org(name, "kommun", org_number(f"212000{serial:03d}"), county)
            kommun.weight = population / total_pop * zipf[j] / sum(zipf)
            kommun.region = region.idx
            world.kommuner.append(kommun.idx)
            n_units = 3 if kommun.weight > 0.01 else 2 if kommun.weight > 0.002 else 1
            for name_u, code in KOMMUN_UNITS[:n_units]:
                add_unit(kommun, name_u, f"SE{kommun.number}-{code}1")
    sis = add_org("Statens institutionsstyrelse", "state", SIS_NUMBER, "01")
    world.sis = sis.idx
    for name, code in LVM_HOMES:
        add_unit(sis, f"LVM-hemmet {name}", f"SE{SIS_NUMBER}-{code}")
    world.lvm_units = list(sis.units)
    for name, nine, _ in OTHER_ACTORS:
        other = add_org(name, "other", org_number(nine), "01")
        world.others.append(other.idx)
        add_unit(other, "Lokalkontor Stockholm", None)

    # Users: more handläggare where there are more clients.
    for org in world.orgs:
        if org.kind == "kommun":
            n_handl = max(2, min(12, 2 + round(org.weight * 400)))
            n_samord = 2 if org.weight > 0.003 else 1
        elif org.kind == "region":
            county_share = sum(
                world.orgs[k].weight for k in world.kommuner if world.orgs[k].county == org.county
            )
            n_handl, n_samord = max(3, min(10, 3 + round(county_share * 30))), 1
            org.rss.append(add_user(org, "rss", 1))
        elif org.kind == "state":
            n_handl, n_samord = 0, 0
            for n, unit in enumerate(org.units, 1):
                org.handl.append(add_user(org, "handlaggare", n, unit))
        else:
            n_handl, n_samord = 2, 0
        for n in range(1, n_handl + 1):
            org.handl.append(add_user(org, "handlaggare", n))
        for n in range(1, n_samord + 1):
            org.samord.append(add_user(org, "samordnare", n))
    cum = 0.0
    for k in world.kommuner:
        cum += world.orgs[k].weight
        world.kommun_cum.append(cum)
    return world


# ---- audit events --------------------------------------------------------------------------

Event = tuple[int, int, str, str, uuid.UUID | str | None, uuid.UUID | None]


class Audit:
    """Audit events per organisation, kept until the end so each chain is written in time order."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world, self.rng = world, rng
        self.by_org: list[list[Event]] = [[] for _ in world.orgs]
        self.count = 0

    def add(
        self, moment: datetime, user: int, action: str, otype: str, oid: uuid.UUID | str | None,
        client: uuid.UUID | None,
    ) -> None:  # fmt: skip
        self.by_org[self.world.users[user].org].append((to_us(moment), user, action, otype, oid, client))
        self.count += 1

    def write(
        self, moment: datetime, user: int, action: str, otype: str, oid: uuid.UUID | str | None,
        client: uuid.UUID | None,
    ) -> None:  # fmt: skip
        """A natural write event, kept with probability P_WRITE_EVENT."""
        if self.rng.random() < P_WRITE_EVENT:
            self.add(moment, user, action, otype, oid, client)


# ---- clients and the care chain ------------------------------------------------------------


@dataclass
class Clients:
    ids: list[uuid.UUID] = field(default_factory=list)
    kommun: list[int] = field(default_factory=list)
    given: list[str] = field(default_factory=list)
    created: list[int] = field(default_factory=list)  # µs
    active_until: list[int] = field(default_factory=list)  # µs: when reads of the client fade out
    linked: bytearray = field(default_factory=bytearray)  # 1: the region knows them, 2: SiS does
    chains: list[Chain] = field(default_factory=list)


def ramp_date(rng: random.Random) -> date:
    """A day in [FIRST_DAY, TODAY], three times as likely at the end as at the start (the
    service's use grows)."""
    x = rng.random() if rng.random() < 0.5 else max(rng.random(), rng.random())
    return FIRST_DAY + days(int(x * SPAN_DAYS))


# (phase, start, end, planned end, organisation, unit, recorded by)
Ep = tuple[str, date, date | None, date | None, int, uuid.UUID | None, int]


class ClientMaker:
    def __init__(self, world: World, loader: Loader, audit: Audit, rng: random.Random) -> None:
        self.world, self.loader, self.audit, self.rng = world, loader, audit, rng
        self.c = Clients()
        self.numbers: set[str] = set()
        self.episodes = 0

    def handl(self, org: int) -> int:
        return self.rng.choice(self.world.orgs[org].handl)

    def personal_number(self, birth: date, gender: str, coordination: bool) -> str:
        rng = self.rng
        while True:
            digit = rng.randrange(10)
            if gender == "man":
                digit |= 1
            elif gender == "kvinna":
                digit &= ~1
            number = make_personal_number(birth, rng.randrange(100) * 10 + digit, coordination)
            if number not in self.numbers:
                self.numbers.add(number)
                return number
            birth += days(1)

    def client(self) -> None:
        rng, world, c = self.rng, self.world, self.c
        k = len(c.ids)
        pick = bisect.bisect(world.kommun_cum, rng.random() * world.kommun_cum[-1])
        kommun = world.kommuner[min(pick, len(world.kommuner) - 1)]
        korg = world.orgs[kommun]
        r = rng.random()
        gender = "kvinna" if r < 0.35 else "man" if r < 0.98 else "annat" if r < 0.99 else "okant"
        report = ramp_date(rng)
        age_days = int((20 + 45 * rng.betavariate(2.2, 2.8)) * 365.25)
        birth = report - days(age_days)
        coordination = rng.random() < 0.03
        number = self.personal_number(birth, gender, coordination)
        birth = date(int(number[:4]), int(number[4:6]), int(number[6:8]) - (60 if coordination else 0))
        names = WOMEN if gender == "kvinna" else MEN if gender == "man" else rng.choice((WOMEN, MEN))
        given, family = rng.choice(names), rng.choice(FAMILY)
        created = at(rng, report)
        client_id = uid(rng)
        c.ids.append(client_id)
        c.kommun.append(kommun)
        c.given.append(given)
        c.created.append(to_us(created))
        c.linked.append(0)
        protected = rng.random() < 0.01
        self.loader.add(
            "client", (client_id, number, coordination, birth, given, family, gender, protected, created)
        )
        registrar = self.handl(kommun)
        self.loader.add(
            "client_link", (uid(rng), client_id, korg.id, world.users[registrar].subject, created)
        )
        self.audit.write(created, registrar, "client.register", "client", client_id, client_id)

        start, repeat, last_end = report, False, TODAY
        while True:
            chain = self.chain(k, start, repeat)
            c.chains.append(chain)
            if chain.end is None:
                last_end = TODAY
                break
            last_end = chain.end
            if rng.random() >= (P_SECOND_CHAIN_AFTER_CARE if chain.kind == 2 else P_SECOND_CHAIN):
                break
            start = chain.end + days(rng.randint(60, 1500))
            if start > LAST_DAY:
                break
            repeat = True
        c.active_until.append(to_us(at(rng, min(TODAY, last_end + days(60)))))

    def chain(self, k: int, start: date, repeat: bool) -> Chain:
        rng, world = self.rng, self.world
        kommun = self.c.kommun[k]
        korg = world.orgs[kommun]
        sis, region = world.sis, korg.region
        kunit = rng.choice(korg.units)
        eps: list[Ep] = []
        anm_end = start + days(rng.choice((0, 0, 0, 1, 2, 3)))
        eps.append(("lvm_anmalan", start, anm_end, None, kommun, kunit, kommun))
        unit = -1
        vard: tuple[date, date] | None = None
        eft_start: date | None = None
        if rng.random() < (P_INVESTIGATION_REPEAT if repeat else P_INVESTIGATION):
            u0 = anm_end + days(rng.randint(0, 10))
            u_len = rng.randint(14, 56)
            if rng.random() >= (P_CARE_REPEAT if repeat else P_CARE):
                eps.append(("lvm_utredning", u0, u0 + days(u_len), None, kommun, kunit, kommun))
            else:
                omh = rng.random() < 0.3
                if omh:
                    o0 = u0 + days(rng.randint(0, u_len // 2))
                    a0 = o0 + days(rng.randint(1, 7))
                    u_end = a0
                else:
                    u_end = u0 + days(u_len)
                    a0 = u_end + days(rng.randint(0, 7))
                eps.append(("lvm_utredning", u0, u_end, None, kommun, kunit, kommun))
                a_end = a0 + days(rng.randint(7, 28))
                v0 = a_end + days(rng.randint(0, 7))
                if omh:
                    eps.append(("omedelbart_omhandertagande", o0, v0, None, kommun, kunit, kommun))
                eps.append(("lvm_ansokan", a0, a_end, None, kommun, kunit, kommun))
                limit = lvm_limit(v0)
                v_end = min(v0 + days(rng.randint(60, 183)), limit)
                unit = rng.randrange(len(world.lvm_units))
                lvm_unit = world.lvm_units[unit]
                recorder = sis if rng.random() < 0.5 else kommun
                eps.append(("lvm_vard", v0, v_end, limit, sis, lvm_unit, recorder))
                vard = (v0, v_end)
                if rng.random() < 0.3:
                    af0 = v0 + days(rng.randint(30, 120))
                    if af0 < v_end:
                        af_end = min(af0 + days(rng.randint(14, 90)), v_end)
                        eps.append(("vard_i_annan_form", af0, af_end, limit, sis, None, sis))
                eps.append(("utskrivning", v_end, v_end, None, sis, lvm_unit, sis))
                e0 = v_end + days(rng.randint(1, 7))
                e_end = e0 + days(rng.randint(182, 365) if rng.random() < 0.72 else rng.randint(20, 181))
                e_org = kommun if rng.random() < 0.8 else region
                e_unit = kunit if e_org == kommun else rng.choice(world.orgs[region].units)
                eps.append(("eftervard", e0, e_end, e0 + days(365), e_org, e_unit, kommun))
                eps.append(("avslutad", e_end, e_end, None, kommun, kunit, kommun))
                eft_start = e0
        # Cut at NOW: what has not started is dropped, what has not ended is open.
        # LVM care keeps its planned end (at most six months); open care in another form or
        # aftercare keeps one too, so that it does not run on without end.
        kept: list[Ep] = []
        for phase, s0, s1, planned, org, unit_id, recorder in eps:
            if s0 > TODAY:
                continue
            end_ = s1 if s1 is not None and s1 <= TODAY else None
            if phase != "lvm_vard" and not (end_ is None and phase in ("vard_i_annan_form", "eftervard")):
                planned = None
            kept.append((phase, s0, end_, planned, org, unit_id, recorder))
        self.write_episodes(k, kept)
        open_chain = any(ep[2] is None for ep in kept)
        end = None if open_chain else max(ep[2] for ep in kept if ep[2] is not None)
        kinds = {ep[0] for ep in kept}
        if "lvm_vard" in kinds and vard is not None:
            v0, v_end = vard
            self.coordinator(k, v0, end)
            kind, focus = 2, v0
            vard_end: date | None = v_end if v_end <= TODAY else None
            eft = eft_start if eft_start is not None and eft_start <= TODAY else None
        elif "lvm_utredning" in kinds:
            kind, focus, vard_end, eft, unit = (
                1,
                next(ep[1] for ep in kept if ep[0] == "lvm_utredning"),
                None,
                None,
                -1,
            )
        else:
            kind, focus, vard_end, eft, unit = 0, start, None, None, -1
        return Chain(k, kind, start, focus, vard_end, unit, eft, end)

    def write_episodes(self, k: int, eps: list[Ep]) -> None:
        rng, world, c = self.rng, self.world, self.c
        client_id = c.ids[k]
        kommun_id = world.orgs[c.kommun[k]].id
        for phase, start, end, planned, org, unit, recorder in eps:
            created = at(rng, start)
            updated = max(created, at(rng, end)) if end is not None else created
            notes = EPISODE_NOTES.get(phase)
            note = rng.choice(notes) if notes and rng.random() < 0.1 else None
            episode_id = uid(rng)
            self.loader.add(
                "episode",
                (episode_id, client_id, phase, start, end, planned, world.orgs[org].id, unit, kommun_id,
                 world.orgs[recorder].id, note, created, updated),
            )  # fmt: skip
            self.episodes += 1
            self.audit.write(
                created, self.handl(recorder), "episode.record", "episode", episode_id, client_id
            )
            if phase == "lvm_vard" and not c.linked[k] & 2:
                c.linked[k] |= 2
                user = self.handl(world.sis)
                self.loader.add(
                    "client_link",
                    (uid(rng), client_id, world.orgs[world.sis].id, world.users[user].subject, created),
                )
                self.audit.write(created, user, "client.link", "client", client_id, client_id)

    def coordinator(self, k: int, v0: date, end: date | None) -> None:
        rng, world = self.rng, self.world
        korg = world.orgs[self.c.kommun[k]]
        start = min(v0 + days(rng.randint(0, 21)), TODAY)
        if end is not None and end < start:
            end = start
        periods: list[tuple[int, date, date | None, str | None]] = []
        span = ((end or TODAY) - start).days
        if len(korg.samord) >= 2 and span > 60 and rng.random() < 0.15:
            split = start + days(span // 2)
            first, second = rng.sample(korg.samord, 2)
            periods.append((first, start, split, None))
            periods.append(
                (second, split, end, "Överlämning: klienten har eftervård med boendestöd; se planen.")
            )
        else:
            periods.append((rng.choice(korg.samord), start, end, None))
        for user, s, e, note in periods:
            by = self.handl(korg.idx)
            created = at(rng, s)
            assignment_id = uid(rng)
            self.loader.add(
                "coordinator_assignment",
                (assignment_id, self.c.ids[k], world.users[user].id, korg.id, s, e, note,
                 world.users[by].subject, korg.id, created),
            )  # fmt: skip
            self.audit.write(
                created, by, "coordinator.assign", "coordinator_assignment", assignment_id, self.c.ids[k]
            )


# ---- plans ---------------------------------------------------------------------------------

# What reads of a plan need: (plan, client, organisations that see it (initiator first), from µs,
# to µs, a meeting, a follow-up)
PlanRef = tuple[uuid.UUID, int, tuple[int, ...], int, int, uuid.UUID | None, uuid.UUID | None]


class PlanMaker:
    def __init__(
        self, world: World, clients: Clients, loader: Loader, audit: Audit, rng: random.Random
    ) -> None:
        self.world, self.c, self.loader, self.audit, self.rng = world, clients, loader, audit, rng
        self.refs: list[PlanRef] = []
        self.statuses: dict[str, int] = {}

    def handl(self, org: int) -> int:
        return self.rng.choice(self.world.orgs[org].handl)

    def plan(self, ch: Chain, after: date | None) -> date | None:
        """One plan for the chain (after a previous plan that ended on `after`); returns the day it
        ended, or None when it did not end (or was not made)."""
        rng, world, c, add = self.rng, self.world, self.c, self.loader.add
        k = ch.client
        client_id = c.ids[k]
        kommun = c.kommun[k]
        region = world.orgs[kommun].region
        sis = world.sis
        care, kind = ch.kind == 2, ch.kind
        anchor = ch.focus if kind else ch.start
        if after is not None:
            base = after + days(rng.randint(7, 60))
        else:
            base = anchor + days(
                rng.randint(5, 45) if care else rng.randint(3, 40) if kind else rng.randint(2, 45)
            )
        if base > LAST_DAY:
            if after is not None or anchor >= LAST_DAY:
                return None
            base = anchor + days(rng.randint(1, (LAST_DAY - anchor).days))
        init = kommun if rng.random() < 0.85 else region
        other_hm = region if init == kommun else kommun
        author = self.handl(init)
        author_subject = world.users[author].subject
        t_create = at(rng, base)
        if care:
            window = None if ch.end is None else ch.end + days(rng.randint(0, 60))
        else:
            window = base + days(rng.randint(90, 720) if kind else rng.randint(60, 540))
        if window is not None and window > LAST_DAY:
            window = None
        m1 = base + days(rng.randint(3, 21))
        act = m1 + days(rng.randint(0, 5))

        # Status and its timestamps.
        r = rng.random()
        recent = (TODAY - base).days < 45
        close = cancel = None
        if r < 0.04:
            cancel = base + days(rng.randint(2, 60))
            status = "cancelled" if cancel <= LAST_DAY else "draft"
        elif (recent and r < 0.45) or r < 0.05 or act > LAST_DAY:
            status = "draft"
        else:
            status = "active"
            if window is not None:
                close = max(window, act + days(14))
                if close <= LAST_DAY:
                    status = "closed"
                else:
                    close = None
            if status == "active" and rng.random() < 0.04:
                status = "paused"
        activated = status in ("active", "paused", "closed")
        act_at = at(rng, act) if activated else None
        close_at = at(rng, close) if close is not None and status == "closed" else None
        cancel_at = at(rng, cancel) if cancel is not None and status == "cancelled" else None
        pause_at = between(rng, act_at + days(1), NOW) if status == "paused" and act_at else None
        end_at = close_at or cancel_at or NOW
        self.statuses[status] = self.statuses.get(status, 0) + 1
        plan_id = uid(rng)

        # Participants: the initiator first.
        orgs_in = [init]
        if activated or rng.random() < 0.5:
            orgs_in.append(other_hm)
        sis_unit = world.lvm_units[ch.unit] if care and ch.unit >= 0 else None
        if care and rng.random() < 0.8:
            orgs_in.append(sis)
        if rng.random() < 0.08:
            orgs_in.append(rng.choice(world.others))
        client_participated = rng.random() < 0.8
        relatives_objection = rng.random() < 0.05
        narst = (
            None
            if relatives_objection or rng.random() >= 0.15
            else (f"{rng.choice(WOMEN + MEN)} {rng.choice(FAMILY)}", rng.choice(RELATIONS))
        )
        participants: list[dict[str, Any]] = []
        added = t_create
        for o in orgs_in:
            org = world.orgs[o]
            unit = None
            if o == sis:
                unit = sis_unit
            elif org.kind in ("kommun", "region") and rng.random() < 0.45:
                unit = rng.choice(org.units)
            pid = uid(rng)
            p_kind = "huvudman" if org.kind in ("kommun", "region") else "other"
            add(
                "plan_participant",
                (pid, plan_id, p_kind, org.id, unit, None, None, world.orgs[init].id, added),
            )
            participants.append(
                {"id": str(pid), "kind": p_kind, "organisation_id": str(org.id), "organisation_name": org.name,
                 "organisation_kind": org.kind, "unit_id": None if unit is None else str(unit), "name": None,
                 "relation": None, "added_at": iso(added)}
            )  # fmt: skip
            if o != init:
                self.audit.write(added, author, "plan.participant.add", "plan_participant", pid, client_id)
            added = min(added + timedelta(minutes=rng.randint(2, 90)), NOW)
        extra: list[tuple[str, str | None, str | None]] = []
        if client_participated or rng.random() < 0.3:
            extra.append(("client", None, None))
        if narst is not None:
            extra.append(("narstaende", narst[0], narst[1]))
        for p_kind, name, relation in extra:
            pid = uid(rng)
            add(
                "plan_participant",
                (pid, plan_id, p_kind, None, None, name, relation, world.orgs[init].id, added),
            )
            participants.append(
                {"id": str(pid), "kind": p_kind, "organisation_id": None, "organisation_name": None,
                 "organisation_kind": None, "unit_id": None, "name": name, "relation": relation,
                 "added_at": iso(added)}
            )  # fmt: skip
            self.audit.write(added, author, "plan.participant.add", "plan_participant", pid, client_id)
        if region in orgs_in and not c.linked[k] & 1:
            c.linked[k] |= 1
            user = self.handl(region)
            add(
                "client_link",
                (uid(rng), client_id, world.orgs[region].id, world.users[user].subject, t_create),
            )
            self.audit.write(t_create, user, "client.link", "client", client_id, client_id)

        self.audit.write(t_create, author, "plan.create", "plan", plan_id, client_id)
        overall: int | None
        if activated:
            hm = [o for o in (kommun, region) if o in orgs_in]
            overall = hm[0] if len(hm) == 1 or rng.random() < 0.7 else hm[1]
        else:
            overall = init if rng.random() < 0.5 else None

        # Consent.
        consents: list[dict[str, Any]] = []
        visible = [init]
        consent_id: uuid.UUID | None = None
        if activated or rng.random() < 0.3:
            upper = act_at or min(NOW, t_create + days(10))
            given = between(rng, t_create + timedelta(minutes=30), upper)
            recorded = min(given + timedelta(minutes=rng.randint(1, 60)), upper)
            method = weighted(rng, (("written", 0.6), ("verbal", 0.25), ("digital", 0.15)))
            valid_until = None if rng.random() < 0.65 else given.date() + days(rng.randint(365, 1095))
            if (
                valid_until is not None
                and status in ("active", "paused", "draft")
                and valid_until < TODAY + days(90)
            ):
                valid_until = None
            withdrawn_reason = (
                "Klienten återkallade sitt samtycke vid ett telefonsamtal." if pause_at else None
            )
            consent_id = uid(rng)
            scope = sorted((world.orgs[o].id for o in orgs_in), key=str)
            obtained_by = f"{world.users[author].name}, {ROLE_TITLE[world.orgs[init].kind]}"
            add(
                "consent",
                (consent_id, plan_id, given, obtained_by, method, valid_until, world.orgs[init].id, recorded,
                 pause_at, withdrawn_reason, world.orgs[init].id if pause_at else None),
            )  # fmt: skip
            for org_id in scope:
                add("consent_scope", (uid(rng), consent_id, plan_id, org_id))
            active = pause_at is None and (valid_until is None or valid_until >= TODAY)
            consents.append(
                {"id": str(consent_id), "given_at": iso(given), "obtained_by": obtained_by, "method": method,
                 "scope_organisation_ids": [str(o) for o in scope], "valid_until": isodate(valid_until),
                 "active": active, "recorded_by_organisation_id": str(world.orgs[init].id),
                 "recorded_at": iso(recorded), "withdrawn_at": iso(pause_at),
                 "withdrawn_reason": withdrawn_reason}
            )  # fmt: skip
            self.audit.write(recorded, author, "plan.consent.give", "consent", consent_id, client_id)
            if active:
                visible.extend(orgs_in[1:])

        # Needs and goals.
        early_end = act_at or min(NOW, t_create + days(20))
        needs: list[dict[str, Any]] = []
        need_ids: list[uuid.UUID] = []
        for text in rng.sample(NEEDS, rng.randint(2, 3)):
            by = other_hm if other_hm in orgs_in and rng.random() < 0.3 else init
            moment = between(rng, t_create, early_end)
            need_id = uid(rng)
            need_ids.append(need_id)
            add("plan_need", (need_id, plan_id, text, world.orgs[by].id, moment))
            needs.append({"id": str(need_id), "description": text, "created_by_organisation_id": str(world.orgs[by].id),
                          "created_at": iso(moment)})  # fmt: skip
            self.audit.write(moment, author, "plan.need.add", "plan_need", need_id, client_id)
        goals: list[dict[str, Any]] = []
        goal_ids: list[uuid.UUID] = []
        for i, text in enumerate(rng.sample(GOALS, rng.randint(2, 3))):
            need = need_ids[i % len(need_ids)] if rng.random() < 0.9 else None
            target = base + days(rng.randint(90, 365))
            moment = between(rng, t_create, early_end)
            goal_id = uid(rng)
            goal_ids.append(goal_id)
            add("plan_goal", (goal_id, plan_id, need, text, target, world.orgs[init].id, moment))
            goals.append({"id": str(goal_id), "need_id": None if need is None else str(need), "description": text,
                          "target_date": isodate(target), "created_by_organisation_id": str(world.orgs[init].id),
                          "created_at": iso(moment)})  # fmt: skip
            self.audit.write(moment, author, "plan.goal.add", "plan_goal", goal_id, client_id)

        # Actions.
        actions = self.actions(ch, plan_id, client_id, status, orgs_in, init, other_hm, author, t_create,
                               act_at, end_at, early_end, goal_ids)  # fmt: skip

        # Follow-ups, then the plan's follow-up date.
        follow_ups: list[tuple[date, date | None]] = []
        fu_ref: uuid.UUID | None = None
        if activated and act_at is not None:
            follow_ups, fu_ref = self.follow_ups(
                plan_id, client_id, status, act, close, init, other_hm, author, act_at
            )
        if follow_ups:
            follow_up_date: date | None = follow_ups[-1][0]
        elif activated:  # activation needs one
            follow_up_date = act + days(rng.randint(45, 120))
        elif rng.random() < 0.5:
            follow_up_date = base + days(rng.randint(30, 90))
        else:
            follow_up_date = None

        # Meetings.
        meeting_ref = self.meetings(plan_id, client_id, status, orgs_in, init, author, t_create, m1, end_at,
                                    follow_ups, client_participated, c.given[k], narst)  # fmt: skip

        # Versions: create, then the changes of its status.
        title = rng.choice(TITLES[kind])
        changes: list[tuple[str, datetime, dict[str, Any]]] = [("plan.create", t_create, {"title": title})]
        if status == "draft" and rng.random() < 0.5:
            changes.append(
                ("plan.update", between(rng, t_create, NOW), {"follow_up_date": isodate(follow_up_date)})
            )
        if cancel_at is not None:
            changes.append(("plan.cancel", cancel_at, {"to": "cancelled", "reason": "Klienten avböjde SIP."}))
        if act_at is not None:
            changes.append(("plan.activate", act_at, {"to": "active", "reason": None}))
            if rng.random() < 0.4:
                moment = between(rng, act_at, pause_at or end_at)
                changes.append(("plan.update", moment, {"follow_up_date": isodate(follow_up_date)}))
        if pause_at is not None:
            changes.append(
                ("plan.consent.withdraw", pause_at,
                 {"consent_id": str(consent_id), "reason": "Samtycket återkallat", "plan_paused": True})
            )  # fmt: skip
        if close_at is not None:
            changes.append(("plan.close", close_at, {"to": "closed", "reason": None}))
        version = len(changes)
        updated_at = changes[-1][1]
        if base >= NEW_SOL:
            legal_basis = ["SoL (2025:400) 2 kap.", "HSL 16 kap. 4 §"]
        else:
            legal_basis = ["SoL 2 kap. 7 §", "HSL 16 kap. 4 §"]
        if care:
            legal_basis.append("LVM 1 §")
        add(
            "plan",
            (plan_id, client_id, title, dumps(legal_basis), status, version, world.orgs[init].id, author_subject,
             None if overall is None else world.orgs[overall].id, follow_up_date, client_participated,
             relatives_objection, t_create, updated_at, act_at, close_at, cancel_at),
        )  # fmt: skip
        for change, moment, _ in changes[1:]:
            otype, oid = ("consent", consent_id) if change == "plan.consent.withdraw" else ("plan", plan_id)
            self.audit.write(moment, author, change, otype, oid, client_id)
        status_at = "draft"
        for n, (change, moment, summary) in enumerate(changes, 1):
            status_at = {"plan.activate": "active", "plan.close": "closed", "plan.cancel": "cancelled",
                         "plan.consent.withdraw": "paused"}.get(change, status_at)  # fmt: skip
            if n < version:
                snapshot = {"id": str(plan_id), "version": n, "status": status_at, "title": title}
            else:
                snapshot = {
                    "id": str(plan_id), "client_id": str(client_id), "title": title, "legal_basis": legal_basis,
                    "status": status, "version": version, "initiating_organisation_id": str(world.orgs[init].id),
                    "created_by": author_subject,
                    "overall_responsible_organisation_id": None if overall is None else str(world.orgs[overall].id),
                    "follow_up_date": isodate(follow_up_date), "client_participated": client_participated,
                    "relatives_objection": relatives_objection, "created_at": iso(t_create),
                    "updated_at": iso(updated_at), "activated_at": iso(act_at), "closed_at": iso(close_at),
                    "cancelled_at": iso(cancel_at), "participants": participants, "consents": consents,
                    "needs": needs, "goals": goals, "actions": actions,
                    "disputed_action_count": sum(1 for a in actions if a["status"] == "disputed"),
                }  # fmt: skip
            add(
                "plan_version",
                (uid(rng), plan_id, n, change, dumps(summary), dumps(snapshot), author_subject,
                 world.users[author].name, world.orgs[init].id, moment),
            )  # fmt: skip

        reads_until = NOW if status in ("draft", "active", "paused") else min(NOW, end_at + days(120))
        if status == "cancelled":
            reads_until = end_at
        self.refs.append(
            (plan_id, k, tuple(visible), to_us(t_create), to_us(reads_until), meeting_ref, fu_ref)
        )
        if close_at is not None:
            return close_at.date()
        if cancel_at is not None:
            return cancel_at.date()
        return None

    def actions(
        self, ch: Chain, plan_id: uuid.UUID, client_id: uuid.UUID, status: str, orgs_in: list[int], init: int,
        other_hm: int, author: int, t_create: datetime, act_at: datetime | None, end_at: datetime,
        early_end: datetime, goal_ids: list[uuid.UUID],
    ) -> list[dict[str, Any]]:  # fmt: skip
        rng, world, add = self.rng, self.world, self.loader.add
        kommun = self.c.kommun[ch.client]
        care, kind = ch.kind == 2, ch.kind
        weights = []
        for o in orgs_in:
            okind = world.orgs[o].kind
            weights.append((o, {"kommun": 0.45, "region": 0.40, "state": 0.10, "other": 0.05}[okind]))
        out: list[dict[str, Any]] = []
        for j in range(rng.randint(4, 8)):
            r = rng.random() * sum(w for _, w in weights)
            resp = weights[-1][0]
            for o, w in weights:
                r -= w
                if r < 0:
                    resp = o
                    break
            if care:
                phase: str | None = weighted(
                    rng, (("lvm_vard", 0.25), ("utskrivning", 0.10), ("eftervard", 0.5), ("", 0.15))
                )
                if j == 0:
                    phase = "eftervard"
                    resp = kommun if kommun in orgs_in else init
            elif kind == 1:
                phase = "lvm_utredning" if rng.random() < 0.3 else ""
            else:
                phase = weighted(rng, (("", 0.85), ("lvm_anmalan", 0.05), ("lvm_utredning", 0.10)))
            phase = phase or None
            proposer = other_hm if other_hm in orgs_in and rng.random() < 0.15 else init
            r = rng.random()
            if status in ("draft", "cancelled"):
                a_status = "proposed" if r < 0.6 else "accepted" if r < 0.9 else "disputed"
            elif status == "closed":
                a_status = ("proposed" if r < 0.03 else "disputed" if r < 0.06 else "cancelled" if r < 0.15
                            else "accepted" if r < 0.23 else "started" if r < 0.35 else "completed")  # fmt: skip
            else:
                a_status = ("proposed" if r < 0.06 else "disputed" if r < 0.09 else "cancelled" if r < 0.10
                            else "accepted" if r < 0.45 else "started" if r < 0.88 else "completed")  # fmt: skip
            if resp == proposer and a_status in ("proposed", "disputed"):
                others = [o for o in orgs_in if o != proposer]
                if others:
                    resp = rng.choice(others)
                else:
                    a_status = "accepted"
            own = resp == proposer
            proposer_user = author if proposer == init else self.handl(proposer)
            # Proposed and disputed actions of an activated plan came after activation (which needs
            # every action accepted); the others were agreed before it.
            if a_status in ("proposed", "disputed") and act_at is not None:
                proposed_at = between(rng, act_at, end_at)
                decide_by = end_at
            else:
                proposed_at = between(rng, t_create, early_end)
                decide_by = early_end
            decided_at: datetime | None = None
            decided_by: str | None = None
            decider = -1
            if a_status != "proposed" and own:
                decided_at, decided_by = proposed_at, world.users[proposer_user].subject
            elif a_status != "proposed":
                decided_at = between(rng, proposed_at, min(proposed_at + days(5), decide_by))
                decider = self.handl(resp)
                decided_by = world.users[decider].subject
            if a_status in ("started", "completed", "cancelled"):
                updated_at = between(rng, decided_at or proposed_at, end_at)
            else:
                updated_at = decided_at or proposed_at
            okind = world.orgs[resp].kind
            if okind == "kommun":
                description = rng.choice(KOMMUN_ACTIONS)
            elif okind == "region":
                description = rng.choice(REGION_ACTIONS)
            elif okind == "state":
                description = rng.choice(SIS_ACTIONS)
            else:
                description = OTHER_ACTORS[world.others.index(resp)][2]
            start = (act_at or t_create).date() + days(rng.randint(0, 30))
            if phase == "eftervard" and ch.eft_start is not None:
                start = ch.eft_start + days(rng.randint(0, 14))
            end = start + days(rng.randint(30, 270)) if rng.random() < 0.75 else None
            if a_status == "completed" and (end is None or end > updated_at.date()):
                end = max(start, updated_at.date())
            goal = rng.choice(goal_ids) if rng.random() < 0.75 else None
            action_id = uid(rng)
            reason = rng.choice(DISPUTE_REASONS) if a_status == "disputed" else None
            add(
                "plan_action",
                (action_id, plan_id, goal, description, world.orgs[resp].id, phase, start, end, a_status, reason,
                 world.orgs[proposer].id, proposed_at, decided_at, decided_by, updated_at),
            )  # fmt: skip
            self.audit.write(
                proposed_at, proposer_user, "plan.action.add" if own else "plan.action.propose", "plan_action",
                action_id, client_id,
            )  # fmt: skip
            if decider >= 0 and decided_at is not None:
                event = "plan.action.dispute" if a_status == "disputed" else "plan.action.accept"
                self.audit.write(decided_at, decider, event, "plan_action", action_id, client_id)
            out.append(
                {"id": str(action_id), "goal_id": None if goal is None else str(goal), "description": description,
                 "responsible_organisation_id": str(world.orgs[resp].id), "phase": phase,
                 "start_date": isodate(start), "end_date": isodate(end), "status": a_status,
                 "dispute_reason": reason, "proposed_by_organisation_id": str(world.orgs[proposer].id),
                 "proposed_at": iso(proposed_at), "decided_at": iso(decided_at)}
            )  # fmt: skip
        return out

    def follow_ups(
        self, plan_id: uuid.UUID, client_id: uuid.UUID, status: str, act: date, close: date | None, init: int,
        other_hm: int, author: int, act_at: datetime,
    ) -> tuple[list[tuple[date, date | None]], uuid.UUID | None]:  # fmt: skip
        """Follow-ups from activation on: held on time, late or not at all; an open plan ends with
        one still to come (or overdue). Returns (due, held) per follow-up, and one id."""
        rng, world, add = self.rng, self.world, self.loader.add
        limit = close if status == "closed" and close is not None else LAST_DAY
        out: list[tuple[date, date | None]] = []
        due = act + days(rng.randint(75, 180))
        scheduled = act_at
        prev = act
        ref: uuid.UUID | None = None
        while True:
            if due > limit or len(out) >= 6:
                if status != "closed":
                    if rng.random() < 0.08:
                        overdue = TODAY - days(rng.randint(1, 30))
                        if overdue > prev:
                            due = overdue
                    due = max(due, prev + days(1))
                    fu_id = uid(rng)
                    add("follow_up", (fu_id, plan_id, due, None, None, None, None, world.orgs[init].id, scheduled,
                                      None, None))  # fmt: skip
                    self.audit.write(scheduled, author, "plan.follow_up.add", "follow_up", fu_id, client_id)
                    out.append((due, None))
                    ref = ref or fu_id
                break
            r = rng.random()
            held: date | None
            if r < 0.72:
                held = max(due - days(rng.randint(0, 7)), prev + days(1))
            elif r < 0.90:
                held = due + days(rng.randint(1, 30))
                if held > limit:
                    held = None
            else:
                held = None
            next_due = (held or due) + days(rng.randint(120, 240))
            created = scheduled
            fu_id = uid(rng)
            ref = ref or fu_id
            if held is not None:
                code = weighted(rng, [(o[0], o[1]) for o in OUTCOMES])
                text = next(o[2] for o in OUTCOMES if o[0] == code)
                recorder = other_hm if rng.random() < 0.3 else init
                recorded_at = at(rng, held)
                next_date = next_due if (status != "closed" or next_due <= limit) else None
                add("follow_up", (fu_id, plan_id, due, held, code, text, next_date, world.orgs[init].id, scheduled,
                                  world.orgs[recorder].id, recorded_at))  # fmt: skip
                user = author if recorder == init else self.handl(recorder)
                self.audit.write(recorded_at, user, "plan.follow_up.record", "follow_up", fu_id, client_id)
                scheduled = recorded_at
                prev = held
            else:
                add("follow_up", (fu_id, plan_id, due, None, None, None, None, world.orgs[init].id, scheduled,
                                  None, None))  # fmt: skip
                scheduled = at(rng, due)
                prev = max(prev, due)
            self.audit.write(created, author, "plan.follow_up.add", "follow_up", fu_id, client_id)
            out.append((due, held))
            due = next_due
        return out, ref

    def meetings(
        self, plan_id: uuid.UUID, client_id: uuid.UUID, status: str, orgs_in: list[int], init: int, author: int,
        t_create: datetime, m1: date, end_at: datetime, follow_ups: list[tuple[date, date | None]],
        client_participated: bool, client_name: str, narst: tuple[str, str] | None,
    ) -> uuid.UUID | None:  # fmt: skip
        rng, world, add = self.rng, self.world, self.loader.add
        activated = status in ("active", "paused", "closed")
        plans: list[tuple[datetime, datetime, bool, str]] = []  # starts, called, held, purpose
        if status != "cancelled" or rng.random() < 0.3:
            starts = datetime(m1.year, m1.month, m1.day, rng.choice((9, 10, 13, 14)), tzinfo=UTC)
            called = between(rng, t_create, min(t_create + days(2), starts - timedelta(hours=1), NOW))
            held = starts <= NOW - timedelta(hours=2) and rng.random() < (
                0.95 if activated else 0.0 if status == "cancelled" else 0.5
            )
            purpose = "SIP-möte inför utskrivning från LVM-hemmet" if world.sis in orgs_in else "SIP-möte"
            plans.append((starts, called, held, purpose))
        for due, held_date in follow_ups:
            if held_date is not None and rng.random() < 0.4:
                starts = datetime(held_date.year, held_date.month, held_date.day, 10, tzinfo=UTC)
                if starts <= end_at:
                    plans.append(
                        (starts, max(t_create, starts - days(14)), starts <= NOW, "Uppföljande SIP-möte")
                    )
            elif held_date is None and due >= TODAY and rng.random() < 0.5:
                starts = datetime(due.year, due.month, due.day, 10, tzinfo=UTC)
                plans.append(
                    (starts, between(rng, max(t_create, NOW - days(14)), NOW), False, "Uppföljande SIP-möte")
                )
        ref: uuid.UUID | None = None
        invited = [o for o in orgs_in if o != init]
        for starts, called, held, purpose in plans:
            meeting_id = uid(rng)
            ref = ref or meeting_id
            held_at = starts + timedelta(minutes=rng.randint(0, 10)) if held else None
            if held_at is not None and held_at > NOW:
                held_at = NOW
            attendees: list[dict[str, Any]] = []
            last = called
            for o in invited:
                r = rng.random()
                if held_at is not None:
                    response = (
                        "accepted"
                        if r < 0.85
                        else "declined"
                        if r < 0.93
                        else "proposed_time"
                        if r < 0.97
                        else "pending"
                    )
                else:
                    response = (
                        "pending"
                        if r < 0.5
                        else "accepted"
                        if r < 0.9
                        else "declined"
                        if r < 0.95
                        else "proposed_time"
                    )
                invitee_id = uid(rng)
                if response == "pending":
                    add("meeting_invitee", (invitee_id, meeting_id, plan_id, world.orgs[o].id, response, None, None,
                                            None, None))  # fmt: skip
                else:
                    responded_at = between(rng, called, min(starts, NOW))
                    last = max(last, responded_at)
                    user = self.handl(o)
                    proposed = starts + days(rng.randint(1, 3)) if response == "proposed_time" else None
                    comment = ANSWER_COMMENTS.get(response)
                    add("meeting_invitee", (invitee_id, meeting_id, plan_id, world.orgs[o].id, response, proposed,
                                            comment, responded_at, world.users[user].subject))  # fmt: skip
                    self.audit.write(
                        responded_at, user, "plan.meeting.answer", "meeting_invitee", invitee_id, client_id
                    )
                if held_at is not None and response == "accepted":
                    attendee = world.users[self.handl(o)]
                    attendees.append({"organisation_id": str(world.orgs[o].id), "name": attendee.name,
                                      "role": ROLE_TITLE[world.orgs[o].kind]})  # fmt: skip
            record = None
            if held_at is not None:
                organiser = world.users[author]
                attendees.insert(0, {"organisation_id": str(world.orgs[init].id), "name": organiser.name,
                                     "role": ROLE_TITLE[world.orgs[init].kind]})  # fmt: skip
                if client_participated:
                    attendees.append({"organisation_id": None, "name": client_name, "role": "klient"})
                if narst is not None:
                    attendees.append({"organisation_id": None, "name": narst[0], "role": "närstående"})
                record = rng.choice(RECORDS)
                last = max(last, held_at)
            questions = rng.sample(QUESTIONS, rng.randint(1, 3))
            add(
                "meeting",
                (meeting_id, plan_id, starts, purpose, dumps(questions), rng.choice(LOCATIONS), world.orgs[init].id,
                 world.users[author].subject, called, last, held_at, record, dumps(attendees)),
            )  # fmt: skip
            self.audit.write(called, author, "plan.meeting.invite", "meeting", meeting_id, client_id)
            if held_at is not None:
                self.audit.write(held_at, author, "plan.meeting.hold", "meeting", meeting_id, client_id)
        return ref


# ---- reads for the audit trail -------------------------------------------------------------

PLAN_READS = (
    ("plan.read", 0.55), ("plan.list", 0.15), ("plan.meetings.read", 0.08), ("plan.follow_ups.read", 0.05),
    ("plan.versions.read", 0.05), ("plan.version.read", 0.02), ("plan.fhir.read", 0.02),
    ("plan.meeting.read", 0.05), ("plan.follow_up.read", 0.03),
)  # fmt: skip
CLIENT_READS = (
    ("client.read", 0.45), ("episode.list", 0.2), ("client.timeline.read", 0.12), ("client.search", 0.1),
    ("coordinator.list", 0.05), ("worklist.read", 0.08),
)  # fmt: skip


def add_reads(
    world: World, clients: Clients, refs: list[PlanRef], audit: Audit, n: int, rng: random.Random
) -> None:
    """Reads fill the audit trail up to its total: mostly plans, some clients, a few RSS reports."""
    n_rss = n // 500
    n_client = (n * 26) // 100
    for _ in range(n - n_client - n_rss):
        plan_id, k, visible, t0, t1, meeting, follow_up = refs[rng.randrange(len(refs))]
        org = visible[0] if len(visible) == 1 or rng.random() < 0.55 else rng.choice(visible[1:])
        user = rng.choice(world.orgs[org].handl)
        action = weighted(rng, PLAN_READS)
        otype, oid = "plan", plan_id
        if action == "plan.meeting.read":
            if meeting is None:
                action = "plan.read"
            else:
                otype, oid = "meeting", meeting
        elif action == "plan.follow_up.read":
            if follow_up is None:
                action = "plan.read"
            else:
                otype, oid = "follow_up", follow_up
        audit.by_org[org].append((rng.randint(t0, t1), user, action, otype, oid, clients.ids[k]))
    for _ in range(n_client):
        k = rng.randrange(len(clients.ids))
        home = clients.kommun[k]
        known = [home]
        if clients.linked[k] & 1:
            known.append(world.orgs[home].region)
        if clients.linked[k] & 2:
            known.append(world.sis)
        org = home if len(known) == 1 or rng.random() < 0.7 else rng.choice(known[1:])
        action = weighted(rng, CLIENT_READS)
        staff = world.orgs[org].samord if action in ("coordinator.list", "worklist.read") else []
        user = rng.choice(staff or world.orgs[org].handl)
        audit.by_org[org].append(
            (rng.randint(clients.created[k], max(clients.created[k], clients.active_until[k])), user, action,
             "client", clients.ids[k], clients.ids[k])
        )  # fmt: skip
    rss_orgs = list(world.regions.values())
    t0 = to_us(NOW - days(730))
    for _ in range(n_rss):
        region = world.orgs[rng.choice(rss_orgs)]
        audit.by_org[region.idx].append(
            (rng.randint(t0, to_us(NOW)), region.rss[0], "report.coverage.read", "report",
             f"coverage/{region.county}", None)
        )  # fmt: skip
    audit.count += n


async def write_audit(
    world: World, audit: Audit, loader: Loader, pepper: str, rng: random.Random, progress: Progress
) -> None:
    """Each organisation's chain in time order, hashed exactly as app.services.audit does."""
    done = 0
    for org in world.orgs:
        events = audit.by_org[org.idx]
        if not events:
            continue
        events.sort(key=itemgetter(0))
        org_id, org_text = org.id, str(org.id)
        prev = GENESIS
        seq = 0
        for micros, user_idx, action, otype, oid, client in events:
            seq += 1
            user = world.users[user_idx]
            event_id = uid(rng)
            occurred = from_us(micros)
            request_id = str(uid(rng))
            object_id = None if oid is None else str(oid)
            fields = {
                "id": str(event_id),
                "organisation_id": org_text,
                "seq": seq,
                "occurred_at": occurred.isoformat(),
                "actor_subject": user.subject,
                "actor_name": user.name,
                "actor_roles": user.roles,
                "action": action,
                "object_type": otype,
                "object_id": object_id,
                "client_id": str(client) if client else None,
                "request_id": request_id,
            }
            digest = event_hash(pepper, prev, fields)
            loader.add(
                "audit_event",
                (event_id, org_id, seq, occurred, user.subject, user.name, user.roles, action, otype, object_id,
                 client, request_id, prev, digest),
            )  # fmt: skip
            prev = digest
            done += 1
            if done % 2000 == 0:
                progress.update(done)
                await loader.maybe_flush()
        loader.add("audit_chain_head", (org_id, seq, prev))
        events.clear()
    progress.update(done, force=True)


# ---- the whole run -------------------------------------------------------------------------


def _pepper() -> str:
    from app.config import Settings

    return Settings().audit_pepper


async def generate(
    dsn: str,
    *,
    scale: float = 1.0,
    seed: int = 1,
    progress: bool = True,
    checked: bool = False,
    pepper: str | None = None,
) -> dict[str, int]:
    """Fill the (migrated, empty) database at `dsn` and return the rows written per table.

    `pepper` is the audit pepper the service will run with; by default SAMPLAN_AUDIT_PEPPER (or the
    dev default), as app.config reads it."""
    pepper = _pepper() if pepper is None else pepper
    started = time.monotonic()
    loader = Loader(dsn, checked=checked)
    conn = await loader.open()
    try:
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM organisation) OR EXISTS (SELECT 1 FROM client)"):
            raise RuntimeError("the database already holds data; generate into an empty, migrated database")

        def rng_for(name: str) -> random.Random:
            return random.Random(f"samplan-bench:{seed}:{name}")

        bar = Progress("organisations", len(COUNTIES) + 290 + 1 + len(OTHER_ACTORS), progress)
        world = build_world(rng_for("world"), loader, scale)
        await loader.flush_all()
        bar.finish(len(world.orgs))

        audit = Audit(world, rng_for("audit-writes"))
        n_clients = max(1, round(CLIENTS * scale))
        bar = Progress("clients, episodes", n_clients, progress)
        maker = ClientMaker(world, loader, audit, rng_for("clients"))
        for i in range(n_clients):
            maker.client()
            if i % 500 == 0:
                bar.update(i)
                await loader.maybe_flush()
        bar.finish(n_clients)
        clients = maker.c

        # Which chains get a plan: most with LVM care, many investigations, report-only chains fill up.
        prng = rng_for("plans")
        by_kind = [0, 0, 0]
        for ch in clients.chains:
            by_kind[ch.kind] += 1
        target = round(PLANS * scale) / (1 + P_SECOND_PLAN / 2)
        rest = target - P_PLAN_CARE * by_kind[2] - P_PLAN_INVESTIGATION * by_kind[1]
        p_report = min(1.0, max(0.0, rest / max(1, by_kind[0])))
        chosen = [
            ch for ch in clients.chains
            if prng.random() < (P_PLAN_CARE, P_PLAN_INVESTIGATION, p_report)[2 - ch.kind]
        ]  # fmt: skip
        bar = Progress("plans", len(chosen), progress)
        plans = PlanMaker(world, clients, loader, audit, prng)
        for i, ch in enumerate(chosen):
            ended = plans.plan(ch, None)
            if ended is not None and prng.random() < P_SECOND_PLAN:
                plans.plan(ch, ended)
            if i % 200 == 0:
                bar.update(i)
                await loader.maybe_flush()
        bar.finish(len(chosen))
        await loader.flush_all()
        clients.chains.clear()

        total = max(round(AUDIT_EVENTS * scale), audit.count)
        add_reads(world, clients, plans.refs, audit, total - audit.count, rng_for("audit-reads"))
        bar = Progress("audit events", total, progress)
        await write_audit(world, audit, loader, pepper, rng_for("audit-ids"), bar)
        await loader.flush_all()
        bar.finish(total)

        # VACUUM as well as ANALYZE: the benchmark then starts with the visibility maps set and no
        # autovacuum still working through the freshly loaded tables.
        bar = Progress("vacuum, analyze", len(TABLE_ORDER), progress)
        for i, table in enumerate(TABLE_ORDER, 1):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
            bar.update(i)
        bar.finish(len(TABLE_ORDER))
    finally:
        await loader.close()
    if progress:
        sys.stderr.write(f"done in {time.monotonic() - started:.1f} s; plan statuses {plans.statuses}\n")
    return dict(loader.counts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.generate", description="Generate a national-scale Samplan data set."
    )
    parser.add_argument("--database-url", required=True, help="postgresql://user@host:port/database")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 is the national data set")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--checked", action="store_true", help="keep FK checks and triggers on while loading")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--audit-pepper", default=None, help="default: SAMPLAN_AUDIT_PEPPER or the dev pepper"
    )
    args = parser.parse_args(argv)
    dsn = str(args.database_url).replace("postgresql+asyncpg://", "postgresql://", 1)
    counts = asyncio.run(
        generate(dsn, scale=args.scale, seed=args.seed, progress=not args.quiet, checked=args.checked,
                 pepper=args.audit_pepper)
    )  # fmt: skip
    print(json.dumps(counts, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
