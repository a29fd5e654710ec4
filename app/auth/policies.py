"""May this principal do this? Each policy answers True, or the reason why not.

Policies decide on roles and ownership only; whether an object is visible at all is the access
module's job (invisible objects answer 404 before a policy is asked).
"""

from __future__ import annotations

import uuid

from app.auth.principal import Principal
from app.errors import Forbidden
from app.models.identity import Role

Decision = bool | str


def require(decision: Decision) -> None:
    if decision is not True:
        raise Forbidden(decision if isinstance(decision, str) else "not allowed")


def may_create_organisation(p: Principal) -> Decision:
    return p.has(Role.platform_admin) or "only a platform_admin may register organisations"


def may_manage_issuers(p: Principal) -> Decision:
    return p.has(Role.platform_admin) or "only a platform_admin may configure trusted issuers"


def may_create_unit(p: Principal, organisation_id: uuid.UUID) -> Decision:
    if organisation_id != p.organisation_id:
        return "units are managed by their own organisation"
    return p.has(Role.org_admin) or "only an org_admin may manage units"


def may_list_units(p: Principal, organisation_id: uuid.UUID) -> Decision:
    return organisation_id == p.organisation_id or "units are listed to their own organisation's staff"


def may_read_audit(p: Principal) -> Decision:
    return p.has(Role.auditor) or "only an auditor may read the access log"


_PLAN_READERS = (Role.handlaggare, Role.samordnare, Role.lasare, Role.system)
_AUTHORS = (Role.handlaggare, Role.samordnare, Role.system)


def may_read_plans(p: Principal) -> Decision:
    """rss, org_admin and auditor never read plan content; lasare reads but never writes."""
    return p.has(*_PLAN_READERS) or "this role does not read plans"


def may_read_clients(p: Principal) -> Decision:
    return p.has(*_PLAN_READERS) or "this role does not read client data"


def may_author(p: Principal) -> Decision:
    """Register clients, create and change plans."""
    return p.has(*_AUTHORS) or "only handlaggare, samordnare and system may change client data"


def may_decide_action(p: Principal, responsible_organisation_id: uuid.UUID) -> Decision:
    """Only the responsible organisation accepts or disputes an action proposed to it."""
    if responsible_organisation_id != p.organisation_id:
        return "only the responsible organisation may accept or dispute this action"
    return may_author(p)


def works_through_assignments(p: Principal) -> bool:
    """A samordnare without another reading role reaches clients through their assignments."""
    return p.has(Role.samordnare) and not p.has(Role.handlaggare, Role.lasare, Role.system)


def may_assign_coordinator(p: Principal) -> Decision:
    return p.has(Role.handlaggare, Role.samordnare) or "only handlaggare and samordnare assign a samordnare"


def may_read_worklist(p: Principal) -> Decision:
    return p.has(Role.handlaggare, Role.samordnare) or "the worklist is for handlaggare and samordnare"


def may_pull_events(p: Principal) -> Decision:
    return p.has(Role.system) or "the event feed is for system clients"


def may_manage_webhooks(p: Principal) -> Decision:
    return p.has(Role.org_admin) or "only an org_admin manages webhooks"


def may_read_coverage_reports(p: Principal) -> Decision:
    """Aggregates only, never individual data: rss for its county, org_admin of a huvudman."""
    if p.has(Role.rss):
        return True
    if p.has(Role.org_admin) and p.org_kind in ("kommun", "region"):
        return True
    return "only rss and the org_admin of a kommun or region read coverage reports"


def may_read_coverage(p: Principal, county: str) -> Decision:
    """rss: the county of its token. org_admin: a region its own county, a kommun the population
    attributed to it (which lies in its own county)."""
    if p.has(Role.rss) and p.county == county:
        return True
    if p.has(Role.org_admin) and p.org_kind in ("kommun", "region") and p.org_county == county:
        return True
    if p.has(Role.rss):
        return f"an rss token reads its own county only ({p.county})"
    return "an org_admin reads coverage for its own organisation's county only"
