"""The ``nbaprops`` command line (Typer + Rich): each command parses, calls one library function, renders.

Every command takes ``--db PATH`` (default ``var/nbaprops.duckdb``, or ``NBAPROPS_DB_PATH``) and ``--json``
for one machine-readable object on stdout. Errors cross one boundary (:func:`nbaprops.cli.boundary.errors`): a
known error prints ``Error: ...`` on stderr (with ``--json``: ``{"error": ..., "kind": ...}`` on stdout) and
exits 1; an unexpected one prints ``Error: internal error: ...`` and exits 2 (the traceback only with
``--debug``); Ctrl-C stops the workers after their current chunk and exits 130.

Modules: :mod:`~nbaprops.cli.app` (the app, its options and the table of commands), :mod:`~nbaprops.cli.boundary`
(the error boundary, the clock, dates, settings), :mod:`~nbaprops.cli.opening` (opening the database, here or
through the process holding it), :mod:`~nbaprops.cli.render` (tables and JSON), :mod:`~nbaprops.cli.options`,
and one module per group of commands.
"""

from nbaprops.cli.app import app, main

__all__ = ["app", "main"]
