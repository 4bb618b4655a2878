"""The pure Pillow functions, bytes in and bytes out, without the service."""

import base64
import io

import PIL.Image
import PIL.ImageColor
import pytest

from asgilook import errors
from asgilook import imaging

from . import corpus
from .helpers import assert_close
from .helpers import assert_quadrants
from .helpers import decode

UPRIGHT = [corpus.RED, corpus.GREEN, corpus.BLUE, corpus.YELLOW]


@pytest.fixture(scope='module')
def stored_jpeg():
    return imaging.convert_to_jpeg(corpus.encode(corpus.pattern((256, 192)), 'PNG'))


def test_convert_describes_what_it_stored(stored_jpeg):
    image = decode(stored_jpeg.data)
    description = stored_jpeg.description

    assert (image.format, image.mode, image.size) == ('JPEG', 'RGB', (256, 192))
    assert (description.width, description.height) == (256, 192)
    assert description.frames == 1
    assert len(description.digest) == 32
    # NOTE: The average of red, green, blue and yellow quadrants.
    assert_close(PIL.ImageColor.getrgb(description.color), (128, 128, 64), 24)
    placeholder = decode(base64.b64decode(description.placeholder.split(',', 1)[1]))
    assert max(placeholder.size) == 16


@pytest.mark.parametrize('ext', sorted(imaging.THUMBNAIL_FORMATS))
@pytest.mark.parametrize('size', [(128, 96), (64, 48), (17, 13)])
def test_render_thumbnail_is_exactly_the_size_asked(stored_jpeg, ext, size):
    data = imaging.render_thumbnail(stored_jpeg.data, size, 85, ext)
    image = decode(data)

    assert image.format == imaging.THUMBNAIL_FORMATS[ext]
    assert image.size == size
    if min(size) >= 32:
        assert_quadrants(image.convert('RGB'), UPRIGHT, 40)


def test_render_thumbnail_quality_is_honoured(stored_jpeg):
    low = imaging.render_thumbnail(stored_jpeg.data, (128, 96), 20)
    high = imaging.render_thumbnail(stored_jpeg.data, (128, 96), 95)
    assert len(low) < len(high)


def test_render_thumbnail_reads_jpeg_only(stored_jpeg):
    png = corpus.encode(corpus.pattern((64, 48)), 'PNG')
    with pytest.raises(PIL.Image.UnidentifiedImageError):
        imaging.render_thumbnail(png, (32, 24))


def test_encode_writes_no_metadata():
    image = corpus.pattern((64, 48))
    image.info = {'comment': b'secret', 'dpi': (300, 300)}
    for fmt in imaging.THUMBNAIL_FORMATS.values():
        encoded = PIL.Image.open(io.BytesIO(imaging.encode(image.copy(), fmt, 80)))
        assert 'comment' not in encoded.info
        assert not encoded.getexif()
        assert 'icc_profile' not in encoded.info


def test_dominant_color_and_placeholder():
    image = PIL.Image.new('RGB', (300, 100), (10, 200, 30))

    assert imaging.dominant_color(image) == '#0ac81e'
    uri = imaging.placeholder(image)
    assert uri.startswith('data:image/png;base64,')
    assert len(uri) < 1000


def test_to_8_bit_scales_16_bit_grey():
    image = PIL.Image.new('I;16', (4, 4), 65535)
    converted = imaging.to_8_bit(image)
    assert converted.mode == 'L'
    assert converted.getpixel((0, 0)) == 255
    assert imaging.to_8_bit(corpus.pattern()).mode == 'RGB'


def test_open_image_refuses_before_decoding():
    huge = corpus.encode(PIL.Image.new('L', (200, 100)), 'PNG')
    with pytest.raises(errors.TooManyPixels, match='the limit is 10,000 pixels'):
        imaging.open_image(huge, max_pixels=10_000)
    with pytest.raises(errors.UnsupportedImage, match='Accepted formats: JPEG'):
        imaging.open_image(b'not an image', max_pixels=10_000)


def test_running_out_of_memory_while_decoding_is_422(monkeypatch):
    # NOTE: Monkeypatched because no seam can reach it: a MemoryError comes
    #   from deep inside Pillow, and provoking a real one would take the host's
    #   memory with it.
    def exhausted(image, background):
        raise MemoryError

    monkeypatch.setattr(imaging, 'to_srgb', exhausted)
    with pytest.raises(errors.TooManyPixels, match='too many pixels to decode'):
        imaging.convert_to_jpeg(corpus.encode(corpus.pattern(), 'PNG'))
