"""Probes for whoever runs the service: is it alive, and can it work now?

``/healthz`` touches nothing: a process that answers it is alive.
``/readyz`` checks every dependency, each within ``config.readiness_timeout``
seconds, and answers 503 when the service could not store an upload.
"""

import asyncio
from collections.abc import Awaitable
from collections.abc import Callable
import time
from typing import Any

import falcon
import falcon.asgi

from .blobs.files import probe_name
from .failopen import FailOpenRedis

UP = 'up'
DOWN = 'down'
ABSENT = 'absent'
# NOTE: A block's worth: an empty file takes no data block, and would be
#   written on a full disk.
PROBE = bytes(4096)


class Health:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response):
        resp.media = {'status': 'ok'}
        resp.cache_control = ['no-store']

    on_head = on_get


class Readiness:
    def __init__(self, config: Any, store: Any, redis: FailOpenRedis) -> None:
        self._timeout = config.readiness_timeout
        self._store = store
        self._redis = redis
        # NOTE: One check of each dependency at a time, whoever asks: a
        #   dependency that hangs holds one check, not one per probe.
        self._running: dict[str, asyncio.Task] = {}

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response):
        index, storage, redis = await asyncio.gather(
            self._check('index', self._index),
            self._check('storage', self._storage),
            self._check('redis', self._cache),
        )
        if DOWN in (index['state'], storage['state']):
            status = 'unavailable'
            resp.status = falcon.HTTP_503
        else:
            status = 'degraded' if redis['state'] == DOWN else 'ready'
        resp.media = {
            'status': status,
            'checks': {'index': index, 'storage': storage, 'redis': redis},
        }
        resp.cache_control = ['no-store']

    on_head = on_get

    async def _check(
        self, name: str, probe: Callable[[], Awaitable[tuple[str, str]]]
    ) -> dict:
        started = time.perf_counter()
        task = self._running.get(name)
        if task is None or task.done():
            task = self._running[name] = asyncio.ensure_future(probe())
            task.add_done_callback(_retrieve)
        # NOTE: Waited for, not awaited: a check that is told to stop may
        #   take its time (a driver waiting on a stopped server); we do not.
        done, _ = await asyncio.wait({task}, timeout=self._timeout)
        if done:
            state, detail = _outcome(task)
        else:
            task.cancel()
            state, detail = DOWN, f'no answer within {self._timeout:g} s'
        seconds = round(time.perf_counter() - started, 6)
        return {'state': state, 'detail': detail, 'seconds': seconds}

    async def _index(self):
        await self._store.backend.version()
        return UP, 'answered'

    async def _storage(self):
        # NOTE: A real write, as an upload makes, and its removal. Named so
        #   that the sweep takes it if the removal never comes (a write that
        #   landed after the check gave up), without taking it for an orphan.
        probe = probe_name()
        await self._store.blobs.write(probe, PROBE)
        # NOTE: Shielded: a check stopped at its timeout still removes it.
        await asyncio.shield(self._store.blobs.remove(probe))
        return UP, 'a file was written and removed'

    async def _cache(self):
        if self._redis.absent:
            return ABSENT, 'not configured (ASGI_LOOK_REDIS_URL=none): uncached'
        if await self._redis.ping():
            return UP, 'answered'
        return DOWN, 'not answering: serving uncached'


def _outcome(task: asyncio.Task) -> tuple[str, str]:
    """The state and detail a finished check found."""
    try:
        return task.result()
    except asyncio.CancelledError:
        return DOWN, 'stopped after an earlier check took too long'
    # NOTE: Whatever a dependency raises is its state, not our failure.
    except Exception as ex:
        return DOWN, getattr(ex, 'description', None) or f'{type(ex).__name__}: {ex}'


def _retrieve(task: asyncio.Task) -> None:
    # NOTE: A check nobody waited for to the end still has its error read.
    if not task.cancelled():
        task.exception()
