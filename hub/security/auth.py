"""Authentication: one `Authorization` header in, one `Caller` out.

`Authorization: Bearer <token>` carries either a static API key (`ihk_…`, checked against
the hashes in `[auth.api_keys]`) or an OIDC/JWT access token (three dot-separated parts,
checked against `[auth.jwt]`). No header: the anonymous caller. Anything presented that
does not check out is an `AuthError`, which the HTTP layer answers with 401 and
`WWW-Authenticate: Bearer error="invalid_token"`: a caller who meant to authenticate is
told so, never silently served as anonymous.

Roles: anonymous (no token), reader (any valid token or a reader key), admin (an admin
key, or a token whose `admin_claim` holds one of `admin_values`). Which controlled
sources a caller may read comes from the key's `sources` or from the token's grants
matched against each source's `authz_resource`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hub.config import ConfigError
from hub.security.apikeys import match_key
from hub.security.auth_settings import AuthSettings
from hub.security.identity import ANONYMOUS, Caller, Role
from hub.security.jwt_tokens import JwksError, JwtValidator, TokenError
from schema.errors import CallerError

MAX_TOKEN = 16 * 1024
"""A Fence token is 1–3 KiB; bounding it bounds base64 and JSON work on hostile input."""

Resources = Callable[[], Mapping[str, Sequence[str]]]
"""Per source, the `authz_resource` values that grant it (read on every request, so
sources registered at runtime count at once)."""


class AuthError(Exception):
    """The request's credentials are not acceptable (HTTP 401)."""

    def __init__(self, message: str, code: str = "invalid_token") -> None:
        super().__init__(message)
        self.code = code
        """RFC 6750 error code: `invalid_token` or `invalid_request`."""


class Forbidden(CallerError, PermissionError):
    """The caller is known but lacks the role the action needs."""


def authz_resources(settings: Any) -> list[str]:
    """A source's `authz_resource` option (one string or a list) as a list."""
    value = settings.option("authz_resource") if hasattr(settings, "option") else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


class Authenticator:
    """Turns the `Authorization` header of a request into a `Caller`."""

    def __init__(self, settings: AuthSettings, resources: Resources = dict) -> None:
        self.settings = settings
        self.resources = resources
        try:
            self.jwt = JwtValidator.from_settings(settings.jwt) if settings.jwt else None
        except JwksError as exc:
            raise ConfigError(f"auth.jwt.jwks_file: {exc}") from None

    def authenticate(self, header: str | None) -> Caller:
        """The caller; raises AuthError for a header that is present but not acceptable."""
        if header is None:
            return ANONYMOUS
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError(
                "send credentials as 'Authorization: Bearer <token>'", "invalid_request"
            )
        if len(token) > MAX_TOKEN:
            raise AuthError(f"the bearer token is longer than {MAX_TOKEN} characters")
        if not self.settings.enabled:
            raise AuthError("this hub accepts no bearer tokens (no [auth] is configured)")
        if token.count(".") == 2:
            return self._jwt(token)
        caller = match_key(token, self.settings.api_keys)
        if caller is None:
            raise AuthError("unknown or revoked API key")
        return caller

    def _jwt(self, token: str) -> Caller:
        if self.jwt is None:
            raise AuthError("this hub does not accept JWTs (no [auth.jwt] is configured)")
        try:
            return self.jwt.caller(token, self.resources())
        except TokenError as exc:
            raise AuthError(str(exc)) from None


def require_admin(caller: Caller, action: str) -> None:
    """Refuse `action` unless the caller is an admin, saying why in plain words."""
    if not caller.may(Role.ADMIN):
        who = "an anonymous caller" if caller.identity is None else caller.identity
        raise Forbidden(f"admin role required to {action} ({who} is {caller.role.name.lower()})")
