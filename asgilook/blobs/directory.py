"""Blobs as files in a directory: local, or one that several hosts mount."""

import asyncio
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
import contextlib
import logging
import os
import pathlib
from typing import Any

import aiofiles
import aiofiles.os

from .. import errors
from . import DERIVED
from . import files
from . import read_error
from . import write_error

logger = logging.getLogger(__name__)


def blob_path(config: Any, name: str) -> pathlib.Path:
    """Where the blob ``name`` is kept under ``config.storage_path``."""
    # NOTE: Read at every call: tests written for the tutorial set
    #   storage_path (to a str, even) after Config() is made.
    return pathlib.Path(config.storage_path) / name


class DirectoryBlobs:
    """Image files in ``config.storage_path``, written atomically."""

    # NOTE: How old a leftover must be before clean-up takes it: younger ones
    #   may be another process's upload in progress.
    GRACE = 600.0
    # NOTE: Past this many (or a twentieth of the files), orphans are taken
    #   for a sign of a wrong index rather than of crashes.
    MOST_ORPHANS = 10

    def __init__(self, config, workers) -> None:
        self._config = config
        self._workers = workers

    async def start(self) -> None:
        """Nothing to connect to: the directory was made with the config."""

    async def stop(self) -> None:
        """Nothing held between calls."""

    def path(self, name: str) -> pathlib.Path:
        return blob_path(self._config, name)

    async def write(self, name: str, data: bytes) -> None:
        path = self.path(name)
        job = self._workers.submit(files.write_atomically, path, data, self.path(''))
        try:
            await asyncio.shield(job)
        except asyncio.CancelledError:
            # NOTE: The writing thread cannot be stopped; once it is done, take
            #   back what it wrote, for nobody will be told the image exists.
            job.add_done_callback(lambda _: self._workers.submit(files.remove, path))
            raise
        except OSError as ex:
            raise write_error(ex) from ex

    async def read(self, name: str) -> bytes:
        try:
            async with aiofiles.open(self.path(name), 'rb') as blob:
                return await blob.read()
        except OSError as ex:
            raise read_error(ex) from ex

    async def open(self, name: str) -> 'FileReader':
        try:
            return FileReader(await aiofiles.open(self.path(name), 'rb'))
        except OSError as ex:
            raise read_error(ex) from ex

    async def size(self, name: str) -> int:
        try:
            return files.regular_size(await aiofiles.os.stat(self.path(name)))
        except OSError as ex:
            raise read_error(ex) from ex

    async def remove(self, name: str) -> None:
        await self._workers.run(files.remove, self.path(name))

    async def remove_all(self, prefix: str) -> None:
        await self._workers.run(files.remove_tree, self.path(prefix))

    @contextlib.asynccontextmanager
    async def removing(
        self, name: str, still_wanted: Callable[[], Awaitable[bool]]
    ) -> AsyncIterator[None]:
        path = self.path(name)
        # NOTE: Renamed aside first: a rename fails early (read-only storage)
        #   and is undone easily; a leftover is cleaned up at start-up.
        tomb = path.with_name(files.temporary_name(path.name))
        try:
            await self._workers.run(files.set_aside, path, tomb)
        except FileNotFoundError:
            tomb = None
        except OSError as ex:
            raise write_error(ex, 'removed') from ex
        try:
            yield
        except BaseException:
            if tomb is not None:
                wanted = await asyncio.shield(still_wanted())
                await self._workers.run(
                    *((os.replace, tomb, path) if wanted else (files.remove, tomb))
                )
            raise
        if tomb is not None:
            await self._workers.run(files.remove, tomb)

    async def clean_up(
        self, known: Callable[[list[str]], Awaitable[set[str]]] | None
    ) -> tuple[int, int]:
        directory = self.path('')
        try:
            dead, old = await self._workers.run(files.leftovers, directory, self.GRACE)
            # NOTE: Derived images of images that are no longer listed, too.
            old += await self._workers.run(files.derived_dirs, directory / DERIVED)
        except OSError as ex:
            raise errors.StorageUnavailable(
                f'The storage could not be searched ({ex}).'
            ) from ex
        listed = await known([path.name for path in old]) if known else None
        orphans = [
            path for path in old if listed is not None and path.name not in listed
        ]
        if files.implausible_orphans(len(orphans), len(old), self.MOST_ORPHANS):
            # NOTE: More like an index that does not belong to this storage (a
            #   new database, a mistyped URL) than like a crash: touch nothing.
            logger.error(
                'Found %d of %d files in %s unknown to the index: is this the right '
                'database? Leaving them all alone.',
                len(orphans),
                len(old),
                directory,
            )
            orphans = []
        for path in dead + orphans:
            await self._workers.run(files.remove_tree, path)
        return len(dead), len(orphans)


class FileReader:
    """A blob's open file, read as the contract says (errors as domain errors)."""

    def __init__(self, file: Any) -> None:
        self._file = file

    async def seek(self, offset: int, length: int | None = None) -> int:
        # NOTE: A file needs no warning of how much will be read.
        return await self._file.seek(offset)

    async def read(self, size: int = -1) -> bytes:
        try:
            return await self._file.read(size)
        except OSError as ex:
            raise read_error(ex) from ex

    async def close(self) -> None:
        await self._file.close()
