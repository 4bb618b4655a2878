import falcon.asgi

from . import backends
from . import errors
from .cache import RedisCache
from .config import Config
from .images import Images
from .images import Thumbnails
from .store import Store
from .store import StoreLifespan


def create_app(config=None):
    config = config or Config()
    store = Store(config)
    cache = RedisCache(config, validator=store.is_current)
    images = Images(config, store)
    thumbnails = Thumbnails(store)

    app = falcon.asgi.App(middleware=[StoreLifespan(store), cache])
    app.add_error_handler(errors.AsgilookError, errors.handle)
    app.add_error_handler(backends.driver_errors(), errors.handle_index)
    app.add_route('/images', images)
    app.add_route('/images/{image_id:uuid}.jpeg', images, suffix='image')
    app.add_route(
        '/thumbnails/{image_id:uuid}/{width:int}x{height:int}.{ext}', thumbnails
    )

    return app
