"""Moved to :mod:`nbaprops.holder` (issue 19): the holder protocol lives below both the CLI and the service.

# re-export until the issue-19 branches merge
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nbaprops.config import Settings
from nbaprops.holder import (
    SERVE,
    Holder,
    HolderGoneError,
    endpoint_file,
    held_error,
    holder_activity,
    unsafe_folder,
)
from nbaprops.holder import submit_batch as _submit_batch


def submit_batch(
    settings: Settings,
    args: Mapping[str, Any],
    *,
    on_message: Callable[[str], None],
    on_start: Callable[[str, int], None],
    on_progress: Callable[[dict[str, int]], None],
) -> dict[str, Any]:
    """:func:`nbaprops.holder.submit_batch` under its old signature (settings instead of the path)."""
    return _submit_batch(
        settings.db_path, args, on_message=on_message, on_start=on_start, on_progress=on_progress
    )


__all__ = [
    "SERVE",
    "Holder",
    "HolderGoneError",
    "endpoint_file",
    "held_error",
    "holder_activity",
    "submit_batch",
    "unsafe_folder",
]
