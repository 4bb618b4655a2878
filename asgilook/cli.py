"""The ``asgilook`` command: ``upload`` files to a service, or ``serve`` one."""

import argparse
import asyncio
from collections.abc import Callable
from collections.abc import Sequence
import json
import os
import sys
import time
from typing import Any
from typing import TextIO

import httpx

from . import imagefiles
from . import progress
from . import serve
from . import upload

DEFAULT_URL = 'http://127.0.0.1:8000'
# NOTE: As a shell reports a command stopped by SIGINT (128 + 2).
INTERRUPTED = 130
TOKEN_VARIABLE = 'ASGILOOK_TOKEN'

_UPLOAD = """\
Upload image files, and the images in folders, to an asgilook service.

A FILE named here is always sent: the server decides what it is (but a pipe,
a device or a socket is a failure, never opened). FOLDERs are
walked recursively (links followed, each folder once); a file in one is sent
when its extension is an image's (jpg, jpeg, png, gif, webp, avif, tif, tiff,
bmp, heic, heif, mpo...) or when its first bytes are an image's, and skipped
otherwise. Skipped files are counted in the totals and listed in the JSON
summary. A file or folder that cannot be read, or a file larger than
--max-bytes, is a failure.

Each file is sent with its own Idempotency-Key, the same on every retry, so a
retry never stores it twice. Retried: 408, 429, 502, 503 and 504 answers (after
Retry-After, when given) and connection errors and timeouts. Any other refusal
is printed with the server's reason.
"""
_UPLOAD_EXIT = """\
exit status: 0 when every file was stored, 1 when any failed, 2 for a usage
error, 130 when interrupted (Ctrl-C: the files answered so far are summarised).
"""
_SERVE = f"""\
Run the service: uvicorn {serve.APP}. Any other uvicorn option
(uvicorn --help lists them: --proxy-headers, --log-config FILE...) is passed to
uvicorn as it is. With more than one worker and no PROMETHEUS_MULTIPROC_DIR in
the environment, it is set to a fresh temporary directory, removed at exit.

exit status: uvicorn's; 3 when a setting in the environment is wrong (checked
before uvicorn starts), 2 for a usage error.
"""


def main(
    argv: Sequence[str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Run the command in ``argv`` (default: the command line); its exit status.

    ``transport`` replaces the HTTP connections, for tests.
    """
    parser = build_parser()
    options, extra = parser.parse_known_args(argv)
    if options.command == 'serve':
        return serve.serve(options, extra)
    if extra:
        parser.error(f'unrecognized arguments: {" ".join(extra)}')
    return run_upload(options, parser, transport)


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``asgilook upload …`` and ``asgilook serve …``."""
    parser = argparse.ArgumentParser(
        prog='asgilook', description='Upload images to an asgilook service, or run one.'
    )
    commands = parser.add_subparsers(dest='command', required=True)
    _add_upload(commands)
    _add_serve(commands)
    return parser


def _add_upload(commands):
    sender = commands.add_parser(
        'upload', help='upload images', description=_UPLOAD, epilog=_UPLOAD_EXIT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sender.add_argument('paths', nargs='+', metavar='PATH', help='a file or folder')
    sender.add_argument(
        '--url', type=_service_url, default=DEFAULT_URL,
        help='the service (default: %(default)s)',
    )  # fmt: skip
    sender.add_argument(
        '--concurrency', type=_at_least(int, 1), default=4, metavar='N',
        help='connections at once (default: %(default)s)',
    )  # fmt: skip
    sender.add_argument(
        '--retries', type=_at_least(int, 0), default=5, metavar='N',
        help='retries per file after a transient failure (default: %(default)s)',
    )  # fmt: skip
    sender.add_argument(
        '--max-wait', type=_at_least(float, 0), default=30.0, metavar='SECONDS',
        help='the longest wait before a retry, whatever Retry-After says '
        '(default: %(default)g)',
    )  # fmt: skip
    sender.add_argument(
        '--timeout', type=_at_least(float, 1), default=60.0, metavar='SECONDS',
        help='for connecting, and for each read or write (default: %(default)g)',
    )  # fmt: skip
    sender.add_argument(
        '--max-bytes', type=_at_least(int, 1), default=upload.DEFAULT_MAX_BYTES,
        metavar='N',
        help='a larger file is a failure, never read (default: %(default)s, 64 MiB; '
        'a service refuses files over its ASGI_LOOK_MAX_UPLOAD_BYTES, 32 MiB by '
        'default, with a 413 anyway)',
    )  # fmt: skip
    # NOTE: No %(default)s here: the token is never printed, not even in help.
    #   argparse applies the type to a default that is a string (the variable).
    sender.add_argument(
        '--token', type=_token, default=os.environ.get(TOKEN_VARIABLE),
        help=f'sent as "Authorization: Bearer TOKEN" (default: ${TOKEN_VARIABLE}, '
        'which keeps it out of the process list); printable ASCII, no spaces',
    )  # fmt: skip
    sender.add_argument(
        '--json', metavar='FILE',
        help='write a JSON summary (every file, its answer and tries; totals) '
        'to FILE, or to standard output for -',
    )  # fmt: skip


def _add_serve(commands):
    # NOTE: No abbreviations, so that a uvicorn option is never taken for one
    #   of these.
    server = commands.add_parser(
        'serve', help='run the service', description=_SERVE,
        formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
    )  # fmt: skip
    server.add_argument('--host', default='127.0.0.1', help='default: %(default)s')
    server.add_argument('--port', type=int, default=8000, help='default: %(default)s')
    server.add_argument(
        '--workers', type=_at_least(int, 1), metavar='N',
        default=os.environ.get('WEB_CONCURRENCY', '1'),
        help='worker processes (default: $WEB_CONCURRENCY, or 1)',
    )  # fmt: skip
    server.add_argument('--reload', action='store_true', help='restart on changes')
    server.add_argument('--log-level', choices=serve.LOG_LEVELS)


def run_upload(
    options: argparse.Namespace,
    parser: argparse.ArgumentParser,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """``asgilook upload``: send, report, summarise; the exit status."""
    output = _open_output(options.json, parser)
    report = progress.report_for(sys.stderr)
    found = imagefiles.Found()
    outcomes = []
    interrupted = False
    started = time.monotonic()

    def done(outcome):
        outcomes.append(outcome)
        report.done(outcome)

    with report:
        try:
            found = imagefiles.find(options.paths)
            _upload_found(options, found, report, done, transport)
        except KeyboardInterrupt:
            # NOTE: Ctrl-C: the files answered so far are summarised, as
            #   always; the others were not, or may have been, stored.
            interrupted = True
    order = [path for path, _ in found.errors] + [file.path for file in found.files]
    rank = {path: index for index, path in enumerate(order)}
    outcomes.sort(key=lambda outcome: rank[outcome.path])
    result = upload.summary(
        options.url, outcomes, found.skipped, time.monotonic() - started, interrupted
    )
    if interrupted:
        print('Interrupted.', file=sys.stderr)
    report.total(result['totals'])
    if output is not None:
        _write(output, result)
    if interrupted:
        return INTERRUPTED
    return 1 if result['totals']['failed'] else 0


def _upload_found(options, found, report, done, transport):
    unread = [upload.unreadable(path, why) for path, why in found.errors]
    report.start(len(unread) + len(found.files), sum(file.size for file in found.files))
    for outcome in unread:
        done(outcome)
    asyncio.run(_send(options, found.files, done, transport))


async def _send(
    options: argparse.Namespace,
    files: list[imagefiles.Candidate],
    done: Callable[[upload.Outcome], None],
    transport: httpx.AsyncBaseTransport | None,
) -> list[upload.Outcome]:
    headers = {}
    if options.token:
        headers['Authorization'] = f'Bearer {options.token}'
    async with httpx.AsyncClient(
        base_url=options.url,
        headers=headers,
        timeout=options.timeout,
        limits=httpx.Limits(max_connections=options.concurrency),
        transport=transport,
    ) as client:
        retries = upload.Retries(options.retries, max_wait=options.max_wait)
        uploader = upload.Uploader(client, retries, options.max_bytes)
        return await upload.upload_all(files, uploader, options.concurrency, done)


def _open_output(name: str | None, parser: argparse.ArgumentParser) -> TextIO | None:
    # NOTE: Opened before anything is sent, so that a mistyped path costs
    #   nothing.
    if name is None:
        return None
    if name == '-':
        return sys.stdout
    try:
        return open(name, 'w', encoding='utf-8')
    except OSError as ex:
        parser.error(f'argument --json: cannot write {name}: {ex.strerror}')


def _write(output: TextIO, result: dict[str, Any]) -> None:
    json.dump(result, output, indent=2)
    output.write('\n')
    if output is not sys.stdout:
        output.close()


def _token(value: str) -> str | None:
    # NOTE: A newline left by a file or a shell is dropped; anything else that
    #   cannot go in a header is refused here, and never echoed: the message
    #   says what is wrong, not what was given.
    token = value.strip()
    if not (token.isascii() and token.isprintable() and ' ' not in token):
        raise argparse.ArgumentTypeError(
            f'the token (--token or ${TOKEN_VARIABLE}, not shown) must be '
            'printable ASCII, without spaces'
        )
    return token or None


def _service_url(value: str) -> str:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ('http', 'https') or not url.host:
        raise argparse.ArgumentTypeError(f'not an http(s) URL: {value!r}')
    return value


def _at_least(kind: type, low: float) -> Callable[[str], Any]:
    def parse(value):
        number = kind(value)
        # NOTE: Written so that NaN is refused too.
        if not number >= low:
            raise argparse.ArgumentTypeError(f'must be at least {low}: {value}')
        return number

    # NOTE: argparse names the type in its message: "invalid int value".
    parse.__name__ = kind.__name__
    return parse
