"""The service over each backend: durable, idempotent, paged, cleaned up."""

import asyncio
import base64
import logging
import os
import sqlite3
import time
import urllib.parse

import falcon
import falcon.asgi
import falcon.testing
import pytest

from asgilook import backends
from asgilook.app import create_app
from asgilook.blobs import files
from asgilook.images import Images
from asgilook.store import Store
from asgilook.store import StoreLifespan

from . import corpus
from .fakes import FailingBackend
from .helpers import as_listed
from .helpers import decode
from .helpers import FIRST_ID
from .helpers import stored_files


@pytest.fixture
def store_config(config, database_url):
    config.database_url = database_url
    return config


@pytest.fixture
def client(store_config):
    return falcon.testing.TestClient(create_app(store_config))


@pytest.fixture
def closed_after():
    """Closes the stores a test makes itself once it is done: a PostgreSQL
    pool left open is collected in some later test, with a warning."""
    stores = []

    def closing(store):
        stores.append(store)
        return store

    yield closing
    for store in stores:
        falcon.async_to_sync(store.close)


def _png(number):
    return corpus.encode(corpus.pattern((128 + number, 96)), 'PNG')


def test_the_tutorial_walk_on_every_backend(client, storage_path):
    created = [
        as_listed(client.simulate_post('/images', body=_png(n)).json) for n in range(3)
    ]

    assert client.simulate_get('/images').json == created
    for image in created:
        resp = client.simulate_get(image['image'])
        assert resp.content == (storage_path / image['id']).read_bytes()
        for uri in image['thumbnails']:
            assert client.simulate_get(uri).status_code == 200

    assert client.simulate_delete(created[1]['image']).status_code == 204
    assert client.simulate_get('/images').json == [created[0], created[2]]
    assert sorted(os.listdir(storage_path)) == sorted(
        [created[0]['id'], created[2]['id']]
    )


@pytest.mark.parametrize('database_url', ['sqlite', 'postgresql'], indirect=True)
def test_a_new_app_sees_what_the_old_one_stored(store_config, storage_path):
    old = falcon.testing.TestClient(create_app(store_config))
    created = [
        as_listed(old.simulate_post('/images', body=_png(n)).json) for n in range(3)
    ]
    old.simulate_delete(created[0]['image'])

    new = falcon.testing.TestClient(create_app(store_config))
    assert new.simulate_get('/images').json == created[1:]
    for image in created[1:]:
        assert (
            new.simulate_get(image['image']).content
            == (storage_path / image['id']).read_bytes()
        )
    assert new.simulate_get(created[0]['image']).status_code == 404


def test_idempotent_retries(client, storage_path):
    body = _png(1)
    headers = {'Idempotency-Key': 'upload-4f1e'}
    first = client.simulate_post('/images', body=body, headers=headers)
    retry = client.simulate_post('/images', body=body, headers=headers)

    assert (first.status_code, retry.status_code) == (201, 201)
    # NOTE: Only a hash of the delete token is kept: a replay cannot show it.
    assert retry.json == as_listed(first.json)
    assert retry.headers['Location'] == first.headers['Location']
    assert retry.headers['Idempotent-Replayed'] == 'true'
    assert 'Idempotent-Replayed' not in first.headers
    assert os.listdir(storage_path) == [first.json['id']]
    assert len(client.simulate_get('/images').json) == 1

    other = client.simulate_post('/images', body=_png(2), headers=headers)
    assert other.status_code == 422
    assert 'was used before for a different image' in other.json['description']

    fresh = client.simulate_post('/images', body=body, headers={'Idempotency-Key': 'b'})
    assert fresh.json['id'] != first.json['id']


@pytest.mark.parametrize('key', ['', 'x' * 256, 'naïve', 'tab\there'])
def test_malformed_idempotency_keys(client, key):
    resp = client.simulate_post(
        '/images', body=_png(1), headers={'Idempotency-Key': key}
    )
    assert resp.status_code == 400
    assert 'Idempotency-Key' in resp.json['description']


def test_concurrent_retries_store_one_image(store_config, storage_path):
    app = create_app(store_config)
    body = _png(1)

    async def burst():
        async with falcon.testing.ASGIConductor(app) as conductor:
            return await asyncio.gather(
                *(
                    conductor.simulate_post(
                        '/images', body=body, headers={'Idempotency-Key': 'same'}
                    )
                    for _ in range(4)
                )
            )

    responses = falcon.async_to_sync(burst)
    assert {resp.status_code for resp in responses} == {201}
    assert len({resp.json['id'] for resp in responses}) == 1
    assert len(os.listdir(storage_path)) == 1


def test_pages(client):
    created = [
        as_listed(client.simulate_post('/images', body=_png(n)).json) for n in range(7)
    ]

    pages, path = [], '/images?limit=3'
    while path:
        resp = client.simulate_get(path)
        assert resp.status_code == 200
        pages.append(resp.json)
        link = resp.headers.get('Link')
        path = link[1 : link.index('>')] if link else None
        if link:
            assert link.endswith('; rel="next"') or 'rel=next' in link
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [image for page in pages for image in page] == created


def test_cursor_alone_takes_the_default_page_size(client):
    for n in range(3):
        client.simulate_post('/images', body=_png(n))
    first = client.simulate_get('/images?limit=1')
    cursor = urllib.parse.parse_qs(
        urllib.parse.urlsplit(first.headers['Link'][1:].split('>')[0]).query
    )['cursor'][0]

    rest = client.simulate_get('/images', params={'cursor': cursor})
    assert len(rest.json) == 2
    assert 'Link' not in rest.headers


@pytest.mark.parametrize(
    'query, fragment',
    [
        ('limit=0', 'limit'),
        ('limit=1001', 'limit'),
        ('limit=x', 'limit'),
        ('cursor=not-a-cursor', 'cursor'),
        ('limit=5&cursor=%25%25%25', 'cursor'),
        (
            'cursor=' + base64.urlsafe_b64encode(b'99999999999999999999:x').decode(),
            'cursor',
        ),
        (
            'cursor='
            + base64.urlsafe_b64encode(
                b'99999999999999999999:00000000-0000-4000-8000-000000000000'
            ).decode(),
            'cursor',
        ),
        ('cursor=' + base64.urlsafe_b64encode(b'1:\x00').decode(), 'cursor'),
        (
            'cursor='
            + base64.urlsafe_b64encode(
                b'1:00000000-0000-4000-8000-00000000000A'
            ).decode(),
            'cursor',
        ),
    ],
)
def test_bad_paging_parameters(client, query, fragment):
    resp = client.simulate_get('/images', query_string=query)
    assert resp.status_code == 400
    assert fragment in (resp.json['title'] + resp.json.get('description', '')).lower()


def test_pages_have_their_own_validators(client):
    for n in range(3):
        client.simulate_post('/images', body=_png(n))
    page = client.simulate_get('/images?limit=2')
    whole = client.simulate_get('/images')
    assert page.headers['ETag'] != whole.headers['ETag']

    again = client.simulate_get(
        '/images?limit=2', headers={'If-None-Match': page.headers['ETag']}
    )
    assert again.status_code == 304
    client.simulate_post('/images', body=_png(9))
    after = client.simulate_get(
        '/images?limit=2', headers={'If-None-Match': page.headers['ETag']}
    )
    assert after.status_code == 200


def test_start_up_cleans_up_after_a_crash(
    store_config, storage_path, caplog, closed_after
):
    kept_id = '00000000-0000-4000-8000-00000000000a'
    keep = closed_after(Store(store_config))
    falcon.async_to_sync(keep.save, kept_id, _png(1))

    dead_temp = storage_path / f'.x.{files._HOST}.999999999.abc.tmp'
    live_temp = storage_path / f'.y.{files._HOST}.{os.getpid()}.abc.tmp'
    foreign_temp = storage_path / '.z.elsewhere.1.abc.tmp'
    old_temp = storage_path / '.w.elsewhere.1.abc.tmp'
    old_orphan = storage_path / '00000000-0000-4000-8000-00000000000b'
    young_orphan = storage_path / '00000000-0000-4000-8000-00000000000c'
    not_ours = storage_path / 'notes.txt'
    for path in (dead_temp, live_temp, foreign_temp, old_temp, old_orphan):
        path.write_bytes(b'partial')
    for path in (young_orphan, not_ours):
        path.write_bytes(b'partial')
    (storage_path / 'lost+found').mkdir()
    long_ago = time.time() - 3600
    for path in (old_temp, old_orphan, not_ours, storage_path / kept_id):
        os.utime(path, (long_ago, long_ago))
    os.utime(storage_path / 'lost+found', (long_ago, long_ago))

    client = falcon.testing.TestClient(create_app(store_config))
    assert client.simulate_get('/images').status_code == 200

    # NOTE: The old temporary file of another host was changed (made) just
    #   now, whatever its modification time says: it may be a delete in flight.
    survivors = [
        live_temp, foreign_temp, old_temp, young_orphan, not_ours, kept_id, 'lost+found'
    ]  # fmt: skip
    if store_config.database_url is None:
        # NOTE: An in-memory index starts empty: every image file looks like
        #   an orphan to it, so it takes none of them.
        survivors.append(old_orphan)
    assert sorted(os.listdir(storage_path)) == sorted(
        getattr(path, 'name', path) for path in survivors
    )
    orphans = 0 if store_config.database_url is None else 1
    assert f'Removed 1 unfinished and {orphans} orphaned files' in caplog.text


def test_synchronous_accessors_need_the_memory_backend(store_config):
    store = Store(store_config)
    if store_config.database_url is None:
        assert store.get('nope') is None
        assert store.list_images() == []
    else:
        with pytest.raises(TypeError, match='await Store.find'):
            store.get('nope')


def _failing_backend(store_config):
    return FailingBackend(backends.from_url(store_config.database_url))


def test_store_survives_a_failed_record_commit(
    store_config, storage_path, closed_after
):
    backend = _failing_backend(store_config)
    store = closed_after(Store(store_config, backend=backend))

    class Broken(Exception):
        pass

    backend.fail('add', Broken())
    with pytest.raises(Broken):
        falcon.async_to_sync(store.save, 'doomed', _png(1))
    assert os.listdir(storage_path) == []


def test_decoded_pixels_come_back_from_every_backend(client):
    created = client.simulate_post(
        '/images', body=corpus.encode(corpus.pattern((192, 128)), 'PNG')
    ).json
    image = decode(client.simulate_get(created['image']).content)
    assert image.size == (192, 128)


def test_paging_is_stable_under_concurrent_inserts(store_config):
    app = create_app(store_config)

    async def page_while_inserting():
        async with falcon.testing.ASGIConductor(app) as conductor:
            before = [
                (await conductor.simulate_post('/images', body=_png(n))).json['id']
                for n in range(12)
            ]
            seen, path, inserted = [], '/images?limit=4', []
            while path:
                resp = await conductor.simulate_get(path)
                seen += [image['id'] for image in resp.json]
                # NOTE: Two uploads land between every two pages.
                for n in range(2):
                    created = await conductor.simulate_post(
                        '/images', body=_png(20 + n)
                    )
                    inserted.append(created.json['id'])
                link = resp.headers.get('Link')
                path = link[1 : link.index('>')] if link else None
            final = [
                image['id'] for image in (await conductor.simulate_get('/images')).json
            ]
            return before, seen, inserted, final

    before, seen, inserted, final = falcon.async_to_sync(page_while_inserting)
    assert len(seen) == len(set(seen))
    assert seen[: len(before)] == before
    assert seen == final[: len(seen)]
    assert set(seen) - set(before) <= set(inserted)


def test_derived_images_are_rendered_once_and_kept(store_config, renders, storage_path):
    store_config.cache_max_entry_bytes = 1
    client = falcon.testing.TestClient(create_app(store_config))
    body = corpus.encode(corpus.pattern((256, 192)), 'PNG')
    created = client.simulate_post('/images', body=body).json
    uri = created['thumbnails'][0]

    bodies = [client.simulate_get(uri) for _ in range(3)]
    assert [resp.headers['X-ASGILook-Cache'] for resp in bodies] == ['Bypass'] * 3
    assert len({resp.content for resp in bodies}) == 1
    assert len(renders) == 1
    kept = stored_files(storage_path / 'derived')
    assert kept == [f'{created["id"]}/{bodies[0].headers["ETag"].strip(chr(34))}.jpeg']

    if store_config.database_url:
        # NOTE: Another process sharing the storage serves it as it is.
        other = falcon.testing.TestClient(create_app(store_config))
        assert other.simulate_get(uri).content == bodies[0].content
        assert len(renders) == 1

    client.simulate_delete(created['image'])
    assert stored_files(storage_path) == []


@pytest.mark.parametrize('database_url', ['sqlite'], indirect=True)
def test_start_up_removes_derived_images_of_unlisted_images(
    store_config, storage_path, caplog
):
    client = falcon.testing.TestClient(create_app(store_config))
    body = corpus.encode(corpus.pattern((256, 192)), 'PNG')
    created = client.simulate_post('/images', body=body).json
    client.simulate_get(created['thumbnails'][0])
    ghost = storage_path / 'derived' / '00000000-0000-4000-8000-00000000000d'
    ghost.mkdir()
    (ghost / 'x.jpeg').write_bytes(b'old')

    falcon.testing.TestClient(create_app(store_config)).simulate_get('/images')
    assert not ghost.exists()
    assert len(stored_files(storage_path / 'derived')) == 1
    assert 'Removed 0 unfinished and 1 orphaned files' in caplog.text


# NOTE: Races and mismatches another process (or an operator) can cause.


def _sqlite_path(store_config):
    return store_config.database_url.removeprefix('sqlite://').partition('?')[0]


@pytest.mark.parametrize('database_url', ['sqlite'], indirect=True)
def test_cancelled_commits_that_happen_anyway_keep_their_files(
    store_config, storage_path
):
    async def cancel_while_locked(operation, *args):
        store = Store(store_config)
        await store.open()
        other = sqlite3.connect(_sqlite_path(store_config), isolation_level=None)
        other.execute('BEGIN IMMEDIATE')
        task = asyncio.ensure_future(operation(store)(*args))
        # NOTE: Long enough to convert and write (a save's file is there,
        #   however busy the machine); the commit waits on the lock.
        await asyncio.sleep(0.5)
        async with asyncio.timeout(30):
            while operation is saving and not os.listdir(storage_path):
                await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.1)
        # NOTE: The other process lets go; the cancelled commit now happens.
        other.execute('COMMIT')
        other.close()
        with pytest.raises(asyncio.CancelledError):
            await task
        return store

    def saving(store):
        return store.save

    image_id = '00000000-0000-4000-8000-0000000000aa'
    store = falcon.async_to_sync(cancel_while_locked, saving, image_id, _png(1))
    assert falcon.async_to_sync(store.find, image_id) is not None
    assert os.listdir(storage_path) == [image_id]

    store = falcon.async_to_sync(
        cancel_while_locked, lambda store: store.delete, image_id
    )
    assert falcon.async_to_sync(store.find, image_id) is None
    assert stored_files(storage_path) == []


@pytest.mark.parametrize('database_url', ['sqlite'], indirect=True)
def test_delete_during_a_render_leaves_no_derived_images(
    store_config, renders, storage_path
):
    renderer, deleter = Store(store_config), Store(store_config)
    image = falcon.async_to_sync(
        renderer.save, FIRST_ID, corpus.encode(corpus.pattern((256, 192)), 'PNG')
    )
    renders.delay = 0.4

    async def race():
        rendering = asyncio.ensure_future(renderer.make_thumbnail(image, (128, 96)))
        await asyncio.sleep(0.1)
        assert await deleter.delete(FIRST_ID)
        return await rendering

    assert decode(falcon.async_to_sync(race)).size == (128, 96)
    assert stored_files(storage_path) == []


@pytest.mark.parametrize('database_url', ['sqlite'], indirect=True)
@pytest.mark.parametrize('count', [12, 3])
def test_a_wrong_database_takes_no_files(store_config, storage_path, caplog, count):
    ids = [f'00000000-0000-4000-8000-{n:012d}' for n in range(count)]
    long_ago = time.time() - 3600
    for image_id in ids:
        (storage_path / image_id).write_bytes(b'an image of another index')
        os.utime(storage_path / image_id, (long_ago, long_ago))

    falcon.testing.TestClient(create_app(store_config)).simulate_get('/images')
    assert sorted(os.listdir(storage_path)) == ids
    assert 'unknown to the index: is this the right database?' in caplog.text


def test_a_listing_that_changes_while_it_is_read_gets_no_validator(
    store_config, closed_after
):
    backend = _failing_backend(store_config)
    store = closed_after(Store(store_config, backend=backend))
    app = falcon.asgi.App()
    app.add_route('/images', Images(store_config, store))

    async def upload_elsewhere():
        # NOTE: Another process's upload lands between the reads.
        await Store(store_config, backend=backend.real).save(FIRST_ID, _png(1))

    backend.after('page', upload_elsewhere)
    resp = falcon.testing.TestClient(app).simulate_get('/images')
    assert resp.status_code == 200
    assert 'ETag' not in resp.headers


# NOTE: The index away (a driver's error) is one line; anything else, a bug
#   perhaps, keeps its traceback.
@pytest.mark.parametrize(
    'error, traceback',
    [
        (backends.IndexUnavailable('PostgreSQL: ConnectionRefusedError (fake)'), False),
        (ConnectionResetError('the database went away (fake)'), True),
    ],
)
def test_when_the_index_cannot_say_the_file_is_kept(
    store_config, storage_path, caplog, error, traceback
):
    backend = _failing_backend(store_config)
    store = Store(store_config, backend=backend)
    for method in ('add', 'get'):
        backend.fail(method, error)
    with pytest.raises(type(error)):
        falcon.async_to_sync(store.save, FIRST_ID, _png(1))
    # NOTE: Kept for the clean-up to judge, rather than lost if it was listed.
    assert os.listdir(storage_path) == [FIRST_ID]
    [record] = [r for r in caplog.records if 'Could not tell' in r.getMessage()]
    assert record.getMessage().startswith(
        f'Could not tell whether {FIRST_ID} is listed'
    )
    assert (record.exc_info is not None) == traceback


def test_the_storage_is_swept_while_the_app_runs(store_config, storage_path):
    store = Store(store_config)
    lifespan = StoreLifespan(store, interval=0.05)

    async def run_a_while():
        await lifespan.process_startup(None, None)
        dead = storage_path / f'.x.{files._HOST}.999999999.abc.tmp'
        dead.write_bytes(b'left by a crash')
        await asyncio.sleep(0.3)
        await lifespan.process_shutdown(None, None)
        return dead

    assert not falcon.async_to_sync(run_a_while).exists()


@pytest.mark.parametrize('database_url', ['sqlite'], indirect=True)
def test_a_busy_database_is_503(store_config, png_image):
    store_config.database_url += '?timeout=0.2'
    app = create_app(store_config)

    async def delete_while_locked():
        async with falcon.testing.ASGIConductor(app) as conductor:
            created = await conductor.simulate_post('/images', body=png_image)
            other = sqlite3.connect(_sqlite_path(store_config), isolation_level=None)
            other.execute('BEGIN IMMEDIATE')
            try:
                return await conductor.simulate_delete(created.json['image'])
            finally:
                other.execute('ROLLBACK')
                other.close()

    resp = falcon.async_to_sync(delete_while_locked)
    assert resp.status_code == 503
    assert resp.headers['Retry-After'] == '1'
    assert resp.json['title'] == 'Index unavailable'


@pytest.mark.parametrize('database_url', ['sqlite'], indirect=True)
def test_reads_never_wait_for_a_write_that_waits(store_config):
    store_config.database_url += '?timeout=10'
    app = create_app(store_config)

    async def read_while_a_delete_waits():
        async with falcon.testing.ASGIConductor(app) as conductor:
            body = corpus.encode(corpus.pattern((256, 192)), 'PNG')
            doomed, kept = [
                as_listed((await conductor.simulate_post('/images', body=body)).json)
                for _ in range(2)
            ]
            other = sqlite3.connect(_sqlite_path(store_config), isolation_level=None)
            other.execute('BEGIN IMMEDIATE')
            try:
                deleting = asyncio.ensure_future(
                    conductor.simulate_delete(doomed['image'])
                )
                await asyncio.sleep(0.2)
                reads = [
                    await conductor.simulate_get('/images'),
                    await conductor.simulate_get(kept['image']),
                    await conductor.simulate_get(kept['thumbnails'][0]),
                ]
                still_waiting = not deleting.done()
            finally:
                other.execute('ROLLBACK')
                other.close()
            return reads, still_waiting, await deleting, kept

    reads, still_waiting, deleted, kept = falcon.async_to_sync(
        read_while_a_delete_waits
    )
    assert still_waiting
    assert [resp.status_code for resp in reads] == [200, 200, 200]
    assert kept in reads[0].json
    assert deleted.status_code == 204


def test_an_index_in_memory_says_so_at_start_up(store_config, caplog):
    caplog.set_level(logging.INFO, logger='asgilook.store')
    falcon.testing.TestClient(create_app(store_config)).simulate_get('/images')
    said = 'every worker process has its own' in caplog.text
    assert said == (store_config.database_url is None)
