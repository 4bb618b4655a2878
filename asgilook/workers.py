"""A bounded pool for image work, that says no rather than queue forever."""

import asyncio
from collections.abc import AsyncIterator
from collections.abc import Callable
import concurrent.futures
import contextlib
from typing import Any

from . import errors


class ImageWorkers:
    """Runs Pillow work on a few threads and admits a bounded number of jobs.

    ``max_workers`` jobs run at once and up to ``max_queue`` more wait; past
    that, :meth:`slot` raises :class:`~asgilook.errors.Overloaded` at once,
    so memory stays bounded however many clients send images.
    """

    RETRY_AFTER = 1

    def __init__(self, max_workers: int, max_queue: int) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers, thread_name_prefix='asgilook-image'
        )
        self._capacity = max_workers + max_queue
        self._admitted = 0

    @property
    def admitted(self) -> int:
        """How many jobs hold a slot now."""
        return self._admitted

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the bounded places for the duration of a job."""
        if self._admitted >= self._capacity:
            raise errors.Overloaded(
                f'{self._capacity} images are being processed already; '
                f'retry in {self.RETRY_AFTER} s.',
                retry_after=self.RETRY_AFTER,
            )
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` on the pool's threads."""
        return await self.submit(func, *args)

    def submit(self, func: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Queue ``func(*args)`` on the pool's threads; jobs start in order."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, func, *args)
