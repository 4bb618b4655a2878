"""Pillow work as plain functions: bytes in, bytes out, no I/O and no asyncio."""

import io

import PIL.Image


def convert_to_jpeg(data: bytes) -> tuple[bytes, tuple[int, int]]:
    """Decode an uploaded image and re-encode it as an RGB JPEG.

    Returns the JPEG bytes and the image size as ``(width, height)``.
    """
    with PIL.Image.open(io.BytesIO(data)) as image:
        rgb_image = image.convert('RGB')
    return _encode_jpeg(rgb_image), rgb_image.size


def make_thumbnail(data: bytes, size: tuple[int, int]) -> bytes:
    """Scale a stored JPEG to exactly ``size`` and encode it as JPEG."""
    with PIL.Image.open(io.BytesIO(data)) as image:
        # NOTE: Let the JPEG decoder skip detail we are about to throw away.
        image.draft('RGB', size)
        resized = image.convert('RGB').resize(size, PIL.Image.Resampling.LANCZOS)
    return _encode_jpeg(resized)


def _encode_jpeg(image: PIL.Image.Image) -> bytes:
    output = io.BytesIO()
    image.save(output, 'JPEG')
    return output.getvalue()
