"""How long a page of the listing takes with 10 000 images, per backend.

Fills each backend with records (no files needed: the listing reads the
index only), then times ``GET /images?limit=100`` through the app, for the
first page and for a page deep in the collection. The baseline, measured in
the same run, is the same request against a collection of 100 images.

    python -m benchmark.listing [--images 10000] [--postgresql URL]
"""

import argparse
import asyncio
import datetime
import statistics
import tempfile
import time

import falcon.testing

from asgilook import backends
from asgilook.app import create_app
from asgilook.config import Config
from asgilook.records import Record


def _records(count):
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    for number in range(count):
        yield Record(
            image_id=f'{number:08x}-0000-4000-8000-000000000000',
            width=1024,
            height=768,
            modified=start + datetime.timedelta(seconds=number),
            frames=1,
            digest=f'{number:032x}',
            color='#808080',
            placeholder='data:image/jpeg;base64,AAAA',
        )


async def _measure(url, count, rounds):
    config = Config(environ={'ASGI_LOOK_STORAGE_PATH': tempfile.mkdtemp()})
    config.database_url = url
    config.redis_host = 'redis://127.0.0.1:1'
    # NOTE: The app's own backend, so that the records go where it reads.
    backend = backends.from_url(url)
    config.backend_from_url = lambda url: backend
    app = create_app(config)
    async with falcon.testing.ASGIConductor(app) as conductor:
        for record in _records(count):
            await backend.add(record)
        first = await conductor.simulate_get('/images?limit=100')
        deep = first.headers['Link'][1:].split('>')[0] if count > 100 else None
        timings = {}
        for name, path in (('first page', '/images?limit=100'), ('deep page', deep)):
            if path is None:
                continue
            samples = []
            for _ in range(rounds):
                started = time.perf_counter()
                resp = await conductor.simulate_get(path)
                samples.append(time.perf_counter() - started)
                assert resp.status_code == 200
            timings[name] = statistics.median(samples) * 1000
    return timings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=10_000)
    parser.add_argument('--rounds', type=int, default=50)
    parser.add_argument('--postgresql', help='a PostgreSQL URL to measure too')
    args = parser.parse_args()

    urls = {'memory': None, 'sqlite': f'sqlite:///{tempfile.mkdtemp()}/bench.db'}
    if args.postgresql:
        urls['postgresql'] = args.postgresql
    print(f'GET /images?limit=100, median of {args.rounds}, in ms')
    for name, url in urls.items():
        if url and url.startswith('sqlite'):
            small_url = f'sqlite:///{tempfile.mkdtemp()}/small.db'
        else:
            small_url = url
        baseline = asyncio.run(_measure(small_url, 100, args.rounds))['first page']
        if url and url.startswith('postgresql'):
            asyncio.run(_reset(url))
        big = asyncio.run(_measure(url, args.images, args.rounds))
        print(
            f'{name:11} 100 images: {baseline:6.2f}   {args.images} images: '
            + ', '.join(
                f'{page} {ms:6.2f} ({ms / baseline:.2f}x)' for page, ms in big.items()
            )
        )


async def _reset(url):
    import asyncpg

    connection = await asyncpg.connect(url)
    await connection.execute(
        'DROP TABLE IF EXISTS idempotency, images, state, schema_version'
    )
    await connection.close()


if __name__ == '__main__':
    main()
