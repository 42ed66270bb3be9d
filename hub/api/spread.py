"""Spreading kept-alive connections over worker processes.

With `serve --workers N`, whichever worker accepts a connection answers every request
on it for as long as the client keeps it open. Thirty-two clients opened at once split
unevenly (18 and 14 on two workers, measured), and the clients of the busier worker
wait longer for the whole session. So roughly one answer in `requests_per_connection`
carries `Connection: close`; the client reconnects, and the new connection goes to a
worker that is free to accept it, which is the less busy one. nginx does the same with
`keepalive_requests`. Random rather than counted: no state per connection to keep.
"""

from __future__ import annotations

import random

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CLOSE = (b"connection", b"close")


class SpreadConnections:
    """Asks the client to reconnect after about `every` requests (0: never)."""

    def __init__(self, app: ASGIApp, every: int) -> None:
        self.app = app
        self.every = every

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.every <= 0 or random.random() * self.every >= 1:
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != CLOSE[0]]
                message = {**message, "headers": [*headers, CLOSE]}
            await send(message)

        await self.app(scope, receive, send_closing)
