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
import uuid

import falcon
import falcon.asgi

from .failopen import FailOpenRedis

UP = 'up'
DOWN = 'down'
ABSENT = 'absent'


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

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response):
        index, storage, redis = await asyncio.gather(
            self._check(self._index),
            self._check(self._storage),
            self._check(self._cache),
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

    async def _check(self, probe: Callable[[], Awaitable[tuple[str, str]]]) -> dict:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                state, detail = await probe()
        except TimeoutError:
            state, detail = DOWN, f'no answer within {self._timeout:g} s'
        # NOTE: Whatever a dependency raises is its state, not our failure.
        except Exception as ex:
            state = DOWN
            detail = getattr(ex, 'description', None) or f'{type(ex).__name__}: {ex}'
        seconds = round(time.perf_counter() - started, 6)
        return {'state': state, 'detail': detail, 'seconds': seconds}

    async def _index(self):
        await self._store.backend.version()
        return UP, 'answered'

    async def _storage(self):
        # NOTE: A real write, as an upload makes, and its removal. Named as
        #   an image is, so that the sweep takes it if the removal never comes.
        probe = str(uuid.uuid4())
        await self._store.blobs.write(probe, b'')
        await self._store.blobs.remove(probe)
        return UP, 'a file was written and removed'

    async def _cache(self):
        if self._redis.absent:
            return ABSENT, 'not configured (ASGI_LOOK_REDIS_URL=none): uncached'
        if await self._redis.ping():
            return UP, 'answered'
        return DOWN, 'not answering: serving uncached'
