"""A bound on how long a write to a client may wait for it.

A client that stops reading, its connection left open, holds whatever its
answer holds (an event stream's place in every publish, a download's
connection to the storage) for as long as it likes: uvicorn's send() waits
for it, however long. Wrapped in :class:`BoundedSend`, a write that cannot go
out within a bound drops the connection instead.
"""

import asyncio
import logging
from typing import Any

logger = logging.getLogger(__name__)


class BoundedSend:
    """An ASGI send() whose every write goes out within ``stall`` seconds, or
    drops the connection; ``who`` names the client in the log."""

    def __init__(self, send: Any, stall: float, who: str) -> None:
        self._send = send
        self._stall = stall
        self._who = who
        self.started = False

    async def __call__(self, message: dict) -> None:
        self.started = True
        try:
            async with asyncio.timeout(self._stall):
                await self._send(message)
        except TimeoutError:
            self._disconnect()

    def _disconnect(self) -> None:
        logger.warning(
            '%s took nothing for %g s; it was disconnected', self._who, self._stall
        )
        # NOTE: ASGI has no way to drop a connection. uvicorn's send() is a
        #   method of the request's cycle, which holds the transport; abort(),
        #   for close() would wait for the client to read what is buffered.
        #   Any other server closes it when the app fails.
        transport = getattr(getattr(self._send, '__self__', None), 'transport', None)
        if transport is None:
            raise ConnectionAbortedError(
                f'{self._who} took nothing for {self._stall:g} s'
            )
        transport.abort()
