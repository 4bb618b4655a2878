"""What an ``s3://`` blobs URL says: where the objects go, and how to reach them.

``s3://bucket/prefix?endpoint=http://host:port&region=eu-west-1&create=true``
names a bucket, an optional prefix for every key, and, in its query, the
endpoint (unset: AWS itself), the region, whether to create a missing bucket
at start-up, and how long one call may take. Credentials never go in the
URL: they come from the standard AWS environment variables and files.
Parsing needs no S3 client, so that a bad URL is refused before one loads.
"""

import dataclasses
import math
import re
import urllib.parse

# NOTE: How long one call to the storage may take, all retries included,
#   before the request it serves answers 503.
DEFAULT_TIMEOUT = 10.0

# NOTE: S3's rules for bucket names (3 to 63 lowercase letters, digits, dots
#   and hyphens), so that a typo fails at start-up, not on the first upload.
_BUCKET = re.compile(r'[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]')
_PARAMETERS = ('endpoint', 'region', 'create', 'timeout')
_BOOLEANS = {'true': True, '1': True, 'false': False, '0': False}


@dataclasses.dataclass(frozen=True)
class S3Location:
    """A bucket, a prefix inside it, and how to reach it."""

    bucket: str
    prefix: str = ''
    endpoint: str | None = None
    region: str | None = None
    create: bool = False
    timeout: float = DEFAULT_TIMEOUT

    def key(self, name: str) -> str:
        """The object key of the blob ``name``."""
        return f'{self.prefix}/{name}' if self.prefix else name

    def name(self, key: str) -> str:
        """The blob name of the object ``key`` (one listed under the prefix)."""
        return key[len(self.prefix) + 1 :] if self.prefix else key


def parse(url: str) -> S3Location:
    """The location an ``s3://`` URL names; ValueError says what is wrong."""
    parts = urllib.parse.urlsplit(url)
    if '@' in parts.netloc:
        raise ValueError(
            'credentials do not belong in the URL: set AWS_ACCESS_KEY_ID and '
            'AWS_SECRET_ACCESS_KEY, or AWS_PROFILE'
        )
    if not _BUCKET.fullmatch(parts.netloc):
        raise ValueError('the bucket name must be 3 to 63 of a-z, 0-9, dot and hyphen')
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(_PARAMETERS))
    if unknown:
        raise ValueError(f'unknown parameter {unknown[0]!r}')
    single = {name: values[-1] for name, values in query.items()}
    prefix = parts.path.strip('/')
    # NOTE: Keys are taken as they are written; some stores resolve dot
    #   segments or merge slashes, and the keys would not be where we look.
    if prefix and any(part in ('', '.', '..') for part in prefix.split('/')):
        raise ValueError('the prefix must not have empty, "." or ".." parts')
    return S3Location(
        bucket=parts.netloc,
        prefix=prefix,
        endpoint=_endpoint(single.get('endpoint')),
        region=single.get('region') or None,
        create=_boolean(single.get('create', 'false')),
        timeout=_timeout(single.get('timeout')),
    )


def _endpoint(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        parts = urllib.parse.urlsplit(raw)
        # NOTE: Reading the port checks it: one that is no number raises.
        valid = parts.scheme in ('http', 'https') and parts.hostname and parts.port != 0
    except ValueError:
        valid = False
    if not valid:
        raise ValueError('endpoint must be http://host:port or https://host')
    if parts.username is not None:
        raise ValueError('credentials do not belong in the endpoint')
    return raw


def _boolean(raw: str) -> bool:
    try:
        return _BOOLEANS[raw.lower()]
    except KeyError:
        raise ValueError('create must be true or false') from None


def _timeout(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise ValueError('timeout must be a positive number of seconds')
    return value
