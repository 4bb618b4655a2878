"""Where image bytes live: one small contract, one module per kind of place.

The store keeps its index in a backend (``backends/``) and its bytes in
blobs. A blob has a name: an image's id for its stored JPEG, and
``derived/{id}/…`` for the images derived from it (thumbnails, other
formats), so that everything of one image goes with one
:meth:`Blobs.remove_all`. Every failure a place for blobs meets is raised as
one of the domain errors below, never as its own exception: the store and
the resources know nothing of files.

The blobs are files in ``storage_path`` (``directory.py``): a local
directory, or one that several hosts mount; or, given an ``s3://`` URL,
objects in an S3-compatible bucket (``s3.py``) that several hosts share.
"""

from collections.abc import Awaitable
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
import errno
import os
from typing import Any
from typing import Protocol

from .. import errors
from . import s3url

# NOTE: Where derived images are kept, one prefix per image.
DERIVED = 'derived'


class Blobs(Protocol):
    """The contract a place for image bytes keeps.

    Reads raise :class:`~asgilook.errors.FileMissing` for a name that is not
    there and :class:`~asgilook.errors.StorageUnavailable` when the place
    cannot answer; writes raise :class:`~asgilook.errors.StorageFull` or
    :class:`~asgilook.errors.StorageUnavailable`.
    """

    async def start(self) -> None:
        """Get ready to serve (when the app starts); raise if it never can."""

    async def stop(self) -> None:
        """Let go of what ``start`` or any call took (when the app stops)."""

    async def write(self, name: str, data: bytes) -> None:
        """Store ``data`` durably, all or nothing, before returning."""

    async def read(self, name: str) -> bytes:
        """All the bytes of a blob."""

    async def open(self, name: str) -> Any:
        """A reader for streaming, with three awaitable methods.

        ``seek(offset, length=None)`` says where to read from and how many
        bytes will be read from there (None: up to the end), so that a reader
        may fetch them at once; ``read(size)`` gives the next bytes (at most
        ``size``, empty at the end); ``close()`` lets go of what it holds.
        Reads raise domain errors only, as every call here does.
        """

    async def size(self, name: str) -> int:
        """The length of a blob in bytes."""

    async def remove(self, name: str) -> None:
        """Remove a blob; one that is already gone is no error."""

    async def remove_all(self, prefix: str) -> None:
        """Remove every blob under ``prefix/``; none there is no error."""

    def removing(
        self, name: str, still_wanted: Callable[[], Awaitable[bool]]
    ) -> AbstractAsyncContextManager[None]:
        """Remove a blob around the block that forgets it; gone if it ends well.

        Raises a storage error (and changes nothing) when the blob cannot be
        taken away. When the block raises, the blob stays (or is put back)
        if ``still_wanted()`` says so (the block may have done its part
        anyway), and goes if not. A directory renames the file aside for the
        block; S3, which cannot rename, deletes the object after it.
        """

    async def clean_up(
        self, known: Callable[[list[str]], Awaitable[set[str]]] | None
    ) -> tuple[int, int]:
        """Remove what crashes left behind; say how many unfinished and orphans.

        ``known`` tells which names the index lists; without one (an index
        that does not outlive its process), no blob counts as an orphan.
        """


def from_url(url: str | None, config: Any, workers: Any) -> Blobs:
    """The place for blobs a URL names (None: the ``storage_path`` directory).

    ``workers`` (:class:`~asgilook.workers.ImageWorkers`) runs what would
    block: file system calls, for a directory.
    """
    if url is None:
        from .directory import DirectoryBlobs

        return DirectoryBlobs(config, workers)
    location = check_url(url)
    from .s3 import S3Blobs

    return S3Blobs(location)


def check_url(url: str) -> s3url.S3Location:
    """What an ``s3://`` URL names; ValueError when it is malformed, or when
    its client is not installed."""
    if not url.startswith('s3://'):
        # NOTE: Not the URL itself: it may hold a password.
        raise ValueError(
            'unsupported storage URL: use s3://bucket/prefix, or leave it unset '
            'to keep images in the storage directory (ASGI_LOOK_STORAGE_PATH)'
        )
    location = s3url.parse(url)
    try:
        import aiobotocore  # noqa: F401
    except ImportError:
        raise ValueError(
            's3:// needs aiobotocore: pip install "asgilook[s3]"'
        ) from None
    return location


class BlobsLifespan:
    """Falcon middleware that starts and stops the blobs with the app
    (listed before the store's, so that they start first and stop last)."""

    def __init__(self, blobs: Blobs) -> None:
        self._blobs = blobs

    async def process_startup(self, scope, event):
        await self._blobs.start()

    async def process_shutdown(self, scope, event):
        await self._blobs.stop()


def write_error(ex: OSError, done: str = 'stored') -> errors.AsgilookError:
    """The domain error for a failed write: full (507) or unavailable (503).

    ``done`` says what could not be done to the image: stored, or removed.
    """
    reason = os.strerror(ex.errno) if ex.errno else type(ex).__name__
    description = f'The image could not be {done} ({reason}). Try again later.'
    if ex.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return errors.StorageFull(description)
    return errors.StorageUnavailable(description)


def read_error(ex: OSError) -> errors.AsgilookError:
    """The domain error for a blob that cannot be read."""
    if isinstance(ex, FileNotFoundError):
        return errors.FileMissing(
            'The image is listed but its file is missing from storage.'
        )
    return errors.StorageUnavailable(
        f'The image could not be read ({os.strerror(ex.errno) if ex.errno else ex}).'
        ' Try again later.'
    )
