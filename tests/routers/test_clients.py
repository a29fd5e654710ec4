"""Clients over HTTP: one person is one client, visibility follows links and consented plans, and a
personal number never leaks into URLs, error bodies, headers, logs or the audit trail."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import TextClause

from app.models.audit import AuditEvent
from app.models.client import MASKED_NAME, Client, ClientLink
from app.services.identifiers import luhn_check_digit, make_personal_number
from tests.conftest import assert_problem
from tests.plan_helpers import PlanDriver

CLIENTS = "/api/v1/clients"
SEARCH = "/api/v1/clients/search"
AUTHOR_ROLES = ("handlaggare", "samordnare", "system")
NON_AUTHOR_ROLES = ("lasare", "rss", "org_admin", "auditor")
NON_READER_ROLES = ("rss", "org_admin", "auditor")


@pytest.fixture
def drv(client: httpx.AsyncClient, auth, orgs) -> PlanDriver:
    return PlanDriver(client, auth, orgs)


def _pnr(birth: date = date(1985, 3, 14), serial: int = 123, coordination: bool = False) -> str:
    return make_personal_number(birth, serial, coordination=coordination)


def _ten(pnr12: str, sep: str = "-") -> str:
    """The 10-digit form YYMMDD-NNNC (or with '+')."""
    return f"{pnr12[2:8]}{sep}{pnr12[8:]}"


def _body(personal_number: str, **fields: Any) -> dict[str, Any]:
    return {
        "personal_number": personal_number,
        "given_name": "Kim",
        "family_name": "Andersson",
        "gender": "kvinna",
        **fields,
    }


async def _read(session: AsyncSession, stmt: Any) -> Any:
    """Run a read in a transaction of its own on the test's system session. Committing first
    releases any savepoint the session still holds (the app's requests nest theirs in it and set
    their organisation's RLS context); the new one starts in system scope again. Committing after
    keeps the app's later savepoints outside ours."""
    await session.commit()
    result = await session.execute(stmt)
    try:
        return result.all() if isinstance(stmt, TextClause) else list(result.scalars())
    finally:
        await session.commit()


async def _scalar(session: AsyncSession, stmt: Any) -> Any:
    (value,) = await _read(session, stmt)
    return value


async def _count_clients(session: AsyncSession) -> int:
    return int(await _scalar(session, select(func.count()).select_from(Client)))


async def _count_links(session: AsyncSession, client_id: str) -> int:
    stmt = select(func.count()).select_from(ClientLink).where(ClientLink.client_id == uuid.UUID(client_id))
    return int(await _scalar(session, stmt))


async def _audit(session: AsyncSession, client_id: str | None = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.organisation_id, AuditEvent.seq)  # type: ignore[arg-type]
    if client_id is not None:
        stmt = stmt.where(AuditEvent.client_id == uuid.UUID(client_id))
    return list(await _read(session, stmt))


def _forms(pnr12: str) -> list[str]:
    """Every way the number could be written, to look for in text that must not hold it."""
    return [pnr12, pnr12[2:], f"{pnr12[:8]}-{pnr12[8:]}", _ten(pnr12), _ten(pnr12, "+")]


def _assert_absent(haystack: str, pnr12: str) -> None:
    for form in _forms(pnr12):
        assert form not in haystack, f"a personal number form leaked: {form!r}"


def _role(auth: Any, org: str, role: str) -> dict[str, str]:
    """Headers for one role; an rss token must name its county."""
    return dict(auth(org, role, county="01")) if role == "rss" else dict(auth(org, role))


def _response_text(r: httpx.Response) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
    return f"{headers}\n{r.text}"


async def _consented_plan(
    drv: PlanDriver, client_id: str, participant: str = "region-sthlm"
) -> dict[str, Any]:
    plan = await drv.create_plan("sthlm-stad", client_id=client_id)
    await drv.add_participant(plan["id"], participant)
    return await drv.add_consent(plan["id"], ["sthlm-stad", participant])


# ---- POST /api/v1/clients -------------------------------------------------------------------


@pytest.mark.parametrize("role", AUTHOR_ROLES)
async def test_author_roles_register_a_client_with_a_normalised_number(
    client: httpx.AsyncClient, auth, session: AsyncSession, role: str
) -> None:
    pnr = _pnr(date(1985, 3, 14), 412)
    before = await _count_clients(session)
    r = await client.post(CLIENTS, json=_body(_ten(pnr)), headers=auth("sthlm-stad", role))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] is True
    assert body["personal_number"] == pnr  # YYMMDD-NNNC became 12 digits
    assert body["birth_year"] == 1985
    assert body["known_to_caller"] is True
    assert (body["given_name"], body["family_name"], body["gender"]) == ("Kim", "Andersson", "kvinna")
    assert r.headers["location"] == f"{CLIENTS}/{body['id']}"
    assert await _count_clients(session) == before + 1
    row = await _scalar(session, select(Client).where(Client.id == uuid.UUID(body["id"])))
    assert row.personal_number == pnr and row.birth_date == date(1985, 3, 14)
    assert row.is_coordination_number is False


@pytest.mark.parametrize(
    ("written", "stored", "birth_year", "coordination"),
    [
        # '+' means a hundred or older: 1920, not 2020.
        (_ten(_pnr(date(1920, 3, 14), 77), "+"), _pnr(date(1920, 3, 14), 77), 1920, False),
        # Without '+', the same six digits are the latest such date not in the future.
        (_ten(_pnr(date(2020, 3, 14), 77)), _pnr(date(2020, 3, 14), 77), 2020, False),
        # Samordningsnummer: the day plus 60, in 10- and 12-digit forms.
        (_ten(_pnr(date(1979, 11, 5), 321, True)), _pnr(date(1979, 11, 5), 321, True), 1979, True),
        (
            f"{_pnr(date(1990, 1, 31), 5, True)[:8]}-{_pnr(date(1990, 1, 31), 5, True)[8:]}",
            _pnr(date(1990, 1, 31), 5, True),
            1990,
            True,
        ),
        # 12 digits without a dash are kept as they are.
        (_pnr(date(1912, 12, 12), 121), _pnr(date(1912, 12, 12), 121), 1912, False),
    ],
)
async def test_register_normalises_every_accepted_form(
    client: httpx.AsyncClient,
    auth,
    session: AsyncSession,
    written: str,
    stored: str,
    birth_year: int,
    coordination: bool,
) -> None:
    r = await client.post(CLIENTS, json=_body(written), headers=auth("sthlm-stad", "handlaggare"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["personal_number"] == stored
    assert len(body["personal_number"]) == 12 and body["personal_number"].isdigit()
    assert body["birth_year"] == birth_year
    row = await _scalar(session, select(Client).where(Client.id == uuid.UUID(body["id"])))
    assert row.personal_number == stored
    assert row.is_coordination_number is coordination
    assert row.birth_date.year == birth_year
    if coordination:
        assert row.birth_date.day == int(stored[6:8]) - 60  # the real day, not the day plus 60


async def test_register_from_another_org_links_the_same_person(
    client: httpx.AsyncClient, auth, session: AsyncSession
) -> None:
    pnr = _pnr(date(1977, 6, 1), 250)
    kommun = auth("sthlm-stad", "handlaggare")
    region = auth("region-sthlm", "handlaggare")
    first = await client.post(CLIENTS, json=_body(pnr), headers=kommun)
    assert first.status_code == 201, first.text
    cid = first.json()["id"]
    # Before the region registers the person, it cannot see them.
    assert_problem(await client.get(f"{CLIENTS}/{cid}", headers=region), 404)

    # The region registers the same person in the 10-digit form, with other names.
    second = await client.post(
        CLIENTS, json=_body(_ten(pnr), given_name="Kimmie", family_name="Other"), headers=region
    )
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["created"] is False
    assert body["id"] == cid  # one person, one client
    assert body["personal_number"] == pnr
    assert body["known_to_caller"] is True
    assert (body["given_name"], body["family_name"]) == ("Kim", "Andersson")  # the person as first registered
    assert await _count_links(session, cid) == 2
    assert (
        int(
            await _scalar(
                session, select(func.count()).select_from(Client).where(Client.personal_number == pnr)
            )
        )
        == 1
    )

    # Now the region sees them, with the personal number.
    r = await client.get(f"{CLIENTS}/{cid}", headers=region)
    assert r.status_code == 200, r.text
    assert r.json()["personal_number"] == pnr and r.json()["known_to_caller"] is True
    # And an organisation that never registered them still does not.
    assert_problem(await client.get(f"{CLIENTS}/{cid}", headers=auth("huddinge", "handlaggare")), 404)


async def test_register_again_from_the_same_org_links_without_duplicating(
    client: httpx.AsyncClient, auth, session: AsyncSession
) -> None:
    pnr = _pnr(date(1969, 2, 28), 88)
    first = await client.post(CLIENTS, json=_body(pnr), headers=auth("sthlm-stad", "handlaggare"))
    assert first.status_code == 201, first.text
    count = await _count_clients(session)
    # Another handläggare of the same organisation, in the other role, registers them again.
    again = await client.post(
        CLIENTS, json=_body(f"{pnr[:8]}-{pnr[8:]}"), headers=auth("sthlm-stad", "samordnare")
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["created"] is False
    assert await _count_clients(session) == count
    assert await _count_links(session, first.json()["id"]) == 1


async def test_protection_only_gets_stricter_through_registration(
    client: httpx.AsyncClient, auth, session: AsyncSession
) -> None:
    pnr = _pnr(date(1991, 9, 9), 9)
    r = await client.post(CLIENTS, json=_body(pnr), headers=auth("sthlm-stad", "handlaggare"))
    cid = r.json()["id"]
    assert r.json()["protected_identity"] is False
    r = await client.post(
        CLIENTS, json=_body(pnr, protected_identity=True), headers=auth("region-sthlm", "handlaggare")
    )
    assert r.status_code == 200 and r.json()["protected_identity"] is True
    r = await client.post(
        CLIENTS, json=_body(pnr, protected_identity=False), headers=auth("huddinge", "handlaggare")
    )
    assert r.status_code == 200 and r.json()["protected_identity"] is True
    r = await client.get(f"{CLIENTS}/{cid}", headers=auth("sthlm-stad", "handlaggare"))
    assert r.json()["protected_identity"] is True


@pytest.mark.parametrize("role", NON_AUTHOR_ROLES)
async def test_non_author_roles_may_not_register(
    client: httpx.AsyncClient, auth, session: AsyncSession, role: str
) -> None:
    before = await _count_clients(session)
    pnr = _pnr(date(1988, 8, 8), 808)
    headers = _role(auth, "sthlm-stad", role)
    r = await client.post(CLIENTS, json=_body(pnr), headers=headers)
    assert_problem(r, 403)
    _assert_absent(_response_text(r), pnr)
    assert await _count_clients(session) == before

    # Nor may they link themselves to a person another organisation already knows.
    known = await client.post(CLIENTS, json=_body(pnr), headers=auth("region-sthlm", "handlaggare"))
    assert known.status_code == 201
    r = await client.post(CLIENTS, json=_body(pnr), headers=headers)
    assert_problem(r, 403)
    assert "Kim" not in r.text
    assert await _count_clients(session) == before + 1
    assert await _count_links(session, known.json()["id"]) == 1


async def test_register_without_a_token_is_refused(client: httpx.AsyncClient, session: AsyncSession) -> None:
    before = await _count_clients(session)
    assert_problem(await client.post(CLIENTS, json=_body(_pnr())), 401)
    assert await _count_clients(session) == before


# ---- invalid personal numbers ---------------------------------------------------------------


def _bad_check_digit() -> str:
    good = _pnr(date(1985, 3, 14), 456)
    return good[:-1] + str((int(good[-1]) + 1) % 10)


def _impossible_date() -> str:
    body = "198502301234"[:11]  # 30 February, otherwise well formed with a correct check digit
    return body + str(luhn_check_digit(body[2:]))


INVALID_NUMBERS = {
    "bad check digit": _bad_check_digit(),
    "bad check digit, 10 digits": _ten(_bad_check_digit()),
    "impossible date": _impossible_date(),
    "impossible month": "19851314" + "1234",
    "coordination day out of range": "19850395" + "1234",
    "letters": "19850314-12A4",
    "letters, 10 digits": "850314-AB34",
    "too short": "198503141",
    "eleven digits": "19850314123",
    "too long": "1985031412345",
    "far too long": "19850314123456789",
    "two separators": "850314--1234",
    "unicode digits": "١٩٨٥٠٣١٤١٢٣٤",
}


@pytest.mark.parametrize("number", list(INVALID_NUMBERS.values()), ids=list(INVALID_NUMBERS))
async def test_invalid_numbers_are_refused_without_echoing_them(
    client: httpx.AsyncClient, auth, session: AsyncSession, caplog: pytest.LogCaptureFixture, number: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="samplan")
    caplog.set_level(logging.DEBUG, logger="uvicorn")
    before = await _count_clients(session)
    digits = "".join(c for c in number if c.isdigit())
    for path in (CLIENTS, SEARCH):
        payload = _body(number) if path == CLIENTS else {"personal_number": number}
        r = await client.post(path, json=payload, headers=auth("sthlm-stad", "handlaggare"))
        body = assert_problem(r, 422)
        assert [e["field"] for e in body["errors"]] == ["body.personal_number"]  # type: ignore[union-attr, index]
        leaked = _response_text(r)
        assert number.strip() not in leaked
        assert digits not in leaked
        assert "input" not in str(body["errors"])
    assert await _count_clients(session) == before
    logged = "\n".join(f"{rec.getMessage()} {rec.__dict__}" for rec in caplog.records)
    assert number not in logged and digits not in logged
    assert any(rec.name == "samplan.access" for rec in caplog.records)  # the capture does see the app


async def test_no_request_logs_a_personal_number(
    drv: PlanDriver, client: httpx.AsyncClient, auth, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole client workflow, valid and invalid, at DEBUG: no log line holds the number."""
    caplog.set_level(logging.DEBUG, logger="samplan")
    caplog.set_level(logging.DEBUG, logger="uvicorn")
    pnr = _pnr(date(1983, 4, 21), 614)
    kommun = auth("sthlm-stad", "handlaggare")
    region = auth("region-sthlm", "handlaggare")
    created = await client.post(CLIENTS, json=_body(_ten(pnr)), headers=kommun)
    assert created.status_code == 201
    cid = created.json()["id"]
    assert (await client.post(SEARCH, json={"personal_number": pnr}, headers=kommun)).status_code == 200
    assert (await client.post(SEARCH, json={"personal_number": pnr}, headers=region)).status_code == 404
    assert (await client.post(CLIENTS, json=_body(pnr), headers=region)).status_code == 200
    assert (
        await client.post(CLIENTS, json=_body(pnr), headers=auth("huddinge", "lasare"))
    ).status_code == 403
    assert (await client.post(CLIENTS, json=_body(pnr[:-1] + "x"), headers=kommun)).status_code == 422
    assert (await client.post(CLIENTS, json={**_body(pnr), "extra": pnr}, headers=kommun)).status_code == 422
    assert (await client.get(f"{CLIENTS}/{cid}", headers=kommun)).status_code == 200
    # Even a caller who wrongly puts the number in a URL does not get it logged.
    r = await client.get(f"{CLIENTS}/search", params={"personal_number": pnr}, headers=kommun)
    assert r.status_code >= 400
    await drv.create_plan("sthlm-stad", client_id=cid)
    assert len(caplog.records) >= 10
    logged = "\n".join(f"{rec.getMessage()} {rec.__dict__}" for rec in caplog.records)
    logged += caplog.text
    _assert_absent(logged, pnr)


async def test_unknown_fields_are_refused(client: httpx.AsyncClient, auth, session: AsyncSession) -> None:
    before = await _count_clients(session)
    headers = auth("sthlm-stad", "handlaggare")
    r = await client.post(CLIENTS, json={**_body(_pnr()), "address": "Storgatan 1"}, headers=headers)
    body = assert_problem(r, 422)
    assert "body.address" in [e["field"] for e in body["errors"]]  # type: ignore[union-attr, index]
    r = await client.post(SEARCH, json={"personal_number": _pnr(), "name": "Kim"}, headers=headers)
    assert_problem(r, 422)
    assert await _count_clients(session) == before


@pytest.mark.parametrize(
    "payload",
    [
        {"given_name": "Kim", "family_name": "Andersson"},  # no personal number
        _body(_pnr(), given_name=""),
        _body(_pnr(), gender="female"),
        _body(_pnr(), protected_identity="maybe"),
        _body(12345678901),  # type: ignore[arg-type]
    ],
)
async def test_other_invalid_bodies_are_422(
    client: httpx.AsyncClient, auth, session: AsyncSession, payload: dict[str, Any]
) -> None:
    before = await _count_clients(session)
    assert_problem(await client.post(CLIENTS, json=payload, headers=auth("sthlm-stad", "handlaggare")), 422)
    assert await _count_clients(session) == before


# ---- POST /api/v1/clients/search ------------------------------------------------------------


async def test_search_finds_a_client_known_to_the_own_org(client: httpx.AsyncClient, auth) -> None:
    pnr = _pnr(date(1975, 12, 24), 3)
    headers = auth("sthlm-stad", "handlaggare")
    cid = (await client.post(CLIENTS, json=_body(pnr), headers=headers)).json()["id"]
    for written in (pnr, _ten(pnr), f"{pnr[:8]}-{pnr[8:]}"):
        r = await client.post(SEARCH, json={"personal_number": written}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["id"] == cid
        assert r.json()["personal_number"] == pnr and r.json()["known_to_caller"] is True
        assert r.json()["created"] is False
        # The number travelled only in the body.
        _assert_absent(str(r.request.url), pnr)
        assert (
            pnr in r.request.content.decode()
            or _ten(pnr) in r.request.content.decode()
            or written in r.request.content.decode()
        )
    # Every reading role of the organisation finds them.
    for role in ("lasare", "system"):
        r = await client.post(SEARCH, json={"personal_number": pnr}, headers=auth("sthlm-stad", role))
        assert r.status_code == 200, (role, r.text)


async def test_search_for_a_client_of_another_org_gives_no_hint(client: httpx.AsyncClient, auth) -> None:
    pnr = _pnr(date(1975, 12, 24), 4)
    await client.post(CLIENTS, json=_body(pnr), headers=auth("sthlm-stad", "handlaggare"))
    other = await client.post(
        SEARCH, json={"personal_number": pnr}, headers=auth("region-sthlm", "handlaggare")
    )
    never = await client.post(
        SEARCH,
        json={"personal_number": _pnr(date(1975, 12, 24), 5)},
        headers=auth("region-sthlm", "handlaggare"),
    )
    a, b = assert_problem(other, 404), assert_problem(never, 404)
    # A known and an unknown person answer alike: the same problem apart from the request id.
    for body in (a, b):
        body.pop("request_id", None)
    assert a == b
    assert "Kim" not in other.text and "Andersson" not in other.text


async def test_search_by_a_consented_participant_org(
    drv: PlanDriver, client: httpx.AsyncClient, auth
) -> None:
    pnr = _pnr(date(1980, 7, 7), 707)
    region = auth("region-sthlm", "handlaggare")
    cid = (await drv.register_client("sthlm-stad", personal_number=pnr))["id"]
    plan = await drv.create_plan("sthlm-stad", client_id=cid)
    pid = plan["id"]
    await drv.add_participant(pid, "region-sthlm")
    # Participating without consent is not enough.
    assert_problem(await client.post(SEARCH, json={"personal_number": pnr}, headers=region), 404)
    # A consent that covers only the kommun is not enough either.
    await drv.add_consent(pid, ["sthlm-stad"])
    assert_problem(await client.post(SEARCH, json={"personal_number": pnr}, headers=region), 404)

    plan = await drv.add_consent(pid, ["sthlm-stad", "region-sthlm"])
    r = await client.post(SEARCH, json={"personal_number": _ten(pnr)}, headers=region)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == cid
    assert r.json()["known_to_caller"] is False
    # Cross-organisation: an organisation outside the plan still finds nothing.
    assert_problem(
        await client.post(SEARCH, json={"personal_number": pnr}, headers=auth("huddinge", "handlaggare")), 404
    )

    # Withdrawn consent takes the access away again.
    consent_id = next(c["id"] for c in plan["consents"] if len(c.get("scope_organisation_ids", [])) == 2)
    r = await drv.post(pid, f"/consents/{consent_id}/withdraw", {"reason": "Klienten återkallar"})
    assert r.status_code == 200, r.text
    assert_problem(await client.post(SEARCH, json={"personal_number": pnr}, headers=region), 404)


@pytest.mark.parametrize("role", NON_READER_ROLES)
async def test_roles_that_never_read_clients_find_nothing(client: httpx.AsyncClient, auth, role: str) -> None:
    pnr = _pnr(date(1966, 6, 6), 66)
    await client.post(CLIENTS, json=_body(pnr), headers=auth("sthlm-stad", "handlaggare"))
    r = await client.post(SEARCH, json={"personal_number": pnr}, headers=_role(auth, "sthlm-stad", role))
    assert_problem(r, 404)
    _assert_absent(_response_text(r), pnr)


async def test_search_takes_the_number_only_in_the_body(client: httpx.AsyncClient, auth) -> None:
    pnr = _pnr(date(1966, 6, 6), 67)
    headers = auth("sthlm-stad", "handlaggare")
    await client.post(CLIENTS, json=_body(pnr), headers=headers)
    # A number in the query string is not read: without a body the request is invalid.
    r = await client.post(SEARCH, params={"personal_number": pnr}, headers=headers)
    assert_problem(r, 422)
    _assert_absent(r.text, pnr)
    # There is no GET search.
    r = await client.get(SEARCH, params={"personal_number": pnr}, headers=headers)
    assert r.status_code in (404, 405, 422), r.text
    assert "Kim" not in r.text
    _assert_absent(r.text, pnr)


# ---- GET /api/v1/clients/{id} ---------------------------------------------------------------


async def test_read_a_client_of_the_own_org(client: httpx.AsyncClient, auth) -> None:
    pnr = _pnr(date(1958, 1, 2), 582)
    headers = auth("sthlm-stad", "handlaggare")
    cid = (await client.post(CLIENTS, json=_body(pnr, gender="man"), headers=headers)).json()["id"]
    for role in ("handlaggare", "lasare", "system"):
        r = await client.get(f"{CLIENTS}/{cid}", headers=auth("sthlm-stad", role))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body == {
            "id": cid,
            "personal_number": pnr,
            "given_name": "Kim",
            "family_name": "Andersson",
            "gender": "man",
            "birth_year": 1958,
            "protected_identity": False,
            "known_to_caller": True,
            "created": False,
        }


async def test_read_a_client_of_an_unrelated_org_is_404(client: httpx.AsyncClient, auth) -> None:
    cid = (await client.post(CLIENTS, json=_body(_pnr()), headers=auth("sthlm-stad", "handlaggare"))).json()[
        "id"
    ]
    for org in ("region-sthlm", "huddinge", "sis", "uppsala", "region-uppsala"):
        unrelated = assert_problem(
            await client.get(f"{CLIENTS}/{cid}", headers=auth(org, "handlaggare")), 404
        )
        missing = assert_problem(
            await client.get(f"{CLIENTS}/{uuid.uuid4()}", headers=auth(org, "handlaggare")), 404
        )
        assert unrelated["detail"] == missing["detail"]
    assert_problem(await client.get(f"{CLIENTS}/not-a-uuid", headers=auth("sthlm-stad", "handlaggare")), 422)


@pytest.mark.parametrize("role", NON_READER_ROLES)
async def test_roles_that_never_read_clients_get_404(client: httpx.AsyncClient, auth, role: str) -> None:
    cid = (await client.post(CLIENTS, json=_body(_pnr()), headers=auth("sthlm-stad", "handlaggare"))).json()[
        "id"
    ]
    assert_problem(await client.get(f"{CLIENTS}/{cid}", headers=_role(auth, "sthlm-stad", role)), 404)


async def test_a_consented_participant_sees_the_client_without_the_number(
    drv: PlanDriver, client: httpx.AsyncClient, auth
) -> None:
    pnr = _pnr(date(1980, 7, 7), 708)
    cid = (await drv.register_client("sthlm-stad", personal_number=pnr))["id"]
    region = auth("region-sthlm", "handlaggare")
    plan = await drv.create_plan("sthlm-stad", client_id=cid)
    await drv.add_participant(plan["id"], "region-sthlm")
    assert_problem(await client.get(f"{CLIENTS}/{cid}", headers=region), 404)  # no consent yet
    await drv.add_consent(plan["id"], ["sthlm-stad", "region-sthlm"])
    for role in ("handlaggare", "lasare"):
        r = await client.get(f"{CLIENTS}/{cid}", headers=auth("region-sthlm", role))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["known_to_caller"] is False
        assert body["personal_number"] is None
        assert body["birth_year"] == 1980
        assert (body["given_name"], body["family_name"]) == ("Kim", "Andersson")  # not protected
        _assert_absent(_response_text(r), pnr)
    # Cross-organisation: a participant the consent does not cover sees nothing.
    await drv.add_participant(plan["id"], "sis", kind="other")
    assert_problem(await client.get(f"{CLIENTS}/{cid}", headers=auth("sis", "handlaggare")), 404)


async def test_protected_identity_is_masked_for_orgs_that_see_the_client_only_via_a_plan(
    drv: PlanDriver, client: httpx.AsyncClient, auth
) -> None:
    pnr = _pnr(date(1993, 3, 3), 333)
    reg = await client.post(
        CLIENTS,
        json=_body(pnr, given_name="Sanna", family_name="Skyddsdottir", protected_identity=True),
        headers=auth("sthlm-stad", "handlaggare"),
    )
    assert reg.status_code == 201
    assert (reg.json()["given_name"], reg.json()["family_name"]) == ("Sanna", "Skyddsdottir")
    cid = reg.json()["id"]
    await _consented_plan(drv, cid)

    own = await client.get(f"{CLIENTS}/{cid}", headers=auth("sthlm-stad", "handlaggare"))
    assert own.status_code == 200
    assert (own.json()["given_name"], own.json()["family_name"]) == ("Sanna", "Skyddsdottir")
    assert own.json()["protected_identity"] is True and own.json()["personal_number"] == pnr

    region = auth("region-sthlm", "handlaggare")
    for r in (
        await client.get(f"{CLIENTS}/{cid}", headers=region),
        await client.post(SEARCH, json={"personal_number": pnr}, headers=region),
    ):
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["given_name"], body["family_name"]) == (MASKED_NAME, MASKED_NAME)
        assert body["protected_identity"] is True
        assert body["personal_number"] is None
        assert "Sanna" not in r.text and "Skyddsdottir" not in r.text


# ---- audit ----------------------------------------------------------------------------------


async def test_register_link_search_and_read_are_audited_without_the_number(
    drv: PlanDriver, client: httpx.AsyncClient, auth, orgs, session: AsyncSession
) -> None:
    pnr = _pnr(date(1971, 10, 10), 710)
    kommun = auth("sthlm-stad", "handlaggare", subject="hanna")
    region = auth("region-sthlm", "handlaggare", "lasare", subject="sam")
    cid = (await client.post(CLIENTS, json=_body(_ten(pnr)), headers=kommun)).json()["id"]
    assert (await client.post(SEARCH, json={"personal_number": pnr}, headers=kommun)).status_code == 200
    assert (await client.get(f"{CLIENTS}/{cid}", headers=kommun)).status_code == 200
    assert (await client.post(CLIENTS, json=_body(pnr), headers=region)).status_code == 200
    assert (await client.get(f"{CLIENTS}/{cid}", headers=region)).status_code == 200
    # A search that finds nothing is logged too, with no client and no number.
    miss = _pnr(date(1971, 10, 10), 711)
    assert (await client.post(SEARCH, json={"personal_number": miss}, headers=region)).status_code == 404

    events = await _audit(session, cid)
    seen = [(e.action, e.organisation_id, e.actor_subject) for e in events]
    kommun_id, region_id = orgs["sthlm-stad"].id, orgs["region-sthlm"].id
    assert ("client.register", kommun_id, "hanna") in seen
    assert ("client.search", kommun_id, "hanna") in seen
    assert ("client.read", kommun_id, "hanna") in seen
    assert ("client.link", region_id, "sam") in seen
    assert ("client.read", region_id, "sam") in seen
    assert [a for a, _, _ in seen].count("client.register") == 1
    for e in events:
        assert e.client_id == uuid.UUID(cid)
        assert e.object_type == "client" and e.object_id == cid
        assert e.actor_roles
    link = next(e for e in events if e.action == "client.link")
    assert link.actor_roles == "handlaggare,lasare"

    all_events = await _audit(session)
    misses = [e for e in all_events if e.action == "client.search.miss"]
    assert len(misses) == 1 and misses[0].client_id is None and misses[0].organisation_id == region_id

    # No audit row, in any column, holds the number (either the found or the missed one).
    rows = await _read(session, text("SELECT * FROM audit_event"))
    dump = "\n".join(repr(tuple(row)) for row in rows)
    assert cid.replace("-", "") in dump.replace("-", "")  # the dump does hold the events
    _assert_absent(dump, pnr)
    _assert_absent(dump, miss)


async def test_refused_and_invalid_requests_write_no_client_audit(
    client: httpx.AsyncClient, auth, session: AsyncSession
) -> None:
    before = {e.id for e in await _audit(session)}
    pnr = _pnr(date(1971, 10, 10), 712)
    assert (
        await client.post(CLIENTS, json=_body(pnr), headers=auth("sthlm-stad", "lasare"))
    ).status_code == 403
    assert (
        await client.post(CLIENTS, json=_body(pnr[:-1] + "Z"), headers=auth("sthlm-stad", "handlaggare"))
    ).status_code == 422
    after = await _audit(session)
    new = [e for e in after if e.id not in before]
    assert not [e for e in new if e.action in ("client.register", "client.link")]
