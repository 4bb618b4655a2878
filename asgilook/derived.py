"""Derived images (thumbnails, other formats): rendered once, then kept.

A derived image is kept beside its original, under ``derived/{id}/``, named
by its recipe, so that every process sharing the storage serves it from
there, however large it is. Concurrent requests for one derived image in a
process share one render.
"""

import asyncio
from collections.abc import Awaitable
from collections.abc import Callable
import logging
from typing import Any

from . import errors
from . import imaging
from . import metrics
from .blobs import Blobs
from .blobs import DERIVED
from .image import Image
from .workers import ImageWorkers
from .workers import RETRY_AFTER

logger = logging.getLogger(__name__)


def prefix(image_id: str) -> str:
    """Where every derived image of ``image_id`` is kept."""
    return f'{DERIVED}/{image_id}'


def name(image: Image, size: tuple[int, int], ext: str) -> str:
    recipe = image.thumbnail_etag(size, ext).strip('"')
    return f'{prefix(image.image_id)}/{recipe}.{ext}'


class DerivedImages:
    """Renders derived images with single flight, and keeps them in blobs."""

    def __init__(
        self,
        blobs: Blobs,
        workers: ImageWorkers,
        quality: Callable[[], int],
        listed: Callable[[str], Awaitable[bool]],
    ) -> None:
        self._blobs = blobs
        self._workers = workers
        # NOTE: Read at every render: tests change config.jpeg_quality.
        self._quality = quality
        # NOTE: Whether the index still lists an image, once its render is kept.
        self._listed = listed
        self._renders: dict[Any, asyncio.Future] = {}

    async def get(self, image: Image, size: tuple[int, int], ext: str) -> bytes:
        """The bytes of ``image`` at ``size`` in format ``ext``."""
        key = (image.image_id, tuple(size), ext)
        render = self._renders.get(key)
        if render is None:
            render = asyncio.ensure_future(self._render(image, size, ext))
            self._renders[key] = render
            render.add_done_callback(lambda _: self._renders.pop(key, None))
        else:
            metrics.joined('process')
        return await asyncio.shield(render)

    async def _render(self, image, size, ext):
        kept = name(image, size, ext)
        try:
            return await self._blobs.read(kept)
        except errors.FileMissing:
            pass

        async with self._workers.slot(imaging.render_cost(image.size, size)):
            data = await self._blobs.read(image.image_id)
            try:
                rendered = await self._workers.process(
                    imaging.render_thumbnail, data, size, self._quality(), ext
                )
            except (errors.ImageTooSlow, errors.CorruptImage) as ex:
                # NOTE: Our own JPEG: what failed is this host, for now.
                raise errors.Overloaded(
                    f'The image could not be rendered now ({ex.description}).',
                    retry_after=RETRY_AFTER,
                ) from ex
        metrics.rendered(ext)
        try:
            await self._blobs.write(kept, rendered)
        except (errors.StorageFull, errors.StorageUnavailable) as ex:
            logger.warning('Could not keep %s: %s', kept, ex.description)
        else:
            if not await self._listed(image.image_id):
                # NOTE: Deleted while it was rendered: what was kept goes too.
                await self._blobs.remove_all(prefix(image.image_id))
        return rendered
