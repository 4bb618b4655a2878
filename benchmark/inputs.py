"""Photo-like JPEGs made at run time: nothing large is committed.

Smooth gradients, hard-edged shapes softened by a slight blur, and mild
luminance noise, saved at quality 90: about what a camera's JPEG costs to
decode and compresses to (a 2 MP one comes out at about 0.5 MB, and at about
0.4 MB when the service stores it at quality 85). Pure noise would not do:
it is far slower to encode and far larger than any photograph.
"""

import io
import random

import PIL.Image
import PIL.ImageChops
import PIL.ImageDraw
import PIL.ImageFilter

TWO_MP = (1632, 1224)
TWELVE_MP = (4000, 3000)
_SHAPES = 40
_NOISE_SIGMA = 5


def photo(size: tuple[int, int], seed: int) -> bytes:
    """A photo-like JPEG (quality 90) of ``size``; the same for the same seed."""
    rng = random.Random(seed)
    image = PIL.Image.merge('RGB', [_gradient(size, rng) for _ in range(3)])
    _draw_shapes(image, rng)
    image = image.filter(PIL.ImageFilter.GaussianBlur(1.2))
    noise = PIL.Image.effect_noise(size, _NOISE_SIGMA).convert('RGB')
    # NOTE: effect_noise is centred on 128: adding it, less 128, adds noise.
    image = PIL.ImageChops.add(image, noise, offset=-128)
    output = io.BytesIO()
    image.save(output, 'JPEG', quality=90)
    return output.getvalue()


def _gradient(size, rng):
    linear = PIL.Image.linear_gradient('L').rotate(
        rng.uniform(0, 360), resample=PIL.Image.Resampling.BICUBIC
    )
    band = PIL.ImageChops.blend(
        linear, PIL.Image.radial_gradient('L'), rng.uniform(0.2, 0.8)
    )
    return band.resize(size, PIL.Image.Resampling.BICUBIC)


def _draw_shapes(image, rng):
    width, height = image.size
    draw = PIL.ImageDraw.Draw(image)
    for _ in range(_SHAPES):
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            left, top = rng.randrange(width), rng.randrange(height)
            right = left + rng.randrange(width // 20, width // 3)
            bottom = top + rng.randrange(height // 20, height // 3)
            draw.ellipse([left, top, right, bottom], fill=colour)
        else:
            corners = rng.randrange(3, 6)
            points = [
                (rng.randrange(width), rng.randrange(height)) for _ in range(corners)
            ]
            draw.polygon(points, fill=colour)
