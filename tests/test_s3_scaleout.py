"""Real processes over S3: two hosts that share a bucket and nothing on disk."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from asgilook.blobs import s3reader

from . import corpus
from .fakes import FaultyS3Proxy
from .helpers import stored_files
from .servers import free_port
from .servers import read_response
from .servers import Service


@pytest.fixture
def services():
    started = []

    def start(storage, **environ):
        started.append(Service(storage, **environ).start())
        return started[-1]

    yield start
    for service in started:
        if service.process.poll() is None:
            service.stop()


def test_two_hosts_share_postgresql_redis_and_a_bucket(
    services, tmp_path, postgres, real_redis, moto_server, s3_bucket
):
    environ = {
        'ASGI_LOOK_DATABASE_URL': postgres.url,
        'ASGI_LOOK_REDIS_URL': real_redis.url,
        'ASGI_LOOK_BLOBS_URL': moto_server.url(s3_bucket, 'images'),
    }
    a = services(tmp_path / 'a', **environ)
    b = services(tmp_path / 'b', **environ)

    body = corpus.encode(corpus.pattern((320, 200)), 'PNG')
    status, _, text = a.request('POST', '/images', body=body)
    assert status == 201, text
    created = json.loads(text)
    image_id = created['id']
    thumbnails = [
        thumbnail.replace('.jpeg', f'.{ext}')
        for thumbnail in created['thumbnails']
        for ext in ('jpeg', 'webp', 'avif')
    ]

    status, headers, original = b.request('GET', created['image'])
    assert (status, headers['content-type']) == (200, 'image/jpeg')
    assert original == a.request('GET', created['image'])[2]
    for thumbnail in thumbnails:
        status, headers, _ = b.request('GET', thumbnail)
        assert status == 200, thumbnail
        assert headers['content-type'] == f'image/{thumbnail.rpartition(".")[2]}'
    listed = json.loads(b.request('GET', '/images')[2])
    assert [image['id'] for image in listed] == [image_id]
    assert len(
        [key for key in moto_server.keys(s3_bucket) if image_id in key]
    ) == 1 + len(thumbnails)

    assert b.request('DELETE', created['image'])[0] == 204
    for url in [created['image'], *thumbnails]:
        assert a.request('GET', url)[0] == 404, url
    assert json.loads(a.request('GET', '/images')[2]) == []
    assert moto_server.keys(s3_bucket) == []
    # NOTE: Nothing was ever kept on either host's disk.
    assert stored_files(tmp_path / 'a') == stored_files(tmp_path / 'b') == []
    for service in (a, b):
        service.stop()
        assert 'Traceback' not in service.output
        assert 'Unclosed' not in service.output


def test_storage_failing_mid_body_is_one_line_not_a_traceback(
    services, tmp_path, moto_server, s3_bucket
):
    proxy = FaultyS3Proxy(moto_server.port).start()
    try:
        url = f's3://{s3_bucket}?endpoint={proxy.endpoint}&region=us-east-1&timeout=1'
        service = services(tmp_path, ASGI_LOOK_BLOBS_URL=url)
        body = corpus.encode(corpus.pattern((64, 64)), 'PNG')
        created = json.loads(service.request('POST', '/images', body=body)[2])
        # NOTE: An original past Config.read_whole_bytes (8 MiB), streamed;
        #   its bytes need not make a JPEG for that.
        size = 9 * 2**20
        moto_server.client().put_object(
            Bucket=s3_bucket, Key=created['id'], Body=b'\xff' * size
        )
        # NOTE: The storage promises every byte, and sends only the first
        #   chunk (read before the headers go) and a few more.
        proxy.answers['GET'] = (
            206,
            {'Content-Length': str(size)},
            b'\xff' * (s3reader.CHUNK + 1000),
        )

        with service.connect() as sock:
            sock.sendall(f'GET {created["image"]} HTTP/1.1\r\nHost: x\r\n\r\n'.encode())
            status, headers, received = read_response(sock)
    finally:
        proxy.stop()
    service.stop()

    assert (status, headers['content-length']) == (200, str(size))
    assert len(received) < size
    assert 'Traceback' not in service.output
    [line] = [line for line in service.output.splitlines() if 'Cut an' in line]
    assert line.startswith(
        f'WARNING   Cut an original short after {s3reader.CHUNK} of {size} bytes'
    )


@pytest.mark.parametrize('command', ['uvicorn', 'asgilook serve'])
def test_a_missing_bucket_stops_the_service_with_one_line(
    tmp_path, moto_server, aws_environment, command
):
    environ = {
        'ASGI_LOOK_STORAGE_PATH': str(tmp_path),
        'ASGI_LOOK_BLOBS_URL': moto_server.url('nowhere-to-be-found'),
        'ASGI_LOOK_REDIS_URL': 'none',
    }
    if command == 'uvicorn':
        argv = [sys.executable, '-m', 'uvicorn', 'asgilook.asgi:app']
    else:
        argv = [str(pathlib.Path(sys.executable).with_name('asgilook')), 'serve']
    result = subprocess.run(
        [*argv, '--port', str(free_port())],
        env=dict(os.environ, PYTHONPATH=str(Service.ROOT), **environ),
        cwd=Service.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 3, result.stderr
    lines = [line for line in result.stderr.splitlines() if 'asgilook' in line]
    assert lines == [
        "asgilook: ASGI_LOOK_BLOBS_URL names the bucket 'nowhere-to-be-found', which "
        f'does not exist at {moto_server.endpoint}: create it, or add create=true to '
        'the URL to have the service create it'
    ]
    assert 'Traceback' not in result.stderr
    assert 'Unclosed' not in result.stderr
