"""Upload limits as a client on a real connection meets them."""

import select
import threading
import time

import pytest

from . import corpus
from .servers import read_response
from .servers import Service


@pytest.fixture
def service(tmp_path):
    services = []

    def start(**environ):
        storage = tmp_path / f'images-{len(services)}'
        services.append(Service(storage, **environ).start())
        return services[-1]

    yield start
    for service in services:
        service.stop()
        assert 'Traceback' not in service.output, service.output


def assert_nothing_stored(service):
    # NOTE: The service's own index lives there too (asgilook.db and its WAL).
    files = [path.name for path in service.storage_path.iterdir()]
    assert [name for name in files if not name.startswith('asgilook.db')] == []
    assert service.request('GET', '/images')[2] == b'[]'


def _post_head(length=None, chunked=False, content_type='image/png'):
    head = f'POST /images HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n'
    if length is not None:
        head += f'Content-Length: {length}\r\n'
    if chunked:
        head += 'Transfer-Encoding: chunked\r\n'
    return (head + '\r\n').encode()


def test_oversized_content_length_is_refused_before_reading(service):
    app = service(ASGI_LOOK_MAX_UPLOAD_BYTES='1000000')

    with app.connect() as sock:
        # NOTE: Falcon starts on a request once its first chunk of body is in;
        #   the other 999,990,000 bytes are never sent.
        sock.sendall(_post_head(length=10**9) + b'\x00' * 10_000)
        started = time.monotonic()
        status, headers, body = read_response(sock)
    assert status == 413
    assert time.monotonic() - started < 5
    assert b'limit of 1,000,000 bytes' in body
    assert_nothing_stored(app)


def test_expect_100_continue_gets_413_without_the_body(service):
    app = service(ASGI_LOOK_MAX_UPLOAD_BYTES='1000000')

    with app.connect() as sock:
        head = _post_head(length=10**9).replace(
            b'\r\n\r\n', b'\r\nExpect: 100-continue\r\n\r\n'
        )
        sock.sendall(head)
        assert sock.recv(100).startswith(b'HTTP/1.1 100 Continue')
        sock.sendall(b'\x00' * 10_000)
        status, headers, body = read_response(sock)
    assert status == 413
    assert_nothing_stored(app)


def test_chunked_body_is_cut_off_at_the_limit(service):
    app = service(ASGI_LOOK_MAX_UPLOAD_BYTES='100000')
    chunk = b'\x00' * 10_000

    with app.connect() as sock:
        sock.sendall(_post_head(chunked=True))
        sent = 0
        # NOTE: Far more than the limit; the service must answer long before.
        while sent < 10_000_000:
            sock.sendall(b'%x\r\n%s\r\n' % (len(chunk), chunk))
            sent += len(chunk)
            if select.select([sock], [], [], 0.001)[0]:
                break
        status, headers, body = read_response(sock)
    assert status == 413
    assert sent < 1_000_000
    assert_nothing_stored(app)


def test_a_trickling_client_gets_408_and_blocks_nobody(service):
    app = service(ASGI_LOOK_UPLOAD_TIMEOUT='1.5')
    body = corpus.encode(corpus.pattern(), 'PNG')
    result = {}

    def trickle():
        with app.connect() as sock:
            sock.sendall(_post_head(length=len(body)))
            started = time.monotonic()
            for byte in body:
                sock.sendall(bytes([byte]))
                # NOTE: Stop sending as soon as the service answers.
                if select.select([sock], [], [], 0.05)[0]:
                    break
            result['seconds'] = time.monotonic() - started
            result['response'] = read_response(sock)

    thread = threading.Thread(target=trickle)
    thread.start()
    try:
        time.sleep(0.3)
        for _ in range(5):
            started = time.monotonic()
            assert app.request('GET', '/images')[0] == 200
            assert time.monotonic() - started < 0.5
    finally:
        thread.join(timeout=20)

    status, headers, text = result['response']
    assert status == 408
    assert b'did not arrive within 1.5 seconds' in text
    assert 1.4 < result['seconds'] < 5
    assert_nothing_stored(app)


def test_client_disconnect_mid_body_stores_nothing(service):
    app = service()
    body = corpus.encode(corpus.pattern((400, 300)), 'BMP')

    with app.connect() as sock:
        sock.sendall(_post_head(length=len(body)) + body[: len(body) // 2])
        time.sleep(0.2)

    # NOTE: Let the service notice, and try whatever it would try.
    time.sleep(0.5)
    assert_nothing_stored(app)
    status, _, _ = app.request('POST', '/images', body=body)
    assert status == 201


def test_slow_uploads_take_upload_places_not_workers(service):
    app = service(
        ASGI_LOOK_MAX_UPLOADS='1',
        ASGI_LOOK_IMAGE_WORKERS='1',
        ASGI_LOOK_QUEUE_TIMEOUT='0.5',
    )
    body = corpus.encode(corpus.pattern((256, 128)), 'PNG')
    status, _, text = app.request('POST', '/images', body=body)
    assert status == 201
    thumbnail = text.split(b'"thumbnails": ["')[1].split(b'"')[0].decode()

    with app.connect() as slow:
        # NOTE: An upload that holds the only upload place while its body
        #   trickles in.
        slow.sendall(_post_head(length=len(body)) + body[:10])
        time.sleep(0.3)

        # NOTE: The next upload waits its turn, then gives up.
        started = time.monotonic()
        status, headers, text = app.request('POST', '/images', body=body)
        assert status == 503
        assert headers['retry-after'] == '1'
        assert b'Too many uploads at once; waited 0.5 s; retry in 1 s.' in text
        assert 0.5 <= time.monotonic() - started < 5

        # NOTE: Rendering is not held up by a slow client.
        assert app.request('GET', thumbnail)[0] == 200

        slow.sendall(body[10:])
        assert read_response(slow)[0] == 201
