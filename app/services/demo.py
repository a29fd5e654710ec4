"""Demo data: real organisationsnummer, units and one user per role, for dev mode."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.models.identity import Role, User
from app.models.organisation import Organisation, OrganisationKind, Unit


@dataclass(frozen=True)
class DemoOrg:
    key: str
    name: str
    kind: OrganisationKind
    org_number: str
    county_code: str
    units: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class DemoUser:
    org_key: str
    subject: str
    name: str
    roles: tuple[Role, ...]
    county: str | None = None


DEMO_ORGS = (
    DemoOrg(
        "region-sthlm",
        "Region Stockholm",
        OrganisationKind.region,
        "2321000016",
        "01",
        (("Beroendecentrum Stockholm", "SE2321000016-BCS1"), ("Psykiatri Södra", "SE2321000016-PSY2")),
    ),
    DemoOrg(
        "sthlm-stad",
        "Stockholms stad",
        OrganisationKind.kommun,
        "2120000142",
        "01",
        (("Socialförvaltningen, beroendeenheten", None), ("Södermalms stadsdelsförvaltning", None)),
    ),
    DemoOrg(
        "huddinge",
        "Huddinge kommun",
        OrganisationKind.kommun,
        "2120000126",
        "01",
        (("Socialtjänsten, vuxenenheten", None),),
    ),
    DemoOrg(
        "sis",
        "Statens institutionsstyrelse",
        OrganisationKind.state,
        "2021005489",
        "01",
        (("LVM-hemmet Hornö", "SE2021005489-HORN"), ("LVM-hemmet Lunden", "SE2021005489-LUND")),
    ),
    DemoOrg(
        "uppsala",
        "Uppsala kommun",
        OrganisationKind.kommun,
        "2120003005",
        "03",
        (("Vuxenenheten", None),),
    ),
    DemoOrg(
        "region-uppsala",
        "Region Uppsala",
        OrganisationKind.region,
        "2321000024",
        "03",
        (("Beroendecentrum Uppsala", "SE2321000024-BCU1"),),
    ),
)

DEMO_USERS = (
    DemoUser("sthlm-stad", "demo-sthlm-handlaggare", "Hanna Handläggare", (Role.handlaggare,)),
    DemoUser("sthlm-stad", "demo-sthlm-samordnare", "Sam Samordnare", (Role.samordnare,)),
    DemoUser("sthlm-stad", "demo-sthlm-lasare", "Lars Läsare", (Role.lasare,)),
    DemoUser("sthlm-stad", "demo-sthlm-org-admin", "Olga Orgadmin", (Role.org_admin,)),
    DemoUser("sthlm-stad", "demo-sthlm-auditor", "Agnes Granskare", (Role.auditor,)),
    DemoUser("sthlm-stad", "demo-sthlm-system", "Treserva-integration", (Role.system,)),
    DemoUser("region-sthlm", "demo-region-handlaggare", "Rita Regionläkare", (Role.handlaggare,)),
    DemoUser("region-sthlm", "demo-region-samordnare", "Rolf Regionsamordnare", (Role.samordnare,)),
    DemoUser("region-sthlm", "demo-region-rss", "Stina RSS-analytiker", (Role.rss,), county="01"),
    DemoUser("region-sthlm", "demo-platform-admin", "Per Plattform", (Role.platform_admin,)),
    DemoUser("huddinge", "demo-huddinge-handlaggare", "Hugo Handläggare", (Role.handlaggare,)),
    DemoUser("sis", "demo-sis-handlaggare", "Siri SiS-behandlare", (Role.handlaggare,)),
    DemoUser("uppsala", "demo-uppsala-handlaggare", "Ulla Uppsala", (Role.handlaggare,)),
    DemoUser("region-uppsala", "demo-region-uppsala-handlaggare", "Rune Uppsala", (Role.handlaggare,)),
)


async def load_demo(session: AsyncSession) -> dict[str, Organisation]:
    """Create what is missing; running it twice changes nothing. Needs the system scope."""
    orgs: dict[str, Organisation] = {}
    for spec in DEMO_ORGS:
        org = (
            await session.execute(select(Organisation).where(Organisation.org_number == spec.org_number))
        ).scalar_one_or_none()
        if org is None:
            org = Organisation(
                name=spec.name, kind=spec.kind, org_number=spec.org_number, county_code=spec.county_code
            )
            session.add(org)
            await session.flush()
        orgs[spec.key] = org
        for name, hsa_id in spec.units:
            exists = await session.scalar(
                select(Unit.id).where(Unit.organisation_id == org.id, Unit.name == name)
            )
            if exists is None:
                session.add(Unit(organisation_id=org.id, name=name, hsa_id=hsa_id))
    for user in DEMO_USERS:
        org = orgs[user.org_key]
        exists = await session.scalar(
            select(User.id).where(User.organisation_id == org.id, User.subject == user.subject)
        )
        if exists is None:
            session.add(
                User(
                    organisation_id=org.id,
                    subject=user.subject,
                    name=user.name,
                    roles=[r.value for r in user.roles],
                )
            )
    await session.flush()
    return orgs
