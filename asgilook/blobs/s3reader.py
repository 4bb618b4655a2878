"""A reader of one object, for streaming large originals from S3."""

from typing import Any

# NOTE: The most one read returns: what the reader holds in memory at a time,
#   however large the object.
CHUNK = 2**20


class S3Reader:
    """Reads an object as a file is read: seek, read, close.

    The first read after a seek opens one GET of the span the seek named (by
    default, up to the end of the object) and each read takes the next bytes
    of its body, at most :data:`CHUNK`, so that a range of a large original
    costs the storage that range, and a whole original one request. Once
    the GET has begun, S3 sends all of it, even if the object is deleted
    meanwhile: a download that has started ends with every byte it promised.
    """

    def __init__(self, blobs: Any, name: str, size: int) -> None:
        self._blobs = blobs
        self._name = name
        self._size = size
        self._position = 0
        self._end = size
        self._body: Any = None

    async def seek(self, offset: int, length: int | None = None) -> int:
        """Read from ``offset`` on; ``length``: how many bytes will be read
        from there (None: up to the end)."""
        self._release()
        self._position = offset
        self._end = self._size if length is None else min(self._size, offset + length)
        return offset

    async def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes from where it is (-1: up to the end of the
        span), and at most :data:`CHUNK`; empty at the end of the span."""
        left = self._end - self._position
        wanted = min(CHUNK, left if size < 0 else min(size, left))
        if wanted <= 0:
            return b''
        if self._body is None:
            self._body = await self._blobs.open_span(
                self._name, self._position, self._end - 1
            )
        data = await self._blobs.read_body(self._body, wanted)
        self._position += len(data)
        return data

    async def close(self) -> None:
        """Let go of the GET, read to its end or not (its connection with it)."""
        self._release()

    def _release(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            self._blobs.close_body(body)
