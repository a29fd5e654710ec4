"""A small closed-loop HTTP/1.1 load generator: a fixed number of keep-alive connections, each
sending its next request as soon as the previous answer is read.

Written on raw asyncio streams (no HTTP client library) so that the generator spends little of the
machine's two cores that the service and PostgreSQL share with it; it is measured against the
same budget as the ceiling app, so whatever it costs it costs both sides equally.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    async def send(self, request: Request) -> Response:
        reader, writer = await self._open()
        head = [f"{request.method} {request.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{k}: {v}" for k, v in request.headers]
        if request.body or request.method in ("POST", "PATCH", "PUT"):
            head.append(f"Content-Length: {len(request.body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + request.body)
        try:
            return await self._read(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.close()
            raise

    async def _read(self, reader: asyncio.StreamReader) -> Response:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(parts)
        else:
            body = b""
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, headers, body)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


# What a worker does for each request: given its worker number and a per-worker sequence
# number, return the request and a callback that sees the answer (to track ETags, say).
NextRequest = Callable[[int, int], tuple[Request, Callable[[Response], None] | None]]


@dataclass
class Result:
    name: str
    concurrency: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    first_error: str = ""

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300) + self.transport_errors

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Milliseconds; nearest-rank on the sorted latencies."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 2),
            "requests": self.ok,
            "errors": self.errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "first_error": self.first_error,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p95_ms": round(self.percentile(95), 2),
            "p99_ms": round(self.percentile(99), 2),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 2) if self.latencies else None,
        }


async def run(
    name: str,
    targets: Sequence[tuple[str, int]],
    next_request: NextRequest,
    *,
    concurrency: int,
    seconds: float,
    warmup: float = 2.0,
    max_requests: int | None = None,
) -> Result:
    """Closed loop: `concurrency` connections (spread over `targets` round-robin, as a load
    balancer would) for `warmup` + `seconds`; only answers that arrive after the warm-up count."""
    result = Result(name, concurrency, seconds)
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds
    counted = 0

    async def worker(number: int) -> None:
        nonlocal counted
        host, port = targets[number % len(targets)]
        conn = Connection(host, port)
        sequence = 0
        try:
            while time.perf_counter() < stop_at:
                if max_requests is not None and counted >= max_requests:
                    return
                request, on_answer = next_request(number, sequence)
                sequence += 1
                sent = time.perf_counter()
                try:
                    answer = await conn.send(request)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    if sent >= measure_from:
                        result.transport_errors += 1
                        result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
                    await asyncio.sleep(0.05)
                    continue
                done = time.perf_counter()
                if on_answer is not None:
                    on_answer(answer)
                if sent < measure_from:
                    continue
                counted += 1
                result.statuses[answer.status] = result.statuses.get(answer.status, 0) + 1
                if 200 <= answer.status < 300:
                    result.latencies.append(done - sent)
                elif not result.first_error:
                    result.first_error = (
                        f"{answer.status} {request.method} {request.path}: {answer.body[:300]!r}"
                    )
        finally:
            await conn.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    result.seconds = max(1e-9, min(time.perf_counter(), stop_at) - measure_from)
    return result


async def fetch(host: str, port: int, request: Request) -> Response:
    """One request on its own connection (set-up calls: health checks, reading ETags)."""
    conn = Connection(host, port)
    try:
        return await conn.send(request)
    finally:
        await conn.close()
