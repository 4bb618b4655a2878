"""The uploader behind asgilook upload, against a fake service: retries,
waits, one Idempotency-Key per file, and what each outcome says."""

import asyncio
import datetime
import os
import socket

import httpx
import pytest

from asgilook import upload
from asgilook.imagefiles import Candidate

from .fakes import FakeImageService
from .fakes import PNG_SIGNATURE
from .servers import free_port

BODY = PNG_SIGNATURE + b'pixels'
UTC = datetime.UTC


@pytest.mark.parametrize(
    'value, expected',
    [
        (None, None),
        ('3', 3.0),
        (' 2 ', 2.0),
        ('Tue, 01 Dec 2026 04:01:20 GMT', 4.0),
        ('Tue, 01 Dec 2026 04:01:20 -0000', 4.0),
        # NOTE: A date gone by: retry at once.
        ('Tue, 01 Dec 2026 04:00:00 GMT', 0.0),
        ('soon', None),
        ('-1', None),
        ('', None),
    ],
)
def test_retry_after(value, expected):
    now = datetime.datetime(2026, 12, 1, 4, 1, 16, tzinfo=UTC)
    assert upload.parse_retry_after(value, now) == expected


def test_retry_after_from_the_clock():
    later = datetime.datetime.now(UTC) + datetime.timedelta(seconds=30)
    waited = upload.parse_retry_after(later.strftime('%a, %d %b %Y %H:%M:%S GMT'))
    assert 25 < waited <= 30


def test_waits():
    retries = upload.Retries(limit=5, backoff=0.5, max_wait=10)
    assert [retries.wait(n, None, 0) for n in (1, 2, 3, 4, 5, 6)] == [
        0.5, 1, 2, 4, 8, 10,
    ]  # fmt: skip
    assert retries.wait(1, 4.0, 0) == 4.0
    # NOTE: Jitter only ever adds, up to a quarter: Retry-After is a minimum.
    assert retries.wait(1, 4.0, 0.5) == 4.5
    assert retries.wait(1, 40.0, 0) == 10


class Sleeps(list):
    """A fake asyncio.sleep that notes how long it was asked to wait."""

    async def __call__(self, seconds):
        self.append(seconds)


def _upload(service, path, retries=None, sleeps=None, **options):
    async def run():
        async with httpx.AsyncClient(
            base_url='http://asgilook.test', transport=httpx.MockTransport(service)
        ) as client:
            uploader = upload.Uploader(
                client,
                retries or upload.Retries(),
                sleep=sleeps if sleeps is not None else Sleeps(),
                jitter=lambda: 0.0,
                **options,
            )
            return await uploader.upload(Candidate(str(path), 14))

    return asyncio.run(run())


@pytest.fixture
def image(tmp_path):
    path = tmp_path / 'image.png'
    path.write_bytes(BODY)
    return path


def _problem(status, title, description, **headers):
    return httpx.Response(
        status, json={'title': title, 'description': description}, headers=headers
    )


def test_stored_at_once(image):
    service = FakeImageService()
    outcome = _upload(service, image)
    [stored] = service.images.values()
    assert outcome.stored
    assert (outcome.attempts, outcome.retried, outcome.error) == (1, [], None)
    assert outcome.image == stored
    assert outcome.url == f'http://asgilook.test{stored["image"]}'
    assert service.requests[0].content == BODY


def test_retry_after_a_503_waits_and_keeps_the_key(image):
    sleeps = Sleeps()
    busy = _problem(
        503, 'Service Unavailable', 'Too many uploads.', **{'Retry-After': '2'}
    )
    service = FakeImageService(busy, busy)
    outcome = _upload(service, image, sleeps=sleeps)
    assert outcome.stored
    assert (outcome.attempts, outcome.retried) == (3, ['503', '503'])
    assert sleeps == [2.0, 2.0]
    keys = {request.headers['Idempotency-Key'] for request in service.requests}
    assert len(keys) == 1 and len(service.requests) == 3


def test_a_lost_answer_is_retried_without_storing_twice(image):
    service = FakeImageService('lost')
    outcome = _upload(service, image)
    assert outcome.stored
    assert (outcome.attempts, outcome.retried) == (2, ['ReadError'])
    # NOTE: The first try stored it; the retry, with the same key, got it back.
    assert len(service.images) == 1
    assert outcome.image == next(iter(service.images.values()))


@pytest.mark.parametrize(
    'fault, why',
    [
        (_problem(408, 'Request Timeout', 'Too slow.'), '408'),
        (_problem(429, 'Too Many Requests', 'Slow down.'), '429'),
        (httpx.Response(502, text='<html>Bad Gateway</html>'), '502'),
        (httpx.Response(504), '504'),
        (httpx.ConnectError('All connection attempts failed'), 'ConnectError'),
        (httpx.ConnectTimeout('timed out'), 'ConnectTimeout'),
        (httpx.ReadTimeout('timed out'), 'ReadTimeout'),
        (httpx.RemoteProtocolError('Server disconnected'), 'RemoteProtocolError'),
    ],
)
def test_transient_failures_are_retried(image, fault, why):
    sleeps = Sleeps()
    outcome = _upload(FakeImageService(fault), image, sleeps=sleeps)
    assert outcome.stored
    assert outcome.retried == [why]
    # NOTE: No Retry-After: the backoff's first wait.
    assert sleeps == [upload.Retries().backoff]


def test_retries_run_out(image):
    sleeps = Sleeps()
    faults = [httpx.ConnectError('')] * 2 + [httpx.Response(503, text='Busy')]
    service = FakeImageService(*faults)
    outcome = _upload(service, image, upload.Retries(limit=2), sleeps)
    assert not outcome.stored
    assert outcome.attempts == 3
    assert outcome.retried == ['ConnectError', 'ConnectError']
    assert sleeps == [0.5, 1.0]
    # NOTE: The last failure is the one reported.
    assert outcome.status == 503
    assert outcome.error == {
        'title': 'Service Unavailable',
        'description': 'Busy',
        'status': 503,
    }
    assert service.images == {}


def test_a_transport_error_is_named_and_described(image):
    outcome = _upload(
        FakeImageService(httpx.ReadError('')), image, upload.Retries(limit=0)
    )
    assert outcome.status is None
    assert outcome.error == {
        'title': 'ReadError',
        'description': 'The connection broke before the answer came.',
    }


def _caused(error, cause):
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    'error, description',
    [
        (
            _caused(
                httpx.ConnectError('All connection attempts failed'),
                ConnectionRefusedError(111, "Connect call failed ('10.0.0.1', 80)"),
            ),
            'Could not connect to the service (Connection refused).',
        ),
        (
            _caused(
                httpx.ConnectError('[Errno -2] Name or service not known'),
                socket.gaierror(-2, 'Name or service not known'),
            ),
            'Could not connect to the service (Name or service not known).',
        ),
        (
            _caused(httpx.ReadTimeout('Bearer secret'), OSError('Bearer secret')),
            'Timed out waiting for the answer.',
        ),
        (httpx.ProxyError('Bearer secret'), 'The request failed.'),
    ],
)
def test_client_errors_in_words_of_our_own(error, description):
    assert upload.client_error(error) == {
        'title': type(error).__name__,
        'description': description,
    }


def test_a_cycle_of_causes_ends():
    error = httpx.WriteError('Bearer secret')
    error.__cause__ = ValueError()
    error.__cause__.__cause__ = error
    assert upload.client_error(error)['description'] == (
        'The connection broke while the file was sent.'
    )


def test_connection_refused_by_a_real_socket(image):
    async def run():
        async with httpx.AsyncClient(base_url=f'http://127.0.0.1:{port}') as client:
            uploader = upload.Uploader(client, upload.Retries(limit=0))
            return await uploader.upload(Candidate(str(image), len(BODY)))

    port = free_port()
    outcome = asyncio.run(run())
    assert outcome.error == {
        'title': 'ConnectError',
        'description': 'Could not connect to the service (Connection refused).',
    }


@pytest.mark.parametrize(
    'answer',
    [
        _problem(422, 'Too many pixels', 'At most 50000000 pixels.'),
        httpx.Response(500, json=['not', 'a', 'problem']),
        httpx.Response(413, text='<html>Request Entity Too Large</html>'),
        httpx.Response(401, json={'title': 'Unauthorized'}),
    ],
)
def test_other_refusals_are_final(image, answer):
    outcome = _upload(FakeImageService(answer), image)
    assert not outcome.stored
    assert (outcome.attempts, outcome.retried) == (1, [])
    assert outcome.status == answer.status_code
    try:
        body = answer.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        # NOTE: The server's problem, as it came.
        assert outcome.error == body
    else:
        assert outcome.error['status'] == answer.status_code
        assert outcome.error['title'] == answer.reason_phrase


def test_an_answer_that_cannot_be_decoded_is_final(image):
    outcome = _upload(FakeImageService(httpx.DecodingError('bad gzip')), image)
    assert (outcome.attempts, outcome.retried, outcome.status) == (1, [], None)
    assert outcome.error == {
        'title': 'DecodingError',
        'description': 'The answer could not be decoded.',
    }


def test_a_header_refused_is_final(image):
    refused = httpx.LocalProtocolError("Illegal header value b'Bearer secret\\n'")
    outcome = _upload(FakeImageService(refused), image)
    assert (outcome.attempts, outcome.retried, outcome.status) == (1, [], None)
    assert 'secret' not in outcome.error['description']


def test_stored_without_json_or_location(image):
    outcome = _upload(FakeImageService(httpx.Response(201, text='Created')), image)
    assert outcome.stored
    assert (outcome.image, outcome.url) == (None, None)


@pytest.mark.parametrize(
    'headers, body, url',
    [
        ({}, {'image': '/images/1.jpeg'}, 'http://asgilook.test/images/1.jpeg'),
        ({}, {'image': None}, None),
        ({'Location': '/images/2.jpeg'}, {}, 'http://asgilook.test/images/2.jpeg'),
        # NOTE: A Location that is no URL: the JSON's, else as it came.
        (
            {'Location': 'http://[::1'},
            {'image': '/images/3.jpeg'},
            'http://asgilook.test/images/3.jpeg',
        ),
        ({'Location': 'http://[::1'}, ['no', 'image'], 'http://[::1'),
    ],
)
def test_where_an_image_was_stored(image, headers, body, url):
    answer = httpx.Response(201, json=body, headers=headers)
    outcome = _upload(FakeImageService(answer), image)
    assert outcome.stored
    assert (outcome.image, outcome.url) == (body, url)


def test_a_file_that_cannot_be_read(tmp_path):
    service = FakeImageService()
    outcome = _upload(service, tmp_path / 'missing.png')
    assert not outcome.stored
    assert outcome.attempts == 0
    assert outcome.size == 14
    assert outcome.error == {
        'title': 'Unreadable',
        'description': 'No such file or directory',
    }
    assert service.requests == []


def test_a_pipe_in_place_of_a_file_is_never_read(tmp_path):
    # NOTE: As if a file found a moment ago had been replaced by a pipe.
    os.mkfifo(tmp_path / 'image.png')
    service = FakeImageService()
    outcome = _upload(service, tmp_path / 'image.png')
    assert outcome.error == {'title': 'Unreadable', 'description': 'Not a regular file'}
    assert service.requests == []


@pytest.mark.parametrize('extra, sent', [(0, True), (1, False)])
def test_max_bytes(image, extra, sent):
    service = FakeImageService()
    outcome = _upload(service, image, max_bytes=len(BODY) - extra)
    assert outcome.stored == sent
    assert [request.content for request in service.requests] == [BODY] * sent
    if not sent:
        assert outcome.error == {
            'title': 'Too large',
            'description': '14 bytes, more than --max-bytes (13)',
        }


def test_upload_all_keeps_to_its_connections(tmp_path):
    paths = []
    for number in range(12):
        paths.append(tmp_path / f'{number}.png')
        paths[-1].write_bytes(BODY + bytes([number]))
    in_flight = []
    most = []
    service = FakeImageService()

    async def slow_service(request):
        in_flight.append(request)
        most.append(len(in_flight))
        await asyncio.sleep(0.01)
        in_flight.remove(request)
        return service(request)

    async def run():
        async with httpx.AsyncClient(
            base_url='http://asgilook.test',
            transport=httpx.MockTransport(slow_service),
        ) as client:
            uploader = upload.Uploader(client, upload.Retries())
            candidates = [Candidate(str(path), len(BODY) + 1) for path in paths]
            return await upload.upload_all(candidates, uploader, 3, done.append)

    done = []
    outcomes = asyncio.run(run())
    assert max(most) == 3
    # NOTE: Reported as they come; returned in the order given.
    assert [outcome.path for outcome in outcomes] == [str(path) for path in paths]
    assert sorted(outcome.path for outcome in done) == sorted(map(str, paths))
    assert len(service.images) == 12
    assert all(outcome.stored for outcome in outcomes)
