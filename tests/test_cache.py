import asyncio
import base64
import datetime
import logging
import time
import urllib.parse
import uuid

import fakeredis
import falcon
import falcon.asgi
import falcon.testing
import msgpack
import pytest

from asgilook import backends
from asgilook.app import create_app
from asgilook.cache import cached
from asgilook.cache import do_not_cache
from asgilook.cache import RedisCache
from asgilook.failopen import FailOpenRedis
from asgilook.records import Record

from .fakes import FlakyRedis
from .helpers import FIRST_ID
from .helpers import FIRST_URI
from .servers import free_port
from .servers import RedisServer

THUMBNAIL = f'/thumbnails/{FIRST_ID}/160x90.jpeg'


def test_hits_replay_the_response_byte_for_byte(any_client, png_image):
    any_client.simulate_post('/images', body=png_image)

    for path in ('/images', THUMBNAIL):
        miss = any_client.simulate_get(path)
        hit = any_client.simulate_get(path)
        assert (miss.status_code, hit.status_code) == (200, 200)
        assert miss.headers['X-ASGILook-Cache'] == 'Miss'
        assert hit.headers['X-ASGILook-Cache'] == 'Hit'
        assert hit.content == miss.content
        for name in ('Content-Type', 'Content-Length'):
            assert hit.headers[name] == miss.headers[name]


def test_originals_are_never_cached(any_client, png_image):
    any_client.simulate_post('/images', body=png_image)

    bodies = {any_client.simulate_get(FIRST_URI).content for _ in range(3)}
    assert len(bodies) == 1
    assert len(bodies.pop()) > 1000
    assert any_client.simulate_get(FIRST_URI).headers['X-ASGILook-Cache'] == 'Bypass'


def test_upload_invalidates_the_listing(any_client, png_image):
    assert any_client.simulate_get('/images').json == []
    assert any_client.simulate_get('/images').headers['X-ASGILook-Cache'] == 'Hit'

    any_client.simulate_post('/images', body=png_image)

    resp = any_client.simulate_get('/images')
    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert [item['id'] for item in resp.json] == [FIRST_ID]


def test_failures_are_not_cached(any_client, png_image):
    for _ in range(2):
        resp = any_client.simulate_get(THUMBNAIL)
        assert resp.status_code == 404

    any_client.simulate_post('/images', body=png_image)
    assert any_client.simulate_get(THUMBNAIL).status_code == 200


def _redis_entry_setters(request):
    if 'real_client' in request.fixturenames:
        server = request.getfixturevalue('real_redis')
        return server.client()
    return fakeredis.FakeRedis(server=request.getfixturevalue('fake_redis_server'))


def _key(path):
    return f'{RedisCache.PREFIX}GET:{path}'


def _entry(body, **headers):
    pairs = [['content-type', 'application/json'], *headers.items()]
    return msgpack.packb([2, 200, pairs, body], use_bin_type=True)


@pytest.mark.parametrize(
    'entry',
    [
        _entry(b'[{"id": "ghost"}]', etag='"stale"', **{'surrogate-key': 'images'}),
        _entry(b'[{"id": "ghost"}]', **{'surrogate-key': 'images'}),
    ],
)
def test_entries_that_no_longer_tell_the_truth_are_misses(any_client, request, entry):
    # NOTE: With the in-memory store a restart forgets every image; a listing
    #   cached by the previous run must not resurrect them.
    with _redis_entry_setters(request) as redis:
        redis.set(_key('/images'), entry)

        resp = any_client.simulate_get('/images')
        assert resp.headers['X-ASGILook-Cache'] == 'Miss'
        assert resp.json == []


def test_thumbnails_of_unknown_images_are_misses(any_client, request):
    uri = f'/thumbnails/{FIRST_ID}/160x90.jpeg'
    with _redis_entry_setters(request) as redis:
        redis.set(_key(uri), _entry(b'jpeg', **{'surrogate-key': FIRST_ID}))

    assert any_client.simulate_get(uri).status_code == 404


@pytest.mark.parametrize(
    'entry',
    [b'\xc1garbage', b'\x93\x01\x02\x03', b'\x92\x01\x02', b'\x05', b''],
)
def test_unreadable_entries_are_misses(any_client, request, entry, caplog):
    any_client.simulate_get('/images')

    with _redis_entry_setters(request) as redis:
        redis.set(_key('/images'), entry)

    resp = any_client.simulate_get('/images')
    assert resp.status_code == 200
    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert resp.json == []
    assert 'unreadable cache entry' in caplog.text
    assert any_client.simulate_get('/images').headers['X-ASGILook-Cache'] == 'Hit'


# NOTE: The tests below switch Redis off and on through a fake client.


@pytest.fixture
def flaky():
    return FlakyRedis()


@pytest.fixture
def flaky_client(config, flaky):
    config.redis_from_url = lambda url: flaky
    return falcon.testing.TestClient(create_app(config))


def test_starts_and_serves_everything_without_redis(
    flaky_client, flaky, png_image, caplog
):
    flaky.down = True

    resp = flaky_client.simulate_post('/images', body=png_image)
    assert resp.status_code == 201

    for path in ('/images', FIRST_URI, THUMBNAIL):
        for _ in range(2):
            resp = flaky_client.simulate_get(path)
            assert resp.status_code == 200
            assert resp.headers['X-ASGILook-Cache'] == 'Bypass'
        assert flaky_client.simulate_head(path).status_code == 200

    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == 'asgilook.failopen'
    ]
    assert len(warnings) == 1
    assert 'not answering' in warnings[0].getMessage()
    assert 'redis://localhost' in warnings[0].getMessage()


def test_caching_resumes_once_redis_answers(flaky_client, flaky, caplog):
    flaky.down = True
    assert flaky_client.simulate_get('/images').headers['X-ASGILook-Cache'] == 'Bypass'

    caplog.set_level(logging.INFO)
    flaky.down = False
    assert flaky_client.simulate_get('/images').headers['X-ASGILook-Cache'] == 'Miss'
    assert flaky_client.simulate_get('/images').headers['X-ASGILook-Cache'] == 'Hit'
    assert 'answers again' in caplog.text


def test_no_stale_listing_after_an_outage(flaky_client, flaky, png_image):
    assert flaky_client.simulate_get('/images').json == []
    assert flaky_client.simulate_get('/images').headers['X-ASGILook-Cache'] == 'Hit'

    flaky.down = True
    flaky_client.simulate_post('/images', body=png_image)
    flaky.down = False

    resp = flaky_client.simulate_get('/images')
    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert [item['id'] for item in resp.json] == [FIRST_ID]


def test_redis_failing_mid_request_is_not_an_error(flaky, config, png_image):
    class FailsOnSet(FlakyRedis):
        async def set(self, key, value, **options):
            if 'nx' in options:
                return await super().set(key, value, **options)
            raise ConnectionResetError('Connection reset by peer (fake)')

    failing = FailsOnSet()
    config.redis_from_url = lambda url: failing
    client = falcon.testing.TestClient(create_app(config))
    client.simulate_post('/images', body=png_image)

    for path in ('/images', THUMBNAIL):
        resp = client.simulate_get(path)
        assert resp.status_code == 200
        assert resp.headers['X-ASGILook-Cache'] == 'Bypass'
        assert resp.content


def test_dead_redis_is_left_alone_for_a_while(flaky_client, flaky, config):
    config.redis_retry_interval = 60
    flaky.down = True
    flaky_client.simulate_get('/images')
    sent = len(flaky.commands)

    for _ in range(5):
        assert flaky_client.simulate_get('/images').status_code == 200

    # NOTE: Only the client's close at each shutdown; no command was tried.
    assert set(flaky.commands[sent:]) == {'aclose'}


def test_backoff_grows_and_is_capped(config, flaky):
    config.redis_retry_interval = 1
    config.redis_from_url = lambda url: flaky
    now = [1000.0]
    redis = FailOpenRedis(config, clock=lambda: now[0])
    flaky.down = True

    intervals = []
    for _ in range(8):
        assert not falcon.async_to_sync(redis.ping)
        intervals.append(redis.retry_at - now[0])
        now[0] = redis.retry_at

    assert intervals == [1, 2, 4, 8, 16, 30, 30, 30]
    # NOTE: In between, nothing is sent at all.
    sent = len(flaky.commands)
    now[0] -= 1
    assert not falcon.async_to_sync(redis.ping)
    assert len(flaky.commands) == sent


def test_hanging_redis_times_out(flaky_client, flaky, config):
    config.redis_timeout = 0.05
    flaky.hang = True

    started = time.monotonic()
    resp = flaky_client.simulate_get('/images')
    assert resp.status_code == 200
    assert resp.headers['X-ASGILook-Cache'] == 'Bypass'
    assert time.monotonic() - started < 5


def test_password_is_not_logged(flaky_client, flaky, config, caplog):
    config.redis_host = 'redis://:hunter2@cache.example:6380/0'
    flaky.down = True
    flaky_client.simulate_get('/images')

    assert 'redis://cache.example:6380/0' in caplog.text
    assert 'hunter2' not in caplog.text


# NOTE: The same outages against a real redis-server.


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path, port=free_port())
    yield server
    server.stop()


@pytest.fixture
def own_redis_client(config, own_redis):
    config.redis_from_url = type(config).DEFAULT_REDIS_FROM_URL
    config.redis_host = own_redis.url
    return falcon.testing.TestClient(create_app(config))


def test_real_redis_started_after_the_app(own_redis_client, own_redis, png_image):
    resp = own_redis_client.simulate_post('/images', body=png_image)
    assert resp.status_code == 201
    assert own_redis_client.simulate_get('/images').headers['X-ASGILook-Cache'] == (
        'Bypass'
    )

    own_redis.start()
    for expected in ('Miss', 'Hit'):
        resp = own_redis_client.simulate_get(THUMBNAIL)
        assert resp.status_code == 200
        assert resp.headers['X-ASGILook-Cache'] == expected


def test_real_redis_stopped_and_paused(own_redis_client, own_redis, png_image):
    own_redis.start()
    own_redis_client.simulate_post('/images', body=png_image)
    assert own_redis_client.simulate_get(THUMBNAIL).status_code == 200
    assert own_redis_client.simulate_get(THUMBNAIL).headers['X-ASGILook-Cache'] == 'Hit'

    own_redis.pause()
    try:
        started = time.monotonic()
        resp = own_redis_client.simulate_get(THUMBNAIL)
        assert resp.status_code == 200
        assert resp.headers['X-ASGILook-Cache'] == 'Bypass'
        assert time.monotonic() - started < 5
    finally:
        own_redis.resume()

    own_redis.stop()
    for path in ('/images', THUMBNAIL, FIRST_URI):
        resp = own_redis_client.simulate_get(path)
        assert resp.status_code == 200
        assert resp.headers['X-ASGILook-Cache'] == 'Bypass'


# NOTE: Issue 4: a cache that is never wrong, and renders once.


def test_delete_while_redis_is_paused(own_redis_client, own_redis, png_image):
    own_redis.start()
    client = own_redis_client
    created = client.simulate_post('/images', body=png_image).json
    thumbnail = created['thumbnails'][0]
    for path in ('/images', thumbnail, '/images', thumbnail):
        client.simulate_get(path)
    assert client.simulate_get(thumbnail).headers['X-ASGILook-Cache'] == 'Hit'
    assert client.simulate_get('/images').headers['X-ASGILook-Cache'] == 'Hit'

    own_redis.pause()
    try:
        resp = client.simulate_delete(created['image'])
        assert resp.status_code == 204
    finally:
        own_redis.resume()

    # NOTE: Redis still holds both entries; neither may be served.
    with own_redis.client() as redis:
        assert redis.exists(f'{RedisCache.PREFIX}GET:{thumbnail}')
    client_after = own_redis_client
    time.sleep(0.1)
    assert client_after.simulate_get(thumbnail).status_code == 404
    listing = client_after.simulate_get('/images')
    assert listing.status_code == 200
    assert listing.json == []


def test_if_match_on_a_cached_response(any_client, png_image):
    any_client.simulate_post('/images', body=png_image)
    any_client.simulate_get(THUMBNAIL)

    resp = any_client.simulate_get(THUMBNAIL, headers={'If-Match': '"nope"'})
    assert resp.status_code == 412
    etag = any_client.simulate_get(THUMBNAIL).headers['ETag']
    resp = any_client.simulate_get(THUMBNAIL, headers={'If-Match': etag})
    assert resp.status_code == 200
    assert resp.headers['X-ASGILook-Cache'] == 'Hit'


def test_only_query_parameters_that_matter_are_part_of_the_key(
    any_client, request, png_image
):
    any_client.simulate_post('/images', body=png_image)
    for path, expected in [
        ('/images', 'Miss'),
        ('/images?limit=1', 'Miss'),
        ('/images?limit=2', 'Miss'),
        ('/images?limit=1', 'Hit'),
        ('/images?junk=1', 'Hit'),
        (THUMBNAIL, 'Miss'),
        (f'{THUMBNAIL}?junk=1', 'Hit'),
        (f'{THUMBNAIL}?junk=2&limit=', 'Hit'),
    ]:
        assert any_client.simulate_get(path).headers['X-ASGILook-Cache'] == expected

    # NOTE: However many junk parameters come, no more entries are made.
    with _redis_entry_setters(request) as redis:
        before = len(redis.keys(f'{RedisCache.PREFIX}GET:*'))
        for n in range(20):
            any_client.simulate_get(f'{THUMBNAIL}?junk={n}')
        assert len(redis.keys(f'{RedisCache.PREFIX}GET:*')) == before


def test_large_entries_are_not_cached(any_client, config, png_image):
    any_client.simulate_post('/images', body=png_image)
    small = any_client.simulate_get(f'/thumbnails/{FIRST_ID}/160x90.jpeg')
    config.cache_max_entry_bytes = len(small.content) + 1000

    for _ in range(2):
        resp = any_client.simulate_get(f'/thumbnails/{FIRST_ID}/320x180.jpeg')
        assert resp.status_code == 200
        assert resp.headers['X-ASGILook-Cache'] == 'Bypass'
    hit = any_client.simulate_get(f'/thumbnails/{FIRST_ID}/160x90.jpeg')
    assert hit.headers['X-ASGILook-Cache'] == 'Hit'


async def _gather(app, paths):
    async with falcon.testing.ASGIConductor(app) as conductor:
        return await asyncio.gather(*(conductor.simulate_get(path) for path in paths))


@pytest.mark.parametrize('backend', ['fakeredis', 'redis-server', 'no redis'])
def test_single_flight_in_one_process(request, config, renders, png_image, backend):
    if backend == 'redis-server':
        config.redis_from_url = type(config).DEFAULT_REDIS_FROM_URL
        config.redis_host = request.getfixturevalue('real_redis').url
    elif backend == 'no redis':
        config.redis_from_url = type(config).DEFAULT_REDIS_FROM_URL
        config.redis_host = f'redis://127.0.0.1:{free_port()}'
    app = create_app(config)
    falcon.testing.TestClient(app).simulate_post('/images', body=png_image)
    renders.delay = 0.2

    responses = falcon.async_to_sync(_gather, app, [THUMBNAIL] * 8)

    assert renders == [(160, 90)]
    assert {resp.status_code for resp in responses} == {200}
    assert len({resp.content for resp in responses}) == 1


class SlowResource:
    """Stands for an expensive render, shared by two 'processes'."""

    def __init__(self):
        self.renders = 0

    @cached()
    async def on_get(self, req, resp):
        await self.render(req, resp)

    async def render(self, req, resp):
        self.renders += 1
        await asyncio.sleep(0.3)
        resp.content_type = 'text/plain'
        resp.data = b'rendered once'


def test_a_route_that_does_not_ask_is_never_cached(any_client, config):
    class Health:
        def __init__(self):
            self.calls = 0

        async def on_get(self, req, resp):
            self.calls += 1
            resp.media = {'calls': self.calls}

    app = create_app(config)
    app.add_route('/healthz', Health())
    client = falcon.testing.TestClient(app)

    for calls in (1, 2, 3):
        resp = client.simulate_get('/healthz')
        assert resp.json == {'calls': calls}
        assert resp.headers['X-ASGILook-Cache'] == 'Bypass'


def test_only_get_and_head_answers_are_cached(config):
    class Counter(SlowResource):
        @cached()
        async def on_post(self, req, resp):
            await self.render(req, resp)

    resource = Counter()
    app = falcon.asgi.App(middleware=[RedisCache(config)])
    app.add_route('/slow', resource)
    client = falcon.testing.TestClient(app)

    for _ in range(2):
        resp = client.simulate_post('/slow')
        assert resp.text == 'rendered once'
        assert 'X-ASGILook-Cache' not in resp.headers
    assert resource.renders == 2


@pytest.mark.parametrize('lock_ttl', [10.0, 0.1])
def test_single_flight_across_processes(request, any_client, config, lock_ttl):
    # NOTE: With a TTL of 0.1 s the render (0.3 s) outlasts the lock; its
    #   holder renews it, and nobody renders a second time.
    config.cache_lock_ttl = lock_ttl
    real = 'real_client' in request.fixturenames
    resource = SlowResource()
    apps = []
    for _ in range(2):
        # NOTE: Each app has its own cache middleware and Redis connection,
        #   as two processes would; they share one Redis server.
        app = falcon.asgi.App(middleware=[RedisCache(config)])
        app.add_route('/slow', resource)
        apps.append(app)

    async def both():
        async with falcon.testing.ASGIConductor(apps[0]) as first:
            async with falcon.testing.ASGIConductor(apps[1]) as second:
                return await asyncio.gather(
                    *(
                        conductor.simulate_get('/slow')
                        for conductor in [first, second] * 4
                    )
                )

    responses = falcon.async_to_sync(both)
    assert resource.renders == 1, real
    assert [resp.text for resp in responses] == ['rendered once'] * 8
    assert sorted(resp.headers['X-ASGILook-Cache'] for resp in responses) == (
        ['Hit'] * 7 + ['Miss']
    )


def test_waiters_render_themselves_when_the_holder_caches_nothing(config):
    class Uncacheable(SlowResource):
        async def render(self, req, resp):
            await super().render(req, resp)
            do_not_cache(resp)

    resource = Uncacheable()
    app = falcon.asgi.App(middleware=[RedisCache(config)])
    app.add_route('/slow', resource)

    responses = falcon.async_to_sync(_gather, app, ['/slow'] * 3)
    assert resource.renders == 3
    assert {resp.text for resp in responses} == {'rendered once'}


def test_waiters_give_up_after_cache_lock_wait(config):
    config.cache_lock_ttl = 0.1
    config.cache_lock_wait = 0.15
    resource = SlowResource()
    app = falcon.asgi.App(middleware=[RedisCache(config)])
    app.add_route('/slow', resource)

    falcon.async_to_sync(_gather, app, ['/slow'] * 2)
    assert resource.renders == 2


def test_the_lock_of_a_holder_that_died_expires_after_its_ttl(config, flaky):
    config.redis_from_url = lambda url: flaky
    config.cache_lock_ttl = 0.1
    config.cache_lock_wait = 5
    resource = SlowResource()
    app = falcon.asgi.App(middleware=[RedisCache(config)])
    app.add_route('/slow', resource)

    async def holder_dies():
        async with falcon.testing.ASGIConductor(app) as conductor:
            holder = asyncio.ensure_future(conductor.simulate_get('/slow'))
            await asyncio.sleep(0.05)
            # NOTE: As a server cancelling a request on its way out: nothing
            #   releases the lock, and nothing renews it any more.
            holder.cancel()
            started = time.monotonic()
            resp = await conductor.simulate_get('/slow')
            return resp, time.monotonic() - started

    resp, waited = falcon.async_to_sync(holder_dies)
    assert resp.text == 'rendered once'
    assert resource.renders == 2
    assert waited < 2.5


def test_a_lock_taken_over_is_not_renewed_by_its_former_holder(config, flaky):
    class Robbed(SlowResource):
        async def render(self, req, resp):
            # NOTE: As if the lock expired and another process took it, then
            #   died too.
            for key in await flaky.redis.keys(f'{RedisCache.PREFIX}lock:*'):
                await flaky.redis.set(key, b'someone-else', px=100)
            await super().render(req, resp)

    config.redis_from_url = lambda url: flaky
    config.cache_lock_ttl = 0.1
    app = falcon.asgi.App(middleware=[RedisCache(config)])
    app.add_route('/slow', Robbed())
    falcon.testing.TestClient(app).simulate_get('/slow')

    assert 'pexpire' not in flaky.commands
    assert falcon.async_to_sync(flaky.redis.keys, f'{RedisCache.PREFIX}lock:*') == []


def test_a_holder_without_redis_renews_nothing(config, flaky):
    config.redis_from_url = lambda url: flaky
    redis = FailOpenRedis(config)
    assert falcon.async_to_sync(redis.lock, 'k', 'me', 10)
    flaky.down = True
    assert falcon.async_to_sync(redis.renew, 'k', 'me', 10) is False


def test_lost_lock_is_not_released_by_its_former_holder(config, flaky):
    class Rude(SlowResource):
        async def render(self, req, resp):
            await super().render(req, resp)
            # NOTE: As if the lock expired and another process took it.
            for key in await flaky.redis.keys(f'{RedisCache.PREFIX}lock:*'):
                await flaky.redis.set(key, b'someone-else')

    config.redis_from_url = lambda url: flaky
    app = falcon.asgi.App(middleware=[RedisCache(config)])
    app.add_route('/slow', Rude())
    falcon.testing.TestClient(app).simulate_get('/slow')

    assert falcon.async_to_sync(flaky.redis.keys, f'{RedisCache.PREFIX}lock:*')


def test_redis_gone_while_holding_the_lock(config, flaky):
    class Unplugs(SlowResource):
        async def render(self, req, resp):
            await super().render(req, resp)
            flaky.down = True

    config.redis_from_url = lambda url: flaky
    app = falcon.asgi.App(middleware=[RedisCache(config)])
    app.add_route('/slow', Unplugs())

    resp = falcon.testing.TestClient(app).simulate_get('/slow')
    assert resp.status_code == 200
    assert resp.headers['X-ASGILook-Cache'] == 'Bypass'


def test_calls_on_their_way_when_redis_goes_count_once(config, flaky):
    config.redis_retry_interval = 1
    config.redis_from_url = lambda url: flaky
    redis = FailOpenRedis(config)
    flaky.hang = True
    config.redis_timeout = 0.05

    async def many_at_once():
        return await asyncio.gather(*(redis.ping() for _ in range(8)))

    assert falcon.async_to_sync(many_at_once) == [False] * 8
    # NOTE: Eight calls failed together: one failure, one second to wait.
    assert round(redis.retry_at - time.monotonic()) == 1


def _records(count):
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return [
        Record(
            image_id=str(uuid.UUID(int=number + 1)),
            width=640,
            height=480,
            modified=start + datetime.timedelta(seconds=number),
            digest=f'{number:032x}',
        )
        for number in range(count)
    ]


@pytest.fixture(params=['client', 'real_client'])
def listing_of_105(request, config):
    """A client (over fakeredis, then a redis-server) whose index lists 105
    images: more than a default page."""
    backend = backends.from_url(None)
    for record in _records(105):
        falcon.async_to_sync(backend.add, record)
    config.backend_from_url = lambda url: backend
    return request.getfixturevalue(request.param)


def test_a_blank_cursor_is_no_cursor(listing_of_105):
    client = listing_of_105
    blank = client.simulate_get('/images?cursor=')
    assert len(blank.json) == 105
    assert 'Link' not in blank.headers

    full = client.simulate_get('/images')
    assert full.headers['X-ASGILook-Cache'] == 'Hit'
    assert full.json == blank.json

    page = client.simulate_get('/images?limit=2&cursor=')
    assert [item['id'] for item in page.json] == [r.image_id for r in _records(2)]
    assert page.headers['Link'].endswith('; rel=next')
    again = client.simulate_get('/images?limit=2')
    assert again.headers['X-ASGILook-Cache'] == 'Hit'
    assert again.json == page.json


def test_spellings_of_one_page_share_one_entry(listing_of_105, request):
    client = listing_of_105
    spellings = ['limit=5', 'limit=+5', 'limit=%205', 'limit=05', 'limit=005']
    first, *others = (client.simulate_get(f'/images?{q}') for q in spellings)
    assert first.headers['X-ASGILook-Cache'] == 'Miss'
    for resp in others:
        assert resp.headers['X-ASGILook-Cache'] == 'Hit'
        assert resp.json == first.json
    with _redis_entry_setters(request) as redis:
        assert redis.keys(f'{RedisCache.PREFIX}GET:/images*') == [
            f'{RedisCache.PREFIX}GET:/images?limit=5'.encode()
        ]

    bad = client.simulate_get('/images?limit=x')
    assert bad.status_code == 400
    assert bad.headers['X-ASGILook-Cache'] == 'Bypass'


def test_junk_queries_on_thumbnails_make_no_entries(any_client, request, png_image):
    created = any_client.simulate_post('/images', body=png_image).json
    thumbnail = created['thumbnails'][0]
    any_client.simulate_get(thumbnail)
    with _redis_entry_setters(request) as redis:
        before = redis.dbsize()
        for n in range(100):
            resp = any_client.simulate_get(f'{thumbnail}?cursor=x{n}&limit={n}')
            assert resp.headers['X-ASGILook-Cache'] == 'Hit'
        assert redis.dbsize() == before


def test_a_cursor_has_one_spelling_and_its_pages_are_not_kept(listing_of_105, request):
    client = listing_of_105
    page = client.simulate_get('/images?limit=2')
    link = page.headers['Link']
    assert link.startswith('</images?limit=2&cursor=')
    cursor = urllib.parse.parse_qs(link[1 : link.index('>')].split('?')[1])['cursor'][0]

    text = base64.urlsafe_b64decode(cursor + '=' * (-len(cursor) % 4)).decode()
    micros, image_id = text.split(':')
    respelt = [
        cursor + '=',
        cursor + '==',
        base64.urlsafe_b64encode(f'0{micros}:{image_id}'.encode()).decode(),
        base64.urlsafe_b64encode(f'+{micros}:{image_id}'.encode()).decode(),
        base64.urlsafe_b64encode(f'{micros}:{image_id.upper()}'.encode()).decode(),
    ]
    for spelling in respelt:
        resp = client.simulate_get('/images', params={'limit': 2, 'cursor': spelling})
        assert resp.status_code == 400, spelling
        assert resp.json['title'] == 'Invalid cursor'

    with _redis_entry_setters(request) as redis:
        before = redis.dbsize()
        for _ in range(2):
            resp = client.simulate_get('/images', params={'limit': 2, 'cursor': cursor})
            assert resp.status_code == 200
            assert resp.headers['X-ASGILook-Cache'] == 'Bypass'
        assert redis.dbsize() == before


def test_spellings_of_one_path_share_one_entry(any_client, request, png_image):
    created = any_client.simulate_post('/images', body=png_image).json
    thumbnail = created['thumbnails'][0]
    assert any_client.simulate_get(thumbnail).headers['X-ASGILook-Cache'] == 'Miss'
    with _redis_entry_setters(request) as redis:
        before = redis.dbsize()
        for path in (
            thumbnail.replace(FIRST_ID, FIRST_ID.upper()),
            '/' + thumbnail,
            '///' + thumbnail,
        ):
            resp = any_client.simulate_get(path)
            assert resp.status_code == 200
            assert resp.headers['X-ASGILook-Cache'] == 'Hit'
        assert redis.dbsize() == before

    # NOTE: A spelling the route refuses is refused on a hit too.
    zeros = thumbnail.replace('/320x180.', '/0320x0180.')
    assert any_client.simulate_get(zeros).status_code == 404


def test_links_name_the_route_not_the_spelling(any_client, png_image):
    for _ in range(2):
        any_client.simulate_post('/images', body=png_image)
    resp = any_client.simulate_get('//images', params={'limit': 1})
    assert resp.headers['Link'].startswith('</images?limit=1&cursor=')


def test_nobody_waits_long_for_a_lock_without_a_holder(any_client, request, config):
    config.cache_lock_wait = 0.2
    with _redis_entry_setters(request) as redis:
        # NOTE: As a SET NX that timed out for its sender and happened anyway.
        redis.set(f'{RedisCache.PREFIX}lock:{_key("/images")}', b'nobody', px=60_000)

    started = time.monotonic()
    resp = any_client.simulate_get('/images')
    assert resp.status_code == 200
    assert resp.json == []
    assert time.monotonic() - started < 5


def test_a_lock_taken_by_a_command_that_timed_out_is_released(config, png_image):
    class SlowToConfirm(FlakyRedis):
        async def set(self, key, value, **options):
            result = await super().set(key, value, **options)
            if options.get('nx'):
                # NOTE: Done in Redis, but the answer comes too late.
                await asyncio.sleep(1)
            return result

    slow = SlowToConfirm()
    config.redis_from_url = lambda url: slow
    config.redis_timeout = 0.05
    client = falcon.testing.TestClient(create_app(config))
    client.simulate_post('/images', body=png_image)

    resp = client.simulate_get('/images')
    assert resp.status_code == 200
    assert resp.headers['X-ASGILook-Cache'] == 'Bypass'
    assert falcon.async_to_sync(slow.redis.keys, f'{RedisCache.PREFIX}lock:*') == []


def test_a_change_of_settings_is_not_served_from_the_cache(
    any_client, config, png_image
):
    created = any_client.simulate_post('/images', body=png_image).json
    smallest = created['thumbnails'][-1]
    for path in ('/images', smallest):
        any_client.simulate_get(path)
        assert any_client.simulate_get(path).headers['X-ASGILook-Cache'] == 'Hit'

    # NOTE: As a restart with another ASGI_LOOK_MIN_THUMB_SIZE would.
    config.min_thumb_size = 100
    listing = any_client.simulate_get('/images')
    assert listing.headers['X-ASGILook-Cache'] == 'Miss'
    assert smallest not in listing.json[0]['thumbnails']
    assert any_client.simulate_get(smallest).status_code == 404


def test_a_redis_restart_costs_no_request_its_cache(config, own_redis, png_image):
    own_redis.start()
    config.redis_from_url = type(config).DEFAULT_REDIS_FROM_URL
    config.redis_host = own_redis.url
    app = create_app(config)

    async def across_a_restart():
        async with falcon.testing.ASGIConductor(app) as conductor:
            await conductor.simulate_post('/images', body=png_image)
            before = [await conductor.simulate_get('/images') for _ in range(2)]
            # NOTE: The pooled connections now lead nowhere.
            own_redis.stop()
            own_redis.start()
            after = [await conductor.simulate_get('/images') for _ in range(2)]
            return before + after

    responses = falcon.async_to_sync(across_a_restart)
    assert [resp.headers['X-ASGILook-Cache'] for resp in responses] == [
        'Miss',
        'Hit',
        'Miss',
        'Hit',
    ]
