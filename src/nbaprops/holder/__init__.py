"""Reads while work runs: the process that holds a database answers other commands' operations on it.

DuckDB lets one process at a time hold a file for writing, and a second process cannot even read it. So the
holder — ``nbaprops serve``, or any CLI command that opened the file for writing, such as a long ``predict`` —
writes where it listens, with its pid and a random token, beside the database (``<db>.endpoint.json``, this
user's private file, :mod:`.record`), like Jupyter's connection file or Dask's scheduler file. A command that
finds the file locked by that pid sends its operation there instead of opening the file (:mod:`.client`, one
retry loop with one bound); the holder runs the very same function on its own connection and sends the result
back (:mod:`.endpoint`), so the command prints what it would have printed itself, and an error comes back as
the same class with the same attributes (:func:`nbaprops.errors.to_wire`). ``nbaprops serve`` answers on an
internal route of its own app at its own URL; the CLI's holders run a small loopback server of the standard
library. A holder that is not nbaprops (no record for the pid in DuckDB's lock error) still gives the lock
error, with its pid.

Only the standard library and :mod:`nbaprops.errors` are imported here: the CLI reaches a holder without the
``service`` extra, and this package knows nothing of the CLI or the service above it.
"""

from nbaprops.holder.client import (
    Answered,
    Holder,
    held_error,
    holder_activity,
    open_or_reach,
    submit_batch,
)
from nbaprops.holder.endpoint import (
    Endpoint,
    Holding,
    Operation,
    Refused,
    answer_reads,
    bind,
    failure_answer,
)
from nbaprops.holder.protocol import ROUTE, SERVE, TOKEN_HEADER, HolderGoneError, encode
from nbaprops.holder.record import endpoint_file, unsafe_folder

__all__ = [
    "ROUTE",
    "SERVE",
    "TOKEN_HEADER",
    "Answered",
    "Endpoint",
    "Holder",
    "HolderGoneError",
    "Holding",
    "Operation",
    "Refused",
    "answer_reads",
    "bind",
    "encode",
    "failure_answer",
    "endpoint_file",
    "held_error",
    "holder_activity",
    "open_or_reach",
    "submit_batch",
    "unsafe_folder",
]
