"""Every good upload comes out upright, sRGB, opaque, 8-bit and bare."""

import io
import struct

import PIL.Image
import PIL.ImageCms
import pytest

from . import corpus
from .helpers import assert_close
from .helpers import assert_quadrants
from .helpers import decode
from .helpers import FIRST_ID

UPRIGHT = [corpus.RED, corpus.GREEN, corpus.BLUE, corpus.YELLOW]


def upload(client, body):
    resp = client.simulate_post('/images', body=body)
    assert resp.status_code == 201, resp.text
    return resp


def stored(storage_path):
    return decode((storage_path / FIRST_ID).read_bytes())


@pytest.mark.parametrize('orientation', range(1, 9))
@pytest.mark.parametrize('fmt', ['JPEG', 'PNG', 'WEBP', 'TIFF'])
def test_exif_orientation_is_applied(client, storage_path, fmt, orientation):
    upright = corpus.pattern((192, 128))
    resp = upload(client, corpus.oriented(upright, orientation, fmt))

    assert resp.json['size'] == [192, 128]
    image = stored(storage_path)
    assert image.size == (192, 128)
    assert_quadrants(image, UPRIGHT, 40)

    thumbnail = decode(client.simulate_get(resp.json['thumbnails'][0]).content)
    assert thumbnail.size == (96, 64)
    assert_quadrants(thumbnail, UPRIGHT, 40)


def test_icc_profile_is_converted_to_srgb(client, storage_path):
    # NOTE: Under this profile, stored red is really blue (and vice versa).
    image = PIL.Image.new('RGB', (64, 64), corpus.RED)
    image.paste(corpus.BLUE, (32, 0, 64, 64))
    upload(
        client,
        corpus.encode(image, 'PNG', icc_profile=corpus.swapped_primaries_profile()),
    )

    result = stored(storage_path)
    assert_close(result.getpixel((8, 8)), corpus.BLUE, 8)
    assert_close(result.getpixel((56, 8)), corpus.RED, 8)
    assert 'icc_profile' not in result.info


def test_srgb_profile_keeps_colours(client, storage_path):
    upload(
        client,
        corpus.encode(corpus.pattern(), 'JPEG', icc_profile=corpus.srgb_profile()),
    )
    assert_quadrants(stored(storage_path), UPRIGHT, 40)


def test_broken_icc_profile_is_ignored(client, storage_path):
    upload(client, corpus.encode(corpus.pattern(), 'PNG', icc_profile=b'not a profile'))
    assert_quadrants(stored(storage_path), UPRIGHT, 40)


@pytest.mark.parametrize(
    'cmyk, rgb',
    [
        ((255, 0, 0, 0), (0, 255, 255)),
        ((0, 255, 0, 0), (255, 0, 255)),
        ((0, 0, 0, 255), (0, 0, 0)),
        ((0, 0, 0, 0), (255, 255, 255)),
    ],
)
def test_cmyk_jpeg(client, storage_path, cmyk, rgb):
    upload(client, corpus.encode(PIL.Image.new('CMYK', (32, 32), cmyk), 'JPEG'))

    image = stored(storage_path)
    assert image.mode == 'RGB'
    assert_close(image.getpixel((16, 16)), rgb)


def test_metadata_is_stripped(client, storage_path):
    original = corpus.jpeg_with_metadata()
    assert b'Camera Maker' in original
    resp = upload(client, original)

    for data in (
        (storage_path / FIRST_ID).read_bytes(),
        client.simulate_get(resp.json['image']).content,
        client.simulate_get(resp.json['thumbnails'][0]).content,
    ):
        markers, tail = corpus.jpeg_segments(data)
        kinds = {marker for marker, _ in markers}
        assert kinds <= {0xE0, 0xDB, 0xC0, 0xC2, 0xC4, 0xDD}, kinds
        assert tail == b''
        for secret in (b'Camera', b'xmp-secret', b'comment-secret', b'appended'):
            assert secret not in data
        image = decode(data)
        assert not image.getexif()
        assert set(image.info) <= {
            'jfif',
            'jfif_version',
            'jfif_unit',
            'jfif_density',
            'progressive',
            'progression',
        }


def _half_transparent(mode):
    # NOTE: The transparent half hides garbage: bright red pixels.
    image = PIL.Image.new('RGBA', (64, 32), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (32, 0, 64, 32))
    return image.convert(mode)


def _palette_with_transparency(fmt):
    image = PIL.Image.new('P', (64, 32), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (32, 0, 64, 32))
    return corpus.encode(image, fmt, transparency=0)


@pytest.mark.parametrize(
    'body, right',
    [
        pytest.param(
            corpus.encode(_half_transparent('RGBA'), 'PNG'), corpus.BLUE, id='png-rgba'
        ),
        pytest.param(
            corpus.encode(_half_transparent('RGBA'), 'WEBP', lossless=True),
            corpus.BLUE,
            id='webp-rgba',
        ),
        pytest.param(
            corpus.encode(_half_transparent('RGBA'), 'TIFF'),
            corpus.BLUE,
            id='tiff-rgba',
        ),
        pytest.param(
            corpus.encode(_half_transparent('LA'), 'PNG'), (29, 29, 29), id='png-la'
        ),
        pytest.param(_palette_with_transparency('PNG'), corpus.BLUE, id='png-palette'),
        pytest.param(_palette_with_transparency('GIF'), corpus.BLUE, id='gif-palette'),
        pytest.param(
            corpus.encode(
                _half_transparent('RGBA').convert('RGB'),
                'PNG',
                transparency=(255, 0, 0),
            ),
            corpus.BLUE,
            id='png-colour-key',
        ),
        pytest.param(
            corpus.raw_png(8, 8, 16, 6, b'\xff\xff\x00\x00\x00\x00\x00\x00'),
            None,
            id='png-rgba-16',
        ),
        pytest.param(
            corpus.raw_png(8, 8, 16, 0, b'\x12\x34', [(b'tRNS', b'\x12\x34')]),
            None,
            id='png-grey-16-colour-key',
        ),
    ],
)
@pytest.mark.parametrize('background', [(255, 255, 255), (0, 0, 0), (10, 120, 200)])
def test_transparency_is_flattened(
    client, config, storage_path, body, right, background
):
    config.background = background
    upload(client, body)

    image = stored(storage_path)
    assert image.mode == 'RGB'
    assert_close(image.getpixel((4, 4)), background, 16)
    if right is not None:
        assert_close(image.getpixel((56, 16)), right, 16)


def test_half_transparent_pixels_blend_with_the_background(client, storage_path):
    image = PIL.Image.new('RGBA', (16, 16), (0, 0, 0, 128))
    upload(client, corpus.encode(image, 'PNG'))
    assert_close(stored(storage_path).getpixel((8, 8)), (127, 127, 127), 4)


@pytest.mark.parametrize(
    'body, expected',
    [
        pytest.param(
            corpus.raw_png(8, 8, 16, 2, b'\xff\xff\x80\x80\x00\x00'),
            (255, 128, 0),
            id='png-rgb-16',
        ),
        pytest.param(
            corpus.raw_png(8, 8, 16, 0, b'\x80\x80'), (128, 128, 128), id='png-gray-16'
        ),
        pytest.param(
            corpus.raw_png(8, 8, 16, 0, b'\xff\xff'),
            (255, 255, 255),
            id='png-gray-16-max',
        ),
        pytest.param(
            corpus.raw_png(8, 8, 16, 0, b'\x10\x00'),
            (16, 16, 16),
            id='png-gray-16-dark',
        ),
        pytest.param(
            corpus.raw_png(8, 8, 16, 0, b'\x00\xc8'),
            (0, 0, 0),
            id='png-gray-16-near-black',
        ),
        pytest.param(
            corpus.encode(PIL.Image.new('I;16', (8, 8), 40000), 'TIFF'),
            (156, 156, 156),
            id='tiff-16',
        ),
        pytest.param(
            corpus.encode(PIL.Image.new('I', (8, 8), 40000), 'TIFF'),
            (156, 156, 156),
            id='tiff-int32-16-bit-range',
        ),
        pytest.param(
            corpus.encode(PIL.Image.new('I', (8, 8), 200), 'TIFF'),
            (200, 200, 200),
            id='tiff-int32-8-bit-range',
        ),
        pytest.param(
            corpus.encode(PIL.Image.new('F', (8, 8), 0.5), 'TIFF'),
            (128, 128, 128),
            id='tiff-float-unit-range',
        ),
    ],
)
def test_high_bit_depth_is_scaled_not_clipped(client, storage_path, body, expected):
    upload(client, body)
    assert_close(stored(storage_path).getpixel((4, 4)), expected, 3)


@pytest.mark.parametrize('mode', ['I', 'F'])
def test_wide_ranges_are_stretched(client, storage_path, mode):
    image = PIL.Image.new(mode, (64, 8), -1000)
    image.paste(1_000_000, (32, 0, 64, 8))
    upload(client, corpus.encode(image, 'TIFF'))

    result = stored(storage_path)
    assert_close(result.getpixel((8, 4)), (0, 0, 0), 3)
    assert_close(result.getpixel((56, 4)), (255, 255, 255), 3)


def test_one_bit_and_grayscale(client, storage_path):
    image = PIL.Image.new('1', (64, 32), 0)
    image.paste(1, (32, 0, 64, 32))
    upload(client, corpus.encode(image, 'PNG'))
    result = stored(storage_path)
    assert result.mode == 'RGB'
    assert_close(result.getpixel((8, 16)), (0, 0, 0), 4)
    assert_close(result.getpixel((56, 16)), (255, 255, 255), 4)


@pytest.mark.parametrize('fmt', ['PNG', 'JPEG', 'TIFF', 'WEBP'])
def test_grayscale(client, storage_path, fmt):
    upload(client, corpus.encode(PIL.Image.new('L', (16, 16), 77), fmt))
    assert_close(stored(storage_path).getpixel((8, 8)), (77, 77, 77), 3)


@pytest.mark.parametrize('fmt', ['GIF', 'WEBP', 'PNG'])
def test_animation_keeps_the_first_frame(client, storage_path, fmt):
    body = corpus.animated(fmt, [corpus.RED, corpus.GREEN, corpus.BLUE])
    resp = upload(client, body)

    assert resp.json['frames'] == 3
    assert client.simulate_get('/images').json[0]['frames'] == 3
    assert_close(stored(storage_path).getpixel((5, 5)), corpus.RED, 8)


def test_still_images_have_one_frame(client, png_image):
    assert upload(client, png_image).json['frames'] == 1


@pytest.mark.parametrize('quality', [20, 95])
def test_jpeg_quality_is_a_setting(client, config, storage_path, quality, png_image):
    config.jpeg_quality = quality
    upload(client, corpus.encode(corpus.pattern((640, 360)), 'PNG'))
    data = (storage_path / FIRST_ID).read_bytes()

    # NOTE: Pillow estimates the quality back from the quantisation tables.
    table = decode(data).quantization[0]
    expected = PIL.Image.new('RGB', (8, 8))
    reference = io.BytesIO()
    expected.save(reference, 'JPEG', quality=quality)
    assert table == PIL.Image.open(reference).quantization[0]


def test_stored_jpegs_are_baseline(client, storage_path, png_image):
    # NOTE: Baseline JPEGs decode at a reduced scale 2-3x faster than
    #   progressive ones: every thumbnail is made from the stored original.
    resp = upload(client, png_image)
    assert not stored(storage_path).info.get('progressive')

    small = decode(client.simulate_get(resp.json['thumbnails'][0]).content)
    assert small.size == (320, 180)
    assert not small.info.get('progressive')


def test_lab_tiff_is_converted_colorimetrically(client, storage_path):
    # NOTE: L*a*b* (53, 80, 67) is sRGB red; Pillow stores a and b offset by 128.
    image = PIL.Image.new('LAB', (16, 16), (round(53.24 * 255 / 100), 208, 195))
    upload(client, corpus.encode(image, 'TIFF'))
    assert_close(stored(storage_path).getpixel((8, 8)), corpus.RED, 16)


def test_frame_counts_are_capped(client):
    pages = [PIL.Image.new('L', (2, 2), n % 256) for n in range(1205)]
    tiff = corpus.encode(pages[0], 'TIFF', save_all=True, append_images=pages[1:])
    assert upload(client, tiff).json['frames'] == 1000

    # NOTE: An APNG header may claim any number of frames.
    png = corpus.raw_png(
        4, 4, 8, 0, b'\x80', [(b'acTL', struct.pack('>II', 2**31 - 1, 0))]
    )
    assert upload(client, png).json['frames'] == 1000
