"""The pure Pillow functions, bytes in and bytes out, without the service."""

import base64
import io
import math

import PIL.Image
import PIL.ImageChops
import PIL.ImageColor
import PIL.ImageFilter
import PIL.ImageStat
import pytest

from asgilook import derived
from asgilook import errors
from asgilook import imaging
from asgilook.image import Image

from . import corpus
from .helpers import assert_close
from .helpers import assert_quadrants
from .helpers import decode

UPRIGHT = [corpus.RED, corpus.GREEN, corpus.BLUE, corpus.YELLOW]
EXTS = sorted(imaging.THUMBNAIL_FORMATS)


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


def _psnr(image, reference):
    difference = PIL.ImageChops.difference(image, reference)
    squares = PIL.ImageStat.Stat(difference).sum2
    mse = sum(squares) / (3 * image.width * image.height)
    return 10 * math.log10(255**2 / mse) if mse else math.inf


@pytest.mark.parametrize('ext', sorted(imaging.THUMBNAIL_FORMATS))
def test_thumbnails_are_as_good_as_a_full_decode(ext):
    # NOTE: A photo-like source: smooth gradients, soft edges, mild noise.
    source = PIL.Image.merge(
        'RGB',
        [
            PIL.Image.linear_gradient('L').rotate(angle).resize((1600, 1200))
            for angle in (0, 60, 150)
        ],
    ).filter(PIL.ImageFilter.GaussianBlur(1))
    stored = imaging.convert_to_jpeg(corpus.encode(source, 'PNG')).data
    full = decode(stored)
    fmt = imaging.THUMBNAIL_FORMATS[ext]
    for size in [(800, 600), (400, 300), (200, 150), (100, 75)]:
        reference = full.resize(size, PIL.Image.Resampling.LANCZOS)
        # NOTE: The reduced-scale decode and resampling against a full decode
        #   and Lanczos; then what the encoder makes of each, the same way.
        assert _psnr(imaging.scale(stored, size), reference) >= 35, size
        thumbnail = decode(imaging.render_thumbnail(stored, size, 85, ext))
        assert thumbnail.size == size
        encoded = decode(imaging.encode(reference.copy(), fmt, 85)).convert('RGB')
        assert _psnr(thumbnail.convert('RGB'), encoded) >= 35, size


@pytest.mark.parametrize(
    'change',
    [
        ('JPEG', 'optimize', False),
        ('WEBP', 'method', 4),
        ('WEBP', 'quality', 81),
        ('AVIF', 'speed', 6),
        ('AVIF', 'quality', 61),
        (None, 'filter', PIL.Image.Resampling.BICUBIC),
        (None, 'reducing_gap', 2.0),
        (None, 'RECIPE_VERSION', 99),
    ],
)
def test_every_setting_of_the_recipe_names_what_it_makes(config, monkeypatch, change):
    # NOTE: Patched because the recipe is what is under test: the settings
    #   are constants of the renderer, and no deployment changes them.
    image = Image(config, '36562622-48e5-4a61-be67-e426b11821ed', (640, 480))
    before = {ext: image.thumbnail_etag((320, 240), ext) for ext in EXTS}
    names = {ext: derived.name(image, (320, 240), ext) for ext in EXTS}

    fmt, key, value = change
    if key == 'RECIPE_VERSION':
        monkeypatch.setattr(imaging, key, value)
    elif fmt is None:
        monkeypatch.setitem(imaging.RESAMPLING, key, value)
    else:
        monkeypatch.setitem(imaging.ENCODER_SETTINGS[fmt], key, value)

    changed = {
        ext
        for ext in EXTS
        if image.thumbnail_etag((320, 240), ext) != before[ext]
        and derived.name(image, (320, 240), ext) != names[ext]
    }
    touched = {ext for ext in EXTS if fmt in (None, imaging.THUMBNAIL_FORMATS[ext])}
    assert changed == touched


def test_the_jpeg_quality_setting_names_what_it_makes(config):
    image = Image(config, '36562622-48e5-4a61-be67-e426b11821ed', (640, 480))
    before = image.thumbnail_etag((320, 240), 'jpeg')
    config.jpeg_quality = 70
    assert image.thumbnail_etag((320, 240), 'jpeg') != before
