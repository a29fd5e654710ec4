"""`samplan` command line: serve, migrate, demo, dev-token, worker, audit verify."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from alembic.config import Config

from alembic import command
from app.config import ConfigError, Settings, get_settings

_ROOT = Path(__file__).resolve().parent.parent


def _migrations_dir() -> Path:
    # Beside the source tree in a checkout; beside the working directory in the Docker image,
    # where the package itself lives in site-packages.
    for candidate in (_ROOT / "alembic", Path.cwd() / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise SystemExit("cannot find the alembic/ migrations folder")


def alembic_config(url: str, settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_migrations_dir()))
    cfg.attributes["url"] = url
    cfg.attributes["app_role"] = settings.db_app_role
    return cfg


def migrate(settings: Settings) -> None:
    command.upgrade(alembic_config(settings.migration_database_url, settings), "head")


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


async def _load_demo(settings: Settings) -> None:
    from app.db import SYSTEM, Database
    from app.services.demo import load_demo

    db = Database(settings)
    try:
        async with db.session(SYSTEM) as session:
            await load_demo(session)
            await session.commit()
    finally:
        await db.dispose()


def _print_demo_tokens(settings: Settings) -> None:
    from app.auth.dev_issuer import DevIssuer
    from app.services.demo import DEMO_ORGS, DEMO_USERS

    issuer = DevIssuer(settings)
    orgs = {o.key: o for o in DEMO_ORGS}
    print("Demo users and tokens (valid 8 hours; `samplan dev-token` makes more):")
    for user in DEMO_USERS:
        org = orgs[user.org_key]
        token = issuer.mint(
            org_number=org.org_number,
            roles=[r.value for r in user.roles],
            subject=user.subject,
            name=user.name,
            county=user.county,
        )
        roles = ",".join(r.value for r in user.roles)
        print(f"\n# {user.name} — {roles} — {org.name} ({org.org_number[:6]}-{org.org_number[6:]})")
        print(token)


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    migrate(settings)
    if args.demo:
        if settings.env != "dev":
            print("refusing to load demo data: SAMPLAN_ENV is not dev", file=sys.stderr)
            return 2
        asyncio.run(_load_demo(settings))
        _print_demo_tokens(settings)
    base = f"http://{args.host}:{args.port}"
    print(f"\nSamplan on {base}  ·  API docs {base}/docs  ·  web client {base}/ui\n", flush=True)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        access_log=False,  # RequestGuard logs a line per request without query strings
        proxy_headers=False,
        # Abuse limits (docs/reliability.md). Beyond limit_concurrency connections or requests in
        # flight (per worker) new requests get 503 at once instead of queueing; idle keep-alive
        # connections are closed after a few seconds; the h11 parser (chosen explicitly, since
        # httptools has no such setting) refuses a request line plus headers larger than the
        # limit. A trickled body is cut off by RequestGuard after body_read_timeout_seconds.
        http="h11",
        limit_concurrency=settings.server_limit_concurrency,
        timeout_keep_alive=settings.server_keep_alive_seconds,
        h11_max_incomplete_event_size=settings.server_max_header_bytes,
    )
    return 0


def _cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings)
    print("database is at the newest migration")
    return 0


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    if settings.env != "dev":
        print("refusing to load demo data: SAMPLAN_ENV is not dev", file=sys.stderr)
        return 2
    migrate(settings)
    asyncio.run(_load_demo(settings))
    _print_demo_tokens(settings)
    return 0


def _cmd_dev_token(args: argparse.Namespace, settings: Settings) -> int:
    from app.auth.dev_issuer import DevIssuer
    from app.services import identifiers

    if settings.env != "dev" or not settings.dev_issuer_enabled:
        print("dev tokens exist only in dev mode with the dev issuer enabled", file=sys.stderr)
        return 2
    try:
        org_number = identifiers.normalise_org_number(args.org)
    except identifiers.InvalidIdentifier as exc:
        print(f"--org: {exc}", file=sys.stderr)
        return 2
    token = DevIssuer(settings).mint(
        org_number=org_number,
        roles=args.role,
        subject=args.user,
        name=args.name,
        county=args.county,
        ttl_seconds=args.ttl,
    )
    print(token)
    return 0


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Deliver webhooks from the outbox until SIGTERM or SIGINT."""
    import signal

    from app.db import Database
    from app.main import make_http_client
    from app.services.dispatcher import Dispatcher

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        db = Database(settings)
        http = make_http_client(settings)
        try:
            await Dispatcher(db, http, settings).run_forever(stop)
        finally:
            await http.aclose()
            await db.dispose()

    print("samplan worker delivering webhooks; stop with Ctrl-C", flush=True)
    asyncio.run(run())
    return 0


def _cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.audit_review import verify_all_chains

    reports = asyncio.run(verify_all_chains(settings))
    broken = 0
    for org_name, report in reports:
        if report.ok:
            print(f"ok      {org_name}: {report.events_checked} events")
        else:
            broken += 1
            print(
                f"BROKEN  {org_name}: first broken link at seq {report.first_broken_seq} "
                f"({report.reason}); {report.events_checked} events verified before it"
            )
    print(f"{len(reports)} chains, {broken} broken")
    return 1 if broken else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="samplan", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="load demo data and print tokens first (dev)")
    serve.set_defaults(func=_cmd_serve)

    sub.add_parser("migrate", help="upgrade the database to the newest migration").set_defaults(
        func=_cmd_migrate
    )
    sub.add_parser("demo", help="load demo organisations and users, print tokens").set_defaults(
        func=_cmd_demo
    )

    sub.add_parser(
        "worker", help="deliver webhooks from the outbox (beside or instead of serve)"
    ).set_defaults(func=_cmd_worker)

    tok = sub.add_parser("dev-token", help="print a token from the dev issuer")
    tok.add_argument("--org", required=True, help="organisationsnummer")
    tok.add_argument("--role", action="append", required=True, help="a role; repeat for several")
    tok.add_argument("--user", default=None, help="the subject (user id); random if left out")
    tok.add_argument("--county", default=None, help="county code, for rss")
    tok.add_argument("--name", default=None)
    tok.add_argument("--ttl", type=int, default=8 * 3600, help="seconds the token is valid")
    tok.set_defaults(func=_cmd_dev_token)

    aud = sub.add_parser("audit", help="audit trail tools")
    aud_sub = aud.add_subparsers(dest="audit_command", required=True)
    aud_sub.add_parser("verify", help="walk every organisation's hash chain").set_defaults(
        func=_cmd_audit_verify
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
        settings.check_safe_for_env()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    _configure_logging(settings)
    result: int = args.func(args, settings)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
