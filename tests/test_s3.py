"""Images in an S3 bucket: the URL, start-up, streaming, and every fault.

The storage is moto's S3 server; faults it cannot make (slow answers,
refused credentials, a full disk) come from a proxy in front of it.
"""

import asyncio
import gc
import logging
import sys
import time
import uuid

import falcon
import falcon.testing
import pytest

from asgilook import blobs as blobs_package
from asgilook import errors
from asgilook import images
from asgilook.app import create_app
from asgilook.blobs import s3reader
from asgilook.blobs.s3 import BucketMissing
from asgilook.blobs.s3 import S3Blobs
from asgilook.blobs.s3url import S3Location
from asgilook.config import Config

from . import corpus
from .fakes import FaultyS3Proxy
from .fakes import s3_error
from .helpers import decode
from .servers import MotoServer
from .servers import TcpProxy

ID = str(uuid.UUID(int=7, version=4))


def run(coroutine_function, *args):
    return falcon.async_to_sync(coroutine_function, *args)


@pytest.fixture
def proxy(moto_server):
    proxy = FaultyS3Proxy(moto_server.port).start()
    yield proxy
    proxy.stop()


def proxied(proxy, bucket, **query):
    """A blobs URL to ``bucket`` through the proxy."""
    query = {'endpoint': proxy.endpoint, 'region': 'us-east-1', **query}
    return f's3://{bucket}/images?' + '&'.join(f'{k}={v}' for k, v in query.items())


def app_client(config, url):
    config.blobs_url = url
    return falcon.testing.TestClient(create_app(config))


def upload(client, png_image):
    result = client.simulate_post('/images', body=png_image)
    assert result.status_code == 201, result.text
    return result.json


# The URL


def test_the_url_is_read_from_the_environment(tmp_path):
    url = 's3://images/prod?endpoint=http://minio:9000&region=eu-west-1&timeout=2'
    environ = {'ASGI_LOOK_STORAGE_PATH': str(tmp_path)}

    assert Config(environ={**environ, 'ASGI_LOOK_BLOBS_URL': url}).blobs_url == url
    assert Config(environ={**environ, 'ASGI_LOOK_BLOBS_URL': ''}).blobs_url is None
    assert Config(environ=environ).blobs_url is None


@pytest.mark.parametrize(
    'url, reason',
    [
        ('ftp://images/prod', "'ftp://images/prod' (unsupported storage URL: use"),
        ('s3://images/a/../b', 'the prefix must not have empty'),
        ('s3://images/./x', 'the prefix must not have empty'),
        ('s3://images//p//q', 'the prefix must not have empty'),
        ('s3://AKIAEXAMPLE:hunter2-secret@images', 'credentials do not belong'),
        ('s3://Images_2', 'bucket name'),
        ('s3://images?colour=red', "unknown parameter 'colour'"),
        ('s3://images?endpoint=minio:9000', 'endpoint must be'),
        ('s3://images?endpoint=http://minio:port', 'endpoint must be'),
        ('s3://images?endpoint=http://me:hunter2-secret@minio', 'credentials do'),
        (
            's3://images?endpoint=http%3A%2F%2Fme%3Ahunter2-secret%40minio%3A9000',
            'credentials do',
        ),
        ('s3://[::1', 'Invalid IPv6'),
        ('s3://images?create=maybe', 'create must be true or false'),
        ('s3://images?timeout=0', 'timeout must be'),
        ('s3://images?timeout=never', 'timeout must be'),
    ],
)
def test_a_bad_url_stops_the_service(tmp_path, url, reason):
    environ = {'ASGI_LOOK_STORAGE_PATH': str(tmp_path), 'ASGI_LOOK_BLOBS_URL': url}

    with pytest.raises(ValueError, match='^ASGI_LOOK_BLOBS_URL must be ') as raised:
        Config(environ=environ)
    assert reason in str(raised.value)
    assert 'hunter2-secret' not in str(raised.value)
    assert 'AKIAEXAMPLE' not in str(raised.value)


def test_s3_needs_its_client(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'aiobotocore', None)
    environ = {
        'ASGI_LOOK_STORAGE_PATH': str(tmp_path),
        'ASGI_LOOK_BLOBS_URL': 's3://images',
    }

    with pytest.raises(ValueError, match=r'needs aiobotocore: pip install'):
        Config(environ=environ)


def test_keys_and_names_under_a_prefix():
    assert S3Location('images').key(ID) == ID
    assert S3Location('images', 'prod/a').key(ID) == f'prod/a/{ID}'
    assert S3Location('images', 'prod/a').name(f'prod/a/derived/{ID}/x') == (
        f'derived/{ID}/x'
    )


# Start-up and shut-down


def test_stopping_what_never_started(config, s3_bucket, moto_server):
    blobs = blobs_package.from_url(moto_server.url(s3_bucket), config, None)
    run(blobs.stop)
    run(blobs.stop)


def test_a_missing_bucket_stops_the_service(config, moto_server, aws_environment):
    blobs = blobs_package.from_url(moto_server.url('nowhere-to-be-found'), config, None)

    with pytest.raises(BucketMissing) as raised:
        run(blobs.start)
    run(blobs.stop)
    message = str(raised.value)
    assert message.startswith('ASGI_LOOK_BLOBS_URL names the bucket ')
    assert "'nowhere-to-be-found'" in message
    assert 'create=true' in message


@pytest.mark.parametrize('region', ['us-east-1', 'eu-west-1'])
def test_a_missing_bucket_is_made_when_asked(
    config, moto_server, aws_environment, region
):
    bucket = f'made-{uuid.uuid4().hex[:12]}'
    url = moto_server.url(bucket, region=region, create='true')
    blobs = blobs_package.from_url(url, config, None)

    run(blobs.start)
    run(blobs.start)
    run(blobs.write, ID, b'first')
    run(blobs.stop)

    assert moto_server.keys(bucket) == [ID]
    location = moto_server.client().get_bucket_location(Bucket=bucket)
    assert (location['LocationConstraint'] or 'us-east-1') == region


def test_storage_away_at_start_up_is_no_reason_to_stop(config, aws_environment, caplog):
    url = 's3://images?endpoint=http://127.0.0.1:9&region=us-east-1&timeout=2'
    blobs = blobs_package.from_url(url, config, None)

    run(blobs.start)
    run(blobs.stop)
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.getMessage() == (
        "Could not check the bucket 'images': The image could not be searched "
        '(the storage could not be reached: EndpointConnectionError). Try again later.'
    )


def test_a_bucket_is_made_once_the_storage_answers(
    config, moto_server, aws_environment, proxy, caplog
):
    bucket = f'late-{uuid.uuid4().hex[:12]}'
    blobs = blobs_package.from_url(proxied(proxy, bucket, create='true'), config, None)
    proxy.answers['*'] = s3_error(503, 'SlowDown')
    run(blobs.start)
    assert "Could not check the bucket 'late-" in caplog.text
    proxy.answers.clear()
    del proxy.methods[:]

    async def write_many():
        await asyncio.gather(*(blobs.write(f'{ID}-{n}', b'x') for n in range(5)))

    run(write_many)
    run(blobs.write, ID, b'original')
    run(blobs.stop)

    assert len(moto_server.keys(bucket)) == 6
    # NOTE: One check (a HEAD, then the bucket's PUT) for the five calls
    #   that came together, and none after.
    assert proxy.methods == ['HEAD', 'PUT'] + ['PUT'] * 6


def test_a_missing_bucket_found_once_the_storage_answers(
    config, moto_server, aws_environment, proxy, png_image, caplog
):
    bucket = f'absent-{uuid.uuid4().hex[:12]}'
    proxy.answers['*'] = s3_error(503, 'SlowDown')
    app = app_client(config, proxied(proxy, bucket)).app

    async def scenario():
        # NOTE: One start-up, as a service has (TestClient starts the app
        #   again for every request).
        async with falcon.testing.ASGIConductor(app) as conductor:
            proxy.answers.clear()
            refused = [
                await conductor.simulate_post('/images', body=png_image),
                await conductor.simulate_post('/images', body=png_image),
                await conductor.simulate_get('/readyz'),
            ]
            # NOTE: Made by hand, the bucket is found at the next call.
            moto_server.create_bucket(bucket)
            created = await conductor.simulate_post('/images', body=png_image)
            return refused, created

    refused, created = run(scenario)
    for result in refused[:2]:
        assert result.status_code == 503
        assert result.headers['retry-after'] == '5'
        assert result.json['title'] == 'Storage unavailable'
        assert result.json['description'] == (
            'The image could not be stored (the storage has no bucket for the '
            'images). Try again later.'
        )
    assert refused[2].status_code == 503
    assert refused[2].json['checks']['storage']['state'] == 'down'
    [record] = [r for r in _problems(caplog) if 'ASGI_LOOK_BLOBS_URL' in r.message]
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith(
        f'ASGI_LOOK_BLOBS_URL names the bucket {bucket!r}, which does not exist'
    )
    assert created.status_code == 201, created.text


# The service over S3


def test_an_image_in_a_bucket(config, moto_server, s3_bucket, png_image, image_size):
    client = app_client(config, moto_server.url(s3_bucket, 'prod'))
    created = upload(client, png_image)
    image_id = created['id']

    original = client.simulate_get(created['image'])
    assert original.status_code == 200
    assert decode(original.content).size == image_size(png_image)
    for ext in ('jpeg', 'webp', 'avif'):
        thumbnail = created['thumbnails'][0].replace('.jpeg', f'.{ext}')
        assert client.simulate_get(thumbnail).status_code == 200
    keys = moto_server.keys(s3_bucket)
    assert f'prod/{image_id}' in keys
    assert (
        len([key for key in keys if key.startswith(f'prod/derived/{image_id}/')]) == 3
    )

    assert client.simulate_delete(created['image']).status_code == 204
    assert client.simulate_get(created['image']).status_code == 404
    assert moto_server.keys(s3_bucket) == []


def test_a_large_original_is_streamed_in_ranges(
    config, moto_server, s3_bucket, png_image, proxy
):
    client = app_client(config, proxied(proxy, s3_bucket))
    created = upload(client, png_image)
    whole = client.simulate_get(created['image'])
    config.read_whole_bytes = 1000
    half = len(whole.content) // 2
    del proxy.ranges[:]

    streamed = client.simulate_get(created['image'])
    part = client.simulate_get(created['image'], headers={'Range': f'bytes=100-{half}'})
    head = client.simulate_head(created['image'])
    unchanged = client.simulate_get(
        created['image'], headers={'If-None-Match': whole.headers['etag']}
    )

    assert streamed.content == whole.content
    assert part.status_code == 206
    assert part.content == whole.content[100 : half + 1]
    assert head.headers['content-length'] == str(len(whole.content))
    assert unchanged.status_code == 304
    # NOTE: A size and a stream: one HEAD, then one GET of the range asked for.
    assert proxy.ranges == [f'bytes=0-{len(whole.content) - 1}', f'bytes=100-{half}']


def test_a_reader_holds_one_chunk_at_most(config, moto_server, s3_bucket):
    blobs = blobs_package.from_url(moto_server.url(s3_bucket), config, None)
    data = bytes(range(256)) * (3 * s3reader.CHUNK // 256 + 1)
    run(blobs.write, ID, data)

    async def read_all():
        reader = await blobs.open(ID)
        chunks = [await reader.read(), await reader.read(10 * s3reader.CHUNK)]
        while chunk := await reader.read():
            chunks.append(chunk)
        await reader.close()
        return chunks

    chunks = run(read_all)
    run(blobs.stop)
    assert max(len(chunk) for chunk in chunks) == s3reader.CHUNK
    assert b''.join(chunks) == data


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 64 KiB, so that a small original is streamed in many."""
    monkeypatch.setattr(images, '_CHUNK', 2**16)
    monkeypatch.setattr(s3reader, 'CHUNK', 2**16)


def test_a_download_that_has_begun_survives_a_delete(
    config, moto_server, s3_bucket, proxy, small_chunks, caplog
):
    config.read_whole_bytes = 1000
    client = app_client(config, proxied(proxy, s3_bucket))
    app = client.app
    # NOTE: An original of about 1 MiB: 16 chunks.
    created = upload(client, corpus.encode(corpus.noise((1200, 1200)), 'PNG'))
    whole = client.simulate_get(created['image']).content
    # NOTE: Every call to the storage takes a while: a reader that went back
    #   to it for each chunk would find the object gone half-way.
    proxy.delay = 0.1

    async def download_and_delete():
        async with falcon.testing.ASGIConductor(app) as conductor:
            async with conductor.simulate_get_stream(created['image']) as result:
                received = b''
                while not received:
                    received += await result.stream.read()
                deleted = await conductor.simulate_delete(created['image'])
                # NOTE: Bounded: a download cut short never grows again.
                deadline = time.monotonic() + 10
                while len(received) < len(whole) and time.monotonic() < deadline:
                    chunk = await result.stream.read()
                    received += chunk
                    if not chunk:
                        await asyncio.sleep(0.01)
                return result.status_code, deleted.status_code, received

    status, deleted, received = run(download_and_delete)
    assert (status, deleted) == (200, 204)
    assert received == whole
    assert client.simulate_get(created['image']).status_code == 404
    assert _problems(caplog) == []


def _problems(caplog):
    """Records of warnings and worse, but the start-up report's."""
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name != 'asgilook'
    ]


def test_storage_failing_mid_body_closes_the_connection_quietly(
    config, moto_server, s3_bucket, proxy, caplog
):
    config.read_whole_bytes = 1000
    caplog.set_level(logging.INFO, logger='asgilook.access')
    client = app_client(config, proxied(proxy, s3_bucket, timeout=0.5))
    created = upload(client, corpus.encode(corpus.noise((1600, 1200)), 'PNG'))
    whole = client.simulate_get(created['image']).content
    # NOTE: The storage promises every byte, sends the first chunk and a few
    #   more (the first is read before the headers go), then says no more.
    size = len(whole)
    assert size > s3reader.CHUNK + 1000
    headers = {
        'Content-Length': str(size),
        'Content-Range': f'bytes 0-{size - 1}/{size}',
    }
    # NOTE: Cut within the first chunk: an error of our own still.
    proxy.answers['GET'] = (206, headers, whole[:1000])
    early = client.simulate_get(created['image'])
    assert early.status_code == 503
    assert early.headers['Retry-After'] == '5'
    caplog.clear()
    proxy.answers['GET'] = (206, headers, whole[: s3reader.CHUNK + 1000])

    result = client.simulate_get(created['image'])

    assert result.status_code == 200
    assert result.headers['content-length'] == str(size)
    assert len(result.content) < size
    # NOTE: Only the images' line: on a busy machine, the start-up's check of
    #   the bucket may run out of its half second too, and say so.
    [record] = [r for r in _problems(caplog) if r.name == 'asgilook.images']
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f'Cut an original short after {s3reader.CHUNK} of {size} bytes: The image '
        'could not be read (the storage did not answer in time). Try again later.'
    )
    assert record.exc_info is None
    # NOTE: Logged as what went out: the first chunk, cut short.
    access = [r.getMessage() for r in caplog.records if r.name == 'asgilook.access']
    assert access[-1].startswith(f'GET {created["image"]} 200 {s3reader.CHUNK}B ')
    assert access[-1].endswith(' cut')


def test_a_slow_storage_that_still_sends_is_not_cut_off(
    config, moto_server, s3_bucket, proxy
):
    """The deadline is for each piece of a body, not for a whole chunk."""
    data = bytes(range(256)) * (6 * 2**12)
    moto_server.client().put_object(Bucket=s3_bucket, Key=f'images/{ID}', Body=data)
    # NOTE: A chunk (1 MiB) takes 16 pieces, 0.8 s: twice the deadline.
    proxy.pace = 0.05
    blobs = blobs_package.from_url(proxied(proxy, s3_bucket, timeout=0.4), config, None)

    async def read_all():
        reader = await blobs.open(ID)
        chunks = []
        while chunk := await reader.read():
            chunks.append(chunk)
        await reader.close()
        return b''.join(chunks)

    assert run(read_all) == data
    # NOTE: Read whole (to render it), the same.
    assert run(blobs.read, ID) == data
    run(blobs.stop)


def test_open_downloads_leave_connections_for_every_other_call(
    config, moto_server, s3_bucket, proxy
):
    moto_server.client().put_object(Bucket=s3_bucket, Key=f'images/{ID}', Body=b'x' * 9)
    blobs = blobs_package.from_url(proxied(proxy, s3_bucket), config, None)
    blobs.STREAMS = 2

    async def downloads():
        readers = [await blobs.open(ID) for _ in range(3)]
        for reader in readers[:2]:
            assert await reader.read(1) == b'x'
        # NOTE: The third waits for nobody: a 503 that says why.
        with pytest.raises(errors.Overloaded, match='Too many originals'):
            await readers[2].read(1)
        # NOTE: Every other call still has a connection.
        assert await blobs.read(ID) == b'x' * 9
        await readers[0].close()
        assert await readers[2].read(1) == b'x'
        # NOTE: A GET that fails gives its place back.
        proxy.answers['GET'] = s3_error(500, 'InternalError')
        await readers[1].close()
        failing = await blobs.open(ID)
        with pytest.raises(errors.StorageUnavailable):
            await failing.read(1)
        del proxy.answers['GET']
        again = await blobs.open(ID)
        assert await again.read(1) == b'x'
        for reader in (readers[2], again, failing):
            await reader.close()

    run(downloads)
    run(blobs.stop)


def test_a_download_over_the_limit_is_a_503_not_an_empty_200(
    config, moto_server, s3_bucket, monkeypatch
):
    config.read_whole_bytes = 1000
    client = app_client(config, moto_server.url(s3_bucket))
    created = upload(client, corpus.encode(corpus.noise((300, 300)), 'PNG'))
    whole = client.simulate_get(created['image'])
    assert whole.status_code == 200
    assert len(whole.content) > 1000

    with monkeypatch.context() as patched:
        # NOTE: As if every stream were taken by downloads under way.
        patched.setattr(S3Blobs, 'STREAMS', 0)
        busy = client.simulate_get(created['image'])
        assert busy.status_code == 503
        assert busy.headers['Retry-After'] == '5'
        assert 'Too many originals' in busy.json['description']
        assert client.simulate_head(created['image']).status_code == 200

    assert client.simulate_get(created['image']).content == whole.content


def test_a_reader_lets_go_of_what_it_did_not_read(config, s3_bucket, moto_server):
    blobs = blobs_package.from_url(moto_server.url(s3_bucket, timeout=2), config, None)
    # NOTE: One connection: a GET left open would hold it, and every call
    #   after would wait for it in vain.
    blobs.CONNECTIONS = 1
    data = bytes(range(256)) * (3 * s3reader.CHUNK // 256)
    run(blobs.write, ID, data)

    async def begin_and_leave(first):
        stream = await images._stream(await blobs.open(ID), first, len(data) - first)
        chunk = await anext(stream)
        await stream.aclose()
        return chunk

    for first in (0, 5, s3reader.CHUNK):
        assert run(begin_and_leave, first) == data[first : first + s3reader.CHUNK]
    assert run(blobs.read, ID) == data
    run(blobs.stop)


def test_readiness_writes_to_the_bucket(config, moto_server, s3_bucket):
    client = app_client(config, moto_server.url(s3_bucket))

    ready = client.simulate_get('/readyz')
    assert ready.status_code == 200, ready.text
    assert ready.json['checks']['storage']['state'] == 'up'
    assert moto_server.keys(s3_bucket) == []


def test_listings_and_deletes_go_in_batches(config, moto_server, s3_bucket, proxy):
    blobs = blobs_package.from_url(proxied(proxy, s3_bucket), config, None)
    blobs.BATCH = blobs.PAGE = 2
    for n in range(5):
        run(blobs.write, f'derived/{ID}/{n}.webp', b'derived')
    del proxy.methods[:]

    run(blobs.remove_all, f'derived/{ID}')
    run(blobs.stop)

    assert moto_server.keys(s3_bucket) == []
    assert proxy.methods == ['GET', 'GET', 'GET', 'POST', 'POST', 'POST']


# Faults


def test_refused_credentials_are_a_503_and_one_log_line(
    config, moto_server, s3_bucket, proxy, png_image, caplog
):
    proxy.answers['*'] = s3_error(403, 'InvalidAccessKeyId')
    client = app_client(config, proxied(proxy, s3_bucket))

    for _ in range(3):
        result = client.simulate_post('/images', body=png_image)
        assert result.status_code == 503
        assert result.headers['retry-after']
        assert 'refused our credentials' in result.json['description']

    # NOTE: The first refusal is the bucket's check at start-up: a HEAD,
    #   whose answer has no body to say more than its status.
    [record] = _storage_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        f"Cannot use the S3 bucket '{s3_bucket}': the storage refused our "
        'credentials (403). Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or '
        'AWS_PROFILE, to credentials it takes.'
    )
    assert 'asgilook-test-secret' not in caplog.text

    # NOTE: Once they are taken again, a refusal is worth a line again.
    proxy.answers.clear()
    upload(client, png_image)
    proxy.answers['*'] = s3_error(403, 'SignatureDoesNotMatch')
    assert client.simulate_post('/images', body=png_image).status_code == 503
    assert '(SignatureDoesNotMatch)' in _storage_records(caplog)[-1].getMessage()
    assert len(_storage_records(caplog)) == 2


def _storage_records(caplog):
    return [r for r in caplog.records if r.name.startswith('asgilook.blobs')]


def test_no_credentials_at_all(config, moto_server, s3_bucket, monkeypatch, caplog):
    monkeypatch.delenv('AWS_ACCESS_KEY_ID')
    monkeypatch.delenv('AWS_SECRET_ACCESS_KEY')
    blobs = blobs_package.from_url(moto_server.url(s3_bucket), config, None)

    with pytest.raises(errors.StorageUnavailable, match='no credentials for the'):
        run(blobs.write, ID, b'original')
    run(blobs.stop)
    assert 'NoCredentialsError' in caplog.text


def test_a_profile_that_is_not_there(config, moto_server, s3_bucket, monkeypatch):
    monkeypatch.setenv('AWS_PROFILE', 'nowhere')
    blobs = blobs_package.from_url(moto_server.url(s3_bucket), config, None)

    with pytest.raises(errors.StorageUnavailable, match='ProfileNotFound'):
        run(blobs.write, ID, b'original')
    monkeypatch.delenv('AWS_PROFILE')
    run(blobs.write, ID, b'original')
    run(blobs.stop)


def test_a_full_storage_is_a_507(config, s3_bucket, proxy, png_image):
    proxy.answers['PUT'] = s3_error(507, 'XMinioStorageFull')
    client = app_client(config, proxied(proxy, s3_bucket))

    result = client.simulate_post('/images', body=png_image)
    assert result.status_code == 507
    assert 'the storage is full' in result.json['description']
    assert client.simulate_get('/images').json == []


def test_an_error_of_the_storage_is_a_503(config, s3_bucket, proxy, png_image):
    client = app_client(config, proxied(proxy, s3_bucket))
    created = upload(client, png_image)
    proxy.answers['GET'] = s3_error(500, 'InternalError')

    result = client.simulate_get(created['image'])
    assert result.status_code == 503
    assert result.headers['retry-after'] == '5'
    assert 'the storage answered InternalError' in result.json['description']


def test_a_slow_storage_is_a_503_in_bounded_time(config, s3_bucket, proxy, png_image):
    client = app_client(config, proxied(proxy, s3_bucket, timeout=0.5))
    created = upload(client, png_image)
    proxy.delay = 3.0

    assert client.simulate_post('/images', body=png_image).status_code == 503
    started = time.monotonic()
    read = client.simulate_get(created['image'])
    assert time.monotonic() - started < 2.0
    assert read.status_code == 503
    assert 'did not answer in time' in read.json['description']

    proxy.delay = 0.0
    assert client.simulate_get(created['image']).status_code == 200
    upload(client, png_image)


def test_a_hung_storage_is_a_503_then_recovers(config, aws_environment, png_image):
    moto = MotoServer().start()
    try:
        moto.create_bucket('hangs')
        client = app_client(config, moto.url('hangs', timeout=0.5))
        # NOTE: A new moto's first answers may take longer than the deadline
        #   on a busy machine: that is not what this test is about.
        for _ in range(3):
            result = client.simulate_post('/images', body=png_image)
            if result.status_code != 503:
                break
        assert result.status_code == 201, result.text
        created = result.json

        moto.pause()
        started = time.monotonic()
        result = client.simulate_get(created['image'])
        assert result.status_code == 503
        assert time.monotonic() - started < 2.0
        moto.resume()

        assert client.simulate_get(created['image']).status_code == 200
    finally:
        moto.stop()


def test_a_storage_that_stops_is_a_503_then_recovers(
    config, aws_environment, png_image
):
    moto = MotoServer().start()
    try:
        moto.create_bucket('stops')
        client = app_client(config, moto.url('stops', timeout=2))
        created = upload(client, png_image)

        moto.stop()
        for result in (
            client.simulate_get(created['image']),
            client.simulate_post('/images', body=png_image),
            client.simulate_delete(created['image']),
        ):
            assert result.status_code == 503, result.text
            assert result.headers['retry-after'] == '5'
        assert client.simulate_get('/readyz').json['checks']['storage']['state'] == (
            'down'
        )
        # NOTE: The delete changed nothing.
        listed = client.simulate_get('/images').json
        assert [image['id'] for image in listed] == [created['id']]

        # NOTE: moto keeps nothing over a restart: the storage comes back empty.
        moto = MotoServer(moto.port).start()
        moto.create_bucket('stops')
        again = upload(client, png_image)
        assert client.simulate_get(again['image']).status_code == 200
    finally:
        moto.stop()


def test_a_put_whose_connection_drops_leaves_the_log_clean(
    config, moto_server, s3_bucket, png_image, caplog
):
    tcp = TcpProxy(moto_server.port).start()
    try:
        endpoint = f'http://127.0.0.1:{tcp.port}'
        client = app_client(
            config, f's3://{s3_bucket}?endpoint={endpoint}&region=us-east-1'
        )
        upload(client, png_image)
        tcp.hang_up()

        result = client.simulate_post('/images', body=png_image)
        # NOTE: What nobody awaited is reported once it is collected.
        gc.collect()
    finally:
        tcp.cut()
    assert result.status_code == 503
    assert 'could not be reached' in result.json['description']
    assert 'never retrieved' not in caplog.text
    assert [r.name for r in _problems(caplog)] == []


def test_a_delete_that_the_storage_refuses_in_part(config, s3_bucket, proxy):
    blobs = blobs_package.from_url(proxied(proxy, s3_bucket), config, None)
    run(blobs.write, f'derived/{ID}/a.webp', b'derived')
    proxy.answers['POST'] = (
        200,
        {'Content-Type': 'application/xml'},
        b'<?xml version="1.0" encoding="UTF-8"?><DeleteResult><Error>'
        b'<Key>a.webp</Key><Code>AccessDenied</Code><Message>no</Message>'
        b'</Error></DeleteResult>',
    )

    with pytest.raises(errors.StorageUnavailable, match=r'\(AccessDenied\)'):
        run(blobs.remove_all, f'derived/{ID}')
    run(blobs.stop)


def test_a_delete_whose_objects_cannot_go_is_done_all_the_same(
    config, moto_server, s3_bucket, proxy, png_image, caplog
):
    """The record went first: the image is deleted for everyone, and what
    the storage kept is left to the sweep, not answered with a 503 that a
    retry would turn into a 404."""
    client = app_client(config, proxied(proxy, s3_bucket))
    created = upload(client, png_image)
    client.simulate_get(created['thumbnails'][0])
    for method in ('DELETE', 'POST'):
        proxy.answers[method] = s3_error(503, 'SlowDown')

    assert client.simulate_delete(created['image']).status_code == 204
    assert client.simulate_get(created['image']).status_code == 404
    assert client.simulate_get('/images').json == []
    assert f'Deleted {created["id"]}, but could not remove its files' in caplog.text
    assert f'images/{created["id"]}' in moto_server.keys(s3_bucket)


def test_a_bucket_deleted_under_a_running_service_is_a_503(
    config, moto_server, s3_bucket, png_image, caplog
):
    config.blobs_url = moto_server.url(s3_bucket)
    app = create_app(config)
    s3 = moto_server.client()

    async def scenario():
        # NOTE: One start-up for all: the service was running when it went.
        async with falcon.testing.ASGIConductor(app) as conductor:
            created = (await conductor.simulate_post('/images', body=png_image)).json
            for key in moto_server.keys(s3_bucket):
                s3.delete_object(Bucket=s3_bucket, Key=key)
            s3.delete_bucket(Bucket=s3_bucket)
            # NOTE: A thumbnail first: its GET is answered NoSuchBucket.
            results = [await conductor.simulate_get(created['thumbnails'][0])]
            results += [
                await conductor.simulate_request(method, created['image'])
                for method in ('HEAD', 'GET', 'GET')
            ]
            # NOTE: Made again (empty): its images are missing, and say so.
            moto_server.create_bucket(s3_bucket)
            results.append(await conductor.simulate_get(created['image']))
        return results

    thumbnail, *gone, again = run(scenario)
    assert thumbnail.status_code == 503
    assert 'NoSuchBucket' in thumbnail.json['description']
    assert [result.status_code for result in gone] == [503] * 3
    assert 'the storage has no bucket' in gone[-1].json['description']
    assert again.status_code == 404
    assert caplog.text.count(f'names the bucket {s3_bucket!r}, which does not') == 1


def test_removing_changes_nothing_when_the_storage_is_away(
    config, moto_server, s3_bucket, proxy
):
    blobs = blobs_package.from_url(proxied(proxy, s3_bucket), config, None)
    run(blobs.write, ID, b'original')
    proxy.answers['HEAD'] = s3_error(503, 'SlowDown')
    ran = []

    async def remove():
        async with blobs.removing(ID, lambda: None):
            ran.append(True)

    with pytest.raises(errors.StorageUnavailable):
        run(remove)
    run(blobs.stop)
    assert ran == []
    assert moto_server.keys(s3_bucket) == [f'images/{ID}']


def test_the_sweep_says_what_it_took(config, moto_server, s3_bucket, caplog):
    config.database_url = f'sqlite:///{config.storage_path}/index.db'
    client = app_client(config, moto_server.url(s3_bucket))
    created = upload(client, corpus.encode(corpus.pattern((640, 480)), 'PNG'))
    assert client.simulate_get(created['thumbnails'][-1]).status_code == 200
    kept = moto_server.keys(s3_bucket)
    # NOTE: A render kept after its image was deleted, say.
    moto_server.client().put_object(
        Bucket=s3_bucket, Key=f'derived/{ID}/a.webp', Body=b''
    )

    restarted = app_client(config, moto_server.url(s3_bucket))
    assert [image['id'] for image in restarted.simulate_get('/images').json] == [
        created['id']
    ]
    assert moto_server.keys(s3_bucket) == kept
    assert 'Removed 0 unfinished and 1 orphaned files' in caplog.text


def test_the_sweep_takes_nothing_an_empty_index_does_not_know(
    config, moto_server, s3_bucket, caplog
):
    """A host on a new database (or that lost its setting) sweeps nothing."""
    config.database_url = f'sqlite:///{config.storage_path}/index.db'
    moto_server.client().put_object(
        Bucket=s3_bucket, Key=f'derived/{ID}/a.webp', Body=b''
    )
    client = app_client(config, moto_server.url(s3_bucket))

    assert client.simulate_get('/images').json == []
    assert moto_server.keys(s3_bucket) == [f'derived/{ID}/a.webp']
    assert 'is this the right database?' in caplog.text
