"""Validators, caching headers, ranges, deletes, formats and srcset JSON."""

import base64
import hashlib
import json

import aiofiles
import falcon
import falcon.testing
import PIL.Image
import PIL.ImageDraw
import pytest

from asgilook import imaging
from asgilook.app import create_app

from . import corpus
from .helpers import as_listed
from .helpers import assert_close
from .helpers import decode
from .helpers import FIRST_ID
from .helpers import FIRST_URI
from .helpers import stored_files

THUMBNAIL = f'/thumbnails/{FIRST_ID}/320x180.jpeg'
FORMATS = sorted(imaging.THUMBNAIL_FORMATS)


@pytest.fixture
def uploaded(client, png_image):
    resp = client.simulate_post('/images', body=png_image)
    assert resp.status_code == 201
    return resp.json


def test_original_validators_and_caching_headers(client, uploaded, storage_path):
    resp = client.simulate_get(FIRST_URI)
    digest = hashlib.sha256((storage_path / FIRST_ID).read_bytes()).hexdigest()

    assert resp.headers['ETag'] == f'"{digest[:32]}"'
    assert resp.headers['Last-Modified'] == uploaded['modified']
    assert resp.headers['Cache-Control'] == 'public, max-age=31536000, immutable'
    assert resp.headers['Accept-Ranges'] == 'bytes'
    assert resp.headers['X-Content-Type-Options'] == 'nosniff'
    assert resp.headers['Surrogate-Key'] == FIRST_ID
    assert resp.headers['Cache-Tag'] == FIRST_ID


@pytest.mark.parametrize('ext', FORMATS)
def test_thumbnail_headers(any_client, png_image, ext):
    any_client.simulate_post('/images', body=png_image)
    uri = f'/thumbnails/{FIRST_ID}/320x180.{ext}'

    miss, hit = any_client.simulate_get(uri), any_client.simulate_get(uri)
    assert (miss.headers['X-ASGILook-Cache'], hit.headers['X-ASGILook-Cache']) == (
        'Miss',
        'Hit',
    )
    for resp in (miss, hit):
        assert resp.headers['Content-Type'] == f'image/{ext}'
        assert resp.headers['Cache-Control'] == 'public, max-age=31536000, immutable'
        assert resp.headers['X-Content-Type-Options'] == 'nosniff'
        assert resp.headers['Surrogate-Key'] == FIRST_ID
        assert resp.headers['Cache-Tag'] == FIRST_ID
    for name in ('ETag', 'Last-Modified', 'Content-Length'):
        assert hit.headers[name] == miss.headers[name]
    assert hit.content == miss.content

    image = decode(hit.content)
    assert image.format == ext.upper()
    assert image.size == (320, 180)


def test_every_derived_image_has_its_own_etag(client, uploaded):
    etags = {
        client.simulate_head(uri).headers['ETag']
        for ext in FORMATS
        for uri, _ in _candidates(uploaded['srcset'][ext])
    }
    assert len(etags) == sum(len(_candidates(uploaded['srcset'][e])) for e in FORMATS)


@pytest.mark.parametrize('path', [FIRST_URI, THUMBNAIL, '/images'])
@pytest.mark.parametrize('method', ['GET', 'HEAD'])
def test_if_none_match_is_304(any_client, png_image, path, method):
    any_client.simulate_post('/images', body=png_image)
    first = any_client.simulate_get(path)
    etag = first.headers['ETag']

    # NOTE: Twice: uncached (or streamed), then from the cache where cached.
    for _ in range(2):
        resp = any_client.simulate_request(
            method, path, headers={'If-None-Match': f'"other", {etag}'}
        )
        assert resp.status_code == 304
        assert resp.content == b''
        assert resp.headers['ETag'] == etag
        assert resp.headers['Cache-Control'] == first.headers['Cache-Control']

    stale = any_client.simulate_get(path, headers={'If-None-Match': '"other"'})
    assert stale.status_code == 200
    assert stale.content == first.content


@pytest.mark.parametrize('path', [FIRST_URI, THUMBNAIL])
def test_if_modified_since(any_client, png_image, path):
    modified = any_client.simulate_post('/images', body=png_image).json['modified']
    any_client.simulate_get(path)

    for _ in range(2):
        resp = any_client.simulate_get(path, headers={'If-Modified-Since': modified})
        assert resp.status_code == 304
        assert resp.content == b''

    earlier = falcon.dt_to_http(falcon.http_date_to_dt(modified).replace(year=2000))
    assert (
        any_client.simulate_get(
            path, headers={'If-Modified-Since': earlier}
        ).status_code
        == 200
    )


def test_if_match_mismatch_is_412(client, uploaded):
    resp = client.simulate_get(FIRST_URI, headers={'If-Match': '"not-it"'})
    assert resp.status_code == 412
    assert 'If-Match' in resp.json['description']


def test_304_skips_the_render(renders, client, uploaded):
    etag = client.simulate_head(THUMBNAIL).headers['ETag']
    assert renders == [THUMBNAIL_SIZE]
    del renders[:]

    resp = client.simulate_get(
        f'/thumbnails/{FIRST_ID}/160x90.jpeg', headers={'If-None-Match': '*'}
    )
    assert resp.status_code == 304
    assert (
        client.simulate_get(THUMBNAIL, headers={'If-None-Match': etag}).status_code
        == 304
    )
    assert renders == []


THUMBNAIL_SIZE = (320, 180)


def test_listing_validators(any_client, png_image):
    empty = any_client.simulate_get('/images')
    assert empty.headers['Cache-Control'] == 'no-cache'
    assert empty.headers['Surrogate-Key'] == 'images'

    any_client.simulate_post('/images', body=png_image)
    one = any_client.simulate_get('/images')
    assert one.headers['ETag'] != empty.headers['ETag']
    assert (
        any_client.simulate_get(
            '/images', headers={'If-None-Match': empty.headers['ETag']}
        ).status_code
        == 200
    )

    any_client.simulate_delete(FIRST_URI)
    again = any_client.simulate_get(
        '/images', headers={'If-None-Match': one.headers['ETag']}
    )
    assert again.status_code == 200
    assert again.json == []
    # NOTE: Back to an empty listing, with a new ETag all the same.
    assert again.headers['ETag'] not in (empty.headers['ETag'], one.headers['ETag'])


# NOTE: Ranges on originals.


@pytest.mark.parametrize(
    'header, first, last',
    [('bytes=0-99', 0, 99), ('bytes=100-', 100, None), ('bytes=-50', -50, None)],
)
def test_range(client, uploaded, storage_path, header, first, last):
    stored = (storage_path / FIRST_ID).read_bytes()
    expected = stored[first : None if last is None else last + 1]
    start = first % len(stored)

    resp = client.simulate_get(FIRST_URI, headers={'Range': header})
    assert resp.status_code == 206
    assert resp.content == expected
    assert resp.headers['Content-Length'] == str(len(expected))
    assert resp.headers['Content-Range'] == (
        f'bytes {start}-{start + len(expected) - 1}/{len(stored)}'
    )

    head = client.simulate_head(FIRST_URI, headers={'Range': header})
    assert head.status_code == 206
    assert head.headers['Content-Range'] == resp.headers['Content-Range']
    assert head.content == b''


@pytest.mark.parametrize('whole', [2**30, 1000], ids=['read-whole', 'streamed'])
def test_large_originals_and_ranges(client, config, storage_path, whole):
    config.read_whole_bytes = whole
    client.simulate_post('/images', body=corpus.encode(corpus.noise((600, 400)), 'PNG'))
    stored = (storage_path / FIRST_ID).read_bytes()
    assert len(stored) > 100_000

    resp = client.simulate_get(FIRST_URI)
    assert resp.status_code == 200
    assert resp.content == stored
    for first, last in [(1, len(stored) - 1), (5, 70_000), (len(stored) - 9, None)]:
        header = f'bytes={first}-{"" if last is None else last}'
        resp = client.simulate_get(FIRST_URI, headers={'Range': header})
        assert resp.status_code == 206
        assert resp.content == stored[first : None if last is None else last + 1]


def test_unsatisfiable_range_is_416(client, uploaded, storage_path):
    size = (storage_path / FIRST_ID).stat().st_size
    resp = client.simulate_get(FIRST_URI, headers={'Range': f'bytes={size}-'})
    assert resp.status_code == 416
    assert resp.headers['Content-Range'] == f'bytes */{size}'


def test_ranges_with_huge_numbers_are_never_an_error(client, uploaded, storage_path):
    stored = (storage_path / FIRST_ID).read_bytes()
    for header, status, body in [
        ('bytes=0-' + '9' * 4301, 206, stored),
        ('bytes=-' + '9' * 5000, 206, stored),
        ('bytes=' + '9' * 5000 + '-', 416, b''),
    ]:
        resp = client.simulate_get(FIRST_URI, headers={'Range': header})
        assert (resp.status_code, resp.content[: len(body)]) == (status, body)


@pytest.mark.parametrize('header', ['bytes=0-1,4-5', 'pages=1-2', 'bytes=9-1'])
def test_ignored_ranges_get_everything(client, uploaded, storage_path, header):
    resp = client.simulate_get(FIRST_URI, headers={'Range': header})
    assert resp.status_code == 200
    assert resp.content == (storage_path / FIRST_ID).read_bytes()


def test_if_range(client, uploaded):
    etag = client.simulate_head(FIRST_URI).headers['ETag']
    headers = {'Range': 'bytes=0-9'}

    matching = client.simulate_get(FIRST_URI, headers={**headers, 'If-Range': etag})
    assert matching.status_code == 206
    other = client.simulate_get(FIRST_URI, headers={**headers, 'If-Range': '"x"'})
    assert other.status_code == 200
    dated = client.simulate_get(
        FIRST_URI, headers={**headers, 'If-Range': uploaded['modified']}
    )
    assert dated.status_code == 206


# NOTE: Deleting.


def test_delete(any_client, png_image, storage_path):
    created = any_client.simulate_post('/images', body=png_image).json
    uris = [created['image'], *_all_derived(created)]
    for uri in ['/images', *uris, *uris]:
        assert any_client.simulate_get(uri).status_code == 200

    resp = any_client.simulate_delete(created['image'])
    assert resp.status_code == 204
    assert resp.content == b''

    assert stored_files(storage_path) == []
    assert any_client.simulate_get('/images').json == []
    for uri in uris:
        assert any_client.simulate_get(uri).status_code == 404
        assert any_client.simulate_head(uri).status_code == 404
    assert any_client.simulate_delete(created['image']).status_code == 404


def test_delete_unknown_image(client):
    assert client.simulate_delete(FIRST_URI).status_code == 404


def test_delete_leaves_other_images_alone(client, png_image):
    first = client.simulate_post('/images', body=png_image).json
    second = as_listed(client.simulate_post('/images', body=png_image).json)
    client.simulate_delete(first['image'])

    assert client.simulate_get('/images').json == [second]
    assert client.simulate_get(second['image']).status_code == 200


# NOTE: Modern formats and the JSON a page needs.


def _candidates(srcset):
    candidates = []
    for candidate in srcset.split(', '):
        uri, descriptor = candidate.split(' ')
        assert descriptor.endswith('w')
        candidates.append((uri, int(descriptor[:-1])))
    return candidates


def _all_derived(image):
    return [
        uri
        for ext in FORMATS
        for uri, _ in _candidates(image['srcset'][ext])
        if uri.startswith('/thumbnails/')
    ]


def test_srcset_strings_parse_and_serve(client, uploaded):
    assert (uploaded['width'], uploaded['height']) == (640, 360)
    assert set(uploaded['srcset']) == set(FORMATS)
    assert 'webp' in FORMATS

    for ext, srcset in uploaded['srcset'].items():
        candidates = _candidates(srcset)
        assert [width for _, width in candidates] == [640, 320, 160]
        for uri, width in candidates:
            resp = client.simulate_get(uri)
            assert resp.status_code == 200
            image = decode(resp.content)
            assert image.size == (width, width * 360 // 640)
            assert image.format == ('JPEG' if ext == 'jpeg' else ext.upper())
    assert _candidates(uploaded['srcset']['jpeg'])[0][0] == FIRST_URI
    # NOTE: The tutorial's field is unchanged: .jpeg thumbnails only.
    assert uploaded['thumbnails'] == [
        u for u, _ in _candidates(uploaded['srcset']['jpeg'])[1:]
    ]


@pytest.mark.parametrize(
    'name',
    ['640x360.jpeg', '640x360.png', '320x180.gif', '80x45.webp', '0320x180.webp'],
)
def test_unlisted_derived_images_are_not_found(client, uploaded, name):
    assert client.simulate_get(f'/thumbnails/{FIRST_ID}/{name}').status_code == 404


def test_placeholder_and_colour(client, storage_path):
    image = corpus.pattern((400, 200))
    resp = client.simulate_post('/images', body=corpus.encode(image, 'PNG'))
    placeholder, color = resp.json['placeholder'], resp.json['color']

    assert len(placeholder) < 1000
    prefix = 'data:image/png;base64,'
    assert placeholder.startswith(prefix)
    tiny = decode(base64.b64decode(placeholder[len(prefix) :]))
    assert tiny.size == (16, 8)
    assert_close(tiny.getpixel((2, 2)), corpus.RED, 8)
    assert_close(tiny.getpixel((13, 6)), corpus.BLUE, 8)

    # NOTE: The average of red, green, blue and yellow quadrants.
    assert len(color) == 7
    rgb = tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
    assert_close(rgb, (128, 128, 64), 8)


def test_placeholder_of_a_transparent_image_is_what_was_stored(client):
    # NOTE: Fully transparent magenta around an opaque blue disc: flattened
    #   onto white, the corners are plain white, in the placeholder too.
    image = PIL.Image.new('RGBA', (200, 150), (255, 0, 255, 0))
    PIL.ImageDraw.Draw(image).ellipse([50, 30, 150, 120], fill=(0, 0, 255, 255))
    resp = client.simulate_post('/images', body=corpus.encode(image, 'PNG'))
    data = resp.json['placeholder'].split(',', 1)[1]
    tiny = decode(base64.b64decode(data)).convert('RGB')

    flat = PIL.Image.new('RGB', image.size, (255, 255, 255))
    flat.paste(image, mask=image.getchannel('A'))
    expected = flat.resize(tiny.size, PIL.Image.Resampling.BOX)
    for x in range(tiny.width):
        for y in range(tiny.height):
            assert_close(tiny.getpixel((x, y)), expected.getpixel((x, y)), 2)
    for corner in [(0, 0), (15, 0), (0, 11), (15, 11)]:
        assert_close(tiny.getpixel(corner), (255, 255, 255), 2)


def test_reading_a_range_stops_at_the_end_of_the_file(tmp_path):
    from asgilook.blobs.directory import FileReader
    from asgilook.images import _stream

    path = tmp_path / 'short'
    path.write_bytes(b'0123456789')

    async def read():
        original = FileReader(await aiofiles.open(path, 'rb'))
        return [chunk async for chunk in await _stream(original, 4, 1000)]

    assert falcon.async_to_sync(read) == [b'456789']


def test_derived_sizes_stop_at_what_the_encoder_can_write(client):
    image = corpus.encode(PIL.Image.new('RGB', (17_000, 300), (9, 99, 199)), 'PNG')
    created = client.simulate_post('/images', body=image).json

    webp = _candidates(created['srcset']['webp'])
    assert [width for _, width in webp][:2] == [8500, 4250]
    for uri, _ in webp[:1]:
        assert client.simulate_get(uri).status_code == 200
    assert (
        client.simulate_get(f'/thumbnails/{created["id"]}/17000x300.webp').status_code
        == 404
    )
    assert _candidates(created['srcset']['jpeg'])[0][1] == 17_000


@pytest.mark.parametrize(
    'accept',
    [
        None,
        'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
        'text/html',
        'application/xml',
        'image/avif,image/webp,*/*',
    ],
)
def test_errors_are_json_problems_whatever_is_accepted(client, accept):
    headers = {'Accept': accept} if accept else {}
    for method, path, body, status in [
        ('POST', '/images', b'not an image', 415),
        ('GET', '/images/1a256a8a-2063-46ff-b53f-d04d5bcf5eee.jpeg', None, 404),
        ('GET', '/images?limit=0', None, 400),
        ('GET', '/nowhere', None, 404),
        ('PUT', '/images', None, 405),
    ]:
        resp = client.simulate_request(method, path, body=body, headers=headers)
        assert resp.status_code == status
        assert resp.headers['Content-Type'] == 'application/problem+json'
        problem = json.loads(resp.content)
        assert problem['status'] == status
        assert problem['title']


def test_not_found_says_what_there_is(client, uploaded):
    resp = client.simulate_get('/images/1a256a8a-2063-46ff-b53f-d04d5bcf5eee.jpeg')
    assert resp.json['description'] == (
        'No image has this id; GET /images lists those there are.'
    )
    resp = client.simulate_get(f'/thumbnails/{FIRST_ID}/161x90.jpeg')
    assert resp.json['description'].startswith('No such image, size or format')


def test_errors_carry_nothing_of_what_was_meant_to_be_sent(client, png_image):
    for _ in range(20):
        client.simulate_post('/images', body=png_image)
    headers = {'Accept-Encoding': 'gzip', 'If-Match': '"nope"'}
    for path in ('/images', '/images?limit=2'):
        resp = client.simulate_get(path, headers=headers)
        assert resp.status_code == 412
        assert resp.json['status'] == 412
        for name in ('Content-Encoding', 'ETag', 'Last-Modified', 'Link'):
            assert name not in resp.headers, (path, name)
        assert resp.headers['Cache-Control'] == 'no-store'


def test_a_render_that_fails_is_not_cached_for_a_year(config, renders, png_image):
    config.image_deadline = 0.5
    client = falcon.testing.TestClient(create_app(config))
    thumbnail = client.simulate_post('/images', body=png_image).json['thumbnails'][0]
    renders.delay = 2.0

    resp = client.simulate_get(thumbnail)
    assert resp.status_code == 503
    assert resp.headers['Cache-Control'] == 'no-store'
    assert 'ETag' not in resp.headers


@pytest.mark.parametrize(
    'method, path, headers, status, fragment',
    [
        ('GET', '/nowhere', {}, 404, 'The routes are /images'),
        ('PUT', '/images', {}, 405, 'the Allow header lists'),
        ('GET', FIRST_URI, {'Range': 'bytes=99999999-'}, 416, 'beyond the end'),
    ],
)
def test_every_error_says_what_was_wrong(
    client, uploaded, method, path, headers, status, fragment
):
    resp = client.simulate_request(method, path, headers=headers)
    assert resp.status_code == status
    assert fragment in resp.json['description']
