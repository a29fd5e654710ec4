"""Organisations, their units and trusted issuers over HTTP: who may do what, validation, paging."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.config import DEV_ISSUER
from app.db import SYSTEM, bind_tenant
from app.main import create_app
from app.models.identity import TrustedIssuer
from app.services.demo import DEMO_ORGS
from app.services.pagination import encode_cursor
from tests.conftest import assert_problem

ORGS = "/api/v1/organisations"
SOLNA = {"name": "Solna stad", "kind": "kommun", "org_number": "212000-0183", "county_code": "01"}
SKANE = {"name": "Region Skåne", "kind": "region", "org_number": "232100-0255", "county_code": "12"}
NON_ADMIN_ROLES = ["handlaggare", "samordnare", "lasare", "org_admin", "auditor", "system"]


async def system(session: AsyncSession) -> AsyncSession:
    """The test session shares its connection (and so its transaction-local settings) with the app;
    on PostgreSQL a request leaves its own tenant scope behind, so look again as the system."""
    await bind_tenant(session, SYSTEM)
    return session


async def count(session: AsyncSession, table: str) -> int:
    await system(session)
    return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608


def error_fields(body: dict[str, Any]) -> set[str]:
    """The last part of each `errors[].field` ("body.org_number" -> "org_number")."""
    errors = body.get("errors")
    assert isinstance(errors, list) and errors, body
    return {str(e["field"]).split(".")[-1] for e in errors}


async def walk(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any
) -> list[list[dict]]:
    """Every page of a cursor-paginated list."""
    pages: list[list[dict]] = []
    cursor: str | None = None
    for _ in range(100):
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        response = await client.get(url, headers=headers, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("pagination did not end")


# ------------------------------------------------------------------------------------ create


async def test_platform_admin_registers_an_organisation(client, auth, session) -> None:
    before = await count(session, "organisation")
    response = await client.post(ORGS, json=SOLNA, headers=auth("region-sthlm", "platform_admin"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "Solna stad"
    assert body["kind"] == "kommun"
    assert body["org_number"] == "2120000183"  # normalised: no dash, 10 digits
    assert body["county_code"] == "01"
    assert uuid.UUID(body["id"])
    assert body["created_at"]
    assert response.headers["location"] == f"{ORGS}/{body['id']}"
    assert await count(session, "organisation") == before + 1

    stored = (
        await (await system(session)).execute(
            text("SELECT org_number, kind FROM organisation WHERE name = :n"), {"n": "Solna stad"}
        )
    ).one()
    assert stored.org_number == "2120000183"

    # The Location answers with the same organisation, for any authenticated reader.
    again = await client.get(response.headers["location"], headers=auth("uppsala", "lasare"))
    assert again.status_code == 200, again.text
    assert again.json() == body


async def test_a_region_with_a_2321_number_is_accepted(client, auth) -> None:
    response = await client.post(ORGS, json=SKANE, headers=auth("region-sthlm", "platform_admin"))
    assert response.status_code == 201, response.text
    assert response.json()["org_number"] == "2321000255"
    assert response.json()["kind"] == "region"


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
async def test_other_roles_may_not_register_organisations(client, auth, session, role) -> None:
    before = await count(session, "organisation")
    response = await client.post(ORGS, json=SOLNA, headers=auth("region-sthlm", role))
    assert_problem(response, 403)
    assert await count(session, "organisation") == before


async def test_rss_and_combined_non_admin_roles_may_not_register(client, auth, session) -> None:
    before = await count(session, "organisation")
    assert_problem(await client.post(ORGS, json=SOLNA, headers=auth("region-sthlm", "rss", county="01")), 403)
    everything_but = auth("sthlm-stad", "org_admin", "handlaggare", "samordnare", "auditor")
    assert_problem(await client.post(ORGS, json=SOLNA, headers=everything_but), 403)
    assert await count(session, "organisation") == before


async def test_registering_needs_a_token(client, session) -> None:
    before = await count(session, "organisation")
    assert_problem(await client.post(ORGS, json=SOLNA), 401)
    assert_problem(await client.post(ORGS, json=SOLNA, headers={"Authorization": "Bearer nonsense"}), 401)
    assert await count(session, "organisation") == before


async def test_platform_admin_of_a_non_operator_org_is_refused(settings, database, token, session) -> None:
    # With an operator configured, platform_admin only counts from the operating organisation.
    app = create_app(settings.model_copy(update={"operator_org_number": "2321000016"}), database=database)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    before = await count(session, "organisation")
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://samplan.test") as c:
            outsider = {"Authorization": f"Bearer {token('sthlm-stad', 'platform_admin')}"}
            assert_problem(await c.post(ORGS, json=SOLNA, headers=outsider), 401)
            assert await count(session, "organisation") == before
            operator = {"Authorization": f"Bearer {token('region-sthlm', 'platform_admin')}"}
            assert (await c.post(ORGS, json=SOLNA, headers=operator)).status_code == 201
    finally:
        await app.state.http.aclose()
    assert await count(session, "organisation") == before + 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"org_number": "212000-0184"}, "org_number"),  # wrong Luhn check digit
        ({"org_number": "2120000"}, "org_number"),  # too short
        ({"org_number": "211000-0000"}, "org_number"),  # third digit below 2: not a legal entity
        ({"kind": "county"}, "kind"),
        ({"kind": ""}, "kind"),
        ({"county_code": "02"}, "county_code"),  # two digits, but no such län
        ({"county_code": "1"}, "county_code"),
        ({"county_code": "AB"}, "county_code"),
        ({"name": ""}, "name"),
        ({"colour": "blue"}, "colour"),  # unknown field
    ],
)
async def test_invalid_organisations_are_refused_with_the_field_named(
    client, auth, session, change, field
) -> None:
    before = await count(session, "organisation")
    response = await client.post(
        ORGS, json={**SOLNA, **change}, headers=auth("region-sthlm", "platform_admin")
    )
    body = assert_problem(response, 422)
    assert field in error_fields(body), body
    assert field in str(body["detail"])
    assert await count(session, "organisation") == before


async def test_missing_fields_are_all_listed(client, auth, session) -> None:
    before = await count(session, "organisation")
    response = await client.post(ORGS, json={}, headers=auth("region-sthlm", "platform_admin"))
    body = assert_problem(response, 422)
    assert {"name", "kind", "org_number", "county_code"} <= error_fields(body)
    assert await count(session, "organisation") == before


async def test_a_region_needs_a_2321_number(client, auth, session) -> None:
    before = await count(session, "organisation")
    not_a_region_number = {**SKANE, "org_number": "212000-0183"}  # a valid kommun number
    response = await client.post(
        ORGS, json=not_a_region_number, headers=auth("region-sthlm", "platform_admin")
    )
    body = assert_problem(response, 422)
    assert "org_number" in error_fields(body)
    assert "2321" in str(body["detail"])
    assert await count(session, "organisation") == before


@pytest.mark.parametrize("number", ["232100-0016", "2321000016", " 232100-0016 "])
async def test_a_registered_org_number_conflicts_in_any_spelling(client, auth, session, orgs, number) -> None:
    before = await count(session, "organisation")
    payload = {"name": "Region Stockholm igen", "kind": "region", "org_number": number, "county_code": "01"}
    response = await client.post(ORGS, json=payload, headers=auth("region-sthlm", "platform_admin"))
    body = assert_problem(response, 409)
    assert body["existing_id"] == str(orgs["region-sthlm"].id)
    assert await count(session, "organisation") == before


async def test_the_second_of_two_identical_registrations_conflicts(client, auth, session) -> None:
    admin = auth("region-sthlm", "platform_admin")
    before = await count(session, "organisation")
    first = await client.post(ORGS, json=SOLNA, headers=admin)
    assert first.status_code == 201, first.text
    second = await client.post(ORGS, json={**SOLNA, "org_number": "2120000183"}, headers=admin)
    body = assert_problem(second, 409)
    assert body["existing_id"] == first.json()["id"]
    assert await count(session, "organisation") == before + 1


# -------------------------------------------------------------------------------------- list


@pytest.mark.parametrize(
    ("org_key", "roles"),
    [
        ("sthlm-stad", ("handlaggare",)),
        ("huddinge", ("handlaggare",)),
        ("sthlm-stad", ("lasare",)),
        ("sthlm-stad", ("auditor",)),
        ("sthlm-stad", ("system",)),
        ("uppsala", ("handlaggare",)),
        ("region-sthlm", ("platform_admin",)),
    ],
)
async def test_any_authenticated_role_reads_the_register(client, auth, orgs, org_key, roles) -> None:
    response = await client.get(ORGS, headers=auth(org_key, *roles))
    assert response.status_code == 200, response.text
    ids = {item["id"] for item in response.json()["items"]}
    assert {str(o.id) for o in orgs.values()} <= ids


async def test_rss_reads_the_register(client, auth, orgs) -> None:
    response = await client.get(ORGS, headers=auth("region-sthlm", "rss", county="01"))
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == len(orgs)


async def test_the_register_needs_a_token(client) -> None:
    assert_problem(await client.get(ORGS), 401)
    assert_problem(await client.get(f"{ORGS}/{uuid.uuid4()}"), 401)


async def test_cursor_pagination_walks_every_organisation_once_in_name_order(client, auth, session) -> None:
    rows = (await (await system(session)).execute(text("SELECT id, name FROM organisation"))).all()
    assert len(rows) >= len(DEMO_ORGS)
    pages = await walk(client, ORGS, auth("huddinge", "lasare"), limit=2)
    assert all(len(page) == 2 for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= 2
    items = [item for page in pages for item in page]
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == len(rows)
    assert set(ids) == {str(uuid.UUID(str(r.id))) for r in rows}
    names = [item["name"] for item in items]
    assert names == sorted(names)
    assert set(names) >= {o.name for o in DEMO_ORGS}


async def test_pagination_breaks_ties_on_equal_names(client, auth, session) -> None:
    admin = auth("region-sthlm", "platform_admin")
    twins = [("212000-0183", "01"), ("212000-0167", "01"), ("212000-9994", "01")]
    for number, county in twins:
        payload = {"name": "Aaa kommun", "kind": "kommun", "org_number": number, "county_code": county}
        assert (await client.post(ORGS, json=payload, headers=admin)).status_code == 201
    total = await count(session, "organisation")
    for limit in (1, 2, 4):
        items = [i for page in await walk(client, ORGS, admin, limit=limit) for i in page]
        ids = [i["id"] for i in items]
        assert len(ids) == len(set(ids)) == total, limit
        assert [i["name"] for i in items[:3]] == ["Aaa kommun"] * 3


async def test_a_full_page_without_more_rows_has_no_next_cursor(client, auth, session) -> None:
    total = await count(session, "organisation")
    body = (await client.get(ORGS, params={"limit": total}, headers=auth("sis", "lasare"))).json()
    assert len(body["items"]) == total
    assert body["next_cursor"] is None
    body = (await client.get(ORGS, params={"limit": total - 1}, headers=auth("sis", "lasare"))).json()
    assert len(body["items"]) == total - 1
    assert body["next_cursor"]


@pytest.mark.parametrize("limit", ["0", "201", "-1", "many"])
async def test_out_of_range_limits_are_refused(client, auth, limit) -> None:
    body = assert_problem(await client.get(ORGS, params={"limit": limit}, headers=auth("sis", "lasare")), 422)
    assert "limit" in error_fields(body)


async def test_limit_200_is_the_maximum_allowed(client, auth) -> None:
    assert (await client.get(ORGS, params={"limit": 200}, headers=auth("sis", "lasare"))).status_code == 200


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "not-a-cursor",
        encode_cursor(["only one value"]),
        encode_cursor(["Huddinge kommun", "not-a-uuid"]),
        "W3sieCI6IDF9LCAyXQ",  # base64 of [{"x": 1}, 2]
        "_-_-",
    ],
)
async def test_a_cursor_this_service_did_not_issue_is_a_400(client, auth, cursor) -> None:
    response = await client.get(ORGS, params={"cursor": cursor}, headers=auth("sis", "lasare"))
    body = assert_problem(response, 400)
    assert "cursor" in str(body["detail"])


async def test_filter_by_kind(client, auth, orgs) -> None:
    headers = auth("sthlm-stad", "handlaggare")
    regions = (await client.get(ORGS, params={"kind": "region"}, headers=headers)).json()["items"]
    assert {i["id"] for i in regions} == {str(orgs["region-sthlm"].id), str(orgs["region-uppsala"].id)}
    assert {i["kind"] for i in regions} == {"region"}
    state = (await client.get(ORGS, params={"kind": "state"}, headers=headers)).json()["items"]
    assert [i["id"] for i in state] == [str(orgs["sis"].id)]
    assert_problem(await client.get(ORGS, params={"kind": "county"}, headers=headers), 422)


async def test_filter_by_county_and_by_both(client, auth, orgs) -> None:
    headers = auth("sthlm-stad", "handlaggare")
    uppsala = (await client.get(ORGS, params={"county_code": "03"}, headers=headers)).json()["items"]
    assert {i["id"] for i in uppsala} == {str(orgs["uppsala"].id), str(orgs["region-uppsala"].id)}
    kommuner_01 = (
        await client.get(ORGS, params={"county_code": "01", "kind": "kommun"}, headers=headers)
    ).json()["items"]
    assert [i["name"] for i in kommuner_01] == ["Huddinge kommun", "Stockholms stad"]
    empty = await client.get(ORGS, params={"county_code": "25"}, headers=headers)
    assert empty.status_code == 200
    assert empty.json() == {"items": [], "next_cursor": None}
    body = assert_problem(await client.get(ORGS, params={"county_code": "99"}, headers=headers), 422)
    assert "county_code" in error_fields(body)


async def test_filters_and_cursor_together(client, auth, orgs) -> None:
    headers = auth("sthlm-stad", "handlaggare")
    pages = await walk(client, ORGS, headers, limit=1, county_code="01")
    ids = [i["id"] for page in pages for i in page]
    expected = {str(o.id) for o in orgs.values() if o.county_code == "01"}
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected


# --------------------------------------------------------------------------------------- one


async def test_get_one_organisation(client, auth, orgs) -> None:
    sis = orgs["sis"]
    response = await client.get(f"{ORGS}/{sis.id}", headers=auth("uppsala", "handlaggare"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(sis.id)
    assert body["name"] == "Statens institutionsstyrelse"
    assert body["kind"] == "state"
    assert body["org_number"] == "2021005489"
    assert body["county_code"] == "01"


async def test_get_an_unknown_organisation_is_a_404(client, auth) -> None:
    body = assert_problem(await client.get(f"{ORGS}/{uuid.uuid4()}", headers=auth("sis", "lasare")), 404)
    assert "organisation" in str(body["detail"])


@pytest.mark.parametrize("bad", ["not-a-uuid", "123", "2120000142"])
async def test_get_with_a_non_uuid_is_a_422(client, auth, bad) -> None:
    body = assert_problem(await client.get(f"{ORGS}/{bad}", headers=auth("sis", "lasare")), 422)
    assert "organisation_id" in error_fields(body)


# ------------------------------------------------------------------------------------- units


def units_url(org_id: uuid.UUID | str) -> str:
    return f"{ORGS}/{org_id}/units"


async def test_org_admin_adds_a_unit_to_their_own_organisation(client, auth, orgs, session) -> None:
    region = orgs["region-sthlm"]
    before = await count(session, "unit")
    payload = {"name": "Mottagning Norr", "hsa_id": "SE2321000016-ABC1"}
    response = await client.post(
        units_url(region.id), json=payload, headers=auth("region-sthlm", "org_admin")
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "Mottagning Norr"
    assert body["hsa_id"] == "SE2321000016-ABC1"
    assert body["organisation_id"] == str(region.id)
    assert response.headers["location"] == f"{units_url(region.id)}/{body['id']}"
    assert await count(session, "unit") == before + 1

    listed = await client.get(units_url(region.id), headers=auth("region-sthlm", "handlaggare"))
    assert body["id"] in {u["id"] for u in listed.json()["items"]}


async def test_a_unit_without_hsa_id(client, auth, orgs) -> None:
    response = await client.post(
        units_url(orgs["huddinge"].id),
        json={"name": "Mottagningsenheten"},
        headers=auth("huddinge", "org_admin"),
    )
    assert response.status_code == 201, response.text
    assert response.json()["hsa_id"] is None


@pytest.mark.parametrize(
    ("org_key", "roles"),
    [
        ("sthlm-stad", ("org_admin",)),  # an org_admin, but of another organisation
        ("region-uppsala", ("org_admin",)),
        ("region-sthlm", ("handlaggare",)),  # the same organisation, but not an org_admin
        ("region-sthlm", ("samordnare", "lasare", "auditor")),
        ("region-sthlm", ("platform_admin",)),
        ("sthlm-stad", ("platform_admin",)),
    ],
)
async def test_only_the_organisations_own_org_admin_adds_units(
    client, auth, orgs, session, org_key, roles
) -> None:
    before = await count(session, "unit")
    payload = {"name": "Smygenheten", "hsa_id": "SE2321000016-SMYG"}
    response = await client.post(
        units_url(orgs["region-sthlm"].id), json=payload, headers=auth(org_key, *roles)
    )
    assert_problem(response, 403)
    assert await count(session, "unit") == before


@pytest.mark.parametrize(
    "hsa_id",
    [
        "SE1234-x",
        "SE2321000016-",  # no suffix
        "SE2321000016ABC1",  # no dash
        "se2321000016-ABC1",  # the prefix is upper case
        "DK2321000016-ABC1",
        "SE2321000017-ABC1",  # the organisationsnummer fails its check digit
        "SE2321000016-ABC_1",  # the suffix is letters and digits only
        "SE2321000016-" + "A" * 19,  # 32 characters
    ],
)
async def test_invalid_hsa_ids_are_refused(client, auth, orgs, session, hsa_id) -> None:
    before = await count(session, "unit")
    response = await client.post(
        units_url(orgs["region-sthlm"].id),
        json={"name": "Ny enhet", "hsa_id": hsa_id},
        headers=auth("region-sthlm", "org_admin"),
    )
    body = assert_problem(response, 422)
    assert "hsa_id" in error_fields(body)
    assert hsa_id not in response.text  # the input is not echoed
    assert await count(session, "unit") == before


async def test_a_31_character_hsa_id_is_accepted(client, auth, orgs) -> None:
    hsa_id = "SE2321000016-" + "A" * 18
    assert len(hsa_id) == 31
    response = await client.post(
        units_url(orgs["region-sthlm"].id),
        json={"name": "Lång enhet", "hsa_id": hsa_id},
        headers=auth("region-sthlm", "org_admin"),
    )
    assert response.status_code == 201, response.text


async def test_unit_with_unknown_field_or_no_name_is_refused(client, auth, orgs) -> None:
    url = units_url(orgs["region-sthlm"].id)
    headers = auth("region-sthlm", "org_admin")
    assert "colour" in error_fields(
        assert_problem(await client.post(url, json={"name": "X", "colour": 1}, headers=headers), 422)
    )
    assert "name" in error_fields(
        assert_problem(await client.post(url, json={"name": ""}, headers=headers), 422)
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "Beroendecentrum Stockholm"},  # a demo unit's name
        {"name": "Helt ny enhet", "hsa_id": "SE2321000016-BCS1"},  # a demo unit's HSA-id
    ],
)
async def test_duplicate_unit_name_or_hsa_id_conflicts(client, auth, orgs, session, payload) -> None:
    before = await count(session, "unit")
    response = await client.post(
        units_url(orgs["region-sthlm"].id), json=payload, headers=auth("region-sthlm", "org_admin")
    )
    assert_problem(response, 409)
    assert await count(session, "unit") == before


async def test_an_hsa_id_of_another_organisations_unit_conflicts(client, auth, orgs, session) -> None:
    # The other organisation's unit is invisible to the caller (RLS on PostgreSQL); still a 409.
    before = await count(session, "unit")
    response = await client.post(
        units_url(orgs["sthlm-stad"].id),
        json={"name": "Kopierad enhet", "hsa_id": "SE2021005489-HORN"},
        headers=auth("sthlm-stad", "org_admin"),
    )
    assert_problem(response, 409)
    assert await count(session, "unit") == before
    # The same request works again afterwards with a fresh HSA-id: the failed one left nothing behind.
    ok = await client.post(
        units_url(orgs["sthlm-stad"].id),
        json={"name": "Kopierad enhet", "hsa_id": "SE2120000142-KOP1"},
        headers=auth("sthlm-stad", "org_admin"),
    )
    assert ok.status_code == 201, ok.text


async def test_the_same_unit_name_in_two_organisations_is_fine(client, auth, orgs) -> None:
    payload = {"name": "Socialtjänsten, vuxenenheten"}  # Huddinge has one
    response = await client.post(
        units_url(orgs["sthlm-stad"].id), json=payload, headers=auth("sthlm-stad", "org_admin")
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("roles", [("handlaggare",), ("lasare",), ("org_admin",), ("auditor",)])
async def test_own_staff_list_their_units(client, auth, orgs, roles) -> None:
    response = await client.get(units_url(orgs["sis"].id), headers=auth("sis", *roles))
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [u["name"] for u in items] == ["LVM-hemmet Hornö", "LVM-hemmet Lunden"]
    assert {u["hsa_id"] for u in items} == {"SE2021005489-HORN", "SE2021005489-LUND"}
    assert {u["organisation_id"] for u in items} == {str(orgs["sis"].id)}


@pytest.mark.parametrize(
    ("org_key", "roles"),
    [
        ("sthlm-stad", ("handlaggare",)),
        ("region-sthlm", ("org_admin",)),
        ("region-uppsala", ("handlaggare",)),
        ("region-sthlm", ("platform_admin",)),
    ],
)
async def test_another_organisations_staff_may_not_list_units(client, auth, orgs, org_key, roles) -> None:
    response = await client.get(units_url(orgs["sis"].id), headers=auth(org_key, *roles))
    body = assert_problem(response, 403)
    assert "LVM-hemmet" not in response.text
    assert "items" not in body


async def test_units_paginate(client, auth, orgs) -> None:
    pages = await walk(client, units_url(orgs["region-sthlm"].id), auth("region-sthlm", "lasare"), limit=1)
    names = [u["name"] for page in pages for u in page]
    assert names == ["Beroendecentrum Stockholm", "Psykiatri Södra"]
    assert_problem(
        await client.get(
            units_url(orgs["region-sthlm"].id),
            params={"cursor": "xx"},
            headers=auth("region-sthlm", "lasare"),
        ),
        400,
    )


async def test_units_of_an_unknown_organisation_are_a_404(client, auth) -> None:
    unknown = units_url(uuid.uuid4())
    assert_problem(await client.get(unknown, headers=auth("sis", "org_admin")), 404)
    assert_problem(await client.post(unknown, json={"name": "X"}, headers=auth("sis", "org_admin")), 404)
    assert_problem(await client.get(units_url("nope"), headers=auth("sis", "org_admin")), 422)


# ---------------------------------------------------------------------------- trusted issuers


def issuers_url(org_id: uuid.UUID | str) -> str:
    return f"{ORGS}/{org_id}/issuers"


STHLM_IDP = {
    "issuer": "https://idp.stockholm.se/realms/personal",
    "jwks_url": "https://idp.stockholm.se/realms/personal/certs",
}


async def test_platform_admin_trusts_an_issuer_and_lists_it(client, auth, orgs, session) -> None:
    stad = orgs["sthlm-stad"]
    admin = auth("region-sthlm", "platform_admin")
    response = await client.post(issuers_url(stad.id), json=STHLM_IDP, headers=admin)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["issuer"] == STHLM_IDP["issuer"]
    assert body["jwks_url"] == STHLM_IDP["jwks_url"]
    assert body["audience"] == "samplan"
    assert body["organisation_id"] == str(stad.id)

    row = await (await system(session)).get(TrustedIssuer, uuid.UUID(body["id"]))
    assert row is not None
    assert row.organisation_id == stad.id
    assert row.jwks_url == STHLM_IDP["jwks_url"]

    listed = await client.get(issuers_url(stad.id), headers=admin)
    assert listed.status_code == 200, listed.text
    assert [i["id"] for i in listed.json()] == [body["id"]]
    # Another organisation's list does not show it.
    other = await client.get(issuers_url(orgs["huddinge"].id), headers=admin)
    assert other.status_code == 200
    assert other.json() == []


async def test_an_issuer_with_its_own_audience(client, auth, orgs) -> None:
    payload = {**STHLM_IDP, "audience": "samplan-prod"}
    response = await client.post(
        issuers_url(orgs["sis"].id), json=payload, headers=auth("region-sthlm", "platform_admin")
    )
    assert response.status_code == 201, response.text
    assert response.json()["audience"] == "samplan-prod"


@pytest.mark.parametrize(
    "jwks_url", ["http://idp.stockholm.se/certs", "ftp://idp.stockholm.se/certs", "not a url", ""]
)
async def test_the_jwks_url_must_be_https(client, auth, orgs, session, jwks_url) -> None:
    before = await count(session, "trusted_issuer")
    response = await client.post(
        issuers_url(orgs["sthlm-stad"].id),
        json={**STHLM_IDP, "jwks_url": jwks_url},
        headers=auth("region-sthlm", "platform_admin"),
    )
    body = assert_problem(response, 422)
    assert "jwks_url" in error_fields(body)
    assert await count(session, "trusted_issuer") == before


async def test_the_dev_issuer_cannot_be_registered(client, auth, orgs, session) -> None:
    before = await count(session, "trusted_issuer")
    response = await client.post(
        issuers_url(orgs["sthlm-stad"].id),
        json={**STHLM_IDP, "issuer": DEV_ISSUER},
        headers=auth("region-sthlm", "platform_admin"),
    )
    assert_problem(response, 422)
    assert await count(session, "trusted_issuer") == before


@pytest.mark.parametrize(
    ("org_key", "roles"),
    [
        ("sthlm-stad", ("org_admin",)),  # the organisation's own admin
        ("sthlm-stad", ("handlaggare",)),
        ("region-sthlm", ("org_admin", "auditor", "system")),
        ("region-sthlm", ("rss",)),
    ],
)
async def test_only_platform_admin_manages_issuers(client, auth, orgs, session, org_key, roles) -> None:
    before = await count(session, "trusted_issuer")
    headers = auth(org_key, *roles, county="01" if "rss" in roles else None)
    url = issuers_url(orgs["sthlm-stad"].id)
    assert_problem(await client.post(url, json=STHLM_IDP, headers=headers), 403)
    assert_problem(await client.get(url, headers=headers), 403)
    assert await count(session, "trusted_issuer") == before


async def test_the_same_issuer_twice_conflicts(client, auth, orgs, session) -> None:
    admin = auth("region-sthlm", "platform_admin")
    url = issuers_url(orgs["sthlm-stad"].id)
    assert (await client.post(url, json=STHLM_IDP, headers=admin)).status_code == 201
    before = await count(session, "trusted_issuer")
    assert_problem(await client.post(url, json=STHLM_IDP, headers=admin), 409)
    assert await count(session, "trusted_issuer") == before
    # The same issuer may be trusted for another organisation.
    other = await client.post(issuers_url(orgs["huddinge"].id), json=STHLM_IDP, headers=admin)
    assert other.status_code == 201, other.text


async def test_issuers_of_an_unknown_organisation_are_a_404(client, auth) -> None:
    admin = auth("region-sthlm", "platform_admin")
    assert_problem(await client.post(issuers_url(uuid.uuid4()), json=STHLM_IDP, headers=admin), 404)
    assert_problem(await client.get(issuers_url(uuid.uuid4()), headers=admin), 404)


# ------------------------------------------------------------------------ commit before 2xx


async def test_the_organisation_is_committed_before_the_201_is_sent(fresh_database) -> None:
    """Watch the response start on the wire: at that moment a separate connection (the schema
    owner's) must already see the row, so a client that got 201 can never lose the write."""
    settings = fresh_database.settings()
    app = create_app(settings)
    observer = create_async_engine(fresh_database.owner_url)
    seen_at_response_start: list[int] = []

    async def rows_with_solna() -> int:
        async with observer.connect() as conn:
            result = await conn.execute(
                text("SELECT count(*) FROM organisation WHERE org_number = '2120000183'")
            )
            return int(result.scalar_one())

    async def watching_app(scope: Any, receive: Any, send: Any) -> None:
        async def watching_send(message: Any) -> None:
            if message["type"] == "http.response.start" and scope["method"] == "POST":
                seen_at_response_start.append(await rows_with_solna())
            await send(message)

        await app(scope, receive, watching_send)

    admin = {
        "Authorization": "Bearer "
        + app.state.dev_issuer.mint(org_number="2321000016", roles=["platform_admin"])
    }
    try:
        assert await rows_with_solna() == 0
        transport = httpx.ASGITransport(app=watching_app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://samplan.test") as c:
            response = await c.post(ORGS, json=SOLNA, headers=admin)
            assert response.status_code == 201, response.text
            assert seen_at_response_start == [1]
            assert await rows_with_solna() == 1
            # and the refusal that follows commits nothing
            assert_problem(await c.post(ORGS, json=SOLNA, headers=admin), 409)
            assert seen_at_response_start == [1, 1]
        async with observer.connect() as conn:
            # the audit event was committed with it
            events = await conn.execute(
                text("SELECT count(*) FROM audit_event WHERE action = 'organisation.create'")
            )
            assert events.scalar_one() == 1
    finally:
        await observer.dispose()
        await app.state.http.aclose()
        await app.state.db.dispose()
