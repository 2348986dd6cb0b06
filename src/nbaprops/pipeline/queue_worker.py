"""Queue workers: the coordinator's own threads on every backend, and (GCP) ``nbaprops worker`` processes.

Each message names a chunk of a batch's players. A worker claims those requests in the ledger (a request
already leased, done or failed is simply not claimed again, so a message delivered twice does no harm),
predicts them with the same :class:`~nbaprops.pipeline.slate.SlatePredictor` as the embedded workers, loads
the rows into staging, completes the requests fenced by attempt, and only then acknowledges the message.
Redelivery is the retry; a worker that dies leaves its leases to expire and the coordinator's sweep returns
them to ``pending`` and publishes them again, so no completion can be lost. After the subscription's maximum
delivery attempts a message goes to the dead-letter topic and the coordinator ends its requests ``failed``.

Features are computed by DuckDB inside the worker: the slice of history a date needs is loaded from the
warehouse into an in-memory DuckDB once per game date (:class:`HistoryCache`), so there is one feature
implementation for both backends.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

from nbaprops.clock import Clock, SystemClock
from nbaprops.config import Settings
from nbaprops.errors import (
    ArtifactError,
    DatabaseInvalidatedError,
    NbapropsError,
    StorageFullError,
    UnknownBatchError,
)
from nbaprops.ingest.lines import select_lines
from nbaprops.pipeline import ledger
from nbaprops.pipeline.injuries import tonight_injuries
from nbaprops.pipeline.owner import process_owner
from nbaprops.pipeline.slate import SlatePredictor
from nbaprops.pipeline.worker import ChunkPredictor, WorkerStats, process_leases
from nbaprops.storage.inputs import Inputs
from nbaprops.storage.seams import Backend, BatchInfo, WorkMessage
from nbaprops.systems.training import ModelBundle, load_latest

log = logging.getLogger(__name__)

# Days of history the feature query reads before a date: this season and the last (season averages, last
# season's form) — a little over two seasons.
HISTORY_DAYS = 800


def _fatal(exc: BaseException) -> bool:
    """An error this process cannot go on after: its storage is full or unusable, or a bug (not an nbaprops
    error: redelivering the chunk would only meet it again)."""
    return isinstance(exc, StorageFullError | DatabaseInvalidatedError) or not isinstance(exc, NbapropsError)


@dataclass
class QueueWorker:
    """Handles queued chunks for one owner id (see the module docstring).

    Attributes:
        fail_fast: a coordinator's own worker: an error the process cannot go on after (a full disk, a bug)
            stops this worker and is kept in :attr:`failure` for the coordinator to raise, instead of letting the
            message come back (``nbaprops worker`` processes leave that to redelivery).
        on_handled: called after every message (the coordinator looks at the batch at once).
    """

    backend: Backend
    settings: Settings
    clock: Clock
    owner: str
    history: Callable[[date], Inputs]
    fail_fast: bool = False
    on_handled: Callable[[], None] | None = None
    failure: BaseException | None = field(default=None, init=False)
    stats: WorkerStats = field(init=False)
    last_message: float = field(default=0.0, init=False)
    busy: bool = field(default=False, init=False)
    _predictors: dict[str, tuple[ChunkPredictor, Inputs]] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.stats = WorkerStats(self.owner)

    def use(self, batch_id: str, predictor: ChunkPredictor, features: Inputs) -> None:
        """Predict ``batch_id`` with ``predictor`` on ``features`` (the coordinator's own in-process workers
        share its slate-wide predictor instead of building one per batch)."""
        with self._lock:
            self._predictors[batch_id] = (predictor, features)

    def handle(self, message: WorkMessage) -> bool:
        """Process one message; True acknowledges it, False lets it come back."""
        try:
            info = ledger.get_batch(self.backend, message.batch_id)
        except UnknownBatchError:
            log.warning("message for unknown batch %s dropped", message.batch_id)
            return True
        if info.consolidated_at is not None or self.clock.now() >= info.deadline_at:
            return True  # the batch has ended (or is past its deadline): nothing of it is claimed any more
        # Ready to predict before claiming: a worker without the batch's models or history (an error here,
        # the message comes back) must not hold leases nobody will complete until they expire.
        predictor, features = self._predictor(info)
        leases = ledger.claim(
            self.backend,
            info.batch_id,
            owner=self.owner,
            limit=len(message.players),
            lease_seconds=self.settings.lease_seconds,
            clock=self.clock,
            players=message.players,
        )
        if not leases:
            return True  # another delivery (or the sweep's re-publish) already took these requests
        try:
            return process_leases(
                self.backend,
                info.batch_id,
                leases,
                owner=self.owner,
                predictor=predictor,
                clock=self.clock,
                stats=self.stats,
                features=features,
            )
        except StorageFullError:
            # Give the chunk back if the disk still takes that small write, so that this very process (the
            # service) can resume the batch once space is freed instead of waiting for the leases to expire.
            with contextlib.suppress(NbapropsError):
                ledger.release(self.backend, info.batch_id, leases, clock=self.clock)
            raise

    def _predictor(self, info: BatchInfo) -> tuple[ChunkPredictor, Inputs]:
        with self._lock:
            cached = self._predictors.get(info.batch_id)
            if cached is None:
                features = self.history(info.game_date)
                bundles = worker_bundles(self.settings, info)
                lines = select_lines(features, info.game_date, info.markets, as_of=info.as_of)
                injuries = tonight_injuries(features, info.game_date, info.as_of)
                cached = (SlatePredictor(info, bundles, lines, self.settings, self.clock, injuries), features)
                self._predictors[info.batch_id] = cached
            return cached

    def run(self, *, stop: threading.Event) -> WorkerStats:
        """Consume messages until ``stop`` is set (or, :attr:`fail_fast`, a fatal error)."""
        self.backend.queue.consume(self._timed, stop=lambda: stop.is_set() or self.failure is not None)
        return self.stats

    def _timed(self, message: WorkMessage) -> bool:
        self.busy = True
        try:
            return self.handle(message)
        except Exception as exc:
            if not (self.fail_fast and _fatal(exc)):
                raise
            # A full disk is reported by the caller (one line, what to do): no traceback for it.
            if isinstance(exc, StorageFullError):
                log.info("worker %s stopped: %s", self.owner, exc)
            else:
                log.exception("worker %s crashed", self.owner)
            self.failure = exc
            return False  # the message comes back: a rerun (a resumed batch) takes it
        finally:
            self.last_message = time.monotonic()
            self.busy = False
            if self.on_handled is not None:
                self.on_handled()


def run_queue_workers(
    backend: HistoryBackend, settings: Settings, *, threads: int = 1, idle_exit: float | None = None
) -> list[WorkerStats]:
    """``nbaprops worker``: ``threads`` queue workers in this process until SIGTERM, Ctrl-C or ``idle_exit``
    seconds without a message. The current chunks finish and commit; nothing more is pulled."""
    clock = SystemClock()
    prefix = process_owner()
    workers = [
        QueueWorker(
            backend,
            settings,
            clock,
            f"{prefix}:q{i}",
            history=lambda day: backend.history(*history_window(day)),
        )
        for i in range(threads)
    ]
    stop = threading.Event()
    pool = [
        threading.Thread(target=w.run, kwargs={"stop": stop}, name=f"nbaprops-worker-{i}", daemon=True)
        for i, w in enumerate(workers)
    ]
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    try:
        for thread in pool:
            thread.start()
        while any(t.is_alive() for t in pool) and not stop.is_set():
            if idle_exit is not None and not any(w.busy for w in workers):  # a long chunk is not idleness
                last = max([started, *(w.last_message for w in workers)])
                if time.monotonic() - last > idle_exit:
                    break
            time.sleep(0.1)
    except KeyboardInterrupt:
        log.info("interrupted: finishing the current chunks")
    finally:
        stop.set()
        for thread in pool:
            thread.join(timeout=settings.lease_seconds)
        signal.signal(signal.SIGTERM, previous)
    return [w.stats for w in workers]


class HistoryBackend(Backend, Protocol):
    """A backend that loads history windows for workers (GCP)."""

    def history(self, since: date, until: date) -> Inputs: ...


def worker_bundles(settings: Settings, info: BatchInfo) -> dict[str, ModelBundle]:
    """The models the coordinator trained for the batch (a worker never trains: every worker must predict
    with the same models). Raises :class:`ArtifactError` naming what is missing."""
    bundles = {}
    for market in info.markets:
        bundle = load_latest(settings.artifacts_dir, market, info.game_date, system_ids=list(info.systems))
        if bundle is None:
            raise ArtifactError(
                f"no {market} model for {info.game_date} in {settings.artifacts_dir}: the coordinator trains it "
                f"when it starts the batch; workers must share its data_dir"
            )
        bundles[market] = bundle
    return bundles


def history_window(game_date: date) -> tuple[date, date]:
    """The dates of history a worker loads for ``game_date``'s features (inclusive)."""
    return game_date - timedelta(days=HISTORY_DAYS), game_date


__all__ = ["QueueWorker", "history_window", "run_queue_workers", "worker_bundles"]
