"""Storage faults and cancellation: an error answer, and nothing left behind."""

import asyncio
import contextlib
import multiprocessing
import os
import subprocess

import falcon
import falcon.testing
import pebble
import PIL.Image
import pytest

from asgilook import backends
from asgilook import errors
from asgilook import imaging
from asgilook.app import create_app
from asgilook.config import Config
from asgilook.store import Store
from asgilook.workers import Gate
from asgilook.workers import ImageWorkers

from . import corpus
from .fakes import FailingBackend
from .helpers import as_listed
from .helpers import client_over_failing_blobs
from .helpers import decode
from .helpers import stored_files
from .servers import TcpProxy


def _mount_tmpfs(path, options):
    path.mkdir(exist_ok=True)
    result = subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(path)],
        capture_output=True,
    )
    if result.returncode:
        message = f'cannot mount a tmpfs here: {result.stderr.decode().strip()}'
        if os.environ.get('CI'):
            pytest.fail(f'{message}; under CI this test must run (as root)')
        pytest.skip(message)


@pytest.fixture
def small_disk(tmp_path, config):
    """A real 64 KiB file system as the storage dir."""
    path = tmp_path / 'small'
    _mount_tmpfs(path, 'size=64k')
    config.storage_path = path
    yield path
    subprocess.run(['umount', str(path)], check=True)


def test_disk_full_is_507(client, small_disk):
    # NOTE: Noise compresses badly: its JPEG cannot fit in 64 KiB.
    body = corpus.encode(corpus.noise((800, 600)), 'PNG')
    resp = client.simulate_post('/images', body=body)

    assert resp.status_code == 507
    assert resp.json == {
        'title': 'Insufficient storage',
        'status': 507,
        'description': (
            'The image could not be stored (No space left on device). Try again later.'
        ),
    }
    assert os.listdir(small_disk) == []
    assert client.simulate_get('/images').json == []


def test_small_images_still_fit(client, small_disk, png_image):
    assert client.simulate_post('/images', body=png_image).status_code == 201


def test_read_only_storage_is_503(client, small_disk, png_image):
    subprocess.run(['mount', '-o', 'remount,ro', str(small_disk)], check=True)

    resp = client.simulate_post('/images', body=png_image)
    assert resp.status_code == 503
    assert resp.json['title'] == 'Storage unavailable'
    assert 'Read-only file system' in resp.json['description']
    assert os.listdir(small_disk) == []
    assert client.simulate_get('/images').json == []


def test_vanished_storage_dir_is_503(client, config, tmp_path, png_image):
    config.storage_path = tmp_path / 'gone'

    resp = client.simulate_post('/images', body=png_image)
    assert resp.status_code == 503
    assert 'No such file or directory' in resp.json['description']
    assert client.simulate_get('/images').json == []


class SignallingWorkers(ImageWorkers):
    """Image workers that say when a conversion has finished."""

    def __init__(self):
        super().__init__(max_workers=1, max_queue=0)
        self.converted = asyncio.Event()

    async def process(self, func, *args):
        result = await super().process(func, *args)
        if func is imaging.convert_to_jpeg:
            self.converted.set()
        return result


def test_cancelled_upload_leaves_no_file(config, storage_path, png_image):
    async def cancel_while_writing():
        workers = SignallingWorkers()
        store = Store(config, workers=workers)
        task = asyncio.create_task(store.save('cancelled', png_image))
        # NOTE: Once converted, the save goes straight on to write the file.
        await workers.converted.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # NOTE: One thread runs the jobs in order: once a job queued after the
        #   write is done, the clean-up is queued; once another is, it is done.
        for _ in range(2):
            await workers.run(lambda: None)
        return store

    store = falcon.async_to_sync(cancel_while_writing)
    assert os.listdir(storage_path) == []
    assert store.get('cancelled') is None
    assert store.list_images() == []


def test_jobs_wait_their_turn_in_order():
    async def queue_up():
        gate = Gate(10, 'things', wait=5)
        order = []

        async def job(name, weight, hold):
            async with gate.enter(weight):
                order.append(name)
                await asyncio.sleep(hold)

        first = asyncio.ensure_future(job('first', 8, 0.2))
        await asyncio.sleep(0.01)
        # NOTE: The light one waits behind the heavy one: first come, first
        #   served, so that heavy jobs are never starved.
        heavy = asyncio.ensure_future(job('heavy', 10, 0.1))
        await asyncio.sleep(0.01)
        light = asyncio.ensure_future(job('light', 1, 0))
        await asyncio.sleep(0.01)
        waiting = gate.waiting
        # NOTE: Heavier than everything: admitted alone, not refused.
        huge = asyncio.ensure_future(job('huge', 1000, 0))
        await asyncio.gather(first, heavy, light, huge)
        return order, waiting, gate.admitted, gate.waiting

    order, waiting, admitted, left = falcon.async_to_sync(queue_up)
    assert order == ['first', 'heavy', 'light', 'huge']
    assert waiting == 2
    assert (admitted, left) == (0, 0)


def test_a_full_gate_answers_503_only_past_its_wait():
    async def overfill():
        gate = Gate(1, 'things', wait=0.2, queue=1)
        async with gate.enter():
            queued = asyncio.ensure_future(gate.enter().__aenter__())
            await asyncio.sleep(0.01)
            with pytest.raises(errors.Overloaded) as full:
                # NOTE: The queue holds one: the next is refused at once.
                async with gate.enter():
                    pass
            with pytest.raises(errors.Overloaded) as late:
                await queued
        return full.value, late.value, gate.admitted, gate.waiting

    full, late, admitted, waiting = falcon.async_to_sync(overfill)
    assert full.headers == {'Retry-After': '1'}
    assert full.description == 'Too many things at once; retry in 1 s.'
    assert late.description == 'Too many things at once; waited 0.2 s; retry in 1 s.'
    assert (admitted, waiting) == (0, 0)


@pytest.mark.parametrize(
    'moment', ['while it waits', 'as a holder leaves', 'as its turn comes']
)
def test_a_waiter_that_goes_away_leaves_nothing_held(moment):
    async def leave():
        gate = Gate(1, 'things', wait=5)
        async with gate.enter():
            waiter = asyncio.ensure_future(gate.enter().__aenter__())
            await asyncio.sleep(0.01)
            if moment != 'as its turn comes':
                waiter.cancel()
            if moment == 'while it waits':
                with pytest.raises(asyncio.CancelledError):
                    await waiter
        # NOTE: Otherwise the holder has left before the waiter ran again.
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        held = gate.admitted, gate.waiting
        async with gate.enter():
            return held, gate.admitted

    assert falcon.async_to_sync(leave) == ((0, 0), 1)


def test_a_gate_without_a_wait_refuses_at_once():
    async def refuse():
        gate = Gate(1, 'things')
        async with gate.enter():
            with pytest.raises(errors.Overloaded) as refused:
                async with gate.enter():
                    pass
        return refused.value

    assert falcon.async_to_sync(refuse).description == (
        'Too many things at once; retry in 1 s.'
    )


@pytest.mark.parametrize('broken', ['missing', 'unreadable'])
def test_listed_image_whose_file_is_gone(client, storage_path, png_image, broken):
    created = as_listed(client.simulate_post('/images', body=png_image).json)
    path = storage_path / created['id']
    path.unlink()
    if broken == 'unreadable':
        # NOTE: A directory where the file should be: reading it fails (EISDIR).
        path.mkdir()

    for uri in (created['image'], created['thumbnails'][0]):
        get, head = client.simulate_get(uri), client.simulate_head(uri)
        for resp in (get, head):
            if broken == 'missing':
                assert resp.status_code == 404
                assert resp.headers.get('Retry-After') is None
            else:
                assert resp.status_code == 503
                assert resp.headers['Retry-After'] == '5'
        assert get.json['title'] == (
            'Image file missing' if broken == 'missing' else 'Storage unavailable'
        )

    resp = client.simulate_delete(created['image'])
    if broken == 'missing':
        assert resp.status_code == 204
        assert client.simulate_get('/images').json == []
    else:
        # NOTE: Tampered storage: nothing is removed, the record included.
        assert resp.status_code == 503
        assert resp.json['description'] == (
            'The image could not be removed (Is a directory). Try again later.'
        )
        assert client.simulate_get('/images').json == [created]
        assert path.is_dir()


def _render_every_thumbnail_at_once(config, renders, png_image):
    # NOTE: Room for one job at a time: each render needs all of it.
    config.image_workers, config.image_memory = 1, 1
    app = create_app(config)
    created = falcon.testing.TestClient(app).simulate_post('/images', body=png_image)
    renders.delay = 0.3

    async def all_at_once():
        async with falcon.testing.ASGIConductor(app) as conductor:
            return await asyncio.gather(
                *(conductor.simulate_get(uri) for uri in created.json['thumbnails'])
            )

    return falcon.async_to_sync(all_at_once)


def test_renders_beyond_the_capacity_wait_their_turn(config, renders, png_image):
    responses = _render_every_thumbnail_at_once(config, renders, png_image)
    assert [resp.status_code for resp in responses] == [200, 200]
    assert sorted(renders) == [(160, 90), (320, 180)]


def test_renders_that_may_not_wait_get_503(config, renders, png_image):
    config.image_queue = 0
    responses = _render_every_thumbnail_at_once(config, renders, png_image)
    assert sorted(resp.status_code for resp in responses) == [200, 503]
    busy = next(resp for resp in responses if resp.status_code == 503)
    assert busy.headers['Retry-After'] == '1'
    assert busy.json['description'] == (
        'Too many images being processed at once; retry in 1 s.'
    )


def test_delete_on_read_only_storage_changes_nothing(client, small_disk, png_image):
    created = as_listed(client.simulate_post('/images', body=png_image).json)
    subprocess.run(['mount', '-o', 'remount,ro', str(small_disk)], check=True)

    resp = client.simulate_delete(created['image'])
    assert resp.status_code == 503
    assert 'Read-only file system' in resp.json['description']
    assert client.simulate_get('/images').json == [created]
    assert client.simulate_get(created['image']).status_code == 200

    subprocess.run(['mount', '-o', 'remount,rw', str(small_disk)], check=True)
    assert client.simulate_delete(created['image']).status_code == 204
    assert stored_files(small_disk) == []


def test_failed_record_delete_puts_the_file_back(config, storage_path, png_image):
    backend = FailingBackend(backends.from_url(None))
    store = Store(config, backend=backend)
    image = falcon.async_to_sync(store.save, 'kept', png_image)

    backend.fail('delete', ConnectionResetError('the database went away (fake)'))
    with pytest.raises(ConnectionResetError):
        falcon.async_to_sync(store.delete, 'kept')
    assert os.listdir(storage_path) == ['kept']
    assert image.path.read_bytes()[:2] == b'\xff\xd8'
    assert store.get('kept') is not None

    # NOTE: And when the file was gone already, there is nothing to put back.
    image.path.unlink()
    with pytest.raises(ConnectionResetError):
        falcon.async_to_sync(store.delete, 'kept')
    assert os.listdir(storage_path) == []


def test_deleting_an_image_whose_file_is_gone(client, storage_path, png_image):
    created = as_listed(client.simulate_post('/images', body=png_image).json)
    (storage_path / created['id']).unlink()

    assert client.simulate_delete(created['image']).status_code == 204
    assert client.simulate_get('/images').json == []


def test_derived_images_are_served_when_they_cannot_be_kept(
    client, small_disk, png_image, caplog
):
    created = as_listed(client.simulate_post('/images', body=png_image).json)
    subprocess.run(['mount', '-o', 'remount,ro', str(small_disk)], check=True)

    resp = client.simulate_get(created['thumbnails'][0])
    assert resp.status_code == 200
    assert decode(resp.content).size == (320, 180)
    assert 'Could not keep derived/' in caplog.text


def test_a_read_only_storage_path_stops_the_service_at_start_up(tmp_path):
    path = tmp_path / 'read-only'
    _mount_tmpfs(path, 'size=64k,ro')
    try:
        with pytest.raises(ValueError) as raised:
            Config({'ASGI_LOOK_STORAGE_PATH': str(path)})
    finally:
        subprocess.run(['umount', str(path)], check=True)
    assert str(raised.value) == (
        f'ASGI_LOOK_STORAGE_PATH must be a directory this service can write to, '
        f"got '{path}' (not writable)"
    )


def test_read_only_storage_is_not_ready(client, small_disk):
    assert client.simulate_get('/readyz').json['status'] == 'ready'
    subprocess.run(['mount', '-o', 'remount,ro', str(small_disk)], check=True)

    resp = client.simulate_get('/readyz')
    assert resp.status_code == 503
    assert resp.json['checks']['storage']['state'] == 'down'
    assert 'Read-only file system' in resp.json['checks']['storage']['detail']
    assert resp.json['checks']['index']['state'] == 'up'


def test_a_place_for_blobs_that_fails_is_an_answer_not_a_crash(config, png_image):
    client, blobs = client_over_failing_blobs(config)

    blobs.fail('write', errors.StorageFull('The store is full (fake).'))
    resp = client.simulate_post('/images', body=png_image)
    assert resp.status_code == 507
    assert resp.json['description'] == 'The store is full (fake).'
    assert client.simulate_get('/images').json == []

    blobs.heal()
    created = as_listed(client.simulate_post('/images', body=png_image).json)
    blobs.fail('read', errors.StorageUnavailable('The store is away (fake).'))
    resp = client.simulate_get(created['thumbnails'][0])
    assert resp.status_code == 503
    assert resp.json['title'] == 'Storage unavailable'
    assert resp.headers['X-ASGILook-Cache'] == 'Bypass'


@pytest.mark.parametrize('whole', [2**30, 0], ids=['read-whole', 'streamed'])
def test_a_file_that_goes_between_two_looks_is_404(
    config, storage_path, png_image, whole
):
    config.read_whole_bytes = whole
    client, blobs = client_over_failing_blobs(config)
    created = as_listed(client.simulate_post('/images', body=png_image).json)

    async def vanish():
        # NOTE: Another host deletes the image after its size was read.
        (storage_path / created['id']).unlink()

    blobs.after('size', vanish)
    resp = client.simulate_get(created['image'])
    assert resp.status_code == 404
    assert resp.json['title'] == 'Image file missing'


# NOTE: Image work runs in worker processes with a deadline (issue 10).


def test_image_work_past_the_deadline_is_stopped(config, storage_path, png_image):
    config.image_deadline = 0.01
    slow = falcon.testing.TestClient(create_app(config))
    # NOTE: No 12-megapixel image converts in a hundredth of a second.
    body = corpus.encode(PIL.Image.new('RGB', (4000, 3000), 'teal'), 'PNG')

    resp = slow.simulate_post('/images', body=body)
    assert resp.status_code == 422
    assert resp.json['title'] == 'Image too slow to process'
    assert resp.json['description'] == (
        'The image took longer than 0.01 seconds to process, and was stopped.'
    )
    assert stored_files(storage_path) == []
    assert slow.simulate_get('/images').json == []

    config.image_deadline = 10
    client = falcon.testing.TestClient(create_app(config))
    assert client.simulate_post('/images', body=png_image).status_code == 201


def test_a_render_past_the_deadline_is_503(config, renders, png_image):
    config.image_deadline = 0.5
    app = create_app(config)
    created = falcon.testing.TestClient(app).simulate_post('/images', body=png_image)
    renders.delay = 3.0

    async def render_and_list():
        async with falcon.testing.ASGIConductor(app) as conductor:
            rendering = asyncio.ensure_future(
                conductor.simulate_get(created.json['thumbnails'][0])
            )
            await asyncio.sleep(0.1)
            # NOTE: Meanwhile the service answers as usual.
            listing = await conductor.simulate_get('/images')
            return listing, rendering.done(), await rendering

    listing, rendered_already, resp = falcon.async_to_sync(render_and_list)
    assert listing.status_code == 200
    assert not rendered_already
    assert resp.status_code == 503
    assert resp.headers['Retry-After'] == '1'
    assert 'took longer than 0.5 seconds' in resp.json['description']

    renders.delay = 0
    resp = falcon.testing.TestClient(app).simulate_get(created.json['thumbnails'][0])
    assert resp.status_code == 200


def _die(*args):
    os._exit(3)


class DyingWorkers(ImageWorkers):
    """Workers whose every image job ends its process, as a crash would."""

    async def process(self, func, *args):
        return await super().process(_die, *args)


def test_a_decoder_that_dies_is_a_400(config, storage_path, png_image):
    config.workers_factory = DyingWorkers.from_config
    client = falcon.testing.TestClient(create_app(config))

    resp = client.simulate_post('/images', body=png_image)
    assert resp.status_code == 400
    assert resp.json['description'].startswith(
        'The image could not be decoded: its decoder stopped'
    )
    assert stored_files(storage_path) == []


class StillbornWorkers(ImageWorkers):
    """Workers whose processes die as they start, as a broken host's would."""

    def start_pool(self, workers):
        return pebble.ProcessPool(workers, initializer=_die, context=_FORKSERVER)


_FORKSERVER = multiprocessing.get_context('forkserver')


def test_workers_that_cannot_start_are_503_then_tried_again(config, png_image):
    config.workers_factory = StillbornWorkers.from_config
    client = falcon.testing.TestClient(create_app(config))

    for _ in range(2):
        resp = client.simulate_post('/images', body=png_image)
        assert resp.status_code == 503
        assert resp.headers['Retry-After'] == '1'
        assert resp.json['description'].startswith(
            'The image workers are not available'
        )
    assert client.simulate_get('/images').json == []


class RestingWorkers(ImageWorkers):
    """Workers that count how often they start their processes."""

    starts = 0

    def start_pool(self, workers):
        self.starts += 1
        return super().start_pool(workers)


@pytest.mark.parametrize('pause, starts', [(0.0, 1), (0.5, 2)])
def test_workers_rest_when_there_is_no_work(png_image, pause, starts):
    async def work_pause_work():
        workers = RestingWorkers(1, idle=0.2)
        weights = [await workers.process(imaging.convert_cost, png_image, 10**6)]
        await asyncio.sleep(pause)
        weights.append(await workers.process(imaging.convert_cost, png_image, 10**6))
        await workers.close()
        return weights, workers.starts

    weights, started = falcon.async_to_sync(work_pause_work)
    assert weights == [640 * 360 * 8] * 2
    # NOTE: After a pause longer than idle, new workers start for the next job.
    assert started == starts


def test_postgresql_gone_at_run_time_is_503(config, postgres, png_image, caplog):
    proxy = TcpProxy(postgres.port).start()
    config.database_url = postgres.url.replace(f':{postgres.port}/', f':{proxy.port}/')
    app = create_app(config)

    # NOTE: One lifespan for all requests: the pool opens once, before the cut.
    async def cut_while_serving():
        async with falcon.testing.ASGIConductor(app) as conductor:
            created = await conductor.simulate_post('/images', body=png_image)
            proxy.cut()
            return created, [
                await conductor.simulate_get('/images'),
                await conductor.simulate_post('/images', body=png_image),
                await conductor.simulate_get('/readyz'),
            ]

    created, (listing, upload, ready) = falcon.async_to_sync(cut_while_serving)
    assert created.status_code == 201
    for resp in (listing, upload):
        assert resp.status_code == 503
        assert resp.json['title'] == 'Index unavailable'
        assert resp.headers['Retry-After'] == '1'
    assert ready.status_code == 503
    assert ready.json['checks']['index']['state'] == 'down'
    # NOTE: Lines that say so, without a traceback (asyncpg's own included).
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


def test_a_full_disk_is_not_ready(client, small_disk):
    assert client.simulate_get('/readyz').json['status'] == 'ready'
    filler = small_disk / 'filler'
    with open(filler, 'wb', buffering=0) as out:
        with contextlib.suppress(OSError):
            while True:
                out.write(bytes(1024))

    resp = client.simulate_get('/readyz')
    assert resp.status_code == 503
    assert 'No space left on device' in resp.json['checks']['storage']['detail']
