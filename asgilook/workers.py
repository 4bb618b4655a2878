"""Bounded places for work: jobs wait their turn, for a while, in order.

Pillow work runs in worker processes, so that a job past its deadline can be
stopped (a thread cannot be): the worker is ended and replaced. File work,
which needs no deadline, runs on threads.
"""

import asyncio
import collections
from collections.abc import AsyncIterator
from collections.abc import Callable
import concurrent.futures
import concurrent.futures.process
import contextlib
import ctypes
import multiprocessing
import threading
import time
from typing import Any

import pebble

from . import errors
from . import metrics
from . import timing

RETRY_AFTER = 1
# NOTE: Seconds without image work after which the workers are ended.
IDLE_AFTER = 2.0


class Gate:
    """Admits holders while their weights fit in ``capacity``.

    The others wait their turn, first come first served, for up to ``wait``
    seconds; then, or when ``queue`` are waiting already, they get a 503. A
    holder heavier than the whole capacity is admitted alone.
    """

    def __init__(
        self,
        capacity: int,
        busy: str,
        wait: float = 0.0,
        queue: int | None = None,
        name: str | None = None,
    ) -> None:
        self.capacity = capacity
        # NOTE: What metrics call it (uploads, images).
        self.name = name or busy
        self.admitted = 0
        self._busy = busy
        self._wait = wait
        self._queue = queue
        self._waiting: collections.deque = collections.deque()

    @property
    def waiting(self) -> int:
        """How many wait for a place now."""
        return len(self._waiting)

    @contextlib.asynccontextmanager
    async def enter(self, weight: int = 1) -> AsyncIterator[None]:
        """Hold ``weight`` of the capacity for the duration of the block."""
        weight = min(max(weight, 1), self.capacity)
        if self._waiting or self.admitted + weight > self.capacity:
            await self._wait_for(weight)
        else:
            self.admitted += weight
        try:
            yield
        finally:
            self.admitted -= weight
            self._wake()

    async def _wait_for(self, weight):
        if not self._wait or (self._queue is not None and self.waiting >= self._queue):
            raise self._overloaded(waited=False)
        turn = asyncio.get_running_loop().create_future()
        entry = (weight, turn)
        self._waiting.append(entry)
        metrics.waiting(self.name, 1)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._wait):
                await turn
        except BaseException as ex:
            # NOTE: Its turn may have come just as it timed out or went away;
            #   or a holder leaving may have passed over it already.
            if turn.done() and not turn.cancelled():
                self.admitted -= weight
            elif entry in self._waiting:
                self._waiting.remove(entry)
            self._wake()
            if isinstance(ex, TimeoutError):
                raise self._overloaded(waited=True) from None
            raise
        finally:
            metrics.waiting(self.name, -1)
            timing.add('queue', time.perf_counter() - started)

    def _wake(self):
        while self._waiting and self.admitted + self._waiting[0][0] <= self.capacity:
            weight, turn = self._waiting.popleft()
            if turn.cancelled():
                # NOTE: Its waiter went away, and has not run since.
                continue
            self.admitted += weight
            turn.set_result(None)

    def _overloaded(self, waited):
        metrics.refused(self.name)
        waited = f'waited {self._wait:g} s; ' if waited else ''
        return errors.Overloaded(
            f'Too many {self._busy} at once; {waited}retry in {RETRY_AFTER} s.',
            retry_after=RETRY_AFTER,
        )


class ImageWorkers:
    """Runs image work in a few processes, admitting jobs by their memory.

    A job's weight is what its decoded pixels take; jobs run while their
    weights fit in ``memory`` bytes, and the others wait in order (up to
    ``queue`` of them, for ``wait`` seconds) before a 503. Only
    ``max_workers`` run at once; one that runs longer than ``deadline``
    seconds is stopped.
    """

    def __init__(
        self,
        max_workers: int,
        max_queue: int | None = None,
        deadline: float | None = None,
        memory: int = 2**30,
        wait: float = 0.0,
        idle: float = IDLE_AFTER,
    ) -> None:
        self._max_workers = max_workers
        self._idle_after = idle
        self._deadline = deadline
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers, thread_name_prefix='asgilook-files'
        )
        self._processes: pebble.ProcessPool | None = None
        self._gate = Gate(memory, 'images being processed', wait, max_queue, 'images')
        self._jobs = 0
        self._idle: asyncio.TimerHandle | None = None

    @classmethod
    def from_config(cls, config: Any) -> 'ImageWorkers':
        return cls(
            config.image_workers,
            config.image_queue,
            config.image_deadline,
            config.image_memory,
            config.queue_timeout,
        )

    def slot(self, weight: int = 1) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold room for a job of ``weight`` bytes for the duration of a job."""
        return self._gate.enter(weight)

    async def process(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` in a worker process, within the deadline.

        ``func`` and its arguments must pickle (module-level functions,
        bytes, dataclasses). Raises :class:`~asgilook.errors.ImageTooSlow`
        past the deadline, :class:`~asgilook.errors.CorruptImage` if the
        worker died (a decoder crashed, or was killed for its memory). The
        stages it times (``timing.stage``) come back with its result, and
        are added to the request's timing and metrics here.
        """
        if self._processes is None:
            self._processes = self.start_pool(self._max_workers)
        job = self._processes.schedule(
            timing.collect, (func, *args), timeout=self._deadline
        )
        self._started()
        try:
            measured = await asyncio.wrap_future(job)
        except concurrent.futures.TimeoutError as ex:
            raise errors.ImageTooSlow(
                f'The image took longer than {self._deadline:g} seconds to '
                'process, and was stopped.'
            ) from ex
        except pebble.ProcessExpired as ex:
            raise errors.CorruptImage(
                f'The image could not be decoded: its decoder stopped ({ex}).'
            ) from ex
        except concurrent.futures.process.BrokenProcessPool as ex:
            # NOTE: Workers that cannot even start: the next job tries anew.
            await self.close()
            raise errors.Overloaded(
                f'The image workers are not available ({ex}); '
                f'retry in {RETRY_AFTER} s.',
                retry_after=RETRY_AFTER,
            ) from ex
        finally:
            # NOTE: A request that went away takes its job with it.
            job.cancel()
            self._finished()
        for name, _, seconds in measured.stages:
            timing.add(name, seconds)
        metrics.image_work(measured.stages)
        return measured.result

    def _started(self):
        self._jobs += 1
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _finished(self):
        self._jobs -= 1
        if not self._jobs:
            self._idle = asyncio.get_running_loop().call_later(
                self._idle_after, self._rest
            )

    def _rest(self):
        """After a while without work: end the workers, return the memory.

        The next job starts new workers (a fork, a few milliseconds).
        """
        self._idle = None
        self._stop_pool()
        give_memory_back()

    def start_pool(self, workers: int) -> pebble.ProcessPool:
        """The pool of worker processes, started when the first job comes."""
        return pebble.ProcessPool(workers, context=_CONTEXT)

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` on the file threads."""
        return await self.submit(func, *args)

    def submit(self, func: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Queue ``func(*args)`` on the file threads; jobs start in order."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._threads, func, *args)

    async def close(self) -> None:
        """Stop the worker processes; the next job starts new ones."""
        self._stop_pool()

    def _stop_pool(self):
        processes, self._processes = self._processes, None
        if processes is not None:
            processes.stop()
            # NOTE: Joining takes pebble's threads a tenth of a second to
            #   notice; nothing here needs to wait for it.
            threading.Thread(target=processes.join, daemon=True).start()


def give_memory_back() -> None:
    """Hand the memory this process has freed back to the system.

    glibc keeps freed blocks for later (and raises its mmap threshold to the
    largest block freed), so after a burst of large images a process stays
    as large as the burst made it. Trimming costs page faults later, so it
    is done when work stops, not after every job.
    """
    _MALLOC_TRIM(0)


# NOTE: malloc_trim is glibc's; elsewhere there is nothing to do.
_MALLOC_TRIM = getattr(ctypes.CDLL(None), 'malloc_trim', lambda *args: 0)

# NOTE: Workers are forked from a server process that has imported the
#   imaging module once, rather than from this one, whose threads fork would
#   copy in whatever state they are in.
_CONTEXT = multiprocessing.get_context('forkserver')
_CONTEXT.set_forkserver_preload(['asgilook.imaging'])
