"""Reports: the coverage indicators for RSS, as JSON or as CSV for Excel."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from app.deps import PrincipalDep, ReadSessionDep, SessionDep
from app.errors import Problem
from app.services import coverage
from app.services.coverage import CoverageReport, Interval

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


class NotAcceptable(Problem):
    status, slug, title = 406, "not-acceptable", "Not acceptable"


def _quality(part: str) -> tuple[str, float]:
    media, *params = (x.strip() for x in part.split(";"))
    q = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
    return media.lower(), q


def wants_csv(accept: str | None) -> bool:
    """text/csv when the Accept header prefers it to JSON; JSON when absent or equal. 406 when
    neither is acceptable."""
    if not accept or not accept.strip():
        return False
    best = {"json": -1.0, "csv": -1.0}
    for part in accept.split(","):
        if not part.strip():
            continue
        media, q = _quality(part)
        if media in ("application/json", "application/*", "*/*", "application/problem+json"):
            best["json"] = max(best["json"], q if media != "*/*" else min(q, 0.999))
        if media in ("text/csv", "text/*"):
            best["csv"] = max(best["csv"], q if media == "text/csv" else min(q, 0.998))
        if media == "*/*":
            best["csv"] = max(best["csv"], min(q, 0.998))
    if max(best.values()) <= 0:
        raise NotAcceptable("this report is available as application/json or text/csv")
    return best["csv"] > best["json"]


_JSON_EXAMPLE: dict[str, Any] = {
    "scope": {
        "kind": "county",
        "county": "01",
        "county_name": "Stockholms län",
        "organisation_id": None,
        "organisation_name": None,
    },
    "period": {"from": "2026-01-01", "to": "2026-12-31"},
    "interval": None,
    "breakdowns": [["kommun"]],
    "computed_at": "2027-01-15T08:00:00Z",
    "definitions": {"coverage": coverage.DEFINITIONS["coverage"], "...": "one entry per term and indicator"},
    "suppression": {"min_count": 5, "suppressed_cells": 2},
    "total": {
        "coverage": {"numerator": 212, "denominator": 301, "value": 0.7043, "suppressed": False},
        "both_huvudman": {"numerator": 150, "denominator": 212, "value": 0.7075, "suppressed": False},
        "discharge_with_plan": {"numerator": 61, "denominator": 88, "value": 0.6932, "suppressed": False},
        "median_days_to_first_meeting": {"n": 180, "value": 9.0, "suppressed": False},
        "followup_on_time": {"numerator": 240, "denominator": 310, "value": 0.7742, "suppressed": False},
        "client_participation": {"numerator": 190, "denominator": 260, "value": 0.7308, "suppressed": False},
    },
    "groups": [
        {
            "breakdown": ["kommun"],
            "kommun_id": "3f0c8a43-3f7e-4bde-9d55-0d1f1f5d2a10",
            "kommun": "Huddinge kommun",
            "gender": None,
            "age_band": None,
            "phase": None,
            "indicators": {
                "coverage": {"numerator": 20, "denominator": 31, "value": 0.6452, "suppressed": False},
                "both_huvudman": {"numerator": None, "denominator": None, "value": None, "suppressed": True},
                "discharge_with_plan": {
                    "numerator": 6,
                    "denominator": 9,
                    "value": 0.6667,
                    "suppressed": False,
                },
                "median_days_to_first_meeting": {"n": 17, "value": 11.0, "suppressed": False},
                "followup_on_time": {
                    "numerator": 22,
                    "denominator": 30,
                    "value": 0.7333,
                    "suppressed": False,
                },
                "client_participation": {
                    "numerator": 18,
                    "denominator": 25,
                    "value": 0.72,
                    "suppressed": False,
                },
            },
        }
    ],
    "series": None,
}

_CSV_EXAMPLE = (
    "\ufeffperiod_from;period_to;month;breakdown;kommun;kommun_id;gender;age_band;phase;indicator;"
    "numerator;denominator;n;value;suppressed;computed_at\r\n"
    "2026-01-01;2026-12-31;;total;;;;;;coverage;212;301;;0,7043;false;2027-01-15T08:00:00+00:00\r\n"
    "2026-01-01;2026-12-31;;kommun;Huddinge kommun;3f0c8a43-3f7e-4bde-9d55-0d1f1f5d2a10;;;;"
    "both_huvudman;..;..;;..;true;2027-01-15T08:00:00+00:00\r\n"
)


@router.get(
    "/coverage",
    response_model=CoverageReport,
    summary="Coverage indicators for a county (rss) or your own organisation (org_admin)",
    description=(
        "Every indicator of the domain guide (coverage, both_huvudman, discharge_with_plan, "
        "median_days_to_first_meeting, followup_on_time, client_participation) with numerator, "
        "denominator and value, for the whole county and for each group of the breakdowns asked for, "
        "optionally with a monthly series. The answer states the definitions used.\n\n"
        "**Who sees what.** `rss`: the county of its token only. `org_admin` of a region: the region's "
        "own county. `org_admin` of a kommun: the population attributed to that kommun. Never an "
        "individual: counts from 1 to 4 are suppressed in every cell, and further cells are suppressed "
        "where a total minus the visible cells would reveal a suppressed one.\n\n"
        "**Breakdowns.** `group_by` is repeatable; each value is one dimension (`kommun`, `gender`, "
        "`age_band`, `phase`) or several joined by commas for a cross-tabulation, which also reports "
        "its margins: `group_by=kommun,gender` gives kommun, gender and kommun × gender.\n\n"
        "**CSV.** With `Accept: text/csv`: UTF-8 with a byte order mark, `;` between fields and a "
        "decimal comma (what Excel expects in a Swedish locale), one row per group and indicator, "
        "kommuner by their names in the organisation register, suppressed numbers as `..`."
    ),
    responses={
        200: {
            "description": "the report",
            "content": {
                "application/json": {"example": _JSON_EXAMPLE},
                "text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE},
            },
        },
        403: {"description": "not rss or org_admin of a kommun or region, or another county than yours"},
        406: {"description": "neither JSON nor CSV is acceptable"},
        422: {"description": "`from` after `to`, a period over ten years, an unknown county or breakdown"},
    },
)
async def coverage_report(
    session: SessionDep,
    read_session: ReadSessionDep,
    principal: PrincipalDep,
    response: Response,
    from_: Annotated[date, Query(alias="from", description="first day of the period, included")],
    to: Annotated[date, Query(description="last day of the period, included; at most ten years on")],
    county: Annotated[
        str | None,
        Query(
            max_length=10,
            description="län code, e.g. '01'; default: your token's county (rss) or your organisation's",
        ),
    ] = None,
    group_by: Annotated[
        list[str] | None,
        Query(
            description="breakdowns: kommun, gender, age_band, phase, or combinations like kommun,gender",
        ),
    ] = None,
    interval: Annotated[Interval | None, Query(description="month: also each calendar month")] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> CoverageReport | Response:
    as_csv = wants_csv(accept)
    report = await coverage.coverage_report(
        session,
        principal,
        read_session=read_session,
        county=county,
        start=from_,
        end=to,
        group_by=group_by or [],
        interval=interval,
    )
    if not as_csv:
        response.headers["Vary"] = "Accept"
        return report
    filename = f"samplan-coverage-{report.scope.county}-{report.period.from_}-{report.period.to}.csv"
    return Response(
        content=coverage.to_csv(report).encode("utf-8"),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Vary": "Accept"},
    )
