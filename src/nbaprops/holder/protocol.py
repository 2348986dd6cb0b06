"""What a holder and its clients agree on: the route, the token header, the body, the error that means "open
the file again".

A client POSTs ``{record url}{ROUTE}<operation>`` with the operation's arguments as a JSON object and the
record's token in :data:`TOKEN_HEADER`. The answer is ``{"result": ...}`` (200), or an error record
(:func:`nbaprops.errors.to_wire`) with 400 for an nbaprops error, 403 for a wrong token, 404 for an unknown
operation, 500 for anything else (no text of it), 503 with kind ``HolderGoneError`` while the holder closes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from nbaprops.errors import StorageBusyError

ROUTE = "/_holder/"
TOKEN_HEADER = "X-Nbaprops-Token"
SERVE = "nbaprops serve"  # the holder name of the service, which also runs submitted batches
MAX_BODY_BYTES = 1 << 20
GONE = "HolderGoneError"


class HolderGoneError(StorageBusyError):
    """The recorded holder stopped answering (it is closing, or died): open the file again."""


def encode(payload: Mapping[str, Any]) -> bytes:
    """A body of the protocol: JSON, dates and the like as their text (as the CLI prints them)."""
    return json.dumps(payload, default=str).encode()


__all__ = ["GONE", "MAX_BODY_BYTES", "ROUTE", "SERVE", "TOKEN_HEADER", "HolderGoneError", "encode"]
