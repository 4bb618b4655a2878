"""The table the benchmark prints, and the machine it ran on."""

import collections
import dataclasses
import datetime
import importlib.metadata
import os
import pathlib
import platform
import subprocess

import PIL
import PIL.features

_COLUMNS = (
    ('workload', '<', 42),
    ('asgilook', '>', 11),
    ('CPU ms', '>', 8),
    ('ceiling', '<', 28),
    ('ceiling', '>', 10),
    ('CPU ms', '>', 8),
    ('ratio', '>', 6),
    ('target', '<', 11),
    ('mark', '<', 4),
    ('non-2xx', '<', 0),
)


@dataclasses.dataclass
class Row:
    """One line of the table: a figure, its ceiling, their ratio, the target.

    ``target`` is a least ratio to the ceiling; with ``at_most`` it is
    instead the most the figure itself may be. Without one, the line only
    reports. CPU figures are seconds per unit of work.
    """

    name: str
    figure: float
    unit: str = '/s'
    cpu: float | None = None
    failures: collections.Counter = dataclasses.field(
        default_factory=collections.Counter
    )
    ceiling_name: str = ''
    ceiling: float | None = None
    ceiling_cpu: float | None = None
    target: float | None = None
    at_most: bool = False

    @classmethod
    def compared(cls, name, sample, ceiling_name, ceiling, target=None) -> 'Row':
        return cls(
            name,
            sample.rate,
            cpu=sample.cpu,
            failures=sample.failures,
            ceiling_name=ceiling_name,
            ceiling=ceiling.rate,
            ceiling_cpu=ceiling.cpu,
            target=target,
        )

    @property
    def ratio(self) -> float | None:
        return self.figure / self.ceiling if self.ceiling else None

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.at_most:
            return self.figure <= self.target
        return self.ratio is not None and self.ratio >= self.target

    def cells(self) -> list[str]:
        if self.target is None:
            target, mark = '-', '-'
        else:
            unit = f' {self.unit}' if self.at_most else ''
            target = f'{"≤" if self.at_most else "≥"} {self.target:g}{unit}'
            mark = 'pass' if self.met and not self.failures else 'MISS'
        failures = ' '.join(
            f'{status or "no answer"}×{n}'
            for status, n in sorted(self.failures.items())
        )
        return [
            self.name,
            _number(self.figure, self.unit),
            _ms(self.cpu),
            self.ceiling_name or '-',
            _number(self.ceiling, self.unit),
            _ms(self.ceiling_cpu),
            f'{self.ratio:.2f}' if self.ratio is not None else '-',
            target,
            mark,
            failures or '0',
        ]


def _number(value, unit):
    if value is None:
        return '-'
    if unit.startswith('/'):
        digits = 0 if value >= 100 else 1 if value >= 10 else 2
        return f'{value:.{digits}f}{unit}'
    return f'{value:.0f} {unit}'


def _ms(seconds):
    if seconds is None:
        return '-'
    ms = seconds * 1000
    return f'{ms:.{0 if ms >= 100 else 1 if ms >= 10 else 2 if ms >= 1 else 3}f}'


def table(rows: list[Row]) -> str:
    lines = [_line([title for title, _, _ in _COLUMNS])]
    lines.append(_line(['-' * max(width, len(title)) for title, _, width in _COLUMNS]))
    lines.extend(_line(row.cells()) for row in rows)
    return '\n'.join(lines)


def _line(cells):
    parts = [
        f'{cell:{align}{width}}'
        for cell, (_, align, width) in zip(cells, _COLUMNS, strict=True)
    ]
    return '  '.join(parts).rstrip()


def machine() -> list[str]:
    """What the numbers were measured on, for the README."""
    model = next(
        (
            line.partition(':')[2].strip()
            for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines()
            if line.startswith('model name')
        ),
        platform.machine(),
    )
    memory = int(pathlib.Path('/proc/meminfo').read_text().split()[1]) / 2**20
    versions = ', '.join(
        f'{name} {importlib.metadata.version(name)}'
        for name in ('falcon', 'uvicorn', 'uvloop', 'httptools', 'redis')
    )
    wrk = subprocess.run(['wrk', '-v'], capture_output=True, text=True)
    now = datetime.datetime.now(datetime.UTC)
    return [
        f'date: {now:%Y-%m-%d %H:%M} UTC',
        f'machine: {os.cpu_count()} CPUs ({model}), {memory:.1f} GiB RAM, '
        f'Linux {platform.release()}',
        f'Python {platform.python_version()}, Pillow {PIL.__version__} '
        f'(libjpeg-turbo {PIL.features.version("libjpeg_turbo")}, '
        f'libwebp {PIL.features.version("webp")}, '
        f'libavif {PIL.features.version("avif")}), {versions}, '
        f'{(wrk.stdout or wrk.stderr).split(" [")[0].strip()}',
        f'load average: {load_average()}',
    ]


def load_average() -> str:
    return ' '.join(pathlib.Path('/proc/loadavg').read_text().split()[:3])
