"""asgilook under load, each figure as a ratio to a ceiling from the same run.

Starts its own redis-server, ``uvicorn asgilook.asgi:app``, the tutorial's
code (``benchmark.tutorial``) and two bare apps (``benchmark.bare``) on
127.0.0.1; drives them with wrk and an asyncio client, 16 connections each,
against one uvicorn worker; prints a table and stops everything it started.
Any non-2xx answer is a failure of the run (exit status 1); a target missed
is not.

    python -m benchmark.run [--quick] [--only NAME ...] [--trials 3] [--seconds 5]
"""

import argparse
import signal
import sys
import time

from . import report
from .bench import Bench
from .bench import Settings
from .processes import Processes
from .report import Row
from .scenarios import SCENARIOS

QUICK = Settings(trials=1, seconds=2.0, warmup=1.0, scale=0.5)


def _arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--quick', action='store_true', help='one short trial each (a smoke run)'
    )
    parser.add_argument(
        '--only',
        action='append',
        choices=list(SCENARIOS),
        metavar='NAME',
        help=f'run only this workload (repeatable): {", ".join(SCENARIOS)}',
    )
    parser.add_argument('--trials', type=int, help='trials per workload (5)')
    parser.add_argument('--seconds', type=float, help='seconds per wrk trial (5)')
    parser.add_argument('--warmup', type=float, help='seconds of wrk warm-up (2)')
    parser.add_argument(
        '--scale', type=float, help='images per cold trial, relative (1.0)'
    )
    return parser.parse_args()


def _settings(args):
    base = QUICK if args.quick else Settings()
    return Settings(
        trials=args.trials or base.trials,
        seconds=args.seconds or base.seconds,
        warmup=args.warmup or base.warmup,
        scale=args.scale or base.scale,
    )


def _stop(signum, frame):
    # NOTE: SIGTERM ends the run as Ctrl-C does: through every finally.
    raise KeyboardInterrupt


def main():
    args = _arguments()
    settings = _settings(args)
    signal.signal(signal.SIGTERM, _stop)
    for line in report.machine():
        print(line, flush=True)
    print(
        f'16 connections against 1 uvicorn worker (no access log); median of '
        f'{settings.trials} trial(s) of {settings.seconds:g} s after '
        f'{settings.warmup:g} s of warm-up; ceilings alternate with figures\n',
        flush=True,
    )
    started = time.monotonic()
    try:
        rows, notes = _run(settings, args.only or list(SCENARIOS))
    except KeyboardInterrupt:
        sys.exit('interrupted; every server it started is stopped')

    print(f'\nran {time.monotonic() - started:.0f} s; '
          f'load average at the end: {report.load_average()}\n')  # fmt: skip
    print(report.table(rows))
    for note in notes:
        print(note)
    failed = [row for row in rows if row.failures]
    if failed:
        print(f'\nFAILED: non-2xx answers in {len(failed)} workload(s)')
    sys.exit(1 if failed else 0)


def _run(settings, names):
    """Run the scenarios, printing each line as it comes; rows and notes."""
    rows, notes = [], []
    with Processes() as processes:
        try:
            bench = Bench(settings, processes)
            for name in names:
                began = time.monotonic()
                for item in SCENARIOS[name](bench):
                    (rows if isinstance(item, Row) else notes).append(item)
                    text = item if isinstance(item, str) else '  '.join(item.cells())
                    print(f'[{name}] {text}', flush=True)
                print(f'[{name}] {time.monotonic() - began:.0f} s', flush=True)
        finally:
            processes.stop_all()
            notes.extend(_server_errors(processes.every))
    return rows, notes


def _server_errors(servers):
    """A line per server whose log shows tracebacks or errors; other logs go."""
    lines = []
    for server in servers:
        output = server.output()
        tracebacks = output.count('Traceback')
        errors = sum(line.startswith('ERROR') for line in output.splitlines())
        if not (tracebacks or errors):
            server.log.unlink()
        else:
            lines.append(
                f'{server.name} logged {errors} ERROR lines and {tracebacks} '
                f'tracebacks (log: {server.log})'
            )
    return lines


if __name__ == '__main__':
    main()
