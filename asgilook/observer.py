"""The middleware that times, counts and logs every request.

It comes first in the app's middleware, so that its ``process_response`` runs
last: after the cache has said Hit, Miss or Bypass and stored its entry (which
therefore never holds this request's ``Server-Timing``), and after an error
became its problem+json. Every response, errors included, carries a
``Server-Timing`` header with the stages that ran for it and ``total``.
"""

from collections.abc import AsyncGenerator
from collections.abc import Callable
import time

import falcon.asgi

from . import timing
from .access import AccessLog
from .cache import RedisCache
from .metrics import Metrics

SERVER_TIMING = 'Server-Timing'
# NOTE: Methods whose bodies the service may read; asking any other request
#   for its stream would make one for nothing.
_BODY_METHODS = frozenset({'POST', 'PUT', 'PATCH'})
_NO_BODY_STATUS = frozenset({204, 304})


class Observer:
    """Falcon middleware: metrics, ``Server-Timing`` and the access log."""

    def __init__(self, metrics: Metrics, access: AccessLog | None = None) -> None:
        self._metrics = metrics
        self._access = access

    async def process_startup(self, scope, event):
        # NOTE: Redis is pinged at start-up; its state is counted too.
        self._metrics.activate()

    async def process_shutdown(self, scope, event):
        self._metrics.close()

    async def process_request(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        self._metrics.activate()
        # NOTE: Kept here too: the context variable may still hold an earlier
        #   request's where a task serves several (Falcon's test client).
        req.context.observed_timing = timing.begin()

    async def process_response(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        req_succeeded: bool,
    ) -> None:
        # NOTE: Falcon refuses some requests before any middleware sees them.
        request = req.context.get('observed_timing') or timing.begin()
        seconds = time.perf_counter() - request.started
        request.add('total', seconds)
        resp.set_header(SERVER_TIMING, request.header())

        status = resp.status_code
        cache = resp.get_header(RedisCache.CACHE_HEADER)
        received = req.stream.tell() if req.method in _BODY_METHODS else 0

        def record(sent: int, cut: bool = False) -> None:
            seconds = time.perf_counter() - request.started
            self._metrics.request(
                req.uri_template, req.method, status, cache, seconds, received, sent
            )
            if self._access is not None:
                self._access.log(
                    req.method,
                    req.path,
                    req.query_string,
                    status,
                    seconds,
                    sent,
                    cache,
                    cut,
                )

        if resp.stream is not None and req.method != 'HEAD':
            # NOTE: Told once Falcon is done with the body: what went out, and
            #   whether all of it did (a client may go, storage may fail).
            resp.stream = CountedStream(resp.stream, record)
        else:
            record(await _body_size(req, resp, status))


class CountedStream:
    """A response stream that tells ``done(sent, cut)`` how many of its bytes
    went out, and whether it was cut short, once Falcon closes it."""

    def __init__(
        self, stream: AsyncGenerator[bytes, None], done: Callable[[int, bool], None]
    ) -> None:
        self._stream = stream
        self._chunks = aiter(stream)
        self._done = done
        self._sent = 0
        # NOTE: The last chunk given out counts once Falcon asks for the next:
        #   its send() went through.
        self._pending = 0
        self._complete = False

    async def read(self, size: int = -1) -> bytes:
        self._sent += self._pending
        self._pending = 0
        chunk = await anext(self._chunks, b'')
        self._pending = len(chunk)
        self._complete = not chunk
        return chunk

    async def close(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._done(self._sent, not self._complete)


async def _body_size(req, resp, status):
    """How many body bytes the response will send."""
    if req.method == 'HEAD' or status in _NO_BODY_STATUS:
        return 0
    return len(await resp.render_body() or b'')
