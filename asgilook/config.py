import math
import os
import pathlib
import re
import urllib.parse
import uuid

import PIL.ImageColor
import redis.asyncio

from . import access
from . import backends
from . import blobs
from .workers import ImageWorkers


class Config:
    DEFAULT_CONFIG_PATH = '/tmp/asgilook'
    DEFAULT_MIN_THUMB_SIZE = 64
    DEFAULT_REDIS_HOST = 'redis://localhost'
    DEFAULT_REDIS_FROM_URL = redis.asyncio.from_url
    DEFAULT_REDIS_RETRY_INTERVAL = 1.0
    DEFAULT_REDIS_TIMEOUT = 0.5
    DEFAULT_UUID_GENERATOR = uuid.uuid4

    DEFAULT_MAX_UPLOAD_BYTES = 32 * 2**20
    DEFAULT_MAX_PIXELS = 50_000_000
    DEFAULT_UPLOAD_TIMEOUT = 30.0
    DEFAULT_UPLOAD_IDLE_TIMEOUT = 10.0
    DEFAULT_JPEG_QUALITY = 85
    DEFAULT_BACKGROUND = 'white'
    DEFAULT_IMAGE_WORKERS = os.cpu_count() or 1
    DEFAULT_IMAGE_QUEUE = 256
    DEFAULT_IMAGE_DEADLINE = 10.0
    DEFAULT_IMAGE_MEMORY = 256 * 2**20
    DEFAULT_QUEUE_TIMEOUT = 30.0
    DEFAULT_CACHE_MAX_ENTRY_BYTES = 2 * 2**20
    DEFAULT_CACHE_LOCK_TTL = 10.0
    DEFAULT_MAX_UPLOADS = 16
    DEFAULT_SWEEP_INTERVAL = 600.0
    DEFAULT_READ_WHOLE_BYTES = 8 * 2**20
    DEFAULT_READINESS_TIMEOUT = 2.0
    DEFAULT_EVENTS_KEEPALIVE = 15.0
    DEFAULT_SEND_TIMEOUT = 60.0
    MIN_TOKEN_LENGTH = 16
    DEFAULT_ACCESS_LOG = 'text'

    # NOTE: Factories for the collaborators create_app builds; tests and
    #   embedders replace them (as the tutorial does redis_from_url).
    DEFAULT_BACKEND_FROM_URL = staticmethod(backends.from_url)
    DEFAULT_BLOBS_FROM_URL = staticmethod(blobs.from_url)
    DEFAULT_WORKERS_FACTORY = ImageWorkers.from_config

    # NOTE: The service's own index, in the storage directory (the blobs
    #   sweep only ever touches files named by a UUID).
    EMBEDDED_DATABASE = 'asgilook.db'

    def __init__(self, environ=None):
        # NOTE: Tests pass their own mapping so they never touch os.environ.
        env = _Environment(os.environ if environ is None else environ)

        self.storage_path = env.directory(
            'ASGI_LOOK_STORAGE_PATH', self.DEFAULT_CONFIG_PATH
        )

        self.redis_from_url = Config.DEFAULT_REDIS_FROM_URL
        self.min_thumb_size = env.integer(
            'ASGI_LOOK_MIN_THUMB_SIZE', self.DEFAULT_MIN_THUMB_SIZE
        )
        self.redis_host = env.redis_url('ASGI_LOOK_REDIS_URL', self.DEFAULT_REDIS_HOST)
        # NOTE: ASGI_LOOK_REDIS_URL=none: no cache at all, on purpose (and
        #   nothing to report as down).
        self.redis_enabled = self.redis_host is not None
        if self.redis_host is None:
            self.redis_host = self.DEFAULT_REDIS_HOST
        self.redis_retry_interval = env.seconds(
            'ASGI_LOOK_REDIS_RETRY_INTERVAL', self.DEFAULT_REDIS_RETRY_INTERVAL
        )
        self.redis_timeout = env.seconds(
            'ASGI_LOOK_REDIS_TIMEOUT', self.DEFAULT_REDIS_TIMEOUT
        )
        self.uuid_generator = Config.DEFAULT_UUID_GENERATOR

        self.max_upload_bytes = env.integer(
            'ASGI_LOOK_MAX_UPLOAD_BYTES', self.DEFAULT_MAX_UPLOAD_BYTES
        )
        self.max_pixels = env.integer('ASGI_LOOK_MAX_PIXELS', self.DEFAULT_MAX_PIXELS)
        self.upload_timeout = env.seconds(
            'ASGI_LOOK_UPLOAD_TIMEOUT', self.DEFAULT_UPLOAD_TIMEOUT
        )
        self.upload_idle_timeout = env.seconds(
            'ASGI_LOOK_UPLOAD_IDLE_TIMEOUT', self.DEFAULT_UPLOAD_IDLE_TIMEOUT
        )
        self.jpeg_quality = env.integer(
            'ASGI_LOOK_JPEG_QUALITY', self.DEFAULT_JPEG_QUALITY, high=95
        )
        self.background = env.colour('ASGI_LOOK_BACKGROUND', self.DEFAULT_BACKGROUND)
        # NOTE: Each worker is a process, all started at once: bounded.
        self.image_workers = env.integer(
            'ASGI_LOOK_IMAGE_WORKERS',
            self.DEFAULT_IMAGE_WORKERS,
            high=max(64, 2 * self.DEFAULT_IMAGE_WORKERS),
        )
        self.image_queue = env.integer(
            'ASGI_LOOK_IMAGE_QUEUE', self.DEFAULT_IMAGE_QUEUE, low=0
        )
        self.image_deadline = env.seconds(
            'ASGI_LOOK_IMAGE_DEADLINE', self.DEFAULT_IMAGE_DEADLINE
        )
        self.image_memory = (
            env.integer('ASGI_LOOK_IMAGE_MEMORY_MB', self.DEFAULT_IMAGE_MEMORY // 2**20)
            * 2**20
        )
        self.queue_timeout = env.seconds(
            'ASGI_LOOK_QUEUE_TIMEOUT', self.DEFAULT_QUEUE_TIMEOUT
        )
        self.max_uploads = env.integer(
            'ASGI_LOOK_MAX_UPLOADS', self.DEFAULT_MAX_UPLOADS
        )
        self.database_url = env.database_url('ASGI_LOOK_DATABASE_URL')
        self.cache_max_entry_bytes = env.integer(
            'ASGI_LOOK_CACHE_MAX_ENTRY_BYTES', self.DEFAULT_CACHE_MAX_ENTRY_BYTES
        )
        self.access_log = env.choice(
            'ASGI_LOOK_ACCESS_LOG', self.DEFAULT_ACCESS_LOG, access.FORMATS
        )
        # NOTE: prometheus-client's own variable, which it reads when imported:
        #   where every worker process keeps its metrics, for /metrics to add
        #   up. Unset, each app keeps its metrics in metrics_registry (None:
        #   a registry of its own, made by create_app).
        self.prometheus_multiproc_dir = env.optional_directory(
            'PROMETHEUS_MULTIPROC_DIR'
        )
        self.metrics_registry = None
        # NOTE: How long the right to render what others wait for outlives a
        #   holder that died (a live one keeps renewing it), how long the
        #   others wait for it at most (as long as a render may take: a queue,
        #   then a deadline), and how often the storage is swept for crash
        #   leftovers.
        self.cache_lock_ttl = self.DEFAULT_CACHE_LOCK_TTL
        self.cache_lock_wait = (
            self.queue_timeout + self.image_deadline + self.cache_lock_ttl
        )
        self.sweep_interval = self.DEFAULT_SWEEP_INTERVAL
        # NOTE: Originals up to this size are read in one go, larger ones
        #   streamed in chunks of a MiB.
        self.read_whole_bytes = self.DEFAULT_READ_WHOLE_BYTES

        # NOTE: Bearer tokens for uploads and deletes; none: open to all.
        self.api_tokens = env.tokens('ASGI_LOOK_API_TOKENS')
        self.anonymous_uploads = env.boolean('ASGI_LOOK_ANONYMOUS_UPLOADS', False)
        # NOTE: How long each readiness check may take.
        self.readiness_timeout = env.seconds(
            'ASGI_LOOK_READINESS_TIMEOUT', self.DEFAULT_READINESS_TIMEOUT
        )
        # NOTE: How long a write of a download may wait for its client.
        self.send_timeout = env.seconds(
            'ASGI_LOOK_SEND_TIMEOUT', self.DEFAULT_SEND_TIMEOUT
        )
        # NOTE: Where clients reach the service (None: URLs stay relative),
        #   and the origins of other sites' pages that may use the API.
        self.public_url = env.public_url('ASGI_LOOK_PUBLIC_URL')
        self.cors_origins = env.origins('ASGI_LOOK_CORS_ORIGINS')
        # NOTE: How long an idle event stream waits before a keep-alive.
        self.events_keepalive = env.keepalive(
            'ASGI_LOOK_EVENTS_KEEPALIVE', self.DEFAULT_EVENTS_KEEPALIVE
        )

        self.backend_from_url = Config.DEFAULT_BACKEND_FROM_URL
        # NOTE: None keeps images in the storage directory.
        self.blobs_url = env.blobs_url('ASGI_LOOK_BLOBS_URL')
        self.blobs_from_url = Config.DEFAULT_BLOBS_FROM_URL
        self.workers_factory = Config.DEFAULT_WORKERS_FACTORY

    @classmethod
    def for_service(cls, environ=None) -> 'Config':
        """The configuration ``asgilook.asgi`` serves with.

        As ``Config()``, except that without ``ASGI_LOOK_DATABASE_URL`` the
        index is a SQLite file in the storage directory, so that every worker
        process and every restart sees the same images. ``Config()`` itself
        keeps the tutorial's in-memory index (``memory://`` names it too).
        """
        config = cls(environ)
        if config.database_url is None:
            path = (config.storage_path / cls.EMBEDDED_DATABASE).resolve()
            config.database_url = 'sqlite://' + urllib.parse.quote(path.as_posix())
        return config


_BOOLEANS = {
    **dict.fromkeys(('1', 'true', 'yes', 'on'), True),
    **dict.fromkeys(('0', 'false', 'no', 'off'), False),
}


# NOTE: Query parameters that may hold a secret (asyncpg reads ?password=).
_SECRET_PARAMETER = re.compile(r'pass|pwd|secret|token|key|sig|auth|cred', re.I)


def masked(url: str) -> str:
    """A URL fit for a log line: its password and secret-looking query
    parameters replaced by ``***``; a value that does not parse as a URL is
    not shown at all, since it may hold a password anywhere."""
    try:
        parts = urllib.parse.urlsplit(url)
        _port(url)
    except ValueError:
        parts = None
    if parts is None or '://' not in url or not parts.scheme:
        return '(a value that does not parse as a URL, not shown)'
    netloc = parts.netloc
    if parts.password is not None:
        user = urllib.parse.quote(parts.username or '', safe='')
        netloc = f'{user}:***@{netloc.rpartition("@")[2]}'
    query = urllib.parse.urlencode(
        [
            (name, '***' if _SECRET_PARAMETER.search(name) else value)
            for name, value in urllib.parse.parse_qsl(
                parts.query, keep_blank_values=True
            )
        ],
        safe='*/:',
    )
    # NOTE: Put together by hand: urlunsplit drops the empty host of
    #   sqlite:////absolute/path.
    return f'{parts.scheme}://{netloc}{parts.path}' + (f'?{query}' if query else '')


def _bucket_part(url: str) -> str:
    """An object storage URL without its user part and query, where a key or
    a password may have been put (encoded, too)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return '(a value that does not parse as a URL, not shown)'
    host = parts.netloc.rpartition('@')[2]
    return f'{parts.scheme}://{host}{parts.path}' + ('?…' if parts.query else '')


def _unparsable(ex: Exception) -> str:
    # NOTE: Not the parser's message: it quotes the part it choked on, which
    #   may be a password.
    return f'it does not parse: {type(ex).__name__}'


def _port(url: str) -> int | None:
    """The port of a URL; ValueError when it is not a port number."""
    return urllib.parse.urlsplit(url).port


def _split(raw):
    """``urlsplit``, or None where it cannot (``http://[::1``)."""
    try:
        return urllib.parse.urlsplit(raw)
    except ValueError:
        return None


# NOTE: An ASCII name or address: it goes into Location, CSP and srcset
#   values as it is, where spaces, commas, quotes or non-ASCII break them.
_HOST = re.compile(r'[a-z0-9.-]+|[0-9a-f:.]+')
_PATH = re.compile(r'(/([A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})*)*')


def _is_web_origin(parts):
    if parts is None:
        return False
    try:
        # NOTE: Reading the port is what checks it (a number, 0 to 65535).
        _ = parts.port
    except ValueError:
        return False
    return (
        parts.scheme.lower() in ('http', 'https')
        and bool(parts.hostname)
        and _HOST.fullmatch(parts.hostname) is not None
        and '@' not in parts.netloc
        # NOTE: No one listens on port 0.
        and parts.port != 0
    )


def _origin(parts):
    """``scheme://host[:port]`` as browsers send it in ``Origin``."""
    scheme = parts.scheme.lower()
    host = parts.hostname
    if ':' in host:
        host = f'[{host}]'
    default = {'http': 80, 'https': 443}[scheme]
    port = f':{parts.port}' if parts.port not in (None, default) else ''
    return f'{scheme}://{host}{port}'


def _is_header_word(text):
    return text.isascii() and text.isprintable() and ' ' not in text


class _Environment:
    """Typed reads of the environment that fail loudly at startup."""

    def __init__(self, environ):
        self._environ = environ

    def directory(self, name, default):
        # NOTE: Empty is unset: Path('') would be the working directory.
        raw = self._environ.get(name) or default
        path = pathlib.Path(raw)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as ex:
            raise ValueError(
                f'{name} must be a directory this service can create and write to, '
                f'got {raw!r} ({ex.strerror})'
            ) from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise ValueError(
                f'{name} must be a directory this service can write to, got {raw!r} '
                '(not writable)'
            )
        return path

    def redis_url(self, name, default):
        raw = self._environ.get(name, default)
        if raw.strip().lower() == 'none':
            return None
        scheme = raw.partition('://')[0].lower()
        reason = None
        if '://' not in raw or scheme not in ('redis', 'rediss', 'unix'):
            reason = 'an unknown scheme'
        else:
            try:
                _port(raw)
                # NOTE: Parsed as the client will, without connecting.
                redis.asyncio.ConnectionPool.from_url(raw)
            except (ValueError, TypeError) as ex:
                reason = _unparsable(ex)
        if reason is not None:
            raise ValueError(
                f'{name} must be redis://host:port/db, rediss://… (TLS), '
                f'unix:///path/to/socket, or none (no cache), got {masked(raw)!r} '
                f'({reason})'
            )
        return raw

    def tokens(self, name):
        raw = self._environ.get(name, '')
        tokens = tuple(token.strip() for token in raw.split(',') if token.strip())
        for token in tokens:
            if len(token) < Config.MIN_TOKEN_LENGTH or not _is_header_word(token):
                # NOTE: The value is a secret: named by its length only.
                raise ValueError(
                    f'{name} must be a comma-separated list of tokens of at least '
                    f'{Config.MIN_TOKEN_LENGTH} characters each (printable ASCII, no '
                    f'spaces), got one of {len(token)} characters'
                )
        return tokens

    def boolean(self, name, default):
        raw = self._environ.get(name)
        if raw is None:
            return default
        value = _BOOLEANS.get(raw.strip().lower())
        if value is None:
            raise ValueError(f'{name} must be true or false (1 or 0), got {raw!r}')
        return value

    def integer(self, name, default, low=1, high=None):
        raw = self._environ.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            upper = f' and at most {high}' if high is not None else ''
            raise ValueError(
                f'{name} must be a whole number of at least {low}{upper}, got {raw!r}'
            )
        return value

    def seconds(self, name, default):
        raw = self._environ.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not 0 < value < math.inf:
            raise ValueError(
                f'{name} must be a positive number of seconds, got {raw!r}'
            )
        return value

    def keepalive(self, name, default):
        value = self.seconds(name, default)
        # NOTE: Below a second, a flood of pings to every open stream; above
        #   five minutes, proxies close idle streams first.
        if not 1 <= value <= 300:
            raise ValueError(
                f'{name} must be between 1 and 300 seconds, got {self._environ[name]!r}'
            )
        return value

    def choice(self, name, default, allowed):
        raw = self._environ.get(name, default)
        if raw.lower() not in allowed:
            raise ValueError(f'{name} must be one of {", ".join(allowed)}, got {raw!r}')
        return raw.lower()

    def optional_directory(self, name):
        raw = self._environ.get(name) or None
        return None if raw is None else str(self.directory(name, raw))

    def database_url(self, name):
        url = self._environ.get(name) or None
        if url is not None:
            try:
                _port(url)
            except ValueError as ex:
                raise ValueError(
                    f'{name} must be a URL with a numeric port, got {masked(url)!r} '
                    f'({_unparsable(ex)})'
                ) from None
            try:
                backends.from_url(url)
            except ValueError as ex:
                reason = str(ex).replace(repr(url), 'it')
                raise ValueError(
                    f'{name} must be sqlite:///absolute/path.db, '
                    'postgresql://user:password@host/database or memory://, got '
                    f'{masked(url)!r} ({reason})'
                ) from None
        return url

    def blobs_url(self, name):
        url = self._environ.get(name) or None
        if url is not None:
            try:
                blobs.check_url(url)
            except ValueError as ex:
                shown = _bucket_part(url)
                raise ValueError(
                    f'{name} must be s3://bucket/prefix?endpoint=…&region=…, or unset '
                    f'for the storage directory, got {shown!r} ({ex})'
                ) from None
        return url

    def public_url(self, name):
        raw = self._environ.get(name) or None
        if raw is None:
            return None
        parts = _split(raw.strip())
        if (
            not _is_web_origin(parts)
            or parts.query
            or parts.fragment
            or not _PATH.fullmatch(parts.path)
            # NOTE: A browser resolves these away; every URL made on it would
            #   then point somewhere else than it says.
            or any(
                urllib.parse.unquote(segment) in ('.', '..')
                for segment in parts.path.split('/')
            )
        ):
            raise ValueError(
                f'{name} must be an http:// or https:// URL, such as '
                f'https://img.example.com or https://example.com/asgilook, got '
                f'{masked(raw)!r}'
            )
        # NOTE: Paths are appended to it: /images/… after the prefix.
        return _origin(parts) + parts.path.rstrip('/')

    def origins(self, name):
        raw = self._environ.get(name, '')
        if raw.strip() == '*':
            return '*'
        origins = []
        for item in filter(None, (item.strip() for item in raw.split(','))):
            parts = _split(item)
            if (
                not _is_web_origin(parts)
                or parts.path not in ('', '/')
                or (parts.query or parts.fragment)
            ):
                raise ValueError(
                    f'{name} must be * or a comma-separated list of origins such as '
                    f'https://app.example.com,http://localhost:3000 (scheme, host '
                    f'and port only), got {masked(item)!r}'
                )
            origins.append(_origin(parts))
        return tuple(origins)

    def colour(self, name, default):
        raw = self._environ.get(name, default)
        try:
            return PIL.ImageColor.getrgb(raw)[:3]
        except ValueError:
            raise ValueError(
                f'{name} must be a colour such as white, #ffffff or rgb(255,255,255), '
                f'got {raw!r}'
            ) from None
