import asyncio
import base64
import binascii
import datetime
import hashlib
import logging
import pathlib
import uuid

import falcon
import PIL

from . import backends
from . import errors
from . import imaging
from .blobs import DERIVED
from .blobs import DirectoryBlobs
from .workers import ImageWorkers

logger = logging.getLogger(__name__)

# NOTE: The purge key (Surrogate-Key, Cache-Tag) of the listing; every image
#   response carries its image's id instead.
LISTING_KEY = 'images'


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
        # NOTE: True where an Idempotency-Key brought back an earlier upload.
        self.replayed = False

    @classmethod
    def from_record(cls, config, record):
        return cls(
            config,
            record.image_id,
            (record.width, record.height),
            modified=record.modified,
            frames=record.frames,
            digest=record.digest,
            color=record.color,
            placeholder=record.placeholder,
        )

    def to_record(self):
        width, height = self.size
        return backends.Record(
            self.image_id,
            width,
            height,
            self.modified,
            self.frames,
            self.digest,
            self.color,
            self.placeholder,
        )

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
        if ext != 'jpeg':
            sizes.insert(0, tuple(self.size))
        # NOTE: A size the encoder cannot write is not offered at all.
        longest = imaging.MAX_SIDE[imaging.THUMBNAIL_FORMATS[ext]]
        return [size for size in sizes if max(size) <= longest]

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
        self._backend = backends.from_url(getattr(config, 'database_url', None))
        self._renders = {}
        self._cleaned = False

        self.workers = workers or ImageWorkers(config.image_workers, config.image_queue)
        self.blobs = DirectoryBlobs(config, self.workers)

    async def open(self):
        """Connect the backend; on the first start, clean up after crashes."""
        await self._backend.open()
        if not self._cleaned:
            self._cleaned = True
            await self.clean_up()

    async def close(self):
        await self._backend.close()

    # NOTE: The tutorial's synchronous accessors; they can only work where
    #   the index is in this process's memory.

    def get(self, image_id):
        record = self._memory().get_now(image_id)
        return Image.from_record(self._config, record) if record else None

    def list_images(self):
        return [Image.from_record(self._config, r) for r in self._memory().all_now()]

    def _memory_only(self):
        return hasattr(self._backend, 'get_now')

    def _memory(self):
        if not self._memory_only():
            raise TypeError(
                'Store.get() and Store.list_images() only work on the in-memory '
                'backend; await Store.find() and Store.page() instead'
            )
        return self._backend

    async def find(self, image_id):
        record = await self._backend.get(image_id)
        return Image.from_record(self._config, record) if record else None

    async def page(self, limit=None, cursor=None):
        """A page of the listing (all of it without a limit), and the next cursor."""
        after = _decode_cursor(cursor) if cursor else None
        records = await self._backend.page(None if limit is None else limit + 1, after)
        more = limit is not None and len(records) > limit
        records = records[:limit]
        images = [Image.from_record(self._config, record) for record in records]
        return images, _encode_cursor(records[-1].position) if more else None

    async def listing_etag(self, limit=None, cursor=None):
        version = await self._backend.version()
        if limit is None and cursor is None:
            return f'"{version}"'
        query = hashlib.sha256(f'{limit}:{cursor}'.encode()).hexdigest()[:8]
        return f'"{version}.{query}"'

    async def is_current(self, headers):
        """Whether a cached response (its headers) still tells the truth."""
        key = headers.get('surrogate-key')
        if key == LISTING_KEY:
            etag = headers.get('etag') or ''
            return etag.strip('"').partition('.')[0] == await self._backend.version()
        return key is None or await self._backend.get(key) is not None

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
        # NOTE: Rendered once, then kept beside the original: every process
        #   sharing the storage serves it from there, however large it is.
        name = _derived_name(image, size, ext)
        try:
            return await self.blobs.read(name)
        except errors.FileMissing:
            pass

        async with self.workers.slot():
            data = await self.blobs.read(image.image_id)
            rendered = await self.workers.run(
                imaging.make_thumbnail, data, size, self._config.jpeg_quality, ext
            )
        try:
            await self.blobs.write(name, rendered)
        except (errors.StorageFull, errors.StorageUnavailable) as ex:
            logger.warning('Could not keep %s: %s', name, ex.description)
        else:
            if not await self._listed(image.image_id):
                # NOTE: Deleted while it was rendered: what was kept goes too.
                await self.blobs.remove_all(_derived_prefix(image.image_id))
        return rendered

    async def save(self, image_id, data, idempotency_key=None):
        """Store an upload durably: file fsynced, then its record committed.

        With an ``idempotency_key`` seen before, the image first stored under
        it is returned instead (its ``replayed`` is True), and nothing new is
        stored.
        """
        fingerprint = hashlib.sha256(data).hexdigest()
        if idempotency_key:
            replayed = await self._replay(idempotency_key, fingerprint)
            if replayed:
                return replayed

        policy = imaging.Policy(
            max_pixels=self._config.max_pixels,
            background=self._config.background,
            quality=self._config.jpeg_quality,
        )
        async with self.workers.slot():
            converted = await self.workers.run(imaging.convert_to_jpeg, data, policy)

        image = Image(
            self._config,
            image_id,
            converted.size,
            frames=converted.frames,
            digest=converted.digest,
            color=converted.color,
            placeholder=converted.placeholder,
        )
        await self.blobs.write(image_id, converted.data)
        idempotency = (idempotency_key, fingerprint) if idempotency_key else None
        try:
            record = await self._backend.add(image.to_record(), idempotency)
        except BaseException:
            # NOTE: A commit can fail (or be cancelled) and happen all the same.
            if not await asyncio.shield(self._listed(image_id)):
                await self.blobs.remove(image_id)
            raise
        if record.image_id != image_id:
            # NOTE: A concurrent retry with the same key won; ours is surplus.
            await self.blobs.remove(image_id)
            return self._replayed(record)
        return image

    async def _replay(self, key, fingerprint):
        stored = backends.earlier(await self._backend.recall(key), key, fingerprint)
        return self._replayed(stored) if stored else None

    def _replayed(self, record):
        image = Image.from_record(self._config, record)
        image.replayed = True
        return image

    async def open_original(self, image):
        """A reader of an image's stored JPEG, and its size in bytes."""
        return await self.blobs.open(image.image_id)

    async def original_size(self, image):
        return await self.blobs.size(image.image_id)

    async def delete(self, image_id):
        """Forget an image and remove its file; False if there was none."""
        if await self._backend.get(image_id) is None:
            return False
        # NOTE: The file is taken aside before the record goes, and put back
        #   if the record cannot go: never a listed image without its file,
        #   nor a file without its listing.
        async with self.blobs.removing(image_id, lambda: self._listed(image_id)):
            deleted = await self._backend.delete(image_id)
        await self.blobs.remove_all(_derived_prefix(image_id))
        return deleted

    async def _listed(self, image_id):
        """Whether the index lists an image; True when it cannot say."""
        try:
            return await self._backend.get(image_id) is not None
        except Exception:
            logger.exception('Could not tell whether %s is listed', image_id)
            return True

    async def clean_up(self):
        """Remove what crashes left in the storage (see DirectoryBlobs.clean_up)."""
        try:
            # NOTE: An in-memory index starts empty: it cannot tell orphans.
            known = None if self._memory_only() else self._backend.known
            dead, orphans = await self.blobs.clean_up(known)
        except OSError as ex:
            # NOTE: Uploads will say what is wrong with the storage; starting
            #   up is not the place to fail for it.
            logger.warning('Could not look for leftovers in storage: %s', ex)
            return
        if dead or orphans:
            logger.warning(
                'Removed %d unfinished and %d orphaned files from storage',
                dead,
                orphans,
            )


def _derived_prefix(image_id):
    return f'{DERIVED}/{image_id}'


def _derived_name(image, size, ext):
    recipe = image.thumbnail_etag(size, ext).strip('"')
    return f'{_derived_prefix(image.image_id)}/{recipe}.{ext}'


def _encode_cursor(position):
    micros, image_id = position
    return (
        base64.urlsafe_b64encode(f'{micros}:{image_id}'.encode()).decode().rstrip('=')
    )


def _decode_cursor(cursor):
    try:
        text = base64.urlsafe_b64decode(cursor + '=' * (-len(cursor) % 4)).decode()
        micros, image_id = text.split(':', 1)
        position = int(micros), str(uuid.UUID(image_id))
        # NOTE: Only what this service could have handed out: a 64-bit time
        #   and the canonical spelling of a UUID.
        if not -(2**63) <= position[0] < 2**63 or position[1] != image_id:
            raise ValueError(cursor)
        return position
    except (binascii.Error, UnicodeDecodeError, ValueError) as ex:
        raise errors.InvalidCursor(
            f'The cursor {cursor[:100]!r} is not one this service gave out; '
            'follow the Link header of the previous page.'
        ) from ex


class StoreLifespan:
    """Falcon middleware that opens and closes the store with the app.

    While the app runs, it sweeps the storage for leftovers every
    ``SWEEP_INTERVAL`` seconds: a crash's orphans are young at the restart
    right after it, and would otherwise wait for the next one.
    """

    SWEEP_INTERVAL = DirectoryBlobs.GRACE

    def __init__(self, store):
        self._store = store
        self._sweeper = None

    async def process_startup(self, scope, event):
        await self._store.open()
        self._sweeper = asyncio.ensure_future(self._sweep())

    async def process_shutdown(self, scope, event):
        self._sweeper.cancel()
        await asyncio.gather(self._sweeper, return_exceptions=True)
        await self._store.close()

    async def _sweep(self):
        while True:
            await asyncio.sleep(self.SWEEP_INTERVAL)
            await self._store.clean_up()
