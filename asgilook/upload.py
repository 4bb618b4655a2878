"""Uploading files to a running service, over a few connections, with retries.

Each file gets one ``Idempotency-Key`` (a fresh UUID), sent on every try of
that file, so that a retry after a lost answer returns the image the first try
stored instead of storing it twice (see the service's uploads page). What is
retried: ``408``, ``429``, ``502``, ``503`` and ``504`` answers, and transport
errors (no connection, a connection broken, a timeout). Any other answer is
final.

What is printed and summarised never quotes a client error's own text: h11's
quotes the header it refuses, and that may be the token.
"""

import asyncio
from collections.abc import Awaitable
from collections.abc import Callable
import dataclasses
import datetime
import email.utils
import os
import random
import stat
from typing import Any
import uuid

import httpx

from .imagefiles import Candidate
from .imagefiles import NOT_REGULAR

RETRIED_STATUSES = frozenset({408, 429, 502, 503, 504})
# NOTE: Twice the service's default ASGI_LOOK_MAX_UPLOAD_BYTES (32 MiB): a
#   service with its default settings answers 413 to a larger file anyway.
DEFAULT_MAX_BYTES = 64 * 2**20
UNEXPECTED = 'An unexpected error in asgilook upload.'
# NOTE: What each client error means, in words of our own (see above); the
#   first class in an error's MRO that is here gives its description.
_CLIENT_ERRORS = {
    httpx.ConnectTimeout: 'Timed out connecting to the service',
    httpx.ReadTimeout: 'Timed out waiting for the answer',
    httpx.WriteTimeout: 'Timed out sending the file',
    httpx.PoolTimeout: 'Timed out waiting for a connection',
    httpx.ConnectError: 'Could not connect to the service',
    httpx.ReadError: 'The connection broke before the answer came',
    httpx.WriteError: 'The connection broke while the file was sent',
    httpx.RemoteProtocolError: 'The service broke off, or did not answer in HTTP',
    httpx.LocalProtocolError: 'The request could not be sent: HTTP does not '
    'allow one of its headers',
    httpx.DecodingError: 'The answer could not be decoded',
    httpx.RequestError: 'The request failed',
}
# NOTE: Refused before they are sent: sending them again cannot help.
_NOT_RETRIED = (httpx.LocalProtocolError, httpx.UnsupportedProtocol)


@dataclasses.dataclass
class Outcome:
    """What became of one file: its last answer, and how many tries it took."""

    path: str
    size: int
    attempts: int = 0
    status: int | None = None
    image: Any = None
    url: str | None = None
    error: Any = None
    # NOTE: Why each retry was made: a status such as '503', or the name of
    #   the transport error.
    retried: list[str] = dataclasses.field(default_factory=list)

    @property
    def stored(self) -> bool:
        return self.status == 201

    def as_json(self) -> dict[str, Any]:
        """The file's entry in the JSON summary; the server's JSON as it came."""
        entry = {
            'path': self.path,
            'bytes': self.size,
            'result': 'stored' if self.stored else 'failed',
            'status': self.status,
            'attempts': self.attempts,
            'retried': self.retried,
        }
        if self.stored:
            entry.update(url=self.url, image=self.image)
        else:
            entry['error'] = self.error
        return entry


def unreadable(path: str, why: str, size: int = 0) -> Outcome:
    """The outcome of a file or folder that could not be read."""
    return failed(path, 'Unreadable', why, size)


def failed(path: str, title: str, description: str, size: int = 0) -> Outcome:
    """The outcome of a file that was not sent, for the reason given."""
    return Outcome(path, size, error={'title': title, 'description': description})


def client_error(ex: Exception) -> dict[str, str]:
    """A client error's name, and what it means; never the error's own text.

    An operating system's reason found among its causes is added
    (``Connection refused``): those never quote a request.
    """
    kind = next(kind for kind in type(ex).__mro__ if kind in _CLIENT_ERRORS)
    description = _CLIENT_ERRORS[kind]
    reason = _os_reason(ex)
    if reason:
        description += f' ({reason})'
    return {'title': type(ex).__name__, 'description': f'{description}.'}


def _os_reason(ex):
    seen = set()
    while ex is not None and id(ex) not in seen:
        if isinstance(ex, OSError) and ex.strerror:
            # NOTE: The system's words, where asyncio's name the address too.
            return os.strerror(ex.errno) if (ex.errno or 0) > 0 else ex.strerror
        seen.add(id(ex))
        ex = ex.__cause__ or ex.__context__
    return None


@dataclasses.dataclass(frozen=True)
class Retries:
    """How often a file is tried again, and how long to wait before each."""

    limit: int = 5
    backoff: float = 0.5
    max_wait: float = 30.0

    def wait(self, attempt: int, retry_after: float | None, jitter: float) -> float:
        """Seconds to wait after try ``attempt`` (from 1) failed.

        ``Retry-After`` when the server gave one, else a doubling backoff;
        ``jitter`` (0 to 1) adds up to a quarter, so that clients turned away
        together do not all come back together; never more than ``max_wait``.
        """
        if retry_after is None:
            retry_after = self.backoff * 2 ** (attempt - 1)
        return min(retry_after * (1 + jitter / 4), self.max_wait)


def parse_retry_after(
    value: str | None, now: datetime.datetime | None = None
) -> float | None:
    """``Retry-After`` (seconds, or an HTTP date) as seconds; None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # NOTE: '-0000' reads as naive; HTTP dates are in UTC anyway.
        when = when.replace(tzinfo=datetime.UTC)
    now = now or datetime.datetime.now(datetime.UTC)
    return max((when - now).total_seconds(), 0.0)


def problem(response: httpx.Response) -> Any:
    """The error body as the server sent it, or a title and description."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    return {
        'title': response.reason_phrase,
        'description': response.text.strip()[:500],
        'status': response.status_code,
    }


class Uploader:
    """Uploads one file at a time with ``client``, retrying as ``retries`` say.

    A file larger than ``max_bytes`` is refused unread. ``sleep``, ``jitter``
    and ``new_key`` are there for tests to replace.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        retries: Retries,
        max_bytes: int = DEFAULT_MAX_BYTES,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        new_key: Callable[[], object] = uuid.uuid4,
    ) -> None:
        self._client = client
        self._retries = retries
        self._max_bytes = max_bytes
        self._sleep = sleep
        self._jitter = jitter
        self._new_key = new_key

    async def upload(self, candidate: Candidate) -> Outcome:
        """Read the file, then send it until it is answered for good."""
        outcome = Outcome(candidate.path, candidate.size)
        try:
            # NOTE: Read once, and kept for the retries; only as many files
            #   as there are connections are held at once.
            body = await asyncio.to_thread(_read, candidate.path, self._max_bytes)
        except _TooLarge as ex:
            why = f'{ex.size} bytes, more than --max-bytes ({self._max_bytes})'
            return failed(candidate.path, 'Too large', why, candidate.size)
        except OSError as ex:
            return unreadable(candidate.path, ex.strerror or str(ex), candidate.size)
        headers = {'Idempotency-Key': str(self._new_key())}
        while True:
            outcome.attempts += 1
            again, retry_after = await self._send(outcome, body, headers)
            if not again or outcome.attempts > self._retries.limit:
                return outcome
            outcome.retried.append(again)
            jitter = self._jitter()
            await self._sleep(self._retries.wait(outcome.attempts, retry_after, jitter))

    async def _send(self, outcome, body, headers):
        """One try: why to try again (None: do not), and the Retry-After."""
        try:
            response = await self._client.post('/images', content=body, headers=headers)
        except httpx.RequestError as ex:
            outcome.status = None
            outcome.error = client_error(ex)
            # NOTE: Transport errors only: an answer that cannot be decoded
            #   would be no better the next time.
            again = isinstance(ex, httpx.TransportError)
            again = again and not isinstance(ex, _NOT_RETRIED)
            return (type(ex).__name__ if again else None), None
        outcome.status = response.status_code
        if outcome.stored:
            _stored(outcome, response)
            return None, None
        outcome.error = problem(response)
        if response.status_code in RETRIED_STATUSES:
            retry_after = parse_retry_after(response.headers.get('Retry-After'))
            return str(response.status_code), retry_after
        return None, None


class _TooLarge(Exception):
    def __init__(self, size):
        self.size = size


def _read(path, limit):
    # NOTE: Non-blocking, and the type checked before any read, in case a pipe
    #   or a device has taken the place of the file found.
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), 'rb') as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise OSError(NOT_REGULAR)
        # NOTE: Never more than a byte over the limit, even if the file grew.
        body = file.read(limit + 1) if status.st_size <= limit else b''
    size = max(status.st_size, len(body))
    if size > limit:
        raise _TooLarge(size)
    return body


def _stored(outcome, response):
    outcome.error = None
    try:
        outcome.image = response.json()
    except ValueError:
        outcome.image = None
    outcome.url = _image_url(response, outcome.image)


def _image_url(response, image):
    """Where the stored image is: its Location, else its JSON's ``image``,
    each resolved against the request's URL if it can be, as it came if not."""
    given = [response.headers.get('Location')]
    if isinstance(image, dict):
        given.append(image.get('image'))
    given = [url for url in given if isinstance(url, str)]
    for url in given:
        try:
            return str(response.url.join(url))
        except httpx.InvalidURL:
            # NOTE: A 201 is stored, however odd its Location.
            pass
    return given[0] if given else None


async def upload_all(
    candidates: list[Candidate],
    uploader: Uploader,
    concurrency: int,
    done: Callable[[Outcome], None],
) -> list[Outcome]:
    """Upload every candidate, ``concurrency`` at a time; outcomes in order.

    ``done`` is called with each outcome as it comes.
    """
    outcomes: list[Outcome | None] = [None] * len(candidates)
    pending = enumerate(candidates)

    async def work():
        # NOTE: The tasks share one iterator: each takes the next file.
        for index, candidate in pending:
            try:
                outcomes[index] = await uploader.upload(candidate)
            except Exception as ex:
                # NOTE: Whatever went wrong fails its file only; its text may
                #   quote the request, so only its name is kept.
                name = type(ex).__name__
                outcomes[index] = failed(
                    candidate.path, name, UNEXPECTED, candidate.size
                )
            done(outcomes[index])

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, len(candidates))):
            group.create_task(work())
    return outcomes


def summary(
    url: str,
    outcomes: list[Outcome],
    skipped: list[str],
    seconds: float,
    interrupted: bool = False,
) -> dict[str, Any]:
    """The JSON summary: every file's outcome, the files skipped, and totals."""
    stored = [outcome for outcome in outcomes if outcome.stored]
    return {
        'url': url,
        'interrupted': interrupted,
        'files': [outcome.as_json() for outcome in outcomes],
        'skipped': skipped,
        'totals': {
            'files': len(outcomes),
            'stored': len(stored),
            'failed': len(outcomes) - len(stored),
            'skipped': len(skipped),
            'retries': sum(len(outcome.retried) for outcome in outcomes),
            'bytes': sum(outcome.size for outcome in stored),
            'seconds': round(seconds, 3),
        },
    }
