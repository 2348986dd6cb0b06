"""The lease-owner prefix of this process, shared by its coordinators and its queue workers."""

from __future__ import annotations

import os
import socket
import uuid

_PROCESS_OWNER: tuple[int, str] | None = None


def process_owner() -> str:
    """The lease-owner prefix of this process: host, pid and a random token (new after a fork).

    Every coordinator of one process shares it, so a sweep from one (say the service's check-stalled) never
    mistakes the leases of another (the service's running batch) for those of a dead process.
    """
    global _PROCESS_OWNER
    if _PROCESS_OWNER is None or _PROCESS_OWNER[0] != os.getpid():
        _PROCESS_OWNER = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    return _PROCESS_OWNER[1]


__all__ = ["process_owner"]
