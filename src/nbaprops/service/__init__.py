"""The service: the coordinator's operations over HTTP, a live dashboard, and reads while work runs.

- :mod:`nbaprops.service.routers.holder` — this process holds the database: other commands reach it (the
  protocol is :mod:`nbaprops.holder`'s, below the CLI and this package).
- :mod:`nbaprops.service.runner` — batches run in the background of the serving process.
- :mod:`nbaprops.service.app` — the FastAPI application (``/v1`` API, dashboard, health, metrics); needs the
  ``service`` extra (``pip install 'nbaprops[service]'``).
- :mod:`nbaprops.service.server` — ``nbaprops serve``: binds, runs uvicorn, stops cleanly on SIGTERM.

Like the CLI, this package is a thin adapter: every operation is a call to the same library function.
"""
