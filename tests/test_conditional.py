"""The HTTP semantics helpers, on their own."""

import datetime

import pytest

from asgilook import conditional
from asgilook import ranges

ETAG = '"abc"'
MODIFIED = datetime.datetime(2026, 11, 21, 6, 12, 2, 500_000, datetime.UTC)
AT = 'Sat, 21 Nov 2026 06:12:02 GMT'
BEFORE = 'Sat, 21 Nov 2026 06:12:01 GMT'
AFTER = 'Sat, 21 Nov 2026 06:12:03 GMT'


@pytest.mark.parametrize(
    'method, headers, expected',
    [
        ('GET', {}, None),
        ('GET', {'if-none-match': ETAG}, 304),
        ('HEAD', {'if-none-match': ETAG}, 304),
        ('GET', {'if-none-match': 'W/"abc"'}, 304),
        ('GET', {'if-none-match': '"x", "abc"'}, 304),
        ('GET', {'if-none-match': '*'}, 304),
        ('GET', {'if-none-match': '"x"'}, None),
        ('GET', {'if-modified-since': AT}, 304),
        ('GET', {'if-modified-since': AFTER}, 304),
        ('GET', {'if-modified-since': BEFORE}, None),
        ('GET', {'if-modified-since': 'yesterday'}, None),
        # NOTE: If-None-Match wins over If-Modified-Since, both ways.
        ('GET', {'if-none-match': '"x"', 'if-modified-since': AFTER}, None),
        ('GET', {'if-none-match': ETAG, 'if-modified-since': BEFORE}, 304),
        ('GET', {'if-match': ETAG}, None),
        ('GET', {'if-match': '*'}, None),
        ('GET', {'if-match': '"x"'}, 412),
        ('GET', {'if-match': 'W/"abc"'}, 412),
        ('GET', {'if-unmodified-since': BEFORE}, 412),
        ('GET', {'if-unmodified-since': AT}, None),
        ('GET', {'if-match': ETAG, 'if-unmodified-since': BEFORE}, None),
        ('GET', {'if-match': '"x"', 'if-none-match': ETAG}, 412),
        ('DELETE', {'if-none-match': ETAG}, 412),
        ('DELETE', {'if-modified-since': BEFORE}, None),
    ],
)
def test_evaluate(method, headers, expected):
    assert conditional.evaluate(method, headers, ETAG, MODIFIED) == expected


def test_evaluate_without_validators():
    assert conditional.evaluate('GET', {'if-none-match': '*'}, None, None) is None
    assert conditional.evaluate('GET', {'if-modified-since': AT}, None, None) is None
    assert conditional.evaluate('GET', {'if-match': '*'}, None, None) == 412


@pytest.mark.parametrize(
    'if_range, expected',
    [
        (None, True),
        (ETAG, True),
        ('"other"', False),
        ('W/"abc"', False),
        (AT, True),
        (BEFORE, False),
        ('garbage', False),
    ],
)
def test_range_applies(if_range, expected):
    assert conditional.range_applies(if_range, ETAG, MODIFIED) is expected


@pytest.mark.parametrize(
    'header, expected',
    [
        (None, None),
        ('bytes=0-0', (0, 0)),
        ('bytes=0-99', (0, 99)),
        ('bytes=10-', (10, 99)),
        ('bytes=90-1000', (90, 99)),
        ('bytes=-10', (90, 99)),
        ('bytes=-1000', (0, 99)),
        (' Bytes = 5 - 6 ', (5, 6)),
        ('bytes=99-99', (99, 99)),
        # NOTE: Numbers longer than Python converts (over 4300 digits).
        ('bytes=0-' + '9' * 5000, (0, 99)),
        ('bytes=-' + '9' * 5000, (0, 99)),
        ('bytes=' + '0' * 5000 + '5-6', (5, 6)),
        ('bytes=5-' + '0' * 5000 + '6', (5, 6)),
        # NOTE: What a server may ignore, and serve 200 instead.
        ('bytes=0-1,5-6', None),
        ('items=0-1', None),
        ('bytes=5-1', None),
        ('bytes=a-b', None),
        ('bytes=-', None),
        ('bytes=0x1-2', None),
        ('bytes=١-٢', None),
        ('bytes', None),
    ],
)
def test_requested_range(header, expected):
    assert ranges.requested_range(header, 100) == expected


@pytest.mark.parametrize(
    'header, size',
    [
        ('bytes=100-', 100),
        ('bytes=500-600', 100),
        ('bytes=-0', 100),
        ('bytes=' + '9' * 5000 + '-', 100),
        ('bytes=' + '9' * 30 + '-' + '9' * 31, 100),
    ],
)
def test_unsatisfiable_range(header, size):
    with pytest.raises(ranges.Unsatisfiable):
        ranges.requested_range(header, size)


def test_suffix_of_an_empty_representation():
    with pytest.raises(ranges.Unsatisfiable):
        ranges.requested_range('bytes=-5', 0)
