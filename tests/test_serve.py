"""README command 1 for real: `samplan serve --demo` in its own process, on SQLite in a fresh folder."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
SAMPLAN = REPO / ".venv" / "bin" / "samplan"
STARTUP_SECONDS = 60.0
HEALTH_SECONDS = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def read_lines(stream, into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))
    into.put(None)


def test_serve_demo_answers_with_a_printed_token(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMPLAN_")}
    env.update({"SAMPLAN_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"})
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
            [str(SAMPLAN), "serve", "--demo", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()

    def log() -> str:
        return stderr_path.read_text(errors="replace")[-4000:]

    try:
        # stdout until the line with the URLs
        printed: list[str] = []
        deadline = time.monotonic() + STARTUP_SECONDS
        while not any(line.startswith("Samplan on ") for line in printed):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no URL line within {STARTUP_SECONDS}s: {printed}\n{log()}"
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            assert line is not None, f"serve exited ({process.poll()}) before printing URLs:\n{log()}"
            printed.append(line)

        url_line = next(line for line in printed if line.startswith("Samplan on "))
        base = f"http://127.0.0.1:{port}"
        assert base in url_line
        assert f"{base}/docs" in url_line

        # every demo user's heading is followed by its token
        headings = [i for i, line in enumerate(printed) if line.startswith("# ")]
        assert len(headings) >= 10, printed
        tokens = [printed[i + 1] for i in headings]
        assert all(t.count(".") == 2 and " " not in t for t in tokens)
        first_heading, token = printed[headings[0]], tokens[0]
        assert "212000-0142" in first_heading  # Stockholms stad's handläggare comes first

        # the server comes up within a bounded wait
        deadline = time.monotonic() + HEALTH_SECONDS
        with httpx.Client(base_url=base, timeout=5.0) as http:
            while True:
                assert process.poll() is None, f"serve exited with {process.returncode}:\n{log()}"
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, (
                    f"/health did not answer within {HEALTH_SECONDS}s:\n{log()}"
                )
                time.sleep(0.2)

            me = http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            assert me.json()["org_number"] == "2120000142"
            assert me.json()["subject"] == "demo-sthlm-handlaggare"
            assert "handlaggare" in me.json()["roles"]

            assert http.get("/docs").status_code == 200
            assert http.get("/ready").json() == {"status": "ready"}
            organisations = http.get(
                "/api/v1/organisations", headers={"Authorization": f"Bearer {token}"}
            ).json()["items"]
            assert len(organisations) == 6
            unauthorised = http.get("/api/v1/me")
            assert unauthorised.status_code == 401
            assert unauthorised.headers["content-type"].startswith("application/problem+json")

        # the SQLite file and the dev key landed in the data folder asked for
        assert (data_dir / "samplan.db").exists()
        assert (data_dir / "dev-issuer-key.pem").exists()
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
