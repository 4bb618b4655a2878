"""The access log: one line per request, through the ``asgilook.access`` logger.

A line holds the method, the path (and the query, with the values of
secret-looking parameters replaced by ``REDACTED``), the status, the time the
app took, the response body's size and what the cache said. Never a header,
a body or a client's address: nothing that could hold a credential or an
image.
"""

import datetime
import json
import logging
import re
import sys
import urllib.parse

LOGGER = 'asgilook.access'
FORMATS = ('text', 'json', 'off')
REDACTED = 'REDACTED'
# NOTE: A query parameter whose name holds any of these has its value
#   redacted (X-Amz-Signature, api_key, access_token, client_secret…).
#   Words inside other words (author, design) are redacted too: a log line
#   loses little, and a secret never shows.
_SECRET_WORDS = (
    'auth', 'code', 'credential', 'jwt', 'key', 'pass', 'pwd', 'secret',
    'session', 'sig', 'token',
)  # fmt: skip
# NOTE: What a path (as decoded) and a query (as sent) may hold as they are;
#   anything else (spaces, quotes, control characters, non-ASCII, and a
#   decoded % or ? in a path) is percent-encoded, so that a line stays one
#   line of fields split by spaces, and a path reads as it was sent.
_PLAIN_PATH = re.compile(r"[\w/!$&'()*+,;=:@.~-]*", re.ASCII)
_SAFE_IN_PATH = "/!$&'()*+,;=:@~"
_PLAIN_QUERY = re.compile(r"[\w/!$&'()*+,;=:@.~%?-]*", re.ASCII)
_SAFE_IN_QUERY = _SAFE_IN_PATH + '%?'


class AccessLog:
    """Writes a request's line in ``fmt`` (``text`` or ``json``) to ``logger``.

    When nothing would show the lines (no logging configured, as under
    uvicorn's own defaults), the logger gets a handler of its own that
    writes them, one per line, to standard output.
    """

    def __init__(self, fmt: str, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(LOGGER)
        self._line = _json if fmt == 'json' else _text
        if not self._logger.hasHandlers():
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(logging.Formatter('%(message)s'))
            self._logger.addHandler(handler)
            self._logger.setLevel(logging.INFO)
            self._logger.propagate = False

    def log(
        self,
        method: str,
        path: str,
        query: str,
        status: int,
        seconds: float,
        sent: int,
        cache: str | None,
        cut: bool = False,
    ) -> None:
        """Log one request; ``query`` is the raw query string ('' for none),
        ``cut`` says that its body was cut short."""
        if self._logger.isEnabledFor(logging.INFO):
            self._logger.info(
                self._line(
                    method,
                    _plain(path, _PLAIN_PATH, _SAFE_IN_PATH),
                    redacted(query),
                    status,
                    seconds,
                    sent,
                    cache,
                    cut,
                )
            )


def _text(method, path, query, status, seconds, sent, cache, cut):
    target = f'{path}?{query}' if query else path
    line = f'{method} {target} {status} {sent}B {seconds * 1000:.1f}ms {cache or "-"}'
    return f'{line} cut' if cut else line


def _json(method, path, query, status, seconds, sent, cache, cut):
    fields = {
        'time': datetime.datetime.now(datetime.UTC).isoformat(timespec='milliseconds'),
        'method': method,
        'path': path,
        'query': query or None,
        'status': status,
        'duration_ms': round(seconds * 1000, 3),
        'bytes': sent,
        'cache': cache,
    }
    if cut:
        fields['cut'] = True
    return json.dumps(fields)


def redacted(query: str) -> str:
    """A raw query string with the values of secret-looking names redacted."""
    if not query:
        return ''
    pairs = []
    for pair in query.split('&'):
        name, equals, value = pair.partition('=')
        if equals and _secret(name):
            value = REDACTED
        pairs.append(f'{name}{equals}{value}')
    return _plain('&'.join(pairs), _PLAIN_QUERY, _SAFE_IN_QUERY)


def _secret(name):
    name = urllib.parse.unquote_plus(name).lower()
    return any(word in name for word in _SECRET_WORDS)


def _plain(text, plain, safe):
    if plain.fullmatch(text):
        return text
    return urllib.parse.quote(text, safe=safe)
