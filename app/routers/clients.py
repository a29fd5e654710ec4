from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from app.deps import IdempotencyDep, PrincipalDep, SessionDep
from app.models.client import ClientCreate, ClientPublic, ClientSearch
from app.services import clients as service

router = APIRouter(prefix="/api/v1/clients", tags=["clients"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ClientPublic,
    summary="Register a client, or link your organisation to the person if already known",
    responses={200: {"model": ClientPublic, "description": "the person was already a client: now linked"}},
)
async def register_client(
    data: ClientCreate, session: SessionDep, principal: PrincipalDep, idem: IdempotencyDep
) -> JSONResponse:
    visible, created = await service.register(session, principal, data)
    return await idem.respond(
        session,
        201 if created else 200,
        service.public(visible, created=created),
        {"Location": f"/api/v1/clients/{visible.client.id}"},
    )


@router.post(
    "/search",
    response_model=ClientPublic,
    summary="Find a client known to your organisation by personal number (never in the URL)",
    responses={404: {"description": "no such client known to your organisation"}},
)
async def search_client(data: ClientSearch, session: SessionDep, principal: PrincipalDep) -> ClientPublic:
    return service.public(await service.search(session, principal, data.personal_number))


@router.get(
    "/{client_id}", response_model=ClientPublic, summary="One client, as your organisation may see them"
)
async def get_client(client_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> ClientPublic:
    return service.public(await service.read(session, principal, client_id))
