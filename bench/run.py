"""The national-scale benchmark, end to end (docs/performance.md):

1. generate the national data set (and a 10 % one) into PostgreSQL, unless already there;
2. start several `samplan serve` processes (one worker each) and load them over real HTTP on 127.0.0.1 at a fixed
   concurrency: read a plan, the worklist, add an action, change a plan with If-Match, the county
   coverage report for one year;
3. run the same plan read against the ceiling app (bench/ceiling.py) and report the ratio;
4. repeat the reads on the 10 % data set;
5. the scaling run: one service process against two, behind round-robin connections.

`bash scripts/bench.sh` runs it; `--help` lists the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from app.auth.dev_issuer import DevIssuer
from app.config import Settings
from bench import loadgen
from bench.loadgen import Request, Response

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PG = os.environ.get("SAMPLAN_BENCH_PG", "127.0.0.1:5432")
APP_ROLE = "samplan_app"
HOST = "127.0.0.1"


def _dsn(database: str, user: str = "postgres") -> str:
    return f"postgresql://{user}@{PG}/{database}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- the data sets ---------------------------------------------------------------------------


def _generator_fingerprint() -> str:
    import hashlib

    return hashlib.sha256((REPO / "bench" / "generate.py").read_bytes()).hexdigest()[:12]


async def _migrate(database: str) -> None:
    env = _service_env(database, REPO / ".bench" / "data")
    migrate = await asyncio.create_subprocess_exec(str(VENV_BIN / "samplan"), "migrate", env=env, cwd=REPO)
    if await migrate.wait() != 0:
        raise RuntimeError(f"samplan migrate failed for {database}")


async def ensure_dataset(database: str, scale: float, seed: int, *, regenerate: bool) -> dict[str, Any]:
    """The database with the data set of this scale and seed, generated only when it is missing or
    was made by another version of the generator. Its recipe is the database's comment."""
    recipe = f"samplan-bench scale={scale} seed={seed} generator={_generator_fingerprint()}"
    admin = await asyncpg.connect(_dsn("postgres"))
    try:
        comment = await admin.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", database
        )
        if comment == recipe and not regenerate:
            log(f"{database}: data set already there ({recipe}); migrating to the newest schema")
            await _migrate(database)
            return {"database": database, "generated": False, "recipe": recipe}
        log(f"{database}: creating and migrating")
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    await _migrate(database)
    admin = await asyncpg.connect(_dsn("postgres"))
    try:
        # Trust auth on this machine; in production the operator gives the role a password.
        await admin.execute(f"ALTER ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
    finally:
        await admin.close()
    from bench.generate import generate

    started = time.perf_counter()
    counts = await generate(_dsn(database), scale=scale, seed=seed, progress=True)
    seconds = time.perf_counter() - started
    admin = await asyncpg.connect(_dsn("postgres"))
    try:
        await admin.execute(f"COMMENT ON DATABASE \"{database}\" IS '{recipe}'")
        size = await admin.fetchval("SELECT pg_size_pretty(pg_database_size($1))", database)
    finally:
        await admin.close()
    log(f"{database}: generated in {seconds:.0f} s, {size}")
    return {
        "database": database,
        "generated": True,
        "recipe": recipe,
        "seconds": round(seconds, 1),
        "size": size,
        "counts": counts,
    }


# ---- the processes under test ----------------------------------------------------------------


def _service_env(database: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMPLAN_")}
    env.update(
        {
            "SAMPLAN_ENV": "dev",
            "SAMPLAN_DATA_DIR": str(data_dir),
            "SAMPLAN_DATABASE_URL": f"postgresql+asyncpg://{APP_ROLE}@{PG}/{database}",
            "SAMPLAN_MIGRATION_DATABASE_URL": f"postgresql+asyncpg://postgres@{PG}/{database}",
            "SAMPLAN_LOG_LEVEL": "WARNING",
            # The token buckets stay on (their cost is part of every request) but far above
            # what a few hundred simulated users would reach in a minute.
            "SAMPLAN_RATE_LIMIT_USER_PER_MINUTE": "1000000",
            "SAMPLAN_RATE_LIMIT_USER_BURST": "100000",
            "SAMPLAN_RATE_LIMIT_ORG_PER_MINUTE": "1000000",
            "SAMPLAN_RATE_LIMIT_ORG_BURST": "100000",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def worker_pids(self) -> list[int]:
        """uvicorn's worker processes (or the process itself when it serves alone)."""
        children = (
            Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
            if Path(f"/proc/{self.process.pid}").exists()
            else []
        )
        pids = [int(c) for c in children]
        # uvicorn's multiprocess supervisor also starts a resource tracker or similar helpers;
        # only processes that run the app have loaded it and are large.
        return [p for p in pids if _rss_kib(p) > 30_000] or [self.process.pid]

    def memory(self) -> list[dict[str, int]]:
        return [
            {"pid": pid, "rss_mib": _rss_kib(pid) // 1024, "peak_mib": _hwm_kib(pid) // 1024}
            for pid in self.worker_pids()
        ]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_kib(pid: int) -> int:
    return _status_kib(pid, "VmRSS")


def _hwm_kib(pid: int) -> int:
    return _status_kib(pid, "VmHWM")


def _uvicorn_args(workers: int, port: int) -> list[str]:
    # The same server settings as `samplan serve` (app/cli.py) so that the two are compared
    # like for like: h11, no access log of uvicorn's own.
    return [
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--http",
        "h11",
        "--no-access-log",
    ]


def start_service(database: str, workdir: Path, workers: int, name: str) -> Server:
    port = free_port()
    log_path = workdir / f"{name}-{port}.log"
    env = _service_env(database, workdir / "data")
    out = log_path.open("w")
    process = subprocess.Popen(  # noqa: S603 - our own command
        [str(VENV_BIN / "samplan"), "serve", "--port", str(port), "--workers", str(workers)],
        cwd=REPO,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    return Server(name, port, process, log_path)


def start_ceiling(database: str, workdir: Path, workers: int, variant: str = "app") -> Server:
    """`variant`: "app" (FastAPI, the ceiling of the targets) or "bare" (raw ASGI, the floor)."""
    port = free_port()
    log_path = workdir / f"ceiling-{variant}-{port}.log"
    env = dict(os.environ)
    env["SAMPLAN_CEILING_DSN"] = _dsn(database)
    out = log_path.open("w")
    process = subprocess.Popen(  # noqa: S603 - our own command
        [str(VENV_BIN / "uvicorn"), f"bench.ceiling:{variant}", *_uvicorn_args(workers, port)],
        cwd=REPO,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    return Server(f"ceiling-{variant}", port, process, log_path)


async def wait_healthy(server: Server, workers: int, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log_path.read_text()[-3000:]}")
        try:
            answer = await loadgen.fetch(HOST, server.port, Request("GET", "/health"))
            if answer.status == 200 and len(server.worker_pids()) >= min(workers, 1):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{server.name} did not become healthy:\n{server.log_path.read_text()[-3000:]}"
            )
        await asyncio.sleep(0.2)


@contextmanager
def running(servers: Sequence[Server]) -> Iterator[None]:
    try:
        yield
    finally:
        for server in servers:
            server.stop()


# ---- what the simulated users do -------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    org_id: uuid.UUID
    org_number: str
    subject: str


@dataclass
class Workload:
    reads: list[tuple[uuid.UUID, Caller]]  # a plan and an organisation that may read it
    worklist_callers: list[Caller]
    add_action: list[tuple[uuid.UUID, Caller, int]]  # an open plan, its initiator, its version
    patch: list[tuple[uuid.UUID, Caller, int]]
    rss: Caller
    county: str


async def sample_workload(database: str, seed: int, reads: int, writes: int) -> Workload:
    """Callers and plans drawn from the data set: real users of real organisations, reading plans
    their organisation may see (as initiator, or as a consented participant)."""
    conn = await asyncpg.connect(_dsn(database))
    try:
        await conn.execute(f"SELECT setseed({(seed % 1000) / 1000})")
        users = {
            (r["organisation_id"], r["role"]): r["subject"]
            for r in await conn.fetch(
                """SELECT DISTINCT ON (organisation_id, role) organisation_id, subject, role
                   FROM (SELECT organisation_id, subject, json_array_elements_text(roles) AS role
                         FROM app_user) u ORDER BY organisation_id, role, subject"""
            )
        }
        numbers = {
            r["id"]: r["org_number"] for r in await conn.fetch("SELECT id, org_number FROM organisation")
        }

        def caller(org_id: uuid.UUID, role: str = "handlaggare") -> Caller:
            subject = users.get((org_id, role))
            if subject is None:
                raise RuntimeError(f"the data set has no {role} user in organisation {org_id}")
            return Caller(org_id, numbers[org_id], subject)

        today = date.today()
        # Plans readable under consent by a participating organisation other than the initiator,
        # and by the initiator itself: both paths of the access rule are exercised.
        read_rows = await conn.fetch(
            """SELECT p.id, p.initiating_organisation_id AS initiator,
                      (SELECT cs.organisation_id FROM consent_scope cs JOIN consent c ON c.id = cs.consent_id
                        JOIN plan_participant pp ON pp.plan_id = p.id AND pp.organisation_id = cs.organisation_id
                        JOIN organisation o ON o.id = cs.organisation_id
                        WHERE cs.plan_id = p.id AND c.withdrawn_at IS NULL
                          AND (c.valid_until IS NULL OR c.valid_until >= $2)
                          AND cs.organisation_id <> p.initiating_organisation_id
                          AND pp.kind IN ('huvudman', 'other') AND o.kind IN ('kommun', 'region')
                        ORDER BY cs.organisation_id LIMIT 1) AS consented
               FROM plan p
               WHERE p.status IN ('active', 'closed', 'paused') ORDER BY random() LIMIT $1""",
            reads,
            today,
        )
        read_list: list[tuple[uuid.UUID, Caller]] = []
        for i, row in enumerate(read_rows):
            org = row["consented"] if (i % 2 and row["consented"] is not None) else row["initiator"]
            read_list.append((row["id"], caller(org)))
        worklist_orgs = [
            r["initiating_organisation_id"]
            for r in await conn.fetch(
                """SELECT initiating_organisation_id FROM plan
                   WHERE status = 'active' ORDER BY random() LIMIT 400"""
            )
        ]
        open_rows = await conn.fetch(
            """SELECT p.id, p.initiating_organisation_id AS initiator, p.version FROM plan p
               WHERE p.status = 'active' ORDER BY random() LIMIT $1""",
            2 * writes,
        )
        open_plans = [(r["id"], caller(r["initiator"]), r["version"]) for r in open_rows]
        # The county with the most care episodes: the largest report.
        county = await conn.fetchval(
            """SELECT o.county_code FROM episode e JOIN organisation o ON o.id = e.responsible_kommun_id
               GROUP BY o.county_code ORDER BY count(*) DESC LIMIT 1"""
        )
        region = await conn.fetchval(
            "SELECT id FROM organisation WHERE kind = 'region' AND county_code = $1", county
        )
        return Workload(
            reads=read_list,
            worklist_callers=[caller(o) for o in worklist_orgs],
            # Half the open plans take new actions, the other half PATCHes: never both at once.
            add_action=open_plans[: len(open_plans) // 2],
            patch=open_plans[len(open_plans) // 2 :],
            rss=caller(region, "rss"),
            county=county,
        )
    finally:
        await conn.close()


class TokenBook:
    """Bearer headers from the dev issuer whose key the service keeps in its data folder; one
    token per caller, minted once."""

    def __init__(self, data_dir: Path) -> None:
        self.issuer = DevIssuer(Settings(env="dev", data_dir=data_dir))
        self.cache: dict[tuple[Caller, str], tuple[tuple[str, str], ...]] = {}

    def headers(
        self, who: Caller, role: str = "handlaggare", county: str | None = None
    ) -> tuple[tuple[str, str], ...]:
        key = (who, role)
        if key not in self.cache:
            token = self.issuer.mint(
                org_number=who.org_number,
                roles=[role],
                subject=who.subject,
                county=county,
                ttl_seconds=6 * 3600,
            )
            self.cache[key] = (("Authorization", f"Bearer {token}"), ("Accept", "application/json"))
        return self.cache[key]


def _cycle(items: Sequence[Any], concurrency: int, worker: int, sequence: int) -> Any:
    """Each worker walks its own stride of the list, so no two workers use the same item at once."""
    return items[(worker + sequence * concurrency) % len(items)]


def read_plan_requests(work: Workload, tokens: TokenBook, concurrency: int) -> loadgen.NextRequest:
    def next_request(worker: int, sequence: int) -> tuple[Request, None]:
        plan_id, who = _cycle(work.reads, concurrency, worker, sequence)
        return Request("GET", f"/api/v1/plans/{plan_id}", tokens.headers(who)), None

    return next_request


def ceiling_requests(work: Workload, concurrency: int) -> loadgen.NextRequest:
    def next_request(worker: int, sequence: int) -> tuple[Request, None]:
        plan_id, who = _cycle(work.reads, concurrency, worker, sequence)
        return Request("GET", f"/plans/{plan_id}?org={who.org_id}"), None

    return next_request


def worklist_requests(work: Workload, tokens: TokenBook, concurrency: int) -> loadgen.NextRequest:
    def next_request(worker: int, sequence: int) -> tuple[Request, None]:
        who = _cycle(work.worklist_callers, concurrency, worker, sequence)
        return Request("GET", "/api/v1/worklist?limit=50", tokens.headers(who)), None

    return next_request


def _owned(plans: list[tuple[uuid.UUID, Caller, int]], concurrency: int, worker: int) -> list[int]:
    """The plan indexes one worker writes to: disjoint sets, so that If-Match never races."""
    return [i for i in range(len(plans)) if i % concurrency == worker]


def write_requests(
    plans: list[tuple[uuid.UUID, Caller, int]],
    tokens: TokenBook,
    concurrency: int,
    make: Callable[[uuid.UUID, Caller, int, int], Request],
) -> loadgen.NextRequest:
    versions = {plan_id: version for plan_id, _, version in plans}
    owned = [_owned(plans, concurrency, w) for w in range(concurrency)]

    def next_request(worker: int, sequence: int) -> tuple[Request, Callable[[Response], None]]:
        mine = owned[worker]
        plan_id, who, _ = plans[mine[sequence % len(mine)]]

        def track(answer: Response) -> None:
            etag = answer.headers.get("etag", "").strip('"').removeprefix("W/").strip('"')
            if answer.status < 300 and etag.isdigit():
                versions[plan_id] = int(etag)
            elif answer.status == 412:
                versions[plan_id] = int(answer.json().get("current_version", versions[plan_id]))

        request = make(plan_id, who, versions[plan_id], sequence)
        return Request(
            request.method, request.path, request.headers + tokens.headers(who), request.body
        ), track

    return next_request


def add_action_request(plan_id: uuid.UUID, who: Caller, version: int, sequence: int) -> Request:
    body = {
        "description": f"Uppföljande samtal {sequence}",
        "responsible_organisation_id": str(who.org_id),
        "phase": "eftervard",
    }
    return Request(
        "POST",
        f"/api/v1/plans/{plan_id}/actions",
        (("Content-Type", "application/json"),),
        json.dumps(body).encode(),
    )


def patch_request(plan_id: uuid.UUID, who: Caller, version: int, sequence: int) -> Request:
    body = {"title": f"Samordnad individuell plan (rev {sequence})"}
    return Request(
        "PATCH",
        f"/api/v1/plans/{plan_id}",
        (("Content-Type", "application/json"), ("If-Match", f'"{version}"')),
        json.dumps(body).encode(),
    )


def coverage_requests(work: Workload, tokens: TokenBook, year: int) -> loadgen.NextRequest:
    headers = tokens.headers(work.rss, "rss", county=work.county)
    path = f"/api/v1/reports/coverage?county={work.county}&from={year}-01-01&to={year}-12-31"

    def next_request(worker: int, sequence: int) -> tuple[Request, None]:
        return Request("GET", path, headers), None

    return next_request


# ---- the run ---------------------------------------------------------------------------------


async def measure(
    name: str,
    servers: Sequence[Server],
    make: loadgen.NextRequest,
    concurrency: int,
    seconds: float,
    warmup: float,
) -> dict[str, Any]:
    result = await loadgen.run(
        name, [(HOST, s.port) for s in servers], make, concurrency=concurrency, seconds=seconds, warmup=warmup
    )
    summary = result.summary()
    log(
        f"  {name:<28} {summary['rps']:>8.1f} req/s  p50 {summary['p50_ms']:>7.1f} ms  "
        f"p95 {summary['p95_ms']:>7.1f} ms  p99 {summary['p99_ms']:>7.1f} ms  errors {summary['errors']}"
    )
    if summary["errors"]:
        log(f"    first error: {summary['first_error']}")
    return summary


async def bench_dataset(
    label: str, database: str, args: argparse.Namespace, workdir: Path, *, full: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {"label": label, "database": database}
    work = await sample_workload(database, args.seed, reads=args.reads, writes=args.writes)
    tokens = TokenBook(workdir / "data")
    c, secs, warm = args.concurrency, args.seconds, args.warmup
    log(f"{label}: service, {args.workers} processes, concurrency {c}")
    # `--workers` processes of one worker each, the connections dealt out among them as a load
    # balancer would. (uvicorn's own --workers share one listening socket; the kernel hands a
    # burst of new connections to whichever process is in accept() first, and keep-alive keeps
    # them there: measured, one worker took all 16 while the other idled.)
    services = [start_service(database, workdir, 1, f"service-{label}-{i}") for i in range(args.workers)]
    with running(services):
        for service in services:
            await wait_healthy(service, 1)
        runs = out["service"] = {}
        runs["read_plan"] = await measure(
            "read plan", services, read_plan_requests(work, tokens, c), c, secs, warm
        )
        runs["worklist"] = await measure(
            "worklist", services, worklist_requests(work, tokens, c), c, secs, warm
        )
        if full:
            runs["add_action"] = await measure(
                "add action",
                services,
                write_requests(work.add_action, tokens, c, add_action_request),
                c,
                secs,
                warm,
            )
            runs["patch_plan"] = await measure(
                "PATCH plan (If-Match)",
                services,
                write_requests(work.patch, tokens, c, patch_request),
                c,
                secs,
                warm,
            )
        runs["coverage_year"] = await measure(
            f"coverage county {work.county}, year",
            services,
            coverage_requests(work, tokens, args.report_year),
            1,
            secs,
            warm,
        )
        out["memory"] = [m for service in services for m in service.memory()]
        log(f"  worker memory: {out['memory']}")
    log(f"{label}: ceiling, {args.workers} processes, concurrency {c}")
    ceilings = [start_ceiling(database, workdir, 1) for _ in range(args.workers)]
    with running(ceilings):
        for ceiling in ceilings:
            await wait_healthy(ceiling, 1)
        out["ceiling"] = {
            "read_plan": await measure(
                "ceiling read plan", ceilings, ceiling_requests(work, c), c, secs, warm
            )
        }
        out["ceiling_memory"] = [m for ceiling in ceilings for m in ceiling.memory()]
    if full:
        # For reference: the same SQL on a raw ASGI callable, without FastAPI.
        bares = [start_ceiling(database, workdir, 1, "bare") for _ in range(args.workers)]
        with running(bares):
            for bare in bares:
                await wait_healthy(bare, 1)
            out["ceiling"]["read_plan_bare"] = await measure(
                "bare ASGI read plan", bares, ceiling_requests(work, c), c, secs, warm
            )
    out["read_ratio"] = round(
        out["service"]["read_plan"]["rps"] / max(out["ceiling"]["read_plan"]["rps"], 1e-9), 3
    )
    log(f"{label}: read plan at {out['read_ratio']:.2f} of the ceiling's throughput")
    if full and not args.skip_scaling:
        out["scaling"] = await scaling_run(database, args, workdir, work, tokens)
    return out


async def scaling_run(
    database: str, args: argparse.Namespace, workdir: Path, work: Workload, tokens: TokenBook
) -> dict[str, Any]:
    """One service process (one worker) against two, each its own `samplan serve`, the load
    spread over them connection by connection as a round-robin load balancer would."""
    c, secs, warm = args.concurrency, args.seconds, args.warmup
    result: dict[str, Any] = {}
    for count in (1, 2):
        servers = [start_service(database, workdir, 1, f"scale{count}-{i}") for i in range(count)]
        with running(servers):
            for server in servers:
                await wait_healthy(server, 1)
            log(f"scaling: {count} service process(es)")
            result[f"{count}_process"] = {
                "read_plan": await measure(
                    f"read plan, {count} process", servers, read_plan_requests(work, tokens, c), c, secs, warm
                ),
                "worklist": await measure(
                    f"worklist, {count} process", servers, worklist_requests(work, tokens, c), c, secs, warm
                ),
            }
    return result


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return ""


async def machine() -> dict[str, Any]:
    cpu = _cpu_model()
    mem_kib = _status_kib_meminfo()
    conn = await asyncpg.connect(_dsn("postgres"))
    try:
        version = await conn.fetchval("SHOW server_version")
        pg_settings = {
            name: await conn.fetchval(f"SHOW {name}")
            for name in ("shared_buffers", "max_connections", "synchronous_commit")
        }
    finally:
        await conn.close()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "postgresql": version,
        "postgresql_settings": pg_settings,
        "kernel": platform.release(),
    }


def _status_kib_meminfo() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    workdir = REPO / ".bench"
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["bash scripts/bench.sh", *sys.argv[1:]]),
        "machine": await machine(),
        "settings": {
            k: getattr(args, k)
            for k in (
                "scale",
                "small_scale",
                "seed",
                "concurrency",
                "seconds",
                "warmup",
                "workers",
                "report_year",
            )
        },
    }
    full_db, small_db = f"{args.database}_full", f"{args.database}_10pct"
    results["datasets"] = {
        "full": await ensure_dataset(full_db, args.scale, args.seed, regenerate=args.regenerate),
        "small": await ensure_dataset(
            small_db, args.scale * args.small_scale, args.seed, regenerate=args.regenerate
        ),
    }
    if args.generate_only:
        return results
    results["full"] = await bench_dataset("full", full_db, args, workdir, full=True)
    results["small"] = await bench_dataset("10pct", small_db, args, workdir, full=False)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def report(results: dict[str, Any]) -> str:
    """The tables of docs/performance.md."""
    lines = []
    full, small = results["full"], results["small"]
    lines.append("| operation | req/s | p50 ms | p95 ms | p99 ms | p99/p50 | errors |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    names = {
        "read_plan": "read a plan",
        "worklist": "worklist",
        "add_action": "add an action",
        "patch_plan": "PATCH plan with If-Match",
        "coverage_year": "coverage report, county, one year (concurrency 1)",
    }
    for key, title in names.items():
        r = full["service"][key]
        lines.append(
            f"| {title} | {r['rps']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
            f"{r['p99_ms'] / r['p50_ms']:.2f} | {r['errors']} |"
        )
    for key, title in (
        ("read_plan", "ceiling (FastAPI + asyncpg): read a plan"),
        ("read_plan_bare", "bare ASGI + asyncpg: read a plan"),
    ):
        if key in full["ceiling"]:
            c = full["ceiling"][key]
            lines.append(
                f"| {title} | {c['rps']} | {c['p50_ms']} | {c['p95_ms']} | {c['p99_ms']} | "
                f"{c['p99_ms'] / c['p50_ms']:.2f} | {c['errors']} |"
            )
    lines.append("")
    lines.append(
        "| read | full req/s | 10 % req/s | full p50 ms | 10 % p50 ms | p50 full / 10 % | ceiling ratio full | ceiling ratio 10 % |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key in ("read_plan", "worklist", "coverage_year"):
        f, s = full["service"][key], small["service"][key]
        ratio_full = full["read_ratio"] if key == "read_plan" else "–"
        ratio_small = small["read_ratio"] if key == "read_plan" else "–"
        lines.append(
            f"| {names[key]} | {f['rps']} | {s['rps']} | {f['p50_ms']} | {s['p50_ms']} | "
            f"{f['p50_ms'] / s['p50_ms']:.2f} | {ratio_full} | {ratio_small} |"
        )
    if "scaling" in full:
        lines.append("")
        lines.append("| scaling | 1 process req/s | 2 processes req/s | gain |")
        lines.append("|---|---:|---:|---:|")
        for key in ("read_plan", "worklist"):
            one = full["scaling"]["1_process"][key]["rps"]
            two = full["scaling"]["2_process"][key]["rps"]
            lines.append(f"| {names[key]} | {one} | {two} | {two / one:.2f}× |")
    lines.append("")
    lines.append(
        f"Worker memory (RSS after the run, MiB): {[m['rss_mib'] for m in full['memory']]}, "
        f"peak {[m['peak_mib'] for m in full['memory']]}"
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scale", type=float, default=1.0, help="1.0: the national data set (300,000 clients)")
    p.add_argument(
        "--small-scale", type=float, default=0.1, help="the second data set, as a share of --scale"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--database", default="samplan_bench", help="prefix of the two databases")
    p.add_argument("--regenerate", action="store_true", help="generate even when the data set is there")
    p.add_argument("--generate-only", action="store_true")
    p.add_argument("--concurrency", type=int, default=16, help="connections kept busy at once")
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per operation")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each")
    p.add_argument("--workers", type=int, default=2, help="service (and ceiling) processes, one worker each")
    p.add_argument("--reads", type=int, default=5000, help="distinct plans read")
    p.add_argument("--writes", type=int, default=1000, help="distinct plans written to, per write operation")
    p.add_argument("--report-year", type=int, default=date.today().year - 1)
    p.add_argument("--skip-scaling", action="store_true")
    p.add_argument("--output", type=Path, default=REPO / ".bench" / "results.json")
    p.add_argument(
        "--report", type=Path, metavar="RESULTS", help="print the tables of an earlier run and stop"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return 0
    random.seed(args.seed)
    try:  # the load generator's own overhead is smaller on uvloop (uvicorn[standard] brings it)
        import uvloop

        results = uvloop.run(main_async(args))
    except ImportError:  # pragma: no cover
        results = asyncio.run(main_async(args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str))
    log(f"results written to {args.output}")
    if not args.generate_only:
        print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
