"""OIDC/JWT bearer tokens, as Gen3 Fence issues them, checked against a local JWKS file.

Fence access tokens are RS256 JWTs whose header names the signing key (`kid`); the
claims carry `iss`, `aud` (a list: the client id plus the OAuth scopes), `scope`, `sub`,
`pur` ("access"), `exp`, and the user under `context.user` (`name`, `is_admin`, and in
older tokens `projects`: `{"phs000178": ["read", "read-storage"]}`). Which claims make
an admin and which list grants is configuration (`JwtSettings`); nothing here fetches
keys over the network, so a request never waits on the identity provider.

Every failure is a `TokenError` whose message says what is wrong with the token in
words fit for the caller; it never quotes the token or a claim value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from hub.security.auth_settings import JwtSettings
from hub.security.identity import Caller, Role


class TokenError(Exception):
    """The bearer token is not acceptable; the message is safe to send back."""


class JwksError(ValueError):
    """The JWKS file cannot be used (a configuration problem, found at startup)."""


@dataclass(frozen=True)
class Key:
    jwk: PyJWK
    alg: str | None
    """The algorithm the JWKS entry declares (`alg`); None when it declares none."""


FAMILIES = {"RS": "RSA", "PS": "RSA", "ES": "EC"}


def load_jwks(path: Path) -> dict[str, Key]:
    """Keys by `kid` from a JWKS file, or from Fence's `/jwt/keys` answer
    (`{"keys": [["key-01", "-----BEGIN PUBLIC KEY-----..."], ...]}`)."""
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise JwksError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise JwksError(f"{path} is not valid JSON") from None
    keys = raw.get("keys") if isinstance(raw, dict) else None
    if not isinstance(keys, list) or not keys:
        raise JwksError(f'{path} has no "keys" list')
    if all(isinstance(k, list) and len(k) == 2 for k in keys):  # Fence's own format
        return {str(kid): Key(_pem_key(str(pem), path), None) for kid, pem in keys}
    try:
        found = PyJWKSet.from_dict(raw).keys
    except jwt.PyJWKSetError as exc:
        raise JwksError(f"{path} holds no usable key: {exc}") from None
    declared = {k.get("kid"): k.get("alg") for k in keys if isinstance(k, dict)}
    return {str(k.key_id or ""): Key(k, declared.get(k.key_id)) for k in found}


def _pem_key(pem: str, path: Path) -> PyJWK:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        public = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        raise JwksError(f"{path} holds a key that is not a PEM public key") from None
    if not isinstance(public, rsa.RSAPublicKey):
        raise JwksError(f"{path}: Fence signs with RSA keys; found {type(public).__name__}")
    return PyJWK.from_dict(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public)), "RS256")


@dataclass
class JwtValidator:
    """Validates one token against the configured issuer, audience and keys."""

    settings: JwtSettings
    keys: dict[str, Key]

    @classmethod
    def from_settings(cls, settings: JwtSettings) -> JwtValidator:
        return cls(settings, load_jwks(settings.jwks_file))

    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims, or TokenError."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenError("the token is not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.settings.algorithms:
            raise TokenError(
                f"the token's signing algorithm is not accepted (accepted: "
                f"{', '.join(self.settings.algorithms)})"
            )
        key = self._key(header.get("kid"))
        if (key.alg or alg) != alg or FAMILIES[alg[:2]] != key.jwk.key_type:
            raise TokenError("the token's algorithm does not match its signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.jwk.key,
                algorithms=[alg],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_s,
                options={"require": ["exp", "iss", "aud"], "strict_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("the token is not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidIssuerError:
            raise TokenError("the token was not issued by the configured issuer") from None
        except jwt.InvalidAudienceError:
            raise TokenError("the token is not meant for this hub (audience)") from None
        except jwt.InvalidSignatureError:
            raise TokenError("the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"the token lacks the required {exc.claim!r} claim") from None
        except jwt.PyJWTError:  # malformed parts, a key that cannot verify this algorithm
            raise TokenError("the token is not a valid JWT") from None
        purpose = claims.get("pur")
        if self.settings.purpose and purpose is not None and purpose != self.settings.purpose:
            raise TokenError(f"the token is not an {self.settings.purpose} token")
        return claims

    def _key(self, kid: object) -> Key:
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        if not isinstance(kid, str) or kid not in self.keys:
            raise TokenError("the token was signed with a key this hub does not know (kid)")
        return self.keys[kid]

    def caller(self, token: str, resources: Mapping[str, Sequence[str]]) -> Caller:
        """The caller a valid token stands for: name, role, and the sources it grants."""
        claims = self.claims(token)
        name = next(
            (v for p in self.settings.identity_claims if isinstance(v := claim(claims, p), str)),
            None,
        )
        if not name:
            where = ", ".join(self.settings.identity_claims)
            raise TokenError(f"the token names no user (looked at {where})")
        role = Role.ADMIN if self._is_admin(claims) else Role.READER
        held = set(self._grants(claims))
        granted = frozenset(
            source
            for source, wanted in resources.items()
            if any(covers(g, r) for g in held for r in wanted)
        )
        return Caller(identity=f"user:{name}", role=role, authorized_sources=granted)

    def _is_admin(self, claims: Mapping[str, Any]) -> bool:
        if self.settings.admin_claim is None:
            return False
        value = claim(claims, self.settings.admin_claim)
        wanted = self.settings.admin_values
        values = [*value.split(), value] if isinstance(value, str) else value
        if isinstance(values, list):
            return any(_equal(v, w) for v in values for w in wanted)
        return any(_equal(value, w) for w in wanted)

    def _grants(self, claims: Mapping[str, Any]) -> Iterable[str]:
        privilege = self.settings.grant_privilege
        for path in self.settings.grants_claims:
            value = claim(claims, path)
            if isinstance(value, str):
                yield from value.split()
            elif isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))
            elif isinstance(value, dict):  # Fence: {project: [privileges]}
                for project, privileges in value.items():
                    if privilege is None or (
                        isinstance(privileges, list) and privilege in privileges
                    ):
                        yield str(project)


def _equal(value: object, wanted: object) -> bool:
    """Claim comparison without Python's `True == 1`."""
    return type(value) is type(wanted) and value == wanted


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (`context.user.name`), None when any step is missing."""
    value: Any = claims
    for step in path.split("."):
        if not isinstance(value, Mapping) or step not in value:
            return None
        value = value[step]
    return value


def covers(granted: str, resource: str) -> bool:
    """A grant covers the same id, or a resource path below it (`/programs/midrc` covers
    `/programs/midrc/projects/CT`), never a sibling that merely shares a prefix."""
    if granted == resource:
        return True
    return granted.startswith("/") and resource.startswith(granted.rstrip("/") + "/")
