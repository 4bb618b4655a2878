"""The tutorial's Redis response cache, for the routes that ask for it.

A responder opts in with :func:`cached`, saying which query parameters its
answer depends on and how to tell that a cached answer is still true;
anything else is never cached. Entries replay the status, headers and body;
each hit is checked by the route's own validator, so that no invalidation
lost to an outage (or a restart) ever shows.
"""

import asyncio
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
import functools
import logging
import re
import secrets
from typing import Any
import urllib.parse

import falcon
import falcon.asgi
import msgpack

from . import conditional
from . import metrics
from .failopen import FailOpenRedis
from .failopen import Unavailable

logger = logging.getLogger(__name__)

# NOTE: Headers an entry does not keep: the server and Falcon set them anew,
#   and Server-Timing tells of the request that answers, not of the one stored.
_NOT_REPLAYED = frozenset({'content-length', 'date', 'server', 'server-timing'})
_ENTRY_VERSION = 2
# NOTE: A parameter in a route's URI template: {name} or {name:converter}.
_PARAMETER = re.compile(r'\{(\w+)(?::[^}]*)?\}')

KeyParams = Callable[[falcon.asgi.Request], Mapping[str, Any]]
Validator = Callable[..., Awaitable[bool]]


@dataclasses.dataclass(frozen=True)
class _Policy:
    key_params: KeyParams | None
    is_current: Validator | None


def cached(key_params: KeyParams | None = None, is_current: Validator | None = None):
    """Declare that a GET responder's answers may be cached (HEAD shares them).

    ``key_params(req)`` returns the query parameters the answer depends on,
    normalised (None for absent): the same function the responder reads them
    with, so that spellings of one request share one entry, and a request
    whose parameters do not parse (it raises) is never cached. Without it,
    the query string is ignored.

    ``is_current(resource, req, etag, **params)`` says whether an entry with
    this ETag still tells the truth; every hit is checked with it.
    """
    policy = _Policy(key_params, is_current)

    def decorate(responder):
        @functools.wraps(responder)
        async def cached_responder(resource, req, resp, **params):
            cache = req.context.get('cache')
            if cache is None or not await cache.replay(
                policy, resource, req, resp, params
            ):
                await responder(resource, req, resp, **params)

        return cached_responder

    return decorate


def do_not_cache(resp: falcon.asgi.Response) -> None:
    """Keep this one answer of a cached route out of the cache."""
    resp.context.cache_key = None


class RedisCache:
    PREFIX = 'asgilook:'
    INVALIDATE_ON = frozenset({'DELETE', 'POST', 'PUT'})
    CACHE_ON = frozenset({'GET', 'HEAD'})
    CACHE_HEADER = 'X-ASGILook-Cache'
    TTL = 3600
    LOCK_POLL_INTERVAL = 0.02
    LOCK_POLL_MAX_INTERVAL = 0.2

    def __init__(self, config, redis: FailOpenRedis | None = None):
        self._config = config
        self._redis = redis or FailOpenRedis(config)

    async def _serialize_response(self, resp):
        data = await resp.render_body()
        headers = [
            [name, value]
            for name, value in resp.headers.items()
            if name not in _NOT_REPLAYED and name != self.CACHE_HEADER.lower()
        ]
        return msgpack.packb(
            [_ENTRY_VERSION, resp.status_code, headers, data], use_bin_type=True
        )

    async def _deserialize_response(self, req, resp, data, is_current):
        """Replay an entry; False where it is unreadable or no longer true."""
        try:
            version, status, headers, body = msgpack.unpackb(data, raw=False)
            headers = dict(headers)
        except (ValueError, TypeError, msgpack.UnpackException):
            version = None
        if version != _ENTRY_VERSION or not isinstance(body, bytes):
            logger.warning('Ignoring an unreadable cache entry')
            return False
        if not await is_current(headers.get('etag')):
            return False

        preconditions = conditional.preconditions(req.get_header)
        outcome = None
        if any(preconditions.values()):
            # NOTE: Most requests have none; reading a date costs a strptime.
            outcome = conditional.evaluate(
                req.method,
                preconditions,
                headers.get('etag'),
                conditional.parse_date(headers.get('last-modified')),
            )
        if outcome == conditional.PRECONDITION_FAILED:
            # NOTE: Rare enough (If-Match on a GET) to be answered uncached.
            return False

        resp.status = status
        for name, value in headers.items():
            resp.set_header(name, value)
        resp.data = body
        if outcome == conditional.NOT_MODIFIED:
            resp.status = falcon.HTTP_304
            resp.data = None
        resp.context.cached = True
        return True

    async def process_startup(self, scope, event):
        await self._redis.ping()

    async def process_shutdown(self, scope, event):
        await self._redis.close()

    async def process_request(self, req, resp):
        req.context.cache = self
        resp.context.cached = False
        resp.context.cache_key = None
        resp.context.cache_lock = None
        resp.context.cache_lock_keeper = None

    async def replay(self, policy, resource, req, resp, params):
        """Answer from the cache if it can; True when it did.

        Called by a :func:`cached` responder before it does its own work.
        """
        if req.method not in self.CACHE_ON:
            return False
        key = self._key(req, params, policy.key_params)
        resp.context.cache_key = key
        try:
            data = await self._redis.call('get', key)
            if data is None:
                data = await self._wait_for_peer(resp, key)
        except Unavailable:
            do_not_cache(resp)
            return False

        async def is_current(etag):
            if policy.is_current is None:
                return True
            return await policy.is_current(resource, req, etag, **params)

        if data is not None and await self._deserialize_response(
            req, resp, data, is_current
        ):
            resp.set_header(self.CACHE_HEADER, 'Hit')
            return True
        resp.set_header(self.CACHE_HEADER, 'Miss')
        return False

    async def process_response(self, req, resp, resource, req_succeeded):
        try:
            if req_succeeded and req.method in self.INVALIDATE_ON:
                # NOTE: Only a route without parameters (POST /images) has a
                #   GET twin to forget; every entry is checked on a hit anyway.
                if '{' not in (req.uri_template or '{'):
                    await self._redis.call('delete', self._key(req))
            elif req.method in self.CACHE_ON:
                await self._store(req, resp, req_succeeded)
        except Unavailable:
            # NOTE: The response itself is fine; only the cache missed out.
            if req.method in self.CACHE_ON:
                resp.set_header(self.CACHE_HEADER, 'Bypass')
        finally:
            keeper = resp.context.get('cache_lock_keeper')
            if keeper is not None:
                keeper.stop()
            lock = resp.context.get('cache_lock')
            if lock is not None:
                await self._redis.unlock(*lock)

    async def _store(self, req, resp, req_succeeded):
        if resp.context.get('cached'):
            return
        key = resp.context.get('cache_key')
        # NOTE: Errors are answered afresh every time, as is any route that
        #   did not ask to be cached.
        data = None
        if key is not None and req_succeeded and self._cacheable(resp):
            data = await self._serialize_response(resp)
        if data is None or len(data) > self._config.cache_max_entry_bytes:
            resp.set_header(self.CACHE_HEADER, 'Bypass')
        else:
            await self._redis.call('set', key, data, ex=self.TTL)

    def _key(self, req, params=None, key_params=None):
        # NOTE: HEAD shares GET's entry: both answer with the same headers.
        #   The path is the route's, with its parameters as converted (a
        #   UUID in lower case, numbers without zeros in front), and of the
        #   query only what the route reads, as it reads it: any other
        #   spelling would make a new entry for the same response.
        template = req.uri_template or req.path
        path = _PARAMETER.sub(lambda m: str(params[m.group(1)]), template)
        pairs = key_params(req) if key_params else {}
        query = urllib.parse.urlencode(
            [
                (name, value)
                for name, value in sorted(pairs.items())
                if value is not None
            ]
        )
        return f'{self.PREFIX}GET:{path}' + (f'?{query}' if query else '')

    @staticmethod
    def _cacheable(resp):
        return resp.status_code == 200 and resp.stream is None

    async def _wait_for_peer(self, resp, key):
        """Make one request (of any process) render what N others wait for.

        Whoever takes the short Redis lock renders, and renews the lock for
        as long as its request lasts; the others poll for the entry it
        stores, and render themselves if the lock goes (released, or expired
        with its holder) without one, or after ``config.cache_lock_wait``
        seconds.
        """
        lock_key = f'{self.PREFIX}lock:{key}'
        token = secrets.token_hex(8)
        ttl = self._config.cache_lock_ttl
        # NOTE: Released at the end even if taking it seemed to fail: a SET
        #   that timed out here may still have happened in Redis.
        resp.context.cache_lock = (lock_key, token)
        if await self._redis.lock(lock_key, token, ttl):
            resp.context.cache_lock_keeper = _LockKeeper(
                self._redis, lock_key, token, ttl, self._config.cache_lock_wait
            )
            return None
        resp.context.cache_lock = None

        # NOTE: A render slower than the lock's TTL is still waited for (its
        #   holder renews the lock), so that each is done once by all hosts;
        #   a lock whose holder died (or lost Redis) soon expires. The polls
        #   thin out as the wait grows long.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.cache_lock_wait
        pause = self.LOCK_POLL_INTERVAL
        while loop.time() < deadline:
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, self.LOCK_POLL_MAX_INTERVAL)
            data = await self._redis.call('get', key)
            if data is not None:
                metrics.joined('redis')
                return data
            if not await self._redis.call('exists', lock_key):
                return None
        return None


class _LockKeeper:
    """Renews a render lock every third of its TTL while the request that
    holds it lasts, for ``budget`` seconds at most."""

    def __init__(
        self, redis: FailOpenRedis, key: str, token: str, ttl: float, budget: float
    ) -> None:
        self._redis = redis
        self._key = key
        self._token = token
        self._ttl = ttl
        self._loop = asyncio.get_running_loop()
        self._until = self._loop.time() + budget
        # NOTE: A request cancelled before process_response (a server
        #   shutting down) stops the renewals too.
        self._request = asyncio.current_task()
        self._stopped = False
        self._renewing: asyncio.Future | None = None
        self._timer = self._loop.call_later(ttl / 3, self._due)

    def stop(self) -> None:
        # NOTE: A renewal under way is left to finish: cancelled mid-command
        #   it would cost a Redis connection, and it renews nothing once the
        #   lock is released.
        self._stopped = True
        self._timer.cancel()

    def _due(self) -> None:
        if self._stopped or self._request.done() or self._loop.time() >= self._until:
            return
        self._renewing = asyncio.ensure_future(self._renew())

    async def _renew(self) -> None:
        if await self._redis.renew(self._key, self._token, self._ttl):
            self._timer = self._loop.call_later(self._ttl / 3, self._due)
