"""Faults that are not the code's: one line for each, never a traceback."""

import errno
import logging

import falcon
import pytest

from asgilook import errors
from asgilook.blobs.directory import FileReader
from asgilook.images import _read

from .helpers import client_over_failing_blobs

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
        async for chunk in _read(FileReader(file), 0, 3 * 2**20):
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
