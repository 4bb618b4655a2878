"""What can go wrong, as domain errors, and the one place they become HTTP.

Exception tree::

    AsgilookError
    ├── UploadError              the client sent something we will not store
    │   ├── EmptyUpload          400
    │   ├── MalformedForm        400
    │   ├── ClientDisconnected   400 (nobody is left to read it)
    │   ├── UploadTimeout        408
    │   ├── UploadTooLarge       413
    │   ├── UnsupportedImage     415
    │   ├── TooManyPixels        422
    │   ├── CorruptImage         400
    │   ├── ImageTooSlow         422 (stopped at the deadline)
    │   └── IdempotencyKeyReused 422
    ├── InvalidCursor            400 (a listing's cursor we did not hand out)
    ├── Unauthorized             401 (a write without a token, where one is needed)
    ├── Forbidden                403 (a token that may not do this)
    ├── FileMissing              404
    ├── StorageFull              507
    ├── StorageUnavailable       503 with Retry-After
    └── Overloaded               503 with Retry-After

Beside it, two that never become an answer of their own:

    BadSetting                   a setting found wrong only as the service
                                 starts: one line, and it stops (``quiet.py``)
    ResponseCut                  the storage failed once an answer had begun:
                                 its connection is closed (``quiet.py``)
"""

import json

import falcon

PROBLEM_JSON = 'application/problem+json'


class AsgilookError(Exception):
    """Base of every error asgilook answers with a 4xx or 5xx of its own."""

    status = falcon.HTTP_500
    title = 'Internal Server Error'
    headers: dict[str, str] = {}

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class BadSetting(Exception):
    """A setting that only proves wrong as the service starts (a bucket that
    is not there); its message names the variable, as a malformed one does."""


class ResponseCut(Exception):
    """An answer whose headers are sent cannot be finished: the storage failed
    in the middle of its body (and this has been logged)."""


class ClientGone(ResponseCut):
    """The client went away in the middle of an answer's body: the rest is
    not read, let alone sent."""


class UploadError(AsgilookError):
    status = falcon.HTTP_400
    title = 'Bad upload'


class EmptyUpload(UploadError):
    title = 'Empty upload'


class MalformedForm(UploadError):
    title = 'Malformed form'


class ClientDisconnected(UploadError):
    title = 'Incomplete upload'


class UploadTimeout(UploadError):
    status = falcon.HTTP_408
    title = 'Upload too slow'


class UploadTooLarge(UploadError):
    status = falcon.HTTP_413
    title = 'Upload too large'


class UnsupportedImage(UploadError):
    status = falcon.HTTP_415
    title = 'Unsupported image format'


class TooManyPixels(UploadError):
    status = falcon.HTTP_422
    title = 'Image too large'


class CorruptImage(UploadError):
    title = 'Unreadable image'


class ImageTooSlow(UploadError):
    status = falcon.HTTP_422
    title = 'Image too slow to process'


class IdempotencyKeyReused(UploadError):
    status = falcon.HTTP_422
    title = 'Idempotency-Key reused'


class InvalidCursor(AsgilookError):
    status = falcon.HTTP_400
    title = 'Invalid cursor'


class Unauthorized(AsgilookError):
    status = falcon.HTTP_401
    title = 'Token needed'
    headers = {'WWW-Authenticate': 'Bearer realm="asgilook"'}


class Forbidden(AsgilookError):
    status = falcon.HTTP_403
    title = 'Not allowed'


class FileMissing(AsgilookError):
    status = falcon.HTTP_404
    title = 'Image file missing'


class StorageFull(AsgilookError):
    status = falcon.HTTP_507
    title = 'Insufficient storage'


class StorageUnavailable(AsgilookError):
    status = falcon.HTTP_503
    title = 'Storage unavailable'
    # NOTE: Storage rarely comes back within a second (a remount, a share).
    headers = {'Retry-After': '5'}


class Overloaded(AsgilookError):
    status = falcon.HTTP_503
    title = 'Service busy'

    def __init__(self, description: str, retry_after: int) -> None:
        super().__init__(description)
        self.headers = {'Retry-After': str(retry_after)}


async def handle(req, resp, ex: AsgilookError, params) -> None:
    """Render a domain error as Falcon's standard JSON error."""
    raise falcon.HTTPError(
        ex.status, title=ex.title, description=ex.description, headers=ex.headers
    ) from ex


async def handle_index(req, resp, ex: Exception, params) -> None:
    """A database that is away or busy: the client may well try again."""
    raise falcon.HTTPServiceUnavailable(
        title='Index unavailable',
        description='The image index (database) did not answer; try again shortly.',
        retry_after=1,
    ) from ex


def serialize(req, resp, ex: falcon.HTTPError) -> None:
    """Write every error as a JSON problem (RFC 9457), whatever ``Accept`` says.

    Falcon's ``title`` and ``description`` stay; ``status`` is RFC 9457's.
    What a responder had said of the representation it meant to send (its
    coding, validators, links, how long to keep it) does not describe the
    error, and goes.
    """
    problem = {**ex.to_dict(), 'status': ex.status_code}
    problem.setdefault('description', _DESCRIPTIONS.get(ex.status_code, ex.title))
    for name in _NOT_OF_AN_ERROR:
        resp.delete_header(name)
    resp.cache_control = ['no-store']
    resp.data = json.dumps(problem).encode()
    resp.content_type = PROBLEM_JSON


_NOT_OF_AN_ERROR = ('Content-Encoding', 'ETag', 'Last-Modified', 'Link')
_DESCRIPTIONS = {
    404: 'Nothing is at this path. The routes are /images, '
    '/images/{id}.jpeg, /thumbnails/{id}/{width}x{height}.{format}, /events '
    '(live uploads and deletes) and /gallery (a page to see them).',
    405: 'This path does not answer this method; the Allow header lists those it does.',
    416: 'The range asked for lies beyond the end of the image; the '
    'Content-Range header gives its length.',
}
