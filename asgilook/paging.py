"""Pages of the listing: what a request asks for, and the cursors between pages.

:func:`page_query` is the one reading of ``limit`` and ``cursor``: the
listing answers by it, and the response cache keys by it, so that two
spellings of one request are one page and one entry.
"""

import base64
import binascii
import uuid

import falcon
import falcon.asgi

from . import errors

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def page_query(req: falcon.asgi.Request) -> dict[str, int | str | None]:
    """The ``limit`` and ``cursor`` a listing request asks for, normalised.

    A blank parameter counts as absent; a cursor without a limit pages by
    :data:`DEFAULT_PAGE`. Raises a 400 error for a limit that is not a whole
    number from 1 to :data:`MAX_PAGE`, and for a cursor this service did not
    hand out.
    """
    limit = None
    if req.get_param('limit'):
        limit = req.get_param_as_int('limit', min_value=1, max_value=MAX_PAGE)
    cursor = req.get_param('cursor') or None
    if cursor is not None:
        decode_cursor(cursor)
        if limit is None:
            limit = DEFAULT_PAGE
    return {'limit': limit, 'cursor': cursor}


def encode_cursor(position: tuple[int, str]) -> str:
    """The cursor of the page after ``position`` (a record's sort position)."""
    micros, image_id = position
    return (
        base64.urlsafe_b64encode(f'{micros}:{image_id}'.encode()).decode().rstrip('=')
    )


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The position a cursor stands for; InvalidCursor if it is not ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + '=' * (-len(cursor) % 4)).decode()
        micros, image_id = text.split(':', 1)
        position = int(micros), str(uuid.UUID(image_id))
        # NOTE: Only what this service could have handed out, spelt as it
        #   spells it (a canonical UUID, no padding, no zeros in front): one
        #   page, one cursor.
        if not -(2**63) <= position[0] < 2**63 or encode_cursor(position) != cursor:
            raise ValueError(cursor)
        return position
    except (binascii.Error, UnicodeDecodeError, ValueError) as ex:
        raise errors.InvalidCursor(
            f'The cursor {cursor[:100]!r} is not one this service gave out; '
            'follow the Link header of the previous page.'
        ) from ex
