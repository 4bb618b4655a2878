import asyncio
import logging
import time
import urllib.parse

import msgpack
import redis.exceptions

logger = logging.getLogger(__name__)

# NOTE: What a Redis client raises when the server is gone, slow or confused:
#   redis-py wraps most socket errors in RedisError, but not all of them.
_REDIS_ERRORS = (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)


class _Unavailable(Exception):
    """Redis did not answer; the caller serves the request uncached."""


class RedisCache:
    PREFIX = 'asgilook:'
    INVALIDATE_ON = frozenset({'DELETE', 'POST', 'PUT'})
    CACHE_ON = frozenset({'GET', 'HEAD'})
    CACHE_HEADER = 'X-ASGILook-Cache'
    TTL = 3600
    MAX_RETRY_INTERVAL = 30.0

    def __init__(self, config):
        self._config = config
        self._redis = self._config.redis_from_url(self._config.redis_host)

        self._failures = 0
        self._retry_at = 0.0
        self._stale = True

    async def _serialize_response(self, resp):
        data = await resp.render_body()
        return msgpack.packb([resp.content_type, data], use_bin_type=True)

    def _deserialize_response(self, resp, data):
        try:
            content_type, body = msgpack.unpackb(data, raw=False)
        except (ValueError, TypeError, msgpack.UnpackException):
            content_type = body = None
        if not isinstance(content_type, str) or not isinstance(body, bytes):
            logger.warning('Ignoring an unreadable cache entry')
            return False
        resp.content_type = content_type
        resp.data = body
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

        if req.method not in self.CACHE_ON:
            return

        try:
            data = await self._call(self._redis.get, self._key(req))
        except _Unavailable:
            resp.set_header(self.CACHE_HEADER, 'Bypass')
            return

        if data is not None and self._deserialize_response(resp, data):
            resp.set_header(self.CACHE_HEADER, 'Hit')
        else:
            resp.set_header(self.CACHE_HEADER, 'Miss')

    async def process_response(self, req, resp, resource, req_succeeded):
        if not req_succeeded:
            return

        try:
            if req.method in self.INVALIDATE_ON:
                await self._call(self._redis.delete, self._key(req))
            elif req.method in self.CACHE_ON and not resp.context.cached:
                if self._cacheable(resp):
                    data = await self._serialize_response(resp)
                    await self._call(self._redis.set, self._key(req), data, ex=self.TTL)
                else:
                    resp.set_header(self.CACHE_HEADER, 'Bypass')
        except _Unavailable:
            # NOTE: The response itself is fine; only the cache missed out.
            if req.method in self.CACHE_ON:
                resp.set_header(self.CACHE_HEADER, 'Bypass')

    def _key(self, req):
        # NOTE: HEAD shares GET's entry: both answer with the same headers.
        return f'{self.PREFIX}/{req.path}'

    @staticmethod
    def _cacheable(resp):
        return (
            resp.status_code == 200
            and resp.stream is None
            and resp.context.get('cacheable', True)
        )

    async def _call(self, command, *args, **kwargs):
        """Run one Redis command, failing open while Redis is unavailable.

        After a failure Redis is left alone for a while (exponential backoff),
        so that requests do not each wait for a dead server to time out.
        """
        if self._failures and time.monotonic() < self._retry_at:
            raise _Unavailable

        try:
            result = await asyncio.wait_for(
                self._command(command, *args, **kwargs), self._config.redis_timeout
            )
        except _REDIS_ERRORS as ex:
            self._mark_down(ex)
            raise _Unavailable from ex

        self._mark_up()
        return result

    async def _command(self, command, *args, **kwargs):
        if self._stale:
            # NOTE: Entries written before this process started, or before an
            #   outage during which invalidations were lost, may be stale.
            await self._forget_all()
        return await command(*args, **kwargs)

    async def _forget_all(self):
        keys = [key async for key in self._redis.scan_iter(match=f'{self.PREFIX}*')]
        if keys:
            await self._redis.delete(*keys)
        self._stale = False

    def _mark_down(self, ex):
        if not self._failures:
            logger.warning(
                'Redis at %s is not answering (%s: %s); serving every response '
                'uncached until it does',
                _redacted(self._config.redis_host),
                type(ex).__name__,
                ex,
            )
        interval = self._config.redis_retry_interval * 2**self._failures
        self._retry_at = time.monotonic() + min(interval, self.MAX_RETRY_INTERVAL)
        self._failures += 1
        self._stale = True

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
