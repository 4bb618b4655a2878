import asyncio
import datetime
import errno
import os
import pathlib
import uuid

import aiofiles
import falcon

from . import errors
from . import imaging
from .workers import ImageWorkers


class Image:
    def __init__(self, config, image_id, size, modified=None, frames=1):
        self._config = config

        self.image_id = image_id
        self.size = size
        self.modified = modified or datetime.datetime.now(datetime.UTC)
        self.frames = frames

    @property
    def path(self):
        # NOTE: Tests written for the tutorial set storage_path to a str or a
        #   py.path.local after Config() has made it a pathlib.Path.
        return pathlib.Path(self._config.storage_path) / self.image_id

    @property
    def uri(self):
        return f'/images/{self.image_id}.jpeg'

    def serialize(self):
        return {
            'id': self.image_id,
            'image': self.uri,
            'modified': falcon.dt_to_http(self.modified),
            'size': self.size,
            'thumbnails': self.thumbnails(),
            'frames': self.frames,
        }

    def thumbnail_uri(self, width, height):
        return f'/thumbnails/{self.image_id}/{width}x{height}.jpeg'

    def thumbnails(self):
        return [
            self.thumbnail_uri(width, height)
            for width, height in reductions(self.size, self._config.min_thumb_size)
        ]


def reductions(size, min_size):
    """Yield power-of-two reductions of ``size`` no smaller than ``min_size``."""
    width, height = size
    factor = 2
    while width // factor >= min_size and height // factor >= min_size:
        yield (width // factor, height // factor)
        factor *= 2


class Store:
    def __init__(self, config, workers=None):
        self._config = config
        self._images = {}

        self.workers = workers or ImageWorkers(config.image_workers, config.image_queue)

    def get(self, image_id):
        return self._images.get(image_id)

    def list_images(self):
        return sorted(self._images.values(), key=lambda item: item.modified)

    async def make_thumbnail(self, image, size):
        async with aiofiles.open(image.path, 'rb') as img_file:
            data = await img_file.read()

        return await self.workers.run(
            imaging.make_thumbnail, data, size, self._config.jpeg_quality
        )

    async def save(self, image_id, data):
        policy = imaging.Policy(
            max_pixels=self._config.max_pixels,
            background=self._config.background,
            quality=self._config.jpeg_quality,
        )
        converted = await self.workers.run(imaging.convert_to_jpeg, data, policy)

        stored = Image(self._config, image_id, converted.size, frames=converted.frames)
        await self._write(stored.path, converted.data)
        self._images[image_id] = stored
        return stored

    async def _write(self, path, data):
        job = self.workers.submit(write_atomically, path, data)
        try:
            await asyncio.shield(job)
        except asyncio.CancelledError:
            # NOTE: The writing thread cannot be stopped; once it is done, take
            #   back what it wrote, for nobody will be told the image exists.
            job.add_done_callback(lambda _: self.workers.submit(_remove, path))
            raise
        except OSError as ex:
            raise _storage_error(ex) from ex


def _remove(path):
    path.unlink(missing_ok=True)


def _storage_error(ex):
    reason = os.strerror(ex.errno) if ex.errno else type(ex).__name__
    if ex.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return errors.StorageFull(
            f'The image could not be stored ({reason}). Try again later.'
        )
    return errors.StorageUnavailable(
        f'The image could not be stored ({reason}). Try again later.'
    )


def write_atomically(path: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see all of it or nothing.

    The bytes go to a temporary file beside ``path``, are fsynced, and the
    file is renamed into place; on any failure the temporary file is removed.
    """
    temp_path = path.with_name(f'.{path.name}.{uuid.uuid4().hex}.tmp')
    try:
        with open(temp_path, 'xb') as output:
            output.write(data)
            output.flush()
            os.fsync(output.fileno())
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(path: pathlib.Path) -> None:
    # NOTE: The rename is only durable once the directory entry is on disk.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
