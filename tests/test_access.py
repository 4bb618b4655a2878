"""The access log: one line per request, and never a secret."""

import json
import logging
import re

import falcon.testing
import pytest

from asgilook.access import AccessLog
from asgilook.access import redacted
from asgilook.app import create_app

from .helpers import FIRST_URI

TEXT = re.compile(
    r'(?P<method>\S+) (?P<target>\S+) (?P<status>\d{3}) (?P<bytes>\d+)B '
    r'(?P<ms>\d+\.\d)ms (?P<cache>Hit|Miss|Bypass|-)'
)


@pytest.fixture
def access(caplog):
    """The access log lines of the requests made after it."""
    caplog.set_level(logging.INFO, logger='asgilook.access')

    def lines():
        return [
            record.getMessage()
            for record in caplog.records
            if record.name == 'asgilook.access'
        ]

    return lines


def logged_client(config, fmt):
    config.access_log = fmt
    return falcon.testing.TestClient(create_app(config))


def test_one_text_line_per_request(config, access, png_image):
    client = logged_client(config, 'text')
    created = client.simulate_post('/images', body=png_image)
    listing = client.simulate_get('/images')
    client.simulate_get('/images')
    client.simulate_get('/nowhere')

    fields = [TEXT.fullmatch(line).groupdict() for line in access()]
    assert [
        (field['method'], field['target'], field['status'], field['cache'])
        for field in fields
    ] == [
        ('POST', '/images', '201', '-'),
        ('GET', '/images', '200', 'Miss'),
        ('GET', '/images', '200', 'Hit'),
        ('GET', '/nowhere', '404', 'Bypass'),
    ]
    assert int(fields[0]['bytes']) == len(created.content)
    assert int(fields[1]['bytes']) == len(listing.content)


def test_one_json_object_per_line(config, access, png_image):
    client = logged_client(config, 'json')
    client.simulate_post('/images', body=png_image)
    original = client.simulate_get(FIRST_URI, params={'limit': '2'})

    first, second = (json.loads(line) for line in access())
    assert first['method'] == 'POST'
    assert first['query'] is None
    assert first['cache'] is None
    assert second == {
        'time': second['time'],
        'method': 'GET',
        'path': FIRST_URI,
        'query': 'limit=2',
        'status': 200,
        'duration_ms': second['duration_ms'],
        'bytes': len(original.content),
        'cache': 'Bypass',
    }
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00', second['time'])
    assert second['duration_ms'] > 0


def test_off_logs_nothing(config, access):
    client = logged_client(config, 'off')
    client.simulate_get('/images')

    assert client.simulate_get('/images').status_code == 200
    assert access() == []


@pytest.mark.parametrize('fmt', ['text', 'json'])
def test_no_secret_reaches_the_log(config, access, png_image, fmt):
    client = logged_client(config, fmt)
    secrets = ['s3cr3t-token', 'hunter2', 'AKIAEXAMPLE', 'b64sig==']
    client.simulate_post(
        '/images',
        body=png_image,
        headers={'Authorization': 'Bearer s3cr3t-token', 'Cookie': 'session=hunter2'},
    )
    client.simulate_get(
        '/images',
        query_string='limit=5&access_token=s3cr3t-token&Password=hunter2'
        '&X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=b64sig%3D%3D&api_key=k',
    )

    logged = '\n'.join(access())
    for secret in secrets:
        assert secret not in logged
    assert 'limit=5' in logged
    assert logged.count('REDACTED') == 5
    # NOTE: Not a byte of the image either.
    assert len(logged) < 600


def test_a_path_stays_one_line_of_fields(config, access):
    client = logged_client(config, 'text')
    client.simulate_get('/images/a b"c\n200 0B 0.0ms Hit 100%25\u00e9')

    (line,) = access()
    assert '\n' not in line
    field = TEXT.fullmatch(line)
    assert (
        field['target'] == '/images/a%20b%22c%0A200%200B%200.0ms%20Hit%20100%25%C3%A9'
    )
    assert field['status'] == '404'


def test_redacted_queries():
    assert redacted('') == ''
    assert redacted('limit=1&cursor=abc') == 'limit=1&cursor=abc'
    assert redacted('sig=a=b&token&key=') == 'sig=REDACTED&token&key=REDACTED'
    assert redacted('q="x y"') == 'q=%22x%20y%22'


def test_lines_are_shown_where_logging_is_not_set_up(capsys):
    logger = logging.Logger('asgilook.access.alone')
    log = AccessLog('text', logger)
    log.log('GET', '/images', '', 200, 0.0012, 2, None)

    assert capsys.readouterr().out == 'GET /images 200 2B 1.2ms -\n'
    # NOTE: Where logging is set up, it decides.
    configured = logging.Logger('asgilook.access.configured', logging.WARNING)
    configured.addHandler(logging.NullHandler())
    AccessLog('text', configured).log('GET', '/images', '', 200, 0.001, 2, None)
    assert configured.handlers[1:] == []
    assert capsys.readouterr().out == ''


@pytest.mark.parametrize('fmt', ['text', 'json'])
def test_a_streamed_download_is_logged_once_its_body_went_out(
    config, access, png_image, fmt
):
    # NOTE: Originals past this size are streamed in chunks.
    config.read_whole_bytes = 100
    client = logged_client(config, fmt)
    created = client.simulate_post('/images', body=png_image).json
    whole = client.simulate_get(created['image'])
    assert len(whole.content) > 100
    client.simulate_head(created['image'])
    client.simulate_get(created['image'], headers={'Range': 'bytes=10-19'})

    got, head, ranged = access()[1:]
    if fmt == 'text':
        assert got == f'GET {created["image"]} 200 {len(whole.content)}B ' + (
            TEXT.fullmatch(got)['ms'] + 'ms Bypass'
        )
        assert TEXT.fullmatch(head)['bytes'] == '0'
        assert TEXT.fullmatch(ranged)['bytes'] == '10'
    else:
        assert (json.loads(got)['bytes'], 'cut' in json.loads(got)) == (
            len(whole.content),
            False,
        )
        assert json.loads(head)['bytes'] == 0
        assert (json.loads(ranged)['status'], json.loads(ranged)['bytes']) == (206, 10)


def test_an_answer_cut_short_says_so(capsys):
    for fmt in ('text', 'json'):
        logger = logging.Logger(f'asgilook.access.{fmt}')
        AccessLog(fmt, logger).log('GET', '/images/x', '', 200, 0.002, 5, None, True)
    text, line = capsys.readouterr().out.splitlines()
    assert text == 'GET /images/x 200 5B 2.0ms - cut'
    assert json.loads(line)['cut'] is True
    assert json.loads(line)['bytes'] == 5
