import asyncio
import logging
import secrets
import time
import urllib.parse

import falcon
import msgpack
import redis.exceptions

from . import conditional

logger = logging.getLogger(__name__)

# NOTE: What a Redis client raises when the server is gone, slow or confused:
#   redis-py wraps most socket errors in RedisError, but not all of them.
_REDIS_ERRORS = (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)

# NOTE: Headers an entry does not keep: the server and Falcon set them anew.
_NOT_REPLAYED = frozenset({'content-length', 'date', 'server'})
_ENTRY_VERSION = 2


class _Unavailable(Exception):
    """Redis did not answer; the caller serves the request uncached."""


class RedisCache:
    PREFIX = 'asgilook:'
    INVALIDATE_ON = frozenset({'DELETE', 'POST', 'PUT'})
    CACHE_ON = frozenset({'GET', 'HEAD'})
    CACHE_HEADER = 'X-ASGILook-Cache'
    TTL = 3600
    MAX_RETRY_INTERVAL = 30.0
    LOCK_TTL = 10.0
    LOCK_POLL_INTERVAL = 0.02
    # NOTE: The query parameters any route answers differently for.
    KEY_PARAMS = frozenset({'limit', 'cursor'})

    def __init__(self, config, validator=None):
        self._config = config
        self._redis = self._config.redis_from_url(self._config.redis_host)
        # NOTE: Asked whether a cached response still tells the truth, given
        #   its headers, so that no invalidation lost to an outage matters.
        self._validator = validator

        self._failures = 0
        self._retry_at = 0.0
        self._marked_at = -1.0

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

    async def _deserialize_response(self, req, resp, data):
        """Replay an entry; False where it is unreadable or no longer true."""
        try:
            version, status, headers, body = msgpack.unpackb(data, raw=False)
            headers = dict(headers)
        except (ValueError, TypeError, msgpack.UnpackException):
            version = None
        if version != _ENTRY_VERSION or not isinstance(body, bytes):
            logger.warning('Ignoring an unreadable cache entry')
            return False
        if self._validator and not await self._validator(headers):
            return False

        outcome = conditional.evaluate(
            req.method,
            conditional.preconditions(req.get_header),
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
        resp.complete = True
        resp.context.cached = True
        return True

    async def process_startup(self, scope, event):
        try:
            await self._call(self._redis.ping)
        except _Unavailable:
            pass

    async def process_shutdown(self, scope, event):
        try:
            await self._redis.aclose()
        except _REDIS_ERRORS as ex:
            logger.debug('Closing the Redis client failed: %r', ex)

    async def process_request(self, req, resp):
        resp.context.cached = False
        resp.context.lock = None

        if req.method not in self.CACHE_ON:
            return

        key = self._key(req)
        try:
            data = await self._call(self._redis.get, key)
            if data is None:
                data = await self._wait_for_peer(resp, key)
        except _Unavailable:
            resp.set_header(self.CACHE_HEADER, 'Bypass')
            return

        if data is not None and await self._deserialize_response(req, resp, data):
            resp.set_header(self.CACHE_HEADER, 'Hit')
        else:
            resp.set_header(self.CACHE_HEADER, 'Miss')

    async def process_response(self, req, resp, resource, req_succeeded):
        try:
            if req_succeeded:
                await self._store_or_invalidate(req, resp)
            elif req.method in self.CACHE_ON:
                # NOTE: Errors are answered afresh every time.
                resp.set_header(self.CACHE_HEADER, 'Bypass')
        except _Unavailable:
            # NOTE: The response itself is fine; only the cache missed out.
            if req.method in self.CACHE_ON:
                resp.set_header(self.CACHE_HEADER, 'Bypass')
        finally:
            await self._release(resp.context.lock)

    async def _store_or_invalidate(self, req, resp):
        if req.method in self.INVALIDATE_ON:
            await self._call(self._redis.delete, self._key(req))
        elif req.method in self.CACHE_ON and not resp.context.cached:
            data = (
                await self._serialize_response(resp) if self._cacheable(resp) else None
            )
            if data is None or len(data) > self._config.cache_max_entry_bytes:
                resp.set_header(self.CACHE_HEADER, 'Bypass')
            else:
                await self._call(self._redis.set, self._key(req), data, ex=self.TTL)

    def _key(self, req):
        # NOTE: HEAD shares GET's entry: both answer with the same headers. Of
        #   the query, only what a route reads counts: any other parameter
        #   would make a new entry for the same response, as often as asked.
        params = [(name, req.get_param(name)) for name in sorted(self.KEY_PARAMS)]
        query = urllib.parse.urlencode([(n, v) for n, v in params if v])
        return f'{self.PREFIX}GET:{req.path}' + (f'?{query}' if query else '')

    @staticmethod
    def _cacheable(resp):
        return (
            resp.status_code == 200
            and resp.stream is None
            and resp.context.get('cacheable', True)
        )

    async def _wait_for_peer(self, resp, key):
        """Make one request (of any process) render what N others wait for.

        Whoever takes the short Redis lock renders; the others poll for the
        entry it stores, and render themselves if the lock goes (released or
        expired) without one.
        """
        lock_key, token = f'{self.PREFIX}lock:{key}', secrets.token_hex(8)
        ttl = int(self.LOCK_TTL * 1000)
        if await self._call(self._redis.set, lock_key, token, nx=True, px=ttl):
            resp.context.lock = (lock_key, token)
            return None

        # NOTE: The lock expires by itself if its holder dies or hangs.
        while True:
            await asyncio.sleep(self.LOCK_POLL_INTERVAL)
            data = await self._call(self._redis.get, key)
            if data is not None:
                return data
            if not await self._call(self._redis.exists, lock_key):
                return None

    async def _release(self, lock):
        if lock is None:
            return
        lock_key, token = lock
        try:
            # NOTE: Not atomic: at worst, a lock that expired and was taken
            #   again is released early, and one render more happens.
            if await self._call(self._redis.get, lock_key) == token.encode():
                await self._call(self._redis.delete, lock_key)
        except _Unavailable:
            pass

    async def _call(self, command, *args, **kwargs):
        """Run one Redis command, failing open while Redis is unavailable.

        After a failure Redis is left alone for a while (exponential backoff),
        so that requests do not each wait for a dead server to time out.
        """
        started = time.monotonic()
        if self._failures and started < self._retry_at:
            raise _Unavailable

        try:
            result = await asyncio.wait_for(
                command(*args, **kwargs), self._config.redis_timeout
            )
        except _REDIS_ERRORS as ex:
            # NOTE: Calls that were on their way when Redis went are one
            #   failure, not one each: the backoff grows per retry window.
            if started >= self._marked_at:
                self._mark_down(ex)
            raise _Unavailable from ex

        self._mark_up()
        return result

    def _mark_down(self, ex):
        if not self._failures:
            logger.warning(
                'Redis at %s is not answering (%s: %s); serving every response '
                'uncached until it does',
                _redacted(self._config.redis_host),
                type(ex).__name__,
                ex,
            )
        self._marked_at = time.monotonic()
        interval = self._config.redis_retry_interval * 2**self._failures
        self._retry_at = time.monotonic() + min(interval, self.MAX_RETRY_INTERVAL)
        self._failures += 1

    def _mark_up(self):
        if self._failures:
            logger.info(
                'Redis at %s answers again; caching resumed',
                _redacted(self._config.redis_host),
            )
        self._failures = 0


def _redacted(url):
    """Return a Redis URL without its password, fit for a log line."""
    parts = urllib.parse.urlsplit(url or '')
    host = parts.hostname or ''
    if parts.port:
        host = f'{host}:{parts.port}'
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, '', ''))
