"""The tutorial's in-memory index: one process, gone on restart."""

import bisect

from ..records import Record
from . import idempotent_replay
from . import record_hash


class MemoryBackend:
    def __init__(self) -> None:
        self._records: dict[str, Record] = {}
        self._order: list[tuple[int, str]] = []
        self._keys: dict[str, tuple[str, str]] = {}
        self._digest = 0
        self._changes = 0

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def add(
        self, record: Record, idempotency: tuple[str, str] | None = None
    ) -> Record:
        if idempotency:
            key, fingerprint = idempotency
            stored = idempotent_replay(await self.recall(key), key, fingerprint)
            if stored:
                return stored
            self._keys[key] = (fingerprint, record.image_id)

        self._records[record.image_id] = record
        bisect.insort(self._order, record.position)
        self._digest ^= record_hash(record)
        self._changes += 1
        return record

    async def recall(self, key: str) -> tuple[str, Record] | None:
        fingerprint, image_id = self._keys.get(key, (None, None))
        record = self._records.get(image_id)
        return (fingerprint, record) if record else None

    async def get(self, image_id: str) -> Record | None:
        return self._records.get(image_id)

    async def known(self, image_ids: list[str]) -> set[str]:
        return {image_id for image_id in image_ids if image_id in self._records}

    def get_now(self, image_id: str) -> Record | None:
        """The synchronous lookup the tutorial's Store.get() offers."""
        return self._records.get(image_id)

    def all_now(self) -> list[Record]:
        return [self._records[image_id] for _, image_id in self._order]

    async def delete(self, image_id: str) -> bool:
        record = self._records.pop(image_id, None)
        if record is None:
            return False
        del self._order[bisect.bisect_left(self._order, record.position)]
        self._digest ^= record_hash(record)
        self._changes += 1
        self._keys = {k: v for k, v in self._keys.items() if v[1] != image_id}
        return True

    async def page(
        self, limit: int | None, after: tuple[int, str] | None = None
    ) -> list[Record]:
        start = bisect.bisect_right(self._order, after) if after else 0
        stop = None if limit is None else start + limit
        return [self._records[image_id] for _, image_id in self._order[start:stop]]

    async def version(self) -> str:
        return f'{self._digest:016x}-{self._changes:x}'
