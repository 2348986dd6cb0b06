"""``nbaprops serve``: open the database, listen, stop cleanly.

- Without any API key configured the service refuses to listen anywhere but loopback: an open write endpoint
  must never face a network.
- The database is opened before anything listens, so a file held by another process fails at once (naming the
  holder), and it stays open in this one process until the end.
- SIGTERM (or Ctrl-C): event streams end, the server stops accepting, running batches stop claiming and commit
  their current chunk, this process's leases go back to pending, the database is checkpointed and closed. The
  next start resumes every batch the ledger says is running.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from nbaprops.clock import Clock
from nbaprops.config import Settings
from nbaprops.errors import ConfigError
from nbaprops.service.app import create_app
from nbaprops.service.runtime import Runtime
from nbaprops.storage import open_backend

log = logging.getLogger(__name__)
GRACEFUL_SECONDS = 10


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``localhost``, 127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Refuse a non-loopback address when no API key is configured.

    Raises:
        ConfigError: what to do instead.
    """
    if not settings.api_keys and not is_loopback(settings.host):
        raise ConfigError(
            f"refusing to listen on {settings.host} without an API key: anyone who can reach it could start "
            f"and finish batches. Set NBAPROPS_API_KEYS (comma-separated keys), or listen on 127.0.0.1"
        )


class Server(uvicorn.Server):
    """uvicorn's server, which records its own URL for other commands once it listens (the endpoint record of
    :mod:`nbaprops.holder`: the database's holder answers them on an internal route of the app, no second
    server), and tells the runtime to end its event streams as soon as a stop signal arrives (uvicorn waits for
    open connections before the lifespan's shutdown runs)."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self.runtime = runtime

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.servers and self.servers[0].sockets:
            self.runtime.publish(local_url(self.servers[0].sockets[0].getsockname()))

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.runtime.draining.set()
        super().handle_exit(sig, frame)


def local_url(address: tuple[Any, ...]) -> str:
    """The URL a process of this machine reaches a socket bound to ``address`` at (a wildcard address through
    loopback)."""
    host, port = str(address[0]), int(address[1])
    if ipaddress.ip_address(host).is_unspecified:
        host = "::1" if ":" in host else "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    settings: Settings, *, clock: Clock | None = None, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve ``settings.db_path`` on ``settings.host:settings.port`` until a stop signal (see the module
    docstring).

    Raises:
        ConfigError: a non-loopback address without an API key.
        StorageBusyError: the database is held by another process (``DatabaseHeldError`` when it is nbaprops).
        ConfigError: backend gcp, and a resource of the deployment is missing (``nbaprops gcp setup``).
    """
    check_bind(settings)
    runtime = Runtime(settings, clock=clock)
    storage = runtime.open()
    # A missing topic or dataset (GCP) stops the start in one line here, not in a traceback from uvicorn's lifespan.
    backend = open_backend(settings, inputs=storage)
    if not backend.capabilities.ledger_in_inputs:  # the embedded backend is the file, which the runtime keeps
        backend.close()
    app = create_app(settings, runtime=runtime)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        lifespan="on",
    )
    server = Server(config, runtime)
    if on_ready is not None:
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        on_ready(f"http://{host}:{settings.port}/")
    try:
        server.run()
    finally:
        runtime.stop()  # idempotent; closes the database if the lifespan never ran (a port already in use)


__all__ = ["Server", "check_bind", "is_loopback", "local_url", "serve"]
