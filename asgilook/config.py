import math
import os
import pathlib
import uuid

import redis.asyncio


class Config:
    DEFAULT_CONFIG_PATH = '/tmp/asgilook'
    DEFAULT_MIN_THUMB_SIZE = 64
    DEFAULT_REDIS_HOST = 'redis://localhost'
    DEFAULT_REDIS_FROM_URL = redis.asyncio.from_url
    DEFAULT_REDIS_RETRY_INTERVAL = 1.0
    DEFAULT_REDIS_TIMEOUT = 0.5
    DEFAULT_UUID_GENERATOR = uuid.uuid4

    def __init__(self, environ=None):
        # NOTE: Tests pass their own mapping so they never touch os.environ.
        environ = os.environ if environ is None else environ

        self.storage_path = pathlib.Path(
            environ.get('ASGI_LOOK_STORAGE_PATH', self.DEFAULT_CONFIG_PATH)
        )
        self.storage_path.mkdir(parents=True, exist_ok=True)

        self.redis_from_url = Config.DEFAULT_REDIS_FROM_URL
        self.min_thumb_size = _number(
            environ, 'ASGI_LOOK_MIN_THUMB_SIZE', self.DEFAULT_MIN_THUMB_SIZE, int
        )
        self.redis_host = environ.get('ASGI_LOOK_REDIS_URL', self.DEFAULT_REDIS_HOST)
        self.redis_retry_interval = _number(
            environ,
            'ASGI_LOOK_REDIS_RETRY_INTERVAL',
            self.DEFAULT_REDIS_RETRY_INTERVAL,
            float,
        )
        self.redis_timeout = _number(
            environ, 'ASGI_LOOK_REDIS_TIMEOUT', self.DEFAULT_REDIS_TIMEOUT, float
        )
        self.uuid_generator = Config.DEFAULT_UUID_GENERATOR


def _number(environ, name, default, kind):
    """Read a positive number from the environment, failing loudly at startup."""
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not 0 < value < math.inf:
        raise ValueError(
            f'{name} must be a positive {kind.__name__} number, got {raw!r}'
        )
    return value
