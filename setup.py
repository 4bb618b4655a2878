#!/usr/bin/env python

import pathlib

from setuptools import find_packages
from setuptools import setup

description = 'Image sharing and thumbnails: the Falcon ASGI tutorial, grown up.'

requirements = [
    'aiofiles>=23.1',
    'falcon>=4.0',
    # NOTE: The asgilook command's HTTP client (asgilook upload): asyncio,
    #   connection limits, timeouts, and MockTransport for its tests.
    'httpx>=0.28',
    'msgpack>=1.0',
    # NOTE: Worker processes with a per-job timeout: threads cannot be
    #   stopped, and a hostile image can keep a decoder busy for minutes.
    'pebble>=5.0',
    # NOTE: 13.0.0 fixes a critical overflow in the JPEG decoder.
    'Pillow>=13.0.0',
    # NOTE: The Prometheus project's own client: /metrics, and the
    #   multiprocess mode that adds up uvicorn's worker processes.
    'prometheus-client>=0.20',
    # NOTE: redis.asyncio is the maintained successor of aioredis, which no
    #   longer imports on Python 3.11+; aclose() needs redis 5.
    'redis>=5.0.1',
    # NOTE: The progress bar of asgilook upload (count, bytes, rate, time
    #   left), with failures printed above it; HTTPie uses it too.
    'rich>=13.0',
    # NOTE: asgilook serve runs the service under it; the [standard] extras
    #   (uvloop, httptools) stay a choice, in the dev and test extras.
    'uvicorn>=0.30',
]

extras_require = {
    'dev': [
        'httpie',
        'uvicorn[standard]>=0.30',
    ],
    # NOTE: The docs use the built-in alabaster theme, so Sphinx is all they
    #   need. Bounded above: CI builds them with warnings as errors, and a new
    #   major version may warn about what the current one accepts.
    'docs': [
        'sphinx>=8.0,<10',
    ],
    'postgresql': [
        'asyncpg>=0.29',
    ],
    # NOTE: aiobotocore (aio-libs: botocore over aiohttp) for S3-compatible
    #   object storage: it reads the standard AWS credential chain (variables,
    #   ~/.aws files, profiles, instance roles). obstore used half the CPU per
    #   call when measured, but reads no ~/.aws files (docs/storage.rst).
    #   2.19 brings botocore 1.36's request_checksum_calculation option.
    's3': [
        'aiobotocore>=2.19',
    ],
    'test': [
        'aiobotocore>=2.19',
        'asyncpg>=0.29',
        'fakeredis>=2.20',
        'httpie',
        'hypothesis>=6.100',
        # NOTE: moto's standalone server is the S3 the tests talk HTTP to.
        'moto[server]>=5.0',
        # NOTE: Checks openapi.json against the OpenAPI 3.1 schema itself.
        'openapi-spec-validator>=0.7',
        # NOTE: Drives Debian's chromium (executable_path) in the gallery's
        #   browser tests; its own browser downloads are never used.
        'playwright>=1.40',
        'pytest>=8',
        'pytest-cov>=5',
        # NOTE: Throws requests generated from openapi.json at the app and
        #   checks every answer against it; 4.x has the from_asgi loaders.
        'schemathesis>=4.0',
        'uvicorn[standard]>=0.30',
    ],
    'lint': [
        'ruff>=0.17,<0.18',
    ],
}

setup(
    name='asgilook',
    version='0.1.0',
    description=description,
    long_description=(pathlib.Path(__file__).parent / 'README.rst').read_text(),
    long_description_content_type='text/x-rst',
    license='Apache-2.0',
    classifiers=[
        'Development Status :: 3 - Alpha',
        'Framework :: AsyncIO',
        'Intended Audience :: Developers',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.12',
        'Programming Language :: Python :: 3.13',
        'Topic :: Internet :: WWW/HTTP :: HTTP Servers',
        'Topic :: Multimedia :: Graphics',
    ],
    keywords='falcon asgi async cache redis uvicorn thumbnails',
    packages=find_packages(exclude=['tests', 'tests.*']),
    # NOTE: The OpenAPI document and the gallery's page, script and styles,
    #   served from the installed package as they are.
    package_data={'asgilook': ['openapi.json', 'static/*']},
    # NOTE: Pillow 13 (which the JPEG decoder fix needs) requires Python 3.11.
    python_requires='>=3.11',
    install_requires=requirements,
    extras_require=extras_require,
    entry_points={
        'console_scripts': [
            'asgilook = asgilook.cli:main',
        ],
    },
)
