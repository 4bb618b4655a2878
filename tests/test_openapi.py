"""The OpenAPI document: valid, complete, served as kept, and true of the app."""

import gzip
import io
import json
import re
import sqlite3
import subprocess
import sys
import uuid

import falcon
import falcon.inspect
import falcon.testing
import hypothesis
import openapi_spec_validator
import PIL.Image
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
import schemathesis.config

from asgilook import backends
from asgilook import blobs
from asgilook import errors
from asgilook import imaging
from asgilook import openapi
from asgilook.app import create_app

from .fakes import FailingBackend
from .fakes import FailingBlobs

DOCUMENT = json.loads(openapi.DOCUMENT.read_bytes())
PARAMETERS = DOCUMENT['components']['parameters']
METHODS = {'get', 'head', 'post', 'put', 'patch', 'delete', 'options', 'trace'}
# NOTE: No 5xx; every status, content type, body and header as documented;
#   requests that break the document refused (4xx); other methods a 405
#   with a true Allow. Not positive_data_acceptance: a request can match the
#   document and still rightly fail (a cursor we never gave out is a 400, a
#   random If-Match a 412).
CHECKS = (
    'not_a_server_error',
    'status_code_conformance',
    'content_type_conformance',
    'response_schema_conformance',
    'response_headers_conformance',
    'negative_data_rejection',
    'unsupported_method',
    'allow_header_conformance',
)
# NOTE: A fixed seed, derandomized and without an example database, so that
#   every run sends the same requests (about 60 per operation, in the
#   examples, coverage and fuzzing phases, valid and invalid).
SETTINGS = schemathesis.config.SchemathesisConfig.from_dict(
    {
        'seed': 20261201,
        'generation': {
            'max-examples': 50,
            'mode': 'all',
            'deterministic': True,
            'database': 'none',
        },
        'checks': {'enabled': False, **{name: {'enabled': True} for name in CHECKS}},
    }
)
# NOTE: Described ahead of the code, not served yet: left out of the
#   comparison with the app, and of the generated requests, until it is.
NOT_YET_SERVED: set[str] = set()
# NOTE: A stream that never ends: test_events.py reads it, event by event.
STREAMS = {'/events'}
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT, config=SETTINGS).exclude(
    path=list(NOT_YET_SERVED | STREAMS)
)


def test_the_document_is_valid_openapi_3_1():
    openapi_spec_validator.OpenAPIV31SpecValidator(DOCUMENT).validate()


def test_every_route_is_described_and_every_description_is_a_route(client):
    routes = {
        (re.sub(r'\{(\w+):[^}]*\}', r'{\1}', route.path), method.method.lower())
        for route in falcon.inspect.inspect_routes(client.app)
        for method in route.methods
        if not method.internal
    }
    described = {
        (path, method)
        for path, item in DOCUMENT['paths'].items()
        for method in item
        if method in METHODS and path not in NOT_YET_SERVED
    }
    assert routes == described


def test_served_as_kept(client):
    kept = openapi.DOCUMENT.read_bytes()
    resp = client.simulate_get('/openapi.json')
    assert resp.status_code == 200
    assert resp.content == kept
    assert resp.headers['Content-Type'] == 'application/json'
    assert resp.headers['Cache-Control'] == 'no-cache'
    assert resp.headers['Vary'] == 'Accept-Encoding'
    assert re.fullmatch(r'"[0-9a-f]{32}"', resp.headers['ETag'])
    assert 'Content-Encoding' not in resp.headers
    assert resp.headers['X-ASGILook-Cache'] == 'Bypass'


def test_served_gzipped_where_accepted(client):
    plain = client.simulate_get('/openapi.json')
    resp = client.simulate_get('/openapi.json', headers={'Accept-Encoding': 'gzip'})
    assert resp.headers['Content-Encoding'] == 'gzip'
    assert gzip.decompress(resp.content) == openapi.DOCUMENT.read_bytes()
    assert resp.headers['ETag'] == plain.headers['ETag'][:-1] + '-gzip"'


@pytest.mark.parametrize('method', ['GET', 'HEAD'])
@pytest.mark.parametrize('coding', [None, 'gzip'])
def test_conditional_get(client, method, coding):
    headers = {'Accept-Encoding': coding} if coding else {}
    etag = client.simulate_get('/openapi.json', headers=headers).headers['ETag']

    resp = client.simulate_request(
        method, '/openapi.json', headers={**headers, 'If-None-Match': etag}
    )
    assert resp.status_code == 304
    assert resp.content == b''
    assert resp.headers['ETag'] == etag

    resp = client.simulate_request(
        method, '/openapi.json', headers={**headers, 'If-Match': '"other"'}
    )
    assert resp.status_code == 412
    assert 'ETag' not in resp.headers


def test_head_sends_the_headers_only(client):
    resp = client.simulate_head('/openapi.json')
    assert resp.status_code == 200
    assert resp.content == b''
    assert resp.headers['Content-Length'] == str(len(openapi.DOCUMENT.read_bytes()))


def test_served_when_started_beside_a_folder_named_asgilook(tmp_path):
    # NOTE: As from /tmp, which holds the default storage directory: there,
    #   an editable install's asgilook is a namespace package of that folder.
    (tmp_path / 'asgilook').mkdir()
    script = (
        'import falcon.asgi, falcon.testing, asgilook.openapi; '
        'app = falcon.asgi.App(); '
        "app.add_route('/openapi.json', asgilook.openapi.OpenAPI()); "
        "print(falcon.testing.TestClient(app).simulate_get('/openapi.json').text)"
    )
    served = subprocess.run(
        [sys.executable, '-c', script],
        cwd=tmp_path,
        capture_output=True,
        check=True,
    ).stdout
    assert json.loads(served) == DOCUMENT


def test_a_small_document_is_never_gzipped():
    app = falcon.asgi.App()
    app.add_route('/openapi.json', openapi.OpenAPI(b'{}'))
    resp = falcon.testing.TestClient(app).simulate_get(
        '/openapi.json', headers={'Accept-Encoding': 'gzip'}
    )
    assert resp.content == b'{}'
    assert 'Content-Encoding' not in resp.headers


EXAMPLES = {
    name: PARAMETERS[key]['example']
    for name, key in [
        ('image_id', 'ImageId'),
        ('width', 'Width'),
        ('height', 'Height'),
        ('ext', 'Ext'),
    ]
}


def _seeded_app(config):
    """The app, with one image under the id and size the document's examples
    name, so that generated requests find something."""
    ids = iter([uuid.UUID(EXAMPLES['image_id'])])
    config.uuid_generator = lambda: next(ids, None) or uuid.uuid4()
    app = create_app(config)

    size = (EXAMPLES['width'] * 2, EXAMPLES['height'] * 2)
    data = io.BytesIO()
    PIL.Image.radial_gradient('L').convert('RGB').resize(size).save(data, 'PNG')
    created = falcon.testing.TestClient(app).simulate_post(
        '/images', body=data.getvalue()
    )
    assert created.json['id'] == EXAMPLES['image_id']
    return app


@pytest.fixture
def seeded_app(config):
    return _seeded_app(config)


@SCHEMA.parametrize()
# NOTE: One app for all the examples of an operation, as a live service
#   would be: what one request leaves (an upload, a delete) the next sees.
@hypothesis.settings(
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)
def test_the_app_keeps_to_the_document(case, seeded_app):
    case.call_and_validate(app=seeded_app)


def test_what_random_requests_seldom_reach_keeps_to_the_document(seeded_app, png_image):
    """Replays, forms, a page with a next link, a 416, full-size WebP (and
    AVIF), checked against the document as the generated requests are."""
    image_id = EXAMPLES['image_id']
    full_size = {
        'image_id': image_id,
        'width': 2 * EXAMPLES['width'],
        'height': 2 * EXAMPLES['height'],
    }
    formats = [ext for ext in imaging.THUMBNAIL_FORMATS if ext != 'jpeg']
    upload = SCHEMA['/images']['POST']
    key = {'Idempotency-Key': 'one-upload'}
    cases = [
        upload.Case(body=png_image, media_type='image/png', headers=key),
        upload.Case(body=png_image, media_type='image/png', headers=key),
        upload.Case(body={'image': png_image}, media_type='multipart/form-data'),
        SCHEMA['/images']['GET'].Case(
            query={'limit': 1}, headers={'Accept-Encoding': 'gzip'}
        ),
        SCHEMA['/images/{image_id}.jpeg']['GET'].Case(
            path_parameters={'image_id': image_id},
            headers={'Range': 'bytes=1000000000-'},
        ),
        *(
            SCHEMA['/thumbnails/{image_id}/{width}x{height}.{ext}']['GET'].Case(
                path_parameters={**full_size, 'ext': ext}
            )
            for ext in formats
        ),
    ]
    responses = [case.call_and_validate(app=seeded_app) for case in cases]

    statuses = [resp.status_code for resp in responses]
    assert statuses == [201, 201, 201, 200, 416] + [200] * len(formats)
    stored, replayed, form, page, unsatisfiable, *derived = responses
    # NOTE: Schemathesis' responses keep each header's values in a list,
    #   under its name in lower case.
    assert replayed.headers['idempotent-replayed'] == ['true']
    assert replayed.json().items() <= stored.json().items()
    assert form.json()['id'] not in (stored.json()['id'], image_id)
    assert page.headers['content-encoding'] == ['gzip']
    assert [image['id'] for image in page.json()] == [image_id]
    [link] = page.headers['link']
    assert link.endswith('; rel=next')
    assert unsatisfiable.headers['content-range'][0].startswith('bytes */')
    assert [resp.headers['content-type'] for resp in derived] == [
        [imaging.MEDIA_TYPES[ext]] for ext in formats
    ]


_INDEX_AWAY = sqlite3.OperationalError('database is locked (fake)')


@pytest.mark.parametrize(
    ('collaborator', 'method', 'error', 'operation', 'status'),
    [
        ('backend', 'version', _INDEX_AWAY, 'GET /images', 503),
        ('backend', 'version', _INDEX_AWAY, 'GET /readyz', 503),
        ('backend', 'get', _INDEX_AWAY, 'HEAD /images/{image_id}.jpeg', 503),
        ('backend', 'get', _INDEX_AWAY, 'DELETE /images/{image_id}.jpeg', 503),
        ('backend', 'add', _INDEX_AWAY, 'POST /images', 503),
        ('blobs', 'write', errors.StorageFull('full (fake)'), 'POST /images', 507),
        (
            'blobs',
            'write',
            errors.StorageUnavailable('read-only (fake)'),
            'POST /images',
            503,
        ),
        (
            'blobs',
            'size',
            errors.FileMissing('gone (fake)'),
            'GET /images/{image_id}.jpeg',
            404,
        ),
        (
            'blobs',
            'read',
            errors.StorageUnavailable('I/O error (fake)'),
            'GET /thumbnails/{image_id}/{width}x{height}.{ext}',
            503,
        ),
    ],
)
def test_failures_keep_to_the_document(
    config, png_image, collaborator, method, error, operation, status
):
    """What random requests never meet: an index or a storage that fails."""
    made = {}
    config.backend_from_url = lambda url: made.setdefault(
        'backend', FailingBackend(backends.from_url(url))
    )
    config.blobs_from_url = lambda *args: made.setdefault(
        'blobs', FailingBlobs(blobs.from_url(*args))
    )
    app = _seeded_app(config)
    made[collaborator].fail(method, error)

    verb, path = operation.split(' ')
    case = SCHEMA[path][verb].Case(
        path_parameters={
            name: EXAMPLES[name] for name in re.findall(r'\{(\w+)\}', path)
        },
        **({'body': png_image, 'media_type': 'image/png'} if verb == 'POST' else {}),
    )
    # NOTE: A 5xx is the point here; everything else is checked as usual.
    resp = case.call_and_validate(app=app, excluded_checks=[not_a_server_error])
    assert resp.status_code == status


def test_access_control_keeps_to_the_document(config, png_image):
    """401 and 403 where the operator set tokens, and the delete token a
    201 shows once."""
    config.api_tokens = ('operator-token',)
    app = create_app(config)
    upload = SCHEMA['/images']['POST']
    delete = SCHEMA['/images/{image_id}.jpeg']['DELETE']

    def bearer(token):
        return {'Authorization': f'Bearer {token}'}

    def send(case, status):
        resp = case.call_and_validate(app=app)
        assert resp.status_code == status
        return resp

    def image(image_id, headers=None):
        return delete.Case(path_parameters={'image_id': image_id}, headers=headers)

    body = {'body': png_image, 'media_type': 'image/png'}
    send(upload.Case(**body), 401)
    send(upload.Case(**body, headers=bearer('a guess')), 403)
    key = {**bearer('operator-token'), 'Idempotency-Key': 'once'}
    stored = send(upload.Case(**body, headers=key), 201).json()
    replayed = send(upload.Case(**body, headers=key), 201).json()
    assert 'delete_token' not in replayed
    assert replayed.items() <= stored.items()
    other = send(upload.Case(**body, headers=bearer('operator-token')), 201).json()

    send(image(stored['id']), 401)
    send(image(other['id'], bearer(stored['delete_token'])), 403)
    send(image(stored['id'], bearer(stored['delete_token'])), 204)
    send(image(stored['id'], bearer(stored['delete_token'])), 404)
