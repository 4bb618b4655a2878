"""The Falcon ASGI tutorial's final code, kept runnable as a baseline.

It is the tutorial's ``asgilook`` package as its newest version reads
(``redis_from_url``, a ``ping()`` on startup), changed only where it would
not run today; every change is marked with a NOTE. It is not to be improved:
the benchmark measures asgilook against it.

    ASGI_LOOK_REDIS_URL=redis://127.0.0.1:6379/1 uvicorn benchmark.tutorial.asgi:app
"""
