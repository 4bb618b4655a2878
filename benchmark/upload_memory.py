"""Peak memory of the service while 8 clients send hostile and huge uploads.

Starts ``uvicorn asgilook.asgi:app`` with its default limits, lets 8 threads
POST a mix of decompression bombs, oversized bodies, garbage, truncated
files and the largest images the pixel limit admits, and samples the
server's resident memory meanwhile. Prints the idle baseline, the peak, and
their ratio.

    python -m benchmark.upload_memory [--clients 8] [--rounds 4]
"""

import argparse
import concurrent.futures
import http.client
import io
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

import PIL.Image

from benchmark.processes import rss_bytes
from tests import corpus
from tests.servers import free_port
from tests.servers import wait_for

ROOT = pathlib.Path(__file__).parent.parent


def payloads():
    """What the clients send, with what each should get back."""
    huge = PIL.Image.new('RGB', (7000, 7000), (200, 30, 90))
    output = io.BytesIO()
    huge.save(output, 'PNG')
    truncated = corpus.encode(corpus.noise((2000, 1500)), 'JPEG')
    transparent = PIL.Image.new('RGBA', (7000, 7000), (200, 30, 90, 128))
    rgba_png, rgba_webp = io.BytesIO(), io.BytesIO()
    transparent.save(rgba_png, 'PNG')
    transparent.save(rgba_webp, 'WEBP', lossless=True)
    return [
        ('49 Mpx PNG (admitted)', output.getvalue(), {201, 503}),
        ('49 Mpx RGBA PNG', rgba_png.getvalue(), {201, 503}),
        ('49 Mpx RGBA WebP', rgba_webp.getvalue(), {201, 503}),
        ('10 Gpx PNG bomb', corpus.png_bomb(100_000, 100_000), {422, 503}),
        ('81 Mpx PNG bomb', corpus.png_bomb(9000, 9000), {422, 503}),
        ('4 Gpx GIF bomb', corpus.gif_bomb(), {422, 503}),
        ('33 MiB body', b'\0' * (33 * 2**20), {413, 503}),
        ('30 MiB garbage', os.urandom(30 * 2**20), {415, 503}),
        ('truncated JPEG', truncated[: len(truncated) // 2], {400, 503}),
        ('48 Mpx packed PNG', corpus.raw_png(8000, 6000, 8, 0, b'\0'), {201, 503}),
    ]


def rss_kib(pid):
    # NOTE: The service and its image worker processes: their summed PSS.
    return rss_bytes(pid) // 1024


def post(port, body):
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
    try:
        connection.request('POST', '/images', body=body)
        response = connection.getresponse()
        response.read()
        return response.status
    except (BrokenPipeError, ConnectionResetError):
        # NOTE: The service may answer 413 and close before the body is sent.
        return 413
    finally:
        connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--clients', type=int, default=8)
    parser.add_argument('--rounds', type=int, default=4)
    args = parser.parse_args()

    cases = payloads()
    port = free_port()
    storage = tempfile.mkdtemp(prefix='asgilook-bench-')
    env = dict(
        os.environ,
        ASGI_LOOK_STORAGE_PATH=storage,
        ASGI_LOOK_REDIS_URL=f'redis://127.0.0.1:{free_port()}',
        PYTHONPATH=str(ROOT),
    )
    server = subprocess.Popen(
        [sys.executable, '-m', 'uvicorn', 'asgilook.asgi:app', '--port', str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _answers(port), what='uvicorn')
        baseline = rss_kib(server.pid)
        peak = baseline
        done = threading.Event()

        def sample():
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_kib(server.pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        jobs = [case for _ in range(args.rounds) for case in cases]
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            statuses = list(pool.map(lambda case: (case, post(port, case[1])), jobs))
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
    finally:
        server.terminate()
        server.wait()

    print(f'{len(jobs)} uploads from {args.clients} clients in {seconds:.1f} s')
    for name, _, expected in cases:
        seen = sorted({s for (case_name, _, _), s in statuses if case_name == name})
        flag = '' if set(seen) <= expected else '  UNEXPECTED'
        print(f'  {name:24} {seen}{flag}')
    print(f'idle RSS  {baseline / 1024:7.1f} MiB')
    print(f'peak RSS  {peak / 1024:7.1f} MiB  ({peak / baseline:.1f}x idle)')


def _answers(port):
    try:
        connection = http.client.HTTPConnection('127.0.0.1', port, timeout=1)
        connection.request('GET', '/images')
        return connection.getresponse().status == 200
    except OSError:
        return False


if __name__ == '__main__':
    main()
