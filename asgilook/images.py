import aiofiles
import aiofiles.os
import falcon

from . import uploads


class Images:
    def __init__(self, config, store):
        self._config = config
        self._store = store

    async def on_get(self, req, resp):
        resp.media = [image.serialize() for image in self._store.list_images()]

    on_head = on_get

    async def on_get_image(self, req, resp, image_id):
        image = await self._describe(resp, image_id)
        resp.stream = await aiofiles.open(image.path, 'rb')

    async def on_head_image(self, req, resp, image_id):
        # NOTE: No stream here: Falcon would never read or close it on HEAD.
        await self._describe(resp, image_id)

    async def on_post(self, req, resp):
        # NOTE: The slot is taken before the body is read, so that a crowd of
        #   uploads is turned away before it fills the memory.
        async with self._store.workers.slot():
            data = await uploads.read_upload(
                req, self._config.max_upload_bytes, self._config.upload_timeout
            )
            image_id = str(self._config.uuid_generator())
            image = await self._store.save(image_id, data)

        resp.location = image.uri
        resp.media = image.serialize()
        resp.status = falcon.HTTP_201

    async def _describe(self, resp, image_id):
        # NOTE: image_id: UUID is converted back to a string identifier.
        image = self._store.get(str(image_id))
        if not image:
            raise falcon.HTTPNotFound

        stat = await aiofiles.os.stat(image.path)
        resp.content_length = stat.st_size
        resp.content_type = falcon.MEDIA_JPEG
        # NOTE: Originals are streamed from disk and never copied into Redis.
        resp.context.cacheable = False
        return image


class Thumbnails:
    def __init__(self, store):
        self._store = store

    async def on_get(self, req, resp, image_id, width, height):
        image = self._store.get(str(image_id))
        if not image:
            raise falcon.HTTPNotFound

        # NOTE: Only listed sizes are rendered, or anyone could make us scale
        #   to arbitrary sizes. The UUID may arrive upper-case; the sizes must
        #   be spelt exactly as listed (no leading zeros).
        uri = image.thumbnail_uri(width, height)
        if uri not in image.thumbnails() or not req.path.lower().endswith(uri):
            raise falcon.HTTPNotFound

        resp.content_type = falcon.MEDIA_JPEG
        async with self._store.workers.slot():
            resp.data = await self._store.make_thumbnail(image, (width, height))

    on_head = on_get
