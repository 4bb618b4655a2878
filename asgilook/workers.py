"""Bounded places for work, that say no rather than queue forever."""

import asyncio
from collections.abc import AsyncIterator
from collections.abc import Callable
import concurrent.futures
import contextlib
from typing import Any

from . import errors

RETRY_AFTER = 1


class Gate:
    """Admits up to ``capacity`` holders at once; the next one gets a 503."""

    def __init__(self, capacity: int, busy: str) -> None:
        self.capacity = capacity
        self.admitted = 0
        self._busy = busy

    @contextlib.asynccontextmanager
    async def enter(self) -> AsyncIterator[None]:
        """Hold one of the places for the duration of the block."""
        if self.admitted >= self.capacity:
            raise errors.Overloaded(
                f'Too many {self._busy} at once ({self.capacity}); '
                f'retry in {RETRY_AFTER} s.',
                retry_after=RETRY_AFTER,
            )
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1


class ImageWorkers:
    """Runs Pillow work on a few threads and admits a bounded number of jobs.

    ``max_workers`` jobs run at once and up to ``max_queue`` more wait; past
    that, :meth:`slot` raises :class:`~asgilook.errors.Overloaded` at once,
    so memory stays bounded however many clients send images.
    """

    def __init__(self, max_workers: int, max_queue: int) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers, thread_name_prefix='asgilook-image'
        )
        self._gate = Gate(max_workers + max_queue, 'images being processed')

    @property
    def admitted(self) -> int:
        """How many jobs hold a slot now."""
        return self._gate.admitted

    def slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one of the bounded places for the duration of a job."""
        return self._gate.enter()

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` on the pool's threads."""
        return await self.submit(func, *args)

    def submit(self, func: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Queue ``func(*args)`` on the pool's threads; jobs start in order."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, func, *args)
