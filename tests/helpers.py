"""Small helpers the tests share."""

import io

import PIL.Image

FIRST_ID = '36562622-48e5-4a61-be67-e426b11821ed'
FIRST_URI = f'/images/{FIRST_ID}.jpeg'


def decode(data):
    """Decode image bytes fully, as a browser would."""
    image = PIL.Image.open(io.BytesIO(data))
    image.load()
    return image


def assert_close(pixel, expected, tolerance=12):
    assert all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True)), (
        pixel,
        expected,
    )


def stored_files(directory):
    """Every regular file under ``directory``, by relative path."""
    return sorted(
        str(path.relative_to(directory))
        for path in directory.rglob('*')
        if path.is_file()
    )
