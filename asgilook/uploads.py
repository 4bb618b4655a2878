"""Reading an upload off the wire: limits, timeouts and multipart forms."""

import asyncio
import io

import falcon
import falcon.asgi
import falcon.media

from . import errors
from . import timing

_FORM = 'multipart/form-data'
_FORMS = falcon.media.MultipartFormHandler()


async def read_upload(
    req: falcon.asgi.Request, max_bytes: int, timeout: float, idle: float | None = None
) -> bytes:
    """Return the uploaded file: the raw body, or a form's one file part."""
    with timing.measure('body'):
        body = await read_body(req, max_bytes, timeout, idle)
    if not (req.content_type or '').lower().startswith(_FORM):
        return body

    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, form_file, body, req.content_type)


async def read_body(
    req: falcon.asgi.Request,
    max_bytes: int,
    timeout: float,
    idle: float | None = None,
) -> bytes:
    """Read the whole request body, never holding more than ``max_bytes``.

    An oversized body is refused from its Content-Length before any of it is
    read; a chunked one as soon as it grows past the limit. The whole body
    must arrive within ``timeout`` seconds, and no gap between two of its
    parts may last ``idle`` seconds: a client holding an upload place must
    keep sending.
    """
    too_large = errors.UploadTooLarge(
        f'The upload is larger than the limit of {max_bytes:,} bytes '
        f'({max_bytes / 2**20:g} MiB).'
    )
    if req.content_length is not None and req.content_length > max_bytes:
        raise too_large

    chunks = []
    size = 0
    stream = aiter(req.stream)
    try:
        async with asyncio.timeout(timeout) as whole:
            while True:
                async with asyncio.timeout(idle):
                    chunk = await anext(stream, None)
                if chunk is None:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError as ex:
        if whole.expired():
            raise errors.UploadTimeout(
                f'The request body did not arrive within {timeout:g} seconds.'
            ) from ex
        raise errors.UploadTimeout(
            f'No part of the request body arrived for {idle:g} seconds; '
            'send it without pauses.'
        ) from ex

    if req.content_length is not None and size < req.content_length:
        raise errors.ClientDisconnected(
            f'The connection closed after {size:,} of {req.content_length:,} bytes.'
        )
    if not size:
        raise errors.EmptyUpload(
            'The request body is empty. Send the image file as the body, or as '
            f'the one file of a {_FORM} form (curl -F image=@photo.jpg).'
        )
    return b''.join(chunks)


def form_file(body: bytes, content_type: str) -> bytes:
    """Return the one file of a multipart/form-data body.

    The file is the one part with a file name, or else the form's only part;
    other fields are ignored. Neither the part's file name nor its
    Content-Type is trusted: the bytes alone decide what the image is.
    """
    try:
        form = _FORMS.deserialize(io.BytesIO(body), content_type, len(body))
        parts = [(part.filename is not None, part.stream.read()) for part in form]
    except falcon.HTTPError as ex:
        raise errors.MalformedForm(
            f'The {_FORM} body could not be parsed ({ex.description or ex.title}).'
        ) from ex
    except UnicodeDecodeError as ex:
        raise errors.MalformedForm(
            f'A part of the {_FORM} body has a name that is not UTF-8.'
        ) from ex

    files = [data for is_file, data in parts if is_file]
    if not files and len(parts) == 1:
        files = [parts[0][1]]
    if len(files) != 1:
        raise errors.MalformedForm(
            f'A {_FORM} upload must hold exactly one file; this one holds '
            f'{len(files)}. Send one image per request.'
        )
    if not files[0]:
        raise errors.EmptyUpload('The uploaded file is empty.')
    return files[0]
