"""Static API keys: made once, stored only as a hash, compared in constant time.

Why plain SHA-256 and not a slow KDF: a key is 32 random bytes (256 bits) from
`secrets`, so no dictionary or brute-force search of its hash is feasible, and a salt
protects against precomputed tables that cannot exist for such keys. A slow KDF
(scrypt, argon2) defends low-entropy passwords, which these are not, and would cost
every authenticated request tens of milliseconds per configured key. This is the
scheme GitHub and PyPI use for their API tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from hub.security.auth_settings import HASH_PREFIX, KEY_PREFIX, ApiKeySettings
from hub.security.identity import Caller, Role

KEY_BYTES = 32


@dataclass(frozen=True)
class NewKey:
    key: str
    """Shown once; the hub keeps only `hash`."""
    hash: str

    def config_table(self, name: str, role: str, sources: list[str] | None = None) -> str:
        """The TOML table to paste into the hub config."""
        lines = [f"[auth.api_keys.{name}]", f'hash = "{self.hash}"', f'role = "{role}"']
        if sources:
            lines.append("sources = [" + ", ".join(f'"{s}"' for s in sources) + "]")
        return "\n".join(lines)


def hash_key(key: str) -> str:
    """The at-rest form of a key: `sha256:<hex>`."""
    return HASH_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def new_key() -> NewKey:
    """A fresh random key (`ihk_` + 43 URL-safe characters) and its hash."""
    key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    return NewKey(key, hash_key(key))


ROLES = {"reader": Role.READER, "admin": Role.ADMIN}


def match_key(presented: str, keys: Mapping[str, ApiKeySettings]) -> Caller | None:
    """The caller a presented key belongs to, or None.

    Every configured hash is compared (`hmac.compare_digest`), with no early exit, so the
    time taken says nothing about which key, or how much of one, matched."""
    digest = hash_key(presented).encode()
    found: tuple[str, ApiKeySettings] | None = None
    for name, settings in keys.items():
        if hmac.compare_digest(digest, settings.hash.encode()):
            found = (name, settings)
    if found is None:
        return None
    name, settings = found
    return Caller(
        identity=f"key:{name}",
        role=ROLES[settings.role],
        authorized_sources=frozenset(settings.sources),
    )
