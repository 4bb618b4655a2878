"""The service's Prometheus metrics, and ``GET /metrics`` that serves them.

Each app has its own :class:`Metrics`, on its own registry (unless
``Config.metrics_registry`` names one). The observer middleware makes it the
current one for each request, and for start-up and shutdown; code deep in the
service records what happens with this module's functions (:func:`joined`,
:func:`waiting`…), which find it through a context variable, and do nothing
outside a request.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``uvicorn --workers N``),
prometheus-client keeps every value in files in that directory, one set per
process, and ``/metrics`` adds them up over every process, whichever one
answers the scrape. Nothing here runs in the image worker processes: their
stage durations come back with each job's result (see ``timing.py``).
"""

from collections.abc import Awaitable
from collections.abc import Callable
import contextvars
import os
from typing import Any

import falcon
import falcon.asgi
import prometheus_client
from prometheus_client import exposition
from prometheus_client import multiprocess

from . import errors
from .timing import Stages

# NOTE: Labels come from small fixed sets only: route templates (never a
#   raw path), known methods, status codes, formats and stages.
UNMATCHED = 'unmatched'
OTHER_METHOD = 'other'
_METHODS = frozenset(falcon.COMBINED_METHODS)
# NOTE: From a cache hit (about a millisecond) to an upload at its deadline.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
STAGE_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

_current: contextvars.ContextVar['Metrics | None'] = contextvars.ContextVar(
    'asgilook_metrics', default=None
)


class Metrics:
    """One app's metrics, on ``registry``.

    ``multiprocess_dir``: the ``PROMETHEUS_MULTIPROC_DIR`` the values of
    every process are kept in, and collected from.
    """

    def __init__(
        self,
        registry: prometheus_client.CollectorRegistry | None = None,
        multiprocess_dir: str | None = None,
    ) -> None:
        self.multiprocess_dir = multiprocess_dir
        if registry is None:
            registry = prometheus_client.CollectorRegistry()
            if multiprocess_dir is None:
                # NOTE: CPU time, memory and file descriptors; per process,
                #   so only where there is one process to speak of.
                prometheus_client.ProcessCollector(registry=registry)
        self.registry = registry
        self._define(registry)
        # NOTE: Children of the per-request metrics, by (route, method,
        #   status, cache): labels() costs microseconds, a dict lookup not.
        self._children: dict[tuple, tuple] = {}

    def _define(self, registry):
        def counter(name, documentation, labels=()):
            return prometheus_client.Counter(
                name, documentation, labels, registry=registry
            )

        def gauge(name, documentation, labels=(), mode='livesum'):
            return prometheus_client.Gauge(
                name, documentation, labels, registry=registry, multiprocess_mode=mode
            )

        self.requests = counter(
            'asgilook_requests',
            'Requests answered, by route template, method and status.',
            ('route', 'method', 'status'),
        )
        self.latency = prometheus_client.Histogram(
            'asgilook_request_duration_seconds',
            'Time from a request reaching the app to its response, by route '
            'template and method.',
            ('route', 'method'),
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.cache_results = counter(
            'asgilook_cache_results',
            'What the response cache said (X-ASGILook-Cache), by route template.',
            ('route', 'result'),
        )
        self.received = counter(
            'asgilook_request_body_bytes',
            'Request body bytes read, by route template.',
            ('route',),
        )
        self.sent = counter(
            'asgilook_response_body_bytes',
            'Response body bytes, by route template.',
            ('route',),
        )
        self.image_stages = prometheus_client.Histogram(
            'asgilook_image_stage_seconds',
            'Image work in the worker processes, by stage and image format.',
            ('stage', 'format'),
            registry=registry,
            buckets=STAGE_BUCKETS,
        )
        self.renders = counter(
            'asgilook_renders', 'Derived images rendered, by format.', ('format',)
        )
        self.joins = counter(
            'asgilook_render_joins',
            "Requests that waited for another's render instead of their own: "
            'in this process (process), or in any (redis).',
            ('scope',),
        )
        self.rejected_uploads = counter(
            'asgilook_uploads_rejected',
            'Uploads refused, by reason (the error) and status.',
            ('reason', 'status'),
        )
        self.waiting = gauge(
            'asgilook_admission_waiting',
            'Jobs waiting for admission, by gate (uploads, images).',
            ('gate',),
        )
        self.refused = counter(
            'asgilook_admission_refused',
            'Jobs refused admission (503), by gate (uploads, images).',
            ('gate',),
        )
        # NOTE: With several processes, 1 only while every one of them has
        #   Redis answering.
        self.redis_up = gauge(
            'asgilook_redis_up',
            '1 while Redis answers, 0 since a command failed.',
            mode='livemin',
        )
        self.redis_failures = counter(
            'asgilook_redis_failures', 'Redis commands that failed or timed out.'
        )
        self.sse_clients = gauge(
            'asgilook_sse_clients', 'Event streams (GET /events) open now.'
        )

    def activate(self) -> None:
        """Make these the metrics the current task (a request) records in."""
        _current.set(self)

    def request(
        self,
        route: str | None,
        method: str,
        status: int,
        cache: str | None,
        seconds: float,
        received: int,
        sent: int,
    ) -> None:
        """Count one answered request (``route``: its template; None: no route)."""
        key = (
            route or UNMATCHED,
            method if method in _METHODS else OTHER_METHOD,
            status,
            cache,
        )
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = self._bind(*key)
        requests, latency, cache_result, bytes_in, bytes_out = children
        requests.inc()
        latency.observe(seconds)
        if cache_result is not None:
            cache_result.inc()
        if received:
            bytes_in.inc(received)
        if sent:
            bytes_out.inc(sent)

    def _bind(self, route, method, status, cache):
        return (
            self.requests.labels(route, method, str(status)),
            self.latency.labels(route, method),
            self.cache_results.labels(route, cache.lower()) if cache else None,
            self.received.labels(route),
            self.sent.labels(route),
        )

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The metrics in the format ``accept`` asks for, and its media type."""
        registry = self.registry
        if self.multiprocess_dir is not None:
            registry = prometheus_client.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        encoder, content_type = exposition.choose_encoder(accept or '')
        return encoder(registry), content_type

    def close(self) -> None:
        """This process is stopping: its gauges no longer count."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)


class MetricsResource:
    """``GET /metrics``: every metric, in Prometheus' text format.

    Never cached: the route does not opt in (see ``cache.cached``).
    """

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response):
        resp.data, resp.content_type = self._metrics.exposition(
            req.get_header('Accept')
        )
        resp.cache_control = ['no-store']

    on_head = on_get


def image_work(stages: Stages) -> None:
    """Observe the stages of one image job, as the worker measured them."""
    metrics = _current.get()
    if metrics is not None:
        for name, fmt, seconds in stages:
            metrics.image_stages.labels(name, fmt).observe(seconds)


def rendered(ext: str) -> None:
    """Count a derived image rendered in format ``ext``."""
    metrics = _current.get()
    if metrics is not None:
        metrics.renders.labels(ext).inc()


def joined(scope: str) -> None:
    """Count a request served by another's render: ``process`` or ``redis``."""
    metrics = _current.get()
    if metrics is not None:
        metrics.joins.labels(scope).inc()


def waiting(gate: str, change: int) -> None:
    """One more (1) or one fewer (-1) job waits for admission at ``gate``."""
    metrics = _current.get()
    if metrics is not None:
        metrics.waiting.labels(gate).inc(change)


def refused(gate: str) -> None:
    """Count a job ``gate`` refused (a 503)."""
    metrics = _current.get()
    if metrics is not None:
        metrics.refused.labels(gate).inc()


def sse_clients(change: int) -> None:
    """One more (1) or one fewer (-1) event stream is open."""
    metrics = _current.get()
    if metrics is not None:
        metrics.sse_clients.inc(change)


def redis_state(up: bool) -> None:
    """Redis answers again (True), or stopped answering (False)."""
    metrics = _current.get()
    if metrics is not None:
        metrics.redis_up.set(1 if up else 0)


def redis_failure() -> None:
    """Count a Redis command that failed or timed out."""
    metrics = _current.get()
    if metrics is not None:
        metrics.redis_failures.inc()


ErrorHandler = Callable[[Any, Any, Exception, dict], Awaitable[None]]


def counting_rejections(handle: ErrorHandler) -> ErrorHandler:
    """The error handler ``handle``, counting every upload error it answers."""

    async def counting(req, resp, ex: errors.UploadError, params) -> None:
        metrics = _current.get()
        if metrics is not None:
            status = falcon.http_status_to_code(ex.status)
            metrics.rejected_uploads.labels(type(ex).__name__, str(status)).inc()
        await handle(req, resp, ex, params)

    return counting
