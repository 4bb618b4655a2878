"""Who may write: the operator's API tokens, and each image's delete token.

Reads are public. With ``ASGI_LOOK_API_TOKENS`` set, an upload needs one of
those tokens as its bearer (unless ``ASGI_LOOK_ANONYMOUS_UPLOADS`` lets
anyone upload), and a delete needs one of them or the image's own delete
token, which its upload's JSON carried. Without API tokens the service is
open, as the tutorial's is.
"""

from collections.abc import Iterable
import hashlib
import hmac
import secrets

import falcon
import falcon.asgi

from . import errors
from .records import Record

REALM = 'asgilook'


def new_delete_token() -> tuple[str, str]:
    """A fresh delete token, and the hash that is all the index keeps of it."""
    token = secrets.token_urlsafe(24)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(req: falcon.asgi.Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if there is one."""
    scheme, _, token = (req.get_header('Authorization') or '').strip().partition(' ')
    token = token.strip()
    return token if scheme.lower() == 'bearer' and token else None


class Access:
    """Checks the bearer of a write against the operator's tokens."""

    def __init__(self, tokens: Iterable[str], anonymous_uploads: bool = False):
        # NOTE: Only hashes are kept, and compared in constant time, all of
        #   them every time: no timing tells how much of a guess was right.
        self._hashes = [token_hash(token).encode() for token in tokens]
        self._anonymous_uploads = anonymous_uploads

    @property
    def protected(self) -> bool:
        return bool(self._hashes)

    def authorize_upload(self, req: falcon.asgi.Request) -> None:
        """Raise unless this request may upload."""
        if self.protected and not self._anonymous_uploads:
            if not self._is_api_token(self._required_bearer(req)):
                raise errors.Forbidden(
                    'This token may not upload images; ask the operator for one '
                    'that may.'
                )

    def authorize_delete(self, req: falcon.asgi.Request) -> str | None:
        """Raise unless this request may delete something.

        Returns None when it may delete any image, or else its bearer token,
        which must be the image's own delete token (see :meth:`owns`).
        """
        if not self.protected:
            return None
        token = self._required_bearer(req)
        return None if self._is_api_token(token) else token

    @staticmethod
    def owns(token: str, record: Record) -> None:
        """Raise unless ``token`` is the record's own delete token."""
        stored = (record.delete_hash or '').encode()
        if not hmac.compare_digest(token_hash(token).encode(), stored):
            raise errors.Forbidden(
                'This token may not delete this image: use the delete_token of '
                "its upload's JSON, or an API token."
            )

    def _required_bearer(self, req):
        token = bearer(req)
        if token is None:
            raise errors.Unauthorized(
                'This service needs a token to change images: send it as '
                '"Authorization: Bearer <token>".'
            )
        return token

    def _is_api_token(self, token):
        hashed = token_hash(token).encode()
        matches = [hmac.compare_digest(hashed, known) for known in self._hashes]
        return any(matches)
