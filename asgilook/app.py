import falcon.asgi

from . import auth
from . import backends
from . import errors
from .blobs import BlobsLifespan
from .cache import RedisCache
from .config import Config
from .failopen import FailOpenRedis
from .health import Health
from .health import Readiness
from .images import CanonicalUUID
from .images import Images
from .images import Thumbnails
from .openapi import OpenAPI
from .startup import StartupReport
from .store import Store
from .store import StoreLifespan


def create_app(config=None):
    """Build every object of the service, and wire them into one ASGI app."""
    config = config or Config()
    workers = config.workers_factory(config)
    blobs = config.blobs_from_url(config.blobs_url, config, workers)
    store = Store(
        config,
        backend=config.backend_from_url(config.database_url),
        blobs=blobs,
        workers=workers,
    )
    redis = FailOpenRedis(config)
    cache = RedisCache(config, redis)
    access = auth.Access(config.api_tokens, config.anonymous_uploads)
    images = Images(config, store, access)
    thumbnails = Thumbnails(store)

    app = falcon.asgi.App(
        middleware=[
            BlobsLifespan(blobs),
            StoreLifespan(store, config.sweep_interval),
            cache,
            StartupReport(config, redis),
        ]
    )
    app.router_options.converters['uuid'] = CanonicalUUID
    app.set_error_serializer(errors.serialize)
    app.add_error_handler(errors.AsgilookError, errors.handle)
    app.add_error_handler(backends.driver_errors(), errors.handle_index)
    app.add_route('/images', images)
    app.add_route('/images/{image_id:uuid}.jpeg', images, suffix='image')
    app.add_route(
        '/thumbnails/{image_id:uuid}/{width:int}x{height:int}.{ext}', thumbnails
    )
    app.add_route('/healthz', Health())
    app.add_route('/readyz', Readiness(config, store, redis))
    app.add_route('/openapi.json', OpenAPI())

    return app
