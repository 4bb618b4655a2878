import pathlib

import pytest
import redis.asyncio

from asgilook.config import Config


def test_defaults(tmp_path, monkeypatch):
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
        }
    )

    assert config.storage_path == pathlib.Path(tmp_path / 'deep' / 'images')
    assert config.storage_path.is_dir()
    assert config.min_thumb_size == 32
    assert config.redis_host == 'redis://cache.example:6380/2'
    assert config.redis_retry_interval == 2.5
    assert config.redis_timeout == 0.1


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
    ],
)
def test_bad_numbers_fail_at_startup(tmp_path, name, value):
    environ = {'ASGI_LOOK_STORAGE_PATH': str(tmp_path), name: value}
    with pytest.raises(ValueError, match=f'{name} must be a positive'):
        Config(environ=environ)
