"""Where image bytes live: a small interface, and the directory behind it.

The store keeps its index in a backend (``backends/``) and its bytes in
blobs. Today the blobs are files in ``storage_path``, a local directory or
one that several hosts mount; an object store would be another class with
the same five methods.
"""

import asyncio
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
import contextlib
from contextlib import AbstractAsyncContextManager
import logging
import os
import pathlib
from typing import Any
from typing import Protocol

import aiofiles
import aiofiles.os

from . import files

logger = logging.getLogger(__name__)


class Blobs(Protocol):
    """The contract a place for image bytes keeps."""

    async def write(self, name: str, data: bytes) -> None:
        """Store ``data`` durably, all or nothing, before returning."""

    async def read(self, name: str) -> bytes: ...

    async def open(self, name: str) -> Any:
        """A reader (``seek``, ``read``, ``close``, all awaitable) for streaming."""

    async def size(self, name: str) -> int: ...

    async def remove(self, name: str) -> None:
        """Remove a blob; one that is already gone is no error."""

    def removing(
        self, name: str, still_wanted: Callable[[], Awaitable[bool]]
    ) -> AbstractAsyncContextManager[None]:
        """Take a blob out of sight for the block; gone if it ends well.

        Raises a storage error (and changes nothing) when the blob cannot be
        taken away. When the block raises, the blob is put back if
        ``still_wanted()`` says so (the block may have done its part anyway).
        """

    async def clean_up(
        self, known: Callable[[list[str]], Awaitable[set[str]]] | None
    ) -> tuple[int, int]:
        """Remove what crashes left behind; say how many unfinished and orphans.

        ``known`` tells which names the index lists; without one (an index
        that does not outlive its process), no file counts as an orphan.
        """


# NOTE: Where derived images (thumbnails, other formats) are kept, one
#   directory per image, so that they go with it in one step.
DERIVED = 'derived'


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

    def path(self, name: str) -> pathlib.Path:
        # NOTE: Read at every call: tests written for the tutorial set
        #   storage_path (to a str, even) after Config() is made.
        return pathlib.Path(self._config.storage_path) / name

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
            raise files.storage_error(ex) from ex

    async def read(self, name: str) -> bytes:
        try:
            async with aiofiles.open(self.path(name), 'rb') as blob:
                return await blob.read()
        except OSError as ex:
            raise files.read_error(ex) from ex

    async def open(self, name: str) -> Any:
        try:
            return await aiofiles.open(self.path(name), 'rb')
        except OSError as ex:
            raise files.read_error(ex) from ex

    async def size(self, name: str) -> int:
        try:
            return (await aiofiles.os.stat(self.path(name))).st_size
        except OSError as ex:
            raise files.read_error(ex) from ex

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
            await self._workers.run(os.replace, path, tomb)
        except FileNotFoundError:
            tomb = None
        except OSError as ex:
            raise files.storage_error(ex) from ex
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
        dead, old = await self._workers.run(files.leftovers, directory, self.GRACE)
        # NOTE: Derived images of images that are no longer listed, too.
        old += await self._workers.run(files.derived_dirs, directory / DERIVED)
        listed = await known([path.name for path in old]) if known else None
        orphans = [
            path for path in old if listed is not None and path.name not in listed
        ]
        if len(orphans) > max(self.MOST_ORPHANS, len(old) // 20):
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
