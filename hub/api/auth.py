"""Authentication at the HTTP boundary: every request gets a `Caller` before any route.

`AuthMiddleware` (pure ASGI, so it also covers streamed exports and mounted apps) reads
the `Authorization` header once, puts the caller on `request.state.caller` (Starlette's
`scope["state"]`), and answers 401 itself when the header is present but not
acceptable, with `WWW-Authenticate: Bearer error="invalid_token"` as RFC 6750 asks. The
answer names what is wrong, never echoes the token, and never carries a traceback.
"""

from __future__ import annotations

import logging

from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from hub.observability.asgi import HttpMiddleware
from hub.security.auth import Authenticator, AuthError, authz_resources
from hub.security.identity import ANONYMOUS, Caller
from hub.service import Hub

log = logging.getLogger(__name__)
REALM = "imaging-hub"


def authenticator_for(hub: Hub) -> Authenticator:
    """The hub's authenticator; source grants are read from the live adapters, so a source
    registered at runtime is grantable at once."""
    return Authenticator(
        hub.config.auth,
        lambda: {n: authz_resources(a.settings) for n, a in hub.adapters.items()},
    )


def unauthorized(error: AuthError) -> JSONResponse:
    """401 with the RFC 6750 challenge; the description is our own words, quote-free."""
    message = str(error)
    description = message.replace("\\", "").replace('"', "'")
    challenge = f'Bearer realm="{REALM}", error="{error.code}", error_description="{description}"'
    return JSONResponse(
        {"error": message}, status_code=401, headers={"WWW-Authenticate": challenge}
    )


class AuthMiddleware(HttpMiddleware):
    """Authenticates each HTTP request with `app.state.authenticator` (set at startup)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [v for k, v in scope["headers"] if k == b"authorization"]
        state = scope.setdefault("state", {})
        state["caller"] = ANONYMOUS
        if headers:
            try:
                state["caller"] = self._caller(scope, headers)
            except AuthError as exc:
                log.info("refused credentials on %s: %s", scope.get("path", "?"), exc)
                await unauthorized(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _caller(scope: Scope, headers: list[bytes]) -> Caller:
        if len(headers) > 1:
            raise AuthError("send one Authorization header, not several", "invalid_request")
        app = scope.get("app")
        authenticator = getattr(getattr(app, "state", None), "authenticator", None)
        if not isinstance(authenticator, Authenticator):
            raise AuthError("the hub is still starting; try again shortly", "invalid_request")
        return authenticator.authenticate(headers[0].decode("latin-1"))
