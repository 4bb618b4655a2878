import io
import random
import uuid

import fakeredis
import falcon.asgi
import falcon.testing
import PIL.Image
import PIL.ImageDraw
import pytest

from asgilook.app import create_app
from asgilook.config import Config

from .fakes import CountingWorkers
from .fakes import Renders
from .fakes import TwinWorkers
from .servers import AWS_TEST_ENVIRONMENT
from .servers import MotoServer
from .servers import PostgresServer
from .servers import RedisServer


@pytest.fixture()
def predictable_uuid():
    fixtures = (
        uuid.UUID('36562622-48e5-4a61-be67-e426b11821ed'),
        uuid.UUID('3bc731ac-8cd8-4f39-b6fe-1a195d3b4e74'),
        uuid.UUID('ba1c4951-73bc-45a4-a1f6-aa2b958dafa4'),
    )

    def uuid_func():
        try:
            return next(fixtures_it)
        except StopIteration:
            return uuid.uuid4()

    fixtures_it = iter(fixtures)
    return uuid_func


@pytest.fixture
def storage_path(tmp_path):
    # NOTE: Per test rather than per session (as in the tutorial), so that a
    #   test can assert exactly what is on disk.
    path = tmp_path / 'asgilook'
    path.mkdir()
    return path


@pytest.fixture
def fake_redis_server():
    return fakeredis.FakeServer()


@pytest.fixture
def config(predictable_uuid, storage_path, fake_redis_server):
    # NOTE: A fresh FakeServer per test: fakeredis' async client would
    #   otherwise share one global state between tests.
    def fake_redis_from_url(*args, **kwargs):
        return fakeredis.FakeAsyncRedis(server=fake_redis_server)

    config = Config(environ={})
    config.redis_from_url = fake_redis_from_url
    config.redis_host = 'redis://localhost'
    config.redis_retry_interval = 0
    config.storage_path = storage_path
    config.uuid_generator = predictable_uuid
    config.workers_factory = TwinWorkers.from_config
    return config


@pytest.fixture
def renders(config):
    """The thumbnail renders of every app or store made from ``config`` after
    this fixture (list it before ``client``)."""
    made = Renders()

    def counting_workers(config):
        return CountingWorkers(
            made,
            config.image_workers,
            config.image_queue,
            config.image_deadline,
            config.image_memory,
            config.queue_timeout,
        )

    config.workers_factory = counting_workers
    return made


@pytest.fixture
def client(config):
    app = create_app(config)
    return falcon.testing.TestClient(app)


@pytest.fixture(scope='session')
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp('redis')).start()
    yield server
    server.stop()


@pytest.fixture
def real_redis(redis_server):
    redis_server.flush()
    return redis_server


@pytest.fixture
def real_client(config, real_redis):
    config.redis_from_url = Config.DEFAULT_REDIS_FROM_URL
    config.redis_host = real_redis.url
    return falcon.testing.TestClient(create_app(config))


@pytest.fixture(params=['fakeredis', 'redis-server'])
def any_client(request):
    """The app over fakeredis, then over a real redis-server."""
    name = 'client' if request.param == 'fakeredis' else 'real_client'
    return request.getfixturevalue(name)


@pytest.fixture(scope='session')
def png_image():
    image = PIL.Image.new('RGBA', (640, 360), color='black')

    draw = PIL.ImageDraw.Draw(image)
    for _ in range(32):
        x0 = random.randint(20, 620)
        y0 = random.randint(20, 340)
        x1 = random.randint(20, 620)
        y1 = random.randint(20, 340)
        if x0 > x1:
            x0, x1 = x1, x0
        if y0 > y1:
            y0, y1 = y1, y0
        draw.ellipse([(x0, y0), (x1, y1)], fill='yellow', outline='red')

    output = io.BytesIO()
    image.save(output, 'PNG')
    return output.getvalue()


@pytest.fixture(scope='session')
def image_size():
    def report_size(data):
        image = PIL.Image.open(io.BytesIO(data))
        return image.size

    return report_size


@pytest.fixture(scope='session')
def quadrants_png():
    """A 256x128 PNG: red, green, blue and white quadrants (left to right, top
    row first), for asserting decoded pixels."""
    image = PIL.Image.new('RGB', (256, 128))
    draw = PIL.ImageDraw.Draw(image)
    draw.rectangle([(0, 0), (127, 63)], fill=(255, 0, 0))
    draw.rectangle([(128, 0), (255, 63)], fill=(0, 255, 0))
    draw.rectangle([(0, 64), (127, 127)], fill=(0, 0, 255))
    draw.rectangle([(128, 64), (255, 127)], fill=(255, 255, 255))
    output = io.BytesIO()
    image.save(output, 'PNG')
    return output.getvalue()


@pytest.fixture(scope='session')
def postgres_server():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres(postgres_server):
    postgres_server.reset()
    return postgres_server


@pytest.fixture(params=['memory', 'sqlite', 'postgresql'])
def database_url(request, tmp_path):
    """Each backend in turn: in memory, SQLite in a temp file, a real PostgreSQL."""
    if request.param == 'memory':
        return None
    if request.param == 'sqlite':
        return f'sqlite:///{tmp_path}/asgilook.db'
    return request.getfixturevalue('postgres').url


@pytest.fixture(scope='session')
def moto_server():
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def aws_environment(monkeypatch):
    """The AWS variables the S3 client reads: test credentials, nothing else."""
    for name in (
        'AWS_PROFILE',
        'AWS_DEFAULT_PROFILE',
        'AWS_SESSION_TOKEN',
        'AWS_ENDPOINT_URL',
        'AWS_ENDPOINT_URL_S3',
        'AWS_DEFAULT_REGION',
        'AWS_REGION',
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in AWS_TEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3_bucket(moto_server, aws_environment):
    """A new, empty bucket on the session's moto server."""
    bucket = f'asgilook-{uuid.uuid4().hex[:12]}'
    moto_server.create_bucket(bucket)
    return bucket
