"""Test credentials: RSA keys, a JWKS file, Fence-shaped access tokens, hashed API keys.

Tokens follow what Gen3 Fence issues: RS256 with a `kid`, `aud` listing the client id
and scopes, `pur: access`, and the user under `context.user` with `projects` mapping a
project id to its privileges.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://fence.example.org/user"
AUDIENCE = "imaging-hub"
KID = "key-01"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_jwks(path: Path, *keys: tuple[str, rsa.RSAPrivateKey]) -> Path:
    entries = []
    for kid, key in keys:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        entries.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
    path.write_text(json.dumps({"keys": entries}))
    return path


def fence_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "7",
        "iss": ISSUER,
        "aud": ["openid", "user", AUDIENCE],
        "scope": ["openid", "user"],
        "pur": "access",
        "azp": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
        "context": {
            "user": {
                "name": "alice@example.org",
                "is_admin": False,
                "projects": {"phs000178": ["read", "read-storage"], "phs000999": ["create"]},
            }
        },
    }
    claims.update(changes)
    return claims


def sign(claims: dict[str, Any], key: rsa.RSAPrivateKey, kid: str | None = KID) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


def unsigned(claims: dict[str, Any], kid: str = KID) -> str:
    """An `alg: none` token: header and claims, empty signature."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{part(claims)}."
