"""A Redis client that the service can do without.

Everything Redis does for asgilook (the response cache, its locks) is an
optimisation: when Redis is gone, slow or confused, requests go on without
it. :class:`FailOpenRedis` owns the one client of a process, a timeout on
every command, and the backoff that keeps requests from each waiting for a
dead server.
"""

import asyncio
from collections.abc import Callable
import logging
import time
from typing import Any
import urllib.parse

import redis.exceptions

from . import metrics
from . import timing

logger = logging.getLogger(__name__)

# NOTE: What a Redis client raises when the server is gone, slow or confused:
#   redis-py wraps most socket errors in RedisError, but not all of them.
_REDIS_ERRORS = (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)


class Unavailable(Exception):
    """Redis did not answer; the caller goes on without it."""


class FailOpenRedis:
    """Runs Redis commands with a timeout, and leaves Redis alone after failures.

    After a failure no command is sent for ``config.redis_retry_interval``
    seconds, doubling with every failure in a row up to
    ``MAX_RETRY_INTERVAL``; meanwhile every call raises :class:`Unavailable`
    at once.
    """

    MAX_RETRY_INTERVAL = 30.0

    def __init__(self, config: Any, clock: Callable[[], float] = time.monotonic):
        self._config = config
        self._client = config.redis_from_url(config.redis_host)
        self._clock = clock
        # NOTE: Set up without Redis on purpose (ASGI_LOOK_REDIS_URL=none):
        #   every call is Unavailable, and nothing is down.
        self.absent = not config.redis_enabled

        self._failures = 0
        self._refusals: set[str] = set()
        # NOTE: None until the first command: the gauge is set on changes only.
        self._up: bool | None = None
        self.retry_at = 0.0
        self._marked_at = -1.0

    async def call(self, command: str, *args: Any, **kwargs: Any) -> Any:
        """Run one command (a method name of the client); :class:`Unavailable`
        when Redis is down, or was down a moment ago."""
        started = self._clock()
        if self.absent or (self._failures and started < self.retry_at):
            raise Unavailable

        try:
            # NOTE: A timeout scope, not wait_for(): no task made per command.
            async with asyncio.timeout(self._config.redis_timeout):
                result = await self._send(command, *args, **kwargs)
        except redis.exceptions.ResponseError as ex:
            # NOTE: An answer, a refusal (an ACL, maxmemory): Redis is up,
            #   and other commands may well go on working.
            self._refused(command, ex)
            raise Unavailable from ex
        except _REDIS_ERRORS as ex:
            metrics.redis_failure()
            # NOTE: Calls that were on their way when Redis went are one
            #   failure, not one each: the backoff grows per retry window.
            if started >= self._marked_at:
                self._mark_down(ex)
            raise Unavailable from ex

        self._mark_up()
        return result

    async def _send(self, command, *args, **kwargs):
        with timing.measure('cache'):
            try:
                return await getattr(self._client, command)(*args, **kwargs)
            except redis.exceptions.ConnectionError:
                # NOTE: A pooled connection from before a Redis restart fails
                #   once; a fresh one (the pool makes it) decides. Every
                #   command we send is safe to send twice.
                return await getattr(self._client, command)(*args, **kwargs)

    async def ping(self) -> bool:
        """Whether Redis answers now."""
        try:
            await self.call('ping')
        except Unavailable:
            return False
        return True

    async def close(self) -> None:
        try:
            await self._client.aclose()
        except _REDIS_ERRORS as ex:
            logger.debug('Closing the Redis client failed: %r', ex)

    async def lock(self, key: str, token: str, ttl: float) -> bool:
        """Take a lock, as ``token``, that expires by itself after ``ttl``
        seconds; False if another holder (of any process) has it."""
        return bool(await self.call('set', key, token, nx=True, px=int(ttl * 1000)))

    async def renew(self, key: str, token: str, ttl: float) -> bool:
        """Make a lock that is still ours last ``ttl`` seconds from now;
        False if it is not ours, or Redis cannot say."""
        try:
            # NOTE: Not atomic: at worst, a lock that expired and was taken
            #   again lasts a little longer for its new holder.
            return await self.call('get', key) == token.encode() and bool(
                await self.call('pexpire', key, int(ttl * 1000))
            )
        except Unavailable:
            return False

    async def unlock(self, key: str, token: str) -> None:
        """Release a lock if it is still ours; never raises."""
        try:
            # NOTE: Not atomic: at worst, a lock that expired and was taken
            #   again is released early, and one render more happens.
            if await self.call('get', key) == token.encode():
                await self.call('delete', key)
        except Unavailable:
            pass

    def _refused(self, command: str, ex: BaseException) -> None:
        metrics.redis_failure()
        if command not in self._refusals:
            self._refusals.add(command)
            logger.warning(
                'Redis at %s refuses %s (%s: %s); asgilook goes on without it',
                redacted(self._config.redis_host),
                command.upper(),
                type(ex).__name__,
                ex,
            )

    def _mark_down(self, ex: BaseException) -> None:
        if self._up is not False:
            self._up = False
            metrics.redis_state(False)
        if not self._failures:
            logger.warning(
                'Redis at %s is not answering (%s: %s); serving every response '
                'uncached until it does',
                redacted(self._config.redis_host),
                type(ex).__name__,
                ex,
            )
        self._marked_at = self._clock()
        interval = self._config.redis_retry_interval * 2**self._failures
        self.retry_at = self._clock() + min(interval, self.MAX_RETRY_INTERVAL)
        self._failures += 1

    def _mark_up(self) -> None:
        if not self._up:
            self._up = True
            metrics.redis_state(True)
        if self._failures:
            logger.info(
                'Redis at %s answers again; caching resumed',
                redacted(self._config.redis_host),
            )
        self._failures = 0


def redacted(url: str | None) -> str:
    """A Redis URL without its password, fit for a log line."""
    parts = urllib.parse.urlsplit(url or '')
    host = parts.hostname or ''
    if parts.port:
        host = f'{host}:{parts.port}'
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, '', ''))
