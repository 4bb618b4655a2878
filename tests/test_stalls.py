"""BoundedSend: a write to a client within a bound, or no connection."""

import asyncio

import pytest

from asgilook.stalls import BoundedSend


def test_a_write_that_someone_else_cancels_stays_cancelled(caplog):
    """The server stops, say: not a stalled client, and nothing to log."""

    async def scenario():
        async def send(message):
            await asyncio.Event().wait()

        bounded = BoundedSend(send, 60, 'A client')
        task = asyncio.ensure_future(bounded({'type': 'http.response.start'}))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        bounded.close()

    asyncio.run(scenario())
    assert 'took nothing' not in caplog.text
