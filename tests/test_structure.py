"""The container checks that run before any decoder sees an upload."""

import struct

import pytest

from asgilook import errors
from asgilook import structure

from . import corpus


def _tiff(entries, order='<', big=False, next_ifd=0, planes_at=None):
    """A TIFF of one directory with ``entries`` (tag, type, count, value)."""
    magic = (b'II' if order == '<' else b'MM') + struct.pack(
        order + 'H', 43 if big else 42
    )
    if big:
        header = magic + struct.pack(order + 'HHQ', 8, 0, 16)
        ifd = struct.pack(order + 'Q', len(entries)) + b''.join(
            struct.pack(order + 'HHQ', tag, kind, count)
            + struct.pack(order + ('H' if kind == 3 else 'L'), value).ljust(8, b'\0')
            for tag, kind, count, value in entries
        )
        return header + ifd + struct.pack(order + 'Q', next_ifd)
    header = magic + struct.pack(order + 'L', 8)
    ifd = struct.pack(order + 'H', len(entries)) + b''.join(
        struct.pack(order + 'HHL', tag, kind, count)
        + struct.pack(order + ('H' if kind == 3 else 'L'), value).ljust(4, b'\0')
        for tag, kind, count, value in entries
    )
    return header + ifd + struct.pack(order + 'L', next_ifd)


def _strips(count, rows_per_strip=1, height=64, planar=1, samples=3):
    return [
        (256, 3, 1, 64),
        (257, 4, 1, height),
        (273, 4, count, 0),
        (277, 3, 1, samples),
        (278, 3, 1, rows_per_strip),
        (284, 3, 1, planar),
    ]


@pytest.mark.parametrize('order', ['<', '>'])
@pytest.mark.parametrize('big', [False, True])
def test_strip_counts_in_every_byte_order_and_size(order, big):
    structure.check(_tiff(_strips(64), order, big))
    with pytest.raises(errors.CorruptImage, match='claims 1,000 strips'):
        structure.check(_tiff(_strips(1000), order, big))


def test_separate_planes_need_a_strip_set_each():
    structure.check(_tiff(_strips(3 * 64, planar=2)))
    with pytest.raises(errors.CorruptImage, match='needs 64'):
        structure.check(_tiff(_strips(3 * 64)))


def test_rows_per_strip_divide_the_height():
    structure.check(_tiff(_strips(8, rows_per_strip=8)))
    with pytest.raises(errors.CorruptImage, match='needs 8'):
        structure.check(_tiff(_strips(100, rows_per_strip=8)))


def test_tile_counts():
    tiles = [(256, 4, 1, 64), (257, 4, 1, 64), (322, 3, 1, 16), (323, 3, 1, 16)]
    structure.check(_tiff([*tiles, (324, 4, 16, 0)]))
    with pytest.raises(errors.CorruptImage, match='claims 500 strips or tiles'):
        structure.check(_tiff([*tiles, (324, 4, 500, 0)]))


def test_a_directory_chain_that_loops_ends():
    # NOTE: The directory's "next" points back at itself.
    structure.check(_tiff(_strips(64), next_ifd=8))


@pytest.mark.parametrize(
    'body',
    [
        b'II*\0\xff\xff\xff\x7f',
        b'II*\0\x08\0\0\0\x05\0',
        _tiff(_strips(64))[:-10],
    ],
)
def test_truncated_directories_are_corrupt(body):
    with pytest.raises(errors.CorruptImage, match='malformed directory'):
        structure.check(body)


def test_scans_are_counted_in_jpegs_only():
    structure.check(corpus.scan_bomb(repeats=80))
    with pytest.raises(errors.CorruptImage, match='at most 100 are accepted'):
        structure.check(corpus.scan_bomb(repeats=200))
    structure.check(b'\x89PNG' + b'\xff\xda' * 1000)


def test_jpeg_segments_before_the_image_are_counted():
    image = corpus.encode(corpus.pattern((16, 16)), 'JPEG')
    padded = image[:2] + b'\xff\xe5\x00\x02' * 1001 + image[2:]
    with pytest.raises(errors.CorruptImage, match='more than 1000 segments'):
        structure.check(padded)
    # NOTE: Fill bytes and standalone markers are no segments of their own.
    structure.check(image[:2] + b'\xff\xff\xff\xd0' * 10 + b'\xff\x01' + image[2:])
    structure.check(image[:2] + b'\xff\xe5\x00\x02' * 900 + image[2:])


def test_png_chunks_before_the_image_are_counted():
    image = corpus.encode(corpus.pattern((16, 16)), 'PNG')
    chunk = b'\x00\x00\x00\x00juNk\x00\x00\x00\x00'
    padded = image[:33] + chunk * 1001 + image[33:]
    with pytest.raises(errors.CorruptImage, match='more than 1000 chunks'):
        structure.check(padded)
    structure.check(image[:33] + chunk * 900 + image[33:])
    structure.check(b'\x89PNG\r\n\x1a\n')


def test_a_directory_of_too_many_entries_is_corrupt():
    with pytest.raises(errors.CorruptImage, match='5000 entries'):
        structure.check(b'II*\0\x08\0\0\0' + struct.pack('<H', 5000) + b'\0' * 60000)
