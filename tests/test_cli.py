"""The `samplan` command line: dev-token, migrate, audit verify, and the prod refusals."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.cli import build_parser, main
from app.config import DEFAULT_AUDIT_PEPPER, ConfigError, Settings, get_settings
from app.main import create_app
from app.services.demo import DEMO_ORGS
from tests.conftest import BACKEND, create_pg_database, drop_pg_database

REPO = Path(__file__).resolve().parent.parent
SAMPLAN = REPO / ".venv" / "bin" / "samplan"
PEPPER = "p" * 40


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A clean SAMPLAN_* environment for main(), and a fresh get_settings() before and after."""
    for name in list(os.environ):
        if name.startswith("SAMPLAN_") and not name.startswith("SAMPLAN_TEST_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def use_database(env: pytest.MonkeyPatch, data_dir: Path, app_url: str, owner_url: str) -> None:
    env.setenv("SAMPLAN_DATA_DIR", str(data_dir))
    env.setenv("SAMPLAN_DATABASE_URL", app_url)
    env.setenv("SAMPLAN_MIGRATION_DATABASE_URL", owner_url)


def last_line(out: str) -> str:
    lines = out.rstrip("\n").split("\n")
    return lines[-1]


# --------------------------------------------------------------------------------- dev-token


async def test_dev_token_prints_a_token_the_app_accepts(cli_env, settings, client, capsys, orgs) -> None:
    cli_env.setenv("SAMPLAN_DATA_DIR", str(settings.data_dir))  # the same key as the app under test
    assert main(["dev-token", "--org", "212000-0142", "--role", "handlaggare"]) == 0
    out = capsys.readouterr().out
    token = last_line(out)
    assert token.count(".") == 2 and " " not in token
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    me = response.json()
    assert me["org_number"] == "2120000142"
    assert me["organisation_id"] == str(orgs["sthlm-stad"].id)
    assert me["roles"] == ["handlaggare"]


async def test_dev_token_options(cli_env, settings, client, capsys) -> None:
    cli_env.setenv("SAMPLAN_DATA_DIR", str(settings.data_dir))
    argv = ["dev-token", "--org", "2321000016", "--role", "rss", "--role", "samordnare"]
    assert main([*argv, "--county", "01", "--user", "kalle-1", "--name", "Kalle"]) == 0
    token = last_line(capsys.readouterr().out)
    me = (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["subject"] == "kalle-1"
    assert me["name"] == "Kalle"
    assert me["county"] == "01"
    assert sorted(me["roles"]) == ["rss", "samordnare"]


async def test_an_expired_dev_token_is_refused(cli_env, settings, client, capsys) -> None:
    cli_env.setenv("SAMPLAN_DATA_DIR", str(settings.data_dir))
    assert main(["dev-token", "--org", "212000-0142", "--role", "lasare", "--ttl", "-3600"]) == 0
    token = last_line(capsys.readouterr().out)
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_the_installed_command_prints_the_token_on_its_last_line(cli_env, settings, client) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMPLAN_")}
    env["SAMPLAN_DATA_DIR"] = str(settings.data_dir)
    result = await asyncio.to_thread(
        subprocess.run,
        [str(SAMPLAN), "dev-token", "--org", "212000-0142", "--role", "handlaggare"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    token = last_line(result.stdout)  # what `| tail -n1` in the README takes
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json()["org_number"] == "2120000142"


@pytest.mark.parametrize("org", ["212000-0143", "212000014", "Stockholms stad", "2120000142x", ""])
def test_dev_token_with_an_invalid_org_exits_2(cli_env, tmp_path, capsys, org) -> None:
    cli_env.setenv("SAMPLAN_DATA_DIR", str(tmp_path))
    assert main(["dev-token", "--org", org, "--role", "handlaggare"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--org" in captured.err
    assert "Traceback" not in captured.err


def test_dev_token_needs_org_and_role(cli_env, tmp_path, capsys) -> None:
    cli_env.setenv("SAMPLAN_DATA_DIR", str(tmp_path))
    for argv in (["dev-token", "--role", "handlaggare"], ["dev-token", "--org", "212000-0142"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert capsys.readouterr().out == ""


def test_dev_token_refuses_without_the_dev_issuer(cli_env, tmp_path, capsys) -> None:
    cli_env.setenv("SAMPLAN_DATA_DIR", str(tmp_path))
    cli_env.setenv("SAMPLAN_DEV_ISSUER_ENABLED", "false")
    assert main(["dev-token", "--org", "212000-0142", "--role", "handlaggare"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "dev" in captured.err
    assert not (tmp_path / "dev-issuer-key.pem").exists()


# ------------------------------------------------------------------------------ prod refusals


def safe_prod(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "prod",
        "dev_issuer_enabled": False,
        "audit_pepper": PEPPER,
        "operator_org_number": "232100-0016",
        "database_url": "postgresql+asyncpg://samplan_app@db.example/samplan",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_a_safe_prod_configuration_passes(cli_env) -> None:
    safe_prod().check_safe_for_env()


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"dev_issuer_enabled": True}, "SAMPLAN_DEV_ISSUER_ENABLED"),
        ({"audit_pepper": DEFAULT_AUDIT_PEPPER}, "SAMPLAN_AUDIT_PEPPER"),
        ({"audit_pepper": "short-but-not-default"}, "SAMPLAN_AUDIT_PEPPER"),
        ({"operator_org_number": ""}, "SAMPLAN_OPERATOR_ORG_NUMBER"),
        ({"database_url": ""}, "SAMPLAN_DATABASE_URL"),  # the default: SQLite in the data folder
        ({"database_url": "sqlite+aiosqlite:////var/lib/samplan/samplan.db"}, "SAMPLAN_DATABASE_URL"),
    ],
)
def test_prod_refuses_unsafe_settings_in_one_line(cli_env, overrides, names) -> None:
    settings = safe_prod(**overrides)
    with pytest.raises(ConfigError) as exc:
        settings.check_safe_for_env()
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("refusing to start")
    assert names in message
    with pytest.raises(ConfigError):
        create_app(settings)


def test_dev_allows_the_dev_defaults(cli_env, tmp_path) -> None:
    settings = Settings(env="dev", data_dir=tmp_path)
    assert settings.is_sqlite
    assert settings.dev_issuer_enabled
    settings.check_safe_for_env()


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_an_invalid_operator_org_number_is_refused_at_start(cli_env, tmp_path, env) -> None:
    # Otherwise every platform_admin request would fail later, at authentication.
    settings = safe_prod(env=env, operator_org_number="Region Stockholm", data_dir=tmp_path)
    with pytest.raises(ConfigError) as exc:
        settings.check_safe_for_env()
    assert "\n" not in str(exc.value)
    assert "SAMPLAN_OPERATOR_ORG_NUMBER" in str(exc.value)


@pytest.mark.parametrize("command", [["migrate"], ["demo"], ["audit", "verify"], ["serve", "--port", "1"]])
def test_main_refuses_prod_with_sqlite_before_touching_anything(cli_env, tmp_path, capsys, command) -> None:
    cli_env.setenv("SAMPLAN_ENV", "prod")
    cli_env.setenv("SAMPLAN_DEV_ISSUER_ENABLED", "false")
    cli_env.setenv("SAMPLAN_AUDIT_PEPPER", PEPPER)
    cli_env.setenv("SAMPLAN_OPERATOR_ORG_NUMBER", "2321000016")
    cli_env.setenv("SAMPLAN_DATA_DIR", str(tmp_path / "data"))
    assert main(command) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("refusing to start")
    assert "PostgreSQL" in captured.err
    assert not (tmp_path / "data").exists()


def test_main_refuses_prod_with_the_dev_issuer(cli_env, tmp_path, capsys) -> None:
    cli_env.setenv("SAMPLAN_ENV", "prod")
    cli_env.setenv("SAMPLAN_DATA_DIR", str(tmp_path))
    assert main(["dev-token", "--org", "212000-0142", "--role", "handlaggare"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().count("\n") == 0
    assert "SAMPLAN_DEV_ISSUER_ENABLED" in captured.err
    assert not (tmp_path / "dev-issuer-key.pem").exists()


# ---------------------------------------------------------------------------------- migrate


@pytest.fixture
async def empty_database(tmp_path: Path) -> tuple[str, str]:
    """An empty database: (app URL, owner URL)."""
    if BACKEND == "sqlite":
        url = f"sqlite+aiosqlite:///{(tmp_path / 'new.db').as_posix()}"
        yield url, url
        return
    name = f"samplan_cli_{uuid.uuid4().hex[:12]}"
    await create_pg_database(name)
    owner = f"postgresql+asyncpg://postgres@127.0.0.1:{os.environ.get('SAMPLAN_TEST_PG_PORT', '5432')}/{name}"
    yield owner, owner
    await drop_pg_database(name)


async def table_names(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_migrate_creates_the_schema_and_is_repeatable(
    cli_env, tmp_path, empty_database, capsys
) -> None:
    app_url, owner_url = empty_database
    use_database(cli_env, tmp_path / "data", app_url, owner_url)
    assert await table_names(owner_url) == set()
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    assert "newest migration" in capsys.readouterr().out
    tables = await table_names(owner_url)
    assert {"organisation", "unit", "app_user", "trusted_issuer", "audit_event", "alembic_version"} <= tables
    # a second run changes nothing and still succeeds
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    assert await table_names(owner_url) == tables


async def test_demo_loads_the_demo_organisations_once(cli_env, tmp_path, empty_database, capsys) -> None:
    _, owner_url = empty_database
    use_database(cli_env, tmp_path / "data", owner_url, owner_url)
    for _ in range(2):
        assert await asyncio.to_thread(main, ["demo"]) == 0
        out = capsys.readouterr().out
        assert out.count("\n# ") >= 10
    engine = create_async_engine(owner_url)
    try:
        async with engine.connect() as conn:
            numbers = (await conn.execute(text("SELECT org_number FROM organisation"))).scalars().all()
    finally:
        await engine.dispose()
    assert sorted(numbers) == sorted(o.org_number for o in DEMO_ORGS)


# ----------------------------------------------------------------------------- audit verify


async def _make_audit_events(fresh_database) -> None:
    app = create_app(fresh_database.settings())
    admin = {
        "Authorization": "Bearer "
        + app.state.dev_issuer.mint(org_number="2321000016", roles=["platform_admin", "org_admin"])
    }
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://samplan.test") as c:
            payload = {
                "name": "Solna stad",
                "kind": "kommun",
                "org_number": "212000-0183",
                "county_code": "01",
            }
            assert (await c.post("/api/v1/organisations", json=payload, headers=admin)).status_code == 201
            region = (await c.get("/api/v1/me", headers=admin)).json()["organisation_id"]
            unit = await c.post(f"/api/v1/organisations/{region}/units", json={"name": "Ny"}, headers=admin)
            assert unit.status_code == 201, unit.text
    finally:
        await app.state.http.aclose()
        await app.state.db.dispose()


async def test_audit_verify_on_a_clean_database(cli_env, fresh_database, capsys) -> None:
    use_database(cli_env, fresh_database.tmp / "data", fresh_database.app_url, fresh_database.owner_url)
    assert await asyncio.to_thread(main, ["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert f"{len(DEMO_ORGS)} chains, 0 broken" in out
    assert "BROKEN" not in out
    for org in DEMO_ORGS:
        assert f"ok      {org.name}: 0 events" in out


async def test_audit_verify_walks_real_events_and_fails_with_the_wrong_pepper(
    cli_env, fresh_database, capsys
) -> None:
    await _make_audit_events(fresh_database)
    use_database(cli_env, fresh_database.tmp / "data", fresh_database.app_url, fresh_database.owner_url)
    assert await asyncio.to_thread(main, ["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "ok      Region Stockholm: 2 events" in out
    assert f"{len(DEMO_ORGS) + 1} chains, 0 broken" in out  # Solna is registered now

    # The same chain verified with another pepper no longer adds up: exit 1, the first link named.
    cli_env.setenv("SAMPLAN_AUDIT_PEPPER", "a-different-pepper")
    get_settings.cache_clear()
    assert await asyncio.to_thread(main, ["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "BROKEN  Region Stockholm: first broken link at seq 1" in out
    assert "1 broken" in out


def test_every_documented_command_parses() -> None:
    parser = build_parser()
    for argv in (
        ["serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2", "--demo"],  # noqa: S104
        ["migrate"],
        ["demo"],
        ["dev-token", "--org", "212000-0142", "--role", "handlaggare", "--role", "lasare", "--county", "01"],
        ["audit", "verify"],
    ):
        parser.parse_args(argv)
    with pytest.raises(SystemExit):
        parser.parse_args([])
