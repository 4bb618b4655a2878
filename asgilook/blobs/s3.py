"""Blobs as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, R2…).

Nothing is shared on disk: several hosts keep their images in one bucket.
A PUT is atomic (no reader ever sees part of an object), so a write needs no
temporary name; an object cannot be renamed aside, so a delete removes the
object only once the block that removes its record has ended well (see
:meth:`S3Blobs.removing`). Every call has a deadline, so that storage that
is down or slow makes a 503 rather than a hang. A bucket that is missing at
start-up stops the service; one that cannot be checked then (the storage is
away) is checked by the first call that reaches the storage. The client is
aiobotocore; credentials come from the standard AWS environment variables and
files.
"""

import asyncio
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
import contextlib
import logging
import time
from typing import Any

import aiobotocore.config
import aiobotocore.session
import botocore.exceptions
import botocore.handlers

from .. import errors
from . import DERIVED
from . import s3errors
from .files import implausible_orphans
from .files import is_image_name
from .files import is_probe_name
from .s3reader import S3Reader
from .s3url import S3Location

logger = logging.getLogger(__name__)


class BucketMissing(errors.BadSetting):
    """The bucket the URL names does not exist, and we were not told to make it."""


class S3Blobs:
    """Image objects in one bucket, under an optional prefix."""

    # NOTE: As for a directory: how old an unlisted object must be before the
    #   sweep takes it, and how many orphans mean a wrong index instead.
    GRACE = 600.0
    MOST_ORPHANS = 10
    # NOTE: The most keys one DeleteObjects call takes, and one listing gives.
    BATCH = 1000
    PAGE = 1000
    # NOTE: Connections kept open to the storage, per process.
    CONNECTIONS = 32
    # NOTE: Of which open downloads (each holds one for as long as its client
    #   takes) may have this many at most: the rest stay for every other call.
    STREAMS = 24

    def __init__(self, location: S3Location) -> None:
        self.location = location
        self._bucket = location.bucket
        self._client: asyncio.Future | None = None
        self._checked = False
        self._checking = asyncio.Lock()
        self._missing = False
        self._refused = False
        # NOTE: Bodies from open_span() not let go of yet.
        self._streams = 0

    async def start(self) -> None:
        """Check that the bucket is there; make it when told to.

        Raises :class:`BucketMissing` when it is not. Storage that does not
        answer is only logged: the first call that finds it answering makes
        the check instead (see :meth:`_check_late`).
        """
        try:
            # NOTE: The client is made here, not in the first request's time.
            s3 = await self._s3()
            if self._checked:
                return
            async with asyncio.timeout(self.location.timeout):
                await self._ensure_bucket(s3)
        except BucketMissing:
            # NOTE: The service stops: nothing may be left open behind it.
            await self.stop()
            raise
        except s3errors.FAILURES as ex:
            error = self._failed(ex, 'searched')
            if not s3errors.refused(ex):
                logger.warning(
                    'Could not check the bucket %r: %s', self._bucket, error.description
                )
            return
        self._checked = True

    async def stop(self) -> None:
        """Close the connections (the next call opens new ones)."""
        client, self._client = self._client, None
        # NOTE: A lock belongs to the event loop that first waited on it; the
        #   next start may be in another (Falcon's TestClient makes one each).
        self._checking = asyncio.Lock()
        if client is not None:
            await (await client).close()

    async def write(self, name: str, data: bytes) -> None:
        async with self._call('stored') as s3:
            await s3.put_object(Bucket=self._bucket, Key=self._key(name), Body=data)

    async def read(self, name: str) -> bytes:
        return await self._get(name)

    async def open(self, name: str) -> S3Reader:
        return S3Reader(self, name, await self.size(name))

    async def open_span(self, name: str, first: int, last: int) -> Any:
        """The body of one GET of bytes ``first`` to ``last`` (inclusive) of a
        blob, to read with :meth:`read_body`, and let go of with
        :meth:`close_body`."""
        if self._streams >= self.STREAMS:
            raise errors.Overloaded(
                'Too many originals are being sent from the storage at once.',
                retry_after=5,
            )
        self._streams += 1
        try:
            async with self._call('read') as s3:
                answer = await s3.get_object(
                    Bucket=self._bucket,
                    Key=self._key(name),
                    Range=f'bytes={first}-{last}',
                )
        except BaseException:
            self._streams -= 1
            raise
        return answer['Body']

    def close_body(self, body: Any) -> None:
        """Let go of a body from :meth:`open_span` (and of its connection)."""
        body.close()
        self._streams -= 1

    async def read_body(self, body: Any, size: int) -> bytes:
        """The next ``size`` bytes of a body (fewer at its end)."""
        pieces = []
        # NOTE: The body comes in pieces of what the socket had (tens of KiB);
        #   gathered, they make fewer, larger writes to the client. A deadline
        #   for each: a slow storage that still sends is not cut off.
        piece = b'-'
        # NOTE: An empty piece is the end of the body.
        while size > 0 and piece:
            async with self._call('read'):
                piece = await body.read(size)
            pieces.append(piece)
            size -= len(piece)
        return b''.join(pieces)

    async def size(self, name: str) -> int:
        return await self._size(name, 'read')

    async def remove(self, name: str) -> None:
        async with self._call('removed') as s3:
            await s3.delete_object(Bucket=self._bucket, Key=self._key(name))

    async def remove_all(self, prefix: str) -> None:
        names = [name async for name, _ in self._listing(f'{prefix}/')]
        await self._delete(names)

    @contextlib.asynccontextmanager
    async def removing(
        self, name: str, still_wanted: Callable[[], Awaitable[bool]]
    ) -> AsyncIterator[None]:
        # NOTE: No rename on S3, and a copy aside is two calls that can each
        #   fail. The object stays while the block removes its record, and
        #   goes once that is done: never a listed image without its bytes.
        #   Asking for its size first fails early, changing nothing, when the
        #   storage cannot answer. A crash in between leaves an orphan, which
        #   the sweep removes.
        with contextlib.suppress(errors.FileMissing):
            await self._size(name, 'removed')
        try:
            yield
        except BaseException:
            if not await asyncio.shield(still_wanted()):
                await self.remove(name)
            raise
        await self.remove(name)

    async def clean_up(
        self, known: Callable[[list[str]], Awaitable[set[str]]] | None
    ) -> tuple[int, int]:
        # NOTE: A PUT leaves nothing unfinished: only orphans to look for.
        #   Counted as a directory counts them: an original, and the derived
        #   images of one image, are one each.
        old, probes = await self._old_objects()
        listed = (
            await known(sorted({image_id for image_id, _ in old})) if known else None
        )
        orphans = [
            entry for entry in old if listed is not None and entry[0] not in listed
        ]
        if implausible_orphans(len(orphans), len(old), self.MOST_ORPHANS):
            logger.error(
                'Found %d of %d files in bucket %r unknown to the index: is this '
                'the right database? Leaving them all alone.',
                len(orphans),
                len(old),
                self._bucket,
            )
            orphans = []
        await self._delete(probes + [name for entry in orphans for name in old[entry]])
        return len(probes), len(orphans)

    async def _old_objects(
        self,
    ) -> tuple[dict[tuple[str, str], list[str]], list[str]]:
        """What the sweep may take, by image id and kind: originals older than
        the grace period, and derived images of any age; and the readiness
        check's leftovers older than the grace period."""
        cutoff = time.time() - self.GRACE
        found: dict[tuple[str, str], list[str]] = {}
        probes = []
        async for name, modified in self._listing(''):
            parts = name.split('/')
            if len(parts) == 1 and modified < cutoff and is_probe_name(name):
                probes.append(name)
                continue
            if len(parts) == 1 and modified < cutoff:
                entry = (name, 'original')
            elif len(parts) == 3 and parts[0] == DERIVED:
                entry = (parts[1], DERIVED)
            else:
                continue
            # NOTE: Only names this service writes: never anyone else's object.
            if is_image_name(entry[0]):
                found.setdefault(entry, []).append(name)
        return found, probes

    async def _listing(self, prefix: str) -> AsyncIterator[tuple[str, float]]:
        """Every blob under ``prefix``, with when it was last written."""
        token = {}
        while True:
            async with self._call('searched') as s3:
                page = await s3.list_objects_v2(
                    Bucket=self._bucket,
                    Prefix=self._key(prefix),
                    MaxKeys=self.PAGE,
                    **token,
                )
            for item in page.get('Contents', []):
                yield self.location.name(item['Key']), item['LastModified'].timestamp()
            if not page.get('IsTruncated'):
                return
            token = {'ContinuationToken': page['NextContinuationToken']}

    async def _delete(self, names: list[str]) -> None:
        """Remove blobs in batches of DeleteObjects."""
        for start in range(0, len(names), self.BATCH):
            batch = [
                {'Key': self._key(name)} for name in names[start : start + self.BATCH]
            ]
            async with self._call('removed') as s3:
                answer = await s3.delete_objects(
                    Bucket=self._bucket, Delete={'Objects': batch, 'Quiet': True}
                )
            if answer.get('Errors'):
                raise errors.StorageUnavailable(
                    f'{len(answer["Errors"])} files of the image could not be removed '
                    f'({answer["Errors"][0].get("Code")}). Try again later.'
                )

    async def _size(self, name: str, done: str) -> int:
        try:
            async with self._call(done) as s3:
                head = await s3.head_object(Bucket=self._bucket, Key=self._key(name))
        except errors.FileMissing:
            # NOTE: A HEAD's 404 has no body to say whether the object or the
            #   whole bucket is missing; the bucket is checked again (once the
            #   call below), so that a bucket gone under a running service is
            #   a 503 that says so, not images that all seem lost.
            self._checked = False
            async with self._call(done):
                pass
            raise
        return head['ContentLength']

    async def _get(self, name: str) -> bytes:
        async with self._call('read') as s3:
            answer = await s3.get_object(Bucket=self._bucket, Key=self._key(name))
        # NOTE: Read as a download is, with a deadline for each piece: an
        #   original that a slow storage still sends is rendered too.
        async with answer['Body'] as body:
            return await self.read_body(body, answer['ContentLength'])

    def _key(self, name: str) -> str:
        return self.location.key(name)

    @contextlib.asynccontextmanager
    async def _call(self, done: str) -> AsyncIterator:
        """The client, for one call within the deadline; failures as domain
        errors (``done``: what could not be done to the image)."""
        try:
            # NOTE: Making the client reads files but sends nothing: it is
            #   not the storage's time.
            s3 = await self._s3()
            async with asyncio.timeout(self.location.timeout):
                if not self._checked:
                    await self._check_late(s3, done)
                yield s3
        except s3errors.FAILURES as ex:
            raise self._failed(ex, done) from ex
        self._refused = False

    async def _check_late(self, s3, done: str) -> None:
        """The check of the bucket that start-up could not make (the storage
        did not answer then), made by one call while the others wait."""
        async with self._checking:
            if self._checked:
                return
            try:
                await self._ensure_bucket(s3)
            except BucketMissing as ex:
                if not self._missing:
                    # NOTE: One line while it lasts; checked again on each
                    #   call, so that making the bucket is enough.
                    self._missing = True
                    logger.error('%s', ex)
                raise errors.StorageUnavailable(
                    f'The image could not be {done} (the storage has no bucket '
                    'for the images). Try again later.'
                ) from ex
            self._missing = False
            self._checked = True

    def _failed(self, ex: BaseException, done: str) -> Exception:
        if s3errors.code(ex) == 'NoSuchBucket':
            # NOTE: Checked again by the next call, which says so in the log.
            self._checked = False
        if s3errors.refused(ex) and not self._refused:
            # NOTE: One line while it lasts, not one per request.
            self._refused = True
            logger.error(
                'Cannot use the S3 bucket %r: %s (%s). Set AWS_ACCESS_KEY_ID and '
                'AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, to credentials it takes.',
                self._bucket,
                s3errors.explain(ex),
                s3errors.code(ex) or type(ex).__name__,
            )
        return s3errors.domain_error(ex, done)

    async def _s3(self):
        if self._client is None:
            self._client = asyncio.ensure_future(self._connect())
        return await asyncio.shield(self._client)

    async def _connect(self):
        session = aiobotocore.session.get_session()
        location = self.location
        config = aiobotocore.config.AioConfig(
            connect_timeout=location.timeout,
            read_timeout=location.timeout,
            retries={'mode': 'standard', 'total_max_attempts': 2},
            max_pool_connections=self.CONNECTIONS,
            # NOTE: Paths, not virtual hosts, for MinIO and other look-alikes.
            s3={'addressing_style': 'path'} if location.endpoint else None,
            # NOTE: Checksums only where S3 requires them: several look-alikes
            #   (GCS, older MinIO and Ceph) refuse the trailing checksums that
            #   botocore sends by default.
            request_checksum_calculation='when_required',
            response_checksum_validation='when_required',
        )
        try:
            client = await session.create_client(
                's3',
                endpoint_url=location.endpoint,
                region_name=location.region,
                config=config,
            ).__aenter__()
        except BaseException:
            self._client = None
            raise
        # NOTE: botocore asks for "Expect: 100-continue" on every PUT. aiohttp
        #   then sends the headers from the task that writes the body, outside
        #   the handling of a connection lost: when it is, that task fails
        #   and nobody awaits it ("Task exception was never retrieved"),
        #   though the call itself fails as it should. Images are small; no
        #   need to wait for a go-ahead before sending one (a round trip less).
        client.meta.events.unregister(
            'before-call.s3', botocore.handlers.add_expect_header
        )
        return client

    async def _ensure_bucket(self, s3) -> None:
        try:
            await s3.head_bucket(Bucket=self._bucket)
            return
        except botocore.exceptions.ClientError as ex:
            if s3errors.code(ex) not in ('404', 'NoSuchBucket'):
                raise
        if not self.location.create:
            where = f' at {self.location.endpoint}' if self.location.endpoint else ''
            raise BucketMissing(
                f'ASGI_LOOK_BLOBS_URL names the bucket {self._bucket!r}, which does '
                f'not exist{where}: create it, or add create=true to the URL '
                'to have the service create it'
            )
        region = s3.meta.region_name
        place = (
            {}
            if region == 'us-east-1'
            else {'CreateBucketConfiguration': {'LocationConstraint': region}}
        )
        await s3.create_bucket(Bucket=self._bucket, **place)
        logger.warning('Created the bucket %r', self._bucket)
