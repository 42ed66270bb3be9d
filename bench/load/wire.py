"""A lean HTTP/1.1 client on asyncio streams: one keep-alive connection per client.

The load generator shares the machine's two cores with the server it measures, so
every millisecond it spends per request is taken from the hub. httpx costs roughly a
millisecond of CPU per request in its pool and header machinery; a POST on a kept-alive
stream, read by Content-Length (or chunked), costs a fraction of that. Only what the
hub sends is understood: status line, headers, a body by length or chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


class WireError(Exception):
    """The connection failed or the answer was not HTTP we understand."""


@dataclass
class Answer:
    status: int
    body: bytes


class Connection:
    """One persistent connection; reconnects once when the server had closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> Answer:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        fresh = self._writer is None
        try:
            return await self._exchange(head + body)
        except (ConnectionError, asyncio.IncompleteReadError, WireError):
            await self.close()
            if fresh:  # a new connection that failed: a real failure
                raise
            return await self._exchange(head + body)  # a kept-alive one the server closed

    async def _exchange(self, request: bytes) -> Answer:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(request)
        await self._writer.drain()
        try:
            return await self._read(self._reader)
        except ValueError as exc:  # a status, length or chunk size that is not a number
            raise WireError(f"malformed HTTP answer: {exc}") from None

    async def _read(self, reader: asyncio.StreamReader) -> Answer:
        status_line = await reader.readline()
        if not status_line:
            raise WireError("connection closed before the status line")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise WireError(f"not an HTTP status line: {status_line[:80]!r}")
        status = int(parts[1])
        length, chunked, close = None, False, False
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value.strip())
            elif key == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif key == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            body = await _chunks(reader)
        elif length is not None:
            body = await reader.readexactly(length)
        else:
            body, close = await reader.read(), True
        if close:
            await self.close()
        return Answer(status, body)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readline()  # the blank line after the last chunk (no trailers)
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readline()
