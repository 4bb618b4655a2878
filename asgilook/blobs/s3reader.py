"""A reader of one object, for streaming large originals from S3."""

from typing import Any

# NOTE: The most one read fetches, in one ranged GET: what the reader holds in
#   memory at a time, however large the object.
CHUNK = 2**20


class S3Reader:
    """Reads an object in ranged GETs, as a file is read: seek, read, close.

    Each read fetches only the bytes asked for (at most :data:`CHUNK`, so a
    read may return fewer, as a socket's does), so a range of a large
    original costs the storage that range, not the whole object.
    """

    def __init__(self, blobs: Any, name: str, size: int) -> None:
        self._blobs = blobs
        self._name = name
        self._size = size
        self._position = 0

    async def seek(self, offset: int) -> int:
        self._position = offset
        return offset

    async def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes from where it is (-1: up to the end), and at
        most :data:`CHUNK`; empty at the end."""
        left = self._size - self._position
        wanted = min(CHUNK, left if size < 0 else min(size, left))
        if wanted <= 0:
            return b''
        first = self._position
        data = await self._blobs.read_range(self._name, first, first + wanted - 1)
        self._position += len(data)
        return data

    async def close(self) -> None:
        """Nothing is held between reads."""
