"""GET /events: live uploads and deletes, in one process and across several."""

import asyncio
import copy
import http.client
import json
import logging
import re
import socket

import fakeredis
import falcon
import falcon.asgi
import falcon.testing
import pytest

from asgilook.app import create_app
from asgilook.config import Config
from asgilook.events import EventHub
from asgilook.failopen import FailOpenRedis
from asgilook.images import Images
from asgilook.store import Store
from asgilook.store import StoreLifespan

from .fakes import FlakyPubSubRedis
from .helpers import as_listed
from .helpers import served
from .servers import Service
from .servers import TcpProxy
from .servers import wait_for


def parse(text):
    """The blocks of an event stream, each a dict of its fields."""
    blocks = []
    for block in text.split('\n\n')[:-1]:
        fields = {}
        for line in block.split('\n'):
            name, _, value = line.partition(': ')
            fields[name or 'comment'] = value
        blocks.append(fields)
    return blocks


class Reader:
    """Reads a simulated event stream, block by block."""

    def __init__(self, result):
        self._result = result
        self._text = ''

    async def blocks(self, count, timeout=5.0):
        async with asyncio.timeout(timeout):
            while self._text.count('\n\n') < count:
                self._text += (await self._result.stream.read()).decode()
        return parse(self._text)

    async def events(self, count, timeout=5.0):
        """The first ``count`` blocks that are events (with data)."""
        async with asyncio.timeout(timeout):
            while True:
                blocks = await self.blocks(self._text.count('\n\n') + 1, timeout)
                events = [block for block in blocks if 'data' in block]
                if len(events) >= count:
                    return events[:count]


def run(coroutine):
    return falcon.async_to_sync(lambda: coroutine)


@pytest.fixture(autouse=True)
def quick_keepalive(config):
    # NOTE: A stream notices its client went at its next write, a keep-alive
    #   at the latest: soon, so that closing one does not hold a test.
    config.events_keepalive = 0.1


@pytest.fixture
def app(config):
    return create_app(config)


def test_uploads_and_deletes_reach_an_open_stream(app, png_image):
    async def scenario():
        async with falcon.testing.ASGIConductor(app) as conductor:
            async with conductor.simulate_get_stream('/events') as stream:
                assert stream.status_code == 200
                assert stream.headers['content-type'] == 'text/event-stream'
                assert stream.headers['cache-control'] == 'no-store'
                reader = Reader(stream)
                first = await reader.blocks(1)
                assert first == [{'comment': 'asgilook events', 'retry': '1000'}]

                created = await conductor.simulate_post('/images', body=png_image)
                assert created.status_code == 201
                deleted = await conductor.simulate_delete(created.json['image'])
                assert deleted.status_code == 204

                upload, delete = await reader.events(2)
                listing = await conductor.simulate_get('/images')
                return created.json, upload, delete, listing.json

    created, upload, delete, listing = run(scenario())
    assert upload['event'] == 'image-created'
    # NOTE: The image's JSON as the listing showed it, without its token.
    assert json.loads(upload['data']) == as_listed(created)
    assert delete['event'] == 'image-deleted'
    assert json.loads(delete['data']) == {'id': created['id']}
    assert upload['id'] != delete['id']
    assert listing == []


def test_replays_and_failures_are_not_events(app, png_image):
    async def scenario():
        async with falcon.testing.ASGIConductor(app) as conductor:
            async with conductor.simulate_get_stream('/events') as stream:
                reader = Reader(stream)
                await reader.blocks(1)
                key = {'Idempotency-Key': 'once'}
                first = await conductor.simulate_post(
                    '/images', body=png_image, headers=key
                )
                again = await conductor.simulate_post(
                    '/images', body=png_image, headers=key
                )
                assert again.headers['idempotent-replayed'] == 'true'
                refused = await conductor.simulate_post('/images', body=b'nope')
                assert refused.status_code == 415
                missing = await conductor.simulate_delete(
                    '/images/3bc731ac-8cd8-4f39-b6fe-1a195d3b4e74.jpeg'
                )
                assert missing.status_code == 404
                await conductor.simulate_delete(first.json['image'])
                return await reader.events(2)

    upload, delete = run(scenario())
    assert [upload['event'], delete['event']] == ['image-created', 'image-deleted']


def test_last_event_id_replays_what_was_missed(app, png_image):
    async def scenario():
        async with falcon.testing.ASGIConductor(app) as conductor:
            async with conductor.simulate_get_stream('/events') as stream:
                reader = Reader(stream)
                await reader.blocks(1)
                for _ in range(3):
                    await conductor.simulate_post('/images', body=png_image)
                seen = await reader.events(3)
            headers = {'Last-Event-ID': seen[0]['id']}
            async with conductor.simulate_get_stream(
                '/events', headers=headers
            ) as stream:
                replayed = await Reader(stream).events(2)
            return seen, replayed

    seen, replayed = run(scenario())
    assert replayed == seen[1:]


def test_an_unknown_last_event_id_asks_for_a_resync(app, png_image):
    async def scenario():
        async with falcon.testing.ASGIConductor(app) as conductor:
            headers = {'Last-Event-ID': 'from-before-a-restart'}
            async with conductor.simulate_get_stream(
                '/events', headers=headers
            ) as stream:
                (empty,) = await Reader(stream).events(1)
            await conductor.simulate_post('/images', body=png_image)
            async with conductor.simulate_get_stream(
                '/events', headers=headers
            ) as stream:
                (anchored,) = await Reader(stream).events(1)
            return empty, anchored

    empty, anchored = run(scenario())
    assert empty == {'event': 'resync', 'data': '{}'}
    # NOTE: Anchored on the newest event, so that the next reconnect replays.
    assert anchored['event'] == 'resync'
    assert anchored['id']


def test_idle_streams_get_keep_alive_comments(config):
    config.events_keepalive = 0.05
    app = create_app(config)

    async def scenario():
        async with falcon.testing.ASGIConductor(app) as conductor:
            async with conductor.simulate_get_stream('/events') as stream:
                return await Reader(stream).blocks(3)

    blocks = run(scenario())
    assert blocks[1:] == [{'comment': 'ping'}, {'comment': 'ping'}]


def test_a_closed_stream_frees_its_client(config):
    hub = EventHub(config, _absent_redis(config))

    async def scenario():
        stream = hub.stream()
        await anext(stream)
        assert hub.clients == 1
        await stream.aclose()
        return hub.clients

    assert run(scenario()) == 0


def _absent_redis(config):
    config.redis_enabled = False
    return FailOpenRedis(config)


def test_a_stream_that_falls_behind_is_dropped_not_waited_for(config, caplog):
    hub = EventHub(config, _absent_redis(config))

    async def scenario():
        slow = hub.stream()
        await anext(slow)
        # NOTE: Nobody reads; the publisher must not wait for it.
        async with asyncio.timeout(1):
            for number in range(hub.CLIENT_QUEUE + 5):
                await hub.publish('image-created', {'n': number})
        clients = hub.clients
        # NOTE: The stream ends; its browser reconnects with Last-Event-ID.
        remaining = [event async for event in slow]
        return clients, remaining

    clients, remaining = run(scenario())
    assert clients == 0
    assert remaining == []
    assert 'fell 64 events behind' in caplog.text


def test_the_backlog_is_bounded(config):
    hub = EventHub(config, _absent_redis(config))

    async def scenario():
        for number in range(hub.BACKLOG + 10):
            await hub.publish('image-deleted', {'id': str(number)})
        oldest = next(iter(hub._backlog))
        stream = hub.stream(oldest)
        await anext(stream)
        replayed = [await anext(stream) for _ in range(hub.BACKLOG - 1)]
        await stream.aclose()
        return replayed

    replayed = run(scenario())
    assert len(hub._backlog) == hub.BACKLOG
    assert [event.text for event in replayed[:2]] == ['{"id":"11"}', '{"id":"12"}']
    assert replayed[-1].text == f'{{"id":"{hub.BACKLOG + 9}"}}'


def test_two_apps_sharing_redis_hear_each_other(config, png_image):
    """As two worker processes do, over one (fake) Redis."""
    first, second = create_app(config), create_app(config)

    async def scenario():
        async with (
            falcon.testing.ASGIConductor(first) as one,
            falcon.testing.ASGIConductor(second) as two,
        ):
            async with two.simulate_get_stream('/events') as stream:
                reader = Reader(stream)
                await reader.blocks(1)
                created = await one.simulate_post('/images', body=png_image)
                await one.simulate_delete(created.json['image'])
                events = await reader.events(2)
            # NOTE: The second heard them; a client reconnecting to it with
            #   the first's id gets the second.
            headers = {'Last-Event-ID': events[0]['id']}
            async with two.simulate_get_stream('/events', headers=headers) as again:
                replayed = await Reader(again).events(1)
            return created.json, events, replayed

    created, events, replayed = run(scenario())
    assert [event['event'] for event in events] == ['image-created', 'image-deleted']
    assert json.loads(events[0]['data']) == as_listed(created)
    assert replayed == events[1:]


def test_each_event_once_when_a_publish_times_out_but_happens(config):
    hub = EventHub(config, _absent_redis(config))
    hub._deliver('same', 'image-deleted', '{}')
    hub._deliver('same', 'image-deleted', '{}')
    assert list(hub._backlog) == ['same']


def test_unreadable_relay_messages_are_ignored(config, caplog):
    hub = EventHub(config, _absent_redis(config))
    for message in (b'not json', b'{}', b'[1]'):
        hub._receive(message)
    assert not hub._backlog
    assert caplog.text.count('unreadable message') == 3


@pytest.fixture
def flaky_pubsub(config, fake_redis_server):
    flaky = FlakyPubSubRedis(fake_redis_server)
    config.redis_from_url = lambda *args, **kwargs: flaky
    config.redis_timeout = 0.2
    return flaky


def test_without_redis_events_stay_in_the_process_and_it_says_so_once(
    config, flaky_pubsub, png_image, caplog
):
    flaky_pubsub.down = True
    caplog.set_level(logging.INFO)
    app = create_app(config)

    async def scenario():
        async with falcon.testing.ASGIConductor(app) as conductor:
            async with conductor.simulate_get_stream('/events') as stream:
                reader = Reader(stream)
                await reader.blocks(1)
                for _ in range(2):
                    await conductor.simulate_post('/images', body=png_image)
                events = await reader.events(2)
                # NOTE: Redis is back: the relay subscribes again, and tells
                #   the stream that it may have missed others' events.
                flaky_pubsub.down = False
                events += (await reader.events(3))[2:]
                await conductor.simulate_post('/images', body=png_image)
                events += (await reader.events(4))[3:]
            return events

    events = run(scenario())
    assert [event['event'] for event in events] == [
        'image-created',
        'image-created',
        'resync',
        'image-created',
    ]
    assert events[2]['id'] == events[1]['id']
    warnings = [r for r in caplog.records if 'not relaying events' in r.message]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert 'answers again; events reach every process' in caplog.text
    assert flaky_pubsub.commands.count('ping') >= 2


def test_a_relay_that_breaks_after_subscribing_is_started_again(
    config, flaky_pubsub, caplog
):
    hub = EventHub(config, _failopen(config))

    async def scenario():
        await hub.ready()
        assert hub._subscribed.is_set()
        flaky_pubsub.down = True
        # NOTE: Publishing while down: this process's streams still hear it.
        await hub.publish('image-deleted', {'id': 'x'})
        await asyncio.sleep(0.3)
        subscribed = hub._subscribed.is_set()
        flaky_pubsub.down = False
        await asyncio.sleep(0.5)
        await hub.ready()
        back = hub._subscribed.is_set()
        await hub.close()
        await hub.close()
        return subscribed, back

    assert run(scenario()) == (False, True)
    assert list(hub._backlog)
    assert 'not relaying events' in caplog.text


def test_a_publish_nobody_hears_is_delivered_here(config, flaky_pubsub):
    """Subscribed, as far as we know, but PUBLISH reached no one (our
    subscription went, and the relay has not noticed yet)."""
    hub = EventHub(config, _failopen(config))

    async def scenario():
        await hub.ready()
        flaky_pubsub.unheard = True
        await hub.publish('image-deleted', {'id': 'y'})
        await hub.close()

    run(scenario())
    assert len(hub._backlog) == 1


def _failopen(config):
    return FailOpenRedis(config)


def test_a_redis_that_never_answers_holds_neither_stream_nor_publisher(
    config, flaky_pubsub
):
    flaky_pubsub.hang = True
    hub = EventHub(config, _failopen(config))

    async def scenario():
        async with asyncio.timeout(2):
            await hub.ready()
            await hub.publish('image-deleted', {'id': 'z'})
        await hub.close()

    run(scenario())
    assert len(hub._backlog) == 1


def test_redis_none_means_no_relay(config, png_image):
    config.redis_enabled = False
    config.redis_from_url = _no_redis
    app = create_app(config)

    async def scenario():
        async with falcon.testing.ASGIConductor(app) as conductor:
            async with conductor.simulate_get_stream('/events') as stream:
                reader = Reader(stream)
                await reader.blocks(1)
                await conductor.simulate_post('/images', body=png_image)
                return await reader.events(1)

    assert run(scenario())[0]['event'] == 'image-created'


def _no_redis(*args, **kwargs):
    return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())


class LiveStream:
    """``GET /events`` of a real service, read event by event."""

    def __init__(self, service, **headers):
        self._connection = http.client.HTTPConnection(
            '127.0.0.1', service.port, timeout=10
        )
        self._connection.request('GET', '/events', headers=headers)
        self.response = self._connection.getresponse()
        assert self.response.status == 200
        assert self.next() == {'comment': 'asgilook events', 'retry': '1000'}

    def next(self):
        lines = []
        while not lines or lines[-1]:
            lines.append(self.response.readline().decode().rstrip('\n'))
        return parse('\n'.join(lines[:-1]) + '\n\n')[0]

    def next_event(self):
        while 'data' not in (block := self.next()):
            pass
        return block

    def close(self):
        self._connection.close()


@pytest.fixture
def services():
    started = []

    def start(storage, *args, **environ):
        # NOTE: A closed stream is noticed at its next keep-alive: soon, so
        #   that the services stop at once.
        environ.setdefault('ASGI_LOOK_EVENTS_KEEPALIVE', '1')
        started.append(Service(storage, *args, **environ).start())
        return started[-1]

    yield start
    for service in started:
        service.stop()


def _upload(service, body):
    status, _, text = service.request('POST', '/images', body=body)
    assert status == 201, text
    return json.loads(text)


def test_an_upload_on_one_host_reaches_a_stream_on_another(
    services, tmp_path, real_redis, png_image
):
    storage = tmp_path / 'shared'
    a = services(storage, ASGI_LOOK_REDIS_URL=real_redis.url)
    b = services(storage, ASGI_LOOK_REDIS_URL=real_redis.url)
    stream = LiveStream(b)
    try:
        created = _upload(a, png_image)
        assert a.request('DELETE', created['image'])[0] == 204
        upload, delete = stream.next_event(), stream.next_event()
    finally:
        stream.close()
    assert upload['event'] == 'image-created'
    assert json.loads(upload['data']) == as_listed(created)
    assert json.loads(delete['data']) == {'id': created['id']}

    # NOTE: Reconnecting to the other host, with the last id it had.
    again = LiveStream(a, **{'Last-Event-ID': upload['id']})
    try:
        assert again.next_event() == delete
    finally:
        again.close()


def test_two_workers_stream_every_upload(services, tmp_path, real_redis, png_image):
    service = services(
        tmp_path / 'images', '--workers', '2', ASGI_LOOK_REDIS_URL=real_redis.url
    )
    # NOTE: Each on its own connection: the workers share them out.
    streams = [LiveStream(service) for _ in range(6)]
    try:
        created = [_upload(service, png_image)['id'] for _ in range(4)]
        for stream in streams:
            heard = [json.loads(stream.next_event()['data'])['id'] for _ in created]
            assert heard == created
    finally:
        for stream in streams:
            stream.close()


def test_images_without_a_hub_tell_nobody(config, png_image):
    """As an embedder's app that wires Images itself, without events."""
    store = Store(config)
    app = falcon.asgi.App(middleware=[StoreLifespan(store, config.sweep_interval)])
    app.add_route('/images', Images(config, store))
    client = falcon.testing.TestClient(app)
    assert client.simulate_post('/images', body=png_image).status_code == 201
    assert len(client.simulate_get('/images').json) == 1


@pytest.mark.parametrize(
    'message',
    [
        {'id': 'a', 'event': 'image-deleted', 'data': 7},
        {'id': 1, 'event': 'image-deleted', 'data': '{}'},
        {'id': '', 'event': 'image-deleted', 'data': '{}'},
        {'id': 'a' * 65, 'event': 'image-deleted', 'data': '{}'},
        {'id': 'a\nretry: 1', 'event': 'image-deleted', 'data': '{}'},
        {'id': 'a', 'event': 'image-deleted', 'data': '{}\r\nevent: x'},
        {'id': 'a', 'event': 'image-deleted\n', 'data': '{}'},
        {'id': 'a', 'event': 'resync', 'data': '{}'},
        {'id': 'a', 'event': ['image-deleted'], 'data': '{}'},
        {'id': 'a', 'event': 'image-created', 'data': 'x' * (64 * 1024 + 1)},
        # NOTE: Well-formed, but not what a page can show.
        {'id': 'a', 'event': 'image-created', 'data': '{}'},
        {'id': 'a', 'event': 'image-created', 'data': '{"id":"a"}'},
        {'id': 'a', 'event': 'image-created', 'data': '{"id":"a","image":"/i"}'},
        {'id': 'a', 'event': 'image-deleted', 'data': '{"id":7}'},
        {'id': 'a', 'event': 'image-deleted', 'data': '["a"]'},
        {'id': 'a', 'event': 'image-deleted', 'data': 'a'},
    ],
)
def test_relayed_messages_that_are_not_events_are_dropped(config, caplog, message):
    hub = EventHub(config, _absent_redis(config))
    hub._receive(json.dumps(message))
    assert not hub._backlog
    assert caplog.text.count('not an asgilook event') == 1


def test_a_relayed_event_is_delivered(config):
    hub = EventHub(config, _absent_redis(config))
    created = {'id': 'b', 'image': '/images/b.jpeg', 'srcset': {}}
    for message in (
        {'id': 'a', 'event': 'image-deleted', 'data': '{"id":"a"}'},
        {'id': 'b', 'event': 'image-created', 'data': json.dumps(created)},
    ):
        hub._receive(json.dumps(message))
    assert list(hub._backlog) == ['a', 'b']


def test_deployments_on_other_redis_databases_do_not_hear_each_other(
    config, flaky_pubsub
):
    other = copy.copy(config)
    config.redis_host = 'redis://localhost/1'
    other.redis_host = 'redis://localhost/2'
    one = EventHub(config, _failopen(config))
    two = EventHub(other, _failopen(other))

    async def scenario():
        await one.ready()
        await two.ready()
        stream = two.stream()
        await anext(stream)
        await one.publish('image-deleted', {'id': 'theirs'})
        await two.publish('image-deleted', {'id': 'ours'})
        async with asyncio.timeout(2):
            heard = await anext(stream)
        await stream.aclose()
        await one.close()
        await two.close()
        return heard

    assert run(scenario()).text == '{"id":"ours"}'
    assert one.channel == 'asgilook:events:1'


def test_a_quiet_subscription_is_pinged_and_kept(config, flaky_pubsub, caplog):
    hub = EventHub(config, _failopen(config))
    other = EventHub(config, _failopen(config))

    async def scenario():
        await hub.ready()
        stream = hub.stream()
        await anext(stream)
        # NOTE: Several keep-alives without a message: pinged, and answered.
        await asyncio.sleep(0.5)
        await other.publish('image-deleted', {'id': 'after the quiet'})
        async with asyncio.timeout(2):
            while (event := await anext(stream)) is None:
                pass
        await stream.aclose()
        await hub.close()
        return event

    assert run(scenario()).text == '{"id":"after the quiet"}'
    assert flaky_pubsub.commands.count('subscriber ping') >= 2
    assert 'not relaying events' not in caplog.text


def test_a_subscription_that_falls_silent_is_started_again(
    config, flaky_pubsub, caplog
):
    hub = EventHub(config, _failopen(config))
    other = EventHub(config, _failopen(config))

    async def scenario():
        await hub.ready()
        stream = hub.stream()
        await anext(stream)
        # NOTE: Nothing comes, and nothing fails: only an unanswered PING
        #   tells that this subscription hears nobody any more.
        flaky_pubsub.silent = True
        async with asyncio.timeout(2):
            while 'not relaying events' not in caplog.text:
                await asyncio.sleep(0.05)
        flaky_pubsub.silent = False
        heard = []
        async with asyncio.timeout(3):
            while not heard or heard[-1].event != 'resync':
                if (event := await anext(stream)) is not None:
                    heard.append(event)
            await other.publish('image-deleted', {'id': 'after'})
            while (event := await anext(stream)) is None:
                pass
        heard.append(event)
        await stream.aclose()
        await hub.close()
        return heard

    assert [event.event for event in run(scenario())] == ['resync', 'image-deleted']
    assert 'PING' in caplog.text


def test_a_subscription_that_a_nat_forgot_is_noticed(
    services, tmp_path, real_redis, png_image
):
    """A's subscription goes through a proxy that stops forwarding without
    closing anything; B's uploads reach A's streams again all the same."""
    proxy = TcpProxy(real_redis.port).start()
    storage = tmp_path / 'shared'
    a = services(storage, ASGI_LOOK_REDIS_URL=f'redis://127.0.0.1:{proxy.port}')
    b = services(storage, ASGI_LOOK_REDIS_URL=real_redis.url)
    stream = LiveStream(a)
    try:
        proxy.freeze()
        assert stream.next_event()['event'] == 'resync'
        created = _upload(b, png_image)
        assert json.loads(stream.next_event()['data'])['id'] == created['id']
    finally:
        stream.close()
        proxy.cut()


@pytest.fixture
def uvicorn_app(config, real_redis):
    """create_app(config) served by uvicorn in this process, on real Redis."""
    config.redis_from_url = Config.DEFAULT_REDIS_FROM_URL
    config.redis_host = real_redis.url
    config.events_keepalive = 1.0
    with served(create_app(config)) as server:
        yield server


class _Served:
    def __init__(self, server):
        self.port = server.config.port

    def request(self, method, path):
        return Service.request(self, method, path)


def _open_streams(service):
    _, _, body = service.request('GET', '/metrics')
    return float(re.search(rb'^asgilook_sse_clients (\S+)$', body, re.M)[1])


def test_a_client_that_stops_reading_is_disconnected(uvicorn_app, real_redis, caplog):
    service = _Served(uvicorn_app)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(('127.0.0.1', service.port))
    stalled.sendall(b'GET /events HTTP/1.1\r\nHost: asgilook\r\n\r\n')
    assert stalled.recv(12) == b'HTTP/1.1 200'
    reader = LiveStream(service)
    try:
        wait_for(lambda: _open_streams(service) == 2, what='two streams')
        # NOTE: As another process's events, each as large as the relay
        #   takes: megabytes, more than any buffer on the way holds.
        with real_redis.client() as client:
            for number in range(200):
                data = json.dumps({'id': f'{number}', 'padding': 'x' * 60000})
                message = {'id': f'big-{number}', 'event': 'image-deleted'}
                client.publish(
                    'asgilook:events:0', json.dumps({**message, 'data': data})
                )
                # NOTE: The reader keeps up; only the stalled client does not.
                assert reader.next_event()['id'] == f'big-{number}'
        wait_for(lambda: _open_streams(service) == 1, what='the stalled stream to go')
        # NOTE: What the kernel held still comes, then the end: closed.
        stalled.settimeout(10)
        while stalled.recv(65536):
            pass
    finally:
        reader.close()
        stalled.close()
    assert 'client took nothing for 1 s; it was disconnected' in caplog.text
    assert 'Traceback' not in caplog.text
    assert 'Exception in ASGI application' not in caplog.text


def test_a_stalled_stream_on_another_server_ends_with_an_error(config, caplog):
    """A server without uvicorn's transport: the app fails, and the server
    closes the connection as it does on any failure."""
    app = create_app(config)
    sent = []

    async def send(message):
        sent.append(message['type'])
        if message.get('more_body'):
            # NOTE: A client that reads nothing.
            await asyncio.Event().wait()

    async def receive():
        if not sent:
            return {'type': 'http.request', 'body': b'', 'more_body': False}
        await asyncio.Event().wait()

    async def scenario():
        with pytest.raises(ConnectionAbortedError):
            async with asyncio.timeout(3):
                await app(falcon.testing.create_scope('/events'), receive, send)
        # NOTE: What the server would stop with the connection: Falcon's
        #   watch for a disconnect.
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    run(scenario())
    assert sent[0] == 'http.response.start'
    assert 'took nothing for 0.1 s' in caplog.text


def test_streams_end_cleanly_when_the_server_stops(uvicorn_app, caplog):
    stream = LiveStream(_Served(uvicorn_app))
    # NOTE: uvicorn waits a second (timeout_graceful_shutdown) for the stream
    #   to end, then cancels it.
    uvicorn_app.stop()
    # NOTE: Keep-alives, then the end of a chunked body, not a cut
    #   (IncompleteRead).
    rest = parse(stream.response.read().decode())
    assert all(block == {'comment': 'ping'} for block in rest)
    stream.close()
    assert 'Exception in ASGI application' not in caplog.text
    assert 'Traceback' not in caplog.text


def test_a_process_hears_the_others_from_its_start(config, png_image):
    """A reconnect that lands on a process which no stream has asked yet
    still gets what it missed, not a resync."""
    one, two = create_app(config), create_app(config)

    async def scenario():
        async with (
            falcon.testing.ASGIConductor(one) as a,
            falcon.testing.ASGIConductor(two) as b,
        ):
            # NOTE: Time for both relays, started at start-up, to subscribe.
            await asyncio.sleep(0.2)
            async with a.simulate_get_stream('/events') as stream:
                reader = Reader(stream)
                await reader.blocks(1)
                created = (await a.simulate_post('/images', body=png_image)).json
                event = (await reader.events(1))[0]
            last = {'Last-Event-ID': event['id']}
            async with b.simulate_get_stream('/events', headers=last) as stream:
                reader = Reader(stream)
                await reader.blocks(1)
                await a.simulate_delete(created['image'])
                return created, (await reader.events(1))[0]

    created, heard = run(scenario())
    assert heard['event'] == 'image-deleted'
    assert json.loads(heard['data']) == {'id': created['id']}


@pytest.fixture
def channel_less_redis(real_redis):
    """A user who may do anything but use pub/sub channels: Redis 7's default
    for a new user, and a common ACL mistake."""
    with real_redis.client() as client:
        client.execute_command(
            'ACL', 'SETUSER', 'no-channels', 'on', '>secret', '~*', '+@all',
            'resetchannels',
        )  # fmt: skip
    yield f'redis://no-channels:secret@127.0.0.1:{real_redis.port}'
    with real_redis.client() as client:
        client.execute_command('ACL', 'DELUSER', 'no-channels')


def test_a_redis_that_refuses_channels_leaves_events_local_and_the_cache_on(
    config, channel_less_redis, png_image, caplog
):
    config.redis_from_url = Config.DEFAULT_REDIS_FROM_URL
    config.redis_host = channel_less_redis
    config.redis_retry_interval = 0.1
    app = create_app(config)

    async def scenario():
        async with falcon.testing.ASGIConductor(app) as conductor:
            async with conductor.simulate_get_stream('/events') as stream:
                reader = Reader(stream)
                await reader.blocks(1)
                await conductor.simulate_post('/images', body=png_image)
                # NOTE: Long enough for the relay to try several times.
                await asyncio.sleep(1)
                listings = [await conductor.simulate_get('/images') for _ in range(2)]
                await conductor.simulate_post('/images', body=png_image)
                events = await reader.events(2)
        return [r.headers['X-ASGILook-Cache'] for r in listings], events

    caches, events = run(scenario())
    # NOTE: No resync: the relay never was up, so nothing came back.
    assert [event['event'] for event in events] == ['image-created'] * 2
    assert caches == ['Miss', 'Hit']
    assert caplog.text.count('not relaying events') == 1
    assert 'NoPermissionError' in caplog.text
    assert caplog.text.count('refuses PUBLISH') == 1
    assert 'answers again' not in caplog.text
    assert 'is not answering' not in caplog.text


def test_a_subscribe_without_an_answer_is_tried_again(config, flaky_pubsub, caplog):
    flaky_pubsub.silent = True
    hub = EventHub(config, _failopen(config))

    async def scenario():
        await hub.ready()
        unanswered = hub._subscribed.is_set()
        flaky_pubsub.silent = False
        async with asyncio.timeout(3):
            await hub.ready()
            while not hub._subscribed.is_set():
                await hub.ready()
        await hub.close()
        return unanswered

    assert run(scenario()) is False
    assert 'no answer to SUBSCRIBE' in caplog.text


def test_a_stream_cancelled_before_it_starts_is_cancelled(config, flaky_pubsub):
    """Stopped while it waits for the relay: nothing was sent, and the
    cancellation goes on up to the server."""
    flaky_pubsub.hang = True
    config.redis_timeout = 5
    app = create_app(config)
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {'type': 'http.request', 'body': b'', 'more_body': False}

    async def scenario():
        scope = falcon.testing.create_scope('/events')
        task = asyncio.ensure_future(app(scope, receive, send))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    assert sent == []
