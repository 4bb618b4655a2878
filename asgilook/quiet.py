"""Falcon's ASGI app, made to stop quietly where the fault is not the code's.

Two faults would otherwise end in a traceback in the server's log:

* a setting that proves wrong only as the app starts
  (:class:`~asgilook.errors.BadSetting`: a bucket that is not there). The
  service stops with one line that names the setting, as it does for a
  malformed one (``asgi.py``), and uvicorn exits with status 3;
* storage failing in the middle of an answer's body
  (:class:`~asgilook.errors.ResponseCut`, logged where it happens). The
  headers have promised bytes that will not come: closing the connection is
  the one way left to tell the client, and all that is done. A download's
  client gone in the middle (:class:`~asgilook.errors.ClientGone`) ends
  its answer the same way, rather than have the rest read for nobody.

And event streams (``GET /events``) go through
:func:`~asgilook.events.serve_stream`, so that a client that stops reading is
disconnected, and a stop of the server ends each stream as a complete
response; a download's client that takes nothing of it for
``ASGI_LOOK_SEND_TIMEOUT`` seconds is disconnected too.
"""

import sys
from typing import Any

import falcon.asgi

from .errors import BadSetting
from .errors import ResponseCut
from .events import EVENTS_PATH
from .events import serve_stream
from .stalls import BoundedSend


class QuietApp(falcon.asgi.App):
    """:class:`falcon.asgi.App`, with one line for a bad setting at start-up,
    a closed connection for an answer cut short, and event streams that
    neither wait for a client that stopped reading (for more than
    ``stall`` seconds) nor end in a traceback; downloads do not wait for
    one either (for more than ``download_stall`` seconds)."""

    def __init__(
        self, *args: Any, stall: float, download_stall: float, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._stall = stall
        self._download_stall = download_stall

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope['type'] == 'lifespan':
            await self._answer(scope, receive, _one_line_for_bad_settings(send))
        elif scope['path'].endswith(EVENTS_PATH):
            await serve_stream(self._answer, scope, receive, send, self._stall)
        else:
            # NOTE: A download holds a file, or a connection to the storage,
            #   while it waits for its client. Every answer is bounded, not
            #   those under a prefix: a path has many spellings (//images/).
            bounded = BoundedSend(
                send, self._download_stall, "A download's client", cut_when_gone=True
            )
            try:
                await self._answer(scope, receive, bounded)
            finally:
                bounded.close()

    async def _answer(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ResponseCut:
            # NOTE: Returning with the body unfinished makes the server close
            #   the connection (uvicorn says so in a line, without traceback).
            pass


def _one_line_for_bad_settings(send: Any) -> Any:
    async def sending(message: dict) -> None:
        if message['type'] == 'lifespan.startup.failed':
            # NOTE: Falcon sends this from the handler of what a middleware's
            #   process_startup raised, with its traceback for a message.
            ex = sys.exc_info()[1]
            if isinstance(ex, BadSetting):
                # NOTE: In one write, as asgi.py writes a malformed setting.
                sys.stderr.write(f'asgilook: {ex}\n')
                message = {**message, 'message': ''}
        await send(message)

    return sending
