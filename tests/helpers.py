"""Small helpers the tests share."""

import contextlib
import io
import os
import threading

import falcon.testing
import PIL.Image
import uvicorn

from asgilook import blobs as blobs_package
from asgilook.app import create_app

from . import corpus
from .fakes import FailingBlobs
from .servers import free_port
from .servers import wait_for

FIRST_ID = '36562622-48e5-4a61-be67-e426b11821ed'
FIRST_URI = f'/images/{FIRST_ID}.jpeg'
# NOTE: The quadrants_png fixture's colours, clockwise from the top left.
QUADRANTS = [(255, 0, 0), (0, 255, 0), (255, 255, 255), (0, 0, 255)]


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


def assert_quadrants(image, expected, tolerance=12):
    """Assert the colours at the centres of an image's quadrants, clockwise
    from the top left."""
    for found, wanted in zip(corpus.quadrant_colours(image), expected, strict=True):
        assert_close(found, wanted, tolerance)


def as_listed(created):
    """An upload's JSON as the listing shows it: without its delete token,
    which only the upload's own answer carries."""
    listed = dict(created)
    token = listed.pop('delete_token')
    assert isinstance(token, str) and len(token) >= 32
    return listed


def deep_folder(top):
    """Folders nested past the longest path the system takes (PATH_MAX).

    NOTE: Root may list any folder whatever its permissions; a path too long
    to open is what fails for everyone.
    """
    top.mkdir()
    name = 'd' * 200
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(25):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    return os.path.join(str(top), *[name] * 25)


def client_over_failing_blobs(config):
    """A client of an app whose blobs can be made to fail, and those blobs."""
    made = []

    def failing_blobs(url, config, workers):
        made.append(FailingBlobs(blobs_package.from_url(url, config, workers)))
        return made[-1]

    config.blobs_from_url = failing_blobs
    client = falcon.testing.TestClient(create_app(config))
    [blobs] = made
    return client, blobs


@contextlib.contextmanager
def served(app):
    """``app`` served by uvicorn on a free port, in a thread of this process
    (where coverage sees it); ``stop()`` on what it gives stops it early."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, port=free_port(), log_level='warning', timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=server.run)
    thread.start()
    wait_for(lambda: server.started, what='uvicorn to start')

    def stop():
        server.should_exit = True
        thread.join()

    server.stop = stop
    try:
        yield server
    finally:
        stop()
