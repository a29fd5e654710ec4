"""Clients: one person is one client; registering a known person links, never duplicates."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.auth import policies
from app.auth.principal import Principal
from app.db import system_scope
from app.errors import NotFound
from app.models.client import MASKED_NAME, Client, ClientCreate, ClientLink, ClientPublic
from app.services import access, audit, identifiers


async def link(session: AsyncSession, p: Principal, client: Client) -> bool:
    """Make sure the caller's organisation knows the client. True when a link was added."""
    exists = await session.scalar(
        select(ClientLink.id).where(
            ClientLink.client_id == client.id, ClientLink.organisation_id == p.organisation_id
        )
    )
    if exists is not None:
        return False
    session.add(ClientLink(client_id=client.id, organisation_id=p.organisation_id, created_by=p.subject))
    await session.flush()
    return True


async def register(
    session: AsyncSession, p: Principal, data: ClientCreate
) -> tuple[access.VisibleClient, bool]:
    """Register a person, or link the caller's organisation to the client they already are.
    Returns the client and whether a new client was created."""
    policies.require(policies.may_author(p))
    pnr = identifiers.parse_personal_number(data.personal_number)
    # Deliberately cross-organisation: the person may be known only to another organisation.
    async with system_scope(session):
        client = (
            await session.execute(select(Client).where(Client.personal_number == pnr.value))
        ).scalar_one_or_none()
        created = client is None
        if client is None:
            client = Client(
                personal_number=pnr.value,
                is_coordination_number=pnr.is_coordination_number,
                birth_date=pnr.birth_date,
                given_name=data.given_name,
                family_name=data.family_name,
                gender=data.gender,
                protected_identity=data.protected_identity,
            )
            session.add(client)
            try:
                async with session.begin_nested():
                    await session.flush()
            except IntegrityError:  # registered concurrently by someone else: link to that one
                client = (
                    await session.execute(select(Client).where(Client.personal_number == pnr.value))
                ).scalar_one()
                created = False
        elif data.protected_identity and not client.protected_identity:
            # Protection only ever gets stricter through registration.
            client.protected_identity = True
        registrar = (
            client.protected_identity
            and not created
            and await access.registering_organisation(session, client.id)
        )
        await link(session, p, client)
    sees_identity = not client.protected_identity or created or registrar == p.organisation_id
    audit.record(
        session, p, "client.register" if created else "client.link", "client", client.id, client_id=client.id
    )
    return access.vouch_client(client, p, True, sees_identity), created


async def search(session: AsyncSession, p: Principal, personal_number: str) -> access.VisibleClient:
    """The client with this personal number, if known to the caller's organisation."""
    if policies.may_read_clients(p) is not True:
        raise NotFound("no client with that personal number is known to your organisation")
    pnr = identifiers.parse_personal_number(personal_number)
    client_id = await session.scalar(
        select(Client.id).where(Client.personal_number == pnr.value, access.principal_client_clause(p))
    )
    if client_id is None:
        audit.record(session, p, "client.search.miss", "client", keep_on_failure=True)
        raise NotFound("no client with that personal number is known to your organisation")
    audit.record(session, p, "client.search", "client", client_id, client_id=client_id)
    return await access.load_client(session, p, client_id)


async def read(session: AsyncSession, p: Principal, client_id: uuid.UUID) -> access.VisibleClient:
    visible = await access.load_client(session, p, client_id)
    audit.record(session, p, "client.read", "client", client_id, client_id=client_id)
    return visible


def public(visible: access.VisibleClient, *, created: bool = False) -> ClientPublic:
    """The client as the caller may see them: protected identities are masked for organisations
    that do not know the client, and the personal number is shown only to those that do."""
    c = visible.client
    masked = c.protected_identity and not visible.sees_protected_identity
    return ClientPublic(
        id=c.id,
        personal_number=c.personal_number if visible.known_to_caller else None,
        given_name=MASKED_NAME if masked else c.given_name,
        family_name=MASKED_NAME if masked else c.family_name,
        gender=c.gender,
        birth_year=c.birth_date.year,
        protected_identity=c.protected_identity,
        known_to_caller=visible.known_to_caller,
        created=created,
    )
