"""worklist indexes

The worklist's signals start from the few rows that fire nationwide (LVM care ending soon or still
open, follow-ups due, meetings coming up) and only then ask whether the caller knows the client;
these indexes let them (docs/performance.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 01:25:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('episode', schema=None) as batch_op:
        batch_op.create_index('ix_episode_phase_end', ['phase', 'end_date'], unique=False)
        batch_op.create_index('ix_episode_phase_planned_end', ['phase', 'planned_end_date'], unique=False)
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.create_index('ix_meeting_open', ['held_at', 'starts_at'], unique=False)
    with op.batch_alter_table('plan', schema=None) as batch_op:
        batch_op.create_index('ix_plan_status_follow_up', ['status', 'follow_up_date'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('plan', schema=None) as batch_op:
        batch_op.drop_index('ix_plan_status_follow_up')
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.drop_index('ix_meeting_open')
    with op.batch_alter_table('episode', schema=None) as batch_op:
        batch_op.drop_index('ix_episode_phase_planned_end')
        batch_op.drop_index('ix_episode_phase_end')
