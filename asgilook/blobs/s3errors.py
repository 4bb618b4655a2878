"""What an S3 client's failures mean for an image: missing, full, or away.

Every call to object storage can fail in three ways that matter here: the
object is not there (404), the storage is full (507), or it cannot answer now
(503: down, slow, throttling, refusing our credentials). Descriptions go to
clients, so they name the kind of failure only, never an endpoint or a key.
"""

import logging

import aiohttp
import botocore.exceptions

from .. import errors

logger = logging.getLogger(__name__)

_MISSING = frozenset({'NoSuchKey', 'NotFound', '404'})
_FULL = frozenset({'XMinioStorageFull', 'QuotaExceeded'})
# NOTE: What S3 and its look-alikes answer to credentials they will not take.
_REFUSED = frozenset(
    {
        'AccessDenied',
        'ExpiredToken',
        'InvalidAccessKeyId',
        'InvalidToken',
        'SignatureDoesNotMatch',
        'TokenRefreshRequired',
        '403',
    }
)

_TIMEOUTS = (
    TimeoutError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
)

# NOTE: Everything a call may raise that is the storage's doing, not ours.
FAILURES = (
    botocore.exceptions.BotoCoreError,
    botocore.exceptions.ClientError,
    aiohttp.ClientError,
    OSError,
)


def code(ex: BaseException) -> str:
    """The error code S3 answered with (the status, for a HEAD); '' for none."""
    if not isinstance(ex, botocore.exceptions.ClientError):
        return ''
    return ex.response.get('Error', {}).get('Code', '')


def refused(ex: BaseException) -> bool:
    """Whether the storage turned our credentials down (or we have none)."""
    if isinstance(ex, botocore.exceptions.NoCredentialsError):
        return True
    if isinstance(ex, botocore.exceptions.ClientError):
        status = ex.response.get('ResponseMetadata', {}).get('HTTPStatusCode')
        return code(ex) in _REFUSED or status == 403
    return False


def domain_error(ex: BaseException, done: str) -> errors.AsgilookError:
    """The domain error for a failed call; ``done`` is what could not be done
    to the image: stored, read, removed or searched."""
    if isinstance(ex, botocore.exceptions.ClientError):
        status = ex.response.get('ResponseMetadata', {}).get('HTTPStatusCode')
        if code(ex) in _MISSING:
            return errors.FileMissing(
                'The image is listed but its file is missing from storage.'
            )
        if code(ex) in _FULL or status == 507:
            return errors.StorageFull(
                f'The image could not be {done} (the storage is full). Try again later.'
            )
    return errors.StorageUnavailable(
        f'The image could not be {done} ({explain(ex)}). Try again later.'
    )


def explain(ex: BaseException) -> str:
    """What went wrong, in words fit for a client (no endpoint, no key)."""
    if isinstance(ex, botocore.exceptions.NoCredentialsError):
        return 'no credentials for the storage were found'
    if refused(ex):
        return 'the storage refused our credentials'
    if isinstance(ex, _TIMEOUTS):
        return 'the storage did not answer in time'
    if isinstance(ex, botocore.exceptions.ClientError):
        return f'the storage answered {code(ex)}'
    return f'the storage could not be reached: {type(ex).__name__}'
