"""Pages on other origins: Falcon's CORS policy, for the operator's origins.

Off unless ``ASGI_LOOK_CORS_ORIGINS`` names origins (or ``*``). Preflights
are answered for every route, with the methods its ``Allow`` header lists.
"""

from collections.abc import Iterable

import falcon
import falcon.asgi

# NOTE: What a client of the API reads beside the body: where an upload went,
#   validators, the next page, whether the cache answered, retries, and why
#   a write was refused.
EXPOSED = (
    'Location',
    'ETag',
    'Link',
    'X-ASGILook-Cache',
    'Idempotent-Replayed',
    'Retry-After',
    'WWW-Authenticate',
)


class CORS(falcon.CORSMiddleware):
    """Falcon's ``CORSMiddleware``, and ``Vary: Origin`` where answers differ
    by origin, so that no shared cache gives one origin's answer to another."""

    def __init__(self, origins: str | Iterable[str]) -> None:
        super().__init__(allow_origins=origins, expose_headers=EXPOSED)

    def process_response(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        req_succeeded: bool,
    ) -> None:
        if self.allow_origins != '*':
            resp.append_header('Vary', 'Origin')
        super().process_response(req, resp, resource, req_succeeded)
