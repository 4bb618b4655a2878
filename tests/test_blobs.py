"""The blobs contract, run against a directory and an S3 bucket (moto)."""

import logging
import uuid

import falcon
import pytest

from asgilook import blobs as blobs_package
from asgilook import errors
from asgilook.blobs.files import probe_name
from asgilook.health import PROBE

from .helpers import stored_files

ID_A, ID_B, ID_C = (str(uuid.UUID(int=n, version=4)) for n in (1, 2, 3))
# NOTE: Bytes that tell their positions apart, over more than one chunk.
LARGE = bytes(range(251)) * (3 * 2**20 // 251)


def run(coroutine_function, *args):
    return falcon.async_to_sync(coroutine_function, *args)


@pytest.fixture(params=['directory', 's3'])
def place(request, config):
    """Blobs, and what is stored in them, by name; kept under a prefix on
    S3, beside an object of someone else's that must stay."""
    if request.param == 'directory':
        workers = config.workers_factory(config)
        blobs = blobs_package.from_url(None, config, workers)
        (config.storage_path / 'asgilook.db').write_bytes(b'not ours to remove')

        def stored():
            return [
                name for name in stored_files(config.storage_path) if '.db' not in name
            ]

        yield blobs, stored
        run(workers.close)
        return

    moto = request.getfixturevalue('moto_server')
    bucket = request.getfixturevalue('s3_bucket')
    moto.client().put_object(Bucket=bucket, Key=ID_C, Body=b'not ours to remove')
    blobs = blobs_package.from_url(moto.url(bucket, 'images'), config, None)
    run(blobs.start)

    def stored():
        return [key.removeprefix('images/') for key in moto.keys(bucket) if key != ID_C]

    yield blobs, stored
    assert ID_C in moto.keys(bucket)
    run(blobs.stop)


@pytest.fixture
def blobs(place):
    return place[0]


@pytest.fixture
def stored(place):
    return place[1]


def derived(image_id, recipe='abc'):
    return f'derived/{image_id}/{recipe}.webp'


def test_write_then_read(blobs, stored):
    run(blobs.write, ID_A, b'jpeg bytes')
    run(blobs.write, derived(ID_A), b'webp bytes')

    assert run(blobs.read, ID_A) == b'jpeg bytes'
    assert run(blobs.read, derived(ID_A)) == b'webp bytes'
    assert run(blobs.size, ID_A) == len(b'jpeg bytes')
    assert stored() == sorted([ID_A, derived(ID_A)])


def test_a_write_replaces_all_of_a_blob(blobs):
    run(blobs.write, ID_A, b'a longer first version')
    run(blobs.write, ID_A, b'second')

    assert run(blobs.read, ID_A) == b'second'


def test_an_empty_blob_as_the_readiness_probe_writes(blobs, stored):
    probe = str(uuid.uuid4())
    run(blobs.write, probe, b'')
    assert run(blobs.read, probe) == b''
    assert run(blobs.size, probe) == 0

    run(blobs.remove, probe)
    assert stored() == []


@pytest.mark.parametrize('method', ['read', 'size', 'open'])
def test_a_missing_blob(blobs, method):
    with pytest.raises(errors.FileMissing):
        run(getattr(blobs, method), ID_A)


def test_a_reader_streams_from_any_position(blobs):
    run(blobs.write, ID_A, LARGE)
    reader = run(blobs.open, ID_A)
    try:
        run(reader.seek, 1000)
        chunks = []
        while chunk := run(reader.read, 2**20):
            assert len(chunk) <= 2**20
            chunks.append(chunk)
    finally:
        run(reader.close)

    assert b''.join(chunks) == LARGE[1000:]


def test_remove(blobs, stored):
    run(blobs.write, ID_A, b'jpeg bytes')
    run(blobs.remove, ID_A)
    run(blobs.remove, ID_A)

    assert stored() == []
    with pytest.raises(errors.FileMissing):
        run(blobs.read, ID_A)


def test_remove_all_takes_one_prefix(blobs, stored):
    run(blobs.write, ID_A, b'original')
    for recipe in ('one', 'two', 'three'):
        run(blobs.write, derived(ID_A, recipe), b'derived')
    run(blobs.write, derived(ID_B), b'derived of another')

    run(blobs.remove_all, f'derived/{ID_A}')
    run(blobs.remove_all, f'derived/{ID_C}')

    assert stored() == sorted([ID_A, derived(ID_B)])


def test_removing_ends_well(blobs, stored):
    run(blobs.write, ID_A, b'original')

    async def remove():
        async with blobs.removing(ID_A, _wanted(True)):
            pass

    run(remove)
    assert stored() == []


@pytest.mark.parametrize('wanted', [True, False])
def test_removing_fails_in_its_block(blobs, stored, wanted):
    run(blobs.write, ID_A, b'original')

    async def remove():
        async with blobs.removing(ID_A, _wanted(wanted)):
            raise RuntimeError('the record could not go')

    with pytest.raises(RuntimeError):
        run(remove)
    # NOTE: Still listed: the bytes are all there. Gone from the index
    #   after all: the bytes go too.
    if wanted:
        assert run(blobs.read, ID_A) == b'original'
    else:
        assert stored() == []


def test_removing_what_is_not_there(blobs, stored):
    ran = []

    async def remove():
        async with blobs.removing(ID_A, _wanted(True)):
            ran.append(True)

    run(remove)
    assert ran == [True]
    assert stored() == []


def _wanted(answer):
    async def still_wanted():
        return answer

    return still_wanted


def _images(blobs, image_ids):
    for image_id in image_ids:
        run(blobs.write, image_id, b'original')
        run(blobs.write, derived(image_id), b'derived')


def _known(image_ids):
    async def known(names):
        return set(names) & set(image_ids)

    return known


def test_clean_up_takes_what_the_index_does_not_list(blobs, stored):
    blobs.GRACE = -1
    _images(blobs, [ID_A, ID_B])
    run(blobs.write, 'notes.txt', b"somebody else's")

    dead, orphans = run(blobs.clean_up, _known([ID_A]))

    assert (dead, orphans) == (0, 2)
    assert stored() == sorted([ID_A, derived(ID_A), 'notes.txt'])


def test_clean_up_takes_readiness_leftovers_without_counting_them(
    blobs, stored, caplog
):
    """An outage can leave the readiness check's writes by the dozen; the
    sweep takes them, and they never look like a wrong index."""
    blobs.GRACE = -1
    _images(blobs, [ID_A])
    for _ in range(12):
        run(blobs.write, probe_name(), PROBE)

    assert run(blobs.clean_up, _known([ID_A])) == (12, 0)
    assert stored() == sorted([ID_A, derived(ID_A)])
    assert 'right database' not in caplog.text


def test_clean_up_leaves_young_images_alone(blobs, stored):
    run(blobs.write, ID_A, b'original, still being listed')

    assert run(blobs.clean_up, _known([])) == (0, 0)
    assert stored() == [ID_A]


def test_clean_up_without_an_index_takes_no_image(blobs, stored):
    blobs.GRACE = -1
    _images(blobs, [ID_A])

    assert run(blobs.clean_up, None) == (0, 0)
    assert stored() == sorted([ID_A, derived(ID_A)])


# NOTE: Six images are more orphans than crashes leave; two are few, but an
#   index that knows none of them is no index of this storage either.
@pytest.mark.parametrize('count', [6, 2])
def test_clean_up_takes_nothing_for_a_wrong_index(blobs, stored, caplog, count):
    blobs.GRACE = -1
    image_ids = [str(uuid.UUID(int=n, version=4)) for n in range(10, 10 + count)]
    _images(blobs, image_ids)

    assert run(blobs.clean_up, _known([])) == (0, 0)
    assert len(stored()) == 2 * count
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert 'is this the right database?' in record.getMessage()
