"""Serving the update repository to terminals over HTTP: static files, nothing else.

TUF needs no trust in the transport (every byte a terminal keeps is checked against signed
metadata), so a plain static file server is enough. Two ways to serve
:attr:`~shouyin.fleet.updates.repository.UpdateRepository.served_dir`:

* :class:`RepositoryServer`: a small threaded HTTP server of its own (``shouyin update serve``,
  the tests), on loopback unless told otherwise;
* :func:`mount_update_repository`: a static route in the web app (one call for the web part).

Only ``repository/`` is served: the keys are beside it, never under it.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["UPDATES_PATH", "RepositoryServer", "mount_update_repository"]

logger = logging.getLogger(__name__)

UPDATES_PATH = "/updates"
"""Where the web app serves the repository."""


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files, logged through the module logger instead of stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def list_directory(self, path: str | os.PathLike[str]) -> None:
        self.send_error(404)  # no listings: terminals ask for exact names


class RepositoryServer:
    """Serve ``directory`` over HTTP in a background thread (``with`` it, or start and close).

    Args:
        directory: the repository's served directory.
        host: the address to bind (loopback by default).
        port: the port (0: any free one).
    """

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL terminals are given (metadata under ``/metadata/``)."""
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}"

    def start(self) -> Self:
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(
            # A short poll interval: close() (shutdown) waits for at most one of them.
            target=functools.partial(self._server.serve_forever, poll_interval=0.05),
            name="update-repository",
            daemon=True,
        )
        self._thread.start()
        logger.info("serving the update repository at %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`close` (from another thread) or an interrupt."""
        self._server.serve_forever()

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5.0)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def mount_update_repository(app: FastAPI, directory: Path, path: str = UPDATES_PATH) -> None:
    """Serve the repository's ``directory`` at ``path`` in the web app (static files only).

    Terminals are then given ``<web base URL><path>`` as the repository URL.
    """
    from fastapi.staticfiles import StaticFiles

    directory.mkdir(parents=True, exist_ok=True)
    app.mount(path, StaticFiles(directory=directory), name="update-repository")
