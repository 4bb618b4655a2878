"""Probes: /healthz says the process is alive, /readyz what it can do now."""

import asyncio
import time

import falcon.testing
import pytest

from asgilook import backends
from asgilook import blobs as blobs_package
from asgilook.app import create_app
from asgilook.config import Config

from .fakes import FailingBackend
from .fakes import FlakyRedis
from .helpers import client_over_failing_blobs
from .helpers import stored_files


def _client_with(config, backend=None, blobs=None):
    if backend is not None:
        config.backend_from_url = lambda url: backend
    if blobs is not None:
        config.blobs_from_url = lambda url, config, workers: blobs
    return falcon.testing.TestClient(create_app(config))


@pytest.mark.parametrize('method', ['GET', 'HEAD'])
def test_healthz_answers_without_touching_anything(config, method):
    backend = FailingBackend(backends.from_url(None))
    client = _client_with(config, backend)
    backend.fail('version', ConnectionResetError('the database went away (fake)'))

    resp = client.simulate_request(method, '/healthz')
    assert resp.status_code == 200
    assert resp.headers['Cache-Control'] == 'no-store'
    assert resp.headers['Content-Type'] == 'application/json'
    assert resp.headers.get('X-ASGILook-Cache', 'Bypass') == 'Bypass'
    if method == 'GET':
        assert resp.json == {'status': 'ok'}


def test_ready_with_everything_up(any_client, storage_path):
    for _ in range(2):
        resp = any_client.simulate_get('/readyz')

        assert resp.status_code == 200
        assert resp.headers['Cache-Control'] == 'no-store'
        assert resp.headers.get('X-ASGILook-Cache', 'Bypass') == 'Bypass'
        assert resp.json['status'] == 'ready'
        checks = resp.json['checks']
        assert {name: check['state'] for name, check in checks.items()} == {
            'index': 'up',
            'storage': 'up',
            'redis': 'up',
        }
        assert all(0 <= check['seconds'] < 2 for check in checks.values())
    # NOTE: The storage probe wrote a file, and took it away again.
    assert stored_files(storage_path) == []


def test_redis_down_is_ready_but_degraded(config):
    flaky = FlakyRedis()
    config.redis_from_url = lambda url: flaky
    client = falcon.testing.TestClient(create_app(config))
    flaky.down = True

    resp = client.simulate_get('/readyz')
    assert resp.status_code == 200
    assert resp.json['status'] == 'degraded'
    assert resp.json['checks']['redis']['state'] == 'down'
    assert 'uncached' in resp.json['checks']['redis']['detail']


def test_no_redis_on_purpose_is_ready(storage_path, png_image):
    config = Config(
        {'ASGI_LOOK_STORAGE_PATH': str(storage_path), 'ASGI_LOOK_REDIS_URL': 'none'}
    )
    client = falcon.testing.TestClient(create_app(config))

    resp = client.simulate_get('/readyz')
    assert resp.status_code == 200
    assert resp.json['status'] == 'ready'
    assert resp.json['checks']['redis']['state'] == 'absent'
    # NOTE: And everything works, uncached.
    created = client.simulate_post('/images', body=png_image)
    assert created.status_code == 201
    listing = client.simulate_get('/images')
    assert listing.headers['X-ASGILook-Cache'] == 'Bypass'


def test_an_index_that_fails_is_503(config):
    backend = FailingBackend(backends.from_url(None))
    client = _client_with(config, backend)
    backend.fail('version', ConnectionResetError('the database went away (fake)'))

    resp = client.simulate_get('/readyz')
    assert resp.status_code == 503
    assert resp.headers['Content-Type'] == 'application/json'
    assert resp.json['status'] == 'unavailable'
    index = resp.json['checks']['index']
    assert index['state'] == 'down'
    assert index['detail'] == 'ConnectionResetError: the database went away (fake)'
    assert resp.json['checks']['storage']['state'] == 'up'


def test_an_index_that_hangs_is_503_in_bounded_time(config):
    backend = FailingBackend(backends.from_url(None))
    config.readiness_timeout = 0.2
    client = _client_with(config, backend)
    backend.after('version', lambda: asyncio.sleep(30))

    started = time.monotonic()
    resp = client.simulate_get('/readyz')
    # NOTE: Not a speed test: a guard against a probe that hangs.
    assert time.monotonic() - started < 10
    assert resp.status_code == 503
    assert resp.json['checks']['index'] == {
        'state': 'down',
        'detail': 'no answer within 0.2 s',
        'seconds': resp.json['checks']['index']['seconds'],
    }


def test_storage_that_cannot_be_written_is_503(config):
    client, blobs = client_over_failing_blobs(config)
    blobs.fail('write', blobs_package.write_error(OSError(30, 'Read-only')))

    resp = client.simulate_get('/readyz')
    assert resp.status_code == 503
    assert resp.json['status'] == 'unavailable'
    storage = resp.json['checks']['storage']
    assert storage['state'] == 'down'
    assert 'Read-only file system' in storage['detail']


def test_a_hung_dependency_holds_one_check_not_one_per_probe(config):
    backend = FailingBackend(backends.from_url(None))
    config.readiness_timeout = 0.2
    calls = []

    async def stubborn():
        calls.append(1)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            # NOTE: As a driver that waits on a stopped server to cancel.
            await asyncio.sleep(0.1)
            raise

    app = _client_with(config, backend).app
    backend.before('version', stubborn)

    async def probe_three_times():
        async with falcon.testing.ASGIConductor(app) as conductor:
            first = await conductor.simulate_get('/readyz')
            second = await conductor.simulate_get('/readyz')
            third = await conductor.simulate_get('/readyz')
            return first, second, third

    first, second, third = falcon.async_to_sync(probe_three_times)
    details = [r.json['checks']['index']['detail'] for r in (first, second, third)]
    assert [r.status_code for r in (first, second, third)] == [503] * 3
    assert details == [
        'no answer within 0.2 s',
        'stopped after an earlier check took too long',
        'no answer within 0.2 s',
    ]
    # NOTE: The second probe waited for the first one's check.
    assert len(calls) == 2


def test_a_probe_stopped_at_its_timeout_leaves_no_file(config, storage_path):
    config.readiness_timeout = 0.2
    client, blobs = client_over_failing_blobs(config)
    app = client.app
    blobs.before('remove', lambda: asyncio.sleep(0.4))

    async def probe_and_wait():
        async with falcon.testing.ASGIConductor(app) as conductor:
            resp = await conductor.simulate_get('/readyz')
            left = stored_files(storage_path)
            await asyncio.sleep(0.5)
            return resp, left

    resp, left = falcon.async_to_sync(probe_and_wait)
    assert resp.json['checks']['storage']['detail'] == 'no answer within 0.2 s'
    assert len(left) == 1
    assert stored_files(storage_path) == []
