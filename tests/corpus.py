"""Tricky inputs, made at run time so that no binary is committed."""

import io
import random
import struct
import zlib

import PIL.Image
import PIL.ImageCms
import PIL.ImageDraw

# NOTE: Quadrant colours of the test pattern, clockwise from the top left.
RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
YELLOW = (255, 255, 0)


def encode(image, fmt, **params):
    output = io.BytesIO()
    image.save(output, fmt, **params)
    return output.getvalue()


def pattern(size=(96, 64)):
    """An upright pattern that no flip or rotation maps onto itself."""
    width, height = size
    image = PIL.Image.new('RGB', size)
    draw = PIL.ImageDraw.Draw(image)
    half_w, half_h = width // 2, height // 2
    draw.rectangle([(0, 0), (half_w - 1, half_h - 1)], fill=RED)
    draw.rectangle([(half_w, 0), (width - 1, half_h - 1)], fill=GREEN)
    draw.rectangle([(half_w, half_h), (width - 1, height - 1)], fill=BLUE)
    draw.rectangle([(0, half_h), (half_w - 1, height - 1)], fill=YELLOW)
    return image


def quadrant_colours(image):
    """The colours at the centres of an image's quadrants, clockwise."""
    width, height = image.size
    points = [(1, 1), (3, 1), (3, 3), (1, 3)]
    return [image.getpixel((width * x // 4, height * y // 4)) for x, y in points]


# NOTE: What a camera stores for each EXIF orientation: the transform that
#   undoes the one exif_transpose() applies.
_STORED_AS = {
    1: None,
    2: PIL.Image.Transpose.FLIP_LEFT_RIGHT,
    3: PIL.Image.Transpose.ROTATE_180,
    4: PIL.Image.Transpose.FLIP_TOP_BOTTOM,
    5: PIL.Image.Transpose.TRANSPOSE,
    6: PIL.Image.Transpose.ROTATE_90,
    7: PIL.Image.Transpose.TRANSVERSE,
    8: PIL.Image.Transpose.ROTATE_270,
}


def oriented(upright, orientation, fmt='JPEG'):
    """Encode ``upright`` as a camera would: pixels turned, EXIF saying how."""
    method = _STORED_AS[orientation]
    stored = upright.transpose(method) if method is not None else upright.copy()
    exif = PIL.Image.Exif()
    exif[0x0112] = orientation
    if fmt == 'TIFF':
        return encode(stored, fmt, tiffinfo={0x0112: orientation})
    return encode(stored, fmt, exif=exif)


def _chunk(kind, payload):
    body = kind + payload
    return struct.pack('>I', len(payload)) + body + struct.pack('>I', zlib.crc32(body))


def raw_png(width, height, bit_depth, colour_type, pixel, extra_chunks=()):
    """A PNG made by hand, filled with one ``pixel`` (bytes of one sample)."""
    header = struct.pack('>IIBBBBB', width, height, bit_depth, colour_type, 0, 0, 0)
    rows = b''.join(b'\x00' + pixel * width for _ in range(height))
    return (
        b'\x89PNG\r\n\x1a\n'
        + _chunk(b'IHDR', header)
        + b''.join(_chunk(kind, payload) for kind, payload in extra_chunks)
        + _chunk(b'IDAT', zlib.compress(rows))
        + _chunk(b'IEND', b'')
    )


def png_bomb(width, height):
    """A small PNG whose header claims ``width`` x ``height`` pixels."""
    header = struct.pack('>IIBBBBB', width, height, 1, 0, 0, 0, 0)
    # NOTE: A few compressed rows of zeros; the rest is simply missing.
    rows = zlib.compress(b'\x00' * ((width + 7) // 8 + 1) * 4)
    return (
        b'\x89PNG\r\n\x1a\n'
        + _chunk(b'IHDR', header)
        + _chunk(b'IDAT', rows)
        + _chunk(b'IEND', b'')
    )


def gif_bomb():
    """A GIF whose logical screen is 65535 x 65535 pixels."""
    return (
        b'GIF89a'
        + struct.pack('<HHBBB', 65535, 65535, 0x80, 0, 0)
        + b'\x00\x00\x00\xff\xff\xff'
        + b','
        + struct.pack('<HHHHB', 0, 0, 65535, 65535, 0)
        + b'\x02\x02\x44\x01\x00;'
    )


def _s15(value):
    return struct.pack('>i', round(value * 65536))


def _xyz_tag(x, y, z):
    return b'XYZ \x00\x00\x00\x00' + _s15(x) + _s15(y) + _s15(z)


def swapped_primaries_profile():
    """An RGB ICC profile (v2) whose red and blue primaries are swapped.

    Pixels stored as pure red under this profile are blue in sRGB, so a
    service that ignores the profile shows the wrong colour.
    """
    red, green, blue = (
        (0.4361, 0.2225, 0.0139),
        (0.3851, 0.7169, 0.0971),
        (
            0.1431,
            0.0606,
            0.7141,
        ),
    )
    description = b'swapped'
    curve = b'curv\x00\x00\x00\x00' + struct.pack('>IH', 1, round(2.2 * 256)) + b'\0\0'
    tags = [
        (
            b'desc',
            b'desc\x00\x00\x00\x00'
            + struct.pack('>I', len(description) + 1)
            + description
            + b'\x00'
            + b'\x00' * 79,
        ),
        (b'wtpt', _xyz_tag(0.9642, 1.0, 0.8249)),
        (b'rXYZ', _xyz_tag(*blue)),
        (b'gXYZ', _xyz_tag(*green)),
        (b'bXYZ', _xyz_tag(*red)),
        (b'rTRC', curve),
        (b'gTRC', curve),
        (b'bTRC', curve),
        (b'cprt', b'text\x00\x00\x00\x00public domain\x00\x00\x00'),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b'', b''
    for signature, payload in tags:
        payload += b'\x00' * (-len(payload) % 4)
        table += signature + struct.pack('>II', offset + len(data), len(payload))
        data += payload
    size = offset + len(data)
    header = (
        struct.pack('>I', size)
        + b'\x00\x00\x00\x00'
        + bytes([2, 0x10, 0, 0])
        + b'mntrRGB XYZ '
        + b'\x00' * 12
        + b'acsp'
        + b'\x00' * 24
        + struct.pack('>I', 0)
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b'\x00' * 48
    )
    assert len(header) == 128
    return header + struct.pack('>I', len(tags)) + table + data


def srgb_profile():
    return PIL.ImageCms.ImageCmsProfile(PIL.ImageCms.createProfile('sRGB')).tobytes()


def jpeg_with_metadata():
    """A JPEG carrying GPS EXIF, XMP, a comment, an ICC profile and a tail."""
    exif = PIL.Image.Exif()
    exif[0x010F] = 'Camera Maker'
    gps = exif.get_ifd(0x8825)
    gps[1] = 'N'
    gps[2] = (51.0, 30.0, 0.0)
    gps[3] = 'W'
    gps[4] = (0.0, 7.0, 0.0)
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description secret="xmp-secret"/></rdf:RDF></x:xmpmeta>'
    )
    data = encode(
        pattern((192, 128)),
        'JPEG',
        exif=exif,
        xmp=xmp,
        comment=b'comment-secret',
        icc_profile=srgb_profile(),
    )
    return data + b'appended-secret' * 10


def jpeg_segments(data):
    """The markers of a JPEG up to its scan, and what follows its EOI."""
    assert data[:2] == b'\xff\xd8'
    markers, position = [], 2
    while data[position + 1] != 0xDA:
        marker = data[position + 1]
        (length,) = struct.unpack('>H', data[position + 2 : position + 4])
        markers.append((marker, data[position + 4 : position + 2 + length]))
        position += 2 + length
    return markers, data[data.rindex(b'\xff\xd9') + 2 :]


def animated(fmt, colours, size=(40, 30)):
    frames = [PIL.Image.new('RGB', size, colour) for colour in colours]
    return encode(
        frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0
    )


def multipart(parts, boundary='asgilook-test-boundary'):
    """A multipart/form-data body from ``(name, filename, content_type, data)``."""
    body = b''
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f'--{boundary}\r\nContent-Disposition: {disposition}\r\n'.encode()
        if content_type:
            body += f'Content-Type: {content_type}\r\n'.encode()
        body += b'\r\n' + data + b'\r\n'
    body += f'--{boundary}--\r\n'.encode()
    return body, f'multipart/form-data; boundary={boundary}'


def noise(size, seed=7):
    """Random pixels: they compress badly in every format."""
    generator = random.Random(seed)
    return PIL.Image.frombytes('RGB', size, generator.randbytes(size[0] * size[1] * 3))


def tiled_tiff(size, tile, tile_type=4):
    """A little-endian greyscale TIFF of ``size`` made of one ``tile``.

    ``tile_type`` is the TIFF type of the tile's width and length tags: LONG
    (4) as it should be, or what a hostile file may say instead (ASCII 2,
    RATIONAL 5, UNDEFINED 7; a RATIONAL's value is 0/0).
    """
    width, height = size
    payload = b'\0' * 64
    entries = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (277, 3, 1),
        (322, tile_type, 8 if tile_type == 5 else tile[0]),
        (323, tile_type, 8 if tile_type == 5 else tile[1]),
        (324, 4, 8),
        (325, 4, len(payload)),
    ]
    ifd = struct.pack('<H', len(entries)) + b''.join(
        struct.pack('<HHII', tag, kind, 1, value) for tag, kind, value in entries
    )
    return b'II*\0' + struct.pack('<I', 8 + len(payload)) + payload + ifd + b'\0' * 4


def scan_bomb(size=(256, 256), repeats=500):
    """A progressive JPEG whose last scan is repeated ``repeats`` times.

    Every repeat is a valid scan that refines what the last one did: each
    one costs the decoder a pass over every block.
    """
    data = encode(pattern(size), 'JPEG', progressive=True, quality=90)
    last_scan = data.rindex(b'\xff\xda')
    body, end = data[last_scan:-2], data[-2:]
    assert end == b'\xff\xd9'
    return data[:-2] + body * repeats + end


def strip_bomb(strips, size=(64, 64)):
    """An uncompressed greyscale TIFF of ``size`` that claims ``strips`` strips,
    every one pointing at the same row."""
    width, height = size
    entries = 10
    offsets_at = 8 + 2 + 12 * entries + 4
    counts_at = offsets_at + 4 * strips
    pixels_at = counts_at + 4 * strips
    ifd = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, strips, offsets_at),
        (277, 3, 1, 1),
        (278, 4, 1, 1),
        (279, 4, strips, counts_at),
        (284, 3, 1, 1),
    ]
    return b''.join(
        [
            b'II*\0',
            struct.pack('<IH', 8, entries),
            *(struct.pack('<HHII', *entry) for entry in ifd),
            b'\0' * 4,
            struct.pack(f'<{strips}I', *[pixels_at] * strips),
            struct.pack(f'<{strips}I', *[width] * strips),
            b'\x80' * width,
        ]
    )
