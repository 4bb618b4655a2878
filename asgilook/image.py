"""An image as the service shows it: its record, its URLs and its JSON."""

import datetime
import hashlib
from typing import Any

import falcon

from . import imaging
from .blobs.directory import blob_path
from .records import Record

# NOTE: Raised whenever the JSON of an image changes shape, so that cached
#   listings (and clients' ETags) of the old shape are not taken for current.
JSON_VERSION = 1


def representation(config: Any) -> str:
    """A short tag of what, beside the index, decides an image's JSON."""
    shape = (
        JSON_VERSION,
        config.min_thumb_size,
        config.public_url,
        sorted(imaging.THUMBNAIL_FORMATS.items()),
        sorted(imaging.MAX_SIDE.items()),
    )
    return hashlib.sha256(repr(shape).encode()).hexdigest()[:8]


class Image:
    """One stored image: a :class:`~asgilook.records.Record` and a config.

    The record's fields (``image_id``, ``modified``, ``frames``, ``digest``,
    ``color``, ``placeholder``…) read as the image's own attributes.
    """

    def __init__(self, config: Any, image_id: str, size: tuple[int, int], **fields):
        width, height = size
        fields.setdefault('modified', datetime.datetime.now(datetime.UTC))
        fields.setdefault('digest', hashlib.sha256(image_id.encode()).hexdigest()[:32])
        self._config = config
        self.record = Record(image_id=image_id, width=width, height=height, **fields)
        # NOTE: True where an Idempotency-Key brought back an earlier upload.
        self.replayed = False
        # NOTE: Known only to the upload that made it (see auth.py).
        self.delete_token = None

    @classmethod
    def from_record(cls, config: Any, record: Record) -> 'Image':
        image = cls.__new__(cls)
        image._config = config
        image.record = record
        image.replayed = False
        image.delete_token = None
        return image

    def __getattr__(self, name: str) -> Any:
        # NOTE: Only called for what the instance lacks: the record's fields.
        if name == 'record':
            raise AttributeError(name)
        return getattr(self.record, name)

    @property
    def size(self) -> tuple[int, int]:
        return self.record.size

    @property
    def path(self):
        return blob_path(self._config, self.image_id)

    @property
    def uri(self) -> str:
        return self._absolute(f'/images/{self.image_id}.jpeg')

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'

    def serialize(self) -> dict:
        width, height = self.size
        return {
            'id': self.image_id,
            'image': self.uri,
            'modified': falcon.dt_to_http(self.modified),
            'size': self.size,
            'thumbnails': self.thumbnails(),
            'frames': self.frames,
            'width': width,
            'height': height,
            'srcset': {ext: self.srcset(ext) for ext in imaging.THUMBNAIL_FORMATS},
            'color': self.color,
            'placeholder': self.placeholder,
        }

    def thumbnail_uri(self, width: int, height: int, ext: str = 'jpeg') -> str:
        return self._absolute(self.thumbnail_path(width, height, ext))

    def thumbnail_path(self, width: int, height: int, ext: str = 'jpeg') -> str:
        """The path of a thumbnail on this service, whatever its public URL."""
        return f'/thumbnails/{self.image_id}/{width}x{height}.{ext}'

    def _absolute(self, path: str) -> str:
        # NOTE: With ASGI_LOOK_PUBLIC_URL, pages on other origins (and any
        #   client) get URLs they can use as they are.
        return (self._config.public_url or '') + path

    def thumbnails(self) -> list[str]:
        return [
            self.thumbnail_uri(width, height)
            for width, height in reductions(self.size, self._config.min_thumb_size)
        ]

    def derived_sizes(self, ext: str) -> list[tuple[int, int]]:
        """The sizes served under /thumbnails in format ``ext``.

        JPEG lists the reductions only (the original is the full-size JPEG);
        other formats start with the full size.
        """
        sizes = list(reductions(self.size, self._config.min_thumb_size))
        if ext != 'jpeg':
            sizes.insert(0, tuple(self.size))
        # NOTE: A size the encoder cannot write is not offered at all.
        longest = imaging.MAX_SIDE[imaging.THUMBNAIL_FORMATS[ext]]
        return [size for size in sizes if max(size) <= longest]

    def srcset(self, ext: str) -> str:
        """An ``srcset`` attribute value with ``w`` descriptors, largest first."""
        candidates = [
            (self.thumbnail_uri(width, height, ext), width)
            for width, height in self.derived_sizes(ext)
        ]
        if ext == 'jpeg':
            candidates.insert(0, (self.uri, self.size[0]))
        return ', '.join(f'{uri} {width}w' for uri, width in candidates)

    def thumbnail_etag(self, size: tuple[int, int], ext: str) -> str:
        """A strong ETag for a derived image, known before it is rendered.

        Rendering is deterministic, so the source's digest, the size and the
        recipe (format, settings, code and encoder versions) decide the bytes.
        """
        width, height = size
        recipe = imaging.recipe(ext, self._config.jpeg_quality)
        made = f'{self.digest}:{width}x{height}.{ext}:{recipe}'
        return f'"{hashlib.sha256(made.encode()).hexdigest()[:32]}"'


def reductions(size: tuple[int, int], min_size: int):
    """Yield power-of-two reductions of ``size`` no smaller than ``min_size``."""
    width, height = size
    factor = 2
    while width // factor >= min_size and height // factor >= min_size:
        yield (width // factor, height // factor)
        factor *= 2
