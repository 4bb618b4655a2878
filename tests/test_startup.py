"""What the service says when it starts, and how it refuses to start."""

import logging
import os
import signal
import subprocess
import sys

import falcon.testing
import pytest

from asgilook import blobs as blobs_package
from asgilook import startup
from asgilook.app import create_app

from .fakes import FlakyRedis
from .servers import free_port
from .servers import Service


def _start(config, caplog):
    caplog.set_level(logging.INFO, logger='asgilook')
    client = falcon.testing.TestClient(create_app(config))
    client.simulate_get('/healthz')
    client.simulate_get('/healthz')
    return [r for r in caplog.records if r.name == 'asgilook']


def test_one_line_says_what_the_service_runs_on(config, caplog, storage_path):
    config.max_pixels = 1000
    config.image_memory = 64 * 2**20

    [report, warning] = _start(config, caplog)
    assert report.levelno == logging.INFO
    assert report.getMessage() == (
        f'asgilook: storage {storage_path}; index in memory; redis '
        'redis://localhost (answering); limits ASGI_LOOK_MAX_PIXELS=1000, '
        'ASGI_LOOK_IMAGE_MEMORY_MB=64'
    )
    assert warning.levelno == logging.WARNING
    assert warning.getMessage() == (
        'asgilook: no ASGI_LOOK_API_TOKENS: anyone who can reach this service can '
        'upload and delete images'
    )


def test_the_line_keeps_passwords_out(config, caplog, tmp_path):
    flaky = FlakyRedis()
    flaky.down = True
    config.redis_from_url = lambda url: flaky
    config.redis_host = 'redis://:redis-secret@cache.example:6380/2'
    config.database_url = f'sqlite:///{tmp_path}/index.db?timeout=5'
    config.blobs_url = 'dir://user:blob-secret@elsewhere/images'
    config.blobs_from_url = lambda url, config, workers: blobs_package.from_url(
        None, config, workers
    )
    config.api_tokens = ('operator-token-0123456789',)

    [report] = _start(config, caplog)
    message = report.getMessage()
    assert message == (
        'asgilook: storage dir://user:***@elsewhere/images; '
        f'index sqlite:///{tmp_path}/index.db?timeout=5; '
        'redis redis://cache.example:6380/2 (NOT answering); limits the defaults'
    )
    for secret in ('redis-secret', 'blob-secret', 'operator-token'):
        assert secret not in caplog.text


def test_no_redis_on_purpose(config, caplog):
    config.redis_enabled = False
    report = _start(config, caplog)[0]
    assert 'redis none (uncached)' in report.getMessage()


@pytest.mark.parametrize('workers', [[], ['--workers', '2']])
def test_a_bad_setting_stops_the_service_with_one_line(tmp_path, workers):
    port = free_port()
    environ = {'ASGI_LOOK_MAX_PIXELS': 'abc', 'ASGI_LOOK_STORAGE_PATH': str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable, '-m', 'uvicorn', 'asgilook.asgi:app',
            '--port', str(port), *workers,
        ],
        env=dict(os.environ, PYTHONPATH=str(Service.ROOT), **environ),
        cwd=Service.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip

    assert result.returncode in (0, 3) if workers else result.returncode == 3
    lines = [line for line in result.stderr.splitlines() if 'asgilook' in line]
    assert set(lines) == {
        "asgilook: ASGI_LOOK_MAX_PIXELS must be a whole number of at least 1, got 'abc'"
    }
    assert 'Traceback' not in result.stderr


def test_the_service_shows_its_own_lines(tmp_path):
    service = Service(tmp_path / 'images').start()
    assert service.stop() in (0, -signal.SIGTERM), service.output

    lines = service.output.splitlines()
    [report] = [line for line in lines if 'asgilook: storage' in line]
    assert report.startswith('INFO ')
    assert f'storage {tmp_path / "images"}; index sqlite://' in report
    assert any(
        line.startswith('WARNING') and 'no ASGI_LOOK_API_TOKENS' in line
        for line in lines
    )


def test_configured_logging_is_left_alone(monkeypatch):
    service_logger = logging.getLogger('asgilook')
    # NOTE: As under uvicorn's defaults: no handler anywhere above it.
    monkeypatch.setattr(logging.getLogger(), 'handlers', [])
    monkeypatch.setattr(service_logger, 'handlers', [])
    monkeypatch.setattr(service_logger, 'level', logging.NOTSET)

    startup.show_service_logs()
    [handler] = service_logger.handlers
    assert service_logger.level == logging.INFO

    startup.show_service_logs()
    assert service_logger.handlers == [handler]
