"""access functions in PL/pgSQL

The RLS functions samplan_plan_visible and samplan_client_visible keep their rule but become
PL/pgSQL, whose plans are cached per connection instead of being planned again in every statement
(docs/performance.md). PostgreSQL only; nothing changes on SQLite.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 01:15:00
"""
from collections.abc import Sequence

from app import migration_support as ms

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if ms.is_postgresql():
        ms.create_plan_access_functions_plpgsql()


def downgrade() -> None:
    if ms.is_postgresql():
        ms.create_plan_access_functions()
