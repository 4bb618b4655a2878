"""Ceilings for image work: plain Pillow on one thread per core, no HTTP.

C2 is the tutorial's thumbnail (``Image.open`` + ``thumbnail`` + ``save``),
C3 the tutorial's upload conversion (decode + ``convert('RGB')`` + ``save``
as JPEG), both at Pillow's default settings. They measure what this machine
can do at best for the same work in the same minute as the service did it.
"""

import concurrent.futures
import dataclasses
import io
import os
import time

import PIL.Image

THREADS = os.cpu_count() or 1


@dataclasses.dataclass
class Pool:
    """How many jobs a pool of threads got through, in how long, for what CPU."""

    jobs: int
    seconds: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    @property
    def cpu_per_job(self) -> float:
        return self.cpu / self.jobs


def c2(source: bytes, size: tuple[int, int], fmt: str = 'JPEG') -> int:
    """Open, thumbnail and save, as the tutorial's Store._resize; bytes out."""
    image = PIL.Image.open(io.BytesIO(source))
    image.thumbnail(size)
    output = io.BytesIO()
    image.save(output, fmt)
    return len(output.getvalue())


def c3(source: bytes) -> int:
    """Decode, convert and save, as the tutorial's Store._convert; bytes out."""
    image = PIL.Image.open(io.BytesIO(source))
    output = io.BytesIO()
    image.convert('RGB').save(output, 'JPEG')
    return len(output.getvalue())


def each(function, jobs: list[tuple]) -> Pool:
    """Run ``function(*job)`` once per job on THREADS threads."""
    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        started, cpu = time.perf_counter(), time.process_time()
        for _ in pool.map(lambda job: function(*job), jobs):
            pass
        return Pool(len(jobs), time.perf_counter() - started, time.process_time() - cpu)


def repeat(function, args: tuple, seconds: float) -> Pool:
    """Run ``function(*args)`` over and over on THREADS threads for ``seconds``."""
    deadline = time.perf_counter() + seconds

    def loop():
        done = 0
        while time.perf_counter() < deadline:
            function(*args)
            done += 1
        return done

    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        started, cpu = time.perf_counter(), time.process_time()
        done = sum(pool.map(lambda _: loop(), range(THREADS)))
        return Pool(done, time.perf_counter() - started, time.process_time() - cpu)
