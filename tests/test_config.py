import asyncio
import os
import pathlib

import pytest
import redis.asyncio

from asgilook import backends
from asgilook.config import Config
from asgilook.config import masked


def test_defaults(tmp_path, monkeypatch):
    # NOTE: Patched because the default is the one thing under test: Config()
    #   would otherwise make /tmp/asgilook on the machine running the tests.
    monkeypatch.setattr(Config, 'DEFAULT_CONFIG_PATH', str(tmp_path / 'default'))
    config = Config(environ={})

    assert config.storage_path == tmp_path / 'default'
    assert config.storage_path.is_dir()
    assert config.min_thumb_size == 64
    assert config.redis_host == 'redis://localhost'
    assert config.redis_from_url is redis.asyncio.from_url
    assert config.redis_retry_interval == 1.0
    assert config.redis_timeout == 0.5
    assert str(config.uuid_generator()) != str(config.uuid_generator())
    assert config.max_upload_bytes == 32 * 1024 * 1024
    assert config.max_pixels == 50_000_000
    assert config.upload_timeout == 30
    assert config.jpeg_quality == 85
    assert config.background == (255, 255, 255)
    assert config.image_workers == (os.cpu_count() or 1)
    assert config.image_queue == 256
    assert config.image_deadline == 10
    assert config.image_memory == 256 * 2**20
    assert config.queue_timeout == 30
    assert config.upload_idle_timeout == 10
    assert config.max_uploads == 16
    assert config.database_url is None
    assert config.access_log == 'text'
    assert config.prometheus_multiproc_dir is None
    assert config.metrics_registry is None


def test_tutorial_class_attributes():
    assert Config.DEFAULT_CONFIG_PATH == '/tmp/asgilook'
    assert Config.DEFAULT_MIN_THUMB_SIZE == 64
    assert Config.DEFAULT_REDIS_HOST == 'redis://localhost'
    assert Config.DEFAULT_REDIS_FROM_URL is redis.asyncio.from_url


def test_environment_overrides(tmp_path):
    config = Config(
        environ={
            'ASGI_LOOK_STORAGE_PATH': str(tmp_path / 'deep' / 'images'),
            'ASGI_LOOK_MIN_THUMB_SIZE': '32',
            'ASGI_LOOK_REDIS_URL': 'redis://cache.example:6380/2',
            'ASGI_LOOK_REDIS_RETRY_INTERVAL': '2.5',
            'ASGI_LOOK_REDIS_TIMEOUT': '0.1',
            'ASGI_LOOK_MAX_UPLOAD_BYTES': '1048576',
            'ASGI_LOOK_MAX_PIXELS': '1000000',
            'ASGI_LOOK_UPLOAD_TIMEOUT': '5',
            'ASGI_LOOK_UPLOAD_IDLE_TIMEOUT': '2',
            'ASGI_LOOK_JPEG_QUALITY': '95',
            'ASGI_LOOK_BACKGROUND': '#102030',
            'ASGI_LOOK_IMAGE_WORKERS': '3',
            'ASGI_LOOK_IMAGE_QUEUE': '0',
            'ASGI_LOOK_IMAGE_DEADLINE': '2.5',
            'ASGI_LOOK_IMAGE_MEMORY_MB': '64',
            'ASGI_LOOK_QUEUE_TIMEOUT': '3',
            'ASGI_LOOK_MAX_UPLOADS': '2',
            'ASGI_LOOK_ACCESS_LOG': 'JSON',
            'PROMETHEUS_MULTIPROC_DIR': str(tmp_path),
        }
    )

    assert config.storage_path == pathlib.Path(tmp_path / 'deep' / 'images')
    assert config.storage_path.is_dir()
    assert config.min_thumb_size == 32
    assert config.redis_host == 'redis://cache.example:6380/2'
    assert config.redis_retry_interval == 2.5
    assert config.redis_timeout == 0.1
    assert config.max_upload_bytes == 1048576
    assert config.max_pixels == 1000000
    assert config.upload_timeout == 5
    assert config.upload_idle_timeout == 2
    assert config.jpeg_quality == 95
    assert config.background == (0x10, 0x20, 0x30)
    assert config.image_workers == 3
    assert config.image_queue == 0
    assert config.image_deadline == 2.5
    assert config.image_memory == 64 * 2**20
    assert config.queue_timeout == 3
    assert config.max_uploads == 2
    assert config.access_log == 'json'
    assert config.prometheus_multiproc_dir == str(tmp_path)


def test_reads_os_environ_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv('ASGI_LOOK_STORAGE_PATH', str(tmp_path))
    monkeypatch.setenv('ASGI_LOOK_REDIS_URL', 'redis://elsewhere')

    config = Config()
    assert config.storage_path == tmp_path
    assert config.redis_host == 'redis://elsewhere'


@pytest.mark.parametrize(
    'name, value',
    [
        ('ASGI_LOOK_MIN_THUMB_SIZE', 'big'),
        ('ASGI_LOOK_MIN_THUMB_SIZE', '0'),
        ('ASGI_LOOK_MIN_THUMB_SIZE', '-64'),
        ('ASGI_LOOK_MIN_THUMB_SIZE', '6.4'),
        ('ASGI_LOOK_REDIS_TIMEOUT', 'nan'),
        ('ASGI_LOOK_REDIS_TIMEOUT', 'inf'),
        ('ASGI_LOOK_REDIS_RETRY_INTERVAL', ''),
        ('ASGI_LOOK_MAX_UPLOAD_BYTES', '32M'),
        ('ASGI_LOOK_MAX_PIXELS', '0'),
        ('ASGI_LOOK_UPLOAD_TIMEOUT', '-1'),
        ('ASGI_LOOK_UPLOAD_IDLE_TIMEOUT', 'soon'),
        ('ASGI_LOOK_JPEG_QUALITY', '100'),
        ('ASGI_LOOK_JPEG_QUALITY', '0'),
        ('ASGI_LOOK_BACKGROUND', 'not-a-colour'),
        ('ASGI_LOOK_IMAGE_WORKERS', '0'),
        ('ASGI_LOOK_IMAGE_QUEUE', '-1'),
        ('ASGI_LOOK_IMAGE_DEADLINE', '0'),
        ('ASGI_LOOK_IMAGE_MEMORY_MB', '0.5'),
        ('ASGI_LOOK_QUEUE_TIMEOUT', 'never'),
        ('ASGI_LOOK_MAX_UPLOADS', '0'),
        ('ASGI_LOOK_DATABASE_URL', 'mysql://localhost/images'),
        ('ASGI_LOOK_DATABASE_URL', 'sqlite://relative.db'),
        ('ASGI_LOOK_DATABASE_URL', 'sqlite:////abs.db?timeout=never'),
        ('ASGI_LOOK_REDIS_URL', 'localhost:6379'),
        ('ASGI_LOOK_REDIS_URL', 'http://cache.example'),
        ('ASGI_LOOK_REDIS_URL', ''),
        ('ASGI_LOOK_API_TOKENS', 'too-short'),
        ('ASGI_LOOK_API_TOKENS', 'long-enough-token-1,short'),
        ('ASGI_LOOK_API_TOKENS', 'a token with spaces in it'),
        ('ASGI_LOOK_API_TOKENS', 'ein-schlüssel-mit-umlaut'),
        ('ASGI_LOOK_ANONYMOUS_UPLOADS', 'maybe'),
        ('ASGI_LOOK_READINESS_TIMEOUT', '0'),
        ('ASGI_LOOK_SEND_TIMEOUT', '-1'),
        ('ASGI_LOOK_REDIS_URL', 'redis://localhost:abc'),
        ('ASGI_LOOK_REDIS_URL', 'redis://localhost:99999'),
        ('ASGI_LOOK_REDIS_URL', 'redis://localhost?socket_timeout=abc'),
        ('ASGI_LOOK_DATABASE_URL', 'postgresql://look:Pa55#w0rd@x@host/look'),
        ('ASGI_LOOK_IMAGE_WORKERS', '5000'),
        ('ASGI_LOOK_ACCESS_LOG', 'yaml'),
        ('PROMETHEUS_MULTIPROC_DIR', '/dev/null/metrics'),
    ],
)
def test_bad_values_fail_at_startup(tmp_path, name, value):
    environ = {'ASGI_LOOK_STORAGE_PATH': str(tmp_path), name: value}
    with pytest.raises(ValueError, match=f'^{name} must be ') as raised:
        Config(environ=environ)
    assert '\n' not in str(raised.value)


def test_a_secret_is_never_in_the_message(tmp_path):
    environ = {'ASGI_LOOK_STORAGE_PATH': str(tmp_path)}
    bad = [
        ('ASGI_LOOK_API_TOKENS', 'hunter2-secret'),
        ('ASGI_LOOK_DATABASE_URL', 'mysql://admin:hunter2-secret@db/images'),
        ('ASGI_LOOK_REDIS_URL', 'http://:hunter2-secret@cache'),
        ('ASGI_LOOK_REDIS_URL', 'redis:/user:hunter2-secret@host'),
        ('ASGI_LOOK_REDIS_URL', 'redis://:hunter2-secret@host:port'),
        ('ASGI_LOOK_DATABASE_URL', 'u:hunter2-secret@h/db'),
        ('ASGI_LOOK_DATABASE_URL', 'postgresql://look:hunter2-secret#x@host/look'),
    ]
    for name, value in bad:
        with pytest.raises(ValueError) as raised:
            Config(environ={**environ, name: value})
        assert 'hunter2-secret' not in str(raised.value)
        assert name in str(raised.value)


def test_a_storage_path_that_cannot_be_made(tmp_path):
    (tmp_path / 'a-file').write_text('in the way')
    environ = {'ASGI_LOOK_STORAGE_PATH': str(tmp_path / 'a-file' / 'images')}

    with pytest.raises(ValueError, match='^ASGI_LOOK_STORAGE_PATH must be a dir'):
        Config(environ=environ)


def test_access_settings(tmp_path):
    config = Config(
        {
            'ASGI_LOOK_STORAGE_PATH': str(tmp_path),
            'ASGI_LOOK_API_TOKENS': ' first-token-0123456789 ,, second-token-abcdefgh,',
            'ASGI_LOOK_ANONYMOUS_UPLOADS': 'Yes',
            'ASGI_LOOK_READINESS_TIMEOUT': '0.5',
            'ASGI_LOOK_SEND_TIMEOUT': '7.5',
        }
    )
    assert config.send_timeout == 7.5
    assert config.api_tokens == ('first-token-0123456789', 'second-token-abcdefgh')
    assert config.anonymous_uploads is True
    assert config.readiness_timeout == 0.5

    config = Config({'ASGI_LOOK_STORAGE_PATH': str(tmp_path)})
    assert config.api_tokens == ()
    assert config.anonymous_uploads is False
    assert config.readiness_timeout == 2


@pytest.mark.parametrize(
    'url, enabled',
    [
        ('none', False),
        ('None', False),
        ('rediss://:secret@cache.example:6380/1', True),
        ('unix:///run/redis.sock', True),
    ],
)
def test_redis_urls(tmp_path, url, enabled):
    config = Config(
        {'ASGI_LOOK_STORAGE_PATH': str(tmp_path), 'ASGI_LOOK_REDIS_URL': url}
    )
    assert config.redis_enabled is enabled
    assert config.redis_host == (url if enabled else 'redis://localhost')


def test_database_url(tmp_path):
    url = f'sqlite:///{tmp_path}/images.db'
    config = Config(
        environ={'ASGI_LOOK_STORAGE_PATH': str(tmp_path), 'ASGI_LOOK_DATABASE_URL': url}
    )
    assert config.database_url == url
    assert (
        Config(environ={'ASGI_LOOK_STORAGE_PATH': str(tmp_path)}).database_url is None
    )


def test_blobs_live_in_the_storage_directory_unless_told_otherwise(config):
    blobs = config.blobs_from_url(None, config, None)
    assert blobs.path('x') == config.storage_path / 'x'
    with pytest.raises(ValueError, match='unsupported storage URL'):
        config.blobs_from_url('nfs://server/images', config, None)


def test_the_service_keeps_its_index_in_the_storage_directory(tmp_path):
    storage = tmp_path / 'my images #1'
    config = Config.for_service({'ASGI_LOOK_STORAGE_PATH': str(storage)})

    async def open_and_close():
        backend = backends.from_url(config.database_url)
        await backend.open()
        await backend.close()

    asyncio.run(open_and_close())
    assert (storage / 'asgilook.db').is_file()
    # NOTE: create_app(Config()) keeps the tutorial's in-memory index.
    assert Config({'ASGI_LOOK_STORAGE_PATH': str(storage)}).database_url is None


@pytest.mark.parametrize('url', ['memory://', 'sqlite:////elsewhere/index.db'])
def test_the_service_uses_the_index_it_is_given(tmp_path, url):
    config = Config.for_service(
        {'ASGI_LOOK_STORAGE_PATH': str(tmp_path), 'ASGI_LOOK_DATABASE_URL': url}
    )

    assert config.database_url == url


@pytest.mark.parametrize(
    'url, shown',
    [
        ('redis://:pw@cache:6379/0', 'redis://:***@cache:6379/0'),
        (
            'sqlite:////var/lib/index.db?timeout=5',
            'sqlite:////var/lib/index.db?timeout=5',
        ),
        (
            'postgresql://look@db:5432/look?password=Pa55%23w0rd&sslmode=require',
            'postgresql://look@db:5432/look?password=***&sslmode=require',
        ),
        ('s3://bucket/images?endpoint=http://minio:9000', None),
        ('u:secret@h/db', '(a value that does not parse as a URL, not shown)'),
        ('redis://localhost:port', '(a value that does not parse as a URL, not shown)'),
    ],
)
def test_urls_are_masked_for_log_lines(url, shown):
    assert masked(url) == (url if shown is None else shown)


def test_an_empty_storage_path_is_the_default(tmp_path, monkeypatch):
    # NOTE: As in test_defaults: the default is what is under test.
    monkeypatch.setattr(Config, 'DEFAULT_CONFIG_PATH', str(tmp_path / 'default'))
    config = Config({'ASGI_LOOK_STORAGE_PATH': ''})
    assert config.storage_path == tmp_path / 'default'


def test_public_url_and_cors_origins_are_off_by_default(tmp_path):
    config = Config({'ASGI_LOOK_STORAGE_PATH': str(tmp_path)})
    assert config.public_url is None
    assert config.cors_origins == ()
    assert config.events_keepalive == 15.0


@pytest.mark.parametrize(
    ('raw', 'url'),
    [
        ('https://img.example.com', 'https://img.example.com'),
        ('HTTPS://Img.Example.com:443/', 'https://img.example.com'),
        ('http://example.com:8080/asgilook/', 'http://example.com:8080/asgilook'),
        ('http://[::1]:8000', 'http://[::1]:8000'),
        ('https://example.com/a-b_c.d~e%20f', 'https://example.com/a-b_c.d~e%20f'),
    ],
)
def test_public_url(tmp_path, raw, url):
    environ = {'ASGI_LOOK_STORAGE_PATH': str(tmp_path), 'ASGI_LOOK_PUBLIC_URL': raw}
    assert Config(environ).public_url == url


@pytest.mark.parametrize(
    'raw',
    [
        'img.example.com',
        'ftp://x',
        'http://',
        'http://x:99999',
        'http://x/?a',
        'http://[::1',
        'http://img example.com',
        'http://img.example.com/a b',
        'http://img.example.com/a,b',
        'http://img.example.com/"x"',
        'http://img.example.com/<x>',
        'http://img.example.com/a\\b',
        'http://img.example.com/é',
        'http://bücher.example',
        'http://img.example.com/%zz',
        'http://img.example.com:0',
        'https://example.com/a/../b',
        'https://example.com/a/./b',
        'https://example.com/%2E%2e/b',
        'https://example.com/..',
    ],
)
def test_bad_public_urls(tmp_path, raw):
    environ = {'ASGI_LOOK_STORAGE_PATH': str(tmp_path), 'ASGI_LOOK_PUBLIC_URL': raw}
    with pytest.raises(ValueError, match='^ASGI_LOOK_PUBLIC_URL must be an http'):
        Config(environ)


def test_a_password_in_the_public_url_is_not_repeated(tmp_path):
    environ = {
        'ASGI_LOOK_STORAGE_PATH': str(tmp_path),
        'ASGI_LOOK_PUBLIC_URL': 'https://me:hunter2@img.example.com',
    }
    with pytest.raises(ValueError) as raised:
        Config(environ)
    assert 'hunter2' not in str(raised.value)


@pytest.mark.parametrize(
    ('raw', 'origins'),
    [
        ('*', '*'),
        (' https://app.example.com/ ,', ('https://app.example.com',)),
        (
            'http://localhost:3000,HTTPS://B.example:443',
            ('http://localhost:3000', 'https://b.example'),
        ),
    ],
)
def test_cors_origins(tmp_path, raw, origins):
    environ = {'ASGI_LOOK_STORAGE_PATH': str(tmp_path), 'ASGI_LOOK_CORS_ORIGINS': raw}
    assert Config(environ).cors_origins == origins


@pytest.mark.parametrize(
    'raw',
    [
        'app.example.com',
        'https://a.example/path',
        '*,https://a.example',
        'x#y',
        'http://[::1',
        'http://a"b.example',
        'http://localhost:0',
    ],
)
def test_bad_cors_origins(tmp_path, raw):
    environ = {'ASGI_LOOK_STORAGE_PATH': str(tmp_path), 'ASGI_LOOK_CORS_ORIGINS': raw}
    with pytest.raises(ValueError, match='^ASGI_LOOK_CORS_ORIGINS must be'):
        Config(environ)


def test_events_keepalive(tmp_path):
    environ = {
        'ASGI_LOOK_STORAGE_PATH': str(tmp_path),
        'ASGI_LOOK_EVENTS_KEEPALIVE': '5',
    }
    assert Config(environ).events_keepalive == 5.0
    assert Config({**environ, 'ASGI_LOOK_EVENTS_KEEPALIVE': '1'}).events_keepalive == 1
    for raw in ('0', '0.0001', '0.999', '301', 'soon'):
        with pytest.raises(ValueError, match='^ASGI_LOOK_EVENTS_KEEPALIVE must be'):
            Config({**environ, 'ASGI_LOOK_EVENTS_KEEPALIVE': raw})


def test_a_choice_names_what_it_takes(tmp_path):
    environ = {'ASGI_LOOK_STORAGE_PATH': str(tmp_path), 'ASGI_LOOK_ACCESS_LOG': 'on'}
    with pytest.raises(ValueError) as raised:
        Config(environ=environ)
    assert str(raised.value) == (
        "ASGI_LOOK_ACCESS_LOG must be one of text, json, off, got 'on'"
    )
