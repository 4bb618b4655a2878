"""The tutorial's httpie session, over real HTTP, against uvicorn and Redis."""

import json
import signal
import subprocess
import sys

import pytest

from .helpers import as_listed
from .helpers import decode
from .helpers import stored_files
from .servers import require_binary
from .servers import Service


@pytest.fixture
def service(tmp_path, real_redis):
    service = Service(tmp_path / 'images', ASGI_LOOK_REDIS_URL=real_redis.url)
    service.start()
    yield service
    returncode = service.stop()
    # NOTE: Recent uvicorn re-raises SIGTERM once it has shut down cleanly.
    assert returncode in (0, -signal.SIGTERM), service.output
    assert 'Traceback' not in service.output, service.output
    assert 'Application shutdown complete' in service.output, service.output


def test_httpie_session(service, tmp_path, png_image):
    upload = tmp_path / 'test.png'
    upload.write_bytes(png_image)

    # NOTE: Upload with httpie itself, as the tutorial does.
    result = subprocess.run(
        [
            sys.executable, '-m', 'httpie', '--ignore-stdin', '--check-status',
            '--print=hb', 'POST', f'127.0.0.1:{service.port}/images', f'@{upload}',
        ],
        capture_output=True,
        check=True,
        text=True,
    )  # fmt: skip
    head, _, body = result.stdout.partition('\n\n')
    assert head.startswith('HTTP/1.1 201 Created')
    created = as_listed(json.loads(body))
    image_id = created['id']
    assert f'location: /images/{image_id}.jpeg' in head.lower()
    assert created['image'] == f'/images/{image_id}.jpeg'
    assert created['size'] == [640, 360]
    assert created['thumbnails'] == [
        f'/thumbnails/{image_id}/320x180.jpeg',
        f'/thumbnails/{image_id}/160x90.jpeg',
    ]

    status, headers, original = service.request('GET', created['image'])
    assert status == 200
    assert headers['content-type'] == 'image/jpeg'
    assert original == (service.storage_path / image_id).read_bytes()
    assert decode(original).size == (640, 360)
    assert service.request('GET', created['image'])[2] == original

    status, headers, listing = service.request('GET', '/images')
    assert status == 200
    assert json.loads(listing) == [created]

    for uri, size in zip(created['thumbnails'], [(320, 180), (160, 90)], strict=True):
        miss = service.request('GET', uri)
        hit = service.request('GET', uri)
        assert (miss[0], hit[0]) == (200, 200)
        assert miss[1]['x-asgilook-cache'] == 'Miss'
        assert hit[1]['x-asgilook-cache'] == 'Hit'
        assert hit[2] == miss[2]
        assert hit[1]['content-length'] == str(len(miss[2]))
        assert decode(hit[2]).size == size

        status, headers, body = service.request('HEAD', uri)
        assert (status, body) == (200, b'')
        assert headers['content-length'] == str(len(miss[2]))

        etag = {'If-None-Match': hit[1]['etag']}
        assert service.request('GET', uri, headers=etag)[:3:2] == (304, b'')

    status, headers, part = service.request(
        'GET', created['image'], headers={'Range': 'bytes=10-19'}
    )
    assert (status, part) == (206, original[10:20])
    assert headers['content-range'] == f'bytes 10-19/{len(original)}'

    webp = created['srcset']['webp'].split(', ')[0].split(' ')[0]
    status, headers, body = service.request('GET', webp)
    assert (status, headers['content-type']) == (200, 'image/webp')
    assert decode(body).size == (640, 360)

    assert service.request('DELETE', created['image'])[0] == 204
    for uri in (created['image'], webp, *created['thumbnails']):
        assert service.request('GET', uri)[0] == 404
    assert json.loads(service.request('GET', '/images')[2]) == []
    # NOTE: Only the index (its file and write-ahead log) is left.
    assert [
        name for name in stored_files(service.storage_path) if 'asgilook.db' not in name
    ] == []


def test_curl_and_httpie_forms(service, tmp_path, png_image):
    upload = tmp_path / 'photo.gif'
    upload.write_bytes(png_image)

    result = subprocess.run(
        [
            require_binary('curl'), '--silent', '--show-error', '--fail',
            '-F', f'image=@{upload}', f'http://127.0.0.1:{service.port}/images',
        ],
        capture_output=True,
        check=True,
        text=True,
    )  # fmt: skip
    assert json.loads(result.stdout)['size'] == [640, 360]

    result = subprocess.run(
        [
            sys.executable, '-m', 'httpie', '--ignore-stdin', '--check-status',
            '--print=b', '-f', 'POST', f'127.0.0.1:{service.port}/images',
            f'image@{upload}',
        ],
        capture_output=True,
        check=True,
        text=True,
    )  # fmt: skip
    assert json.loads(result.stdout)['size'] == [640, 360]
