"""What the hub's ASGI middlewares share: HTTP only, and whether an answer has begun."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMiddleware:
    """ASGI middleware that acts on HTTP requests and passes every other scope (lifespan,
    websockets) straight through; a subclass writes `handle` for the HTTP case only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class TrackedSend:
    """`send`, noting when the response starts: after that, an error can no longer be
    answered with a response of its own, only logged and the connection cut short."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)
