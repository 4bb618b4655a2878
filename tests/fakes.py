"""Hand-written fakes for collaborators the app gets through Config, and for
the service the asgilook command talks to."""

import asyncio
import functools
import http.client
import http.server
import threading
import time
import uuid

import fakeredis
import httpx
import redis.exceptions

from asgilook import errors
from asgilook import imaging
from asgilook.workers import ImageWorkers


class FlakyRedis:
    """An async Redis client that can be switched off, or made to hang.

    It forwards to fakeredis while up, and counts the commands it was sent.
    """

    def __init__(self, server=None):
        self.redis = fakeredis.FakeAsyncRedis(server=server or fakeredis.FakeServer())
        self.down = False
        self.hang = False
        self.commands = []

    async def _run(self, name, *args, **kwargs):
        self.commands.append(name)
        if self.hang:
            await asyncio.sleep(3600)
        if self.down:
            raise redis.exceptions.ConnectionError('Connection refused (fake)')
        return await getattr(self.redis, name)(*args, **kwargs)

    async def ping(self):
        return await self._run('ping')

    async def get(self, key):
        return await self._run('get', key)

    async def set(self, key, value, **options):
        return await self._run('set', key, value, **options)

    async def delete(self, *keys):
        return await self._run('delete', *keys)

    async def exists(self, *keys):
        return await self._run('exists', *keys)

    async def pexpire(self, key, milliseconds):
        return await self._run('pexpire', key, milliseconds)

    async def publish(self, channel, message):
        return await self._run('publish', channel, message)

    async def aclose(self):
        self.commands.append('aclose')
        if self.down:
            raise redis.exceptions.ConnectionError('Connection refused (fake)')


class FlakyPubSubRedis(FlakyRedis):
    """FlakyRedis with SUBSCRIBE (for the event relay), which fails while it
    is down and hangs while it hangs; ``unheard`` makes a PUBLISH reach
    nobody, and ``silent`` makes a subscription hear nothing and fail at
    nothing, as a connection that a NAT forgot."""

    unheard = False
    silent = False

    async def publish(self, channel, message):
        if self.unheard:
            return 0
        return await super().publish(channel, message)

    def pubsub(self):
        return _FlakyPubSub(self)


class _FlakyPubSub:
    def __init__(self, flaky):
        self._flaky = flaky
        self._real = flaky.redis.pubsub()

    async def subscribe(self, channel):
        await self._flaky._run('ping')
        await self._real.subscribe(channel)

    async def get_message(self, **options):
        if self._flaky.down:
            raise redis.exceptions.ConnectionError('Connection reset (fake)')
        if self._flaky.silent:
            await asyncio.sleep(options['timeout'])
            return None
        return await self._real.get_message(**options)

    async def ping(self):
        self._flaky.commands.append('subscriber ping')
        if not self._flaky.silent:
            await self._real.ping()

    async def aclose(self):
        await self._real.aclose()
        if self._flaky.down:
            raise redis.exceptions.ConnectionError('Connection refused (fake)')


class _Faulty:
    """Forwards to a real collaborator, except where told to fail.

    ``fail(name, error)`` makes the method ``name`` raise ``error``;
    ``after(name, hook)`` awaits ``hook()`` once the real method has answered,
    as if another process acted right then; ``before(name, hook)`` awaits it
    before the real method starts (a slow disk, a slow server).
    """

    def __init__(self, real):
        self.real = real
        self._failures = {}
        self._hooks = {}
        self._before = {}

    def fail(self, name, error):
        self._failures[name] = error

    def heal(self):
        self._failures.clear()

    def after(self, name, hook):
        self._hooks[name] = hook

    def before(self, name, hook):
        self._before[name] = hook

    def __getattr__(self, name):
        method = getattr(self.real, name)
        if not any(
            name in kind for kind in (self._failures, self._hooks, self._before)
        ):
            return method

        async def faulty(*args, **kwargs):
            if name in self._failures:
                raise self._failures[name]
            if name in self._before:
                await self._before[name]()
            result = await method(*args, **kwargs)
            if name in self._hooks:
                await self._hooks[name]()
            return result

        return faulty


class FailingBackend(_Faulty):
    """A real backend (see asgilook.backends) with faults to switch on."""


class FailingBlobs(_Faulty):
    """A real place for blobs (see asgilook.blobs) with faults to switch on."""


class Renders(list):
    """The sizes of the thumbnails rendered so far, in order.

    Each render takes ``delay`` seconds longer, so that tests can make
    requests meet while one is being rendered.
    """

    delay = 0.0


class TwinWorkers(ImageWorkers):
    """The real worker processes, and a twin of every image job in this one.

    Whatever a worker process answers (bytes, or an error of the image's),
    the same function run here must answer too: nothing may get lost or
    change on the way through pickles and pipes. It also lets coverage see
    the imaging code, which it cannot follow into the workers.
    """

    async def process(self, func, *args):
        try:
            result = await super().process(func, *args)
        except errors.ImageTooSlow:
            raise
        except errors.AsgilookError as ex:
            try:
                await asyncio.to_thread(func, *args)
            except type(ex) as twin:
                assert twin.description == ex.description
            else:
                raise AssertionError(f'{func.__name__} only failed in a worker')
            raise
        assert await asyncio.to_thread(func, *args) == result
        return result


class CountingWorkers(ImageWorkers):
    """Image workers that note (and may slow down) every thumbnail render."""

    def __init__(self, renders, *args):
        super().__init__(*args)
        self._renders = renders

    async def process(self, func, *args):
        if func is imaging.render_thumbnail:
            self._renders.append(args[1])
            func = functools.partial(_slowly, self._renders.delay, func)
        return await super().process(func, *args)


def _slowly(delay, func, *args):
    time.sleep(delay)
    return func(*args)


PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


class FakeImageService:
    """``POST /images`` as the service answers it, for ``httpx.MockTransport``.

    Bodies that start like a PNG are stored, once per ``Idempotency-Key`` (a
    retry gets the first answer again); anything else is a 415 problem. Each
    entry of ``script`` answers one request first, in order: an
    ``httpx.Response`` is sent, an exception raised, and ``'lost'`` stores the
    upload then breaks the connection, as if the answer were lost on its way.
    """

    def __init__(self, *script):
        self.script = list(script)
        self.requests = []
        self.images = {}

    def __call__(self, request):
        self.requests.append(request)
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, httpx.Response):
                return step
            if step == 'lost':
                self._answer(request)
                raise httpx.ReadError('Connection reset by peer')
            raise step
        return self._answer(request)

    def _answer(self, request):
        key = request.headers.get('Idempotency-Key')
        if key in self.images:
            return self._created(self.images[key], replayed=True)
        if not request.content.startswith(PNG_SIGNATURE):
            return httpx.Response(
                415,
                json={
                    'title': 'Unsupported image format',
                    'description': 'The upload is not an image.',
                },
                headers={'Content-Type': 'application/problem+json'},
            )
        image_id = str(uuid.uuid4())
        self.images[key] = {'id': image_id, 'image': f'/images/{image_id}.jpeg'}
        return self._created(self.images[key])

    def _created(self, image, replayed=False):
        headers = {'Location': image['image']}
        if replayed:
            headers['Idempotent-Replayed'] = 'true'
        return httpx.Response(201, json=image, headers=headers)


class FaultyS3Proxy:
    """An HTTP proxy in front of an S3 server, that can be slow or answer for it.

    Each request waits ``delay`` seconds, then is forwarded (its answer sent
    back a piece every ``pace`` seconds); unless
    ``answers`` has one for its method (or for ``'*'``): a status, headers and
    a body (see :func:`s3_error`), sent instead. ``methods`` lists the
    methods of the requests it was sent, ``ranges`` the Range header of each
    GET (None: none).
    """

    def __init__(self, upstream_port):
        self.delay = 0.0
        self.pace = 0.0
        self.answers = {}
        self.methods = []
        self.ranges = []
        self.stopped = False
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def _handle(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length)
                proxy.methods.append(self.command)
                if self.command == 'GET':
                    proxy.ranges.append(self.headers.get('Range'))
                answer = proxy.answers.get(self.command) or proxy.answers.get('*')
                if answer is None:
                    time.sleep(proxy.delay)
                    if proxy.stopped:
                        self.close_connection = True
                        return
                    answer = _forward(upstream_port, self, body)
                status, headers, data = answer
                self.send_response(status)
                # NOTE: A HEAD's Content-Length is that of what a GET would send.
                headers = {'Content-Length': str(len(data)), **headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command == 'HEAD':
                    return
                # NOTE: ``pace`` seconds between pieces of 64 KiB: a storage
                #   that is slow, but sends.
                for start in range(0, len(data), 65536):
                    self.wfile.write(data[start : start + 65536])
                    self.wfile.flush()
                    time.sleep(proxy.pace)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self):
        return f'http://127.0.0.1:{self.server.server_address[1]}'

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        # NOTE: Requests still waiting out a delay are dropped, not forwarded.
        self.stopped = True
        self.server.shutdown()
        self.server.server_close()


_HOP_BY_HOP = {'connection', 'keep-alive', 'transfer-encoding'}


def _forward(port, request, body):
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    try:
        connection.request(request.command, request.path, body, dict(request.headers))
        response = connection.getresponse()
        headers = {
            name: value
            for name, value in response.getheaders()
            if name.lower() not in _HOP_BY_HOP
        }
        return response.status, headers, response.read()
    finally:
        connection.close()


def s3_error(status, code, message='(fake)'):
    """An S3 error answer, for FaultyS3Proxy.answers."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    )
    return status, {'Content-Type': 'application/xml'}, body.encode()
