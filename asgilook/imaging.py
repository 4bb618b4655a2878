"""Pillow work as plain functions: bytes in, bytes out, no I/O and no asyncio.

Each stage (``decode``, ``resize``, ``encode``) is timed with
:class:`~asgilook.timing.stage`, which notes durations only when the job runs
under :func:`~asgilook.timing.collect` (in a worker process), and costs
nothing to speak of otherwise.
"""

import base64
import dataclasses
import hashlib
import io

import PIL.features
import PIL.Image
import PIL.ImageCms
import PIL.ImageMath
import PIL.ImageOps

from . import errors
from . import structure
from . import timing
from .records import Description

# NOTE: Only these decoders ever see an upload. Everything else Pillow could
#   open stays shut, above all EPS (which runs Ghostscript). MPO files come
#   out of the JPEG decoder.
_DECODERS = ('JPEG', 'PNG', 'GIF', 'WEBP', 'BMP', 'TIFF') + tuple(
    name
    for name, feature in (('AVIF', 'avif'), ('HEIF', None))
    if (PIL.features.check(feature) if feature else name in PIL.Image.OPEN)
)
ACCEPTED_FORMATS = (*_DECODERS[:6], 'MPO', *_DECODERS[6:])

# NOTE: What thumbnails can be encoded as, by file extension.
THUMBNAIL_FORMATS = {
    'jpeg': 'JPEG',
    'webp': 'WEBP',
    **({'avif': 'AVIF'} if PIL.features.check('avif') else {}),
}
MEDIA_TYPES = {'jpeg': 'image/jpeg', 'webp': 'image/webp', 'avif': 'image/avif'}
# NOTE: The longest side each encoder can write (WebP's is 14 bits; AVIF is
#   held to the same, the most its common decoders accept by default).
MAX_SIDE = {'JPEG': 65500, 'WEBP': 16383, 'AVIF': 16383}

# NOTE: Everything that decides a derived image's bytes besides its source,
#   size and JPEG quality (a setting): part of its ETag and of the name it is
#   kept under (see recipe()). Raise RECIPE_VERSION whenever the rendering
#   code changes what it makes. Settings chosen by measurement (see
#   benchmark/README.rst): baseline JPEGs, as they decode 2-3x faster at a
#   reduced scale than progressive ones; WebP method 2 and AVIF speed 8 cost a
#   third of the defaults for a few per cent more bytes, at the same PSNR.
RECIPE_VERSION = 2
ENCODER_SETTINGS = {
    'JPEG': {'optimize': True, 'progressive': False},
    'WEBP': {'quality': 80, 'method': 2},
    'AVIF': {'quality': 60, 'speed': 8},
}
RESAMPLING = {'filter': PIL.Image.Resampling.LANCZOS, 'reducing_gap': 3.0}

_ALPHA_MODES = frozenset({'RGBA', 'RGBa', 'LA', 'La', 'PA'})
_SRGB = PIL.ImageCms.ImageCmsProfile(PIL.ImageCms.createProfile('sRGB'))
_LAB = PIL.ImageCms.ImageCmsProfile(PIL.ImageCms.createProfile('LAB'))
_PLACEHOLDER_SIZE = 16
MAX_FRAMES = 1000
# NOTE: What one decoded pixel costs a job: the decoded image and a converted
#   copy of it, four bytes a pixel each.
_BYTES_PER_PIXEL = 8


@dataclasses.dataclass(frozen=True)
class Policy:
    """How uploads are judged and stored."""

    max_pixels: int = 50_000_000
    background: tuple[int, int, int] = (255, 255, 255)
    quality: int = 85


@dataclasses.dataclass(frozen=True)
class Converted:
    """An upload made into the JPEG we store, and what describes it."""

    data: bytes
    description: Description


def convert_to_jpeg(data: bytes, policy: Policy = Policy()) -> Converted:
    """Decode an upload, check it against ``policy``, and make it an sRGB JPEG.

    The first frame is kept, turned upright, converted to sRGB and flattened
    onto the background; no metadata survives.
    """
    with open_image(data, policy.max_pixels) as image:
        source = image.format
        with timing.stage('decode', source):
            frames = _decode(image, lambda: count_frames(image))
            rgb = _decode(image, lambda: to_srgb(image, policy.background))
    with timing.stage('encode', 'JPEG'):
        jpeg = encode(rgb, 'JPEG', policy.quality)
    # NOTE: Both are read off a 16-pixel copy: the full image can be huge.
    with timing.stage('resize', source):
        tiny = _tiny(rgb)
    width, height = rgb.size
    return Converted(
        jpeg,
        Description(
            width=width,
            height=height,
            frames=frames,
            digest=hashlib.sha256(jpeg).hexdigest()[:32],
            color=dominant_color(tiny),
            placeholder=placeholder(tiny),
        ),
    )


def convert_cost(data: bytes, max_pixels: int) -> int:
    """The memory converting an upload takes, in bytes, from its header alone.

    Raises what :func:`convert_to_jpeg` would for a header it refuses.
    """
    with open_image(data, max_pixels) as image:
        width, height = image.size
    return width * height * _BYTES_PER_PIXEL


def render_cost(source: tuple[int, int], size: tuple[int, int]) -> int:
    """The memory rendering ``size`` from a stored JPEG of ``source`` takes."""
    width, height = source
    scale = 1
    # NOTE: As draft() decodes: at the smallest DCT scale that still covers.
    while (
        scale < 8
        and width // (2 * scale) >= size[0]
        and height // (2 * scale) >= size[1]
    ):
        scale *= 2
    return (width // scale) * (height // scale) * _BYTES_PER_PIXEL


def count_frames(image: PIL.Image.Image) -> int:
    """How many frames an image has, counting no further than MAX_FRAMES.

    Walking a TIFF's pages costs more the more there are, and an APNG's
    header may claim any number: neither is taken at its word past the cap.
    """
    if image.format != 'TIFF':
        return min(getattr(image, 'n_frames', 1), MAX_FRAMES)
    frames = 1
    try:
        while frames < MAX_FRAMES:
            image.seek(frames)
            frames += 1
    except EOFError:
        pass
    image.seek(0)
    return frames


def render_thumbnail(
    data: bytes, size: tuple[int, int], quality: int = 85, ext: str = 'jpeg'
) -> bytes:
    """Scale a stored JPEG to exactly ``size``, in the format of ``ext``."""
    scaled = scale(data, size)
    with timing.stage('encode', THUMBNAIL_FORMATS[ext]):
        return encode(scaled, THUMBNAIL_FORMATS[ext], quality)


def scale(data: bytes, size: tuple[int, int]) -> PIL.Image.Image:
    """Decode a stored JPEG straight to about ``size``, then resample to it."""
    with PIL.Image.open(io.BytesIO(data), formats=['JPEG']) as image:
        # NOTE: The decoder skips detail we are about to throw away: it
        #   decodes at the smallest DCT scale (1/2, 1/4, 1/8) above size.
        image.draft('RGB', size)
        with timing.stage('decode', 'JPEG'):
            decoded = image.convert('RGB')
        with timing.stage('resize', 'JPEG'):
            return decoded.resize(
                size, RESAMPLING['filter'], reducing_gap=RESAMPLING['reducing_gap']
            )


def recipe(ext: str, quality: int) -> str:
    """What decides the bytes of a derived image in format ``ext``, spelt out."""
    fmt = THUMBNAIL_FORMATS[ext]
    settings = _settings(fmt, quality)
    return f'{RECIPE_VERSION}:{fmt}:{sorted(settings.items())}:{RESAMPLING}:' + (
        PIL.__version__
    )


def _settings(fmt, quality):
    # NOTE: The JPEG quality is a setting of the service's; the others' are
    #   fixed, chosen for the same visual quality.
    return {**ENCODER_SETTINGS[fmt], **({'quality': quality} if fmt == 'JPEG' else {})}


def dominant_color(image: PIL.Image.Image) -> str:
    """The image's average colour, as ``#rrggbb``."""
    red, green, blue = image.resize((1, 1), PIL.Image.Resampling.BOX).getpixel((0, 0))
    return f'#{red:02x}{green:02x}{blue:02x}'


def placeholder(image: PIL.Image.Image) -> str:
    """A tiny stand-in for the image, as a data URI of a few hundred bytes."""
    # NOTE: PNG, not JPEG: at 16 pixels a JPEG is mostly its tables, and its
    #   colour blocks smear hard edges into tinted blotches.
    tiny = _tiny(image)
    tiny.info = {}
    output = io.BytesIO()
    tiny.save(output, 'PNG', optimize=True)
    return 'data:image/png;base64,' + base64.b64encode(output.getvalue()).decode()


def _tiny(image):
    width, height = image.size
    scale = _PLACEHOLDER_SIZE / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, PIL.Image.Resampling.BOX)


def open_image(data: bytes, max_pixels: int) -> PIL.Image.Image:
    """Identify an upload from its bytes alone and check its size.

    Only the header is read; nothing is decoded yet.
    """
    structure.check(data)
    try:
        image = PIL.Image.open(io.BytesIO(data), formats=_DECODERS)
    except PIL.Image.UnidentifiedImageError as ex:
        raise errors.UnsupportedImage(
            'The upload is not an image in an accepted format. Accepted formats: '
            f'{", ".join(ACCEPTED_FORMATS)}.'
        ) from ex
    except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning) as ex:
        raise _too_many_pixels(max_pixels) from ex
    except Exception as ex:
        raise _corrupt(None, ex) from ex

    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise _too_many_pixels(max_pixels, image.size)
    if max(width, height) > MAX_SIDE['JPEG']:
        image.close()
        raise errors.TooManyPixels(
            f'The image is {width}x{height}; no side may be longer than '
            f'{MAX_SIDE["JPEG"]} pixels (the largest a JPEG can be).'
        )
    return image


def to_srgb(image: PIL.Image.Image, background: tuple[int, int, int]):
    """Return the upright, 8-bit, opaque sRGB version of ``image``."""
    icc_profile = image.info.get('icc_profile')
    # NOTE: Transpose first: only the image as opened knows every place its
    #   format may keep the orientation (EXIF, TIFF tags, XMP).
    PIL.ImageOps.exif_transpose(image, in_place=True)
    image = to_8_bit(image)
    if image.mode == 'LAB':
        # NOTE: Pillow's own LAB to RGB conversion is not colorimetric.
        image = PIL.ImageCms.profileToProfile(image, _LAB, _SRGB, outputMode='RGB')

    alpha = image.mode in _ALPHA_MODES or 'transparency' in image.info
    if image.mode not in ('RGB', 'CMYK', 'L') or alpha:
        image = image.convert('RGBA' if alpha else 'RGB')
    if icc_profile:
        image = _apply_profile(image, icc_profile)
    if alpha:
        # NOTE: Pasted through its alpha onto the background: fewer full-size
        #   copies than compositing in RGBA, and images can be large.
        flat = PIL.Image.new('RGB', image.size, background)
        flat.paste(image, mask=image.getchannel('A'))
        return flat
    # NOTE: No copy when there is nothing to convert.
    return image if image.mode == 'RGB' else image.convert('RGB')


def to_8_bit(image: PIL.Image.Image) -> PIL.Image.Image:
    """Scale 16-bit, 32-bit integer and float images into 0..255 (as ``L``).

    A colour key (PNG's tRNS on a 16-bit grey image) becomes an alpha band,
    as the 8-bit values could no longer tell the keyed pixels apart.
    """
    if image.mode not in ('I', 'F') and not image.mode.startswith('I;16'):
        return image
    if image.mode.startswith('I;16'):
        # NOTE: 16 bits say their range: 65535 is white, however dark the image.
        grey = image.convert('I').point(lambda value: value / 257).convert('L')
    else:
        grey = _scaled(image)
    key = grey.info.pop('transparency', None)
    if isinstance(key, int):
        keyed = PIL.ImageMath.lambda_eval(
            lambda operands: (operands['image'] != key) * 255, image=image.convert('I')
        )
        grey.putalpha(keyed.convert('L'))
    return grey


def _scaled(image):
    low, high = image.getextrema()
    if image.mode == 'F' and low >= 0 and high <= 1:
        low, high = 0, 1
    elif image.mode == 'I' and low >= 0 and high <= 255:
        return image.convert('L')
    elif image.mode == 'I' and low >= 0 and high <= 65535:
        low, high = 0, 65535
    # NOTE: Anything else is stretched over its own range.
    scale = 255 / (high - low) if high > low else 0
    return image.point(lambda value: (value - low) * scale).convert('L')


def encode(image: PIL.Image.Image, fmt: str, quality: int) -> bytes:
    """Encode with no metadata: no EXIF, XMP, ICC profile or comment."""
    image.info = {}
    output = io.BytesIO()
    image.save(output, fmt, **_settings(fmt, quality))
    return output.getvalue()


def _apply_profile(image, icc_profile):
    try:
        profile = PIL.ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        return PIL.ImageCms.profileToProfile(
            image,
            profile,
            _SRGB,
            outputMode='RGBA' if image.mode == 'RGBA' else 'RGB',
        )
    except (PIL.ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # NOTE: A broken profile, or one for another colour space: what
        #   browsers do too is to treat the pixels as sRGB.
        return image


def _decode(image, step):
    # NOTE: Pillow's decoders raise OSError, ValueError, SyntaxError,
    #   EOFError, struct.error, IndexError and more on hostile input.
    try:
        return step()
    except (
        PIL.Image.DecompressionBombError,
        PIL.Image.DecompressionBombWarning,
        MemoryError,
    ) as ex:
        raise _too_many_pixels(None) from ex
    except Exception as ex:
        raise _corrupt(image.format, ex) from ex


def _too_many_pixels(max_pixels, size=None):
    limit = f'the limit is {max_pixels:,} pixels' if max_pixels else 'it is too large'
    if size:
        width, height = size
        found = f'{width}x{height} = {width * height:,} pixels'
        return errors.TooManyPixels(f'The image is {found}; {limit}.')
    return errors.TooManyPixels(f'The image has too many pixels to decode; {limit}.')


def _corrupt(image_format, ex):
    kind = f'{image_format} image' if image_format else 'image'
    reason = str(ex)[:200] or type(ex).__name__
    return errors.CorruptImage(
        f'The {kind} could not be decoded; it may be truncated or corrupt ({reason}).'
    )
