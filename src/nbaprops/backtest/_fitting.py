"""Fitting the walk-forward's step models in worker processes.

A step's models depend only on the training rows before the step, never on earlier steps' grades (only the
calibration does, and it stays in the parent), so every step can be fitted as soon as the run starts, in
parallel with everything else. Workers are spawned, not forked (the parent holds a DuckDB connection and
thread pools that a fork would copy mid-state), as soon as the run starts: their imports (LightGBM, SciPy…) take
seconds, which overlap with the parent building the training set. Each then reads the run's training set once,
memory-mapped from an Arrow IPC file in a temporary directory, and returns each step's fitted bundle
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

_TRAINING: dict[str, pa.Table] = {}


def _started() -> None:
    """Nothing: submitted once per worker so that it starts (and imports this module) right away."""


def _fit(path: str, market: str, through: date, system_ids: tuple[str, ...], train_days: int) -> ModelBundle:
    if path not in _TRAINING:
        _TRAINING[path] = pa.ipc.open_file(pa.memory_map(path)).read_all()
    rows = training_window(_TRAINING[path], through - timedelta(days=train_days), through)
    return fit_market(rows, market, through, system_ids=system_ids, train_days=train_days)


class StepFitter:
    """Fits the bundle of every step in ``workers`` processes, started at once; :meth:`submit` queues the steps
    in step order."""

    def __init__(self, *, workers: int) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="nbaprops-backtest-"))
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        for _ in range(workers):
            self._pool.submit(_started)
        self._futures: list[Future[ModelBundle]] = []

    def submit(
        self,
        training: pa.Table,
        market: str,
        step_starts: list[date],
        *,
        system_ids: tuple[str, ...],
        train_days: int,
    ) -> None:
        """Queue every step's fit on ``training`` (the rows of all the steps' windows)."""
        path = self._dir / "training.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, training.schema) as writer:
            writer.write_table(training)
        self._futures = [
            self._pool.submit(_fit, str(path), market, through, system_ids, train_days)
            for through in step_starts
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
