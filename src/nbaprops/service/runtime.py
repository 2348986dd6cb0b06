"""What one serving process holds: the database (opened once), the batch runner, the holding (other commands'
operations on the database, answered at the service's own URL: :mod:`nbaprops.holder`).

On the embedded backend the database is the whole deployment. With ``backend = "gcp"`` the file holds the
inputs the coordinator plans from (and uploads to BigQuery before each batch), and the batches, requests and
predictions are Firestore's and BigQuery's: every operation runs on :attr:`Runtime.backend`, the seams of
whichever backend the settings name, and ``nbaprops worker`` processes do the work.

:meth:`Runtime.start` and :meth:`Runtime.stop` are the service's lifespan. Database work runs on two fixed
pools of threads, one for reads (:meth:`Runtime.db`, :meth:`Runtime.read`) and one for writes
(:meth:`Runtime.write`): each thread keeps its own DuckDB cursor, so bounded pools mean a bounded number of
cursors however many requests come, the event loop never waits on the database, and reads never queue behind
writes (a flood of batch submissions or an upload being ingested does not delay a status read).

An upload is ingested under the store's memory bound, as every ingest is (the loader's,
:meth:`~nbaprops.storage.inputs.Inputs.bounded_memory`): DuckDB spills what does not fit to its temporary
folder beside the file instead of growing the process by gigabytes for a large file (and keeping them); the
bound is lifted when no ingest runs, so batches are not slowed by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from nbaprops import holder, schema
from nbaprops.clock import Clock, SystemClock
from nbaprops.config import Settings
from nbaprops.errors import NbapropsError, StorageBusyError
from nbaprops.ingest import ensure_boxscores
from nbaprops.pipeline import ledger
from nbaprops.pipeline.run import BatchRun
from nbaprops.service.metrics import Metrics
from nbaprops.service.operations import OPERATIONS
from nbaprops.service.runner import BatchRunner
from nbaprops.storage import open_backend, open_storage, retry_transient
from nbaprops.storage.inputs import Store
from nbaprops.storage.seams import Backend
from nbaprops.systems.training import BUNDLE_FILE

log = logging.getLogger(__name__)
READ_CACHE_SECONDS = 0.5  # how long a read is reused as it is (see Runtime.read)
READ_STALE_SECONDS = 2.0  # how long after that it is still answered while a refresh runs
# A read whose version the work vouches for (see Runtime.read) is reused this long at most, as a safety net.
READ_VERSIONED_SECONDS = 10.0
WRITE_THREADS = 4  # writes serialise on DuckDB's single writer anyway; more threads would only queue
P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class _Read:
    """One cached read: its last value, until when it is fresh, the refresh under way."""

    expires: float = 0.0
    value: Any = None
    has_value: bool = False
    pending: asyncio.Future[Any] | None = None
    version: Hashable = None  # the version the value was read at
    read_at: float = 0.0


def _consume_error(future: asyncio.Future[Any]) -> None:
    """A refresh nobody awaited (its callers got the previous value) must not log "never retrieved"."""
    if not future.cancelled():
        future.exception()


class Runtime:
    """The state of one service (see the module docstring).

    Args:
        settings: every setting; ``db_path`` is the file this process holds.
        clock: time source of the batches and of TODAY / TOMORROW.
        db_threads: threads that run database work for requests.
    """

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, db_threads: int | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self.stopping = threading.Event()
        self.draining = threading.Event()  # set on SIGTERM: event streams end so the server can stop
        self._db_threads = db_threads or min(8, 2 * (os.cpu_count() or 2))
        self._pool: ThreadPoolExecutor | None = None  # reads
        self._write_pool: ThreadPoolExecutor | None = None
        self._storage: Store | None = None
        self._backend: Backend | None = None  # the file itself (embedded), or the cloud seams beside it (gcp)
        self._runner: BatchRunner | None = None
        self.holding: holder.Holding | None = None  # set once started; published once the server listens
        self._stopped = False
        self._reads: dict[Hashable, _Read] = {}

    @property
    def storage(self) -> Store:
        if self._storage is None or self.stopping.is_set():
            raise StorageBusyError("the service is not holding its database (starting or stopping); retry")
        return self._storage

    @property
    def backend(self) -> Backend:
        """The seams batches and reads run on: the database itself, or (gcp) Firestore, BigQuery, Pub/Sub."""
        self.storage  # noqa: B018 -- raises while starting or stopping
        if self._backend is None:
            raise StorageBusyError("the service is starting; retry")
        return self._backend

    @property
    def runner(self) -> BatchRunner:
        if self._runner is None:
            raise StorageBusyError("the service is starting; retry")
        return self._runner

    def open(self) -> Store:
        """Open the database (once): a held file fails here, before anything listens."""
        if self._storage is None:
            try:
                self._storage = open_storage(self.settings.db_path)
            except StorageBusyError as exc:
                held = holder.held_error(self.settings.db_path, exc)
                if held is exc:
                    raise
                raise held from exc
        return self._storage

    def start(self) -> None:
        """Open the database, load the shipped box scores if new, resume running batches. Other commands reach
        it once the server listens and :meth:`publish` recorded where."""

        storage = self.open()
        ensure_boxscores(storage)
        backend = self._backend = open_backend(self.settings, inputs=storage)
        self._pool = ThreadPoolExecutor(max_workers=self._db_threads, thread_name_prefix="nbaprops-db")
        self._write_pool = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="nbaprops-write")
        self.metrics.watch(backend)
        self._runner = BatchRunner(backend, self.settings, clock=self.clock, on_finished=self._observe)
        self.holding = holder.Holding(
            self.settings.db_path,
            holder=holder.SERVE,
            commands=holder.bind(OPERATIONS, backend, self.settings),
            internal=holder.bind(self._runner.endpoint_operations(), backend, self.settings),
        )
        self._runner.resume_running()
        log.info(
            "serving %s%s",
            self.settings.db_path,  # the server's own log, not a response
            f" (backend gcp: project {self.settings.gcp_project}, dataset {self.settings.bigquery_dataset})"
            if not backend.capabilities.ledger_in_inputs
            else "",
        )

    def publish(self, url: str) -> None:
        """Record ``url`` (the server's own, listening now) as where other commands reach this database."""
        if self.holding is not None and not self.stopping.is_set():
            self.holding.publish(url)

    def stop(self) -> None:
        """Stop claiming, give back leases, stop answering reads, close the database (once)."""
        if self._stopped:
            return
        self._stopped = True
        self.draining.set()
        self.stopping.set()
        try:
            if self._runner is not None:
                self._runner.stop()
        except (
            NbapropsError
        ) as exc:  # a full disk refuses the lease release: still stop, and remove the record
            log.warning("stopping: leases not released (%s: %s); they expire", type(exc).__name__, exc)
        finally:
            if self.holding is not None:
                self.holding.withdraw()
        for pool in (self._pool, self._write_pool):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        if self._backend is not None and not self._backend.capabilities.ledger_in_inputs:
            with contextlib.suppress(
                Exception
            ):  # the cloud seams; the embedded backend is the file, closed below
                self._backend.close()
        self._backend = None
        if self._storage is not None:
            with contextlib.suppress(Exception):
                self._storage.execute("CHECKPOINT")
            self._storage.close()
            self._storage = None
        log.info("stopped; the database is closed")

    async def db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the read ``fn`` on a read thread and wait for it without blocking the event loop."""
        return await self._on(self._pool, functools.partial(fn, *args, **kwargs))

    async def _on(self, pool: ThreadPoolExecutor | None, call: Callable[[], T]) -> T:
        if pool is None or self.stopping.is_set():
            raise StorageBusyError("the service is starting or stopping; retry")
        return await asyncio.get_running_loop().run_in_executor(pool, call)

    async def read(self, key: Hashable, fn: Callable[[], T], *, version: Hashable = None) -> T:
        """``fn()`` on a database thread, shared by every identical read for :data:`READ_CACHE_SECONDS`.

        Two hundred dashboards polling one batch cost one query per period, not two hundred: concurrent calls
        with the same key share one computation, and its result is reused for a moment. Once that moment has
        passed, the next call starts a refresh and, for up to :data:`READ_STALE_SECONDS` more, callers get the
        previous answer at once instead of queueing behind the refresh (stale-while-revalidate). A read may
        thus lag the ledger by a second or two; any write through the service clears the cache, so a client
        reads its own writes.

        ``version``: what the work that changes this read says of it (:meth:`version_of`): while it is the
        one the value was read at, the value is answered without any query, however old (up to
        :data:`READ_VERSIONED_SECONDS`); once it moves, the rules above apply.
        """
        if self.stopping.is_set():
            raise StorageBusyError("the service is stopping; retry")
        loop = asyncio.get_running_loop()
        now = loop.time()
        entry = self._reads.get(key)
        if entry is None:
            if len(self._reads) > 1024:  # many distinct queries: keep only those still fresh
                self._reads = {k: v for k, v in self._reads.items() if now < v.expires or v.pending}
            entry = self._reads[key] = _Read()
        if entry.has_value and (
            now < entry.expires
            or (
                version is not None
                and version == entry.version
                and now < entry.read_at + READ_VERSIONED_SECONDS
            )
        ):
            return entry.value  # type: ignore[no-any-return]
        if entry.pending is None:
            entry.pending = asyncio.ensure_future(self._refresh(entry, fn, version))
            entry.pending.add_done_callback(_consume_error)
        if entry.has_value and now < entry.expires + READ_STALE_SECONDS:
            return entry.value  # type: ignore[no-any-return]
        return await asyncio.shield(entry.pending)

    async def _refresh(self, entry: _Read, fn: Callable[[], Any], version: Hashable) -> Any:
        started = asyncio.get_running_loop().time()
        try:
            value = await self.db(fn)
        finally:
            entry.pending = None
        entry.value, entry.has_value, entry.version, entry.read_at = value, True, version, started
        entry.expires = asyncio.get_running_loop().time() + READ_CACHE_SECONDS
        return value

    def version_of(self, batch_id: str | None = None) -> Hashable:
        """The version of the reads the batch runs here change (``batch_id``: the batch's own detail; None:
        what any batch's end changes, such as a board): it moves whenever the work's snapshot of that batch
        does or a run here ends. ``None`` (no version: time alone decides) for a batch not run here, or whose
        run failed or stopped."""
        runner = self.runner
        if batch_id is None:
            return ("runs", runner.generation)
        job = runner.job(batch_id)
        if job is None or job.phase in ("failed", "stopped"):
            return None
        return ("batch", job.phase, job.version, runner.generation)

    async def write(self, fn: Callable[[], T], *, forget_reads: bool = True) -> T:
        """``fn()`` on a write thread, retried on a transient conflict (the running batch writes too);
        the read cache is cleared after it, so the writer reads its own write (``forget_reads=False``: the
        caller clears it when something changed, so refused writes cannot defeat the cache)."""
        try:
            return await self._on(self._write_pool, functools.partial(retry_transient, fn))
        finally:
            if forget_reads:
                self.forget_reads()

    def forget_reads(self) -> None:
        """Clear the read cache (after a write)."""
        self._reads.clear()

    def _observe(self, run: BatchRun) -> None:
        if self._storage is not None:  # a batch consolidated: writes go through again (readiness)
            self._storage.writes_resumed()
        info = ledger.get_batch(self.backend, run.summary.batch_id)
        duration = ((info.summary or {}).get("consolidation") or {}).get("duration_s")
        if isinstance(duration, int | float):
            self.metrics.consolidation.observe(float(duration))

    def observe_consolidation(self, batch_id: str, already: bool) -> None:
        """Record the consolidation an API call ran (nothing when the batch was consolidated before)."""
        if not already:
            info = ledger.get_batch(self.backend, batch_id)
            duration = ((info.summary or {}).get("consolidation") or {}).get("duration_s")
            if isinstance(duration, int | float):
                self.metrics.consolidation.observe(float(duration))

    def readiness(self) -> dict[str, dict[str, Any]]:
        """Checks behind ``/health/ready``: database open, schema current, models present or trainable, and
        (backend gcp) Firestore and BigQuery reachable."""

        checks: dict[str, dict[str, Any]] = {}
        try:
            storage = self.storage
            storage.scalar("SELECT 1")
            checks["database"] = {"ok": True, "detail": f"{self.settings.db_path.name} is open"}
        except Exception as exc:  # readiness reports, it never raises
            checks["database"] = {"ok": False, "detail": self.without_paths(str(exc))}
            return checks
        missing = [
            f"{t.name}.{c}"
            for t in schema.ALL_TABLES
            for c in sorted(set(t.column_names) - set(storage.table_columns(t.name)))
        ]
        checks["schema"] = {
            "ok": not missing,
            "detail": "every contract table and column exists"
            if not missing
            else f"missing: {', '.join(missing[:10])}",
        }
        artifacts = sum(1 for _ in self.settings.artifacts_dir.glob(f"*/*/{BUNDLE_FILE}"))
        box_scores = int(storage.scalar("SELECT count(*) FROM box_scores") or 0)
        checks["models"] = {
            "ok": artifacts > 0 or box_scores > 0,
            "detail": f"{artifacts} trained artifact(s)"
            if artifacts
            else f"none trained yet; trainable from {box_scores} box-score rows"
            if box_scores
            else "no artifact and no box score to train on",
        }
        if self._backend is not None and not self._backend.capabilities.ledger_in_inputs:
            try:
                running = len(self._backend.ledger.list_batches(state="running"))
                self._backend.warehouse.staging_tables()
                checks["cloud"] = {
                    "ok": True,
                    "detail": f"Firestore and BigQuery answer ({running} batch(es) running)",
                }
            except Exception as exc:  # readiness reports, it never raises
                checks["cloud"] = {"ok": False, "detail": self.without_paths(str(exc))}
        return checks

    def without_paths(self, text: str) -> str:
        """``text`` with the server's folders cut from every path it names (readiness is not authenticated:
        it says which file, never where it lives)."""
        for folder in sorted(
            {
                str(self.settings.db_path.resolve().parent),
                str(self.settings.db_path.parent),
                str(self.settings.artifacts_dir),
                str(self.settings.artifacts_dir.resolve()),
            },
            key=len,
            reverse=True,
        ):
            if folder not in ("", "."):
                text = text.replace(folder + os.sep, "").replace(folder, "<data folder>")
        return text


__all__ = ["Runtime"]
