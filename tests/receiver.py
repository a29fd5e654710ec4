"""A real HTTPS webhook receiver on 127.0.0.1 for the tests, and helpers to drive a live app.

The receiver has its own certificate authority (written to a PEM file that the app trusts through
`settings(extra_ca_file=...)`) and a server certificate for IP 127.0.0.1. It runs the standard
library's `ThreadingHTTPServer` in a background thread, records every request, checks the
signature with `app.services.dispatcher.verify_signature` as a real receiver would (answering 401
when it does not hold), and can be scripted to answer 500, to sleep past the client's timeout, to
close the connection without an answer, or to hold a request open until released.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastapi import FastAPI
from sqlalchemy import text
from sqlmodel import col, select

from app.config import Settings
from app.db import SYSTEM, Database
from app.main import create_app, make_http_client
from app.models.events import OutboxEvent
from app.services.demo import DEMO_ORGS
from app.services.dispatcher import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Dispatcher,
    verify_signature,
)
from tests.plan_helpers import PlanDriver

# ---- certificates --------------------------------------------------------------------------


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it.
    Returns (ca.pem, server-cert.pem, server-key.pem)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Samplan test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "receiver-ca.pem"
    cert_file = directory / "receiver-cert.pem"
    key_file = directory / "receiver-key.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(_pem_key(server_key))
    return ca_file, cert_file, key_file


# ---- what the receiver does with a request -------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int = 200


@dataclass(frozen=True)
class Sleep:
    """Wait this long before answering 200 (past the client's timeout, usually)."""

    seconds: float


@dataclass(frozen=True)
class Close:
    """Close the connection without sending any answer."""


@dataclass(frozen=True)
class Hold:
    """Keep the request open until `Receiver.release()` (or `limit` seconds), then answer 200."""

    limit: float = 30.0


Behaviour = Answer | Sleep | Close | Hold


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool | None  # None when the receiver was given no secret
    at: float = field(default_factory=time.monotonic)
    answered: int | None = None  # the status sent, None when closed or not sent (yet)

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def event_id(self) -> str:
        return self.headers[EVENT_ID_HEADER.lower()]

    @property
    def event_type(self) -> str:
        return self.headers[EVENT_TYPE_HEADER.lower()]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, receiver: Receiver, context: ssl.SSLContext) -> None:
        self.receiver = receiver
        self.ssl_context = context
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, in the connection's own thread, not in accept().
        request.settimeout(15)
        try:
            conn = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)  # type: ignore[arg-type]
        except (ssl.SSLError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def shutdown_request(self, request: Any) -> None:
        # The raw socket was detached by wrap_socket (or is still ours after a failed handshake).
        with contextlib.suppress(OSError):
            request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that went away are the point of several tests; keep the output quiet


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        secret = receiver.secret
        verified = None
        if secret is not None:
            verified = verify_signature(
                secret,
                headers.get(TIMESTAMP_HEADER.lower(), ""),
                body,
                headers.get(SIGNATURE_HEADER.lower(), ""),
            )
        record = Received(self.path, headers, body, verified)
        behaviour = receiver._arrived(record)
        if isinstance(behaviour, Close):
            self.close_connection = True
            return
        if isinstance(behaviour, Sleep):
            receiver._stopping.wait(behaviour.seconds)
        elif isinstance(behaviour, Hold):
            receiver._released.wait(behaviour.limit)
        status = behaviour.status if isinstance(behaviour, Answer) else 200
        if verified is False:
            status = 401  # a real receiver refuses what it cannot verify
        payload = b'{"ok":true}' if status < 300 else b'{"ok":false}'
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (OSError, ssl.SSLError):
            self.close_connection = True
            return
        with receiver._lock:
            record.answered = status


class Receiver:
    """An HTTPS endpoint on 127.0.0.1 that records what it gets. `secret` turns on verification."""

    def __init__(self, directory: Path) -> None:
        self.ca_file, cert_file, key_file = make_certificates(directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.secret: str | None = None
        self._lock = threading.Lock()
        self._script: list[Behaviour] = []
        self._requests: list[Received] = []
        self._released = threading.Event()
        self._stopping = threading.Event()
        self._server = _Server(self, context)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def script(self, *behaviours: Behaviour) -> None:
        """What to do with the next requests, in order; after them every request gets 200."""
        with self._lock:
            self._script.extend(behaviours)

    def release(self) -> None:
        self._released.set()

    def _arrived(self, record: Received) -> Behaviour:
        with self._lock:
            self._requests.append(record)
            return self._script.pop(0) if self._script else Answer(200)

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    def event_counts(self) -> Counter[str]:
        return Counter(r.event_id for r in self.requests)

    async def wait_for(self, condition: Callable[[list[Received]], bool], within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while not condition(self.requests):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver: condition not met in {within}s; got {self.requests!r}")
            await asyncio.sleep(0.02)

    async def wait_for_count(self, n: int, within: float = 10.0) -> None:
        await self.wait_for(lambda rs: len(rs) >= n, within)

    def close(self) -> None:
        self._stopping.set()
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# ---- a live app on a database with real commits --------------------------------------------


@dataclass
class OrgId:
    id: str


async def live_driver(app: FastAPI, client: httpx.AsyncClient) -> PlanDriver:
    """A PlanDriver on a live app whose tokens come from the app's dev issuer."""
    async with app.state.db.session() as s:  # organisation is a public register
        rows = (await s.execute(text("SELECT id, org_number FROM organisation"))).all()
    by_number = {r.org_number: str(r.id) for r in rows}
    orgs = {o.key: OrgId(by_number[o.org_number]) for o in DEMO_ORGS}
    issuer = app.state.dev_issuer

    def auth(org_key: str, *roles: str, **kw: Any) -> dict[str, str]:
        number = next(o.org_number for o in DEMO_ORGS if o.key == org_key)
        token = issuer.mint(
            org_number=number,
            roles=list(roles),
            subject=f"live-{org_key}-{'-'.join(roles)}",
            name=f"Live {org_key} {'/'.join(roles)}",
            **kw,
        )
        return {"Authorization": f"Bearer {token}"}

    return PlanDriver(client, auth, orgs)


async def eventually(
    probe: Callable[[], Any], *, within: float = 15.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Await `probe()` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not reached in {within}s (last: {last!r})")


class Live:
    """A live app on a database with real commits (`fresh_database`), a PlanDriver on it, and
    dispatchers of their own (each with its own Database and HTTP client), closed at the end."""

    def __init__(self, tdb: Any, receiver: Receiver | None = None, **app_overrides: Any) -> None:
        self.tdb = tdb
        self.receiver = receiver
        base: dict[str, Any] = {"dispatcher_in_process": False}
        if receiver is not None:
            base["extra_ca_file"] = receiver.ca_file
        self.settings = tdb.settings(**{**base, **app_overrides})
        self.app = create_app(self.settings)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, raise_app_exceptions=False),
            base_url="http://samplan.test",
            timeout=30,
        )
        self._dispatchers: list[Dispatcher] = []
        self.drv: PlanDriver

    async def __aenter__(self) -> Live:
        self.drv = await live_driver(self.app, self.client)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for d in self._dispatchers:
            await d.http.aclose()
            await d.db.dispose()
        await self.client.aclose()
        await self.app.state.http.aclose()
        await self.app.state.db.dispose()

    def dispatcher_settings(self, **overrides: Any) -> Settings:
        base: dict[str, Any] = {"dispatcher_in_process": False}
        if self.receiver is not None:
            base["extra_ca_file"] = self.receiver.ca_file
        settings: Settings = self.tdb.settings(**{**base, **overrides})
        return settings

    def dispatcher(self, **overrides: Any) -> Dispatcher:
        settings = self.dispatcher_settings(**overrides)
        d = Dispatcher(Database(settings), make_http_client(settings), settings)
        self._dispatchers.append(d)
        return d

    def admin(self, org: str = "sthlm-stad") -> dict[str, str]:
        return self.drv.h(org, "org_admin")

    async def create_webhook(
        self, event_types: list[str], org: str = "sthlm-stad", url: str | None = None
    ) -> dict[str, Any]:
        if url is None:
            assert self.receiver is not None
            url = self.receiver.url()
        r = await self.client.post(
            "/api/v1/webhooks", json={"url": url, "event_types": event_types}, headers=self.admin(org)
        )
        assert r.status_code == 201, r.text
        hook: dict[str, Any] = r.json()
        if self.receiver is not None and url.startswith(self.receiver.url("")):
            self.receiver.secret = hook["secret"]
        return hook

    async def deliveries(self, hook_id: str, org: str = "sthlm-stad") -> list[dict[str, Any]]:
        r = await self.client.get(f"/api/v1/webhooks/{hook_id}/deliveries", headers=self.admin(org))
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()
        return items

    async def outbox(self) -> list[OutboxEvent]:
        async with self.app.state.db.session(SYSTEM) as s:
            return list((await s.execute(select(OutboxEvent).order_by(col(OutboxEvent.seq)))).scalars())

    async def deliver_until(
        self,
        hook_id: str,
        dispatchers: list[Dispatcher],
        done: Callable[[list[dict[str, Any]]], bool],
        *,
        within: float = 20.0,
        org: str = "sthlm-stad",
    ) -> list[dict[str, Any]]:
        """Run the dispatchers' rounds until the webhook's deliveries satisfy `done`."""

        seen: list[list[dict[str, Any]]] = [[]]

        async def probe() -> list[dict[str, Any]] | None:
            await asyncio.gather(*(d.run_once() for d in dispatchers))
            items = await self.deliveries(hook_id, org)
            seen[0] = items
            return items if done(items) else None

        try:
            result: list[dict[str, Any]] = await eventually(
                probe, within=within, interval=0.05, what=f"deliveries of {hook_id}"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; deliveries: {seen[0]!r}") from None
        return result


def all_delivered(n: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda items: len(items) == n and all(d["status"] == "delivered" for d in items)
