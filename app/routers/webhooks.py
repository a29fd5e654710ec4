from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from app.deps import PrincipalDep, SessionDep, SettingsDep
from app.models.events import DeliveryPublic, WebhookCreate, WebhookCreated, WebhookPublic
from app.services import events as service
from app.services.pagination import DEFAULT_LIMIT, Limit

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    summary="Register an https endpoint for event types (org_admin); the signing secret is shown once",
    description=(
        "Deliveries are POSTs with the event as JSON and the headers `Samplan-Event-Id`, "
        "`Samplan-Event-Type`, `Samplan-Timestamp` and `Samplan-Signature: v1=<hex>`, where the hex is "
        "HMAC-SHA256 with the secret over `<timestamp>.<body>`. Retries use exponential back-off with "
        "jitter for 24 hours; deliveries are at least once, so deduplicate by event id."
    ),
)
async def create_webhook(
    data: WebhookCreate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    response: Response,
) -> WebhookCreated:
    hook = await service.create_webhook(session, principal, data, settings)
    response.headers["Location"] = f"/api/v1/webhooks/{hook.id}"
    return WebhookCreated.model_validate(hook, from_attributes=True)


@router.get("", response_model=list[WebhookPublic], summary="Your organisation's webhooks (org_admin)")
async def list_webhooks(session: SessionDep, principal: PrincipalDep) -> list[WebhookPublic]:
    return [
        WebhookPublic.model_validate(h, from_attributes=True)
        for h in await service.list_webhooks(session, principal)
    ]


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Stop and remove a webhook")
async def delete_webhook(webhook_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Response:
    await service.delete_webhook(session, principal, webhook_id)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[DeliveryPublic],
    summary="Deliveries, newest first, with every attempt",
)
async def list_deliveries(
    webhook_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, limit: Limit = DEFAULT_LIMIT
) -> list[DeliveryPublic]:
    return await service.deliveries(session, principal, webhook_id, limit=limit)
