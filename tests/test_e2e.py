"""The tutorial's httpie session, over real HTTP, against uvicorn and Redis."""

import http.client
import json
import os
import pathlib
import signal
import subprocess
import sys

import pytest

from .helpers import decode
from .servers import free_port
from .servers import wait_for

ROOT = pathlib.Path(__file__).parent.parent


def _answers(port):
    try:
        return _request(port, 'GET', '/images')[0] == 200
    except OSError:
        return False


def _request(port, method, path, body=None):
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture
def service(tmp_path, real_redis):
    port = free_port()
    env = dict(
        os.environ,
        ASGI_LOOK_STORAGE_PATH=str(tmp_path / 'images'),
        ASGI_LOOK_REDIS_URL=real_redis.url,
        PYTHONPATH=str(ROOT),
    )
    process = subprocess.Popen(
        [sys.executable, '-m', 'uvicorn', 'asgilook.asgi:app', '--port', str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: _answers(port), what='uvicorn to answer')
        yield port, tmp_path / 'images'
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    # NOTE: Recent uvicorn re-raises SIGTERM once it has shut down cleanly.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert 'Traceback' not in output, output
    assert 'Application shutdown complete' in output, output


def test_httpie_session(service, tmp_path, png_image):
    port, storage = service
    upload = tmp_path / 'test.png'
    upload.write_bytes(png_image)

    # NOTE: Upload with httpie itself, as the tutorial does.
    result = subprocess.run(
        [
            sys.executable, '-m', 'httpie', '--ignore-stdin', '--check-status',
            '--print=hb', 'POST', f'127.0.0.1:{port}/images', f'@{upload}',
        ],
        capture_output=True,
        check=True,
        text=True,
    )  # fmt: skip
    head, _, body = result.stdout.partition('\n\n')
    assert head.startswith('HTTP/1.1 201 Created')
    created = json.loads(body)
    image_id = created['id']
    assert f'location: /images/{image_id}.jpeg' in head.lower()
    assert created['image'] == f'/images/{image_id}.jpeg'
    assert created['size'] == [640, 360]
    assert created['thumbnails'] == [
        f'/thumbnails/{image_id}/320x180.jpeg',
        f'/thumbnails/{image_id}/160x90.jpeg',
    ]

    status, headers, original = _request(port, 'GET', created['image'])
    assert status == 200
    assert headers['content-type'] == 'image/jpeg'
    assert original == (storage / image_id).read_bytes()
    assert decode(original).size == (640, 360)
    assert _request(port, 'GET', created['image'])[2] == original

    status, headers, listing = _request(port, 'GET', '/images')
    assert status == 200
    assert json.loads(listing) == [created]

    for uri, size in zip(created['thumbnails'], [(320, 180), (160, 90)], strict=True):
        miss = _request(port, 'GET', uri)
        hit = _request(port, 'GET', uri)
        assert (miss[0], hit[0]) == (200, 200)
        assert miss[1]['x-asgilook-cache'] == 'Miss'
        assert hit[1]['x-asgilook-cache'] == 'Hit'
        assert hit[2] == miss[2]
        assert hit[1]['content-length'] == str(len(miss[2]))
        assert decode(hit[2]).size == size

        status, headers, body = _request(port, 'HEAD', uri)
        assert (status, body) == (200, b'')
        assert headers['content-length'] == str(len(miss[2]))
