"""Hand-written fakes for collaborators the app gets through Config."""

import asyncio

import fakeredis
import redis.exceptions


class FlakyRedis:
    """An async Redis client that can be switched off, or made to hang.

    It forwards to fakeredis while up, and counts the commands it was sent.
    """

    def __init__(self, server=None):
        self._redis = fakeredis.FakeAsyncRedis(server=server or fakeredis.FakeServer())
        self.down = False
        self.hang = False
        self.commands = []

    async def _run(self, name, *args, **kwargs):
        self.commands.append(name)
        if self.hang:
            await asyncio.sleep(3600)
        if self.down:
            raise redis.exceptions.ConnectionError('Connection refused (fake)')
        return await getattr(self._redis, name)(*args, **kwargs)

    async def ping(self):
        return await self._run('ping')

    async def get(self, key):
        return await self._run('get', key)

    async def set(self, key, value, **options):
        return await self._run('set', key, value, **options)

    async def delete(self, *keys):
        return await self._run('delete', *keys)

    async def exists(self, *keys):
        return await self._run('exists', *keys)

    async def aclose(self):
        self.commands.append('aclose')
        if self.down:
            raise redis.exceptions.ConnectionError('Connection refused (fake)')
