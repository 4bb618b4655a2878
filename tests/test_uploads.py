"""Every bad upload gets a clear 4xx, and leaves nothing behind."""

import os
import stat

import PIL.features
import PIL.Image
import pytest

from asgilook import imaging

from . import corpus
from .helpers import decode
from .helpers import FIRST_ID


def assert_rejected(client, storage_path, resp, status, *fragments):
    assert resp.status_code == status, resp.text
    assert resp.headers['Content-Type'] == 'application/problem+json'
    assert set(resp.json) == {'title', 'description', 'status'}
    assert resp.json['status'] == status
    for fragment in fragments:
        assert fragment in resp.json['description']
    assert list(storage_path.iterdir()) == []
    assert client.simulate_get('/images').json == []
    assert client.simulate_get(f'/images/{FIRST_ID}.jpeg').status_code == 404


def post(client, body, content_type=None):
    headers = {'Content-Type': content_type} if content_type else {}
    return client.simulate_post('/images', body=body, headers=headers)


def test_empty_body(client, storage_path):
    resp = post(client, b'')
    assert_rejected(client, storage_path, resp, 400, 'empty', 'multipart/form-data')
    assert resp.json['title'] == 'Empty upload'


_ACCEPTED = 'Accepted formats: JPEG, PNG, GIF, WEBP, BMP, TIFF, MPO'


@pytest.mark.parametrize(
    'body',
    [
        pytest.param(b'hello, world\n', id='text'),
        pytest.param(b'<!doctype html><title>x</title>', id='html'),
        pytest.param(
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
            id='svg',
        ),
        pytest.param(b'%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF', id='pdf'),
        pytest.param(b'PK\x03\x04' + b'\x00' * 40, id='zip'),
        pytest.param(b'\x7fELF\x02\x01\x01' + b'\x00' * 60, id='elf'),
        pytest.param(b'\x89PNG\r\n\x1a\n', id='png-signature-only'),
        pytest.param(b'\xff\xd8\xff', id='jpeg-soi-only'),
        pytest.param(b'GIF89a', id='gif-signature-only'),
    ],
)
def test_not_an_image(client, storage_path, body):
    resp = post(client, body, 'image/png')
    assert_rejected(client, storage_path, resp, 415, 'not an image', _ACCEPTED)


@pytest.mark.parametrize('fmt', ['EPS', 'ICO', 'PPM', 'TGA', 'PCX', 'SGI', 'PDF'])
def test_formats_outside_the_allow_list(client, storage_path, fmt):
    body = corpus.encode(corpus.pattern((32, 32)), fmt)
    # NOTE: Pillow itself could open all of these but PDF.
    resp = post(client, body, 'image/jpeg')
    assert_rejected(client, storage_path, resp, 415, _ACCEPTED)


def test_postscript_never_reaches_ghostscript(
    client, storage_path, tmp_path, monkeypatch
):
    spy = tmp_path / 'bin' / 'gs'
    spy.parent.mkdir()
    spy.write_text(f'#!/bin/sh\ntouch {tmp_path}/ghostscript-ran\n')
    spy.chmod(stat.S_IRWXU)
    monkeypatch.setenv('PATH', f'{spy.parent}{os.pathsep}{os.environ["PATH"]}')

    for fmt in ('EPS', 'PS'):
        body = corpus.encode(corpus.pattern((32, 32)), 'EPS')
        if fmt == 'PS':
            body = body.replace(b'EPSF-3.0', b'')
        assert_rejected(client, storage_path, post(client, body), 415, _ACCEPTED)
    assert not (tmp_path / 'ghostscript-ran').exists()


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG', 'GIF', 'BMP', 'TIFF', 'WEBP'])
@pytest.mark.parametrize('keep', [0.2, 0.5, 0.9])
def test_truncated(client, storage_path, fmt, keep):
    data = corpus.encode(corpus.pattern((200, 150)), fmt)
    resp = post(client, data[: int(len(data) * keep)])
    assert_rejected(client, storage_path, resp, 400, 'could not be decoded')
    assert resp.json['title'] == 'Unreadable image'


def test_corrupt_png_chunk(client, storage_path):
    data = bytearray(corpus.encode(corpus.pattern(), 'PNG'))
    idat = data.index(b'IDAT')
    data[idat + 20 : idat + 60] = b'\xff' * 40
    assert_rejected(client, storage_path, post(client, bytes(data)), 400)


@pytest.mark.parametrize(
    'body, expected',
    [
        pytest.param(corpus.png_bomb(100_000, 100_000), [], id='png-10-gigapixels'),
        pytest.param(
            corpus.png_bomb(9000, 9000), ['9000x9000 = 81,000,000'], id='png-81-mpx'
        ),
        pytest.param(corpus.gif_bomb(), [], id='gif-65535-squared'),
    ],
)
def test_decompression_bombs(client, storage_path, body, expected):
    resp = post(client, body)
    assert_rejected(
        client, storage_path, resp, 422, 'the limit is 50,000,000 pixels', *expected
    )


def test_pixel_limit_is_configurable(client, config, storage_path):
    config.max_pixels = 10_000

    ok = post(client, corpus.encode(PIL.Image.new('RGB', (100, 100)), 'PNG'))
    assert ok.status_code == 201
    (storage_path / FIRST_ID).unlink()

    resp = post(client, corpus.encode(PIL.Image.new('RGB', (101, 100)), 'PNG'))
    assert resp.status_code == 422
    assert resp.json['description'] == (
        'The image is 101x100 = 10,100 pixels; the limit is 10,000 pixels.'
    )


def test_body_larger_than_the_limit(client, config, storage_path):
    config.max_upload_bytes = 1000
    body = corpus.encode(corpus.pattern(), 'BMP')
    assert len(body) > 1000

    resp = post(client, body)
    assert_rejected(client, storage_path, resp, 413, 'limit of 1,000 bytes')
    assert resp.json['title'] == 'Upload too large'


def test_body_at_the_limit_is_accepted(client, config):
    body = corpus.encode(corpus.pattern(), 'PNG')
    config.max_upload_bytes = len(body)
    assert post(client, body).status_code == 201


# NOTE: What the client says the upload is, is never believed.


@pytest.mark.parametrize('content_type', [None, 'image/gif', 'text/plain', 'x/y'])
def test_content_type_is_ignored(client, content_type):
    resp = post(client, corpus.encode(corpus.pattern(), 'WEBP'), content_type)
    assert resp.status_code == 201
    assert resp.json['size'] == [96, 64]


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG', 'GIF', 'WEBP', 'BMP', 'TIFF', 'MPO'])
def test_accepted_formats(client, fmt, storage_path):
    image = corpus.pattern((120, 80))
    params = {'save_all': True} if fmt == 'MPO' else {}
    resp = post(client, corpus.encode(image, fmt, **params))

    assert resp.status_code == 201
    assert resp.json['size'] == [120, 80]
    stored = decode((storage_path / FIRST_ID).read_bytes())
    assert stored.format == 'JPEG'
    assert stored.size == (120, 80)


@pytest.mark.skipif(not PIL.features.check('avif'), reason='Pillow without AVIF')
def test_avif_when_pillow_decodes_it(client):
    assert 'AVIF' in imaging.ACCEPTED_FORMATS
    resp = post(client, corpus.encode(corpus.pattern(), 'AVIF'))
    assert resp.status_code == 201
    assert resp.json['size'] == [96, 64]


# NOTE: Forms, as curl -F, http -f and browsers send them.


def test_multipart_one_file(client, storage_path):
    png = corpus.encode(corpus.pattern(), 'PNG')
    body, content_type = corpus.multipart(
        [
            ('title', None, None, b'holiday'),
            ('image', 'photo.jpg', 'image/jpeg', png),
            ('submit', None, None, b'Upload'),
        ]
    )
    resp = post(client, body, content_type)

    assert resp.status_code == 201
    assert resp.json['size'] == [96, 64]
    assert decode((storage_path / FIRST_ID).read_bytes()).size == (96, 64)


def test_multipart_lone_part_without_file_name(client):
    png = corpus.encode(corpus.pattern(), 'PNG')
    body, content_type = corpus.multipart([('image', None, None, png)])
    assert post(client, body, content_type).status_code == 201


@pytest.mark.parametrize(
    'parts, status, fragment',
    [
        ([], 400, 'holds 0'),
        ([('a', None, None, b'x'), ('b', None, None, b'y')], 400, 'holds 0'),
        (
            [('a', 'a.png', None, b'x'), ('b', 'b.png', None, b'y')],
            400,
            'exactly one file',
        ),
        ([('image', 'empty.png', 'image/png', b'')], 400, 'empty'),
        ([('image', 'notes.png', 'image/png', b'just text')], 415, 'not an image'),
    ],
)
def test_multipart_without_one_good_file(client, storage_path, parts, status, fragment):
    body, content_type = corpus.multipart(parts)
    assert_rejected(
        client, storage_path, post(client, body, content_type), status, fragment
    )


@pytest.mark.parametrize(
    'body, content_type',
    [
        (b'--x\r\nContent-Disposition: form-data; name="a"\r\n', 'multipart/form-data'),
        (b'no boundary here', 'multipart/form-data; boundary=zzz'),
        (b'--zzz\r\nbroken', 'multipart/form-data; boundary=zzz'),
    ],
)
def test_malformed_multipart(client, storage_path, body, content_type):
    resp = post(client, body, content_type)
    assert_rejected(client, storage_path, resp, 400, 'multipart/form-data')
    assert resp.json['title'] == 'Malformed form'


def test_sides_longer_than_a_jpeg_can_be(client, config, storage_path):
    config.max_pixels = 10**9
    body = corpus.encode(PIL.Image.new('1', (70_000, 10)), 'PNG')
    resp = post(client, body)
    assert_rejected(client, storage_path, resp, 422, 'no side may be longer than 65500')


def test_multipart_names_that_are_not_utf8(client, storage_path):
    png = corpus.encode(corpus.pattern(), 'PNG')
    for header in (b'filename="caf\xe9.png"', b'name="im\xe9"'):
        body = (
            b'--XyZ\r\nContent-Disposition: form-data; name="image"; '
            + header
            + b'\r\n\r\n'
            + png
            + b'\r\n--XyZ--\r\n'
        )
        resp = post(client, body, 'multipart/form-data; boundary=XyZ')
        assert_rejected(client, storage_path, resp, 400, 'not UTF-8')


def test_tiff_tiles_larger_than_the_image(client, storage_path):
    body = corpus.tiled_tiff((64, 64), (32768, 16384))
    resp = post(client, body)
    assert_rejected(client, storage_path, resp, 422, 'its tiles are far larger')


def test_tiff_strips_of_all_rows_are_fine(client):
    # NOTE: RowsPerStrip 2**32 - 1 is TIFF's own default: one strip for all.
    body = corpus.encode(corpus.pattern(), 'TIFF', tiffinfo={278: 2**32 - 1})
    assert post(client, body).status_code == 201


@pytest.mark.parametrize('tile_type', [2, 5, 7])
def test_tiff_tile_sizes_that_are_not_numbers(client, storage_path, tile_type):
    body = corpus.tiled_tiff((64, 64), (16, 16), tile_type)
    resp = post(client, body)
    assert_rejected(client, storage_path, resp, 400, 'malformed directory')


def test_tiff_strip_bombs_are_refused(client, storage_path):
    resp = post(client, corpus.strip_bomb(100_000))
    assert_rejected(
        client, storage_path, resp, 400, 'claims 100,000 strips or tiles', 'needs 64'
    )


def test_tiff_with_one_strip_per_row_is_fine(client):
    resp = post(client, corpus.strip_bomb(64))
    assert resp.status_code == 201, resp.text
    assert resp.json['size'] == [64, 64]


def test_jpeg_scan_bombs_are_refused(client, storage_path):
    resp = post(client, corpus.scan_bomb(repeats=500))
    assert_rejected(client, storage_path, resp, 400, 'scans', 'at most 100')


def test_progressive_jpegs_with_extra_scans_are_fine(client):
    resp = post(client, corpus.scan_bomb(repeats=20))
    assert resp.status_code == 201, resp.text
