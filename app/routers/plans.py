from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse

from app.deps import IdempotencyDep, IfMatchOptional, IfMatchRequired, PrincipalDep, SessionDep, format_etag
from app.models.plan import (
    ActionCreate,
    ActionDispute,
    ActionUpdate,
    ConsentCreate,
    ConsentWithdraw,
    GoalCreate,
    GoalUpdate,
    NeedCreate,
    NeedUpdate,
    ParticipantCreate,
    PlanCreate,
    PlanPublic,
    PlanStatus,
    PlanSummary,
    PlanUpdate,
    PlanVersionPublic,
    PlanVersionSummary,
    TransitionRequest,
)
from app.services import fhir
from app.services import plans as service
from app.services.idempotency import Idempotency
from app.services.pagination import DEFAULT_LIMIT, Cursor, Limit, Page

router = APIRouter(prefix="/api/v1/plans", tags=["plans"])

_CHANGE_RESPONSES: dict[int | str, dict[str, str]] = {
    404: {"description": "no such plan within your reach"},
    403: {"description": "your role or organisation may not make this change"},
    412: {"description": "If-Match does not match the plan's current version"},
    422: {"description": "invalid input, or a domain rule is not met (every unmet rule listed)"},
}
_REQUIRED_IF_MATCH = {**_CHANGE_RESPONSES, 428: {"description": "If-Match is missing"}}


def etag(plan: PlanPublic) -> str:
    return format_etag(plan.version)


def _with_etag(plan: PlanPublic) -> Response:
    """The plan as JSON with its ETag. Serialised here, once: returned as a model, FastAPI would
    validate the whole plan again against the response model before serialising it."""
    return Response(plan.model_dump_json(), media_type="application/json", headers={"ETag": etag(plan)})


async def _created(idem: Idempotency, session: SessionDep, plan: PlanPublic, location: str) -> JSONResponse:
    return await idem.respond(session, 201, plan, {"ETag": etag(plan), "Location": location})


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=PlanPublic, summary="Start a SIP for a client"
)
async def create_plan(
    data: PlanCreate, session: SessionDep, principal: PrincipalDep, idem: IdempotencyDep
) -> JSONResponse:
    plan = await service.create(session, principal, data)
    return await _created(idem, session, plan, f"/api/v1/plans/{plan.id}")


@router.get("", response_model=Page[PlanSummary], summary="Plans your organisation may read")
async def list_plans(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    client_id: uuid.UUID | None = None,
    status: PlanStatus | None = None,
) -> Page[PlanSummary]:
    rows, next_cursor = await service.list_plans(
        session, principal, limit=limit, cursor=cursor, client_id=client_id, status=status
    )
    return Page(
        items=[PlanSummary.model_validate(p, from_attributes=True) for p in rows], next_cursor=next_cursor
    )


@router.get(
    "/{plan_id}",
    response_model=PlanPublic,
    summary="The plan with participants, consents, needs, goals and actions",
    responses={404: {"description": "no such plan within your reach"}},
)
async def get_plan(plan_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Response:
    return _with_etag(await service.read(session, principal, plan_id))


class _FhirJSONResponse(JSONResponse):
    media_type = fhir.MEDIA_TYPE


@router.get(
    "/{plan_id}/fhir",
    response_class=_FhirJSONResponse,
    summary="The plan as a FHIR R4 Bundle (collection): CarePlan, Patient, CareTeam, Goal, Consent, Organization",
    description=(
        "Readable by the same callers as `GET /api/v1/plans/{id}` and audited as `plan.fhir.read`. "
        "Every entry's fullUrl is `urn:uuid:<id>`. The organisation with the overall responsibility "
        "is the CarePlan's `author` (R4 has no custodian); each action is an `activity.detail` with "
        "the responsible organisation as `performer`. The Patient carries the personnummer "
        f"(`{fhir.PERSONNUMMER_SYSTEM}`) or samordningsnummer (`{fhir.SAMORDNINGSNUMMER_SYSTEM}`) "
        "only for organisations that know the client, and a protected identity is masked as in "
        "`GET /api/v1/clients/{id}`. Organizations carry the organisationsnummer "
        f"(`{fhir.ORGANISATIONSNUMMER_SYSTEM}`), units their HSA-id (`{fhir.HSA_ID_SYSTEM}`)."
    ),
    responses={
        200: {
            "description": "a FHIR R4 Bundle of type collection",
            "content": {
                fhir.MEDIA_TYPE: {
                    "schema": {"type": "object"},
                    "example": {
                        "resourceType": "Bundle",
                        "type": "collection",
                        "timestamp": "2026-11-25T09:30:00Z",
                        "entry": [
                            {
                                "fullUrl": "urn:uuid:3c5d0f7e-2b8a-4f1e-9a6d-1e2f3a4b5c6d",
                                "resource": {
                                    "resourceType": "CarePlan",
                                    "id": "3c5d0f7e-2b8a-4f1e-9a6d-1e2f3a4b5c6d",
                                    "status": "active",
                                    "intent": "plan",
                                    "title": "SIP inför utskrivning från LVM-hem",
                                    "subject": {
                                        "reference": "urn:uuid:5f0c8a43-3f7e-4bde-9d55-0d1f1f5d2a10",
                                        "type": "Patient",
                                    },
                                    "author": {
                                        "reference": "urn:uuid:0b8f5c1e-8a0e-4a44-9a57-0a5b8f0f7d11",
                                        "type": "Organization",
                                        "display": "Stockholms stad",
                                    },
                                },
                            }
                        ],
                    },
                }
            },
        },
        404: {"description": "no such plan within your reach"},
    },
)
async def get_plan_fhir(
    plan_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> _FhirJSONResponse:
    return _FhirJSONResponse(await fhir.read(session, principal, plan_id))


@router.patch(
    "/{plan_id}",
    response_model=PlanPublic,
    summary="Change the plan (If-Match)",
    responses=_REQUIRED_IF_MATCH,
)
async def patch_plan(
    plan_id: uuid.UUID,
    data: PlanUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchRequired,
) -> Response:
    return _with_etag(await service.patch(session, principal, plan_id, data, if_match))


@router.post(
    "/{plan_id}/transitions",
    response_model=PlanPublic,
    summary="Activate, pause, close or cancel (If-Match); a refusal lists every unmet rule",
    responses=_REQUIRED_IF_MATCH,
)
async def transition(
    plan_id: uuid.UUID,
    data: TransitionRequest,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchRequired,
) -> Response:
    return _with_etag(await service.transition(session, principal, plan_id, data, if_match))


@router.post(
    "/{plan_id}/participants",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanPublic,
    summary="Add a participant: huvudman, other actor, the client or a närstående",
    responses=_CHANGE_RESPONSES,
)
async def add_participant(
    plan_id: uuid.UUID,
    data: ParticipantCreate,
    session: SessionDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatchOptional,
) -> JSONResponse:
    plan, participant_id = await service.add_participant(session, principal, plan_id, data, if_match)
    return await _created(idem, session, plan, f"/api/v1/plans/{plan_id}/participants/{participant_id}")


@router.post(
    "/{plan_id}/consents",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanPublic,
    summary="Record the client's consent and which organisations it covers",
    responses=_CHANGE_RESPONSES,
)
async def add_consent(
    plan_id: uuid.UUID,
    data: ConsentCreate,
    session: SessionDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatchOptional,
) -> JSONResponse:
    plan, consent_id = await service.add_consent(session, principal, plan_id, data, if_match)
    return await _created(idem, session, plan, f"/api/v1/plans/{plan_id}/consents/{consent_id}")


@router.post(
    "/{plan_id}/consents/{consent_id}/withdraw",
    response_model=PlanPublic,
    summary="Withdraw a consent; an active plan without consent pauses",
    responses=_CHANGE_RESPONSES,
)
async def withdraw_consent(
    plan_id: uuid.UUID,
    consent_id: uuid.UUID,
    data: ConsentWithdraw,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchOptional,
) -> Response:
    plan = await service.withdraw_consent(session, principal, plan_id, consent_id, data, if_match)
    return _with_etag(plan)


@router.post(
    "/{plan_id}/needs",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanPublic,
    responses=_CHANGE_RESPONSES,
)
async def add_need(
    plan_id: uuid.UUID,
    data: NeedCreate,
    session: SessionDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatchOptional,
) -> JSONResponse:
    plan, need_id = await service.add_need(session, principal, plan_id, data, if_match)
    return await _created(idem, session, plan, f"/api/v1/plans/{plan_id}/needs/{need_id}")


@router.patch("/{plan_id}/needs/{need_id}", response_model=PlanPublic, responses=_CHANGE_RESPONSES)
async def update_need(
    plan_id: uuid.UUID,
    need_id: uuid.UUID,
    data: NeedUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchOptional,
) -> Response:
    return _with_etag(await service.update_need(session, principal, plan_id, need_id, data, if_match))


@router.post(
    "/{plan_id}/goals",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanPublic,
    responses=_CHANGE_RESPONSES,
)
async def add_goal(
    plan_id: uuid.UUID,
    data: GoalCreate,
    session: SessionDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatchOptional,
) -> JSONResponse:
    plan, goal_id = await service.add_goal(session, principal, plan_id, data, if_match)
    return await _created(idem, session, plan, f"/api/v1/plans/{plan_id}/goals/{goal_id}")


@router.patch("/{plan_id}/goals/{goal_id}", response_model=PlanPublic, responses=_CHANGE_RESPONSES)
async def update_goal(
    plan_id: uuid.UUID,
    goal_id: uuid.UUID,
    data: GoalUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchOptional,
) -> Response:
    return _with_etag(await service.update_goal(session, principal, plan_id, goal_id, data, if_match))


@router.post(
    "/{plan_id}/actions",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanPublic,
    summary="Add an action (insats); one assigned to another organisation starts as proposed",
    responses=_CHANGE_RESPONSES,
)
async def add_action(
    plan_id: uuid.UUID,
    data: ActionCreate,
    session: SessionDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
    if_match: IfMatchOptional,
) -> JSONResponse:
    plan, action_id = await service.add_action(session, principal, plan_id, data, if_match)
    return await _created(idem, session, plan, f"/api/v1/plans/{plan_id}/actions/{action_id}")


@router.patch(
    "/{plan_id}/actions/{action_id}",
    response_model=PlanPublic,
    summary="Change an action, or set it started, completed or cancelled",
    responses=_CHANGE_RESPONSES,
)
async def update_action(
    plan_id: uuid.UUID,
    action_id: uuid.UUID,
    data: ActionUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchOptional,
) -> Response:
    plan = await service.update_action(session, principal, plan_id, action_id, data, if_match)
    return _with_etag(plan)


@router.post(
    "/{plan_id}/actions/{action_id}/accept",
    response_model=PlanPublic,
    summary="The responsible organisation accepts an action proposed to it",
    responses=_CHANGE_RESPONSES,
)
async def accept_action(
    plan_id: uuid.UUID,
    action_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchOptional,
) -> Response:
    return _with_etag(await service.accept_action(session, principal, plan_id, action_id, if_match))


@router.post(
    "/{plan_id}/actions/{action_id}/dispute",
    response_model=PlanPublic,
    summary="The responsible organisation disputes an action proposed to it, with a reason",
    responses=_CHANGE_RESPONSES,
)
async def dispute_action(
    plan_id: uuid.UUID,
    action_id: uuid.UUID,
    data: ActionDispute,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchOptional,
) -> Response:
    plan = await service.dispute_action(session, principal, plan_id, action_id, data, if_match)
    return _with_etag(plan)


@router.get(
    "/{plan_id}/versions",
    response_model=list[PlanVersionSummary],
    summary="Who changed what, version by version",
)
async def list_versions(
    plan_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> list[PlanVersionSummary]:
    rows = await service.versions(session, principal, plan_id)
    return [PlanVersionSummary.model_validate(v, from_attributes=True) for v in rows]


@router.get(
    "/{plan_id}/versions/{number}",
    response_model=PlanVersionPublic,
    summary="The plan as it was at version n",
)
async def get_version(
    plan_id: uuid.UUID, number: int, session: SessionDep, principal: PrincipalDep
) -> PlanVersionPublic:
    return PlanVersionPublic.model_validate(
        await service.version(session, principal, plan_id, number), from_attributes=True
    )
