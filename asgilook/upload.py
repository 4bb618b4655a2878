"""Uploading files to a running service, over a few connections, with retries.

Each file gets one ``Idempotency-Key`` (a fresh UUID), sent on every try of
that file, so that a retry after a lost answer returns the image the first try
stored instead of storing it twice (see the service's uploads page). What is
retried: ``408``, ``429``, ``502``, ``503`` and ``504`` answers, and transport
errors (no connection, a connection broken, a timeout). Any other answer is
final.
"""

import asyncio
from collections.abc import Awaitable
from collections.abc import Callable
import dataclasses
import datetime
import email.utils
import random
from typing import Any
import uuid

import httpx

from .imagefiles import Candidate

RETRIED_STATUSES = frozenset({408, 429, 502, 503, 504})


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
    return Outcome(path, size, error={'title': 'Unreadable', 'description': why})


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

    ``sleep``, ``jitter`` and ``new_key`` are there for tests to replace.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        retries: Retries,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        new_key: Callable[[], object] = uuid.uuid4,
    ) -> None:
        self._client = client
        self._retries = retries
        self._sleep = sleep
        self._jitter = jitter
        self._new_key = new_key

    async def upload(self, candidate: Candidate) -> Outcome:
        """Read the file, then send it until it is answered for good."""
        outcome = Outcome(candidate.path, candidate.size)
        try:
            # NOTE: Read once, and kept for the retries; only as many files
            #   as there are connections are held at once.
            body = await asyncio.to_thread(_read, candidate.path)
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
            name = type(ex).__name__
            outcome.status = None
            outcome.error = {'title': name, 'description': str(ex) or name}
            # NOTE: Transport errors only: an answer that cannot be decoded
            #   would be no better the next time.
            return (name if isinstance(ex, httpx.TransportError) else None), None
        outcome.status = response.status_code
        if outcome.stored:
            _stored(outcome, response)
            return None, None
        outcome.error = problem(response)
        if response.status_code in RETRIED_STATUSES:
            retry_after = parse_retry_after(response.headers.get('Retry-After'))
            return str(response.status_code), retry_after
        return None, None


def _read(path):
    with open(path, 'rb') as file:
        return file.read()


def _stored(outcome, response):
    outcome.error = None
    try:
        outcome.image = response.json()
    except ValueError:
        outcome.image = None
    location = response.headers.get('Location')
    outcome.url = str(response.url.join(location)) if location else None


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
            outcomes[index] = await uploader.upload(candidate)
            done(outcomes[index])

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, len(candidates))):
            group.create_task(work())
    return outcomes


def summary(
    url: str, outcomes: list[Outcome], skipped: list[str], seconds: float
) -> dict[str, Any]:
    """The JSON summary: every file's outcome, the files skipped, and totals."""
    stored = [outcome for outcome in outcomes if outcome.stored]
    return {
        'url': url,
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
