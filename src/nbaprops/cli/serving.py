"""The commands that keep running or set up a deployment: ``serve``, ``worker`` and ``gcp setup``."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from nbaprops.cli import render
from nbaprops.cli.boundary import errors, settings
from nbaprops.cli.opening import _announce_new_store
from nbaprops.cli.options import DbOpt, JsonOpt
from nbaprops.cli.render import err, out
from nbaprops.errors import InputError
from nbaprops.storage import capabilities, open_gcp, setup_gcp


def serve(
    host: Annotated[
        str | None,
        typer.Option(show_default=False, help="Address to listen on [default: 127.0.0.1, the host setting]."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, show_default=False, help="Port [default: 8080, the port setting]."),
    ] = None,
    db: DbOpt = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='Print {"url": ..., "db": ...} on stdout once listening (errors as JSON too).'
        ),
    ] = False,
) -> None:
    """Serve the /v1 API, the dashboard and /metrics over HTTP; batches run in this process (docs/service.md).

    Without an API key (NBAPROPS_API_KEYS) it only listens on loopback. SIGTERM stops it cleanly; running
    batches resume at the next start.
    """
    with errors(as_json):
        current = settings(db, host=host, port=port)
        try:
            from nbaprops.service.server import serve as run_server  # the optional extra `service`
        except ImportError as exc:
            raise InputError(
                f"nbaprops serve needs the service extra ({exc.name} is missing): "
                "pip install 'nbaprops[service]'"
            ) from None
        _announce_new_store(current)
        logging.getLogger("nbaprops").setLevel(logging.INFO)

        def on_ready(url: str) -> None:
            if as_json:
                print(json.dumps({"url": url, "db": str(current.db_path)}), flush=True)
            else:
                err.print(
                    f"serving {current.db_path} at {url} (dashboard /, API /docs); Ctrl-C or SIGTERM stops",
                    highlight=False,
                    soft_wrap=True,
                )

        run_server(current, on_ready=on_ready)


def worker(
    threads: Annotated[int, typer.Option(min=1, max=64, help="Chunks handled at once by this process.")] = 1,
    idle_exit: Annotated[
        float | None,
        typer.Option(
            min=0,
            show_default=False,
            help="Exit after this many seconds without a message [default: run until SIGTERM or Ctrl-C].",
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pull work from Pub/Sub and predict it (backend gcp; run as many as you like, anywhere; docs/cloud.md).

    Each message is a chunk of a batch's players: the worker claims them in the Firestore ledger, builds their
    features with DuckDB from the history it loads from BigQuery, predicts with the models in data_dir, loads
    the rows into the batch's staging table and completes the requests, then acknowledges. SIGTERM or Ctrl-C:
    the current chunk finishes, nothing more is pulled.
    """
    from nbaprops.pipeline.queue_worker import (
        run_queue_workers,  # heavy: the prediction systems (lightgbm, scikit-learn, scipy)
    )

    with errors(as_json):
        current = settings(db)
        if not capabilities(current.backend).remote_workers:
            raise InputError(
                "nbaprops worker pulls work from Pub/Sub (backend gcp); on the embedded backend the workers "
                "run inside `nbaprops predict` and `nbaprops serve` (set NBAPROPS_BACKEND=gcp, docs/cloud.md)"
            )
        logging.getLogger("nbaprops").setLevel(logging.INFO)
        backend = open_gcp(current)
        try:
            if not as_json:
                err.print(
                    f"worker pulling {backend.names.subscription_path} ({threads} thread(s)); Ctrl-C or SIGTERM stops"
                )
            stats = run_queue_workers(backend, current, threads=threads, idle_exit=idle_exit)
        finally:
            backend.close()
        result = {
            "chunks": sum(s.chunks for s in stats),
            "committed": sum(s.committed for s in stats),
            "lost": sum(s.lost for s in stats),
            "rows_staged": sum(s.rows_staged for s in stats),
            "transient_errors": sum(s.transient_errors for s in stats),
        }
        render.emit(result, as_json, lambda: render.render_summary("worker", result))


def gcp_setup(
    location: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            help="Location of the BigQuery dataset when it is created (e.g. US, EU, us-central1) "
            "[default: BigQuery's, US].",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create the work topic, the dead-letter topic, their subscriptions (with the dead-letter policy), the
    BigQuery dataset and its main and input tables, from the settings (gcp_project, pubsub_topic,
    bigquery_dataset…); print what was created. Idempotent: what exists is left as it is.

    Run it once per deployment with an account allowed to create them (roles/pubsub.editor and
    roles/bigquery.user). `predict`, `worker` and `serve` only check at start that what they use exists, and
    name what is missing; their accounts need no role that creates (docs/cloud.md).
    """
    with errors(as_json):
        current = settings(None)
        created = setup_gcp(current, location=location)
        result = {"project": current.gcp_project, "created": created}

        def show() -> None:
            for item in created:
                out.print(f"created {item}", markup=False, highlight=False, soft_wrap=True)
            if not created:
                out.print(
                    f"nothing to create in project {current.gcp_project}: every topic, subscription, dataset "
                    "and table exists",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )

        render.emit(result, as_json, show)


__all__ = ["gcp_setup", "serve", "worker"]
