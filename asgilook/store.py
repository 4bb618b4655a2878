"""The tutorial's store: images in, images out, whatever keeps them.

:class:`Store` keeps an index of images in a backend (``backends/``) and
their bytes in blobs (``blobs/``); it makes an upload durable all or
nothing, deletes without leaving an image listed without its file, and
sweeps up after crashes.
"""

import asyncio
import datetime
import hashlib
import logging

from . import auth
from . import backends
from . import errors
from . import imaging
from . import paging
from .derived import DerivedImages
from .derived import prefix as derived_prefix
from .image import Image
from .image import representation
from .records import Record

logger = logging.getLogger(__name__)


class Store:
    def __init__(self, config, backend=None, blobs=None, workers=None):
        # NOTE: create_app passes every collaborator; Store(config) alone, as
        #   in the tutorial, builds them with the config's factories.
        self._config = config
        self.workers = workers or config.workers_factory(config)
        self.backend = backend or config.backend_from_url(config.database_url)
        self.blobs = blobs or config.blobs_from_url(
            config.blobs_url, config, self.workers
        )
        self.derived = DerivedImages(
            self.blobs, self.workers, lambda: config.jpeg_quality, self._listed
        )
        self._cleaned = False

    async def open(self):
        """Connect the backend; on the first start, clean up after crashes."""
        await self.backend.open()
        if not self._cleaned:
            self._cleaned = True
            if self._memory_only():
                logger.info(
                    'The image index is kept in memory: it is forgotten on '
                    'restart, and every worker process has its own. Set '
                    'ASGI_LOOK_DATABASE_URL=sqlite:///path/to/index.db to share '
                    'one between workers and restarts.'
                )
            await self.clean_up()

    async def close(self):
        await self.backend.close()
        await self.workers.close()

    # NOTE: The tutorial's synchronous accessors; they can only work where
    #   the index is in this process's memory.

    def get(self, image_id):
        record = self._memory().get_now(image_id)
        return Image.from_record(self._config, record) if record else None

    def list_images(self):
        return [Image.from_record(self._config, r) for r in self._memory().all_now()]

    def _memory_only(self):
        return hasattr(self.backend, 'get_now')

    def _memory(self):
        if not self._memory_only():
            raise TypeError(
                'Store.get() and Store.list_images() only work on the in-memory '
                'backend; await Store.find() and Store.page() instead'
            )
        return self.backend

    async def find(self, image_id):
        record = await self.backend.get(image_id)
        return Image.from_record(self._config, record) if record else None

    async def page(self, limit=None, cursor=None):
        """A page of the listing (all of it without a limit), and the next cursor."""
        after = paging.decode_cursor(cursor) if cursor else None
        records = await self.backend.page(None if limit is None else limit + 1, after)
        more = limit is not None and len(records) > limit
        records = records[:limit]
        images = [Image.from_record(self._config, record) for record in records]
        return images, paging.encode_cursor(records[-1].position) if more else None

    async def listing_etag(self, limit=None, cursor=None):
        """The ETag of a page: it changes whenever the listing does, and
        whenever the settings that shape an image's JSON do."""
        version = await self.backend.version()
        shape = representation(self._config)
        if limit is None and cursor is None:
            return f'"{version}.{shape}"'
        query = hashlib.sha256(f'{limit}:{cursor}'.encode()).hexdigest()[:8]
        return f'"{version}.{shape}.{query}"'

    async def make_thumbnail(self, image, size, ext='jpeg'):
        return await self.derived.get(image, size, ext)

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
        # NOTE: Even reading a header is untrusted work: in a worker, within
        #   the deadline.
        weight = await self.workers.process(
            imaging.convert_cost, data, self._config.max_pixels
        )
        async with self.workers.slot(weight):
            converted = await self.workers.process(
                imaging.convert_to_jpeg, data, policy
            )

        delete_token, delete_hash = auth.new_delete_token()
        image = Image.from_record(
            self._config,
            Record(
                image_id=image_id,
                modified=datetime.datetime.now(datetime.UTC),
                delete_hash=delete_hash,
                **vars(converted.description),
            ),
        )
        image.delete_token = delete_token
        await self.blobs.write(image_id, converted.data)
        idempotency = (idempotency_key, fingerprint) if idempotency_key else None
        try:
            record = await self.backend.add(image.record, idempotency)
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
        stored = backends.idempotent_replay(
            await self.backend.recall(key), key, fingerprint
        )
        return self._replayed(stored) if stored else None

    def _replayed(self, record):
        image = Image.from_record(self._config, record)
        image.replayed = True
        return image

    async def read_original(self, image):
        """The bytes of an image's stored JPEG."""
        return await self.blobs.read(image.image_id)

    async def open_original(self, image):
        """A reader of an image's stored JPEG."""
        return await self.blobs.open(image.image_id)

    async def original_size(self, image):
        return await self.blobs.size(image.image_id)

    async def delete(self, image_id):
        """Forget an image and remove its file; False if there was none."""
        if await self.backend.get(image_id) is None:
            return False
        # NOTE: The file is taken aside before the record goes, and put back
        #   if the record cannot go: never a listed image without its file,
        #   nor a file without its listing.
        deleted = False
        try:
            async with self.blobs.removing(image_id, lambda: self._listed(image_id)):
                deleted = await self.backend.delete(image_id)
            await self.blobs.remove_all(derived_prefix(image_id))
        except errors.StorageUnavailable as ex:
            if not deleted:
                raise
            # NOTE: The record is gone: the image is deleted for everyone,
            #   and a retry would only find it missing. What is left of it in
            #   storage is an orphan, which the sweep removes.
            logger.warning(
                'Deleted %s, but could not remove its files (%s); the sweep will',
                image_id,
                ex,
            )
        return deleted

    async def _listed(self, image_id):
        """Whether the index lists an image; True when it cannot say."""
        try:
            return await self.backend.get(image_id) is not None
        except backends.driver_errors() as ex:
            # NOTE: The index is away: one line, no traceback; the sweep
            #   judges the file once it is back.
            logger.error('Could not tell whether %s is listed: %s', image_id, ex)
            return True
        except Exception:
            logger.exception('Could not tell whether %s is listed', image_id)
            return True

    async def clean_up(self):
        """Remove what crashes left in the storage (see Blobs.clean_up)."""
        try:
            # NOTE: An in-memory index starts empty: it cannot tell orphans.
            known = None if self._memory_only() else self.backend.known
            dead, orphans = await self.blobs.clean_up(known)
        except errors.StorageUnavailable as ex:
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


class StoreLifespan:
    """Falcon middleware that opens and closes the store with the app.

    While the app runs, it sweeps the storage for leftovers every
    ``config.sweep_interval`` seconds: a crash's orphans are young at the
    restart right after it, and would otherwise wait for the next one.
    """

    def __init__(self, store, interval):
        self._store = store
        self._interval = interval
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
            await asyncio.sleep(self._interval)
            await self._store.clean_up()
