"""A fake tracker's HTTP server on 127.0.0.1, in a thread: started, stopped, addressed.

The Jira and Linear fakes (and the benchmarks' load server) share it; each names its own
request handler (:meth:`LocalServer.handler`) and server class.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietServer(ThreadingHTTPServer):
    """A threading server whose handlers reach their fake as ``self.server.fake``."""

    daemon_threads = True
    fake: Any

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (read timeout, reset) is part of the tests


class LocalServer:
    """Start and stop a fake's server; ``with fake:`` does both."""

    server_class: type[QuietServer] = QuietServer
    _server: QuietServer | None = None
    _thread: threading.Thread | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        server = self.server_class(("127.0.0.1", 0), self.handler())
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"
