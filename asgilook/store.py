import asyncio
import datetime
import errno
import hashlib
import os
import pathlib
import uuid

import aiofiles
import falcon
import PIL

from . import errors
from . import imaging
from .workers import ImageWorkers


class Image:
    def __init__(
        self,
        config,
        image_id,
        size,
        modified=None,
        frames=1,
        digest=None,
        color=None,
        placeholder=None,
    ):
        self._config = config

        self.image_id = image_id
        self.size = size
        self.modified = modified or datetime.datetime.now(datetime.UTC)
        self.frames = frames
        # NOTE: A hash of the stored JPEG: the strong ETag of the original, and
        #   the root of every derived image's.
        self.digest = digest or hashlib.sha256(image_id.encode()).hexdigest()[:32]
        self.color = color
        self.placeholder = placeholder

    @property
    def path(self):
        # NOTE: Tests written for the tutorial set storage_path to a str or a
        #   py.path.local after Config() has made it a pathlib.Path.
        return pathlib.Path(self._config.storage_path) / self.image_id

    @property
    def uri(self):
        return f'/images/{self.image_id}.jpeg'

    @property
    def etag(self):
        return f'"{self.digest}"'

    def serialize(self):
        width, height = self.size
        return {
            'id': self.image_id,
            'image': self.uri,
            'modified': falcon.dt_to_http(self.modified),
            'size': self.size,
            'thumbnails': self.thumbnails(),
            'frames': self.frames,
            'width': width,
            'height': height,
            'srcset': {ext: self.srcset(ext) for ext in imaging.THUMBNAIL_FORMATS},
            'color': self.color,
            'placeholder': self.placeholder,
        }

    def thumbnail_uri(self, width, height, ext='jpeg'):
        return f'/thumbnails/{self.image_id}/{width}x{height}.{ext}'

    def thumbnails(self):
        return [
            self.thumbnail_uri(width, height)
            for width, height in reductions(self.size, self._config.min_thumb_size)
        ]

    def derived_sizes(self, ext):
        """The sizes served under /thumbnails in format ``ext``.

        JPEG lists the reductions only (the original is the full-size JPEG);
        other formats start with the full size.
        """
        sizes = list(reductions(self.size, self._config.min_thumb_size))
        return sizes if ext == 'jpeg' else [tuple(self.size), *sizes]

    def srcset(self, ext):
        """An ``srcset`` attribute value with ``w`` descriptors, largest first."""
        candidates = [
            (self.thumbnail_uri(width, height, ext), width)
            for width, height in self.derived_sizes(ext)
        ]
        if ext == 'jpeg':
            candidates.insert(0, (self.uri, self.size[0]))
        return ', '.join(f'{uri} {width}w' for uri, width in candidates)

    def thumbnail_etag(self, size, ext):
        """A strong ETag for a derived image, known before it is rendered.

        Rendering is deterministic, so the source's digest, the size, the
        format, the quality and the encoder's version decide the bytes.
        """
        width, height = size
        quality = self._config.jpeg_quality
        recipe = f'{self.digest}:{width}x{height}.{ext}:{quality}:{PIL.__version__}'
        return f'"{hashlib.sha256(recipe.encode()).hexdigest()[:32]}"'


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
        self._renders = {}
        # NOTE: XOR of a hash per listed image: the same set of images always
        #   gives the same digest, in any process, whatever the order of events.
        self._listing_digest = 0

        self.workers = workers or ImageWorkers(config.image_workers, config.image_queue)

    def get(self, image_id):
        return self._images.get(image_id)

    def list_images(self):
        return sorted(self._images.values(), key=lambda item: item.modified)

    def listing_etag(self):
        return f'"{self._listing_digest:032x}"'

    async def is_current(self, headers):
        """Whether a cached response (its headers) still tells the truth."""
        key = headers.get('surrogate-key')
        if key == LISTING_KEY:
            return headers.get('etag') == self.listing_etag()
        return key is None or self.get(key) is not None

    async def make_thumbnail(self, image, size, ext='jpeg'):
        # NOTE: Concurrent requests for the same thumbnail share one render.
        key = (image.image_id, tuple(size), ext)
        render = self._renders.get(key)
        if render is None:
            render = asyncio.ensure_future(self._render(image, size, ext))
            self._renders[key] = render
            render.add_done_callback(lambda _: self._renders.pop(key, None))
        return await asyncio.shield(render)

    async def _render(self, image, size, ext):
        async with self.workers.slot():
            async with aiofiles.open(image.path, 'rb') as img_file:
                data = await img_file.read()

            return await self.workers.run(
                imaging.make_thumbnail, data, size, self._config.jpeg_quality, ext
            )

    async def save(self, image_id, data):
        policy = imaging.Policy(
            max_pixels=self._config.max_pixels,
            background=self._config.background,
            quality=self._config.jpeg_quality,
        )
        converted = await self.workers.run(imaging.convert_to_jpeg, data, policy)

        stored = Image(
            self._config,
            image_id,
            converted.size,
            frames=converted.frames,
            digest=converted.digest,
            color=converted.color,
            placeholder=converted.placeholder,
        )
        await self._write(stored.path, converted.data)
        self._images[image_id] = stored
        self._listing_digest ^= _listing_hash(stored)
        return stored

    async def delete(self, image_id):
        """Forget an image and remove its file; False if there was none."""
        image = self._images.pop(image_id, None)
        if image is None:
            return False
        self._listing_digest ^= _listing_hash(image)
        # NOTE: Forgotten first: from here on nothing serves it, even if the
        #   file outlives this call (an open stream keeps reading it).
        await self.workers.run(_remove, image.path)
        return True

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


# NOTE: The purge key (Surrogate-Key, Cache-Tag) of the listing; every image
#   response carries its image's id instead.
LISTING_KEY = 'images'


def _listing_hash(image):
    entry = f'{image.image_id}:{image.modified.isoformat()}:{image.digest}'
    return int.from_bytes(hashlib.sha256(entry.encode()).digest()[:16], 'big')


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
