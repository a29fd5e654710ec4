"""Helpers for the fault tests: a real `samplan serve` process, a load that records every answer,
and the database-level checks that no plan is half-written."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.dev_issuer import DevIssuer
from app.config import Settings
from app.services.demo import DEMO_ORGS
from tests.plan_helpers import new_personal_number

REPO = Path(__file__).resolve().parent.parent.parent
SAMPLAN = REPO / ".venv" / "bin" / "samplan"
STARTUP_SECONDS = 60.0


def env_int(name: str, default: int) -> int:
    """Counts for the fault runs: small defaults for CI, larger ones by hand (docs/reliability.md)."""
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Served:
    """`samplan serve` in its own process, with a clean SAMPLAN_* environment."""

    def __init__(self, workdir: Path, env: dict[str, str], port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SAMPLAN_")}
        self.env.update(env)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"serve-{self.port}.log"

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        self.starts += 1
        with self.log_path.open("a") as out:
            out.write(f"\n==== start {self.starts}\n")
            out.flush()
            self.process = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
                [str(SAMPLAN), "serve", "--port", str(self.port)],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self, timeout: float = STARTUP_SECONDS) -> float:
        """Seconds until /health answered."""
        started = time.monotonic()
        deadline = started + timeout
        with httpx.Client(base_url=self.base_url, timeout=2.0) as http:
            while True:
                assert self.process is not None and self.process.poll() is None, (
                    f"serve exited with {self.process and self.process.returncode}:\n{self.log()}"
                )
                try:
                    if http.get("/health").status_code == 200:
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"/health did not answer in {timeout}s:\n{self.log()}"
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing, nothing but what the database already has."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


class Tokens:
    """Bearer headers from the dev issuer whose key sits in the service's data folder."""

    def __init__(self, settings: Settings) -> None:
        self.issuer = DevIssuer(settings)
        self.numbers = {o.key: o.org_number for o in DEMO_ORGS}

    def __call__(
        self, org: str = "sthlm-stad", role: str = "handlaggare", subject: str = "writer"
    ) -> dict[str, str]:
        token = self.issuer.mint(org_number=self.numbers[org], roles=[role], subject=subject)
        return {"Authorization": f"Bearer {token}"}


async def register_client(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    body = {
        "personal_number": new_personal_number(),
        "given_name": "Kim",
        "family_name": "Andersson",
        "gender": "kvinna",
    }
    r = await http.post("/api/v1/clients", json=body, headers=headers)
    assert r.status_code in (200, 201), r.text
    return str(r.json()["id"])


def plan_body(client_id: str, title: str) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "title": title,
        "legal_basis": ["SoL 2 kap. 7 §"],
        "follow_up_date": str(date.today() + timedelta(days=30)),
    }


@dataclass
class Outcome:
    """One request: when it started and ended (monotonic), what came back."""

    kind: str
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (connection refused or reset)
    content_type: str = ""
    retry_after: str | None = None
    detail: str = ""

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Recorder:
    outcomes: list[Outcome] = field(default_factory=list)

    async def call(
        self, kind: str, request: Callable[[], Awaitable[httpx.Response]]
    ) -> tuple[Outcome, httpx.Response | None]:
        started = time.monotonic()
        try:
            response = await request()
        except httpx.TransportError as exc:
            outcome = Outcome(kind, started, time.monotonic(), None, detail=type(exc).__name__)
            self.outcomes.append(outcome)
            return outcome, None
        outcome = Outcome(
            kind,
            started,
            time.monotonic(),
            response.status_code,
            response.headers.get("content-type", ""),
            response.headers.get("retry-after"),
            response.text[:300] if response.status_code >= 400 else "",
        )
        self.outcomes.append(outcome)
        return outcome, response


async def half_written_plans(owner_url: str) -> dict[str, list[str]]:
    """Plans that break all-or-nothing: no version 1, a gap in the versions, a version number
    ahead of or behind the history, or no participant. Read as the schema owner (no RLS)."""
    engine = create_async_engine(owner_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        """
                        SELECT p.id AS id, p.version AS version,
                               (SELECT count(*) FROM plan_version v WHERE v.plan_id = p.id) AS n,
                               (SELECT min(v.version) FROM plan_version v WHERE v.plan_id = p.id) AS lo,
                               (SELECT max(v.version) FROM plan_version v WHERE v.plan_id = p.id) AS hi,
                               (SELECT count(*) FROM plan_participant pp WHERE pp.plan_id = p.id) AS parts
                        FROM plan p
                        """
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    bad: dict[str, list[str]] = {}
    for r in rows:
        problems = []
        if r.lo != 1:
            problems.append(f"first version {r.lo}")
        if r.n != r.hi or r.hi != r.version:
            problems.append(f"version {r.version}, {r.n} history rows up to {r.hi}")
        if r.parts < 1:
            problems.append("no participants")
        if problems:
            bad[str(r.id)] = problems
    return bad


def run_audit_verify(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAMPLAN_")}
    clean.update(env)
    return subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [str(SAMPLAN), "audit", "verify"], cwd=REPO, env=clean, capture_output=True, text=True, timeout=120
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, figures: dict[str, Any]) -> None:
    """Print the figures (pytest -s shows them) and append them to SAMPLAN_FAULT_REPORT if set."""
    line = f"[{name}] " + ", ".join(f"{k}={v}" for k, v in figures.items())
    print(line)
    target = os.environ.get("SAMPLAN_FAULT_REPORT")
    if target:
        with open(target, "a") as fh:
            fh.write(line + "\n")


async def sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
