"""The service's OpenAPI 3.1 description, served as the repository keeps it.

``openapi.json`` beside this module is written by hand, not generated: it says
what the service promises, and the tests hold the service to it.
"""

import hashlib
import pathlib

import falcon
import falcon.asgi

from . import conditional
from . import encoding

# NOTE: Beside this very file, not importlib.resources.files('asgilook'):
#   run from a directory holding a folder named asgilook (such as the
#   default storage directory's parent, /tmp), that would find the folder.
DOCUMENT = pathlib.Path(__file__).with_name('openapi.json')


class OpenAPI:
    """``GET /openapi.json``: the document, read (and gzipped) once at start-up.

    Never in the Redis cache (it does not opt in): it is in memory already.
    """

    def __init__(self, document: bytes | None = None) -> None:
        self._plain = DOCUMENT.read_bytes() if document is None else document
        self._etag = f'"{hashlib.sha256(self._plain).hexdigest()[:32]}"'
        self._gzipped, self._gzip = encoding.encode(self._plain, encoding.GZIP)

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        data, coding = self._plain, None
        if self._gzip and encoding.negotiate(req.get_header('Accept-Encoding')):
            data, coding = self._gzipped, self._gzip
        resp.etag = encoding.tagged(self._etag, coding)
        resp.cache_control = ['no-cache']
        resp.vary = ['Accept-Encoding']

        outcome = conditional.evaluate(
            req.method, conditional.preconditions(req.get_header), resp.etag, None
        )
        if outcome == conditional.PRECONDITION_FAILED:
            raise falcon.HTTPPreconditionFailed(
                description='The document does not match the If-Match condition.'
            )
        if outcome == conditional.NOT_MODIFIED:
            resp.status = falcon.HTTP_304
            return

        resp.content_type = falcon.MEDIA_JSON
        if coding:
            resp.set_header('Content-Encoding', coding)
        resp.data = data

    on_head = on_get
