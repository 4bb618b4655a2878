"""Where a request's time goes, stage by stage, for its ``Server-Timing``.

Two halves, with nothing to import beyond the standard library, so that the
image worker processes can load this module too:

* in a worker process, :func:`collect` runs one image job and the
  :class:`stage` blocks inside it (``decode``, ``resize``, ``encode``) note
  their durations; they travel back with the result as a :class:`Measured`;
* in the service process, the request's :class:`Timing` (begun by the
  observer middleware, found through a context variable) adds up the time of
  each stage: what the workers measured, Redis commands (``cache``), index
  and file calls (:class:`TimedCalls`), an upload's body (``body``) and
  waits for a place (``queue``).

Outside a request (or a job) every call here does nothing.
"""

from collections.abc import Callable
import contextvars
import dataclasses
import inspect
import time
from typing import Any

# NOTE: One image job's stages: (stage, format, seconds), in order.
Stages = tuple[tuple[str, str, float], ...]

_job: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    'asgilook_job_stages', default=None
)
_request: contextvars.ContextVar['Timing | None'] = contextvars.ContextVar(
    'asgilook_request_timing', default=None
)


@dataclasses.dataclass(frozen=True)
class Measured:
    """What an image job returned, and how long each of its stages took."""

    result: Any
    # NOTE: Not compared: a job run twice gives the same result, never the
    #   same durations (tests compare a worker's answer with a twin's).
    stages: Stages = dataclasses.field(default=(), compare=False)


def collect(func: Callable[..., Any], *args: Any) -> Measured:
    """Run ``func(*args)`` (in a worker process), noting its stages."""
    stages: list = []
    token = _job.set(stages)
    try:
        result = func(*args)
    finally:
        _job.reset(token)
    return Measured(result, tuple(stages))


# NOTE: Lower case, as contextlib's are: used as ``with stage('decode', 'PNG')``.
class stage:
    """Note how long the block takes as ``name`` of format ``fmt``.

    A no-op unless :func:`collect` runs the job (image work called directly,
    or in tests, is not timed).
    """

    __slots__ = ('_fmt', '_name', '_stages', '_started')

    def __init__(self, name: str, fmt: str) -> None:
        self._name = name
        self._fmt = fmt

    def __enter__(self) -> None:
        self._stages = _job.get()
        self._started = time.perf_counter()

    def __exit__(self, *exc_info: Any) -> None:
        if self._stages is not None:
            elapsed = time.perf_counter() - self._started
            self._stages.append((self._name, self._fmt, elapsed))


class Timing:
    """The time one request spent in each stage, in seconds, summed by name."""

    __slots__ = ('stages', 'started')

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.stages: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + seconds

    def header(self) -> str:
        """The stages as a ``Server-Timing`` value, in milliseconds."""
        return ', '.join(
            f'{name};dur={seconds * 1000:.2f}' for name, seconds in self.stages.items()
        )


def begin() -> Timing:
    """Start timing the request this task serves."""
    timing = Timing()
    _request.set(timing)
    return timing


def add(name: str, seconds: float) -> None:
    """Add ``seconds`` to stage ``name`` of the current request, if any."""
    timing = _request.get()
    if timing is not None:
        timing.add(name, seconds)


class measure:
    """Add how long the block takes to stage ``name`` of the current request."""

    __slots__ = ('_name', '_started')

    def __init__(self, name: str) -> None:
        self._name = name

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *exc_info: Any) -> None:
        add(self._name, time.perf_counter() - self._started)


class TimedCalls:
    """Forwards to ``real``, adding each awaited call's time to stage ``name``.

    What is not a coroutine method (attributes, plain methods) is handed out
    as it is. Nothing is cached: ``real`` may answer differently each time
    (test fakes switch faults on and off).
    """

    def __init__(self, real: Any, name: str) -> None:
        self._real = real
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._real, attribute)
        if not inspect.iscoroutinefunction(value):
            return value
        name = self._name

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await value(*args, **kwargs)
            finally:
                add(name, time.perf_counter() - started)

        return timed
