from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from app.deps import DatabaseDep
from app.errors import ServiceUnavailable

router = APIRouter(tags=["health"])


class HealthStatus(BaseModel):
    status: str


@router.get("/health", response_model=HealthStatus, summary="Liveness: the process answers")
async def health() -> HealthStatus:
    return HealthStatus(status="ok")


@router.get(
    "/ready",
    response_model=HealthStatus,
    summary="Readiness: the database answers",
    responses={503: {"description": "the database is not reachable"}},
)
async def ready(db: DatabaseDep) -> HealthStatus:
    try:
        await db.ping()
    except Exception as exc:  # any failure to reach the database means "not ready"
        raise ServiceUnavailable(f"the database is not reachable ({type(exc).__name__})") from None
    return HealthStatus(status="ready")
