"""Reading the body as the ASGI server hands it over: chunked, slow or cut off."""

import asyncio
import json

import falcon
import falcon.testing
import pytest

from asgilook.app import create_app

from . import corpus

DISCONNECT = object()


class Client:
    """Feeds one POST /images to the app, event by event, as a server would.

    An event is a chunk of body, a number of seconds to stall, or DISCONNECT.
    """

    def __init__(self, events):
        self._events = list(events)
        self.received = 0

    async def receive(self):
        while self._events:
            event = self._events.pop(0)
            if isinstance(event, float):
                await asyncio.sleep(event)
            elif event is DISCONNECT:
                return {'type': 'http.disconnect'}
            else:
                self.received += 1
                more = any(isinstance(e, bytes) for e in self._events)
                return {'type': 'http.request', 'body': event, 'more_body': more}
        return {'type': 'http.disconnect'}

    def post(self, app, content_length=None):
        scope = falcon.testing.create_scope(
            path='/images', method='POST', content_length=content_length
        )
        collector = falcon.testing.ASGIResponseEventCollector()
        falcon.async_to_sync(app, scope, self.receive, collector)
        return collector.status, json.loads(b''.join(collector.body_chunks))


@pytest.fixture
def app(config):
    return create_app(config)


def test_chunked_body_stops_being_read_past_the_limit(app, config, storage_path):
    config.max_upload_bytes = 1000
    client = Client([b'x' * 400] * 10)

    status, error = client.post(app)
    assert status == 413
    assert 'limit of 1,000 bytes' in error['description']
    assert client.received == 3
    assert list(storage_path.iterdir()) == []


def test_chunked_image_within_the_limit(app, storage_path):
    body = corpus.encode(corpus.pattern(), 'PNG')
    client = Client([body[i : i + 100] for i in range(0, len(body), 100)])

    status, image = client.post(app)
    assert status == 201
    assert image['size'] == [96, 64]


def test_stalled_body_times_out(app, config, storage_path):
    config.upload_timeout = 0.2
    body = corpus.encode(corpus.pattern(), 'PNG')

    status, error = Client([body[:100], 5.0, body[100:]]).post(app, len(body))
    assert status == 408
    assert error == {
        'title': 'Upload too slow',
        'status': 408,
        'description': 'The request body did not arrive within 0.2 seconds.',
    }
    assert list(storage_path.iterdir()) == []


def test_a_body_that_pauses_times_out_early(app, config, storage_path):
    config.upload_idle_timeout = 0.2
    body = corpus.encode(corpus.pattern(), 'PNG')
    # NOTE: Steady trickles are fine; one long pause is not.
    events = [body[:50], 0.1, body[50:100], 0.1, body[100:150], 1.0, body[150:]]

    status, error = Client(events).post(app, len(body))
    assert status == 408
    assert error['description'] == (
        'No part of the request body arrived for 0.2 seconds; send it without pauses.'
    )
    assert list(storage_path.iterdir()) == []

    trickle = [body[i : i + 100] for i in range(0, len(body), 100)]
    events = [event for chunk in trickle for event in (chunk, 0.05)]
    status, image = Client(events).post(app, len(body))
    assert status == 201


def test_disconnect_mid_body(app, storage_path):
    body = corpus.encode(corpus.pattern(), 'BMP')
    half = len(body) // 2

    status, error = Client([body[:half], DISCONNECT]).post(app, len(body))
    assert status == 400
    assert error['description'] == (
        f'The connection closed after {half:,} of {len(body):,} bytes.'
    )
    assert list(storage_path.iterdir()) == []
