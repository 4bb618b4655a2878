"""Faults that are not the code's: one line for each, never a traceback."""

import errno
import json
import logging
import os
import socket
import time

import falcon
import PIL.Image
import pytest

from asgilook import errors
from asgilook.blobs.directory import FileReader
from asgilook.images import _stream

from . import corpus
from .helpers import client_over_failing_blobs
from .servers import Service
from .servers import wait_for

SETTING = (
    "ASGI_LOOK_BLOBS_URL names the bucket 'gone', which does not exist: create "
    'it, or add create=true to the URL to have the service create it'
)


def test_a_bad_setting_found_at_start_up_is_one_line(config, capsys):
    client, blobs = client_over_failing_blobs(config)
    blobs.fail('start', errors.BadSetting(SETTING))

    with pytest.raises(RuntimeError, match=r'startup\.failed\. $'):
        client.simulate_get('/images')
    assert capsys.readouterr().err == f'asgilook: {SETTING}\n'


def test_a_fault_of_the_code_at_start_up_keeps_its_traceback(config, capsys):
    client, blobs = client_over_failing_blobs(config)
    blobs.fail('start', KeyError('a bug'))

    with pytest.raises(RuntimeError) as raised:
        client.simulate_get('/images')
    assert 'Traceback (most recent call last)' in str(raised.value)
    assert "KeyError: 'a bug'" in str(raised.value)
    assert capsys.readouterr().err == ''


class UnreadableFile:
    """An open file whose disk fails after the first read."""

    def __init__(self):
        self.reads = 0
        self.closed = False

    async def seek(self, offset):
        return offset

    async def read(self, size):
        self.reads += 1
        if self.reads > 1:
            raise OSError(errno.EIO, 'Input/output error')
        return b'x' * size

    async def close(self):
        self.closed = True


def test_a_file_failing_mid_body_cuts_the_answer(caplog):
    file = UnreadableFile()
    received = []

    async def stream():
        async for chunk in await _stream(FileReader(file), 0, 3 * 2**20):
            received.append(chunk)

    with pytest.raises(errors.ResponseCut):
        falcon.async_to_sync(stream)
    assert [len(chunk) for chunk in received] == [2**20]
    assert file.closed
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f'Cut an original short after {2**20} of {3 * 2**20} bytes: The image '
        'could not be read (Input/output error). Try again later.'
    )


def test_a_file_failing_at_once_is_an_error_of_our_own():
    """Before the headers go, a failing disk is still a 503, not a cut."""
    file = UnreadableFile()
    file.reads = 1

    with pytest.raises(errors.StorageUnavailable):
        falcon.async_to_sync(_stream, FileReader(file), 0, 3 * 2**20)
    assert file.closed


def a_large_original(tmp_path, **environ):
    """A service holding an original larger than every buffer on the way (a
    JPEG of noise is about as large as its pixels: megabytes, on loopback);
    the service, the image's URL and its length."""
    service = Service(
        tmp_path / 'images', ASGI_LOOK_MAX_UPLOAD_BYTES=str(64 * 2**20), **environ
    ).start()
    noise = PIL.Image.frombytes('RGB', (6000, 4000), os.urandom(6000 * 4000 * 3))
    status, _, body = service.request(
        'POST', '/images', body=corpus.encode(noise, 'JPEG')
    )
    assert status == 201, body
    image = json.loads(body)['image']
    return service, image, int(service.request('HEAD', image)[1]['content-length'])


def started_download(service, image):
    """A connection whose download of ``image`` has started, and that holds
    little of it."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(('127.0.0.1', service.port))
    client.sendall(f'GET {image} HTTP/1.1\r\nHost: x\r\n\r\n'.encode())
    assert client.recv(12) == b'HTTP/1.1 200'
    return client


def test_a_download_whose_client_stops_reading_is_disconnected(tmp_path):
    service, image, length = a_large_original(tmp_path, ASGI_LOOK_SEND_TIMEOUT='0.5')
    stalled = started_download(service, image)
    # NOTE: Reads nothing more for a while; what the kernel held still
    #   comes after, then the end: the server closed it.
    time.sleep(2)
    stalled.settimeout(10)
    received = 12
    while chunk := stalled.recv(65536):
        received += len(chunk)
    stalled.close()
    # NOTE: And it goes on serving.
    assert service.request('GET', '/images')[0] == 200
    service.stop()

    assert received < length
    assert "A download's client took nothing for 0.5 s; it was disconnected" in (
        service.output
    )
    assert 'Traceback' not in service.output
    # NOTE: Logged as what it was: less than the whole, cut short.
    [line] = [
        line for line in service.output.splitlines() if line.startswith('GET /images/')
    ]
    method, path, status, sent, _, _, cut = line.split()
    assert (path, status, cut) == (image, '200', 'cut')
    assert int(sent[:-1]) < length


@pytest.mark.parametrize('spelling', ['{}', '/{}'])
def test_a_download_whose_client_goes_is_not_read_on(tmp_path, spelling):
    service, image, length = a_large_original(tmp_path)
    # NOTE: //images/… is the same image to Falcon's router.
    image = spelling.format(image)
    status, _, whole = service.request('GET', image)
    assert (status, len(whole)) == (200, length)

    gone = started_download(service, image)
    # NOTE: Gone, with megabytes unread: a reset, as a closed browser tab.
    gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\1\0\0\0\0\0\0\0')
    gone.close()

    def logged(output):
        return [
            line for line in output.splitlines() if line.startswith(f'GET {image} ')
        ]

    wait_for(
        lambda: len(logged(service.output_so_far())) == 2,
        what='the cut download to be logged',
    )
    assert service.request('GET', '/images')[0] == 200
    service.stop()

    lines = logged(service.output)
    assert len(lines) == 2, service.output
    assert lines[0].split()[3] == f'{length}B'
    assert not lines[0].endswith(' cut')
    # NOTE: Falcon stopped reading the file where the client went, rather
    #   than read the rest for nobody.
    sent, cut = lines[1].split()[3], lines[1].split()[-1]
    assert cut == 'cut'
    assert int(sent[:-1]) < length
    assert 'Traceback' not in service.output
