"""Who may upload and delete: API tokens, delete tokens, and the open default."""

import hashlib
import logging
import sqlite3

import falcon.testing
import pytest

from asgilook.app import create_app

from .helpers import as_listed
from .helpers import stored_files

TOKEN = 'operator-token-0123456789'
OTHER_TOKEN = 'second-operator-token-42'


def _bearer(token):
    return {'Authorization': f'Bearer {token}'}


@pytest.fixture
def protected(config):
    config.api_tokens = (TOKEN, OTHER_TOKEN)
    return falcon.testing.TestClient(create_app(config))


@pytest.fixture
def public_uploads(config):
    config.api_tokens = (TOKEN,)
    config.anonymous_uploads = True
    return falcon.testing.TestClient(create_app(config))


def _assert_problem(resp, status, title):
    assert resp.status_code == status
    assert resp.headers['Content-Type'] == 'application/problem+json'
    assert resp.json['title'] == title
    assert resp.json['status'] == status


def test_without_tokens_anyone_may_upload_and_delete(client, png_image):
    created = client.simulate_post('/images', body=png_image)
    assert created.status_code == 201

    assert client.simulate_delete(created.json['image']).status_code == 204
    assert client.simulate_get(created.json['image']).status_code == 404


@pytest.mark.parametrize(
    'headers',
    [
        {},
        {'Authorization': ''},
        {'Authorization': 'Bearer'},
        {'Authorization': 'Bearer    '},
        {'Authorization': f'Basic {TOKEN}'},
    ],
    ids=['none', 'empty', 'bare-scheme', 'blank', 'basic'],
)
def test_an_upload_without_a_bearer_token_is_401(
    protected, png_image, storage_path, headers
):
    resp = protected.simulate_post('/images', body=png_image, headers=headers)

    _assert_problem(resp, 401, 'Token needed')
    assert resp.headers['WWW-Authenticate'] == 'Bearer realm="asgilook"'
    assert 'Authorization: Bearer <token>' in resp.json['description']
    assert resp.headers['Cache-Control'] == 'no-store'
    assert protected.simulate_get('/images').json == []
    assert [
        name for name in stored_files(storage_path) if 'asgilook.db' not in name
    ] == []


def test_an_upload_with_a_wrong_token_is_403(protected, png_image):
    resp = protected.simulate_post(
        '/images', body=png_image, headers=_bearer(TOKEN + 'x')
    )

    _assert_problem(resp, 403, 'Not allowed')
    assert 'WWW-Authenticate' not in resp.headers
    assert protected.simulate_get('/images').json == []


@pytest.mark.parametrize('token', [TOKEN, OTHER_TOKEN])
def test_every_api_token_may_upload_and_delete(protected, png_image, token):
    headers = {'Authorization': f'bearer  {token} '}
    created = protected.simulate_post('/images', body=png_image, headers=headers)
    assert created.status_code == 201

    resp = protected.simulate_delete(created.json['image'], headers=headers)
    assert resp.status_code == 204
    assert protected.simulate_get(created.json['image']).status_code == 404


def test_reads_stay_public(protected, png_image):
    created = protected.simulate_post(
        '/images', body=png_image, headers=_bearer(TOKEN)
    ).json

    assert protected.simulate_get('/images').json == [as_listed(created)]
    assert protected.simulate_get(created['image']).status_code == 200
    assert protected.simulate_get(created['thumbnails'][0]).status_code == 200


def test_deletes_need_a_token(protected, png_image):
    created = protected.simulate_post(
        '/images', body=png_image, headers=_bearer(TOKEN)
    ).json
    listing = protected.simulate_get('/images')

    resp = protected.simulate_delete(created['image'])
    _assert_problem(resp, 401, 'Token needed')
    assert resp.headers['WWW-Authenticate'] == 'Bearer realm="asgilook"'

    resp = protected.simulate_delete(created['image'], headers=_bearer('a' * 32))
    _assert_problem(resp, 403, 'Not allowed')
    assert 'delete_token' in resp.json['description']

    assert protected.simulate_get(created['image']).status_code == 200
    # NOTE: And the cached listing still tells the truth.
    again = protected.simulate_get('/images')
    assert again.json == listing.json
    assert again.headers['X-ASGILook-Cache'] == 'Hit'


def test_an_images_delete_token_deletes_that_image_only(protected, png_image):
    first, second = (
        protected.simulate_post('/images', body=png_image, headers=_bearer(TOKEN)).json
        for _ in range(2)
    )

    resp = protected.simulate_delete(
        first['image'], headers=_bearer(second['delete_token'])
    )
    _assert_problem(resp, 403, 'Not allowed')

    resp = protected.simulate_delete(
        first['image'], headers=_bearer(first['delete_token'])
    )
    assert resp.status_code == 204
    assert protected.simulate_get(first['image']).status_code == 404
    assert protected.simulate_get('/images').json == [as_listed(second)]


def test_a_delete_of_an_unknown_image(protected):
    uri = '/images/9a9b9c9d-0000-4000-8000-000000000000.jpeg'

    _assert_problem(protected.simulate_delete(uri), 401, 'Token needed')
    assert protected.simulate_delete(uri, headers=_bearer(TOKEN)).status_code == 404
    assert protected.simulate_delete(uri, headers=_bearer('b' * 32)).status_code == 404


def test_anonymous_uploads_with_protected_deletes(public_uploads, png_image):
    created = public_uploads.simulate_post('/images', body=png_image)
    assert created.status_code == 201
    image = created.json['image']

    _assert_problem(public_uploads.simulate_delete(image), 401, 'Token needed')
    resp = public_uploads.simulate_delete(
        image, headers=_bearer(created.json['delete_token'])
    )
    assert resp.status_code == 204


def test_delete_tokens_are_unique_and_shown_only_to_the_uploader(client, png_image):
    created = [client.simulate_post('/images', body=png_image).json for _ in range(3)]
    tokens = {image['delete_token'] for image in created}

    assert len(tokens) == 3
    for image in created:
        assert 'delete_token' not in client.simulate_get('/images').text
        assert 'delete_token' not in client.simulate_head(image['image']).headers


@pytest.mark.parametrize('database_url', ['sqlite'], indirect=True)
def test_only_a_hash_of_the_delete_token_is_kept(config, database_url, png_image):
    config.database_url = database_url
    config.api_tokens = (TOKEN,)
    client = falcon.testing.TestClient(create_app(config))
    created = client.simulate_post('/images', body=png_image, headers=_bearer(TOKEN))
    token = created.json['delete_token']

    path = database_url.removeprefix('sqlite://')
    with sqlite3.connect(path) as db:
        [(stored,)] = db.execute('SELECT delete_hash FROM images').fetchall()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    for name in ('', '-wal'):
        with open(path + name, 'rb') as data:
            assert token.encode() not in data.read()


@pytest.mark.parametrize('database_url', ['sqlite'], indirect=True)
def test_an_image_from_before_delete_tokens_needs_an_api_token(
    config, database_url, png_image
):
    config.database_url = database_url
    config.api_tokens = (TOKEN,)
    client = falcon.testing.TestClient(create_app(config))
    created = client.simulate_post(
        '/images', body=png_image, headers=_bearer(TOKEN)
    ).json
    with sqlite3.connect(database_url.removeprefix('sqlite://')) as db:
        db.execute('UPDATE images SET delete_hash = NULL')

    resp = client.simulate_delete(
        created['image'], headers=_bearer(created['delete_token'])
    )
    _assert_problem(resp, 403, 'Not allowed')
    resp = client.simulate_delete(created['image'], headers=_bearer(TOKEN))
    assert resp.status_code == 204


def test_tokens_are_never_logged(config, png_image, caplog):
    caplog.set_level(logging.DEBUG)
    config.api_tokens = (TOKEN,)
    client = falcon.testing.TestClient(create_app(config))
    created = client.simulate_post('/images', body=png_image, headers=_bearer(TOKEN))
    client.simulate_delete(created.json['image'], headers=_bearer('c' * 40))
    client.simulate_delete(
        created.json['image'], headers=_bearer(created.json['delete_token'])
    )

    assert caplog.records
    assert TOKEN not in caplog.text
    assert created.json['delete_token'] not in caplog.text
    assert 'c' * 40 not in caplog.text
