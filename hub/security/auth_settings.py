"""The `[auth]` table of the hub config: API keys (hashed) and OIDC/JWT validation.

```toml
[auth.api_keys.ci-bot]                 # one table per key; the name shows in the audit log
hash = "sha256:9f86d08…"               # `imaging-hub auth new-key ci-bot` prints key and hash
role = "admin"                         # "reader" (default) or "admin"
sources = ["midrc"]                    # controlled sources this key may see records of

[auth.jwt]                             # tokens from an OIDC provider such as Gen3 Fence
issuer = "https://data.midrc.org/user"
audience = "imaging-hub"               # Fence lists scopes and the client id in `aud`
jwks_file = "/etc/imaging-hub/fence-jwks.json"   # read from disk: no network at request time
admin_claim = "context.user.is_admin"  # dotted path into the claims; default: no admins
admin_values = [true]
grants_claims = ["context.user.projects"]        # where the token lists what it may read
```

A source is granted to a token that lists one of the source's `authz_resource` values
(`[sources.midrc] authz_resource = "/programs/midrc"`, or a project id such as
`"phs000178"`); a resource path also grants the paths below it, as Gen3 Arborist does.
Config never holds a key in plain text: a `hash` that is not a hash is refused.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

HASH_PREFIX = "sha256:"
HASH_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")
KEY_PREFIX = "ihk_"
"""Every key `new-key` makes starts so, which lets config validation spot a pasted key."""

ClaimValue = str | bool | int
Algorithm = Literal["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]


def _rs256() -> list[Algorithm]:
    return ["RS256"]


def _true() -> list[ClaimValue]:
    return [True]


class ApiKeySettings(BaseModel):
    """One static API key: its hash, role and the controlled sources it authorises."""

    model_config = ConfigDict(extra="forbid")

    hash: str
    role: Literal["reader", "admin"] = "reader"
    sources: list[str] = Field(default_factory=list)

    @field_validator("hash")
    @classmethod
    def _is_a_hash(cls, value: str) -> str:
        value = value.strip()
        if HASH_PATTERN.match(value.lower()):
            return value.lower()
        if value.startswith(KEY_PREFIX) or not value.startswith(HASH_PREFIX):
            raise ValueError(
                "a plaintext key is refused: store its hash as 'sha256:<64 hex digits>' "
                "(`imaging-hub auth new-key NAME` prints a key and its hash)"
            )
        raise ValueError("must be 'sha256:' followed by 64 hexadecimal digits")


class JwtSettings(BaseModel):
    """Validation of OIDC/JWT bearer tokens against one issuer and a local JWKS file."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(min_length=1)
    """The `iss` every token must carry, exactly."""
    audience: list[str] = Field(min_length=1)
    """Accepted `aud` values: a token must list at least one (a string is one value)."""
    jwks_file: Path
    """A JWKS JSON file (`{"keys": [...]}`) or Fence's `/jwt/keys` answer
    (`{"keys": [["kid", "PEM"], ...]}`); read at startup, never fetched."""
    algorithms: list[Algorithm] = Field(default_factory=_rs256, min_length=1)
    """Asymmetric algorithms only: `none` and HMAC (key confusion) are never accepted."""
    leeway_s: float = Field(default=30.0, ge=0, le=300)
    """Clock skew tolerated on `exp`, `nbf` and `iat`."""
    identity_claims: list[str] = Field(default_factory=lambda: ["context.user.name", "sub"])
    """Where the caller's name is, first present wins (Fence: `context.user.name`)."""
    admin_claim: str | None = None
    """Dotted path of the claim that makes an admin; None: JWT callers are readers."""
    admin_values: list[ClaimValue] = Field(default_factory=_true)
    """Values of `admin_claim` that make an admin (a list claim needs one of them)."""
    grants_claims: list[str] = Field(default_factory=lambda: ["context.user.projects"])
    """Claims listing what the token may read: a list of ids or resource paths, a
    space-separated string, or Fence's `{project: [privileges]}` mapping."""
    grant_privilege: str | None = "read"
    """In a `{project: [privileges]}` mapping, the privilege a project needs to count."""
    purpose: str | None = "access"
    """Fence marks tokens `pur: access|id|refresh`; a token whose `pur` differs is refused
    (tokens without `pur`, from other providers, pass)."""

    @field_validator("audience", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class AuthSettings(BaseModel):
    """The `[auth]` table; empty means every caller is anonymous."""

    model_config = ConfigDict(extra="forbid")

    api_keys: dict[str, ApiKeySettings] = Field(default_factory=dict)
    jwt: JwtSettings | None = None

    @field_validator("api_keys")
    @classmethod
    def _key_names(cls, value: dict[str, ApiKeySettings]) -> dict[str, ApiKeySettings]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
                raise ValueError(f"key name {name!r}: use letters, digits, '-', '_'")
        seen: dict[str, str] = {}
        for name, key in value.items():
            if key.hash in seen:
                raise ValueError(f"keys {seen[key.hash]!r} and {name!r} have the same hash")
            seen[key.hash] = name
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.api_keys) or self.jwt is not None
