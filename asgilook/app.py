from . import auth
from . import backends
from . import errors
from . import metrics
from . import timing
from .access import AccessLog
from .blobs import BlobsLifespan
from .cache import RedisCache
from .config import Config
from .cors import CORS
from .events import EventHub
from .events import Events
from .events import EVENTS_PATH
from .events import EventsLifespan
from .failopen import FailOpenRedis
from .health import Health
from .health import Readiness
from .images import CanonicalUUID
from .images import Images
from .images import Thumbnails
from .metrics import Metrics
from .metrics import MetricsResource
from .observer import Observer
from .openapi import OpenAPI
from .pages import Gallery
from .pages import Home
from .quiet import QuietApp
from .startup import StartupReport
from .store import Store
from .store import StoreLifespan


def create_app(config=None):
    """Build every object of the service, and wire them into one ASGI app."""
    config = config or Config()
    workers = config.workers_factory(config)
    blobs = config.blobs_from_url(config.blobs_url, config, workers)
    # NOTE: Index and file calls are timed, for Server-Timing.
    store = Store(
        config,
        backend=timing.TimedCalls(
            config.backend_from_url(config.database_url), 'index'
        ),
        blobs=timing.TimedCalls(blobs, 'files'),
        workers=workers,
    )
    redis = FailOpenRedis(config)
    cache = RedisCache(config, redis)
    access = auth.Access(config.api_tokens, config.anonymous_uploads)
    hub = EventHub(config, redis)
    images = Images(config, store, access, hub)
    thumbnails = Thumbnails(store)
    gallery = Gallery(config)

    observed = Metrics(config.metrics_registry, config.prometheus_multiproc_dir)
    access_log = AccessLog(config.access_log) if config.access_log != 'off' else None

    # NOTE: CORS before the cache: its headers are added after an answer is
    #   cached (and to every replay), never kept in an entry for all origins.
    #   The observer first of all: it sees every response last (observer.py).
    cors = [CORS(config.cors_origins)] if config.cors_origins else []
    app = QuietApp(
        stall=config.events_keepalive,
        download_stall=config.send_timeout,
        middleware=[
            Observer(observed, access_log),
            *cors,
            BlobsLifespan(blobs),
            StoreLifespan(store, config.sweep_interval),
            cache,
            StartupReport(config, redis),
            EventsLifespan(hub),
        ],
    )
    app.router_options.converters['uuid'] = CanonicalUUID
    app.set_error_serializer(errors.serialize)
    app.add_error_handler(errors.AsgilookError, errors.handle)
    app.add_error_handler(
        errors.UploadError, metrics.counting_rejections(errors.handle)
    )
    app.add_error_handler(backends.driver_errors(), errors.handle_index)
    app.add_route('/images', images)
    app.add_route('/images/{image_id:uuid}.jpeg', images, suffix='image')
    app.add_route(
        '/thumbnails/{image_id:uuid}/{width:int}x{height:int}.{ext}', thumbnails
    )
    app.add_route('/healthz', Health())
    app.add_route('/readyz', Readiness(config, store, redis))
    app.add_route('/openapi.json', OpenAPI())
    app.add_route(EVENTS_PATH, Events(hub))
    app.add_route('/', Home(config))
    app.add_route('/gallery', gallery)
    app.add_route('/gallery/{name}', gallery, suffix='asset')
    app.add_route('/metrics', MetricsResource(observed))

    return app
