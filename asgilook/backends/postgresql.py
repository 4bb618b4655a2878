"""PostgreSQL: many processes on many hosts, image files on shared storage.

asyncpg keeps a small pool per process; every write is one transaction, and
a commit is durable (PostgreSQL's default ``synchronous_commit``).
"""

import asyncio
import contextlib

import asyncpg

from ..records import COLUMNS
from ..records import Record
from . import idempotent_replay
from . import IndexUnavailable
from . import MIGRATIONS
from . import record_hash

_COLUMNS = ', '.join(COLUMNS)
_MARKS = ', '.join(f'${number}' for number in range(1, len(COLUMNS) + 1))

# NOTE: Migrations are applied under an advisory lock, so that processes
#   starting together migrate once.

_MIGRATION_LOCK = 0x617367696C6F6F6B


class PostgreSQLBackend:
    def __init__(self, url: str) -> None:
        self._url = url
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def open(self) -> None:
        if self._pool is not None:
            return
        # NOTE: Requests arriving together at a backend not yet open (start-up
        #   could not reach the server) open one pool, not one each; a pool
        #   that cannot be migrated is closed, not left to the collector.
        async with self._opening:
            if self._pool is not None:
                return
            # NOTE: No statement may hang a request for ever (a stopped server).
            #   No floor of idle connections either: asyncpg would log a
            #   traceback each time a restart of the server dropped it.
            pool = await asyncpg.create_pool(
                self._url, min_size=0, max_size=8, command_timeout=30
            )
            try:
                async with pool.acquire() as connection:
                    await _migrate(connection)
            except BaseException:
                pool.terminate()
                raise
            self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @contextlib.asynccontextmanager
    async def _connection(self):
        # NOTE: A server that is down or unreachable raises what sockets
        #   raise, not a PostgresError: the index is unavailable all the same.
        try:
            await self.open()
            async with self._pool.acquire() as connection:
                yield connection
        except (TimeoutError, OSError) as ex:
            raise IndexUnavailable(f'PostgreSQL: {type(ex).__name__}: {ex}') from ex

    async def add(self, record, idempotency=None):
        async with self._connection() as connection:
            try:
                async with connection.transaction():
                    return await _add(connection, record, idempotency)
            except asyncpg.UniqueViolationError:
                # NOTE: A concurrent request with the same key committed first.
                stored = None
                if idempotency:
                    key, fingerprint = idempotency
                    stored = idempotent_replay(await self.recall(key), key, fingerprint)
                if stored is None:
                    raise
                return stored

    async def recall(self, key):
        async with self._connection() as connection:
            return await _recall(connection, key)

    async def get(self, image_id):
        async with self._connection() as connection:
            row = await connection.fetchrow(
                f'SELECT {_COLUMNS} FROM images WHERE id = $1', image_id
            )
        return Record.from_row(row) if row else None

    async def known(self, image_ids):
        async with self._connection() as connection:
            rows = await connection.fetch(
                'SELECT id FROM images WHERE id = ANY($1::text[])', image_ids
            )
        return {row['id'] for row in rows}

    async def delete(self, image_id):
        async with self._connection() as connection:
            async with connection.transaction():
                row = await connection.fetchrow(
                    f'DELETE FROM images WHERE id = $1 RETURNING {_COLUMNS}', image_id
                )
                if row is None:
                    return False
                await _xor_digest(connection, Record.from_row(row))
        return True

    async def page(self, limit, after=None):
        modified, image_id = after or (-(2**63), '')
        async with self._connection() as connection:
            rows = await connection.fetch(
                f'SELECT {_COLUMNS} FROM images WHERE (modified, id) > ($1, $2) '
                'ORDER BY modified, id LIMIT $3',
                modified,
                image_id,
                limit,
            )
        return [Record.from_row(row) for row in rows]

    async def version(self):
        async with self._connection() as connection:
            digest, changes = await connection.fetchrow(
                'SELECT digest, changes FROM state'
            )
        return f'{digest & (2**64 - 1):016x}-{changes:x}'


async def _migrate(connection):
    async with connection.transaction():
        await connection.execute('SELECT pg_advisory_xact_lock($1)', _MIGRATION_LOCK)
        await connection.execute(
            'CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)'
        )
        version = await connection.fetchval('SELECT max(version) FROM schema_version')
        for number, script in enumerate(MIGRATIONS[version or 0 :], (version or 0) + 1):
            await connection.execute(script)
            await connection.execute('INSERT INTO schema_version VALUES ($1)', number)


async def _add(connection, record, idempotency):
    if idempotency:
        key, fingerprint = idempotency
        stored = idempotent_replay(await _recall(connection, key), key, fingerprint)
        if stored:
            return stored
    await connection.execute(
        f'INSERT INTO images ({_COLUMNS}) VALUES ({_MARKS})',
        *record.row(),
    )
    await _xor_digest(connection, record)
    if idempotency:
        await connection.execute(
            'INSERT INTO idempotency VALUES ($1, $2, $3)', *idempotency, record.image_id
        )
    return record


async def _xor_digest(connection, record):
    await connection.execute(
        'UPDATE state SET digest = digest # $1, changes = changes + 1',
        record_hash(record),
    )


async def _recall(connection, key):
    row = await connection.fetchrow(
        f'SELECT fingerprint, {_COLUMNS} FROM idempotency JOIN images '
        'ON images.id = idempotency.image_id WHERE key = $1',
        key,
    )
    return (row['fingerprint'], Record.from_row(tuple(row)[1:])) if row else None
