"""Batches run in the background of the serving process.

:meth:`BatchRunner.submit` does what must be answered at once — refuse a clash, return the batch that stands
when nothing it read has changed, else plan the date and create the batch (or find the running one) — and
hands the rest to a thread: :func:`nbaprops.pipeline.run.complete_batch` (models ready, trained when missing;
the in-process workers; consolidation; alerts). These are the steps of :func:`nbaprops.pipeline.run.run_batch`
in its order, split where the caller has the batch id and before any training.

A clash is refused before any planning, so a flood of submissions of one date costs a lookup each: a date
with a batch running answers :class:`ConflictError` at once, and so does a date another submission is planning
this moment (one lock per date, never waited for; only ``resume`` waits). A repeat once the batch has
finished is answered with that batch when the inputs digest (:func:`nbaprops.pipeline.day.inputs_digest`, what
``nbaprops daily`` compares) is the one it ran with and no later batch replaced it; ``force`` starts anew.

The ledger stays the truth: a job only remembers what the ledger cannot say (its phase, the messages of its
training, a run's error). On :meth:`BatchRunner.stop` the workers commit their current chunk and claim no more,
and the leases this process still holds go back to ``pending``; :meth:`BatchRunner.resume_running` at the next
start picks every running batch up where it stopped. A full disk ends a run ``failed`` with kind
``StorageFullError`` and leaves the batch ``running`` in the ledger: submitted again (or at the next start) once
space is freed, it resumes.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import TracebackType
from typing import Any, Literal

from nbaprops.clock import Clock, SystemClock
from nbaprops.config import Settings
from nbaprops.errors import ConflictError, NbapropsError, StorageBusyError, StorageFullError
from nbaprops.markets import validate_markets
from nbaprops.pipeline import ledger
from nbaprops.pipeline.coordinator import StartResult, default_as_of, process_owner
from nbaprops.pipeline.day import inputs_digest
from nbaprops.pipeline.run import BatchPlan, BatchRun, complete_batch, plan_batch, start_batch
from nbaprops.schema import REQUEST_STATES
from nbaprops.service.errors import status_of
from nbaprops.storage import retry_transient
from nbaprops.storage.seams import Backend
from nbaprops.systems.training import ModelBundle

log = logging.getLogger(__name__)

Phase = Literal["training", "running", "finished", "failed", "stopped"]
# A flood of repeats computes the inputs digest once per this many seconds. The served file changes only through
# this server, and an ingest or a finished batch here clears the verdicts at once; time alone (a line whose
# posted_at passes meanwhile) is seen within this delay.
STANDING_MEMO_SECONDS = 5.0
# What makes two submissions the same batch: date, markets, systems, deadline.
SubmissionKey = tuple[date, tuple[str, ...], tuple[str, ...], float | None]


def _storage_full(exc: Exception) -> StorageFullError | None:
    """A write outside the database (a model artifact) that found the disk full, as the database's own is."""
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
        return StorageFullError(
            f"the disk is full ({os.strerror(exc.errno or 0)}): nothing stored is lost; free space, then run the "
            "same command again: the batch resumes where it stopped"
        )
    return None


_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


class ShuttingDownError(StorageBusyError):
    """The service is stopping and starts no new work; try again once it is back."""


@dataclass
class Job:
    """One batch this process runs. ``phase``: training → running → finished | failed | stopped."""

    batch_id: str
    game_date: date
    phase: Phase = "training"
    messages: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    started: float = field(default_factory=time.perf_counter)
    thread: threading.Thread | None = None
    # The snapshot the work keeps (issue 21): request counts as the dispatch loop last counted them in the
    # ledger, on its own connection, and the batch's state once consolidated. ``version`` moves when they do.
    requests: dict[str, int] | None = None
    state: str = "running"
    consolidated: bool = False
    version: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "messages": list(self.messages), "error": self.error}

    def observe(self, counts: dict[str, int]) -> None:
        """The dispatch loop's count of the batch's requests by state (called on the batch's thread)."""
        if counts != self.requests:
            self.requests = dict(counts)
            self.version += 1

    def progress(self) -> dict[str, Any] | None:
        """Progress from the snapshot (``batch_id, state, requests, consolidated, phase``), or ``None`` when it
        cannot answer: not counted yet, or a run that failed or stopped (the ledger answers then)."""
        requests = self.requests
        if requests is None or self.phase in ("failed", "stopped"):
            return None
        return {
            "batch_id": self.batch_id,
            "state": self.state,
            "requests": dict(requests),
            "consolidated": self.consolidated,
            "phase": self.phase,
        }


@dataclass(frozen=True)
class Submitted:
    """What :meth:`BatchRunner.submit` did: the job and its start, and whether the batch stands unchanged."""

    job: Job
    start: StartResult
    unchanged: bool = False


class _DateGuard:
    """One submission of a date at a time: the lock of the date, taken without waiting unless ``wait``."""

    def __init__(
        self, locks: dict[date, threading.Lock], guard: threading.Lock, day: date, wait: bool
    ) -> None:
        with guard:
            self.lock = locks.setdefault(day, threading.Lock())
        self.day = day
        self.wait = wait

    def __enter__(self) -> None:
        if not self.lock.acquire(blocking=self.wait):
            raise ConflictError(
                f"a batch of {self.day} is being started by another request this moment; follow it with "
                f"GET /v1/batches?date={self.day}"
            )

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.lock.release()


class BatchRunner:
    """Runs submitted batches on background threads over one open database.

    Args:
        backend: the seams of the deployment (the database the service holds, or the GCP backend with that
            file as its inputs).
        settings: defaults of every batch (a submission may override markets, systems, deadline).
        clock: time source.
        on_finished: called with each run that consolidated (the service records its metrics).
    """

    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        *,
        clock: Clock | None = None,
        on_finished: Callable[[BatchRun], None] | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.clock = clock or SystemClock()
        self.on_finished = on_finished
        self.stopping = threading.Event()
        self._guard = threading.Lock()
        self._date_locks: dict[date, threading.Lock] = {}
        self._jobs: dict[str, Job] = {}
        self._finished: dict[SubmissionKey, tuple[str, str]] = {}  # key -> (inputs digest, batch id)
        self._standing_memo: dict[SubmissionKey, tuple[float, Submitted | None]] = {}
        # Moves whenever a run here ends (its consolidation changed the board, staging, other batches' rows):
        # reads that a run's end changes are versioned by it (Runtime.version_of).
        self.generation = 0

    # -- submit ----------------------------------------------------------------------------------
    def submit(
        self,
        game_date: date,
        *,
        markets: Sequence[str] | None = None,
        systems: Sequence[str] | None = None,
        force: bool = False,
        deadline_minutes: float | None = None,
        train_days: int | None = None,
        resume: bool = False,
    ) -> tuple[Job, StartResult]:
        """Create the batch of ``game_date`` and run it in the background.

        Args:
            resume: a batch already running for the date is followed instead of refused (the CLI's
                ``predict`` semantics); without it that is a :class:`ConflictError` unless ``force``.

        Raises:
            ConflictError: a batch is running for the date (its id is on the error) and neither ``force`` nor
                ``resume`` was given.
            InputError: bad markets or systems, no games on the date, no player expected.
            ShuttingDownError: the service is stopping.
        """
        return self.submit_batch(
            game_date,
            markets=markets,
            systems=systems,
            force=force,
            deadline_minutes=deadline_minutes,
            train_days=train_days,
            resume=resume,
        )[:2]

    def submit_batch(
        self,
        game_date: date,
        *,
        markets: Sequence[str] | None = None,
        systems: Sequence[str] | None = None,
        force: bool = False,
        deadline_minutes: float | None = None,
        train_days: int | None = None,
        resume: bool = False,
    ) -> tuple[Job, StartResult, bool]:
        """:meth:`submit`, and whether the batch returned stands unchanged (nothing new since it ran).

        Raises:
            ConflictError: as :meth:`submit`, and also while another submission of the date is being
                planned (without ``resume``, which waits for it).
        """
        settings = self.settings.replace(batch_deadline_minutes=deadline_minutes)
        if self.stopping.is_set():
            raise ShuttingDownError("the service is stopping; submit the batch again once it is back")
        key = self.submission_key(game_date, markets, systems, deadline_minutes)
        if not force and not resume:  # refuse a clash before any planning: lookups, not a plan
            standing = self._clash_or_standing(key, settings)
            if standing is not None:
                return standing.job, standing.start, True
        with _DateGuard(self._date_locks, self._guard, game_date, wait=resume):
            if not force and not resume:  # again, now that the date is ours: one may have ended meanwhile
                standing = self._clash_or_standing(key, settings)
                if standing is not None:
                    return standing.job, standing.start, True
            plan = retry_transient(
                lambda: plan_batch(
                    self.backend,
                    settings,
                    game_date,
                    markets=markets,
                    systems=systems,
                    force=force,
                    clock=self.clock,
                )
            )
            if plan.running is not None and not resume:  # started elsewhere since the lookup
                raise ConflictError(
                    f"batch {plan.running.batch_id} is running for {game_date}; follow it, or send force=true "
                    f"to end it partial and start anew",
                    batch_id=plan.running.batch_id,
                )
            start = retry_transient(
                lambda: start_batch(self.backend, settings, plan, force=force, clock=self.clock)
            )
            job = self._jobs.get(start.batch_id)
            if job is None or job.phase in ("failed", "stopped"):
                job = Job(start.batch_id, game_date)
                if start.created:  # a new batch is all pending: the snapshot starts exact
                    job.observe({**dict.fromkeys(REQUEST_STATES, 0), "pending": start.requests})
                self._jobs[start.batch_id] = job
                job.thread = threading.Thread(
                    target=self._run,
                    args=(job, settings, plan, start, train_days, key),
                    name=f"nbaprops-batch-{start.batch_id}",
                    daemon=True,
                )
                job.thread.start()
        return job, start, False

    def _digest(self, key: SubmissionKey, settings: Settings) -> str:
        game_date, markets, systems, _ = key
        return inputs_digest(
            self.backend.features, settings, game_date, default_as_of(game_date, self.clock), markets, systems
        )

    def submission_key(
        self,
        game_date: date,
        markets: Sequence[str] | None,
        systems: Sequence[str] | None,
        deadline_minutes: float | None,
    ) -> SubmissionKey:
        """What makes two submissions the same batch.

        Raises:
            InputError: an unknown market.
        """
        return (
            game_date,
            tuple(validate_markets(markets or self.settings.markets)),
            tuple(systems or self.settings.systems),
            deadline_minutes,
        )

    def answer_from_memory(self, key: SubmissionKey) -> Submitted | None:
        """A repeat answered without touching the database (cheap enough for the event loop): a batch of the
        date training or running here is a :class:`ConflictError`; a standing batch judged less than
        :data:`STANDING_MEMO_SECONDS` ago is returned. ``None``: ask :meth:`submit_batch`.

        Raises:
            ConflictError: naming the batch of the date this server is running.
        """
        if self.stopping.is_set():
            return None  # submit_batch says so
        self._refuse_in_flight(key[0])
        memo = self._standing_memo.get(key)
        if memo is not None and time.monotonic() < memo[0] and memo[1] is not None:
            return memo[1]
        return None

    def _refuse_in_flight(self, game_date: date) -> None:
        running_id = next(
            (
                job.batch_id
                for job in list(self._jobs.values())
                if job.game_date == game_date and job.phase in ("training", "running")
            ),
            None,
        )
        if running_id is not None:
            raise ConflictError(
                f"batch {running_id} is running for {game_date}; follow it, or send force=true to end it "
                f"partial and start anew",
                batch_id=running_id,
            )

    def _clash_or_standing(self, key: SubmissionKey, settings: Settings) -> Submitted | None:
        """Refuse a batch of the date in flight here or running in the ledger; else the batch that stands.

        Raises:
            ConflictError: naming the batch in the way.
        """
        game_date = key[0]
        self._refuse_in_flight(game_date)
        running_id = retry_transient(lambda: ledger.running_batch(self.backend, game_date))
        if running_id is not None:
            raise ConflictError(
                f"batch {running_id} is running for {game_date}; follow it, or send force=true to end it "
                f"partial and start anew",
                batch_id=running_id,
            )
        now = time.monotonic()
        memo = self._standing_memo.get(key)
        if memo is not None and now < memo[0]:
            return memo[1]
        standing = self._standing(key, settings)
        self._standing_memo[key] = (now + STANDING_MEMO_SECONDS, standing)
        return standing

    def inputs_changed(self) -> None:
        """Forget the verdicts on standing batches (after an ingest through the service)."""
        self._standing_memo.clear()

    def _standing(self, key: SubmissionKey, settings: Settings) -> Submitted | None:
        """The batch this submission would repeat: it finished here with the same inputs digest, and it is
        still the newest batch of the date and complete (nothing replaced it since)."""
        finished = self._finished.get(key)
        if finished is None:
            return None
        digest, batch_id = finished
        job = self._jobs.get(batch_id)
        if job is None or job.phase != "finished":
            return None
        newest = ledger.list_batches(self.backend, game_date=key[0])  # newest first
        if not newest or newest[0].batch_id != batch_id or newest[0].state != "complete":
            return None
        if retry_transient(lambda: self._digest(key, settings)) != digest:
            return None
        requests = sum(ledger.progress(self.backend, batch_id).values())
        return Submitted(job, StartResult(batch_id, False, requests))

    def _run(
        self,
        job: Job,
        settings: Settings,
        plan: BatchPlan,
        start: StartResult,
        train_days: int | None,
        key: SubmissionKey,
    ) -> None:
        digest: list[str] = []

        def models_ready(_bundles: dict[str, ModelBundle]) -> None:
            # What the batch reads, models included (now trained): a later submission compares with it.
            digest.append(retry_transient(lambda: self._digest(key, settings)))
            job.phase = "running"

        try:
            run = complete_batch(
                self.backend,
                settings,
                plan,
                start,
                train_days=train_days,
                clock=self.clock,
                on_message=job.messages.append,
                on_models=models_ready,
                on_upload=lambda uploaded: job.messages.append(
                    "inputs uploaded to the warehouse: " + ", ".join(f"{t} {n}" for t, n in uploaded.items())
                ),
                stop=self.stopping,
                started=job.started,
                on_progress=job.observe,
            )
            if self.stopping.is_set() and run.summary.state == "running":
                job.phase = "stopped"
                return
            job.result = run.as_dict()
            # The final snapshot: the ledger's counts after consolidation, before the phase says finished.
            job.state, job.consolidated = run.summary.state, run.summary.state != "running"
            job.observe(run.summary.requests)
            job.version += 1
            if run.summary.state == "complete":  # a repeat with the same inputs gets this batch
                self._finished[key] = (digest[0], job.batch_id)
            self._standing_memo.clear()  # its models may be what another submission reads
            job.phase = "finished"
            log.info("batch %s finished %s in %.2fs", job.batch_id, run.summary.state, run.summary.duration_s)
            if self.on_finished is not None:
                self.on_finished(run)
        except Exception as exc:  # a background thread has no caller to raise to: record and log (it alerted)
            exc = _storage_full(exc) or exc
            if isinstance(exc, NbapropsError) and status_of(exc) != 500:
                log.warning("batch %s: %s: %s", job.batch_id, type(exc).__name__, exc)
                job.error = {"error": str(exc), "kind": type(exc).__name__}
            else:  # its text may quote SQL, tables or stored values: the log has it, the API does not
                log.exception("batch %s crashed", job.batch_id)
                job.error = {"error": "internal error; the server logged it", "kind": "InternalError"}
            job.phase = "failed"
        finally:
            self.generation += 1

    # -- read ------------------------------------------------------------------------------------
    def job(self, batch_id: str) -> Job | None:
        return self._jobs.get(batch_id)

    def follow(self, batch_id: str, messages_from: int = 0) -> dict[str, Any]:
        """Where a submitted batch stands: phase, new messages, request counts, the result once finished."""
        job = self._jobs.get(batch_id)
        counts = ledger.progress(self.backend, batch_id)
        if job is None:  # not run here (or before a restart): the ledger alone answers
            info = ledger.get_batch(self.backend, batch_id)
            phase = "running" if info.consolidated_at is None else "finished"
            return {"phase": phase, "messages": [], "requests": counts, "result": None, "error": None}
        return {
            "phase": job.phase,
            "messages": job.messages[messages_from:],
            "requests": counts,
            "result": job.result,
            "error": job.error,
        }

    # -- start and stop --------------------------------------------------------------------------
    def resume_running(self) -> list[str]:
        """Run again every batch the ledger says is running (after a restart); returns their ids."""
        resumed = []
        for info in ledger.list_batches(self.backend, state="running"):
            try:
                job, _ = self.submit(info.game_date, resume=True)
            except NbapropsError as exc:
                log.warning("cannot resume batch %s: %s", info.batch_id, exc)
                continue
            resumed.append(job.batch_id)
        if resumed:
            log.info("resumed %d running batch(es): %s", len(resumed), ", ".join(resumed))
        return resumed

    def stop(self, timeout: float = 30.0) -> int:
        """Stop claiming, let the workers commit their current chunk, give back this process's leases.

        Returns:
            The number of leases given back.
        """
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for job in list(self._jobs.values()):
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))
        released = retry_transient(
            lambda: ledger.release_owned(self.backend, owner_prefix=process_owner(), clock=self.clock)
        )
        if released:
            log.info("released %d lease(s) on the way out", released)
        return released

    # -- the operations the CLI reaches through the reads endpoint (nbaprops.holder) -------------
    def endpoint_operations(self) -> dict[str, Callable[..., Any]]:
        def submit(storage: Backend, settings: Settings, *, game_date: str, **options: Any) -> dict[str, Any]:
            # The CLI's predict: a batch running for the date is followed, --force starts anew.
            job, start = self.submit(date.fromisoformat(game_date), resume=True, **options)
            return {"batch_id": job.batch_id, "created": start.created, "total": start.requests}

        def follow(
            storage: Backend, settings: Settings, *, batch_id: str, messages_from: int = 0
        ) -> dict[str, Any]:
            return self.follow(batch_id, messages_from)

        return {"submit": submit, "follow": follow}


__all__ = ["BatchRunner", "Job", "ShuttingDownError"]
