"""Two async S3 clients, and the service's S3 blobs, against moto's server.

Times ``--rounds`` PUT+GET pairs of one object of ``--size`` bytes, one pair
at a time, through aiobotocore (the client ``asgilook.blobs.s3`` uses), through
obstore (when installed: ``pip install obstore``) and through ``S3Blobs``
itself, and prints the median time of a pair and the client process's CPU
time per pair. moto's server runs in its own process (started on a free
loopback port, as the tests start it), so its own CPU is not counted; its
latency is, the same for every client.

    python -m benchmark.s3_clients [--rounds 200] [--size 524288]
"""

import argparse
import asyncio
import os
import resource
import statistics
import time

from asgilook.blobs.s3 import S3Blobs
from asgilook.blobs.s3url import parse
from tests.servers import AWS_TEST_ENVIRONMENT
from tests.servers import MotoServer

WARM_UP = 10


def _cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _time(pair, rounds):
    for number in range(WARM_UP):
        await pair(number)
    samples = []
    cpu = _cpu()
    for number in range(rounds):
        started = time.perf_counter()
        await pair(number)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), (_cpu() - cpu) / rounds


async def _aiobotocore(endpoint, data, rounds):
    import aiobotocore.config
    import aiobotocore.session

    config = aiobotocore.config.AioConfig(s3={'addressing_style': 'path'})
    session = aiobotocore.session.get_session()
    async with session.create_client(
        's3', endpoint_url=endpoint, region_name='us-east-1', config=config
    ) as s3:

        async def pair(number):
            await s3.put_object(Bucket='aiobotocore', Key=f'k{number}', Body=data)
            answer = await s3.get_object(Bucket='aiobotocore', Key=f'k{number}')
            async with answer['Body'] as body:
                assert await body.read() == data

        return await _time(pair, rounds)


async def _obstore(endpoint, data, rounds):
    import obstore
    import obstore.store

    store = obstore.store.S3Store(
        'obstore',
        endpoint=endpoint,
        region='us-east-1',
        virtual_hosted_style_request=False,
        client_options={'allow_http': True},
    )

    async def pair(number):
        await obstore.put_async(store, f'k{number}', data)
        answer = await obstore.get_async(store, f'k{number}')
        assert bytes(await answer.bytes_async()) == data

    return await _time(pair, rounds)


async def _s3blobs(endpoint, data, rounds):
    blobs = S3Blobs(parse(f's3://s3blobs?endpoint={endpoint}&region=us-east-1'))

    async def pair(number):
        await blobs.write(f'k{number}', data)
        assert await blobs.read(f'k{number}') == data

    try:
        return await _time(pair, rounds)
    finally:
        await blobs.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=200)
    parser.add_argument('--size', type=int, default=512 * 1024)
    args = parser.parse_args()

    os.environ.update(AWS_TEST_ENVIRONMENT)
    data = os.urandom(args.size)
    moto = MotoServer().start()
    try:
        runs = [('aiobotocore', _aiobotocore), ('S3Blobs', _s3blobs)]
        try:
            import obstore  # noqa: F401
        except ImportError:
            print('obstore is not installed: pip install obstore to compare it')
        else:
            runs.insert(1, ('obstore', _obstore))
        print(f'{args.rounds} PUT+GET pairs of {args.size} bytes, one at a time')
        for name, run in runs:
            moto.create_bucket(name.lower())
            median, cpu = asyncio.run(run(moto.endpoint, data, args.rounds))
            print(
                f'{name:12} median {median * 1000:6.2f} ms per pair, '
                f'client CPU {cpu * 1000:5.2f} ms per pair'
            )
    finally:
        moto.stop()


if __name__ == '__main__':
    main()
