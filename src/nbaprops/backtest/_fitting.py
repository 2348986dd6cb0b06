"""Fitting the walk-forward's step models in worker processes.

A step's models depend only on the training rows before the step, never on earlier steps' grades (only the
calibration does, and it stays in the parent), so every step can be fitted as soon as the run starts, in
parallel with everything else. Workers are not forked from the parent (it holds a DuckDB connection and thread
pools that a fork would copy mid-state) but from a fork server: a fresh interpreter started with the run, which
imports LightGBM, SciPy and this module once, while the parent builds the training set, then forks the workers
(spawned workers each spent those seconds of CPU again). The server is stopped with the run. Each worker reads
the run's training set once, memory-mapped from an Arrow IPC file in a temporary directory, and sends each
step's fitted bundle (:func:`~nbaprops.systems.training.fit_market`: the same code and the same rows as the
serial path, so the same models). Each worker bins the training set for LightGBM once
(:func:`shared_bins`, the serial path does the same) and every step's fits take their rows from it. A worker
fits a group of consecutive steps (:func:`fit_steps`): the first fitted in full (holdout fits included), the
others refitting its models on their own windows (``gbm`` every other step) and keeping what it learned out of
sample; it sends each step's bundle as soon as it is fitted (a queue), so that the parent can predict the step
while the rest of the group is fitted. The parent takes the bundles in step order and calibrates them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import queue
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nbaprops.errors import ContractError
from nbaprops.markets import MARKET_STAT
from nbaprops.systems.gbm import SharedBins, using_bins
from nbaprops.systems.training import ModelBundle, fit_market, refit_market, training_window

_TRAINING: dict[str, tuple[pa.Table, SharedBins | None]] = {}
_QUEUE: Any = None  # in a fitting process: where it sends each step's bundle (set by _start_worker)


def shared_bins(
    training: pa.Table, market: str, first_step: date, system_ids: tuple[str, ...]
) -> SharedBins | None:
    """LightGBM's bins of the whole ``training`` set (with row ids), learned on the rows before ``first_step``
    — the first step's window, the past of every step; None when no system of ``system_ids`` is ``gbm``."""
    if "gbm" not in system_ids:
        return None
    before = pc.less(training.column("game_date"), pa.scalar(first_step))
    reference = np.asarray(before.to_numpy(zero_copy_only=False), dtype=bool)
    return SharedBins(training, reference, MARKET_STAT[market])


def fit_steps(
    training: pa.Table,
    market: str,
    throughs: list[date],
    *,
    system_ids: tuple[str, ...],
    train_days: int,
    bins: SharedBins | None,
    gbm_every: int,
) -> Iterator[ModelBundle]:
    """The (uncalibrated) bundles of consecutive steps starting on ``throughs``, each on its own window of
    ``training``, one by one. The first is a full fit (:func:`~nbaprops.systems.training.fit_market`: holdout
    fits, then every row); the later ones refit its systems' models on their own window and keep what it learned
    out of sample (:func:`~nbaprops.systems.training.refit_market`), and fit ``gbm`` only every ``gbm_every``
    steps (between two, they serve the last)."""
    bundles: list[ModelBundle] = []
    for i, through in enumerate(throughs):
        rows = training_window(training, through - timedelta(days=train_days), through)
        with using_bins(bins) if bins is not None else contextlib.nullcontext():
            if i == 0:
                bundle = fit_market(rows, market, through, system_ids=system_ids, train_days=train_days)
            else:
                last_gbm = bundles[i - i % gbm_every].systems.get("gbm") if i % gbm_every else None
                kept = {"gbm": last_gbm} if last_gbm is not None else None
                bundle = refit_market(bundles[0], rows, through, train_days=train_days, kept=kept)
        bundles.append(bundle)
        yield bundle


def _start_worker(bundles: Any) -> None:
    """A fitting process's start: the queue it sends each step's bundle on as soon as it is fitted."""
    global _QUEUE
    _QUEUE = bundles
    # A process that ends (the pool's shutdown) does not wait for the parent to read what it sent: after an
    # error in the parent nobody reads it.
    bundles.cancel_join_thread()


def _fit(
    path: str,
    market: str,
    first: int,
    throughs: list[date],
    system_ids: tuple[str, ...],
    train_days: int,
    first_step: date,
    gbm_every: int,
) -> None:
    """Fit the steps ``first, first + 1, ...`` (starting on ``throughs``) and send each bundle with its step."""
    if path not in _TRAINING:
        training = pa.ipc.open_file(pa.memory_map(path)).read_all()
        _TRAINING[path] = (training, shared_bins(training, market, first_step, system_ids))
    training, bins = _TRAINING[path]
    steps = fit_steps(
        training,
        market,
        throughs,
        system_ids=system_ids,
        train_days=train_days,
        bins=bins,
        gbm_every=gbm_every,
    )
    for i, bundle in enumerate(steps):
        _QUEUE.put((first + i, bundle))


class StepFitter:
    """Fits the bundle of every step in ``workers`` processes; the fork server starts (and imports) at once,
    :meth:`submit` forks the workers and queues the steps in step order."""

    def __init__(self, *, workers: int) -> None:
        self._dir: Path | None = None  # made by :meth:`submit`: nothing to leave behind if this raises
        self._workers = workers
        self._context = multiprocessing.get_context("forkserver")
        # What the server imports before it forks anyone (no effect if this process already runs a server).
        self._context.set_forkserver_preload(["__main__", __name__])
        # Returns at once: the server imports while this process builds the training set. Starting the pool
        # here instead would block until those imports end (a worker's start waits for its fork).
        multiprocessing.forkserver.ensure_running()
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future[None]] = []
        self._queue = self._context.Queue()  # (step, bundle) from the workers, each as soon as it is fitted
        self._ready: dict[int, ModelBundle] = {}

    def submit(
        self,
        training: pa.Table,
        market: str,
        step_starts: list[date],
        *,
        system_ids: tuple[str, ...],
        train_days: int,
        holdout_every: int,
        gbm_every: int,
    ) -> None:
        """Queue every step's fit on ``training`` (the rows of all the steps' windows, with row ids), in groups
        of ``holdout_every`` steps (:func:`fit_steps`)."""
        self._dir = Path(tempfile.mkdtemp(prefix="nbaprops-backtest-"))
        path = self._dir / "training.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, training.schema) as writer:
            writer.write_table(training)
        self._pool = ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=self._context,
            initializer=_start_worker,
            initargs=(self._queue,),
        )
        self._futures = [
            self._pool.submit(
                _fit,
                str(path),
                market,
                i,
                step_starts[i : i + holdout_every],
                system_ids,
                train_days,
                step_starts[0],
                gbm_every,
            )
            for i in range(0, len(step_starts), holdout_every)
        ]

    def bundle(self, k: int) -> ModelBundle:
        """The fitted (uncalibrated) bundle of step ``k``; waits for it. A worker's error is raised here.

        Raises:
            ContractError: a fitting process ended abruptly (killed, out of memory, or a script that starts the
                backtest again when the workers import it).
        """
        try:
            while k not in self._ready:
                try:
                    step, fitted = self._queue.get(timeout=0.2)
                except queue.Empty:
                    for future in self._futures:  # a worker's error (or its end) raises here
                        if future.done() and future.exception() is not None:
                            future.result()
                    continue
                self._ready[step] = fitted
            return self._ready.pop(k)
        except BrokenProcessPool as exc:
            raise ContractError(
                "a process fitting the backtest's step models ended abruptly (killed, or out of memory). "
                "Calling run_backtest from a script? Its workers are fresh interpreters that import the script: "
                'put the call under `if __name__ == "__main__":`, or pass workers=0'
            ) from exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._queue.close()
        # The server outlives its workers: stop it (and wait for it) so that a run leaves no process behind and
        # its workers' CPU shows in this process's children's usage (the server reaps them; ``_stop`` is the
        # standard library's own way, used by its tests; the next run starts a new server).
        multiprocessing.forkserver._forkserver._stop()  # type: ignore[attr-defined]
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> StepFitter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
