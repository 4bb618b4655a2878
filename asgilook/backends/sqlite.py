"""SQLite: embedded, one machine, any number of worker processes.

The standard library's driver runs on threads of its own, so the event loop
never waits for the database: one connection writes, another reads, so that
a write waiting for another process's lock never holds up a read. WAL mode
lets readers and one writer in several processes work at once;
``synchronous=FULL`` makes a commit durable.

What the cache validates its hits with (a record, the listing's version) is
remembered between commits: a third connection, used on the event loop,
reads ``PRAGMA data_version`` (a few microseconds, no disk access), which
changes whenever any other connection of any process commits. While it does
not, a remembered answer is still the database's answer.
"""

import asyncio
import concurrent.futures
import contextlib
import sqlite3
import urllib.parse

from ..records import COLUMNS
from ..records import Record
from . import idempotent_replay
from . import MIGRATIONS
from . import record_hash

_COLUMNS = ', '.join(COLUMNS)
_MARKS = ', '.join('?' * len(COLUMNS))

# NOTE: PRAGMA user_version says how many MIGRATIONS a file has had.


class SQLiteBackend:
    # NOTE: How long to wait for another process's write to finish; a URL
    #   may say otherwise (sqlite:///path.db?timeout=5).
    BUSY_TIMEOUT = 30.0
    # NOTE: How many answers are remembered between two commits, at most.
    MEMO_SIZE = 4096

    def __init__(self, path: str, timeout: float = BUSY_TIMEOUT) -> None:
        self._path = path
        self._timeout = timeout
        self._writer = _Lane('asgilook-sqlite-write')
        self._reader = _Lane('asgilook-sqlite-read')
        # NOTE: Writes whose caller was cancelled go on in their thread.
        self._abandoned: set[asyncio.Future] = set()
        self._watch: sqlite3.Connection | None = None
        self._memo: dict = {}
        self._memo_version: int | None = None

    @classmethod
    def from_url(cls, url: str) -> 'SQLiteBackend':
        parts = urllib.parse.urlsplit(url)
        path = urllib.parse.unquote(parts.path)
        if not path.startswith('/') or path == '/':
            raise ValueError(
                f'{url!r} is not sqlite:///absolute/path.db (three slashes, then '
                'an absolute path)'
            )
        query = urllib.parse.parse_qs(parts.query)
        try:
            timeout = float(query.pop('timeout', [cls.BUSY_TIMEOUT])[-1])
        except ValueError:
            timeout = -1.0
        if query or not 0 < timeout < float('inf'):
            raise ValueError(
                f'{url!r} may only have a timeout=SECONDS (a positive number) '
                'after the path'
            )
        return cls(path, timeout)

    async def open(self) -> None:
        # NOTE: The writer first: it makes or migrates the schema.
        await self._writer.open(self._connect, True)
        await self._reader.open(self._connect, False)
        if self._watch is None:
            self._watch = await self._reader.run(self._connect_watch)

    async def close(self) -> None:
        await self._writer.close()
        await self._reader.close()
        if self._watch is not None:
            watch, self._watch = self._watch, None
            self._memo, self._memo_version = {}, None
            await self._reader.run(watch.close)

    def _connect_watch(self) -> sqlite3.Connection:
        # NOTE: Never waits for a lock: the event loop runs its statements.
        connection = sqlite3.connect(
            self._path, timeout=0, isolation_level=None, check_same_thread=False
        )
        connection.execute('PRAGMA query_only = ON')
        return connection

    def _connect(self, writer: bool) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._path,
            timeout=self._timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        if not writer:
            connection.execute('PRAGMA query_only = ON')
            return connection
        connection.execute('PRAGMA journal_mode = WAL')
        connection.execute('PRAGMA synchronous = FULL')
        connection.execute('PRAGMA foreign_keys = ON')
        # NOTE: The write lock only when there is something to migrate.
        if _schema_version(connection) == len(MIGRATIONS):
            return connection
        with _transaction(connection):
            version = _schema_version(connection)
            for number, script in enumerate(MIGRATIONS[version:], version + 1):
                for statement in filter(str.strip, script.split(';')):
                    connection.execute(statement)
                connection.execute(f'PRAGMA user_version = {number}')
        return connection

    async def _write(self, func, *args):
        await self.open()
        job = asyncio.ensure_future(self._writer.call(func, *args))
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            self._abandoned.add(job)
            job.add_done_callback(self._abandoned.discard)
            raise

    async def _read(self, func, *args):
        await self.open()
        if self._abandoned:
            # NOTE: Whoever asks after a cancelled write (the store, to know
            #   whether to keep a file) must see how that write ended.
            await asyncio.wait(self._abandoned)
        return await self._reader.call(func, *args)

    async def add(self, record, idempotency=None):
        return await self._write(_add, record, idempotency)

    async def recall(self, key):
        return await self._read(_recall, key)

    async def get(self, image_id):
        return await self._remembered(image_id, _get, image_id)

    async def known(self, image_ids):
        return await self._read(_known, image_ids)

    async def delete(self, image_id):
        return await self._write(_delete, image_id)

    async def page(self, limit, after=None):
        return await self._read(_page, limit, after)

    async def version(self):
        return await self._remembered(None, _version)

    async def _remembered(self, key, func, *args):
        """A read, answered from memory while no commit has happened since."""
        await self.open()
        data_version = None if self._abandoned else self._data_version()
        if data_version is not None and data_version == self._memo_version:
            if key in self._memo:
                return self._memo[key]
        elif data_version is not None:
            self._memo, self._memo_version = {}, data_version
        value = await self._read(func, *args)
        # NOTE: Kept only if no commit was seen meanwhile; one that was not
        #   seen yet changes the data version, and the next read forgets it.
        if (
            data_version is not None
            and data_version == self._memo_version
            and len(self._memo) < self.MEMO_SIZE
        ):
            self._memo[key] = value
        return value

    def _data_version(self):
        try:
            return self._watch.execute('PRAGMA data_version').fetchone()[0]
        except sqlite3.Error:
            # NOTE: Busy (a recovery, a checkpoint): ask the reader instead.
            return None


class _Lane:
    """One connection on one thread of its own, as sqlite3 wants them."""

    def __init__(self, name):
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=name
        )
        self._connection = None

    async def open(self, connect, *args):
        if self._connection is None:
            self._connection = await self.run(connect, *args)

    async def close(self):
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await self.run(connection.close)

    async def call(self, func, *args):
        return await self.run(func, self._connection, *args)

    async def run(self, func, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, func, *args)


def _schema_version(connection):
    return connection.execute('PRAGMA user_version').fetchone()[0]


@contextlib.contextmanager
def _transaction(connection):
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error."""
    # NOTE: IMMEDIATE takes the write lock now, so that two processes never
    #   both read, then both try to write.
    connection.execute('BEGIN IMMEDIATE')
    try:
        yield connection
    except BaseException:
        connection.execute('ROLLBACK')
        raise
    connection.execute('COMMIT')


def _add(connection, record, idempotency):
    with _transaction(connection):
        if idempotency:
            key, fingerprint = idempotency
            stored = idempotent_replay(_recall(connection, key), key, fingerprint)
            if stored:
                return stored
        connection.execute(
            f'INSERT INTO images ({_COLUMNS}) VALUES ({_MARKS})',
            record.row(),
        )
        _xor_digest(connection, record)
        if idempotency:
            connection.execute(
                'INSERT INTO idempotency VALUES (?, ?, ?)',
                (*idempotency, record.image_id),
            )
    return record


def _xor_digest(connection, record):
    # NOTE: SQLite has no XOR operator; (a | b) - (a & b) is one.
    value = record_hash(record)
    connection.execute(
        'UPDATE state SET digest = (digest | ?) - (digest & ?), changes = changes + 1',
        (value, value),
    )


def _recall(connection, key):
    row = connection.execute(
        f'SELECT fingerprint, {_COLUMNS} FROM idempotency JOIN images '
        'ON images.id = idempotency.image_id WHERE key = ?',
        (key,),
    ).fetchone()
    return (row[0], Record.from_row(row[1:])) if row else None


def _get(connection, image_id):
    row = connection.execute(
        f'SELECT {_COLUMNS} FROM images WHERE id = ?', (image_id,)
    ).fetchone()
    return Record.from_row(row) if row else None


def _known(connection, image_ids):
    found = set()
    # NOTE: In batches: SQLite limits how many parameters one statement takes.
    for start in range(0, len(image_ids), 500):
        batch = image_ids[start : start + 500]
        marks = ', '.join('?' * len(batch))
        rows = connection.execute(f'SELECT id FROM images WHERE id IN ({marks})', batch)
        found.update(image_id for (image_id,) in rows)
    return found


def _delete(connection, image_id):
    with _transaction(connection):
        record = _get(connection, image_id)
        if record is None:
            return False
        connection.execute('DELETE FROM images WHERE id = ?', (image_id,))
        _xor_digest(connection, record)
    return True


def _page(connection, limit, after):
    modified, image_id = after or (-(2**63), '')
    rows = connection.execute(
        f'SELECT {_COLUMNS} FROM images WHERE (modified, id) > (?, ?) '
        'ORDER BY modified, id LIMIT ?',
        (modified, image_id, -1 if limit is None else limit),
    )
    return [Record.from_row(row) for row in rows]


def _version(connection):
    digest, changes = connection.execute('SELECT digest, changes FROM state').fetchone()
    return f'{digest & (2**64 - 1):016x}-{changes:x}'
