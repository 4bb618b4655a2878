"""Content codings (RFC 9110, section 8.4): what a client accepts, and gzip.

JSON compresses to a fifth or less; JPEG, WebP and AVIF do not compress at
all, so only JSON is ever encoded. gzip is the coding every client speaks and
the standard library writes; brotli and zstd would need packages.
"""

import gzip

GZIP = 'gzip'
# NOTE: Below this, the gzip header and a round trip cost more than they save.
MIN_BYTES = 1024


def negotiate(accept_encoding: str | None) -> str | None:
    """The coding to answer in: ``gzip`` where the client accepts it, or None.

    ``gzip;q=0`` (or ``*;q=0`` without a ``gzip``) refuses it; a malformed
    weight counts as 0.
    """
    weights = {}
    for item in (accept_encoding or '').split(','):
        coding, _, params = item.strip().partition(';')
        weights[coding.strip().lower()] = _weight(params)
    weight = weights.get(GZIP, weights.get('x-gzip', weights.get('*', 0.0)))
    return GZIP if weight > 0 else None


def _weight(params):
    name, _, value = params.strip().partition('=')
    if name.strip().lower() != 'q':
        return 1.0
    try:
        return float(value)
    except ValueError:
        return 0.0


def encode(data: bytes, coding: str | None) -> tuple[bytes, str | None]:
    """``data`` in ``coding`` if that is worth it; the coding actually used."""
    if coding != GZIP or len(data) < MIN_BYTES:
        return data, None
    # NOTE: mtime=0: the same JSON always compresses to the same bytes, so
    #   that its ETag stays strong and every process agrees on it.
    return gzip.compress(data, compresslevel=6, mtime=0), GZIP


def tagged(etag: str | None, coding: str | None) -> str | None:
    """The strong ETag of a representation in ``coding`` (RFC 9110, 8.8.3)."""
    if etag is None or coding is None:
        return etag
    return f'{etag[:-1]}-{coding}"'
