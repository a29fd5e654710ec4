"""Keyset (cursor) pagination shared by every list endpoint."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.errors import BadRequest

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size, at most 200")]
Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([str(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, width: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError:
        raise BadRequest("the cursor is not one this service issued") from None
    if not isinstance(values, list) or len(values) != width or not all(isinstance(v, str) for v in values):
        raise BadRequest("the cursor is not one this service issued")
    return values


async def keyset_page(
    session: AsyncSession,
    stmt: Select[Any],
    order_by: Sequence[Any],
    *,
    limit: int,
    cursor: str | None,
    key: Callable[[Any], Sequence[Any]],
    parse: Sequence[Callable[[str], Any]],
) -> tuple[list[Any], str | None]:
    """Rows after `cursor` in ascending `order_by` order; `key(row)` gives the cursor values."""
    if cursor:
        raw = decode_cursor(cursor, len(order_by))
        try:
            values = [p(v) for p, v in zip(parse, raw, strict=True)]
        except ValueError:
            raise BadRequest("the cursor is not one this service issued") from None
        stmt = stmt.where(_after(order_by, values))
    rows = list((await session.execute(stmt.order_by(*order_by).limit(limit + 1))).scalars().all())
    next_cursor = encode_cursor(key(rows[limit - 1])) if len(rows) > limit else None
    return rows[:limit], next_cursor


def _after(columns: Sequence[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    # (a, b) > (x, y)  ==  a > x OR (a = x AND b > y); spelled out because SQLite lacks row values
    # in some versions.
    clauses = []
    for i, col in enumerate(columns):
        equal_prefix = [columns[j] == values[j] for j in range(i)]
        clauses.append(and_(*equal_prefix, col > values[i]))
    return or_(*clauses)
