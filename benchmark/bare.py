"""Ceilings for serving bytes: a bare ASGI app and a bare Falcon app.

Both answer ``GET /NAME`` with the bytes of the file NAME in the directory
``ASGILOOK_BENCH_BODIES``, read once and then kept in memory, so that they
serve exactly what asgilook served in the same run.

    uvicorn benchmark.bare:asgi_app
    uvicorn benchmark.bare:falcon_app
"""

import functools
import mimetypes
import os
import pathlib

import falcon
import falcon.asgi

_BODIES = pathlib.Path(os.environ.get('ASGILOOK_BENCH_BODIES', '.'))


@functools.cache
def body(name: str) -> tuple[bytes, str] | None:
    """The bytes to serve as NAME, and their media type; None if there are none."""
    path = _BODIES / name
    if '/' in name or not path.is_file():
        return None
    media_type = mimetypes.guess_type(name)[0] or 'application/octet-stream'
    return path.read_bytes(), media_type


async def asgi_app(scope, receive, send):
    """The least an ASGI app can do to serve the bytes."""
    if scope['type'] == 'lifespan':
        while (await receive())['type'] != 'lifespan.shutdown':
            await send({'type': 'lifespan.startup.complete'})
        await send({'type': 'lifespan.shutdown.complete'})
        return

    found = body(scope['path'][1:])
    data, media_type = found or (b'', 'text/plain')
    headers = [
        (b'content-type', media_type.encode()),
        (b'content-length', str(len(data)).encode()),
    ]
    await send(
        {
            'type': 'http.response.start',
            'status': 200 if found else 404,
            'headers': headers,
        }
    )
    await send({'type': 'http.response.body', 'body': data})


class Body:
    """The same, as a Falcon resource."""

    async def on_get(self, req, resp, name):
        found = body(name)
        if found is None:
            raise falcon.HTTPNotFound
        resp.data, resp.content_type = found


falcon_app = falcon.asgi.App()
falcon_app.add_route('/{name}', Body())
