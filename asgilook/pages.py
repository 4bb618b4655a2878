"""The gallery: a page, its script and its styles, from ``asgilook/static/``.

Plain files, no build step; read once, when the app is made, and answered
with a strong ETag and ``Cache-Control: no-cache``, so that a browser checks
for a new version on every load and mostly gets a ``304``.
"""

import hashlib
import pathlib
from typing import Any
import urllib.parse

import falcon
import falcon.asgi

from . import conditional

STATIC = pathlib.Path(__file__).parent / 'static'
PAGE = 'index.html'
_MEDIA_TYPES = {
    '.html': 'text/html; charset=utf-8',
    '.js': 'text/javascript; charset=utf-8',
    '.css': 'text/css; charset=utf-8',
}
_NO_ASSET = 'The gallery is at /gallery; nothing else of it is at this path.'


class _Asset:
    def __init__(self, path: pathlib.Path) -> None:
        self.data = path.read_bytes()
        self.etag = f'"{hashlib.sha256(self.data).hexdigest()[:32]}"'
        self.media_type = _MEDIA_TYPES[path.suffix]


def content_security_policy(public_url: str | None) -> str:
    """What the page may load: its own files, and images from the service."""
    images = "'self' data:"
    connect = "'self'"
    if public_url:
        parts = urllib.parse.urlsplit(public_url)
        origin = f'{parts.scheme}://{parts.netloc}'
        images += f' {origin}'
        connect += f' {origin}'
    return (
        f"default-src 'self'; img-src {images}; connect-src {connect}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


class Gallery:
    """``GET /gallery``, the page, and ``GET /gallery/{name}``, its files."""

    def __init__(self, config: Any) -> None:
        self._assets = {
            path.name: _Asset(path)
            for path in STATIC.iterdir()
            if path.suffix in _MEDIA_TYPES
        }
        self._policy = content_security_policy(config.public_url)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response):
        self._send(req, resp, self._assets[PAGE])
        resp.set_header('Content-Security-Policy', self._policy)

    on_head = on_get

    async def on_get_asset(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str
    ):
        asset = self._assets.get(name)
        if asset is None or name == PAGE:
            raise falcon.HTTPNotFound(description=_NO_ASSET)
        self._send(req, resp, asset)

    on_head_asset = on_get_asset

    @staticmethod
    def _send(req, resp, asset):
        resp.content_type = asset.media_type
        resp.etag = asset.etag
        resp.cache_control = ['no-cache']
        resp.set_header('X-Content-Type-Options', 'nosniff')
        outcome = conditional.evaluate(
            req.method, conditional.preconditions(req.get_header), asset.etag, None
        )
        if outcome == conditional.NOT_MODIFIED:
            resp.status = falcon.HTTP_304
        elif outcome == conditional.PRECONDITION_FAILED:
            raise falcon.HTTPPreconditionFailed()
        else:
            resp.data = asset.data


class Home:
    """``GET /``: to the gallery."""

    def __init__(self, config: Any) -> None:
        self._gallery = f'{config.public_url or ""}/gallery'

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response):
        raise falcon.HTTPFound(self._gallery)

    on_head = on_get
