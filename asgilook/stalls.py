"""A bound on how long a write to a client may wait for it.

A client that stops reading, its connection left open, holds whatever its
answer holds (an event stream's place in every publish, a download's
connection to the storage) for as long as it likes: uvicorn's send() waits
for it, however long. Wrapped in :class:`BoundedSend`, a write that cannot go
out within a bound drops the connection instead.
"""

import asyncio
import logging
import time
from typing import Any

from .errors import ClientGone

logger = logging.getLogger(__name__)


class BoundedSend:
    """An ASGI send() whose every write goes out within ``stall`` seconds, or
    drops the connection; ``who`` names the client in the log. ``close()``
    once the answer is done. With ``cut_when_gone``, a part of a body sent
    once the client is gone (under uvicorn) raises
    :class:`~asgilook.errors.ClientGone`, so that the rest is not made.

    NOTE: One timer an answer, not a timeout a write: a timeout scope costs
    more than the write it bounds when the client keeps up.
    """

    def __init__(
        self, send: Any, stall: float, who: str, cut_when_gone: bool = False
    ) -> None:
        self._send = send
        # NOTE: uvicorn's send() returns at once once the client is gone, and
        #   Falcon would read a stream to its end for nothing; its request
        #   cycle says whether the client is gone.
        self._cycle = getattr(send, '__self__', None) if cut_when_gone else None
        self._stall = stall
        self._who = who
        self.started = False
        # NOTE: Since when a write waits (None: none does).
        self._waiting: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._aborted = False

    async def __call__(self, message: dict) -> None:
        self.started = True
        # NOTE: Armed by the first part of a body that has more to come: a
        #   write waits only once an earlier one filled the buffers, so an
        #   answer sent in one piece needs no timer at all.
        if self._timer is None and message.get('more_body'):
            self._task = asyncio.current_task()
            self._timer = asyncio.get_running_loop().call_later(
                self._stall, self._check
            )
        self._waiting = time.monotonic()
        try:
            await self._send(message)
        except asyncio.CancelledError:
            if not self._aborted:
                raise
            self._task.uncancel()
            raise ConnectionAbortedError(
                f'{self._who} took nothing for {self._stall:g} s'
            ) from None
        finally:
            self._waiting = None
        if getattr(self._cycle, 'disconnected', False) and message.get('more_body'):
            raise ClientGone()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _check(self) -> None:
        # NOTE: asyncio's clock is time.monotonic().
        waited = 0.0 if self._waiting is None else time.monotonic() - self._waiting
        if waited < self._stall:
            self._timer = asyncio.get_running_loop().call_later(
                self._stall - waited, self._check
            )
            return
        logger.warning(
            '%s took nothing for %g s; it was disconnected', self._who, self._stall
        )
        # NOTE: ASGI has no way to drop a connection. uvicorn's send() is a
        #   method of the request's cycle, which holds the transport; abort(),
        #   for close() would wait for the client to read what is buffered.
        #   Under any other server the write fails, and the server closes the
        #   connection as it does when an app fails.
        transport = getattr(getattr(self._send, '__self__', None), 'transport', None)
        if transport is not None:
            transport.abort()
        else:
            self._aborted = True
            self._task.cancel()
