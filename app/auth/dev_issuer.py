"""The dev-mode issuer: an EC key kept in the data folder that signs tokens for demo users."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.auth import tokens
from app.config import DEFAULT_AUDIENCE, DEV_ISSUER, Settings


def _load_or_create_key(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Create with owner-only permissions; lose a race to another process gracefully.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return pem


class DevIssuer:
    def __init__(self, settings: Settings) -> None:
        self._pem = _load_or_create_key(settings.dev_key_path)
        self.jwk = tokens.public_jwk(self._pem)
        self.kid: str = self.jwk["kid"]
        self.issuer = DEV_ISSUER

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}

    def mint(
        self,
        *,
        org_number: str,
        roles: list[str],
        subject: str | None = None,
        name: str | None = None,
        county: str | None = None,
        unit: str | None = None,
        ttl_seconds: int = 8 * 3600,
        extra: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": DEFAULT_AUDIENCE,
            "sub": subject or str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "org": org_number,
            "roles": roles,
        }
        for key, value in (("name", name), ("county", county), ("unit", unit)):
            if value is not None:
                claims[key] = value
        claims.update(extra or {})
        return tokens.sign(claims, self._pem, kid=self.kid)
