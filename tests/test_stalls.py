"""BoundedSend: a write to a client within a bound, or no connection."""

import asyncio

import pytest

from asgilook import errors
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


class Cycle:
    """Stands for uvicorn's request cycle: its send() returns at once, and
    does nothing, once the client is gone."""

    def __init__(self):
        self.disconnected = False
        self.sent = []

    async def send(self, message):
        if not self.disconnected:
            self.sent.append(message)


@pytest.mark.parametrize('cut_when_gone', [True, False])
def test_a_body_sent_to_a_client_gone_is_cut(cut_when_gone):
    part = {'type': 'http.response.body', 'body': b'x', 'more_body': True}

    async def scenario():
        cycle = Cycle()
        bounded = BoundedSend(cycle.send, 60, 'A client', cut_when_gone=cut_when_gone)
        await bounded({'type': 'http.response.start', 'status': 200})
        await bounded(part)
        cycle.disconnected = True
        try:
            await bounded(part)
            # NOTE: The end of a body has nothing left to spare.
            await bounded({'type': 'http.response.body'})
        finally:
            bounded.close()
        return cycle.sent

    if cut_when_gone:
        with pytest.raises(errors.ClientGone):
            asyncio.run(scenario())
    else:
        assert len(asyncio.run(scenario())) == 2


def test_the_end_of_a_body_to_a_client_gone_is_no_error():
    async def scenario():
        cycle = Cycle()
        bounded = BoundedSend(cycle.send, 60, 'A client', cut_when_gone=True)
        await bounded({'type': 'http.response.start', 'status': 200})
        cycle.disconnected = True
        await bounded({'type': 'http.response.body', 'body': b'all of it'})
        bounded.close()
        return cycle.sent

    assert len(asyncio.run(scenario())) == 1
