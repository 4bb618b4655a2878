"""Real servers that the test suite starts on a free port and stops itself."""

import asyncio
import contextlib
import glob
import http.client
import importlib.util
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import redis


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def require_binary(name, package=None):
    """Return the binary's path; skip without it, except under CI, where fail."""
    path = shutil.which(name)
    if path is None:
        message = f'{name} is not installed (apt-get install {package or name})'
        if os.environ.get('CI'):
            pytest.fail(f'{message}; under CI a missing server is a failure')
        pytest.skip(message)
    return path


def require_module(name, requirement):
    """Skip without a Python package; under CI, fail."""
    if importlib.util.find_spec(name) is None:
        message = f'{name} is not installed (pip install "{requirement}")'
        if os.environ.get('CI'):
            pytest.fail(f'{message}; under CI a missing server is a failure')
        pytest.skip(message)


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


class _ServerProcess:
    """Stop, pause and resume for a test server run as ``self.process``."""

    process = None

    def stop(self):
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def pause(self):
        """Stop answering, as a hung server does; connections still open."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)


class RedisServer(_ServerProcess):
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

    def client(self):
        """A synchronous client, for tests to look inside."""
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def flush(self):
        with self.client() as client:
            client.flushall()


class Service:
    """``uvicorn asgilook.asgi:app`` in a subprocess, configured by environment."""

    ROOT = pathlib.Path(__file__).parent.parent

    def __init__(self, storage_path, *args, **environ):
        self.args = args
        self.port = free_port()
        self.storage_path = storage_path
        self.environ = {
            'ASGI_LOOK_STORAGE_PATH': str(storage_path),
            # NOTE: Nothing listens there: the service runs uncached.
            'ASGI_LOOK_REDIS_URL': f'redis://127.0.0.1:{free_port()}',
            **environ,
        }
        self.process = None
        self.output = ''
        self._chunks = []
        self._reader = None

    def start(self):
        env = dict(os.environ, PYTHONPATH=str(self.ROOT), **self.environ)
        self.process = subprocess.Popen(
            [
                sys.executable, '-m', 'uvicorn', 'asgilook.asgi:app',
                '--port', str(self.port), *self.args,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # NOTE: Its own process group, so that kill() reaches every worker.
            start_new_session=True,
        )  # fmt: skip
        # NOTE: Read all along: a service that logs every request would
        #   otherwise fill the pipe, and block, after a few hundred.
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        wait_for(self._answers, what='uvicorn to answer')
        return self

    def _read_output(self):
        for chunk in iter(lambda: self.process.stdout.read1(65536), b''):
            self._chunks.append(chunk)

    def output_so_far(self):
        """What the service wrote up to now (``output`` once it stopped)."""
        return b''.join(self._chunks).decode(errors='replace')

    def _collect(self, timeout):
        self.process.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        self.process.stdout.close()
        self.output = b''.join(self._chunks).decode()

    def stop(self):
        self.process.terminate()
        self._collect(20)
        return self.process.returncode

    def kill(self):
        """kill -9 the server and all its workers, mid-whatever."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self._collect(10)

    def _answers(self):
        try:
            return self.request('GET', '/images')[0] == 200
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None):
        """One request over a fresh connection: status, headers, body."""
        connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def connect(self):
        """A raw socket to the service, for what http.client will not send."""
        return socket.create_connection(('127.0.0.1', self.port), timeout=10)


def read_response(sock):
    """Read one HTTP/1.1 response with a Content-Length from a raw socket."""
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    status = int(lines[0].split()[1])
    headers = {
        name.lower(): value.strip()
        for name, _, value in (line.partition(':') for line in lines[1:])
    }
    length = int(headers.get('content-length', 0))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def postgres_binary(name):
    """A PostgreSQL server binary: on PATH, or where Debian keeps them."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f'/usr/lib/postgresql/*/bin/{name}'), reverse=True)),
        None,
    )
    if found is None:
        return require_binary(name, 'postgresql')
    return found


class PostgresServer:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) on a free port."""

    def __init__(self):
        self.initdb = postgres_binary('initdb')
        self.pg_ctl = postgres_binary('pg_ctl')
        # NOTE: Not under pytest's tmp_path: as root, the server runs as the
        #   postgres user, who must be able to reach its directory.
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix='asgilook-pg-'))
        self.directory.chmod(0o755)
        self.port = free_port()

    @property
    def url(self):
        return f'postgresql://postgres@127.0.0.1:{self.port}/postgres'

    def _run(self, *command):
        if os.geteuid() == 0:
            shutil.chown(self.directory, 'postgres', 'postgres')
            command = ('runuser', '-u', 'postgres', '--', *command)
        subprocess.run(command, check=True, capture_output=True)

    def start(self):
        data = self.directory / 'data'
        self._run(self.initdb, '-D', str(data), '-A', 'trust', '-U', 'postgres')
        options = f'-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1'
        self._run(
            self.pg_ctl, '-D', str(data), '-l', str(self.directory / 'log'),
            '-o', options, '-w', 'start',
        )  # fmt: skip
        return self

    def stop(self):
        self._run(self.pg_ctl, '-D', str(self.directory / 'data'), '-m', 'fast', 'stop')
        shutil.rmtree(self.directory, ignore_errors=True)

    def reset(self):
        """Drop asgilook's tables, so that each test starts empty."""
        import asyncpg

        async def drop():
            connection = await asyncpg.connect(self.url)
            try:
                await connection.execute(
                    'DROP TABLE IF EXISTS idempotency, images, state, schema_version'
                )
            finally:
                await connection.close()

        asyncio.run(drop())


class TcpProxy:
    """Forwards a free loopback port to ``target``; ``cut()`` drops every
    connection and refuses new ones, as a server that went away;
    ``hang_up()`` drops every connection, and each new one as soon as it is
    made, as a load balancer does whose servers went away; ``freeze()`` makes
    the connections so far carry nothing more, without a word, as ones that a
    NAT forgot."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.port = free_port()
        self._listener = None
        self._sockets = []
        self._frozen = set()
        self._lock = threading.Lock()
        self._hanging_up = False

    def start(self):
        self._listener = socket.create_server(('127.0.0.1', self.port))
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._hanging_up:
                client.close()
                continue
            upstream = socket.create_connection(('127.0.0.1', self.target_port))
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), daemon=True
                ).start()

    def _pump(self, source, sink):
        try:
            while data := source.recv(65536):
                if source not in self._frozen:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def freeze(self):
        with self._lock:
            self._frozen.update(self._sockets)

    def cut(self):
        # NOTE: A shutdown, not only a close: close() does not wake a thread
        #   blocked in accept(), which would go on accepting.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._drop_all()

    def hang_up(self):
        self._hanging_up = True
        self._drop_all()

    def _drop_all(self):
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


# NOTE: Credentials moto takes (it checks none). Fixed, and the AWS files and
#   the instance metadata service out of the way, so that neither a
#   developer's ~/.aws nor the network is ever consulted.
AWS_TEST_ENVIRONMENT = {
    'AWS_ACCESS_KEY_ID': 'asgilook-test-key',
    'AWS_SECRET_ACCESS_KEY': 'asgilook-test-secret',
    'AWS_CONFIG_FILE': os.devnull,
    'AWS_SHARED_CREDENTIALS_FILE': os.devnull,
    'AWS_EC2_METADATA_DISABLED': 'true',
}


class MotoServer(_ServerProcess):
    """moto's standalone S3 server on 127.0.0.1, everything kept in memory."""

    def __init__(self, port=None):
        require_module('moto', 'moto[server]')
        require_module('flask', 'moto[server]')
        self.port = port or free_port()
        self.process = None

    @property
    def endpoint(self):
        return f'http://127.0.0.1:{self.port}'

    def url(self, bucket, prefix='', **query):
        """The ASGI_LOOK_BLOBS_URL of a bucket on this server."""
        query = {'endpoint': self.endpoint, 'region': 'us-east-1', **query}
        params = '&'.join(f'{name}={value}' for name, value in query.items())
        return f's3://{bucket}/{prefix}?{params}'

    def start(self):
        self.process = subprocess.Popen(
            [
                sys.executable,
                '-m',
                'moto.server',
                '-H',
                '127.0.0.1',
                '-p',
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=30, what=f'moto on {self.port}')
        return self

    def _answers(self):
        try:
            self.client().list_buckets()
        except Exception:
            return False
        return True

    def client(self):
        """A synchronous boto3 client, for tests to look inside."""
        import boto3
        import botocore.config

        return boto3.client(
            's3',
            endpoint_url=self.endpoint,
            region_name='us-east-1',
            aws_access_key_id='asgilook-test-key',
            aws_secret_access_key='asgilook-test-secret',
            config=botocore.config.Config(
                connect_timeout=2, read_timeout=5, retries={'total_max_attempts': 1}
            ),
        )

    def create_bucket(self, bucket):
        self.client().create_bucket(Bucket=bucket)

    def keys(self, bucket):
        """Every key in a bucket, sorted."""
        pages = self.client().get_paginator('list_objects_v2').paginate(Bucket=bucket)
        return sorted(
            item['Key'] for page in pages for item in page.get('Contents', [])
        )
