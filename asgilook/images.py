import json
import logging
import re
import urllib.parse

import falcon
import falcon.routing

from . import auth
from . import conditional
from . import encoding
from . import errors
from . import events
from . import imaging
from . import ranges
from . import uploads
from .cache import cached
from .cache import do_not_cache
from .paging import page_query
from .workers import Gate

# NOTE: An image's URL never changes meaning: a new upload gets a new id.
IMMUTABLE = 'public, max-age=31536000, immutable'
# NOTE: The purge key (Surrogate-Key, Cache-Tag) of the listing; every image
#   response carries its image's id instead.
LISTING_KEY = 'images'
_CHUNK = 2**20
_NO_IMAGE = 'No image has this id; GET /images lists those there are.'
_NO_THUMBNAIL = (
    "No such image, size or format; the srcset in an image's JSON lists "
    'every thumbnail it has.'
)
_MAX_KEY_LENGTH = 255

logger = logging.getLogger(__name__)


def _coding(req):
    return encoding.negotiate(req.get_header('Accept-Encoding'))


def _listing_query(req):
    """What a listing's answer depends on: its page, and its coding."""
    return {**page_query(req), 'coding': _coding(req)}


class CanonicalUUID(falcon.routing.UUIDConverter):
    """Falcon's ``uuid`` converter, for the one spelling the tutorial gives out.

    ``uuid.UUID`` also reads braces, ``urn:uuid:`` and bare hex: one image
    would have many URLs (and cache entries). Either case is fine.
    """

    _CANONICAL = re.compile(r'[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}')

    def convert(self, value):
        return super().convert(value) if self._CANONICAL.fullmatch(value) else None


class Images:
    def __init__(self, config, store, access=None, hub=None):
        self._config = config
        self._store = store
        # NOTE: Where uploads and deletes are told (events.EventHub); None
        #   tells nobody.
        self._hub = hub
        self._access = access or auth.Access(
            config.api_tokens, config.anonymous_uploads
        )
        # NOTE: Uploads beyond the places wait (their bodies unread, held
        #   back by the server's flow control) rather than being refused.
        self._uploads = Gate(config.max_uploads, 'uploads', config.queue_timeout)

    async def _listing_is_current(self, req, etag):
        query = page_query(req)
        current = await self._store.listing_etag(query['limit'], query['cursor'])
        # NOTE: A small listing is sent as it is, whatever was accepted.
        return etag in (current, encoding.tagged(current, _coding(req)))

    @cached(_listing_query, _listing_is_current)
    async def on_get(self, req, resp):
        query = page_query(req)
        limit, cursor = query['limit'], query['cursor']

        etag = await self._store.listing_etag(limit, cursor)
        images, following = await self._store.page(limit, cursor)
        if await self._store.listing_etag(limit, cursor) != etag:
            # NOTE: The listing changed while it was read: no validator, and
            #   nothing cached, for a page that may mix two versions.
            etag = None
            do_not_cache(resp)
        if cursor is not None:
            # NOTE: Pages after the first are not kept: cursors are many (any
            #   position can be asked for) and each is read about once.
            do_not_cache(resp)
        coding = _send_json(req, resp, [image.serialize() for image in images])
        resp.cache_control = ['no-cache']
        _purge_key(resp, LISTING_KEY)
        if following:
            query = urllib.parse.urlencode({'limit': limit, 'cursor': following})
            # NOTE: The route's own path: req.path may be //images, which a
            #   client would read as a link to another host.
            public = self._config.public_url or ''
            resp.append_link(f'{public}{req.uri_template}?{query}', 'next')
        _validate(req, resp, encoding.tagged(etag, coding), None)

    on_head = on_get

    async def on_get_image(self, req, resp, image_id):
        described = await self._describe(req, resp, image_id)
        if described is None:
            return

        image, size, byte_range = described
        first, last = byte_range or (0, size - 1)
        if size <= self._config.read_whole_bytes:
            # NOTE: One read, one thread hop: a stream of a file goes to a
            #   thread for every few kilobytes.
            data = await self._store.read_original(image)
            resp.data = data[first : last + 1] if byte_range else data
        else:
            original = await self._store.open_original(image)
            resp.stream = await _stream(original, first, last - first + 1)

    async def on_head_image(self, req, resp, image_id):
        # NOTE: No stream here: Falcon would never read or close it on HEAD.
        await self._describe(req, resp, image_id)

    async def on_delete_image(self, req, resp, image_id):
        token = self._access.authorize_delete(req)
        if token is not None:
            image = await self._store.find(str(image_id))
            if image is None:
                raise falcon.HTTPNotFound(description=_NO_IMAGE)
            self._access.owns(token, image.record)
        if not await self._store.delete(str(image_id)):
            raise falcon.HTTPNotFound(description=_NO_IMAGE)
        resp.status = falcon.HTTP_204
        await self._publish(events.DELETED, {'id': str(image_id)})

    async def on_post(self, req, resp):
        # NOTE: Before a byte of the body is read.
        self._access.authorize_upload(req)
        # NOTE: A place is taken before the body is read, so that a crowd of
        #   uploads is turned away before it fills the memory; slow bodies
        #   hold these places only, never the image workers' (see Store.save).
        async with self._uploads.enter():
            data = await uploads.read_upload(
                req,
                self._config.max_upload_bytes,
                self._config.upload_timeout,
                self._config.upload_idle_timeout,
            )
            image_id = str(self._config.uuid_generator())
            image = await self._store.save(image_id, data, _idempotency_key(req))

        resp.location = image.uri
        document = image.serialize()
        if image.delete_token is not None:
            document['delete_token'] = image.delete_token
        _send_json(req, resp, document)
        resp.status = falcon.HTTP_201
        if image.replayed:
            resp.set_header('Idempotent-Replayed', 'true')
        else:
            await self._publish(events.CREATED, image.serialize())

    async def _publish(self, name, data):
        if self._hub is not None:
            await self._hub.publish(name, data)

    async def _describe(self, req, resp, image_id):
        """Set the headers of an original; 206, 304, 412 or 416 as asked.

        Returns the image, its size in bytes and the byte range to send
        (None: all of it), or None when there is nothing to send.
        """
        # NOTE: image_id: UUID is converted back to a string identifier.
        image = await self._store.find(str(image_id))
        if not image:
            raise falcon.HTTPNotFound(description=_NO_IMAGE)

        size = await self._store.original_size(image)
        _describe_image(resp, image, image.etag, falcon.MEDIA_JPEG)
        resp.accept_ranges = 'bytes'
        if not _validate(req, resp, image.etag, image.modified):
            return None

        byte_range = None
        if conditional.range_applies(
            req.get_header('If-Range'), image.etag, image.modified
        ):
            try:
                byte_range = ranges.requested_range(req.get_header('Range'), size)
            except ranges.Unsatisfiable:
                raise falcon.HTTPRangeNotSatisfiable(size) from None

        resp.content_length = size
        if byte_range is not None:
            first, last = byte_range
            resp.status = falcon.HTTP_206
            resp.content_range = (first, last, size)
            resp.content_length = last - first + 1
        return image, size, byte_range


class Thumbnails:
    def __init__(self, store):
        self._store = store

    async def _find(self, req, image_id, width, height, ext):
        """The image and size a thumbnail URL names; 404 unless it is listed."""
        image = await self._store.find(str(image_id))
        if not image or ext not in imaging.THUMBNAIL_FORMATS:
            raise falcon.HTTPNotFound(description=_NO_THUMBNAIL)

        # NOTE: Only listed sizes are rendered, or anyone could make us scale
        #   to arbitrary sizes. The UUID may arrive upper-case; the sizes must
        #   be spelt exactly as listed (no leading zeros).
        size = (width, height)
        path = image.thumbnail_path(width, height, ext)
        if size not in image.derived_sizes(ext) or not req.path.lower().endswith(path):
            raise falcon.HTTPNotFound(description=_NO_THUMBNAIL)
        return image, size

    async def _is_current(self, req, etag, image_id, width, height, ext='jpeg'):
        try:
            image, size = await self._find(req, image_id, width, height, ext)
        except falcon.HTTPNotFound:
            return False
        return etag == image.thumbnail_etag(size, ext)

    @cached(is_current=_is_current)
    async def on_get(self, req, resp, image_id, width, height, ext='jpeg'):
        image, size = await self._find(req, image_id, width, height, ext)
        etag = image.thumbnail_etag(size, ext)
        _describe_image(resp, image, etag, imaging.MEDIA_TYPES[ext])
        if _validate(req, resp, etag, image.modified):
            resp.data = await self._store.make_thumbnail(image, size, ext)

    on_head = on_get


def _send_json(req, resp, media):
    """Answer with ``media`` as JSON, gzipped where accepted and worth it.

    Returns the coding used (None: none).
    """
    data, coding = encoding.encode(json.dumps(media).encode(), _coding(req))
    resp.content_type = falcon.MEDIA_JSON
    resp.data = data
    resp.vary = ['Accept-Encoding']
    if coding:
        resp.set_header('Content-Encoding', coding)
    return coding


def _idempotency_key(req):
    key = req.get_header('Idempotency-Key')
    if key is not None and not (
        0 < len(key) <= _MAX_KEY_LENGTH and key.isascii() and key.isprintable()
    ):
        raise falcon.HTTPInvalidHeader(
            f'Use 1 to {_MAX_KEY_LENGTH} printable ASCII characters, such as a UUID.',
            'Idempotency-Key',
        )
    return key


def _describe_image(resp, image, etag, media_type):
    resp.content_type = media_type
    resp.etag = etag
    resp.last_modified = image.modified
    resp.cache_control = [IMMUTABLE]
    resp.set_header('X-Content-Type-Options', 'nosniff')
    _purge_key(resp, image.image_id)


def _purge_key(resp, key):
    # NOTE: What CDNs purge by: Fastly reads Surrogate-Key, Cloudflare Cache-Tag.
    resp.set_header('Surrogate-Key', key)
    resp.set_header('Cache-Tag', key)


def _validate(req, resp, etag, last_modified):
    """Answer 304 or 412 where preconditions say so; True to go on as usual."""
    resp.etag = etag
    outcome = conditional.evaluate(
        req.method, conditional.preconditions(req.get_header), etag, last_modified
    )
    if outcome == conditional.NOT_MODIFIED:
        resp.status = falcon.HTTP_304
        resp.media = resp.data = None
        resp.content_length = None
        return False
    if outcome == conditional.PRECONDITION_FAILED:
        raise falcon.HTTPPreconditionFailed(
            description='The resource does not match the If-Match or '
            'If-Unmodified-Since condition of the request.'
        )
    return True


async def _stream(original, start, length):
    """The stream of ``length`` bytes of ``original`` from ``start``, whose
    first chunk is read before the headers go: until then, what the storage
    says (busy, gone, down) is still an error answer of our own."""
    try:
        await original.seek(start, length)
        first = await original.read(min(_CHUNK, length))
    except BaseException:
        await original.close()
        raise
    return _chunks(original, first, length)


async def _chunks(original, chunk, length):
    sent = 0
    try:
        while chunk:
            sent += len(chunk)
            yield chunk
            if sent >= length:
                break
            chunk = await original.read(min(_CHUNK, length - sent))
    except (errors.FileMissing, errors.StorageUnavailable) as ex:
        # NOTE: The headers are sent: too late for an error of our own. The
        #   connection is closed instead (see quiet.py), after one line here.
        logger.warning(
            'Cut an original short after %d of %d bytes: %s', sent, length, ex
        )
        raise errors.ResponseCut() from ex
    finally:
        await original.close()
