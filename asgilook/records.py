"""What the service keeps of one image: one field list, in two dataclasses.

:class:`Description` is what an upload's pixels say about it (``imaging``
makes it); :class:`Record` adds the id and the upload time, and is what a
backend stores. The SQL columns, rows and JSON are derived from these fields,
so that a new field is added here, in a migration and in the JSON only.
"""

import dataclasses
import datetime


@dataclasses.dataclass(frozen=True, kw_only=True)
class Description:
    """What an image's pixels say about it, read off the JPEG we store."""

    width: int
    height: int
    frames: int = 1
    # NOTE: A hash of the stored JPEG: the strong ETag of the original, and
    #   the root of every derived image's.
    digest: str
    color: str | None = None
    placeholder: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Record(Description):
    """What a backend keeps of one image."""

    image_id: str
    modified: datetime.datetime
    # NOTE: A SHA-256 of the image's own delete token (see auth.py); the
    #   token itself is shown once, to the uploader, and never kept.
    delete_hash: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def position(self) -> tuple[int, str]:
        """Where the record sorts: by modification time, then id."""
        return to_micros(self.modified), self.image_id

    def row(self) -> tuple:
        """The record as a database row, in :data:`COLUMNS` order."""
        return tuple(
            to_micros(value) if name == 'modified' else value
            for name, value in ((f.name, getattr(self, f.name)) for f in _FIELDS)
        )

    @classmethod
    def from_row(cls, row) -> 'Record':
        """A record from a database row in :data:`COLUMNS` order."""
        values = dict(zip((f.name for f in _FIELDS), row, strict=True))
        values['modified'] = from_micros(values['modified'])
        return cls(**values)


_FIELDS = dataclasses.fields(Record)
# NOTE: The SQL names of the fields; the id column predates the dataclass.
COLUMNS = tuple('id' if f.name == 'image_id' else f.name for f in _FIELDS)

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def to_micros(moment: datetime.datetime) -> int:
    return (moment - _EPOCH) // datetime.timedelta(microseconds=1)


def from_micros(micros: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(microseconds=micros)
