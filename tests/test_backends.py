"""The backend contract, run against memory, SQLite and a real PostgreSQL."""

import asyncio
import datetime
import sqlite3

import falcon
import pytest

from asgilook import backends
from asgilook import errors
from asgilook.records import COLUMNS

T0 = datetime.datetime(2026, 11, 21, 6, 0, 0, 123456, datetime.UTC)


def record(number, seconds=None):
    return backends.Record(
        image_id=f'{number:08d}-0000-4000-8000-000000000000',
        width=640 + number,
        height=360,
        modified=T0
        + datetime.timedelta(seconds=number if seconds is None else seconds),
        frames=1 + number % 3,
        digest=f'{number:032x}',
        color='#102030',
        placeholder='data:image/jpeg;base64,AAAA',
    )


def run(coroutine_function, *args):
    return falcon.async_to_sync(coroutine_function, *args)


@pytest.fixture
def backend(database_url):
    backend = backends.from_url(database_url)
    run(backend.open)
    yield backend
    run(backend.close)


def test_add_get_round_trip(backend):
    stored = run(backend.add, record(1))
    assert stored == record(1)
    assert run(backend.get, record(1).image_id) == record(1)
    assert run(backend.get, 'nope') is None


def test_page_order_and_cursor(backend):
    # NOTE: Inserted out of order; two share a modification time.
    for number, seconds in [(3, 3), (1, 1), (2, 2), (4, 2), (5, 5)]:
        run(backend.add, record(number, seconds))

    everything = run(backend.page, None)
    assert [r.image_id[:8] for r in everything] == [
        '00000001', '00000002', '00000004', '00000003', '00000005'
    ]  # fmt: skip
    first = run(backend.page, 2)
    assert first == everything[:2]
    second = run(backend.page, 2, first[-1].position)
    assert second == everything[2:4]
    assert run(backend.page, 10, second[-1].position) == everything[4:]
    assert run(backend.page, 10, everything[-1].position) == []


def test_known(backend):
    run(backend.add, record(1))
    run(backend.add, record(2))
    ids = [record(n).image_id for n in range(1, 4)]
    assert run(backend.known, ids) == set(ids[:2])
    assert run(backend.known, []) == set()


def test_delete(backend):
    run(backend.add, record(1))
    run(backend.add, record(2))

    assert run(backend.delete, record(1).image_id) is True
    assert run(backend.delete, record(1).image_id) is False
    assert run(backend.get, record(1).image_id) is None
    assert run(backend.page, None) == [record(2)]


def test_version_changes_with_the_set_and_never_comes_back(backend):
    versions = [run(backend.version)]
    run(backend.add, record(1))
    versions.append(run(backend.version))
    run(backend.add, record(2))
    versions.append(run(backend.version))
    run(backend.delete, record(2).image_id)
    versions.append(run(backend.version))
    run(backend.delete, record(1).image_id)
    versions.append(run(backend.version))
    run(backend.delete, record(1).image_id)
    versions.append(run(backend.version))

    # NOTE: Back to the same set twice, yet a new version each time: a page
    #   cached under an old version can never pass for the current one.
    assert len(set(versions[:5])) == 5
    assert versions[5] == versions[4]


def test_idempotency(backend):
    first = run(backend.add, record(1), ('key-1', 'fingerprint-a'))
    again = run(backend.add, record(2), ('key-1', 'fingerprint-a'))

    assert again == first
    assert run(backend.get, record(2).image_id) is None
    assert run(backend.recall, 'key-1') == ('fingerprint-a', first)
    assert run(backend.recall, 'key-2') is None

    with pytest.raises(errors.IdempotencyKeyReused):
        run(backend.add, record(3), ('key-1', 'fingerprint-b'))

    # NOTE: Deleting the image frees its key.
    run(backend.delete, first.image_id)
    assert run(backend.recall, 'key-1') is None
    assert run(backend.add, record(4), ('key-1', 'fingerprint-b')) == record(4)


def test_reopen_after_close(backend):
    run(backend.add, record(1))
    run(backend.close)
    run(backend.close)
    assert run(backend.get, record(1).image_id) == record(1)


@pytest.mark.parametrize('database_url', ['sqlite', 'postgresql'], indirect=True)
def test_persistent_backends_survive_a_new_instance(database_url):
    first = backends.from_url(database_url)
    run(first.add, record(1), ('key', 'fp'))
    run(first.close)

    second = backends.from_url(database_url)
    try:
        assert run(second.get, record(1).image_id) == record(1)
        assert run(second.recall, 'key') == ('fp', record(1))
    finally:
        run(second.close)


@pytest.mark.parametrize(
    'url',
    [
        'mysql://x',
        'sqlite://relative.db',
        'sqlite:///',
        'redis://localhost',
        'sqlite:///tmp/x.db?timeout=soon',
        'sqlite:///tmp/x.db?timeout=0',
        'sqlite:///tmp/x.db?timeout=inf',
        'sqlite:///tmp/x.db?cache=shared',
    ],
)
def test_bad_urls(url):
    with pytest.raises(ValueError, match='sqlite:///|Unsupported'):
        backends.from_url(url)


@pytest.mark.parametrize('database_url', ['postgresql'], indirect=True)
@pytest.mark.parametrize('fingerprint', ['fp', 'another'])
def test_concurrent_idempotent_adds_on_postgresql(database_url, backend, fingerprint):
    import asyncpg

    async def race():
        await backend.page(1)
        rival = await asyncpg.connect(database_url)
        transaction = rival.transaction()
        await transaction.start()
        first = record(1)
        marks = ', '.join(f'${n}' for n in range(1, len(COLUMNS) + 1))
        await rival.execute(
            f'INSERT INTO images ({", ".join(COLUMNS)}) VALUES ({marks})', *first.row()
        )
        await rival.execute(
            "INSERT INTO idempotency VALUES ('k', 'fp', $1)", first.image_id
        )
        # NOTE: Our add waits on the key's unique index until the rival commits.
        ours = asyncio.ensure_future(backend.add(record(2), ('k', fingerprint)))
        await asyncio.sleep(0.3)
        assert not ours.done()
        await transaction.commit()
        await rival.close()
        return await ours

    if fingerprint == 'fp':
        assert falcon.async_to_sync(race) == record(1)
    else:
        with pytest.raises(errors.IdempotencyKeyReused):
            falcon.async_to_sync(race)
    assert run(backend.get, record(2).image_id) is None


@pytest.mark.parametrize('database_url', ['postgresql'], indirect=True)
def test_duplicate_ids_are_refused_on_postgresql(backend):
    import asyncpg

    run(backend.add, record(1))
    with pytest.raises(asyncpg.UniqueViolationError):
        run(backend.add, record(1))


def test_postgresql_urls_need_asyncpg(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, 'asyncpg', None)
    monkeypatch.delitem(sys.modules, 'asgilook.backends.postgresql', raising=False)
    with pytest.raises(ValueError, match='needs asyncpg'):
        backends.from_url('postgresql://localhost/x')


def test_driver_errors(monkeypatch):
    import sqlite3
    import sys

    import asyncpg

    assert backends.driver_errors() == (
        backends.IndexUnavailable,
        sqlite3.Error,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
    )
    monkeypatch.setitem(sys.modules, 'asyncpg', None)
    assert backends.driver_errors() == (backends.IndexUnavailable, sqlite3.Error)


def other_sessions(database_url):
    """How many connections, besides the one asking, the server holds."""
    import asyncpg

    async def count():
        connection = await asyncpg.connect(database_url)
        try:
            return await connection.fetchval(
                'SELECT count(*) FROM pg_stat_activity '
                'WHERE datname = current_database() AND pid <> pg_backend_pid()'
            )
        finally:
            await connection.close()

    return run(count)


@pytest.mark.parametrize('database_url', ['postgresql'], indirect=True)
def test_requests_together_open_one_pool_on_postgresql(database_url):
    backend = backends.from_url(database_url)

    async def together():
        return await asyncio.gather(*(backend.page(1) for _ in range(6)))

    assert run(together) == [[]] * 6
    run(backend.close)
    # NOTE: A pool each would leave five connections to the collector.
    assert other_sessions(database_url) == 0


@pytest.mark.parametrize('database_url', ['postgresql'], indirect=True)
def test_a_pool_that_cannot_migrate_is_closed_on_postgresql(database_url):
    import asyncpg

    async def squat():
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute('CREATE TABLE images (unrelated TEXT)')
        finally:
            await connection.close()

    run(squat)
    backend = backends.from_url(database_url)
    with pytest.raises(asyncpg.DuplicateTableError):
        run(backend.open)
    assert other_sessions(database_url) == 0
    with pytest.raises(asyncpg.DuplicateTableError):
        run(backend.page, 1)
    assert other_sessions(database_url) == 0


@pytest.mark.parametrize('database_url', ['sqlite', 'postgresql'], indirect=True)
def test_what_another_process_commits_is_seen_at_once(backend, database_url):
    other = backends.from_url(database_url)
    image_id = record(1).image_id
    assert run(backend.get, image_id) is None
    before = run(backend.version)

    run(other.add, record(1))
    assert run(backend.get, image_id) == record(1)
    after = run(backend.version)
    assert after != before
    # NOTE: Asked again with nothing changed: the same answers.
    assert run(backend.get, image_id) == record(1)
    assert run(backend.version) == after

    run(other.delete, image_id)
    assert run(backend.get, image_id) is None
    assert run(backend.version) not in (before, after)
    run(other.close)


@pytest.mark.parametrize('database_url', ['sqlite'], indirect=True)
def test_sqlite_sees_any_connections_commit(backend, database_url):
    run(backend.add, record(1))
    run(backend.add, record(2))
    backend.MEMO_SIZE = 1
    assert run(backend.get, record(1).image_id) == record(1)
    assert run(backend.get, record(2).image_id) == record(2)
    version = run(backend.version)

    path = database_url.removeprefix('sqlite://')
    with sqlite3.connect(path, isolation_level=None) as raw:
        raw.execute('DELETE FROM images WHERE id = ?', (record(1).image_id,))
        raw.execute('UPDATE state SET changes = changes + 1')
    assert run(backend.get, record(1).image_id) is None
    assert run(backend.get, record(2).image_id) == record(2)
    assert run(backend.version) != version


@pytest.mark.parametrize('database_url', ['sqlite'], indirect=True)
def test_sqlite_reads_on_when_the_data_version_cannot_be_read(backend):
    run(backend.add, record(1))
    assert run(backend.get, record(1).image_id) == record(1)
    # NOTE: No public way to make PRAGMA data_version fail (a busy database,
    #   a recovery): its connection, closed, fails the same way.
    backend._watch.close()

    assert run(backend.get, record(1).image_id) == record(1)
    run(backend.delete, record(1).image_id)
    assert run(backend.get, record(1).image_id) is None
