"""The benchmark command end to end, at a tiny scale: it generates both data sets, serves them,
loads every operation over HTTP and writes its results. Keeps `bash scripts/bench.sh` working on a
fresh machine; the numbers themselves are measured by the real run (docs/performance.md)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import drop_pg_database

pytestmark = pytest.mark.postgresql_only

REPO = Path(__file__).resolve().parent.parent.parent
OPERATIONS = ("read_plan", "worklist", "add_action", "patch_plan", "coverage_year")


def test_the_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    prefix = "samplan_bench_selftest"
    output = tmp_path / "results.json"
    try:
        done = subprocess.run(  # noqa: S603 - our own module, fixed arguments
            [
                sys.executable,
                "-m",
                "bench.run",
                "--scale",
                "0.004",
                "--seconds",
                "1",
                "--warmup",
                "0.3",
                "--reads",
                "200",
                "--writes",
                "50",
                "--database",
                prefix,
                "--regenerate",
                "--output",
                str(output),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        results = json.loads(output.read_text())
        full, small = results["full"], results["small"]
        for operation in OPERATIONS:
            run = full["service"][operation]
            assert run["requests"] > 0 and run["errors"] == 0, run
            assert 0 < run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"]
        for operation in ("read_plan", "worklist", "coverage_year"):
            assert small["service"][operation]["requests"] > 0
        assert full["ceiling"]["read_plan"]["errors"] == 0 and full["read_ratio"] > 0
        assert [m["rss_mib"] > 0 for m in full["memory"]] == [True, True]  # two workers measured
        two = full["scaling"]["2_process"]["read_plan"]
        assert two["requests"] > 0 and two["errors"] == 0
        counts = results["datasets"]["full"]["counts"]
        assert counts["client"] == 1200 and counts["audit_event"] == 4000
        # The tables of docs/performance.md come out of the same results.
        assert "| read a plan |" in done.stdout and "| scaling |" in done.stdout
    finally:
        for suffix in ("full", "10pct"):
            asyncio.run(drop_pg_database(f"{prefix}_{suffix}"))
