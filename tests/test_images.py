import copy
import datetime
import email.utils

import falcon
import pytest

from asgilook.store import Image
from asgilook.store import Store

from .helpers import as_listed
from .helpers import assert_quadrants
from .helpers import decode
from .helpers import FIRST_ID
from .helpers import FIRST_URI
from .helpers import QUADRANTS


def test_list_images(client):
    resp1 = client.simulate_get('/images')
    assert resp1.status_code == 200
    assert resp1.headers.get('X-ASGILook-Cache') == 'Miss'
    assert resp1.json == []

    resp2 = client.simulate_get('/images')
    assert resp2.status_code == 200
    assert resp2.headers.get('X-ASGILook-Cache') == 'Hit'
    assert resp2.json == resp1.json


def test_missing_in_store(client):
    resp = client.simulate_get('/images/1a256a8a-2063-46ff-b53f-d04d5bcf5eee.jpeg')
    assert resp.status_code == 404


def test_post_one_image(client, png_image, image_size):
    resp1 = client.simulate_post('/images', body=png_image)
    location = resp1.headers.get('Location')
    assert resp1.status_code == 201
    assert location == FIRST_URI

    resp2 = client.simulate_get(location)
    assert resp2.status_code == 200
    assert resp2.headers['Content-Type'] == 'image/jpeg'
    assert image_size(resp2.content) == (640, 360)


def test_post_three_images(client, png_image):
    for _ in range(3):
        client.simulate_post('/images', body=png_image)

    resp = client.simulate_get('/images')
    images = [(item['image'], item['size']) for item in resp.json]
    assert images == [
        ('/images/36562622-48e5-4a61-be67-e426b11821ed.jpeg', [640, 360]),
        ('/images/3bc731ac-8cd8-4f39-b6fe-1a195d3b4e74.jpeg', [640, 360]),
        ('/images/ba1c4951-73bc-45a4-a1f6-aa2b958dafa4.jpeg', [640, 360]),
    ]


def test_upload_response_is_the_tutorials_json(client, png_image):
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    resp = client.simulate_post('/images', body=png_image)
    after = datetime.datetime.now(datetime.UTC)

    assert resp.status_code == 201
    assert resp.headers['Content-Type'] == 'application/json'
    assert resp.json == {
        'id': FIRST_ID,
        'image': FIRST_URI,
        'modified': resp.json['modified'],
        'size': [640, 360],
        'thumbnails': [
            f'/thumbnails/{FIRST_ID}/320x180.jpeg',
            f'/thumbnails/{FIRST_ID}/160x90.jpeg',
        ],
        'frames': 1,
        'width': 640,
        'height': 360,
        'srcset': resp.json['srcset'],
        'color': resp.json['color'],
        'placeholder': resp.json['placeholder'],
        # NOTE: Not the tutorial's: lets the uploader delete the image.
        'delete_token': resp.json['delete_token'],
    }
    modified = email.utils.parsedate_to_datetime(resp.json['modified'])
    assert resp.json['modified'].endswith(' GMT')
    assert before <= modified <= after


def test_listing_matches_upload_and_is_sorted_by_modified(client, png_image):
    uploaded = [
        as_listed(client.simulate_post('/images', body=png_image).json)
        for _ in range(3)
    ]

    listing = client.simulate_get('/images').json
    assert listing == uploaded


def test_original_is_the_stored_jpeg_byte_for_byte(client, quadrants_png, storage_path):
    client.simulate_post('/images', body=quadrants_png)
    stored = (storage_path / FIRST_ID).read_bytes()

    for _ in range(3):
        resp = client.simulate_get(FIRST_URI)
        assert resp.status_code == 200
        assert resp.headers['Content-Type'] == 'image/jpeg'
        assert resp.headers['Content-Length'] == str(len(stored))
        # NOTE: The tutorial's cache replayed streamed originals with 0 bytes.
        assert resp.content == stored
        assert resp.headers['X-ASGILook-Cache'] == 'Bypass'

    image = decode(resp.content)
    assert image.format == 'JPEG'
    assert image.size == (256, 128)
    assert_quadrants(image, QUADRANTS)


def test_nothing_but_the_image_is_left_on_disk(client, png_image, storage_path):
    client.simulate_post('/images', body=png_image)
    assert [path.name for path in storage_path.iterdir()] == [FIRST_ID]


def test_upper_case_uuid_serves_the_original(client, png_image):
    client.simulate_post('/images', body=png_image)

    lower = client.simulate_get(FIRST_URI)
    upper = client.simulate_get(f'/images/{FIRST_ID.upper()}.jpeg')
    assert upper.status_code == 200
    assert upper.content == lower.content


def test_not_a_uuid_is_not_found(client):
    assert client.simulate_get('/images/not-a-uuid.jpeg').status_code == 404


def test_head_answers_like_get(client, png_image):
    client.simulate_post('/images', body=png_image)

    for path in ('/images', FIRST_URI):
        # NOTE: HEAD before GET (uncached), then after it (possibly cached).
        head1 = client.simulate_head(path)
        get = client.simulate_get(path)
        head2 = client.simulate_head(path)

        for head in (head1, head2):
            assert head.status_code == 200
            assert head.content == b''
            assert head.headers['Content-Type'] == get.headers['Content-Type']
            assert head.headers['Content-Length'] == str(len(get.content))


def test_head_of_unknown_image_is_not_found(client):
    resp = client.simulate_head('/images/1a256a8a-2063-46ff-b53f-d04d5bcf5eee.jpeg')
    assert resp.status_code == 404


def test_options_does_not_poison_the_cache(client):
    resp = client.simulate_options('/images')
    assert resp.status_code == 200
    assert 'X-ASGILook-Cache' not in resp.headers

    resp = client.simulate_get('/images')
    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert resp.json == []


def test_errors_are_never_cached(client):
    for _ in range(2):
        resp = client.simulate_get('/images/1a256a8a-2063-46ff-b53f-d04d5bcf5eee.jpeg')
        assert resp.status_code == 404
        assert resp.headers['X-ASGILook-Cache'] == 'Bypass'


def test_unsupported_methods(client):
    assert client.simulate_put('/images').status_code == 405
    assert client.simulate_delete('/images').status_code == 405


def test_store_keeps_aware_utc_modified_times(config, png_image):
    store = Store(config)
    image = falcon.async_to_sync(store.save, FIRST_ID, png_image)

    assert image.modified.tzinfo is datetime.UTC
    # NOTE: The tutorial's Image.path: where the stored JPEG is.
    assert image.path == config.storage_path / FIRST_ID
    assert image.path.read_bytes()[:2] == b'\xff\xd8'
    assert [item.serialize() for item in store.list_images()] == [image.serialize()]
    assert store.get(FIRST_ID).serialize() == image.serialize()


def test_storage_path_may_be_a_plain_string(client, config, png_image, storage_path):
    # NOTE: Older versions of the tutorial's conftest set a str here.
    config.storage_path = str(storage_path)

    resp = client.simulate_post('/images', body=png_image)
    assert resp.status_code == 201
    assert (
        client.simulate_get(FIRST_URI).content == (storage_path / FIRST_ID).read_bytes()
    )


def test_tutorial_image_objects(config):
    # NOTE: The tutorial builds an Image from a config, an id and a size.
    image = Image(config, FIRST_ID, (640, 360))
    assert image.size == (640, 360)
    assert image.uri == FIRST_URI
    assert image.path == config.storage_path / FIRST_ID
    assert image.serialize()['thumbnails'] == [
        f'/thumbnails/{FIRST_ID}/320x180.jpeg',
        f'/thumbnails/{FIRST_ID}/160x90.jpeg',
    ]
    assert image.modified.tzinfo is datetime.UTC
    twin = copy.copy(image)
    assert twin.serialize() == image.serialize()


@pytest.mark.parametrize(
    'spelling',
    [
        '{36562622-48e5-4a61-be67-e426b11821ed}',
        'urn:uuid:36562622-48e5-4a61-be67-e426b11821ed',
        '3656262248e54a61be67e426b11821ed',
        '36562622-48e5-4a61-be67-e426b11821ed ',
    ],
)
def test_one_spelling_of_an_image_id(client, png_image, spelling):
    client.simulate_post('/images', body=png_image)
    for path in (f'/images/{spelling}.jpeg', f'/thumbnails/{spelling}/320x180.jpeg'):
        assert client.simulate_get(path).status_code == 404
        assert client.simulate_head(path).status_code == 404
    assert client.simulate_delete(f'/images/{spelling}.jpeg').status_code == 404

    upper = FIRST_ID.upper()
    assert client.simulate_get(f'/images/{upper}.jpeg').status_code == 200
    assert client.simulate_get(f'/thumbnails/{upper}/320x180.jpeg').status_code == 200
