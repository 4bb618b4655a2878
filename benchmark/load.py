"""Load generators: wrk for hammering, an asyncio client for each-item-once.

wrk (from Debian) keeps 16 connections busy for a bounded time at a cost
small enough not to starve the server; a Lua script counts its responses by
status. The asyncio client keeps 16 keep-alive HTTP/1.1 connections and
hands each one job after another until the list is done, for workloads where
every item is asked for exactly once (cold thumbnails, lifecycles).
"""

import asyncio
import collections
import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import time

CONNECTIONS = 16
# NOTE: What a request that never got an answer is counted as.
NO_ANSWER = 0

_WRK_SCRIPT = r"""
local body_path = os.getenv('ASGILOOK_BENCH_BODY')
if body_path then
  local file = assert(io.open(body_path, 'rb'))
  wrk.method = 'POST'
  wrk.body = file:read('*a')
  wrk.headers['Content-Type'] = 'image/jpeg'
  file:close()
end

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get('statuses')) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'ASGILOOK_BENCH {"seconds": %f, "statuses": {%s}, "socket_errors": %d}\n',
    summary.duration / 1e6, table.concat(parts, ', '),
    e.connect + e.read + e.write + e.timeout))
end
"""


@dataclasses.dataclass
class Tally:
    """Responses by status, and how long it took to get them."""

    statuses: collections.Counter = dataclasses.field(
        default_factory=collections.Counter
    )
    seconds: float = 0.0
    # NOTE: Units of work that succeeded, where a unit is more than one
    #   request (a lifecycle); otherwise the 2xx responses.
    units: int | None = None

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def done(self) -> int:
        return self.ok if self.units is None else self.units

    @property
    def failures(self) -> collections.Counter:
        return collections.Counter(
            {s: n for s, n in self.statuses.items() if not 200 <= s < 300}
        )


def wrk(port: int, path: str, seconds: float, body_path=None) -> Tally:
    """GET ``path`` (or POST the file at ``body_path``) for ``seconds``."""
    binary = shutil.which('wrk')
    if binary is None:
        raise SystemExit('wrk is not installed (apt-get install wrk)')
    with tempfile.NamedTemporaryFile('w', suffix='.lua') as script:
        script.write(_WRK_SCRIPT)
        script.flush()
        env = dict(os.environ)
        env.pop('ASGILOOK_BENCH_BODY', None)
        if body_path:
            env['ASGILOOK_BENCH_BODY'] = str(body_path)
        command = [
            binary, '--threads', '2', '--connections', str(CONNECTIONS),
            '--duration', f'{max(1, round(seconds))}s', '--timeout', '60s',
            '--script', script.name, f'http://127.0.0.1:{port}{path}',
        ]  # fmt: skip
        output = subprocess.run(
            command, env=env, capture_output=True, text=True, check=True
        ).stdout
    line = next(ln for ln in output.splitlines() if ln.startswith('ASGILOOK_BENCH'))
    report = json.loads(line.partition(' ')[2])
    statuses = collections.Counter({int(s): n for s, n in report['statuses'].items()})
    if report['socket_errors']:
        statuses[NO_ANSWER] += report['socket_errors']
    return Tally(statuses, report['seconds'])


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1, reopened when lost."""

    def __init__(self, port: int, tally: Tally) -> None:
        self.port = port
        self.tally = tally
        self._reader = self._writer = None

    async def request(self, method: str, path: str, body: bytes = b''):
        """Status and body of one exchange; the status is also tallied."""
        try:
            status, body = await self._exchange(method, path, body)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            await self.close()
            status, body = NO_ANSWER, b''
        self.tally.statuses[status] += 1
        return status, body

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None

    async def _exchange(self, method, path, body):
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                '127.0.0.1', self.port
            )
        head = (
            f'{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n'
            f'Content-Length: {len(body)}\r\n\r\n'
        )
        self._writer.write(head.encode())
        self._writer.write(body)
        await self._writer.drain()
        status = int((await self._reader.readline()).split()[1])
        headers = await self._headers()
        keep_alive = headers.get('connection', '').lower() != 'close'
        if 'content-length' in headers:
            data = await self._reader.readexactly(int(headers['content-length']))
        elif headers.get('transfer-encoding', '').lower() == 'chunked':
            data = await self._chunks()
        else:
            data, keep_alive = await self._reader.read(), False
        if not keep_alive:
            await self.close()
        return status, data

    async def _headers(self):
        headers = {}
        while (line := await self._reader.readline()) not in (b'\r\n', b''):
            name, _, value = line.decode('latin-1').partition(':')
            headers[name.strip().lower()] = value.strip()
        return headers

    async def _chunks(self):
        parts = []
        while size := int((await self._reader.readline()).split(b';')[0], 16):
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
        await self._reader.readline()
        return b''.join(parts)


async def each_once(port: int, jobs, connections: int = CONNECTIONS) -> Tally:
    """Run ``job(connection)`` for every job, on ``connections`` connections.

    A job makes its requests through the connection it is given (they are
    tallied there) and returns True when it counts as one unit of work done,
    or None when its 2xx responses are what counts.
    """
    tally = Tally()
    queue = iter(jobs)
    units = []

    async def worker():
        connection = Connection(port, tally)
        try:
            for job in queue:
                units.append(await job(connection))
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    tally.seconds = time.perf_counter() - started
    if any(unit is not None for unit in units):
        tally.units = sum(bool(unit) for unit in units)
    return tally


def get(path: str):
    """A job that GETs ``path`` once."""

    async def job(connection):
        await connection.request('GET', path)

    return job
