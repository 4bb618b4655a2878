"""GET /metrics: what a Prometheus scrape shows after requests a user makes."""

import asyncio
import pathlib
import re
import shutil
import uuid

import falcon
import falcon.testing
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
import pytest

from asgilook import errors
from asgilook import metrics
from asgilook.app import create_app
from asgilook.config import Config
from asgilook.metrics import Metrics
from asgilook.workers import Gate

from .fakes import FlakyRedis
from .helpers import FIRST_ID
from .helpers import FIRST_URI
from .servers import Service

THUMBNAIL = f'/thumbnails/{FIRST_ID}/160x90.jpeg'
THUMBNAIL_ROUTE = '/thumbnails/{image_id:uuid}/{width:int}x{height:int}.{ext}'
IMAGE_ROUTE = '/images/{image_id:uuid}.jpeg'


def scrape(client, **headers):
    """Every sample of a scrape, by (name, labels)."""
    resp = client.simulate_get('/metrics', headers=headers)
    assert resp.status_code == 200
    return parse(resp.text)


def parse(text):
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_template_method_and_status(client):
    for _ in range(3):
        assert client.simulate_get('/images').status_code == 200
    for _ in range(2):
        assert client.simulate_get(f'/images/{uuid.uuid4()}.jpeg').status_code == 404
    client.simulate_get('/no/such/path')
    client.simulate_delete('/images')

    samples = scrape(client)
    requests = 'asgilook_requests_total'
    assert value(samples, requests, route='/images', method='GET', status='200') == 3
    assert value(samples, requests, route=IMAGE_ROUTE, method='GET', status='404') == 2
    assert value(samples, requests, route='unmatched', method='GET', status='404') == 1
    assert value(samples, requests, route='/images', method='DELETE', status='405') == 1
    latency = 'asgilook_request_duration_seconds_count'
    assert value(samples, latency, route='/images', method='GET') == 3
    # NOTE: Only route templates, never a path a client made up.
    routes = {dict(labels).get('route') for _, labels in samples} - {None}
    assert routes == {'/images', IMAGE_ROUTE, 'unmatched'}


def test_unknown_methods_share_one_label(client):
    for method in ('BREW', 'WHEN'):
        client.simulate_request(method, '/images')

    samples = scrape(client)
    assert (
        value(
            samples,
            'asgilook_requests_total',
            route='/images',
            method='other',
            status='400',
        )
        == 2
    )


def test_requests_falcon_refuses_before_any_middleware_are_counted(client):
    resp = client.simulate_request('WEBSOCKET', '/images')
    assert resp.status_code == 400
    assert re.fullmatch(r'total;dur=[\d.]+', resp.headers['Server-Timing'])

    samples = scrape(client)
    assert (
        value(
            samples,
            'asgilook_requests_total',
            route='unmatched',
            method='WEBSOCKET',
            status='400',
        )
        == 1
    )


def test_cache_results_are_counted(client, png_image):
    client.simulate_post('/images', body=png_image)
    for _ in range(3):
        client.simulate_get('/images')
    client.simulate_get(FIRST_URI)

    samples = scrape(client)
    results = 'asgilook_cache_results_total'
    assert value(samples, results, route='/images', result='miss') == 1
    assert value(samples, results, route='/images', result='hit') == 2
    assert value(samples, results, route=IMAGE_ROUTE, result='bypass') == 1


def test_metrics_are_never_served_from_the_cache(client):
    first = client.simulate_get('/metrics')
    second = client.simulate_get('/metrics')

    assert first.headers['X-ASGILook-Cache'] == second.headers['X-ASGILook-Cache']
    assert second.headers['X-ASGILook-Cache'] == 'Bypass'
    assert second.headers['Cache-Control'] == 'no-store'
    assert second.headers['Content-Type'].startswith('text/plain')
    counted = (
        'asgilook_requests_total',
        (
            ('method', 'GET'),
            ('route', '/metrics'),
            ('status', '200'),
        ),
    )
    assert counted not in parse(first.text)
    assert parse(second.text)[counted] == 1
    assert client.simulate_head('/metrics').status_code == 200


def test_openmetrics_for_a_scraper_that_asks(client):
    resp = client.simulate_get(
        '/metrics', headers={'Accept': 'application/openmetrics-text; version=1.0.0'}
    )
    assert resp.headers['Content-Type'].startswith('application/openmetrics-text')
    assert resp.text.endswith('# EOF\n')


def test_bytes_in_and_out(client, config, png_image):
    created = client.simulate_post('/images', body=png_image)
    listing = client.simulate_get('/images')
    client.simulate_head('/images')
    client.simulate_get('/images', headers={'If-None-Match': listing.headers['ETag']})
    # NOTE: An original this large is streamed, and counted by its length.
    config.read_whole_bytes = 1
    original = client.simulate_get(FIRST_URI)

    samples = scrape(client)
    sent = 'asgilook_response_body_bytes_total'
    received = 'asgilook_request_body_bytes_total'
    assert value(samples, received, route='/images') == len(png_image)
    assert value(samples, sent, route='/images') == len(created.content) + len(
        listing.content
    )
    assert value(samples, sent, route=IMAGE_ROUTE) == len(original.content) > 1000
    assert value(samples, received, route=IMAGE_ROUTE) == 0


async def _stalled():
    await asyncio.sleep(1)
    return {'type': 'http.request', 'body': b'', 'more_body': True}


def _post_a_stalled_body(app):
    scope = falcon.testing.create_scope(path='/images', method='POST')
    collector = falcon.testing.ASGIResponseEventCollector()
    falcon.async_to_sync(app, scope, _stalled, collector)
    return collector.status


@pytest.mark.parametrize(
    'reason, status',
    [
        ('EmptyUpload', 400),
        ('UploadTimeout', 408),
        ('UploadTooLarge', 413),
        ('UnsupportedImage', 415),
        ('TooManyPixels', 422),
    ],
)
def test_rejected_uploads_are_counted_by_reason_and_status(
    config, png_image, reason, status
):
    config.max_upload_bytes = len(png_image)
    config.max_pixels = 1000
    config.upload_idle_timeout = 0.05
    app = create_app(config)
    client = falcon.testing.TestClient(app)
    bodies = {
        'EmptyUpload': b'',
        'UploadTooLarge': png_image + b'!',
        'UnsupportedImage': b'not an image',
        'TooManyPixels': png_image,
    }
    if reason == 'UploadTimeout':
        assert _post_a_stalled_body(app) == status
    else:
        assert (
            client.simulate_post('/images', body=bodies[reason]).status_code == status
        )

    samples = scrape(client)
    rejected = {
        labels: count
        for (name, labels), count in samples.items()
        if name == 'asgilook_uploads_rejected_total'
    }
    assert rejected == {(('reason', reason), ('status', str(status))): 1}


def test_image_work_is_observed_by_stage_and_format(client, png_image):
    client.simulate_post('/images', body=png_image)
    for path in (THUMBNAIL, THUMBNAIL, THUMBNAIL.replace('.jpeg', '.webp')):
        assert client.simulate_get(path).status_code == 200

    samples = scrape(client)
    stages = 'asgilook_image_stage_seconds_count'
    # NOTE: The upload: a PNG decoded, made a JPEG, and a placeholder of it.
    assert value(samples, stages, stage='decode', format='PNG') == 1
    assert value(samples, stages, stage='resize', format='PNG') == 1
    # NOTE: Two renders from the stored JPEG; the second request was a hit.
    assert value(samples, stages, stage='decode', format='JPEG') == 2
    assert value(samples, stages, stage='resize', format='JPEG') == 2
    assert value(samples, stages, stage='encode', format='JPEG') == 2
    assert value(samples, stages, stage='encode', format='WEBP') == 1
    assert (
        value(samples, 'asgilook_image_stage_seconds_sum', stage='decode', format='PNG')
        > 0
    )
    assert value(samples, 'asgilook_renders_total', format='jpeg') == 1
    assert value(samples, 'asgilook_renders_total', format='webp') == 1


async def _gather(app, paths):
    async with falcon.testing.ASGIConductor(app) as conductor:
        return await asyncio.gather(*(conductor.simulate_get(path) for path in paths))


@pytest.mark.parametrize('scope', ['process', 'redis'])
def test_single_flight_joins_are_counted(config, renders, png_image, scope):
    flaky = FlakyRedis()
    config.redis_from_url = lambda url: flaky
    app = create_app(config)
    client = falcon.testing.TestClient(app)
    client.simulate_post('/images', body=png_image)
    # NOTE: Without Redis, requests meet in this process's single flight;
    #   with it, at the Redis lock, as requests of other processes would.
    flaky.down = scope == 'process'
    renders.delay = 0.2

    responses = falcon.async_to_sync(_gather, app, [THUMBNAIL] * 4)

    assert {resp.status_code for resp in responses} == {200}
    flaky.down = False
    samples = scrape(client)
    assert value(samples, 'asgilook_renders_total', format='jpeg') == 1
    joins = {
        dict(labels)['scope']: count
        for (name, labels), count in samples.items()
        if name == 'asgilook_render_joins_total'
    }
    assert joins == {scope: 3}


def test_redis_state_and_failures(config):
    flaky = FlakyRedis()
    config.redis_from_url = lambda url: flaky
    config.redis_retry_interval = 0
    client = falcon.testing.TestClient(create_app(config))
    assert value(scrape(client), 'asgilook_redis_up') == 1

    flaky.down = True
    client.simulate_get('/images')
    samples = scrape(client)
    assert value(samples, 'asgilook_redis_up') == 0
    assert value(samples, 'asgilook_redis_failures_total') >= 1

    flaky.down = False
    client.simulate_get('/images')
    assert value(scrape(client), 'asgilook_redis_up') == 1


def _admission(metrics_of_app):
    samples = parse(metrics_of_app.exposition(None)[0].decode())
    return (
        value(samples, 'asgilook_admission_waiting', gate='images'),
        value(samples, 'asgilook_admission_refused_total', gate='images'),
    )


def test_jobs_waiting_for_admission_and_refused():
    observed = Metrics()
    gate = Gate(1, 'images being processed', wait=5, queue=1, name='images')
    seen = []

    async def crowd():
        observed.activate()
        async with gate.enter():
            waiter = asyncio.ensure_future(gate.enter().__aenter__())
            await asyncio.sleep(0.01)
            seen.append(_admission(observed))
            with pytest.raises(errors.Overloaded):
                async with gate.enter():
                    pass
            seen.append(_admission(observed))
        await waiter
        seen.append(_admission(observed))

    asyncio.run(crowd())
    assert seen == [(1, 0), (1, 1), (0, 1)]


def test_open_event_streams_are_counted(config):
    config.events_keepalive = 0.05
    app = create_app(config)

    async def open_one():
        async with falcon.testing.ASGIConductor(app) as conductor:
            before = await conductor.simulate_get('/metrics')
            async with conductor.simulate_get_stream('/events') as stream:
                assert b'asgilook events' in await stream.stream.read()
                during = await conductor.simulate_get('/metrics')
            after = await conductor.simulate_get('/metrics')
        return [parse(resp.text) for resp in (before, during, after)]

    counts = falcon.async_to_sync(open_one)
    assert [value(samples, 'asgilook_sse_clients') for samples in counts] == [0, 1, 0]


def test_a_registry_of_ones_own(config):
    config.metrics_registry = CollectorRegistry()
    client = falcon.testing.TestClient(create_app(config))
    client.simulate_get('/images')

    samples = parse(client.simulate_get('/metrics').text)
    assert (
        value(
            samples,
            'asgilook_requests_total',
            route='/images',
            method='GET',
            status='200',
        )
        == 1
    )
    # NOTE: The process metrics come with the registry the app makes itself.
    assert not any(name.startswith('process_') for name, _ in samples)
    assert any(name.startswith('process_') for name, _ in scrape_default(config))


def scrape_default(config):
    config.metrics_registry = None
    return scrape(falcon.testing.TestClient(create_app(config)))


def test_apps_do_not_share_their_counts(config):
    first = falcon.testing.TestClient(create_app(config))
    second = falcon.testing.TestClient(create_app(config))
    first.simulate_get('/images')

    labels = {'route': '/images', 'method': 'GET', 'status': '200'}
    assert value(scrape(first), 'asgilook_requests_total', **labels) == 1
    assert value(scrape(second), 'asgilook_requests_total', **labels) == 0


def test_outside_a_request_nothing_is_recorded():
    # NOTE: Store and workers used on their own (scripts, the benchmarks).
    metrics.image_work((('decode', 'PNG', 0.1),))
    metrics.rendered('jpeg')
    metrics.joined('process')
    metrics.waiting('images', 1)
    metrics.refused('images')
    metrics.redis_state(True)
    metrics.redis_failure()
    metrics.sse_clients(1)

    async def handle(req, resp, ex, params):
        raise falcon.HTTPBadRequest()

    counting = metrics.counting_rejections(handle)
    with pytest.raises(falcon.HTTPBadRequest):
        asyncio.run(counting(None, None, errors.EmptyUpload('empty'), {}))


def _per_process(directory, scratch, **labels):
    """asgilook_requests_total with ``labels``, by process, from its files
    (named ``{kind}_{pid}.db``)."""
    counts = {}
    for pid in {path.stem.rsplit('_', 1)[1] for path in directory.glob('*.db')}:
        own = scratch / pid
        own.mkdir(parents=True, exist_ok=True)
        for path in directory.glob(f'*_{pid}.db'):
            shutil.copy(path, own / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(own))
        samples = parse_registry(registry)
        counts[pid] = value(samples, 'asgilook_requests_total', **labels)
    return counts


def parse_registry(registry):
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def test_two_worker_processes_add_up(tmp_path):
    directory = tmp_path / 'metrics'
    directory.mkdir()
    # NOTE: The service's access log only, in a pipe read at the end.
    service = Service(
        tmp_path / 'images',
        '--workers',
        '2',
        '--no-access-log',
        PROMETHEUS_MULTIPROC_DIR=str(directory),
    ).start()
    labels = {'route': IMAGE_ROUTE, 'method': 'GET', 'status': '404'}
    try:
        # NOTE: New connections go to whichever worker takes them first: ask
        #   until both have answered some.
        sent = 0
        while sent < 200:
            for _ in range(10):
                missing = f'/images/{uuid.uuid4()}.jpeg'
                assert service.request('GET', missing)[0] == 404
            sent += 10
            counts = _per_process(directory, tmp_path / 'copies', **labels)
            if len(counts) == 2 and all(counts.values()):
                break
        assert len(counts) == 2 and all(counts.values()), counts
        assert sum(counts.values()) == sent

        status, _, body = service.request('GET', '/metrics')
        assert status == 200
        assert value(parse(body.decode()), 'asgilook_requests_total', **labels) == sent
    finally:
        assert service.stop() == 0

    # NOTE: One line each in the access log, written by the worker that
    #   answered.
    lines = re.findall(
        r'^GET /images/[-0-9a-f]+\.jpeg 404 \d+B [\d.]+ms Bypass$',
        service.output,
        re.MULTILINE,
    )
    assert len(lines) == sent

    # NOTE: The files outlive the workers; any process reading them sees
    #   the same sums (here, this one).
    config = Config(
        environ={
            'ASGI_LOOK_STORAGE_PATH': str(tmp_path / 'images'),
            'PROMETHEUS_MULTIPROC_DIR': str(directory),
        }
    )
    samples = scrape(falcon.testing.TestClient(create_app(config)))
    assert value(samples, 'asgilook_requests_total', **labels) == sent
    # NOTE: A worker that stopped no longer counts in the live gauges.
    assert not list(pathlib.Path(directory).glob('gauge_live*'))
