"""Cheap checks of an upload's container, before any decoder sees it.

Some files are small, valid and ruinously slow to decode: a progressive JPEG
that repeats one scan thousands of times, a TIFF that claims millions of
strips for a few rows, or tiles far larger than the image. Pillow would
spend seconds (and, for TIFF, its setup alone) before any limit of ours
applies; these functions read only headers, in microseconds.
"""

import math
import struct

from . import errors

# NOTE: Encoders write at most a few dozen scans (jpegtran's progressive
#   script: 10; mozjpeg's search: about 20).
MAX_SCANS = 100
MAX_SEGMENTS = 1000
# NOTE: Strips or tiles beyond what the dimensions need, before a TIFF is
#   taken for crafted: generous, as writers round differently.
_SPARE_BLOCKS = 64
_MAX_IFDS = 1000
# NOTE: Writers put a few dozen tags in a directory.
_MAX_ENTRIES = 4096

_STRIP_OFFSETS, _TILE_OFFSETS = 273, 324
_WIDTH, _HEIGHT, _SAMPLES, _ROWS_PER_STRIP = 256, 257, 277, 278
_PLANAR, _TILE_WIDTH, _TILE_LENGTH = 284, 322, 323


def check(data: bytes) -> None:
    """Raise a 4xx domain error for a container built to be slow to decode."""
    if data[:2] == b'\xff\xd8':
        _check_jpeg(data)
    elif data[:8] == b'\x89PNG\r\n\x1a\n':
        _check_png(data)
    elif data[:4] in (b'II*\0', b'MM\0*', b'II+\0', b'MM\0+'):
        _check_tiff(data)


def _check_jpeg(data):
    _count_segments(data)
    _count_scans(data)


def _count_segments(data):
    # NOTE: Pillow reads every segment before the first scan, in Python:
    #   millions of empty ones take seconds and a gigabyte.
    position = 2
    for _ in range(MAX_SEGMENTS):
        while data[position + 1 : position + 2] == b'\xff':
            position += 1
        marker = data[position + 1 : position + 2]
        if marker in (b'', b'\xda') or data[position : position + 1] != b'\xff':
            return
        if b'\xd0' <= marker <= b'\xd7' or marker == b'\x01':
            position += 2
        else:
            position += 2 + int.from_bytes(data[position + 2 : position + 4], 'big')
    raise errors.CorruptImage(
        f'The JPEG image has more than {MAX_SEGMENTS} segments before its image '
        'data; encoders write a few dozen.'
    )


def _check_png(data):
    # NOTE: Pillow reads every chunk before the first IDAT, in Python.
    position = 8
    for _ in range(MAX_SEGMENTS):
        kind = data[position + 4 : position + 8]
        if kind in (b'', b'IDAT'):
            return
        position += 12 + int.from_bytes(data[position : position + 4], 'big')
    raise errors.CorruptImage(
        f'The PNG image has more than {MAX_SEGMENTS} chunks before its image data; '
        'encoders write a few dozen.'
    )


def _count_scans(data):
    # NOTE: An upper bound: FF DA can only stand in entropy-coded data as a
    #   marker (an FF byte there is stuffed), though it may be in metadata.
    scans = data.count(b'\xff\xda')
    if scans > MAX_SCANS:
        raise errors.CorruptImage(
            f'The JPEG image has {scans:,} scans; encoders write at most a few '
            f'dozen, and at most {MAX_SCANS} are accepted.'
        )


def _check_tiff(data):
    try:
        for tags in _ifds(data):
            _check_blocks(tags)
    except (struct.error, ValueError, ZeroDivisionError) as ex:
        raise errors.CorruptImage(
            f'The TIFF image has a malformed directory ({ex}).'
        ) from ex


def _ifds(data):
    """Yield each image directory of a TIFF as {tag: (type, count, value)}."""
    order = '<' if data[:2] == b'II' else '>'
    big = data[2:4] in (b'+\0', b'\0+')
    offset_format = order + ('Q' if big else 'L')
    entry = struct.Struct(order + ('HHQ8s' if big else 'HHL4s'))
    count_format = order + ('Q' if big else 'H')
    offset = struct.unpack_from(offset_format, data, 8 if big else 4)[0]
    seen = set()
    while offset and offset not in seen and len(seen) < _MAX_IFDS:
        seen.add(offset)
        (entries,) = struct.unpack_from(count_format, data, offset)
        start = offset + struct.calcsize(count_format)
        tags = {}
        if entries > _MAX_ENTRIES:
            raise ValueError(f'{entries} entries in one directory')
        for number in range(entries):
            tag, kind, count, value = entry.unpack_from(
                data, start + number * entry.size
            )
            tags[tag] = (kind, count, _inline(order, kind, count, value))
        yield tags
        offset = struct.unpack_from(offset_format, data, start + entries * entry.size)[
            0
        ]


def _inline(order, kind, count, value):
    # NOTE: Only single SHORT (3) and LONG (4) values are read; anything else
    #   (an ASCII or RATIONAL where a number belongs) counts as absent.
    if count != 1:
        return None
    if kind == 3:
        return struct.unpack_from(order + 'H', value)[0]
    if kind == 4:
        return struct.unpack_from(order + 'L', value)[0]
    return None


def _check_blocks(tags):
    width = _value(tags, _WIDTH) or 1
    height = _value(tags, _HEIGHT) or 1
    planes = (_value(tags, _SAMPLES) or 1) if _value(tags, _PLANAR) == 2 else 1
    if _TILE_OFFSETS in tags or _TILE_WIDTH in tags or _TILE_LENGTH in tags:
        tile_width, tile_length = _value(tags, _TILE_WIDTH), _value(tags, _TILE_LENGTH)
        if not tile_width or not tile_length:
            raise ValueError('tiles without a width and length')
        # NOTE: libtiff decodes whole tiles, whatever the image's own size.
        if tile_width * tile_length > max(4 * width * height, 2**20):
            raise errors.TooManyPixels(
                f'The TIFF image is {width}x{height}, but its tiles are far '
                'larger than that; they would be decoded whole.'
            )
        needed = math.ceil(width / tile_width) * math.ceil(height / tile_length)
        blocks = tags.get(_TILE_OFFSETS, (0, 0, 0))[1]
    else:
        rows = _value(tags, _ROWS_PER_STRIP) or height
        needed = math.ceil(height / rows)
        blocks = tags.get(_STRIP_OFFSETS, (0, 0, 0))[1]
    if blocks > needed * planes + _SPARE_BLOCKS:
        raise errors.CorruptImage(
            f'The TIFF image is {width}x{height} and claims {blocks:,} strips or '
            f'tiles where it needs {needed * planes:,}; it looks made to be slow '
            'to read.'
        )


def _value(tags, tag):
    return tags.get(tag, (None, None, None))[2]
