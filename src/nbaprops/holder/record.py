"""The endpoint record: where the process holding a database listens, with its pid and token.

The record is ``<db>.endpoint.json``, beside the database. The token in it runs every operation of the holder
(``consolidate``, ``finish``, ``submit``... without an API key), so:

- it is written only in a folder no other user can create, replace or link names in (:func:`unsafe_folder`);
- it is created under a fresh random name with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 0600, then renamed
  over the record (a rename replaces a symlink, never the file it points to);
- a client trusts it only when it is this user's own private regular file (:func:`read_record`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENDPOINT_SUFFIX = ".endpoint.json"
_MAX_RECORD_BYTES = 64 << 10


def endpoint_file(db_path: Path) -> Path:
    """Where the holder of ``db_path`` records its endpoint."""
    return db_path.with_name(db_path.name + ENDPOINT_SUFFIX)


def unsafe_folder(folder: Path) -> str | None:
    """Why another user could plant or swap the endpoint record in ``folder``; None when only its owner can.

    A folder owned by this user (or root) and writable by no other user (nor by a group, unless it is this
    user's private group) qualifies. A sticky folder such as ``/tmp`` does not: others can still create the
    name first.
    """
    try:
        info = os.stat(folder)
    except OSError as exc:
        return f"its folder cannot be inspected ({exc.strerror})"
    if info.st_uid not in (os.geteuid(), 0):
        return "its folder belongs to another user"
    if info.st_mode & stat.S_IWOTH or (info.st_mode & stat.S_IWGRP and not private_group(info.st_gid)):
        return (
            "its folder is writable by other users (chmod go-w it, or keep the database in a private folder)"
        )
    return None


def private_group(gid: int) -> bool:
    """Whether group ``gid`` is this user's own (a user private group, as umask 002 systems make them: no other
    member, no other user's primary group), so that its write permission lets nobody else in."""
    import grp  # Unix only, and needed only for a group-writable folder
    import pwd  # Unix only, as grp above

    me = os.geteuid()
    try:
        name = pwd.getpwuid(me).pw_name
        members = set(grp.getgrgid(gid).gr_mem)
    except KeyError:
        return False
    others = any(user.pw_gid == gid and user.pw_uid != me for user in pwd.getpwall())
    return gid == os.getegid() and members <= {name} and not others


def read_record(path: Path) -> dict[str, Any]:
    """The record at ``path`` if it is a regular file of this user's that nobody else can read or write.

    Raises:
        OSError: missing, a symlink, or not this user's own private file.
        ValueError: not a JSON object.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise PermissionError(f"{path.name} is not this user's private file")
        record = json.loads(handle.read(_MAX_RECORD_BYTES))
    if not isinstance(record, dict):
        raise ValueError("not a record")
    return record


def write_record(db_path: Path, record: Mapping[str, Any]) -> None:
    """Write ``record`` where clients of ``db_path`` look for it, atomically and for this user alone.

    Raises:
        PermissionError: the folder is writable by others (the reason is the message).
        OSError: the record could not be written.
    """
    path = endpoint_file(db_path)
    why = unsafe_folder(path.parent)
    if why is not None:
        raise PermissionError(why)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(dict(record), handle)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def remove_record(db_path: Path, token: str) -> None:
    """Remove the record of ``db_path`` if it is still the one carrying ``token`` (a later holder's stays)."""
    path = endpoint_file(db_path)
    with contextlib.suppress(OSError, ValueError, KeyError):
        if read_record(path)["token"] == token:
            path.unlink()


__all__ = [
    "ENDPOINT_SUFFIX",
    "endpoint_file",
    "private_group",
    "read_record",
    "remove_record",
    "unsafe_folder",
    "write_record",
]
