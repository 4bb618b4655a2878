"""``asgilook serve``: ``uvicorn asgilook.asgi:app``, with uvicorn's options."""

import argparse
import asyncio
from collections.abc import Iterator
from collections.abc import MutableMapping
import contextlib
import os
import shutil
import sys
import tempfile
from typing import Any

import click
import uvicorn

APP = 'asgilook.asgi:app'
LOG_LEVELS = ('critical', 'error', 'warning', 'info', 'debug', 'trace')
# NOTE: Where prometheus_client's multiprocess mode keeps each worker's
#   metrics; it must be set, and the same, in every worker.
METRICS_DIR = 'PROMETHEUS_MULTIPROC_DIR'
# NOTE: As asgilook.asgi exits when a worker cannot start.
STARTUP_FAILURE = 3
# NOTE: Seconds a stop waits for open requests (event streams) to end.
GRACEFUL_SHUTDOWN = 5


def serve(options: argparse.Namespace, extra: list[str]) -> int:
    """Run uvicorn until it stops; ``extra`` options are handed to it as is.

    The settings are read first: if one is wrong, it is named, and uvicorn is
    not started.
    """
    # NOTE: Checked here, because uvicorn's supervisor exits 0 when its
    #   workers fail to start; imported here, to keep upload's start quick.
    from .config import Config
    from .errors import BadSetting

    try:
        _check_storage(Config.for_service())
    except (ValueError, BadSetting) as ex:
        print(f'asgilook: {ex}', file=sys.stderr)
        return STARTUP_FAILURE
    args = [APP, '--host', options.host, '--port', str(options.port)]
    args += ['--workers', str(options.workers)]
    # NOTE: The service logs every request itself (ASGI_LOOK_ACCESS_LOG);
    #   uvicorn's --access-log, given after, brings its own lines back.
    args.append('--no-access-log')
    # NOTE: An open event stream never ends by itself: without a bound, a
    #   gallery left open would hold up every stop and restart.
    if not any(arg.startswith('--timeout-graceful-shutdown') for arg in extra):
        args += ['--timeout-graceful-shutdown', str(GRACEFUL_SHUTDOWN)]
    if options.reload:
        args.append('--reload')
    if options.log_level:
        args += ['--log-level', options.log_level]
    with metrics_dir(options.workers):
        return _run_uvicorn([*args, *extra])


def _check_storage(config: Any) -> None:
    """Raise BadSetting when the storage's bucket is not there (the workers
    would each stop for it, and the supervisor exit 0)."""
    if config.blobs_url is None:
        return
    blobs = config.blobs_from_url(config.blobs_url, config, None)

    async def check() -> None:
        try:
            await blobs.start()
        finally:
            await blobs.stop()

    asyncio.run(check())


def _run_uvicorn(args):
    try:
        # NOTE: uvicorn's main returns None once the server has stopped.
        return (
            uvicorn.main.main(
                args=args, prog_name='asgilook serve', standalone_mode=False
            )
            or 0
        )
    except click.ClickException as ex:
        # NOTE: An option uvicorn does not know: a usage error, as ours.
        ex.show()
        return ex.exit_code


@contextlib.contextmanager
def metrics_dir(
    workers: int, environ: MutableMapping[str, str] = os.environ
) -> Iterator[str | None]:
    """With several workers and no ``PROMETHEUS_MULTIPROC_DIR``, set it
    to a fresh temporary directory for the block, and remove that after."""
    if workers < 2 or METRICS_DIR in environ:
        yield environ.get(METRICS_DIR)
        return
    path = tempfile.mkdtemp(prefix='asgilook-metrics-')
    environ[METRICS_DIR] = path
    try:
        yield path
    finally:
        del environ[METRICS_DIR]
        shutil.rmtree(path, ignore_errors=True)
