"""Fitting the walk-forward's step models in worker processes.

A step's models depend only on the training rows before the step, never on earlier steps' grades (only the
calibration does, and it stays in the parent), so every step can be fitted as soon as the run starts, in
parallel with everything else. Workers are spawned, not forked (the parent holds a DuckDB connection and
thread pools that a fork would copy mid-state); each reads the run's training set once, memory-mapped from an
Arrow IPC file in a temporary directory, and returns each step's fitted bundle
(:func:`~nbaprops.systems.training.fit_market`: the same code and the same rows as the serial path, so the
same models). The parent takes the bundles in step order and calibrates them.
"""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from types import TracebackType

import pyarrow as pa

from nbaprops.systems.training import ModelBundle, fit_market, training_window

_TRAINING: pa.Table | None = None


def _load(path: str) -> None:
    global _TRAINING
    _TRAINING = pa.ipc.open_file(pa.memory_map(path)).read_all()


def _fit(market: str, through: date, system_ids: tuple[str, ...], train_days: int) -> ModelBundle:
    assert _TRAINING is not None, "worker started without its training set"
    rows = training_window(_TRAINING, through - timedelta(days=train_days), through)
    return fit_market(rows, market, through, system_ids=system_ids, train_days=train_days)


class StepFitter:
    """Fits the bundle of every step in ``workers`` processes, all submitted at once, in step order."""

    def __init__(
        self,
        training: pa.Table,
        market: str,
        step_starts: list[date],
        *,
        system_ids: tuple[str, ...],
        train_days: int,
        workers: int,
    ) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="nbaprops-backtest-"))
        path = self._dir / "training.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, training.schema) as writer:
            writer.write_table(training)
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_load,
            initargs=(str(path),),
        )
        self._futures: list[Future[ModelBundle]] = [
            self._pool.submit(_fit, market, through, system_ids, train_days) for through in step_starts
        ]

    def bundle(self, k: int) -> ModelBundle:
        """The fitted (uncalibrated) bundle of step ``k``; waits for it. A worker's error is raised here."""
        return self._futures[k].result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> StepFitter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
