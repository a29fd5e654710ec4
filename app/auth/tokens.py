"""The only module that touches the JWT library (python-jose, cryptography backend).

Swapping the library means rewriting this file alone. Only asymmetric algorithms are accepted:
never `none`, never HMAC, so a public key can never be used as a shared secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from jose import jwk, jwt
from jose.exceptions import ExpiredSignatureError, JWKError, JWTClaimsError, JWTError

ALLOWED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"})
_KTY_FOR_ALG = {"RS": "RSA", "ES": "EC"}


class TokenError(Exception):
    """The token is not acceptable; the message says why without echoing the token."""


def unverified_header(token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except JWTError:
        raise TokenError("the token is not a well-formed JWT") from None
    if not isinstance(header, dict):
        raise TokenError("the token header is not an object")
    alg = header.get("alg")
    if alg not in ALLOWED_ALGORITHMS:
        allowed = ", ".join(sorted(ALLOWED_ALGORITHMS))
        raise TokenError(f"the token algorithm is not allowed (allowed: {allowed})")
    return header


def unverified_claims(token: str) -> dict[str, Any]:
    try:
        claims = jwt.get_unverified_claims(token)
    except JWTError:
        raise TokenError("the token payload is not readable") from None
    if not isinstance(claims, dict):
        raise TokenError("the token payload is not an object")
    return claims


def verify(
    token: str,
    public_jwk: dict[str, Any],
    *,
    algorithm: str,
    audience: str,
    issuer: str,
    leeway_seconds: int,
) -> dict[str, Any]:
    """Check signature, `exp` (required), `nbf`, `iat`, `aud` and `iss`; return the claims."""
    if algorithm not in ALLOWED_ALGORITHMS:
        raise TokenError("the token algorithm is not allowed")
    expected_kty = _KTY_FOR_ALG[algorithm[:2]]
    if public_jwk.get("kty") != expected_kty:
        raise TokenError("the signing key does not match the token algorithm")
    if public_jwk.get("alg") not in (None, algorithm):
        raise TokenError("the signing key is published for another algorithm")
    if "d" in public_jwk:
        raise TokenError("the issuer published a private key; refusing it")
    try:
        key = jwk.construct(public_jwk, algorithm=algorithm)
    except Exception:  # jose raises assorted errors (ValueError, JWKError, ...) for malformed keys
        raise TokenError("the issuer's published signing key is not usable") from None
    try:
        # `exp` and `sub` are required, but checked below: jose reports a missing required claim
        # as a plain JWTError, which would read as a bad signature.
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            options={"leeway": leeway_seconds},
        )
    except ExpiredSignatureError:
        raise TokenError("the token has expired") from None
    except JWTClaimsError as exc:
        raise TokenError(f"the token claims are not acceptable: {exc}") from None
    except (JWTError, JWKError):
        raise TokenError("the token signature is not valid") from None
    except (TypeError, OverflowError):
        # jose's int() on exp/nbf/iat expects only ValueError; null, lists, objects or 1e999 land here.
        raise TokenError("the token claims are not acceptable: exp, nbf and iat must be numbers") from None
    if not isinstance(claims, dict):
        raise TokenError("the token payload is not an object")
    for required in ("exp", "sub"):
        if required not in claims:
            raise TokenError(f"the token claims are not acceptable: it has no '{required}' claim")
    return claims


def sign(claims: dict[str, Any], private_pem: bytes, *, kid: str, algorithm: str = "ES256") -> str:
    token: str = jwt.encode(claims, private_pem.decode(), algorithm=algorithm, headers={"kid": kid})
    return token


def public_jwk(private_pem: bytes, *, algorithm: str = "ES256") -> dict[str, Any]:
    """The public half of a PEM private key as a JWK, with a RFC 7638 thumbprint as `kid`."""
    key = jwk.construct(private_pem.decode(), algorithm=algorithm)
    public: dict[str, Any] = key.public_key().to_dict()
    members = {k: public[k] for k in sorted(("crv", "kty", "x", "y", "e", "n")) if k in public}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":")).encode()).digest()
    public["kid"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    public["use"] = "sig"
    public["alg"] = algorithm
    return public
