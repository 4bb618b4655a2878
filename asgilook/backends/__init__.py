"""Where image metadata lives: one small contract, one module per backend.

The in-memory backend is the tutorial's per-process dict, and the default;
``sqlite:///absolute/path.db`` serves any number of processes on one
machine; ``postgresql://…`` any number of processes on many machines (with
the image files on storage they share).
"""

import hashlib
import sqlite3
from typing import Protocol

from .. import errors
from ..records import Record
from ..records import to_micros

# NOTE: One entry per schema version, in SQL that SQLite and PostgreSQL both
#   speak (SQLite gives BIGINT columns its integer affinity).
MIGRATIONS = [
    """
    CREATE TABLE images (
        id TEXT PRIMARY KEY,
        modified BIGINT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        frames INTEGER NOT NULL,
        digest TEXT NOT NULL,
        color TEXT,
        placeholder TEXT
    );
    CREATE INDEX images_order ON images (modified, id);
    CREATE TABLE idempotency (
        key TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE
    );
    CREATE TABLE state (id INTEGER PRIMARY KEY CHECK (id = 1), digest BIGINT);
    INSERT INTO state VALUES (1, 0);
    """,
    # NOTE: A change counter beside the digest: the digest of a set returns
    #   when an image comes and goes; the listing version must not.
    """
    ALTER TABLE state ADD COLUMN changes BIGINT NOT NULL DEFAULT 0;
    """,
    # NOTE: Images stored before delete tokens existed have none.
    """
    ALTER TABLE images ADD COLUMN delete_hash TEXT;
    """,
]


class IndexUnavailable(Exception):
    """The database did not answer (down, unreachable, too slow)."""


def idempotency_conflict(key: str) -> errors.IdempotencyKeyReused:
    """The error for an Idempotency-Key used before, for a different upload."""
    return errors.IdempotencyKeyReused(
        f'The Idempotency-Key {key[:100]!r} was used before for a different image; '
        'use a new key for a new upload.'
    )


class Backend(Protocol):
    """The contract every backend keeps."""

    async def open(self) -> None:
        """Connect, and create or migrate the schema; again after close()."""

    async def close(self) -> None: ...

    async def add(
        self, record: Record, idempotency: tuple[str, str] | None = None
    ) -> Record:
        """Commit a new record, durably, before returning it.

        With ``idempotency`` (a key and a fingerprint of the upload), a key
        seen before returns the record first stored under it instead, or
        raises :func:`idempotency_conflict`'s error if the fingerprints differ.
        """

    async def recall(self, key: str) -> tuple[str, Record] | None:
        """The fingerprint and record an Idempotency-Key stored, if any."""

    async def get(self, image_id: str) -> Record | None: ...

    async def known(self, image_ids: list[str]) -> set[str]:
        """Which of these ids have a record (one round trip, or a few)."""

    async def delete(self, image_id: str) -> bool:
        """Remove a record (and its idempotency keys); False if absent."""

    async def page(
        self, limit: int | None, after: tuple[int, str] | None = None
    ) -> list[Record]:
        """Records in listing order (oldest first), after a position."""

    async def version(self) -> str:
        """Changes whenever the set of records does, and never comes back."""


def idempotent_replay(
    remembered: tuple[str, Record] | None, key: str, fingerprint: str
) -> Record | None:
    """The record to answer a retried upload with, if this is a retry.

    ``remembered`` is what :meth:`Backend.recall` gave for ``key``; a key
    stored for a different upload raises.
    """
    if remembered is None:
        return None
    if remembered[0] != fingerprint:
        raise idempotency_conflict(key)
    return remembered[1]


def driver_errors() -> tuple[type[Exception], ...]:
    """What the database drivers raise when the database is away or busy."""
    found: list[type[Exception]] = [IndexUnavailable, sqlite3.Error]
    try:
        import asyncpg
    except ImportError:
        pass
    else:
        found += [asyncpg.PostgresError, asyncpg.InterfaceError]
    return tuple(found)


def record_hash(record: Record) -> int:
    """A 63-bit hash of a record; the listing version XORs them all."""
    entry = f'{record.image_id}:{to_micros(record.modified)}:{record.digest}'
    return int.from_bytes(hashlib.sha256(entry.encode()).digest()[:8], 'big') >> 1


def from_url(url: str | None) -> Backend:
    """The backend a database URL names (None: in memory)."""
    scheme = (url or 'memory:').partition(':')[0].lower()
    if scheme == 'memory':
        from .memory import MemoryBackend

        return MemoryBackend()
    if scheme == 'sqlite':
        from .sqlite import SQLiteBackend

        return SQLiteBackend.from_url(url)
    if scheme in ('postgresql', 'postgres'):
        try:
            from .postgresql import PostgreSQLBackend
        except ImportError as ex:
            raise ValueError(
                f'{url!r} needs asyncpg: pip install "asgilook[postgresql]"'
            ) from ex
        return PostgreSQLBackend(url)
    raise ValueError(
        f'Unsupported database URL {url!r}: use sqlite:///absolute/path.db or '
        'postgresql://user@host/database (or nothing, for in-memory)'
    )
