"""Real processes: restarts, kill -9, several workers, several hosts' worth."""

import hashlib
import http.client
import json
import threading
import time

import pytest

from asgilook import imaging

from . import corpus
from .helpers import as_listed
from .helpers import decode
from .helpers import stored_files
from .servers import Service


@pytest.fixture(params=['default', 'sqlite', 'postgresql'])
def shared_index(request, tmp_path):
    """The index, as ``ASGI_LOOK_DATABASE_URL`` settings: none (the service's
    SQLite file in its storage directory), SQLite elsewhere, PostgreSQL."""
    if request.param == 'default':
        return {}
    if request.param == 'sqlite':
        return {'ASGI_LOOK_DATABASE_URL': f'sqlite:///{tmp_path}/asgilook.db'}
    return {'ASGI_LOOK_DATABASE_URL': request.getfixturevalue('postgres').url}


@pytest.fixture
def services(tmp_path):
    started = []

    def start(storage, *args, **environ):
        started.append(Service(storage, *args, **environ).start())
        return started[-1]

    yield start
    for service in started:
        if service.process.poll() is None:
            service.stop()


def _upload(service, body, **headers):
    status, _, text = service.request('POST', '/images', body=body, headers=headers)
    assert status == 201, text
    return json.loads(text)


def test_restart_keeps_every_image(services, tmp_path, shared_index):
    storage = tmp_path / 'images'
    first = services(storage, **shared_index)
    created = [as_listed(_upload(first, _body(n))) for n in range(3)]
    originals = {
        image['id']: first.request('GET', image['image'])[2] for image in created
    }
    first.stop()

    second = services(storage, **shared_index)
    assert json.loads(second.request('GET', '/images')[2]) == created
    for image in created:
        assert second.request('GET', image['image'])[2] == originals[image['id']]


def _body(number):
    return corpus.encode(corpus.pattern((256 + number % 50, 160 + number // 50)), 'PNG')


def test_kill_9_during_an_upload_burst(services, tmp_path, shared_index):
    storage = tmp_path / 'images'
    service = services(storage, **shared_index)
    bodies = {}
    answered = []
    stop = threading.Event()

    def uploader(offset):
        number = offset
        while not stop.is_set():
            body = _body(number)
            bodies[hashlib.sha256(body).hexdigest()] = body
            connection = http.client.HTTPConnection(
                '127.0.0.1', service.port, timeout=10
            )
            try:
                connection.request('POST', '/images', body=body)
                response = connection.getresponse()
                if response.status == 201:
                    answered.append(json.loads(response.read()))
            except (OSError, http.client.HTTPException):
                pass
            finally:
                connection.close()
            number += 4

    threads = [threading.Thread(target=uploader, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    while len(answered) < 8:
        time.sleep(0.05)
    service.kill()
    stop.set()
    for thread in threads:
        thread.join()

    restarted = services(storage, **shared_index)
    listed = {
        image['id']: image
        for image in json.loads(restarted.request('GET', '/images')[2])
    }
    # NOTE: Every 201 survived, exactly as it was answered.
    for image in answered:
        assert listed[image['id']] == as_listed(image)
    # NOTE: Whatever is listed is whole: the bytes a clean upload stores.
    expected = {imaging.convert_to_jpeg(body).data for body in bodies.values()}
    for image in listed.values():
        status, _, data = restarted.request('GET', image['image'])
        assert status == 200
        assert data in expected
        assert decode(data).size == tuple(image['size'])
    assert not [path for path in storage.iterdir() if path.name.endswith('.tmp')]


@pytest.mark.parametrize('database', ['default', 'sqlite'])
def test_two_workers_agree(services, tmp_path, database):
    environ = {}
    if database == 'sqlite':
        environ['ASGI_LOOK_DATABASE_URL'] = f'sqlite:///{tmp_path}/asgilook.db'
    service = services(tmp_path / 'images', '--workers', '2', **environ)
    created = as_listed(_upload(service, _body(1)))

    # NOTE: Each request on a new connection: the two workers take turns.
    for _ in range(20):
        assert service.request('GET', created['image'])[0] == 200
        assert json.loads(service.request('GET', '/images')[2]) == [created]
    assert service.request('DELETE', created['image'])[0] == 204
    for _ in range(20):
        assert service.request('GET', created['image'])[0] == 404
        assert service.request('GET', created['thumbnails'][0])[0] == 404


def test_two_hosts_share_postgresql_storage_and_redis(
    services, tmp_path, postgres, real_redis
):
    environ = {
        'ASGI_LOOK_DATABASE_URL': postgres.url,
        'ASGI_LOOK_REDIS_URL': real_redis.url,
    }
    storage = tmp_path / 'shared'
    a = services(storage, **environ)
    b = services(storage, **environ)

    created = as_listed(_upload(a, _body(1)))
    thumbnail = created['thumbnails'][0]
    assert (
        b.request('GET', created['image'])[2] == a.request('GET', created['image'])[2]
    )
    assert json.loads(b.request('GET', '/images')[2]) == [created]

    rendered = b.request('GET', thumbnail)
    assert rendered[1]['x-asgilook-cache'] == 'Miss'
    cached = a.request('GET', thumbnail)
    assert cached[1]['x-asgilook-cache'] == 'Hit'
    assert cached[2] == rendered[2]

    assert b.request('DELETE', created['image'])[0] == 204
    # NOTE: a still has the thumbnail in Redis; it must not serve it.
    assert a.request('GET', thumbnail)[0] == 404
    assert a.request('GET', created['image'])[0] == 404
    assert json.loads(a.request('GET', '/images')[2]) == []
    assert stored_files(storage) == []

    again = as_listed(_upload(b, _body(2), **{'Idempotency-Key': 'retry-me'}))
    assert _upload(a, _body(2), **{'Idempotency-Key': 'retry-me'}) == again
