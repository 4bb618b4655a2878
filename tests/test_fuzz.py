"""Random and mutated bytes at the upload path: never a 5xx, never a leftover."""

import falcon.testing
import hypothesis
import hypothesis.strategies as st

from asgilook.app import create_app

from . import corpus

SEEDS = [
    corpus.encode(corpus.pattern((48, 32)), fmt)
    for fmt in ('JPEG', 'PNG', 'GIF', 'WEBP', 'BMP', 'TIFF')
] + [
    corpus.animated('GIF', [corpus.RED, corpus.BLUE]),
    corpus.raw_png(4, 4, 16, 6, b'\x12\x34' * 4),
    corpus.png_bomb(20_000, 20_000),
    *(corpus.tiled_tiff((64, 64), (16, 16), kind) for kind in (2, 4, 5, 7)),
    corpus.strip_bomb(64),
    corpus.strip_bomb(300),
    corpus.scan_bomb((64, 48), repeats=20),
    corpus.scan_bomb((64, 48), repeats=150),
]

_SETTINGS = hypothesis.settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(['flip', 'cut', 'insert', 'zero']))
        if action == 'flip':
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == 'cut':
            del data[position : position + draw(st.integers(1, 64))]
        elif action == 'insert':
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        else:
            data[position : position + 8] = b'\x00' * 8
        if not data:
            break
    return bytes(data)


def _check(config, storage_path, body):
    for path in storage_path.iterdir():
        path.unlink()
    client = falcon.testing.TestClient(create_app(config))
    accepted = []

    resp = client.simulate_post('/images', body=body)
    assert resp.status_code in (201, 400, 413, 415, 422), resp.text
    if resp.status_code == 201:
        accepted.append(resp.json)
        # NOTE: Whatever was accepted can be served, whole.
        image = client.simulate_get(resp.json['image'])
        assert image.status_code == 200
        assert image.content[:2] == b'\xff\xd8'
        for uri in resp.json['thumbnails']:
            assert client.simulate_get(uri).status_code == 200
    else:
        assert set(resp.json) == {'title', 'description', 'status'}

    files = sorted(path.name for path in storage_path.iterdir())
    assert files == sorted(image['id'] for image in accepted)


@_SETTINGS
@hypothesis.given(body=st.binary(max_size=4096))
def test_random_bytes(config, storage_path, body):
    _check(config, storage_path, body)


@_SETTINGS
@hypothesis.given(body=mutated())
def test_mutated_images(config, storage_path, body):
    _check(config, storage_path, body)


_DIGITS = st.text('0123456789', min_size=0, max_size=5000)


@_SETTINGS
@hypothesis.given(
    first=_DIGITS, last=_DIGITS, unit=st.sampled_from(['bytes', 'Bytes', 'pages'])
)
def test_any_range_header(client, png_image, first, last, unit):
    created = client.simulate_post('/images', body=png_image).json
    resp = client.simulate_get(
        created['image'], headers={'Range': f'{unit}={first}-{last}'}
    )
    assert resp.status_code in (200, 206, 416)
