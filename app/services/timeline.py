"""A client's timeline: episodes, plan events, held meetings, follow-ups and samordnare periods in
time order, filtered by what the caller may see."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal
from app.models.meeting import FollowUp, FollowUpOutcome, Meeting
from app.models.plan import Plan, PlanVersion
from app.services import access, audit, care_chain

# The plan changes that belong on a timeline; the rest is in the plan's own version history.
_PLAN_MILESTONES = {
    "plan.create": "SIP påbörjad",
    "plan.activate": "SIP aktiverad",
    "plan.pause": "SIP pausad",
    "plan.close": "SIP avslutad",
    "plan.cancel": "SIP makulerad",
    "plan.consent.give": "Samtycke registrerat",
    "plan.consent.withdraw": "Samtycke återkallat",
}

_FOLLOW_UP_OUTCOMES = {
    FollowUpOutcome.continue_: "planen fortsätter",
    FollowUpOutcome.revise: "planen revideras",
    FollowUpOutcome.close: "planen avslutas",
    FollowUpOutcome.other: "annat utfall",
}


class TimelineItem(BaseModel):
    kind: str  # episode | plan_event | meeting | follow_up | coordinator_period
    date: dt.date
    end_date: dt.date | None = None
    at: dt.datetime | None = None
    title: str
    phase: str | None = None
    plan_id: uuid.UUID | None = None
    episode_id: uuid.UUID | None = None
    assignment_id: uuid.UUID | None = None
    meeting_id: uuid.UUID | None = None
    follow_up_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    change: str | None = None


async def timeline(session: AsyncSession, p: Principal, client_id: uuid.UUID) -> list[TimelineItem]:
    await access.load_client(session, p, client_id)
    items: list[TimelineItem] = []
    for e in await care_chain.list_episodes(session, p, client_id):
        items.append(
            TimelineItem(
                kind="episode",
                date=e.start_date,
                end_date=e.end_date or e.planned_end_date,
                title=e.phase.value,
                phase=e.phase.value,
                episode_id=e.id,
                organisation_id=e.organisation_id,
            )
        )
    visible_plans = access.visible_plans_query(p).where(Plan.client_id == client_id).subquery()
    events = await session.execute(
        select(PlanVersion)
        .where(
            col(PlanVersion.plan_id).in_(select(visible_plans.c.id)),
            col(PlanVersion.change).in_(_PLAN_MILESTONES),
        )
        .order_by(col(PlanVersion.changed_at))
    )
    for v in events.scalars():
        items.append(
            TimelineItem(
                kind="plan_event",
                date=v.changed_at.date(),
                at=v.changed_at,
                title=_PLAN_MILESTONES[v.change],
                plan_id=v.plan_id,
                organisation_id=v.changed_by_organisation_id,
                change=v.change,
            )
        )
    meetings = await session.execute(
        select(Meeting)
        .where(col(Meeting.plan_id).in_(select(visible_plans.c.id)), col(Meeting.held_at).is_not(None))
        .order_by(col(Meeting.held_at))
    )
    for m in meetings.scalars():
        assert m.held_at is not None  # filtered on in SQL
        items.append(
            TimelineItem(
                kind="meeting",
                date=m.held_at.date(),
                at=m.held_at,
                title=f"SIP-möte: {m.purpose}",
                plan_id=m.plan_id,
                meeting_id=m.id,
                organisation_id=m.organiser_organisation_id,
            )
        )
    follow_ups = await session.execute(
        select(FollowUp)
        .where(col(FollowUp.plan_id).in_(select(visible_plans.c.id)), col(FollowUp.held_date).is_not(None))
        .order_by(col(FollowUp.held_date))
    )
    for f in follow_ups.scalars():
        assert f.held_date is not None  # filtered on in SQL
        outcome = _FOLLOW_UP_OUTCOMES.get(f.outcome_code) if f.outcome_code else None
        items.append(
            TimelineItem(
                kind="follow_up",
                date=f.held_date,
                title=f"Uppföljning: {outcome}" if outcome else "Uppföljning",
                plan_id=f.plan_id,
                follow_up_id=f.id,
                organisation_id=f.recorded_by_organisation_id,
            )
        )
    for a in await care_chain.list_coordinators(session, p, client_id):
        items.append(
            TimelineItem(
                kind="coordinator_period",
                date=a.start_date,
                end_date=a.end_date,
                title=f"Samordnare: {a.user_name}",
                assignment_id=a.id,
                organisation_id=a.organisation_id,
            )
        )
    audit.record(session, p, "client.timeline.read", "client", client_id, client_id=client_id)
    return sorted(items, key=lambda i: (i.date, i.at.timestamp() if i.at else 0.0, i.kind))
