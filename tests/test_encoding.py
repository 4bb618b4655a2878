"""Compressed JSON: what a client accepts, and what it gets."""

import gzip
import json

import pytest

from asgilook import encoding

from .helpers import as_listed
from .helpers import FIRST_ID

GZIP = {'Accept-Encoding': 'gzip, deflate, br'}


@pytest.mark.parametrize(
    'header, expected',
    [
        (None, None),
        ('', None),
        ('gzip', 'gzip'),
        ('GZip', 'gzip'),
        ('x-gzip', 'gzip'),
        ('deflate, gzip;q=0.5', 'gzip'),
        ('gzip;level=1', 'gzip'),
        ('*', 'gzip'),
        ('br, *;q=0.1', 'gzip'),
        ('gzip;q=0', None),
        ('gzip;q=0, *', None),
        ('*;q=0', None),
        ('gzip;q=soon', None),
        ('br, zstd', None),
        ('identity', None),
    ],
)
def test_negotiate(header, expected):
    assert encoding.negotiate(header) == expected


def test_small_bodies_are_not_worth_it():
    assert encoding.encode(b'[]', 'gzip') == (b'[]', None)
    big = b'{"a": 1}' * 200
    data, coding = encoding.encode(big, 'gzip')
    assert coding == 'gzip'
    assert gzip.decompress(data) == big
    # NOTE: The same bytes every time: the ETag is strong.
    assert encoding.encode(big, 'gzip')[0] == data


def _upload(client, png_image, count):
    return [
        as_listed(client.simulate_post('/images', body=png_image).json)
        for _ in range(count)
    ]


def test_listings_are_gzipped_when_accepted(any_client, png_image):
    created = _upload(any_client, png_image, 3)

    plain = any_client.simulate_get('/images')
    packed = any_client.simulate_get('/images', headers=GZIP)
    assert 'Content-Encoding' not in plain.headers
    assert packed.headers['Content-Encoding'] == 'gzip'
    for resp in (plain, packed):
        assert resp.headers['Vary'] == 'Accept-Encoding'
        assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert json.loads(gzip.decompress(packed.content)) == plain.json == created
    assert len(packed.content) * 3 < len(plain.content)
    assert packed.headers['ETag'] == plain.headers['ETag'][:-1] + '-gzip"'

    # NOTE: Compressed once, then served from the cache as it is.
    again = any_client.simulate_get('/images', headers=GZIP)
    assert again.headers['X-ASGILook-Cache'] == 'Hit'
    assert again.content == packed.content
    head = any_client.simulate_head('/images', headers=GZIP)
    assert head.headers['Content-Length'] == str(len(packed.content))
    plain_again = any_client.simulate_get('/images')
    assert plain_again.headers['X-ASGILook-Cache'] == 'Hit'
    assert plain_again.content == plain.content

    for etag in (packed.headers['ETag'], plain.headers['ETag']):
        resp = any_client.simulate_get(
            '/images', headers={**GZIP, 'If-None-Match': etag}
        )
        assert resp.status_code == (304 if etag == packed.headers['ETag'] else 200)


def test_a_changed_listing_is_not_served_compressed_from_the_cache(
    any_client, png_image
):
    _upload(any_client, png_image, 3)
    any_client.simulate_get('/images', headers=GZIP)
    _upload(any_client, png_image, 1)
    resp = any_client.simulate_get('/images', headers=GZIP)
    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert len(json.loads(gzip.decompress(resp.content))) == 4


def test_small_json_and_images_are_sent_as_they_are(client, png_image):
    empty = client.simulate_get('/images', headers=GZIP)
    assert 'Content-Encoding' not in empty.headers
    assert empty.json == []

    created = client.simulate_post('/images', body=png_image, headers=GZIP)
    assert created.status_code == 201
    assert created.headers['Content-Encoding'] == 'gzip'
    image = json.loads(gzip.decompress(created.content))
    assert image['id'] == FIRST_ID

    for uri in (image['image'], image['thumbnails'][0]):
        resp = client.simulate_get(uri, headers=GZIP)
        assert resp.status_code == 200
        assert 'Content-Encoding' not in resp.headers
        assert resp.content[:2] == b'\xff\xd8'
