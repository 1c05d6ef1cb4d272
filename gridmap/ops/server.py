"""The production WSGI server: waitress, with refused bodies answered by the app and drained.

waitress refuses a request body over ``max_request_body_size`` as soon as it knows (a declared
Content-Length, or a chunked body growing past it) with a plain-text 413 of its own, and closes
the connection while the client is still sending: the client then usually sees a connection
reset, not the answer. Here, instead:

- the app answers (the request marked with :data:`BODY_TOO_LARGE` and given an empty body), so
  the 413 comes in the format of the endpoint: gridmap's JSON error under ``/api``, the Open311
  error list under ``/open311``, an error page elsewhere, with the usual security headers;
  waitress's own limit is a little above the app's (:func:`buffer_limit`), which checks the
  exact size of what waitress took;
- the connection then closes as nginx closes it ("lingering close"): the answer is sent, the
  sending side shut down, and whatever the client still sends is read and thrown away (for at
  most :data:`LINGER_SECONDS` and :data:`LINGER_BYTES`) before the socket is closed.

Nothing of a refused body is kept: waitress stops buffering it at the limit. Knows no Flask.
"""

from __future__ import annotations

import io
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask, WSGITask
from waitress.utilities import RequestEntityTooLarge

#: WSGI environ key (value True) of a request whose body the server refused.
BODY_TOO_LARGE = "gridmap.body_too_large"
#: How long, and how many bytes, a refused body is read and discarded after the answer.
LINGER_SECONDS = 30.0
LINGER_BYTES = 1 << 30


class _BodyTooLargeTask(WSGITask):
    """Asks the app to answer a request whose body waitress refused (413)."""

    def execute(self) -> None:
        self.set_close_on_finish()  # the rest of the body may still be on its way
        super().execute()

    def get_environment(self) -> dict[str, Any]:
        environ = super().get_environment()
        environ[BODY_TOO_LARGE] = True
        environ["CONTENT_LENGTH"] = "0"
        environ["wsgi.input"] = io.BytesIO()
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return environ


def _error_task(channel: HTTPChannel, request) -> ErrorTask | WSGITask:
    """The task answering a request waitress could not take; the channel lingers after it."""
    channel.linger_on_close = True
    if isinstance(request.error, RequestEntityTooLarge) and request.headers_finished and request.path:
        return _BodyTooLargeTask(channel, request)
    return ErrorTask(channel, request)


class LingeringChannel(HTTPChannel):
    """An HTTP channel that, after answering a refused request, drains the client before closing."""

    error_task_class = staticmethod(_error_task)
    linger_on_close = False
    _lingering = False
    _linger_until = 0.0
    _drained = 0

    def handle_close(self) -> None:
        if self.linger_on_close and not self._lingering and self.connected and not self.total_outbufs_len:
            try:
                self.socket.shutdown(socket.SHUT_WR)  # the answer is complete: the client sees its end
            except OSError:
                return super().handle_close()
            self._lingering = True
            self.will_close = False
            self._linger_until = time.monotonic() + LINGER_SECONDS
            return None
        return super().handle_close()

    def readable(self) -> bool:
        if not self._lingering:
            return super().readable()
        if time.monotonic() > self._linger_until:
            self.will_close = True
        return not self.will_close

    def writable(self) -> bool:
        return self.will_close if self._lingering else super().writable()

    def handle_read(self) -> None:
        if not self._lingering:
            return super().handle_read()
        try:
            data = self.recv(self.adj.recv_bytes)  # at the client's end: recv closes the channel
        except OSError:
            return super().handle_close()
        self._drained += len(data)
        if self._drained > LINGER_BYTES:
            super().handle_close()
        return None


def buffer_limit(max_body_bytes: int) -> int:
    """What waitress may buffer of a body whose limit is ``max_body_bytes``.

    The app checks the exact limit (Flask's MAX_CONTENT_LENGTH); waitress refuses a declared
    length equal to its own limit and counts the framing of chunked bodies, so it gets some room.
    """
    return max_body_bytes + max(max_body_bytes // 16, 64 * 1024)


def make_server(app: Callable, *, host: str, port: int, threads: int, max_body_bytes: int):
    """A waitress server for ``app`` (bodies up to ``max_body_bytes``) whose connections are
    :class:`LingeringChannel`."""
    sockets: dict = {}
    server = create_server(app, map=sockets, host=host, port=port, threads=threads,
                           max_request_body_size=buffer_limit(max_body_bytes))
    for listener in list(sockets.values()):  # one per listening address
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = LingeringChannel
    return server


def serve(app: Callable, *, host: str, port: int, threads: int, max_body_bytes: int) -> None:
    """Serve ``app`` until interrupted (waitress, as ``waitress.serve`` does, with the channels above)."""
    logging.basicConfig()
    make_server(app, host=host, port=port, threads=threads, max_body_bytes=max_body_bytes).run()
