"""What an upload shows as it runs, on standard error.

On a terminal, a progress bar (files done, bytes, rate, time left) with each
failure printed above it; elsewhere (a log, a pipe), one plain line per file.
Either way, each failure comes with the server's reason, and the run ends with
one line of totals.
"""

from typing import Any
from typing import TextIO

import rich.console
import rich.filesize
import rich.progress
import rich.text

from .upload import Outcome


def failure_line(outcome: Outcome) -> str:
    """``path: 415 Unsupported image type — what the server said``."""
    status = f'{outcome.status} ' if outcome.status else ''
    line = f'{outcome.path}: {status}{outcome.error.get("title", "Failed")}'
    description = outcome.error.get('description')
    return f'{line} — {description}' if description else line


def stored_line(outcome: Outcome) -> str:
    """``path: stored http://…/images/….jpeg``."""
    return f'{outcome.path}: stored {outcome.url or ""}'.rstrip()


def total_line(totals: dict[str, Any]) -> str:
    """The last line: how many files went which way, bytes and time."""
    return (
        f'Stored {totals["stored"]}, failed {totals["failed"]}, '
        f'skipped {totals["skipped"]} (not images), retries {totals["retries"]}; '
        f'{rich.filesize.decimal(totals["bytes"])} in {totals["seconds"]:.1f} s'
    )


class PlainReport:
    """One line per file, for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __enter__(self) -> 'PlainReport':
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stream.flush()

    def start(self, files: int, size: int) -> None:
        self._print(f'Files to upload: {files} ({rich.filesize.decimal(size)})')

    def done(self, outcome: Outcome) -> None:
        self._print(stored_line(outcome) if outcome.stored else failure_line(outcome))

    def total(self, totals: dict[str, Any]) -> None:
        self._print(total_line(totals))

    def _print(self, line):
        print(line, file=self._stream, flush=True)


class BarReport:
    """A rich progress bar, for a terminal.

    NOTE: rich rather than tqdm: its columns put the file count, bytes, rate
    and time left on one bar, and it prints the failures above a live bar
    without tearing it. HTTPie, in the dev and test extras, uses it too.
    """

    def __init__(self, stream: TextIO) -> None:
        self._console = rich.console.Console(file=stream, highlight=False)
        self._progress = rich.progress.Progress(
            rich.progress.TextColumn('{task.fields[done]}/{task.fields[files]} files'),
            rich.progress.BarColumn(),
            rich.progress.DownloadColumn(),
            rich.progress.TransferSpeedColumn(),
            rich.progress.TimeRemainingColumn(),
            console=self._console,
        )
        self._task = None
        self._done = 0

    def __enter__(self) -> 'BarReport':
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def start(self, files: int, size: int) -> None:
        self._task = self._progress.add_task('upload', total=size, files=files, done=0)

    def done(self, outcome: Outcome) -> None:
        self._done += 1
        self._progress.update(self._task, advance=outcome.size, done=self._done)
        if not outcome.stored:
            # NOTE: As Text, so that brackets in a path are not read as markup;
            #   soft-wrapped, so that a long path is never cut by a newline.
            line = rich.text.Text(failure_line(outcome))
            self._progress.console.print(line, soft_wrap=True)

    def total(self, totals: dict[str, Any]) -> None:
        self._console.print(rich.text.Text(total_line(totals)), soft_wrap=True)


def report_for(stream: TextIO) -> PlainReport | BarReport:
    """A progress bar when ``stream`` is a terminal, plain lines otherwise."""
    return BarReport(stream) if stream.isatty() else PlainReport(stream)
