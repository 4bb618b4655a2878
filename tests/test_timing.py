"""Server-Timing: the stages that ran for each request, and how they are timed."""

import asyncio
import re

import fakeredis
import pytest

from asgilook import imaging
from asgilook import timing
from asgilook.workers import Gate

from . import corpus
from .helpers import FIRST_ID
from .helpers import FIRST_URI

THUMBNAIL = f'/thumbnails/{FIRST_ID}/160x90.jpeg'
# NOTE: W3C Server-Timing: metric names with a duration in milliseconds.
_METRIC = re.compile(r'([\w-]+);dur=(\d+\.\d+)')


def stages(resp):
    """The Server-Timing of a response, as {name: milliseconds}, in order."""
    metrics = resp.headers['Server-Timing'].split(', ')
    parsed = [_METRIC.fullmatch(metric) for metric in metrics]
    assert all(parsed), metrics
    return {match[1]: float(match[2]) for match in parsed}


def test_a_render_lists_every_stage_it_ran(client, png_image):
    upload = client.simulate_post('/images', body=png_image)
    assert list(stages(upload)) == [
        'body', 'decode', 'encode', 'resize', 'files', 'index', 'cache', 'total',
    ]  # fmt: skip

    miss = client.simulate_get(THUMBNAIL)
    assert miss.headers['X-ASGILook-Cache'] == 'Miss'
    took = stages(miss)
    assert set(took) == {
        'cache', 'index', 'files', 'decode', 'resize', 'encode', 'total',
    }  # fmt: skip
    assert took['total'] >= took['decode'] + took['resize'] + took['encode']
    assert list(took)[-1] == 'total'


def test_a_cached_answer_carries_the_timing_of_its_own_request(
    client, png_image, fake_redis_server
):
    client.simulate_post('/images', body=png_image)
    miss = client.simulate_get(THUMBNAIL)
    hit = client.simulate_get(THUMBNAIL)

    assert hit.headers['X-ASGILook-Cache'] == 'Hit'
    assert hit.content == miss.content
    # NOTE: The hit rendered nothing: no decode, resize or encode of its own.
    assert set(stages(hit)) == {'cache', 'index', 'total'}
    assert hit.headers['Server-Timing'] != miss.headers['Server-Timing']
    redis = fakeredis.FakeRedis(server=fake_redis_server)
    entries = [redis.get(key) for key in redis.keys('asgilook:GET:*')]
    assert len(entries) == 1
    assert not [entry for entry in entries if b'server-timing' in entry.lower()]


def test_errors_carry_server_timing_too(client):
    resp = client.simulate_get(f'/images/{FIRST_ID}.jpeg')

    assert resp.status_code == 404
    assert resp.headers['Content-Type'] == 'application/problem+json'
    assert 'index' in stages(resp)
    assert 'total' in stages(resp)


def test_originals_and_listings_show_index_and_files(client, png_image):
    client.simulate_post('/images', body=png_image)

    assert list(stages(client.simulate_get(FIRST_URI))) == ['index', 'files', 'total']
    assert 'index' in stages(client.simulate_get('/images'))


def test_worker_jobs_report_their_stages():
    png = corpus.encode(corpus.pattern((256, 160)), 'PNG')
    converted = timing.collect(imaging.convert_to_jpeg, png)
    assert converted.result == imaging.convert_to_jpeg(png)
    assert [stage[:2] for stage in converted.stages] == [
        ('decode', 'PNG'),
        ('encode', 'JPEG'),
        ('resize', 'PNG'),
    ]

    jpeg = converted.result.data
    rendered = timing.collect(imaging.render_thumbnail, jpeg, (64, 40), 85, 'webp')
    assert rendered.result == imaging.render_thumbnail(jpeg, (64, 40), 85, 'webp')
    assert [stage[:2] for stage in rendered.stages] == [
        ('decode', 'JPEG'),
        ('resize', 'JPEG'),
        ('encode', 'WEBP'),
    ]
    assert all(seconds > 0 for _, _, seconds in rendered.stages)


def test_a_failing_job_reports_nothing_and_leaves_no_trace():
    with pytest.raises(ZeroDivisionError):
        timing.collect(divmod, 1, 0)

    # NOTE: Outside a job, stages are not noted anywhere.
    with timing.stage('decode', 'PNG'):
        pass
    assert timing.collect(lambda: 'done') == timing.Measured('done')


def test_waiting_for_a_place_is_the_queue_stage():
    gate = Gate(1, 'things', wait=5)

    async def wait_in_line():
        async with gate.enter():
            waiter = asyncio.ensure_future(_enter_timed(gate))
            await asyncio.sleep(0.05)
        return await waiter

    queued = asyncio.run(wait_in_line())
    assert list(queued.stages) == ['queue']
    assert queued.stages['queue'] >= 0.04


async def _enter_timed(gate):
    request = timing.begin()
    async with gate.enter():
        return request


def test_server_timing_syntax():
    request = timing.Timing()
    request.add('cache', 0.0004)
    request.add('index', 0.001)
    request.add('cache', 0.0001)

    assert request.header() == 'cache;dur=0.50, index;dur=1.00'
