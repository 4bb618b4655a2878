"""What pages in a browser need: the gallery's files, absolute URLs, and CORS."""

import json

import falcon.testing
import pytest

from asgilook.app import create_app

from .helpers import FIRST_ID

PUBLIC = 'https://img.example.com/pics'
PAGE_ORIGIN = 'https://app.example.com'


def test_root_redirects_to_the_gallery(client):
    resp = client.simulate_get('/')
    assert resp.status_code == 302
    assert resp.headers['Location'] == '/gallery'
    assert client.simulate_head('/').status_code == 302


def test_the_gallery_page_and_its_files(client):
    page = client.simulate_get('/gallery')
    assert page.status_code == 200
    assert page.headers['Content-Type'] == 'text/html; charset=utf-8'
    assert page.headers['Cache-Control'] == 'no-cache'
    assert "default-src 'self'" in page.headers['Content-Security-Policy']
    assert '<script src="gallery/gallery.js" defer></script>' in page.text
    for name, media_type in [
        ('gallery.js', 'text/javascript'),
        ('gallery.css', 'text/css'),
    ]:
        asset = client.simulate_get(f'/gallery/{name}')
        assert asset.status_code == 200
        assert asset.headers['Content-Type'] == f'{media_type}; charset=utf-8'
        assert asset.headers['X-Content-Type-Options'] == 'nosniff'
        assert (
            'X-ASGILook-Cache' not in asset.headers
            or asset.headers['X-ASGILook-Cache'] == 'Bypass'
        )
    head = client.simulate_head('/gallery/gallery.js')
    assert head.status_code == 200
    assert head.content == b''


def test_the_gallery_is_revalidated_with_its_etag(client):
    etag = client.simulate_get('/gallery').headers['ETag']
    again = client.simulate_get('/gallery', headers={'If-None-Match': etag})
    assert again.status_code == 304
    assert again.content == b''
    changed = client.simulate_get('/gallery', headers={'If-Match': '"other"'})
    assert changed.status_code == 412


@pytest.mark.parametrize(
    'path',
    [
        '/gallery/index.html',
        '/gallery/nothing.js',
        '/gallery/../asgilook/app.py',
        '/gallery/gallery.js/x',
        '/images/gallery.js',
        '/events/x',
        '/nowhere',
    ],
)
def test_unknown_paths_are_still_404_problems(client, path):
    resp = client.simulate_get(path)
    assert resp.status_code == 404
    assert resp.headers['Content-Type'] == 'application/problem+json'


def test_the_gallery_is_never_cached_in_redis(client, fake_redis_server):
    import fakeredis

    for _ in range(2):
        assert client.simulate_get('/gallery').status_code == 200
    keys = fakeredis.FakeRedis(server=fake_redis_server).keys('asgilook:*')
    assert not [key for key in keys if b'gallery' in key or b'events' in key]


@pytest.fixture
def public_client(config):
    config.public_url = PUBLIC
    return falcon.testing.TestClient(create_app(config))


def _urls(image):
    yield image['image']
    yield from image['thumbnails']
    for srcset in image['srcset'].values():
        for candidate in srcset.split(', '):
            yield candidate.split(' ')[0]


def test_public_url_makes_every_url_absolute(public_client, png_image):
    created = public_client.simulate_post('/images', body=png_image)
    assert created.status_code == 201
    assert created.headers['Location'] == f'{PUBLIC}/images/{FIRST_ID}.jpeg'
    for _ in range(2):
        listed = public_client.simulate_get('/images')
        for url in _urls(listed.json[0]):
            assert url.startswith(f'{PUBLIC}/'), url
    assert created.json == {
        **listed.json[0],
        'delete_token': created.json['delete_token'],
    }
    public_client.simulate_post('/images', body=png_image)
    paged = public_client.simulate_get('/images', params={'limit': 1})
    assert paged.headers['Link'].startswith(f'<{PUBLIC}/images?limit=1&cursor=')
    # NOTE: Every URL the JSON gives out answers, by its path, on this service.
    for url in _urls(listed.json[0]):
        path = url.removeprefix('https://img.example.com/pics')
        assert public_client.simulate_get(path).status_code == 200, path
    assert public_client.simulate_get('/').headers['Location'] == f'{PUBLIC}/gallery'
    policy = public_client.simulate_get('/gallery').headers['Content-Security-Policy']
    assert "img-src 'self' data: https://img.example.com;" in policy


def test_a_new_public_url_is_never_served_from_old_cache_entries(
    config, storage_path, png_image
):
    # NOTE: A restart with the new setting: the same index, the same Redis.
    config.database_url = f'sqlite:///{storage_path}/index.db'
    before = falcon.testing.TestClient(create_app(config))
    before.simulate_post('/images', body=png_image)
    old = before.simulate_get('/images')
    assert before.simulate_get('/images').headers['X-ASGILook-Cache'] == 'Hit'

    config.public_url = PUBLIC
    after = falcon.testing.TestClient(create_app(config))
    resp = after.simulate_get('/images')
    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert resp.headers['ETag'] != old.headers['ETag']
    assert resp.json[0]['image'].startswith(PUBLIC)
    stale = after.simulate_get(
        '/images', headers={'If-None-Match': old.headers['ETag']}
    )
    assert stale.status_code == 200
    assert after.simulate_get('/images').json == resp.json


@pytest.fixture
def cors_client(config):
    config.cors_origins = (PAGE_ORIGIN,)
    return falcon.testing.TestClient(create_app(config))


def test_no_cors_headers_unless_configured(client, png_image):
    resp = client.simulate_get('/images', headers={'Origin': PAGE_ORIGIN})
    assert 'Access-Control-Allow-Origin' not in resp.headers
    assert 'Origin' not in resp.headers.get('Vary', '')


@pytest.mark.parametrize(
    ('path', 'method'), [('/images', 'POST'), (f'/images/{FIRST_ID}.jpeg', 'DELETE')]
)
def test_preflight_for_uploads_and_deletes(cors_client, path, method):
    resp = cors_client.simulate_options(
        path,
        headers={
            'Origin': PAGE_ORIGIN,
            'Access-Control-Request-Method': method,
            'Access-Control-Request-Headers': 'authorization,idempotency-key',
        },
    )
    assert resp.status_code == 200
    assert resp.headers['Access-Control-Allow-Origin'] == PAGE_ORIGIN
    assert method in resp.headers['Access-Control-Allow-Methods']
    assert (
        resp.headers['Access-Control-Allow-Headers'] == 'authorization,idempotency-key'
    )
    assert 'Origin' in resp.headers['Vary']


def test_cross_origin_answers_expose_what_clients_read(cors_client, png_image):
    headers = {'Origin': PAGE_ORIGIN}
    created = cors_client.simulate_post('/images', body=png_image, headers=headers)
    assert created.status_code == 201
    exposed = created.headers['Access-Control-Expose-Headers'].split(', ')
    for name in ('Location', 'ETag', 'Link', 'X-ASGILook-Cache', 'Retry-After'):
        assert name in exposed
    for _ in range(2):
        listed = cors_client.simulate_get('/images', headers=headers)
        assert listed.headers['Access-Control-Allow-Origin'] == PAGE_ORIGIN
        assert listed.headers['Vary'] == 'Accept-Encoding, Origin'
    # NOTE: A cached answer carries no other origin's permission.
    plain = cors_client.simulate_get('/images')
    assert plain.headers['X-ASGILook-Cache'] == 'Hit'
    assert 'Access-Control-Allow-Origin' not in plain.headers
    other = cors_client.simulate_get(
        '/images', headers={'Origin': 'https://evil.example'}
    )
    assert 'Access-Control-Allow-Origin' not in other.headers
    # NOTE: Errors too, so that the page can show the service's reason.
    refused = cors_client.simulate_post('/images', body=b'x', headers=headers)
    assert refused.status_code == 415
    assert refused.headers['Access-Control-Allow-Origin'] == PAGE_ORIGIN
    assert json.loads(refused.text)['title'] == 'Unsupported image format'


def test_any_origin(config):
    config.cors_origins = '*'
    client = falcon.testing.TestClient(create_app(config))
    resp = client.simulate_get('/events/none', headers={'Origin': PAGE_ORIGIN})
    assert resp.headers['Access-Control-Allow-Origin'] == '*'
    assert 'Vary' not in resp.headers
