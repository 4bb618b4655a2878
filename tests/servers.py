"""Real servers that the test suite starts on a free port and stops itself."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest
import redis


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def require_binary(name):
    """Return the binary's path; skip without it, except under CI, where fail."""
    path = shutil.which(name)
    if path is None:
        message = f'{name} is not installed (apt-get install redis-server)'
        if os.environ.get('CI'):
            pytest.fail(f'{message}; under CI a missing server is a failure')
        pytest.skip(message)
    return path


def wait_for(predicate, timeout=10.0, what='a condition'):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f'gave up waiting for {what}')
        time.sleep(0.02)


def answers(url):
    try:
        with redis.Redis.from_url(url, socket_timeout=0.5) as client:
            return client.ping()
    except redis.exceptions.ConnectionError:
        return False


class RedisServer:
    """A throwaway redis-server on 127.0.0.1, in its own temp dir."""

    def __init__(self, directory, port=None):
        self.binary = require_binary('redis-server')
        self.directory = directory
        self.port = port or free_port()
        self.process = None

    @property
    def url(self):
        return f'redis://127.0.0.1:{self.port}'

    def start(self):
        self.process = subprocess.Popen(
            [
                self.binary,
                '--bind', '127.0.0.1',
                '--port', str(self.port),
                '--dir', str(self.directory),
                '--save', '',
                '--appendonly', 'no',
                '--daemonize', 'no',
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: answers(self.url), what=f'redis-server on {self.port}')
        return self

    def stop(self):
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def client(self):
        """A synchronous client, for tests to look inside."""
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def flush(self):
        with self.client() as client:
            client.flushall()
