"""Live events: what was uploaded and deleted, as a Server-Sent Events stream.

:class:`EventHub` hands every event to the streams of this process, each
through its own bounded queue, and keeps a short backlog so that a client
that reconnects with ``Last-Event-ID`` misses nothing. With Redis, events go
through a pub/sub channel, so that every process (and host) hears every
other's; when Redis is away, each process goes on with its own events.
"""

import asyncio
import collections
from collections.abc import AsyncIterator
import json
import logging
import secrets
import time
from typing import Any

import falcon
import falcon.asgi
from falcon.asgi import SSEvent
import redis.connection
import redis.exceptions

from . import metrics
from .failopen import _REDIS_ERRORS
from .failopen import FailOpenRedis
from .failopen import redacted
from .failopen import Unavailable
from .stalls import BoundedSend

logger = logging.getLogger(__name__)

CREATED = 'image-created'
DELETED = 'image-deleted'
# NOTE: Sent to a client whose Last-Event-ID is no longer (or never was) in
#   the backlog, and to every stream when the relay comes back after an
#   outage: it may have missed events, and should read the listing again.
RESYNC = 'resync'
# NOTE: What a relayed message may carry; anything else is dropped.
_RELAYED = frozenset({CREATED, DELETED})
_MAX_ID = 64
_MAX_DATA = 64 * 1024

_NO_ANCHOR = object()

EVENTS_PATH = '/events'


class _Client:
    """One open stream: its queue, and whether it fell too far behind."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[SSEvent] = asyncio.Queue(size)
        self.dropped = False


class EventHub:
    """Events to every stream of this process, and through Redis to others.

    ``publish()`` never waits for a client, and for Redis at most
    ``config.redis_timeout``. A client whose queue is full is dropped: its
    stream ends, and its browser reconnects with ``Last-Event-ID``.
    """

    BACKLOG = 256
    CLIENT_QUEUE = 64
    CHANNEL = 'asgilook:events'
    # NOTE: How soon a browser reconnects after its stream ends, in ms.
    RECONNECT_MS = 1000
    MIN_RETRY_INTERVAL = 0.1
    # NOTE: The relay subscribes again this often at most while Redis is
    #   away, not on FailOpenRedis' backoff: every second without it is a
    #   second of events other processes do not hear.
    MAX_RELAY_RETRY = 1.0

    def __init__(self, config: Any, redis: FailOpenRedis) -> None:
        self._config = config
        self._redis = redis
        self._keepalive = config.events_keepalive
        # NOTE: Pub/sub ignores the database number: without it in the
        #   channel's name, deployments on one Redis would hear each other.
        self.channel = f'{self.CHANNEL}:{_database(config.redis_host)}'
        # NOTE: id -> event, oldest first.
        self._backlog: collections.OrderedDict[str, SSEvent] = collections.OrderedDict()
        self._clients: set[_Client] = set()
        self._relay: asyncio.Task | None = None
        self._subscribed = asyncio.Event()
        self._relay_failures = 0

    @property
    def clients(self) -> int:
        """How many streams are open in this process (for a gauge)."""
        return len(self._clients)

    async def publish(self, name: str, data: Any) -> None:
        """Send an event to every stream, of every process; never raises."""
        text = json.dumps(data, separators=(',', ':'))
        event_id = f'{time.time_ns() // 1000:x}-{secrets.token_hex(4)}'
        message = json.dumps({'id': event_id, 'event': name, 'data': text})
        relayed = False
        if self._subscribed.is_set():
            try:
                # NOTE: Our own relay hears it back, in the order every other
                #   process hears it; a count of 0 says it did not.
                relayed = await self._redis.call('publish', self.channel, message) > 0
            except Unavailable:
                pass
        elif not self._redis.absent:
            # NOTE: Others may hear it even while we do not.
            await self._try_publish(message)
        if not relayed:
            self._deliver(event_id, name, text)

    async def _try_publish(self, message):
        try:
            await self._redis.call('publish', self.channel, message)
        except Unavailable:
            pass

    def _deliver(self, event_id: str, name: str, text: str) -> None:
        if event_id in self._backlog:
            # NOTE: A PUBLISH that timed out, and happened all the same.
            return
        event = SSEvent(event=name, event_id=event_id, text=text)
        self._backlog[event_id] = event
        if len(self._backlog) > self.BACKLOG:
            self._backlog.popitem(last=False)
        self._tell_all(event)

    def _tell_all(self, event):
        for client in list(self._clients):
            try:
                client.queue.put_nowait(event)
            except asyncio.QueueFull:
                client.dropped = True
                self._clients.discard(client)
                logger.warning(
                    'An event stream fell %d events behind; it was closed, and '
                    'its client will reconnect for the rest',
                    self.CLIENT_QUEUE,
                )

    def start(self) -> None:
        """Start listening to other processes, if there are any (at start-up:
        a process that has heard them can answer a reconnect from another's
        stream with what it missed)."""
        if self._redis.absent:
            return
        if self._relay is None or self._relay.done():
            self._relay = asyncio.ensure_future(self._listen())

    async def ready(self) -> None:
        """Start listening to other processes, if there are any, and wait
        (``config.redis_timeout`` at most) until we hear them."""
        if self._redis.absent:
            return
        self.start()
        try:
            async with asyncio.timeout(self._config.redis_timeout):
                await self._subscribed.wait()
        except TimeoutError:
            pass

    def stream(self, last_event_id: str | None = None) -> AsyncIterator[SSEvent | None]:
        """The events after ``last_event_id`` (None: from now on), for
        ``resp.sse``."""
        anchor = last_event_id
        if last_event_id is None:
            # NOTE: From now, not from the first step of the stream, which
            #   comes after the response has started.
            anchor = next(reversed(self._backlog), _NO_ANCHOR)
        return self._events(anchor)

    async def _events(self, anchor):
        # NOTE: Registered and the backlog read in one step: each event is
        #   either replayed or queued, never both nor neither.
        client = _Client(self.CLIENT_QUEUE)
        self._clients.add(client)
        replay = self._since(anchor)
        metrics.sse_clients(1)
        try:
            yield SSEvent(retry=self.RECONNECT_MS, comment='asgilook events')
            for event in replay:
                yield event
            while not client.dropped:
                try:
                    async with asyncio.timeout(self._keepalive):
                        event = await client.queue.get()
                except TimeoutError:
                    # NOTE: A comment, so that proxies keep an idle stream open
                    #   and a vanished client is noticed.
                    yield None
                    continue
                yield event
        finally:
            self._clients.discard(client)
            metrics.sse_clients(-1)

    def _since(self, anchor):
        """The backlog after ``anchor`` (all of it: after nothing)."""
        if anchor is _NO_ANCHOR:
            return list(self._backlog.values())
        ids = list(self._backlog)
        if anchor in self._backlog:
            return [self._backlog[i] for i in ids[ids.index(anchor) + 1 :]]
        newest = ids[-1] if ids else None
        return [SSEvent(event=RESYNC, event_id=newest, text='{}')]

    async def _listen(self):
        """Relay the channel to this process's streams, for as long as it runs."""
        while True:
            client = self._config.redis_from_url(self._config.redis_host)
            pubsub = client.pubsub()
            try:
                await self._subscribe(pubsub)
                self._relay_up()
                while True:
                    await self._relay_one(pubsub)
            except _REDIS_ERRORS as ex:
                self._relay_down(ex)
            finally:
                self._subscribed.clear()
                await _close(pubsub, client)
            await asyncio.sleep(
                min(
                    max(self._config.redis_retry_interval, self.MIN_RETRY_INTERVAL),
                    self.MAX_RELAY_RETRY,
                )
            )

    async def _subscribe(self, pubsub):
        async with asyncio.timeout(self._config.redis_timeout):
            await pubsub.subscribe(self.channel)
        # NOTE: SUBSCRIBE only sends: its answer, or a refusal (an ACL without
        #   this channel) raised here, comes as the first message.
        message = await pubsub.get_message(timeout=self._config.redis_timeout)
        if message is None or message['type'] != 'subscribe':
            raise redis.exceptions.ConnectionError('no answer to SUBSCRIBE')

    async def _relay_one(self, pubsub):
        message = await pubsub.get_message(
            ignore_subscribe_messages=True, timeout=self._keepalive
        )
        if message is None:
            # NOTE: Quiet for a keep-alive. A connection that a firewall or
            #   NAT forgot stays quiet for ever, and a lost subscriber hears
            #   nothing; a PING that gets no PONG in time tells.
            await pubsub.ping()
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=self._config.redis_timeout
            )
            if message is None:
                raise redis.exceptions.TimeoutError(
                    'no answer to a PING on the subscription'
                )
        if message['type'] == 'message':
            self._receive(message['data'])

    def _receive(self, data):
        try:
            message = json.loads(data)
            event_id, name, text = message['id'], message['event'], message['data']
        except (ValueError, TypeError, KeyError):
            logger.warning('Ignoring an unreadable message on %s', self.channel)
            return
        if not _is_relayable(event_id, name, text):
            logger.warning(
                'Ignoring a message on %s that is not an asgilook event', self.channel
            )
            return
        self._deliver(event_id, name, text)

    def _relay_up(self):
        if self._relay_failures:
            logger.info(
                'Redis at %s answers again; events reach every process',
                redacted(self._config.redis_host),
            )
            # NOTE: Other processes' events while it was away are lost.
            newest = next(reversed(self._backlog), None)
            self._tell_all(SSEvent(event=RESYNC, event_id=newest, text='{}'))
        self._relay_failures = 0
        self._subscribed.set()

    def _relay_down(self, ex):
        if not self._relay_failures:
            logger.warning(
                'Redis at %s is not relaying events (%s: %s); each process '
                'streams its own until it does',
                redacted(self._config.redis_host),
                type(ex).__name__,
                ex,
            )
        self._relay_failures += 1

    async def close(self) -> None:
        """Stop listening to Redis; open streams go on locally."""
        if self._relay is not None:
            # NOTE: Again until it ends: a cancellation can be lost on the way
            #   (Python 3.11's asyncio.wait_for drops one that comes as the
            #   future it waits for finishes).
            while not self._relay.done():
                self._relay.cancel()
                await asyncio.wait([self._relay], timeout=self.MAX_RELAY_RETRY)
            self._relay = None


def _database(url: str) -> int:
    # NOTE: The URL was checked at start-up.
    return redis.connection.parse_url(url).get('db', 0)


def _is_relayable(event_id: Any, name: Any, text: Any) -> bool:
    return (
        isinstance(name, str)
        and name in _RELAYED
        and isinstance(event_id, str)
        and 0 < len(event_id) <= _MAX_ID
        and isinstance(text, str)
        and len(text) <= _MAX_DATA
        # NOTE: A line break would start another field of the stream.
        and not any(c in value for value in (event_id, text) for c in '\r\n')
        and _is_about_an_image(name, text)
    )


def _is_about_an_image(name: str, text: str) -> bool:
    """Whether ``text`` is what a page reads from such an event: an image's
    JSON, or (deleted) its id."""
    try:
        data = json.loads(text)
    except ValueError:
        return False
    if not isinstance(data, dict) or not isinstance(data.get('id'), str):
        return False
    return name == DELETED or (
        isinstance(data.get('image'), str) and isinstance(data.get('srcset'), dict)
    )


async def _close(pubsub, client):
    try:
        await pubsub.aclose()
        await client.aclose()
    except _REDIS_ERRORS as ex:
        logger.debug('Closing the event relay failed: %r', ex)


async def serve_stream(
    call: Any, scope: dict, receive: Any, send: Any, stall: float
) -> None:
    """Run the app's ``call`` for an event stream, disconnecting a client that
    stops reading rather than waiting for it.

    A write that cannot go out within ``stall`` seconds drops the
    connection; a browser that was only slow reconnects with
    ``Last-Event-ID``.
    """
    # NOTE: Falcon's stream loop awaits the server's send(), which (flow
    #   control) waits for as long as the client reads nothing; nothing of
    #   the stream's own runs meanwhile, so the bound goes around send().
    bounded = BoundedSend(send, stall, "An event stream's client")
    try:
        await call(scope, receive, bounded)
    except asyncio.CancelledError:
        # NOTE: The server stops, and its wait for open requests ran out
        #   (a stream never ends by itself): the stream ends as one does,
        #   rather than with a traceback per client in the log.
        if not bounded.started:
            raise
        asyncio.current_task().uncancel()
        await bounded({'type': 'http.response.body'})
    finally:
        bounded.close()


class Events:
    """``GET /events``: the event stream of uploads and deletes."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response):
        # NOTE: Listening before the response starts: a client that saw it
        #   start hears every event published after.
        await self._hub.ready()
        resp.cache_control = ['no-store']
        # NOTE: nginx would otherwise hold events back in its buffer.
        resp.set_header('X-Accel-Buffering', 'no')
        resp.sse = self._hub.stream(req.get_header('Last-Event-ID') or None)


class EventsLifespan:
    """Falcon middleware that starts and stops the hub's Redis relay with
    the app."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub

    async def process_startup(self, scope, event):
        self._hub.start()

    async def process_shutdown(self, scope, event):
        await self._hub.close()
