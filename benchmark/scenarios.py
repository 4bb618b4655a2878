"""The workloads: what is timed against asgilook, and against its ceiling.

Each scenario takes a :class:`~benchmark.bench.Bench` and returns the table's
rows (:class:`~benchmark.report.Row`) and lines to print below it (str).
``SCENARIOS`` names them, in the order a full run takes them.
"""

import collections
import itertools
import json
import re
import time

from . import ceilings
from . import load
from .bench import peak_rss
from .bench import Sample
from .report import Row

_SIZE = re.compile(r'/(\d+)x(\d+)\.(\w+)$')
_THREADS = f'{ceilings.THREADS} threads'
_CONCURRENT_UPLOADS = 64
_WORKERS_UPLOADS = 20
_SETTLE_SECONDS = 3.0


def srcset_urls(doc: dict, ext: str) -> list[str]:
    return [candidate.split()[0] for candidate in doc['srcset'][ext].split(', ')]


def size_of(url: str) -> tuple[int, int]:
    width, height, _ = _SIZE.search(url).groups()
    return int(width), int(height)


def post(bench, photos, label, target=None):
    body = bench.file(f'upload-{label}.jpeg', photos[0])

    def pillow(warm):
        seconds = bench.settings.warmup if warm else bench.settings.seconds
        return Sample.of_pool(ceilings.repeat(ceilings.c3, (photos[0],), seconds))

    result = bench.trials(
        asgilook=lambda warm: bench.hammer(bench.service, '/images', warm, body),
        ceiling=pillow,
    )
    return [
        Row.compared(
            f'POST {label} JPEG',
            result['asgilook'],
            f'C3 {label}, {_THREADS}',
            result['ceiling'],
            target,
        )
    ]


def cold(bench, photos, label, ext, count, target):
    """Every thumbnail of ``count`` fresh images in ``ext``, each fetched once."""
    fmt = {'jpeg': 'JPEG', 'webp': 'WEBP', 'avif': 'AVIF'}[ext]

    def urls(doc):
        return doc['thumbnails'] if ext == 'jpeg' else srcset_urls(doc, ext)

    sizes = [size_of(url) for url in urls(bench.upload(bench.service, photos[:1])[0])]

    def sources(warm):
        return list(itertools.islice(itertools.cycle(photos), 1 if warm else count))

    def service(warm):
        docs = bench.upload(bench.service, sources(warm))
        jobs = [load.get(url) for doc in docs for url in urls(doc)]
        return bench.once(bench.service, jobs)

    def pillow(warm):
        jobs = [(photo, size, fmt) for photo in sources(warm) for size in sizes]
        return Sample.of_pool(ceilings.each(ceilings.c2, jobs))

    result = bench.trials(asgilook=service, ceiling=pillow)
    return [
        Row.compared(
            f'cold {ext} thumbs, {label} sources ({count} images)',
            result['asgilook'],
            f'C2 {fmt}, {_THREADS}',
            result['ceiling'],
            target,
        )
    ]


def hammered(bench, name, path, body_name, target):
    """One URL over and over, against the bare apps serving the same bytes."""
    status, headers, data = bench.fetch(bench.service, path)
    status, headers, data = bench.fetch(bench.service, path)
    if status != 200:
        raise RuntimeError(f'GET {path} answered {status}')
    bench.file(body_name, data)
    result = bench.trials(
        asgilook=lambda warm: bench.hammer(bench.service, path, warm),
        falcon=lambda warm: bench.hammer(bench.bare_falcon, f'/{body_name}', warm),
        asgi=lambda warm: bench.hammer(bench.bare_asgi, f'/{body_name}', warm),
    )
    cache = headers.get('x-asgilook-cache', 'no cache')
    return [
        Row.compared(
            f'{name} ({len(data) / 1024:.0f} KiB, {cache})',
            result['asgilook'],
            'bare Falcon, same bytes',
            result['falcon'],
            target,
        ),
        Row.compared(
            f'  ref: bare Falcon ({len(data) / 1024:.0f} KiB)',
            result['falcon'],
            'bare ASGI, same bytes',
            result['asgi'],
        ),
    ]


def cached_thumbnail(bench):
    path = bench.stock(1)[0]['thumbnails'][1]
    return hammered(bench, 'one cached thumbnail', path, 'thumbnail.jpeg', 0.85)


def listing(bench):
    bench.stock(200)
    return hammered(
        bench, 'GET /images?limit=200', '/images?limit=200', 'listing.json', 0.8
    )


def original(bench):
    path = bench.stock(1)[0]['image']
    return hammered(bench, 'one original hammered', path, 'original.jpeg', 0.8)


def originals_once(bench):
    count = 100
    ours, theirs = bench.stock(count), bench.stock(count, bench.tutorial)

    def each(server, docs, db):
        def measure(warm):
            # NOTE: The tutorial caches its originals as empty bodies: its
            #   cache is emptied so that every fetch is a first one.
            bench.flush(db)
            return bench.once(server, [load.get(d['image']) for d in docs])

        return measure

    result = bench.trials(
        asgilook=each(bench.service, ours, bench.SERVICE_DB),
        tutorial=each(bench.tutorial, theirs, bench.TUTORIAL_DB),
    )
    return [
        Row.compared(
            f'each of {count} originals once',
            result['asgilook'],
            f'tutorial, {count} of its own',
            result['tutorial'],
            4.0,
        )
    ]


def _life(photo, fetched):
    async def lifecycle(connection):
        status, body = await connection.request('POST', '/images', photo)
        if status != 201:
            return False
        statuses = [
            (await connection.request('GET', url))[0]
            for url in fetched(json.loads(body))
        ]
        return all(200 <= status < 300 for status in statuses)

    return lifecycle


def lifecycle(bench):
    def ours(doc):
        return [
            url for ext in ('jpeg', 'webp', 'avif') for url in srcset_urls(doc, ext)
        ]

    def theirs(doc):
        return [doc['image'], *doc['thumbnails']]

    def measure(server, fetched):
        def run(warm):
            count = 2 if warm else load.CONNECTIONS
            photos = itertools.islice(itertools.cycle(bench.two_mp), count)
            return bench.once(server, [_life(photo, fetched) for photo in photos])

        return run

    result = bench.trials(
        asgilook=measure(bench.service, ours),
        tutorial=measure(bench.tutorial, theirs),
    )
    return [
        Row.compared(
            'new-image lifecycle, 2 MP',
            result['asgilook'],
            'tutorial: POST, image, thumbs',
            result['tutorial'],
            2.0,
        )
    ]


def rss(bench):
    server = bench.asgilook('rss', 3)
    try:
        time.sleep(1)
        idle = server.rss()
        photos = itertools.islice(itertools.cycle(bench.twelve_mp), _CONCURRENT_UPLOADS)
        jobs = [_life(photo, lambda doc: []) for photo in photos]
        sample, peak = peak_rss(
            server, lambda: bench.once(server, jobs, _CONCURRENT_UPLOADS)
        )
        time.sleep(_SETTLE_SECONDS)
        after = server.rss()
    finally:
        bench.processes.stop(server)
    name = f'{_CONCURRENT_UPLOADS} concurrent 12 MP uploads'
    return [
        Row(
            f'RSS peak, {name}',
            peak / 2**20,
            'MB',
            failures=sample.failures,
            target=400,
            at_most=True,
        ),
        Row(
            f'RSS {_SETTLE_SECONDS:g} s after them',
            after / 2**20,
            'MB',
            target=150,
            at_most=True,
        ),
        f'RSS idle before the {name}: {idle / 2**20:.0f} MB; they were answered '
        f'{_statuses(sample.statuses)}',
    ]


def thumbnail_bytes(bench):
    doc = bench.upload(bench.service, bench.two_mp[:1])[0]
    sizes = collections.defaultdict(dict)
    for ext in ('jpeg', 'webp', 'avif'):
        for url in srcset_urls(doc, ext):
            status, _, data = bench.fetch(bench.service, url)
            size = tuple(doc['size']) if url == doc['image'] else size_of(url)
            sizes[size][ext] = len(data) if status == 200 else f'[{status}]'
    lines = [
        'thumbnail bytes per format (a 2 MP source; jpeg at full size: the original)'
    ]
    lines.append(f'  {"size":>11}  {"jpeg":>9}  {"webp":>9}  {"avif":>9}')
    for (width, height), by_ext in sorted(sizes.items(), reverse=True):
        cells = [f'{by_ext.get(ext, "-"):>9}' for ext in ('jpeg', 'webp', 'avif')]
        lines.append(f'  {f"{width}x{height}":>11}  ' + '  '.join(cells))
    return lines


def workers(bench):
    """Upload, then GET the image at once, under ``uvicorn --workers 2``.

    Each request goes on a new connection, as from a browser and a CDN.
    """
    server = bench.asgilook('workers-2', 2, '--workers', '2')
    posts, gets = collections.Counter(), collections.Counter()
    try:
        time.sleep(2)
        for photo in itertools.islice(itertools.cycle(bench.two_mp), _WORKERS_UPLOADS):
            status, _, body = bench.fetch(server, '/images', 'POST', photo)
            posts[status] += 1
            if status == 201:
                gets[bench.fetch(server, json.loads(body)['image'])[0]] += 1
    finally:
        bench.processes.stop(server)
    failures = collections.Counter(
        {status: n for status, n in (posts + gets).items() if not 200 <= status < 300}
    )
    return [
        Row(
            f'--workers 2: {_WORKERS_UPLOADS} uploads, GET each at once',
            gets[404],
            '404s',
            failures=failures,
            target=0,
            at_most=True,
        ),
        f'uvicorn --workers 2 at default settings: POST {_statuses(posts)}; '
        f'GET at once {_statuses(gets)}',
    ]


def _statuses(statuses):
    return ', '.join(f'{status}×{n}' for status, n in sorted(statuses.items()))


def _scaled(bench, count):
    return max(1, round(count * bench.settings.scale))


SCENARIOS = {
    'post-2mp': lambda b: post(b, b.two_mp, '2 MP', 0.85),
    'post-12mp': lambda b: post(b, b.twelve_mp, '12 MP'),
    'cold-jpeg-2mp': lambda b: cold(b, b.two_mp, '2 MP', 'jpeg', _scaled(b, 48), 3.0),
    'cold-jpeg-12mp': lambda b: cold(
        b, b.twelve_mp, '12 MP', 'jpeg', _scaled(b, 8), 2.5
    ),
    'cold-webp-2mp': lambda b: cold(b, b.two_mp, '2 MP', 'webp', _scaled(b, 16), 1.5),
    'cold-avif-2mp': lambda b: cold(b, b.two_mp, '2 MP', 'avif', _scaled(b, 6), 0.75),
    'cached-thumbnail': cached_thumbnail,
    'listing': listing,
    'original': original,
    'originals-once': originals_once,
    'lifecycle': lifecycle,
    'thumbnail-bytes': thumbnail_bytes,
    'rss': rss,
    'workers-2': workers,
}
