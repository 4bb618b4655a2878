"""The runner: servers, inputs, and trials that alternate figure and ceiling.

A :class:`Bench` starts redis-server, asgilook, the tutorial's code and the
two bare apps once, and measures through them. :meth:`Bench.trials` warms
every side up, then runs the trials in alternating order (figure, ceiling,
ceiling, figure, ...) so that both see the same moments of a busy machine,
and returns the median of each side.
"""

import asyncio
import collections
import dataclasses
import functools
import http.client
import itertools
import json
import statistics
import threading

import redis

from . import ceilings
from . import inputs
from . import load
from . import processes

_RETRY_SECONDS = 0.2
_MAX_RETRIES = 300


@dataclasses.dataclass(frozen=True)
class Settings:
    trials: int = 5
    seconds: float = 5.0
    warmup: float = 2.0
    # NOTE: Scales how many fresh images the cold workloads take per trial.
    scale: float = 1.0


@dataclasses.dataclass
class Sample:
    """A rate (units per second), CPU seconds per unit, and what failed."""

    rate: float
    cpu: float | None
    failures: collections.Counter
    # NOTE: Every response by status, 2xx included.
    statuses: collections.Counter = dataclasses.field(
        default_factory=collections.Counter
    )

    @classmethod
    def of(cls, tally: load.Tally, cpu: float) -> 'Sample':
        done = tally.done
        return cls(
            done / tally.seconds,
            cpu / done if done else None,
            tally.failures,
            tally.statuses,
        )

    @classmethod
    def of_pool(cls, pool: ceilings.Pool) -> 'Sample':
        return cls(pool.rate, pool.cpu_per_job, collections.Counter())


def median(samples: list[Sample]) -> Sample:
    """Median rate and CPU of the trials; every trial's failures count."""
    cpus = [sample.cpu for sample in samples if sample.cpu is not None]
    return Sample(
        statistics.median(sample.rate for sample in samples),
        statistics.median(cpus) if cpus else None,
        sum((sample.failures for sample in samples), collections.Counter()),
    )


class Bench:
    """What every scenario measures with, and through."""

    SERVICE_DB, TUTORIAL_DB = 0, 1

    def __init__(self, settings: Settings, started: processes.Processes) -> None:
        self.settings = settings
        self.processes = started
        self.directory = started.directory
        self.bodies = self.directory / 'bodies'
        self.bodies.mkdir()
        self.redis = started.redis()
        self.service = self.asgilook('asgilook', self.SERVICE_DB)
        self.tutorial = started.uvicorn(
            'tutorial',
            'benchmark.tutorial.asgi:app',
            ASGI_LOOK_REDIS_URL=self.redis_url(self.TUTORIAL_DB),
        )
        bodies = {'ASGILOOK_BENCH_BODIES': str(self.bodies)}
        self.bare_asgi = started.uvicorn(
            'bare-asgi', 'benchmark.bare:asgi_app', **bodies
        )
        self.bare_falcon = started.uvicorn(
            'bare-falcon', 'benchmark.bare:falcon_app', **bodies
        )
        self._stock = collections.defaultdict(list)

    def redis_url(self, db: int) -> str:
        return f'redis://127.0.0.1:{self.redis.port}/{db}'

    def asgilook(self, name: str, db: int, *args: str) -> processes.Server:
        """``uvicorn asgilook.asgi:app`` at its defaults, on its own Redis db."""
        return self.processes.uvicorn(
            name, 'asgilook.asgi:app', *args, ASGI_LOOK_REDIS_URL=self.redis_url(db)
        )

    def flush(self, db: int) -> None:
        with redis.Redis.from_url(self.redis_url(db)) as client:
            client.flushdb()

    @functools.cached_property
    def two_mp(self) -> list[bytes]:
        return [inputs.photo(inputs.TWO_MP, seed) for seed in range(8)]

    @functools.cached_property
    def twelve_mp(self) -> list[bytes]:
        return [inputs.photo(inputs.TWELVE_MP, seed) for seed in range(100, 103)]

    def file(self, name: str, data: bytes):
        """Put ``data`` where wrk and the bare apps read it (as NAME)."""
        path = self.bodies / name
        path.write_bytes(data)
        return path

    def trials(self, **measures) -> dict[str, Sample]:
        """Warm up, then the trials in alternating order; medians by name.

        Each measure is called as ``measure(warm)``: with ``warm`` True it
        should do a short version whose result is thrown away.
        """
        for measure in measures.values():
            measure(True)
        samples = collections.defaultdict(list)
        names = list(measures)
        for trial in range(self.settings.trials):
            for name in names[::-1] if trial % 2 else names:
                samples[name].append(measures[name](False))
        return {name: median(samples[name]) for name in names}

    def hammer(self, server, path: str, warm: bool, body=None) -> Sample:
        """wrk on one URL (POSTing ``body``, a file, if given) for a while."""
        seconds = self.settings.warmup if warm else self.settings.seconds
        cpu = server.cpu()
        tally = load.wrk(server.port, path, seconds, body)
        return Sample.of(tally, server.cpu() - cpu)

    def once(self, server, jobs, connections: int = load.CONNECTIONS) -> Sample:
        """Every job once on ``connections`` connections; see load.each_once."""
        cpu = server.cpu()
        tally = asyncio.run(load.each_once(server.port, jobs, connections))
        return Sample.of(tally, server.cpu() - cpu)

    def upload(self, server, photos: list[bytes]) -> list[dict]:
        """Upload each photo (untimed), retrying while the server says 503."""
        return asyncio.run(_upload_all(server.port, photos))

    def stock(self, count: int, server=None) -> list[dict]:
        """At least ``count`` 2 MP images uploaded to ``server`` (asgilook)."""
        server = server or self.service
        stock = self._stock[server.name]
        if len(stock) < count:
            photos = itertools.islice(itertools.cycle(self.two_mp), count - len(stock))
            stock.extend(self.upload(server, list(photos)))
        return stock[:count]

    def fetch(self, server, path: str, method: str = 'GET', body=None):
        """One request on a fresh connection: status, headers (lower-case), body."""
        connection = http.client.HTTPConnection('127.0.0.1', server.port, timeout=60)
        try:
            connection.request(method, path, body=body)
            response = connection.getresponse()
            headers = {name.lower(): value for name, value in response.getheaders()}
            return response.status, headers, response.read()
        finally:
            connection.close()


def peak_rss(server, during):
    """Run ``during()`` while sampling the server's RSS; its result, and the peak."""
    peak = server.rss()
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, server.rss())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = during()
    finally:
        done.set()
        sampler.join()
    return result, peak


async def _upload_all(port, photos, connections=4):
    docs = [None] * len(photos)

    def job(index, photo):
        async def upload(connection):
            for _ in range(_MAX_RETRIES):
                status, body = await connection.request('POST', '/images', photo)
                if status == 201:
                    docs[index] = json.loads(body)
                    return
                if status != 503:
                    raise RuntimeError(f'an upload got {status}: {body[:200]!r}')
                await asyncio.sleep(_RETRY_SECONDS)
            raise RuntimeError('uploads kept getting 503')

        return upload

    await load.each_once(
        port, list(itertools.starmap(job, enumerate(photos))), connections
    )
    return docs
