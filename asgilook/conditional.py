"""Conditional requests (RFC 9110, section 13) as small pure functions."""

from collections.abc import Callable
from collections.abc import Mapping
import datetime

import falcon

NOT_MODIFIED = 304
PRECONDITION_FAILED = 412
PRECONDITIONS = (
    'if-match',
    'if-none-match',
    'if-modified-since',
    'if-unmodified-since',
)


def preconditions(get_header: Callable[[str], str | None]) -> dict[str, str | None]:
    """A request's precondition headers, for :func:`evaluate`."""
    return {name: get_header(name) for name in PRECONDITIONS}


def evaluate(
    method: str,
    headers: Mapping[str, str],
    etag: str | None,
    last_modified: datetime.datetime | None,
) -> int | None:
    """Evaluate a request's preconditions against the current validators.

    ``headers`` maps lower-case names to values (None where absent). Returns
    304 or 412 where the
    request's preconditions say so, else None (answer as usual). The order is
    RFC 9110's (section 13.2.2): If-Match, If-Unmodified-Since, If-None-Match,
    If-Modified-Since; a date is only looked at when its tag twin is absent.
    """
    if_match = headers.get('if-match')
    if if_match is not None:
        if not matches(if_match, etag, weak=False):
            return PRECONDITION_FAILED
    else:
        since = parse_date(headers.get('if-unmodified-since'))
        if since and last_modified and _seconds(last_modified) > since:
            return PRECONDITION_FAILED

    safe = method in ('GET', 'HEAD')
    if_none_match = headers.get('if-none-match')
    if if_none_match is not None:
        if matches(if_none_match, etag, weak=True):
            return NOT_MODIFIED if safe else PRECONDITION_FAILED
    elif safe:
        since = parse_date(headers.get('if-modified-since'))
        if since and last_modified and _seconds(last_modified) <= since:
            return NOT_MODIFIED
    return None


def matches(header: str, etag: str | None, weak: bool) -> bool:
    """Whether an If-Match/If-None-Match value matches ``etag``.

    Weak comparison ignores the ``W/`` prefix; strong comparison never
    matches a weak tag.
    """
    if etag is None:
        return False
    if header.strip() == '*':
        return True
    for candidate in header.split(','):
        candidate = candidate.strip()
        if weak:
            if candidate.removeprefix('W/') == etag.removeprefix('W/'):
                return True
        elif candidate == etag and not etag.startswith('W/'):
            return True
    return False


def range_applies(
    if_range: str | None, etag: str | None, last_modified: datetime.datetime | None
) -> bool:
    """Whether a Range request still holds, given its If-Range (if any)."""
    if if_range is None:
        return True
    if_range = if_range.strip()
    if if_range.startswith(('"', 'W/')):
        return matches(if_range, etag, weak=False)
    since = parse_date(if_range)
    return bool(since and last_modified and _seconds(last_modified) == since)


def parse_date(value: str | None) -> datetime.datetime | None:
    """An HTTP date as an aware UTC datetime; None when absent or invalid."""
    if not value:
        return None
    try:
        parsed = falcon.http_date_to_dt(value.strip(), obs_date=True)
    except ValueError:
        return None
    return parsed.replace(tzinfo=datetime.UTC)


def _seconds(moment: datetime.datetime) -> datetime.datetime:
    # NOTE: HTTP dates have whole seconds; so must what they are compared to.
    return moment.astimezone(datetime.UTC).replace(microsecond=0)
