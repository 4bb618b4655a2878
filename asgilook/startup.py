"""The lines an operator reads when the service starts: what it runs on."""

import logging
from typing import Any

from .config import masked
from .failopen import FailOpenRedis
from .failopen import redacted

logger = logging.getLogger('asgilook')

# NOTE: The limits worth a mention when they differ from the defaults, by the
#   variable that sets them.
_LIMITS = {
    'ASGI_LOOK_MAX_UPLOAD_BYTES': ('max_upload_bytes', 'DEFAULT_MAX_UPLOAD_BYTES'),
    'ASGI_LOOK_MAX_PIXELS': ('max_pixels', 'DEFAULT_MAX_PIXELS'),
    'ASGI_LOOK_MAX_UPLOADS': ('max_uploads', 'DEFAULT_MAX_UPLOADS'),
    'ASGI_LOOK_UPLOAD_TIMEOUT': ('upload_timeout', 'DEFAULT_UPLOAD_TIMEOUT'),
    'ASGI_LOOK_UPLOAD_IDLE_TIMEOUT': (
        'upload_idle_timeout',
        'DEFAULT_UPLOAD_IDLE_TIMEOUT',
    ),
    'ASGI_LOOK_IMAGE_WORKERS': ('image_workers', 'DEFAULT_IMAGE_WORKERS'),
    'ASGI_LOOK_IMAGE_QUEUE': ('image_queue', 'DEFAULT_IMAGE_QUEUE'),
    'ASGI_LOOK_IMAGE_DEADLINE': ('image_deadline', 'DEFAULT_IMAGE_DEADLINE'),
    'ASGI_LOOK_QUEUE_TIMEOUT': ('queue_timeout', 'DEFAULT_QUEUE_TIMEOUT'),
    'ASGI_LOOK_CACHE_MAX_ENTRY_BYTES': (
        'cache_max_entry_bytes',
        'DEFAULT_CACHE_MAX_ENTRY_BYTES',
    ),
    'ASGI_LOOK_JPEG_QUALITY': ('jpeg_quality', 'DEFAULT_JPEG_QUALITY'),
    'ASGI_LOOK_MIN_THUMB_SIZE': ('min_thumb_size', 'DEFAULT_MIN_THUMB_SIZE'),
}


def changed_limits(config: Any) -> dict[str, Any]:
    """The limits set to something else than their defaults, by variable."""
    changed = {
        name: getattr(config, attribute)
        for name, (attribute, default) in _LIMITS.items()
        if getattr(config, attribute) != getattr(config, default)
    }
    if config.image_memory != config.DEFAULT_IMAGE_MEMORY:
        changed['ASGI_LOOK_IMAGE_MEMORY_MB'] = config.image_memory // 2**20
    return changed


def show_service_logs() -> None:
    """Make the service's own log lines seen where nothing else would.

    uvicorn's default logging configures its own loggers only; the lines of
    ``asgilook`` (what it runs on, Redis going away, leftovers swept) would
    be lost below WARNING. Configured logging (``--log-config``) is left as
    it is.
    """
    if not logger.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter('%(levelname)-9s %(message)s'))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


class StartupReport:
    """Falcon middleware that says, once the app has started, what it runs on."""

    def __init__(self, config: Any, redis: FailOpenRedis) -> None:
        self._config = config
        self._redis = redis
        self._reported = False

    async def process_startup(self, scope, event):
        # NOTE: Once per app: falcon's TestClient starts it for every request.
        if self._reported:
            return
        self._reported = True
        config = self._config
        if self._redis.absent:
            redis = 'none (uncached)'
        else:
            answered = 'answering' if await self._redis.ping() else 'NOT answering'
            redis = f'{redacted(config.redis_host)} ({answered})'
        limits = changed_limits(config)
        logger.info(
            'asgilook: storage %s; index %s; redis %s; limits %s',
            masked(config.blobs_url) if config.blobs_url else config.storage_path,
            masked(config.database_url) if config.database_url else 'in memory',
            redis,
            ', '.join(f'{name}={value}' for name, value in limits.items())
            or 'the defaults',
        )
        if not config.api_tokens:
            logger.warning(
                'asgilook: no ASGI_LOOK_API_TOKENS: anyone who can reach this '
                'service can upload and delete images'
            )
