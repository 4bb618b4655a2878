"""Small helpers the tests share."""

import io
import time

import PIL.Image

from asgilook import imaging

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


def count_renders(monkeypatch, delay=0.0):
    """Wrap thumbnail rendering to count (and, with a delay, slow) renders.

    Returns the list of sizes rendered, which grows as renders happen.
    """
    renders = []
    render = imaging.make_thumbnail

    def counting(data, size, *args):
        renders.append(size)
        time.sleep(delay)
        return render(data, size, *args)

    monkeypatch.setattr(imaging, 'make_thumbnail', counting)
    return renders
