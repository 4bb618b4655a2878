"""Bounded places for work, that say no rather than queue forever.

Pillow work runs in worker processes, so that a job past its deadline can be
stopped (a thread cannot be): the worker is ended and replaced. File work,
which needs no deadline, runs on threads.
"""

import asyncio
from collections.abc import AsyncIterator
from collections.abc import Callable
import concurrent.futures
import contextlib
import multiprocessing
import threading
from typing import Any

import pebble

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
    """Runs image work in a few processes and admits a bounded number of jobs.

    ``max_workers`` jobs run at once and up to ``max_queue`` more wait; past
    that, :meth:`slot` raises :class:`~asgilook.errors.Overloaded` at once,
    so memory stays bounded however many clients send images. A job that
    runs longer than ``deadline`` seconds is stopped.
    """

    def __init__(
        self, max_workers: int, max_queue: int, deadline: float | None = None
    ) -> None:
        self._max_workers = max_workers
        self._deadline = deadline
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers, thread_name_prefix='asgilook-files'
        )
        self._processes: pebble.ProcessPool | None = None
        self._gate = Gate(max_workers + max_queue, 'images being processed')

    @property
    def admitted(self) -> int:
        """How many jobs hold a slot now."""
        return self._gate.admitted

    def slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one of the bounded places for the duration of a job."""
        return self._gate.enter()

    async def process(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` in a worker process, within the deadline.

        ``func`` and its arguments must pickle (module-level functions,
        bytes, dataclasses). Raises :class:`~asgilook.errors.ImageTooSlow`
        past the deadline, :class:`~asgilook.errors.CorruptImage` if the
        worker died (a decoder crashed, or was killed for its memory).
        """
        if self._processes is None:
            self._processes = pebble.ProcessPool(self._max_workers, context=_CONTEXT)
        job = self._processes.schedule(func, args, timeout=self._deadline)
        try:
            return await asyncio.wrap_future(job)
        except concurrent.futures.TimeoutError as ex:
            raise errors.ImageTooSlow(
                f'The image took longer than {self._deadline:g} seconds to '
                'process, and was stopped.'
            ) from ex
        except pebble.ProcessExpired as ex:
            raise errors.CorruptImage(
                f'The image could not be decoded: its decoder stopped ({ex}).'
            ) from ex
        finally:
            # NOTE: A request that went away takes its job with it.
            job.cancel()

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` on the file threads."""
        return await self.submit(func, *args)

    def submit(self, func: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Queue ``func(*args)`` on the file threads; jobs start in order."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._threads, func, *args)

    async def close(self) -> None:
        """Stop the worker processes; the next job starts new ones."""
        processes, self._processes = self._processes, None
        if processes is not None:
            processes.stop()
            # NOTE: Joining takes pebble's threads a tenth of a second to
            #   notice; nothing here needs to wait for it.
            threading.Thread(target=processes.join, daemon=True).start()


# NOTE: Workers are forked from a server process that has imported the
#   imaging module once, rather than from this one, whose threads fork would
#   copy in whatever state they are in.
_CONTEXT = multiprocessing.get_context('forkserver')
_CONTEXT.set_forkserver_preload(['asgilook.imaging'])
