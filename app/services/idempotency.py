"""Idempotency-Key on creating POSTs: a retry with the same key and body gets the first answer."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.auth.principal import Principal
from app.errors import BadRequest, UnprocessableEntity
from app.models.idempotency import IdempotencyRecord

_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
REPLAY_HEADER = "Idempotency-Replayed"


class IdempotentReplay(Exception):
    """The request repeats an earlier one; answer with what that one got."""

    def __init__(self, record: IdempotencyRecord) -> None:
        self.record = record

    def response(self) -> JSONResponse:
        headers = dict(self.record.response_headers)
        headers[REPLAY_HEADER] = "true"
        return JSONResponse(self.record.response_body, status_code=self.record.status_code, headers=headers)


@dataclass
class Idempotency:
    principal: Principal
    key: str | None
    method: str
    path: str
    request_hash: str

    async def check(self, session: AsyncSession) -> None:
        if self.key is None:
            return
        record = (
            await session.execute(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.organisation_id == self.principal.organisation_id,
                    IdempotencyRecord.subject == self.principal.subject,
                    IdempotencyRecord.key == self.key,
                )
            )
        ).scalar_one_or_none()
        if record is None:
            return
        if (
            record.request_hash != self.request_hash
            or record.path != self.path
            or record.method != self.method
        ):
            raise UnprocessableEntity(
                "this Idempotency-Key was used for a different request; use a new key",
                errors=[{"field": "Idempotency-Key", "message": "reused with a different request"}],
            )
        raise IdempotentReplay(record)

    async def respond(
        self, session: AsyncSession, status_code: int, body: BaseModel, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        payload: Any = body.model_dump(mode="json")
        headers = headers or {}
        if self.key is not None:
            session.add(
                IdempotencyRecord(
                    organisation_id=self.principal.organisation_id,
                    subject=self.principal.subject,
                    key=self.key,
                    method=self.method,
                    path=self.path,
                    request_hash=self.request_hash,
                    status_code=status_code,
                    response_body=payload,
                    response_headers=headers,
                )
            )
            await session.flush()
        return JSONResponse(payload, status_code=status_code, headers=headers)


def build(principal: Principal, key: str | None, method: str, path: str, body: bytes) -> Idempotency:
    if key is not None and not _KEY.match(key):
        raise BadRequest("Idempotency-Key must be 1 to 200 visible ASCII characters")
    return Idempotency(principal, key, method, path, hashlib.sha256(body).hexdigest())
