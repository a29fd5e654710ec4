"""Refuse text with NUL characters (U+0000) anywhere in a request's query or JSON body.

PostgreSQL cannot store NUL in text or jsonb (the driver raised, and the caller got a 500), and no
field of this API has a use for one. Refused on SQLite too, so both backends answer alike: 422 with
every offending field listed, like any other validation error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import Request

from app.errors import UnprocessableEntity

_NUL = "\x00"
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def _fields_with_nul(value: Any, where: str) -> Iterator[str]:
    if isinstance(value, str):
        if _NUL in value:
            yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            if _NUL in key:
                yield where
            else:
                yield from _fields_with_nul(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _fields_with_nul(item, f"{where}.{index}")


async def reject_nul_characters(request: Request) -> None:
    """An app-wide dependency; the body is the one FastAPI has already read (and keeps)."""
    fields = [f"query.{k}" for k, v in request.query_params.multi_items() if _NUL in k or _NUL in v]
    if request.method in _BODY_METHODS:
        body = await request.body()
        # Cheap test first: in JSON a NUL can only be written as the escape \u0000.
        if b"\\u0000" in body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None  # not JSON: FastAPI answers that itself
            fields.extend(_fields_with_nul(parsed, "body"))
    if fields:
        raise UnprocessableEntity(
            "text must not contain NUL characters (U+0000)",
            errors=[
                {"field": field, "message": "contains a NUL character (U+0000)", "code": "nul_character"}
                for field in fields
            ],
        )
