import io

import PIL.Image
import pytest

from .helpers import assert_quadrants
from .helpers import decode
from .helpers import FIRST_ID
from .helpers import QUADRANTS


def test_missing_in_store(client):
    resp = client.simulate_get(
        '/thumbnails/1a256a8a-2063-46ff-b53f-d04d5bcf5eee/80x80.jpeg'
    )
    assert resp.status_code == 404


def test_thumbnails(client, png_image, image_size):
    resp1 = client.simulate_post('/images', body=png_image)
    assert resp1.status_code == 201

    thumbnails = resp1.json['thumbnails']
    assert set(thumbnails) == {
        '/thumbnails/36562622-48e5-4a61-be67-e426b11821ed/320x180.jpeg',
        '/thumbnails/36562622-48e5-4a61-be67-e426b11821ed/160x90.jpeg',
    }

    for uri in thumbnails:
        resp = client.simulate_get(uri)
        assert resp.headers['Content-Type'] == 'image/jpeg'
        assert resp.headers['X-ASGILook-Cache'] == 'Miss'
        assert image_size(resp.content) in ((320, 180), (160, 90))


def test_missing_size(client, png_image):
    client.simulate_post('/images', body=png_image)

    resp = client.simulate_get(
        '/thumbnails/36562622-48e5-4a61-be67-e426b11821ed/480x270.jpeg'
    )
    assert resp.status_code == 404


def test_thumbnail_caching(client, png_image):
    client.simulate_post('/images', body=png_image)

    for retry in range(4):
        resp = client.simulate_get(
            '/thumbnails/36562622-48e5-4a61-be67-e426b11821ed/160x90.jpeg'
        )
        assert resp.status_code == 200
        assert resp.headers.get('X-ASGILook-Cache') == ('Miss' if retry == 0 else 'Hit')


@pytest.mark.parametrize(
    'size, expected',
    [
        ((640, 360), ['320x180', '160x90']),
        ((256, 128), ['128x64']),
        ((127, 1000), []),
        ((4000, 129), ['2000x64']),
        ((1025, 1025), ['512x512', '256x256', '128x128', '64x64']),
    ],
)
def test_power_of_two_sizes_down_to_the_minimum(client, size, expected):
    resp = client.simulate_post('/images', body=_png(size))

    prefix = f'/thumbnails/{FIRST_ID}/'
    assert resp.json['thumbnails'] == [f'{prefix}{name}.jpeg' for name in expected]
    for uri in resp.json['thumbnails']:
        width, height = uri[len(prefix) : -len('.jpeg')].split('x')
        assert decode(client.simulate_get(uri).content).size == (
            int(width),
            int(height),
        )


def test_thumbnail_pixels(client, quadrants_png):
    client.simulate_post('/images', body=quadrants_png)

    resp = client.simulate_get(f'/thumbnails/{FIRST_ID}/128x64.jpeg')
    image = decode(resp.content)
    assert image.format == 'JPEG'
    assert image.mode == 'RGB'
    assert image.size == (128, 64)
    assert_quadrants(image, QUADRANTS)


def test_upper_case_uuid(client, png_image):
    client.simulate_post('/images', body=png_image)

    lower = client.simulate_get(f'/thumbnails/{FIRST_ID}/160x90.jpeg')
    upper = client.simulate_get(f'/thumbnails/{FIRST_ID.upper()}/160x90.jpeg')
    assert upper.status_code == 200
    assert upper.headers['Content-Type'] == 'image/jpeg'
    assert upper.content == lower.content


@pytest.mark.parametrize(
    'name',
    [
        '0160x90',
        '160x090',
        '+160x90',
        '161x90',
        '640x360',
        '80x45',
        '0x0',
        '100000x100000',
        '160X90',
    ],
)
def test_only_listed_sizes_are_served(client, png_image, name):
    client.simulate_post('/images', body=png_image)

    assert client.simulate_get(f'/thumbnails/{FIRST_ID}/{name}.jpeg').status_code == 404
    assert (
        client.simulate_head(f'/thumbnails/{FIRST_ID}/{name}.jpeg').status_code == 404
    )


def test_head_answers_like_get(client, png_image):
    client.simulate_post('/images', body=png_image)
    uri = f'/thumbnails/{FIRST_ID}/320x180.jpeg'

    head1 = client.simulate_head(uri)
    get = client.simulate_get(uri)
    head2 = client.simulate_head(uri)

    assert get.headers['X-ASGILook-Cache'] == 'Hit'
    for head in (head1, head2):
        assert head.status_code == 200
        assert head.content == b''
        assert head.headers['Content-Type'] == 'image/jpeg'
        assert head.headers['Content-Length'] == str(len(get.content))


def _png(size):
    output = io.BytesIO()
    PIL.Image.new('RGB', size, (10, 200, 30)).save(output, 'PNG')
    return output.getvalue()
