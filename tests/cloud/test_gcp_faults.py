"""Fault scenarios on the GCP backend (issue #11), each ending with the invariants of DESIGN.md.

The batch is the one-game slate (31 requests in two chunks) on a deployment of its own: Firestore ledger,
BigQuery warehouse and Pub/Sub work on the emulators. The faults are injected by driving the real pipeline
components in this process — :class:`QueueWorker`, :class:`PubSubQueue`, :class:`Coordinator`,
:func:`consolidate` — with a :class:`ManualClock` for leases instead of sleeping; only the coordinator's
restart runs ``nbaprops predict`` as a process, since killing it is the fault. ``kill -9`` of a worker process
is in ``test_gcp_pipeline.py``.

Each test's docstring says what it would catch and the mutation of the source that was tried to see it fail.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from google.api_core import exceptions as google_errors
from tests.cloud.conftest import (
    SMALL_SLATE,
    Deployment,
    assert_cloud_invariants,
    predict,
)
from tests.service.conftest import wait_for

from nbaprops import schema
from nbaprops.clock import ManualClock, SystemClock
from nbaprops.config import Settings
from nbaprops.errors import StorageBusyError
from nbaprops.pipeline import janitor, run
from nbaprops.pipeline.coordinator import BatchSummary, Coordinator
from nbaprops.pipeline.queue_worker import QueueWorker
from nbaprops.pipeline.slate import SlatePredictor, request_targets
from nbaprops.pipeline.worker import ChunkPrediction, ChunkPredictor
from nbaprops.storage import open_gcp, open_storage
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.storage.gcp.backend import GcpBackend
from nbaprops.storage.gcp.retry import Backoff
from nbaprops.storage.seams import BatchInfo, Lease, WorkMessage
from nbaprops.systems.training import ensure_bundles

pytestmark = [pytest.mark.cloud]
# The module, not the function the package exports under its name (a test swaps its per-date lock).
consolidation = importlib.import_module("nbaprops.pipeline.consolidate")

GAME_DATE = date.fromisoformat(SMALL_SLATE)
CHUNK_SIZE = 16  # two chunks
LEASE_S = 30.0  # on the manual clock: a lease expires only when a test moves the clock past it


@dataclass
class RecordingWorker(QueueWorker):
    """A queue worker that records each message it handled and its answer (True acknowledges)."""

    deliveries: list[tuple[WorkMessage, bool]] = field(default_factory=list, init=False)

    def handle(self, message: WorkMessage) -> bool:
        answer = False
        try:
            answer = super().handle(message)
        finally:
            self.deliveries.append((message, answer))
        return answer


@dataclass
class HeldPredictor:
    """Predicts like ``inner`` once ``release`` is set: a worker slower than its lease."""

    inner: ChunkPredictor
    release: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)

    def predict_chunk(self, storage: DuckDBStorage, leases: Sequence[Lease]) -> ChunkPrediction:
        self.holding.set()
        assert self.release.wait(60), "the test never released the slow worker"
        return self.inner.predict_chunk(storage, leases)


_SLATE_FEATURES: dict[tuple[date, tuple[str, ...]], tuple[pa.Table, dict[str, int]]] = {}


class SharedFeaturesPredictor(SlatePredictor):
    """The coordinator's slate predictor, its slate-wide features computed once per session: every test plans
    the same players from a copy of one inputs file, so they are the same features (it saves ~2 s a batch)."""

    def _features_of(self, storage: DuckDBStorage, targets: pa.Table) -> tuple[pa.Table, dict[str, int]]:
        key = (self.batch.game_date, tuple(targets.column("player_lookup").to_pylist()))
        if key not in _SLATE_FEATURES:
            _SLATE_FEATURES[key] = super()._features_of(storage, targets)
        return _SLATE_FEATURES[key]


class WorkerDiedError(Exception):
    """Raised where a worker process would have died."""


class Slate:
    """The one-game slate on a GCP deployment, driven from this process on a manual clock."""

    def __init__(self, backend: GcpBackend, settings: Settings, clock: ManualClock, features: DuckDBStorage):
        self.backend = backend
        self.settings = settings
        self.clock = clock
        self.features = features
        self.batch_id = ""
        self._predictor: SharedFeaturesPredictor | None = None

    @property
    def predictor(self) -> SharedFeaturesPredictor:
        """The batch's slate predictor, as ``nbaprops predict`` builds it for its own workers."""
        assert self._predictor is not None, "start the batch first"
        return self._predictor

    def start(self) -> str:
        """Start the date's batch as ``nbaprops predict`` does (plan, models, batch, one message per chunk)."""
        plan = run.plan_batch(self.backend, self.settings, GAME_DATE, clock=self.clock)
        bundles = ensure_bundles(self.features, self.settings, GAME_DATE, plan.markets, plan.systems)
        started = run.start_batch(self.backend, self.settings, plan, clock=self.clock)
        self.coordinator().publish_pending(started.batch_id)  # as the coordinator's run does, models ready
        info = self.backend.ledger.get_batch(started.batch_id)
        targets = request_targets(plan.requests, GAME_DATE)
        self._predictor = SharedFeaturesPredictor(
            info, bundles, plan.lines, self.settings, self.clock, plan.injuries, targets=targets
        )
        self.batch_id = started.batch_id
        return self.batch_id

    def coordinator(self) -> Coordinator:
        return Coordinator(self.backend, self.settings, clock=self.clock)

    def worker(self, name: str, predictor: ChunkPredictor | None = None) -> RecordingWorker:
        worker = RecordingWorker(
            self.backend, self.settings, self.clock, f"test:{name}", history=lambda _: self.features
        )
        worker.use(self.batch_id, predictor or self.predictor, self.features)
        return worker

    @property
    def players(self) -> list[str]:
        return sorted(r["player_lookup"] for r in self.backend.ledger.requests(self.batch_id))

    def chunks(self) -> list[WorkMessage]:
        """The messages the coordinator published for the batch (sorted players, ``chunk_size`` each)."""
        players = self.players
        return [
            WorkMessage(self.batch_id, tuple(players[i : i + CHUNK_SIZE]))
            for i in range(0, len(players), CHUNK_SIZE)
        ]

    def progress(self) -> dict[str, int]:
        return self.backend.ledger.progress(self.batch_id)

    def open_requests(self) -> int:
        counts = self.progress()
        return counts["pending"] + counts["leased"]

    def finish(self) -> BatchSummary:
        return self.coordinator().finish(self.batch_id)

    def consolidation(self) -> dict[str, Any]:
        summary = self.backend.ledger.get_batch(self.batch_id).summary or {}
        report: dict[str, Any] = summary["consolidation"]
        return report

    def main_rows(self) -> list[dict[str, Any]]:
        """Every row of the date in the main table, active or not."""
        dataset = self.backend.warehouse.dataset
        rows = self.backend.warehouse._query(
            f"SELECT * FROM `{dataset}.{schema.PREDICTIONS.name}` WHERE game_date = '{GAME_DATE}' "
            "ORDER BY prediction_id",
            action="test: read main",
        )
        return [dict(row.items()) for row in rows]


@pytest.fixture
def slate(deployment: Deployment) -> Iterator[Slate]:
    """The slate's batch, started (its messages published, nothing consumed yet)."""
    settings = replace(
        deployment.settings, chunk_size=CHUNK_SIZE, lease_seconds=LEASE_S, lease_grace_seconds=0.0, workers=0
    )
    clock = ManualClock(datetime(2025, 1, 26, 17, 0, tzinfo=UTC))
    features = open_storage(deployment.db)
    backend = open_gcp(settings, features=features)
    backend.queue.pull_timeout_s = 0.5  # consumers look at their stop flag this often
    made = Slate(backend, settings, clock, features)
    try:
        made.start()
        yield made
    finally:
        backend.close()
        features.close()


@contextlib.contextmanager
def consuming(workers: Sequence[QueueWorker]) -> Iterator[None]:
    """The workers pull from the batch's subscription, each in a thread, until the block ends."""
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, kwargs={"stop": stop}, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        assert not any(thread.is_alive() for thread in threads), "a consumer did not stop"


def attempts(slate: Slate) -> dict[str, int]:
    return {r["player_lookup"]: int(r["attempt"]) for r in slate.backend.ledger.requests(slate.batch_id)}


def test_a_message_delivered_twice_is_done_once(slate: Slate) -> None:
    """Every chunk's message is published a second time (Pub/Sub delivers at least once) and two workers
    consume both copies: each chunk is predicted once, at attempt 1, and both deliveries are acknowledged.

    Would catch: a claim that leases a request that is no longer pending, so a duplicate redoes finished
    work. Mutation tried: ``FirestoreLedger.claim`` also taking ``done`` requests → attempts of 2, requests
    committed twice (red).
    """
    chunks = slate.chunks()
    slate.coordinator().publish(slate.batch_id, slate.players)  # every chunk again
    workers = [slate.worker("a"), slate.worker("b")]
    with consuming(workers):
        wait_for(lambda: sum(len(w.deliveries) for w in workers) >= 2 * len(chunks), timeout=60)

    deliveries = [d for w in workers for d in w.deliveries]
    assert Counter(message.players for message, _ in deliveries) == {c.players: 2 for c in chunks}
    assert all(answer for _, answer in deliveries)
    assert sum(w.stats.committed for w in workers) == len(slate.players)
    assert set(attempts(slate).values()) == {1}
    summary = slate.finish()
    assert summary.state == "complete"
    assert_cloud_invariants(slate.backend, slate.batch_id)


def test_a_lost_ack_redelivers_a_committed_chunk_which_changes_nothing(
    slate: Slate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first acknowledgement of every message is lost (the worker committed; Pub/Sub never heard): the
    message comes back, the redelivery claims nothing and is acknowledged, and every request stays done once.

    A lost ack is a message whose ack deadline passes: the ack is turned into a zero ack deadline, which is that
    moment brought forward. Would catch: a redelivered, already committed chunk being redone, or refused
    (``handle`` answering False when it claimed nothing: the message would loop to the dead-letter topic).
    Mutations tried: ``FirestoreLedger.claim`` taking ``done`` requests (red: attempt 2); ``QueueWorker.handle``
    answering False when nothing was claimed (red: a third delivery).
    """
    queue = slate.backend.queue
    delivery_of: dict[str, int] = {}
    pull, settle = queue._pull, queue._settle

    def recording_pull(subscription: str, max_messages: int, timeout: float | None = None) -> list[Any]:
        received = pull(subscription, max_messages, timeout)
        for item in received:
            delivery_of[item.ack_id] = int(item.delivery_attempt or 1)
        return received

    def lossy_settle(subscription: str, *, acks: list[str], nacks: list[str]) -> None:
        lost = [ack for ack in acks if delivery_of.get(ack) == 1]
        settle(subscription, acks=[a for a in acks if a not in lost], nacks=[*nacks, *lost])

    monkeypatch.setattr(queue, "_pull", recording_pull)
    monkeypatch.setattr(queue, "_settle", lossy_settle)
    chunks = slate.chunks()
    worker = slate.worker("a")

    def redelivered() -> bool:
        again = {m.players for m, answer in worker.deliveries if m.delivery_attempt >= 2 and answer}
        return again == {c.players for c in chunks}

    with consuming([worker]):
        wait_for(redelivered, timeout=60)
        with contextlib.suppress(AssertionError):  # a third delivery would come at once: give it a moment
            wait_for(lambda: len(worker.deliveries) > 2 * len(chunks), timeout=1)

    seen = Counter(message.players for message, _ in worker.deliveries)
    assert seen == {c.players: 2 for c in chunks}
    assert all(answer for _, answer in worker.deliveries)
    assert worker.stats.chunks == len(chunks)  # the redeliveries predicted nothing
    assert worker.stats.committed == len(slate.players)
    assert set(attempts(slate).values()) == {1}
    assert slate.finish().state == "complete"
    assert_cloud_invariants(slate.backend, slate.batch_id)


def test_a_worker_slower_than_its_lease_is_fenced_out(slate: Slate) -> None:
    """A worker holds a chunk past its lease: the sweep reclaims it, the coordinator publishes it again, another
    worker does it at attempt 2; the slow worker then stages its (newer) rows and commits — its completion is
    lost and consolidation fences its rows out (I7).

    Would catch: a completion not fenced by attempt and owner, or a merge taking staging rows of an attempt that
    did not complete the request. Mutations tried: the merge's fence ``d.attempt = s.attempt`` → ``TRUE`` (red:
    the slow worker's newer rows land at attempt 1); ``FirestoreLedger.complete`` without the state, attempt and
    owner checks (red: the slow worker's completion is not lost).
    """
    slow_chunk = slate.chunks()[0]
    held = HeldPredictor(slate.predictor)
    slow = slate.worker("slow", held)
    answers: list[bool] = []
    thread = threading.Thread(target=lambda: answers.append(slow.handle(slow_chunk)), daemon=True)
    thread.start()
    try:
        assert held.holding.wait(30)  # leased at attempt 1, predicting
        rescuer = slate.worker("rescuer")
        with consuming([rescuer]):
            # Everything else gets done; the slow chunk's own message finds its requests leased and is dropped.
            wait_for(lambda: slate.progress()["leased"] == slate.open_requests() == len(slow_chunk.players))
            slate.clock.advance(LEASE_S + 1)
            assert slate.coordinator().sweep(slate.batch_id).reclaimed == len(slow_chunk.players)
            slate.coordinator().publish_pending(slate.batch_id)
            wait_for(lambda: slate.open_requests() == 0, timeout=60)
        slate.clock.advance(5)  # the slow worker's rows are made after the rescuer's
    finally:
        held.release.set()
        thread.join(60)

    assert answers == [True]
    assert (slow.stats.committed, slow.stats.lost) == (0, len(slow_chunk.players))
    redone = {p: a for p, a in attempts(slate).items() if p in slow_chunk.players}
    assert set(redone.values()) == {2}
    summary = slate.finish()
    assert summary.state == "complete"
    assert_cloud_invariants(slate.backend, slate.batch_id)
    done_in_chunk = [
        r
        for r in slate.backend.ledger.requests(slate.batch_id, states=["done"])
        if r["player_lookup"] in slow_chunk.players
    ]
    assert done_in_chunk and slate.consolidation()["rows_fenced_out"] == len(done_in_chunk)


def test_the_coordinator_restarted_mid_batch_resumes_the_same_batch(
    deployment: Deployment, loaded_db_file: Path, tmp_path: Path
) -> None:
    """kill -9 of the ``nbaprops predict`` process while its batch runs (a worker did one chunk, the other is
    pending), then the coordinator again: it resumes that batch — no second batch, the done chunk not redone,
    the rest done once, the invariants hold.

    The restarted coordinator is :func:`run_batch` — what ``nbaprops predict`` runs — in this process, on the
    killed one's inputs file: a second process would add only its start-up and the upload the first one did.
    Would catch: a restarted coordinator starting a new batch for the date (the first one's work orphaned, two
    batches' rows), or redoing finished requests. Mutation tried: ``Coordinator.start`` ignoring the running
    batch → a second batch id (red).
    """
    settings = replace(deployment.settings, chunk_size=CHUNK_SIZE, workers=1)
    first = predict(deployment, SMALL_SLATE, NBAPROPS_WORKERS="0", NBAPROPS_CHUNK_SIZE=str(CHUNK_SIZE))
    backend = open_gcp(settings)
    inputs = tmp_path / "worker-inputs.duckdb"  # the coordinator holds its own file
    shutil.copyfile(loaded_db_file, inputs)
    worker_inputs = open_storage(inputs)
    try:
        batch_id = wait_for(lambda: [b.batch_id for b in backend.ledger.list_batches()], timeout=120)[0]
        worker = QueueWorker(backend, settings, SystemClock(), "test:before", history=lambda _: worker_inputs)
        players = sorted(r["player_lookup"] for r in backend.ledger.requests(batch_id))
        assert worker.handle(WorkMessage(batch_id, tuple(players[:CHUNK_SIZE])))
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        before = backend.ledger.requests(batch_id)
        ended = {
            r["player_lookup"]: r["attempt"] for r in before if r["state"] in schema.TERMINAL_REQUEST_STATES
        }
        assert len(ended) == CHUNK_SIZE and backend.ledger.progress(batch_id)["pending"] > 0

        with open_storage(deployment.db) as inputs_of_the_killed:
            restarted = open_gcp(settings, features=inputs_of_the_killed)
            restarted.queue.pull_timeout_s = 0.5
            try:
                summary = run.run_batch(restarted, settings, GAME_DATE).summary
            finally:
                restarted.close()

        assert (summary.batch_id, summary.resumed, summary.state) == (batch_id, True, "complete")
        assert [b.batch_id for b in backend.ledger.list_batches(game_date=GAME_DATE)] == [batch_id]
        after = {r["player_lookup"]: r["attempt"] for r in backend.ledger.requests(batch_id)}
        assert {p: after[p] for p in ended} == ended and set(after.values()) == {1}
        assert_cloud_invariants(backend, batch_id)
    finally:
        worker_inputs.close()
        backend.close()
        if first.poll() is None:
            first.kill()


def test_consolidation_run_twice_and_concurrently_lands_rows_once(
    slate: Slate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two consolidations of one batch at once — two coordinators, each with its own clients, both past the
    latch check and entering the merge together — then a third afterwards: one latches, the others change
    nothing; every row is in the main table once (I3, I5).

    The in-process per-date lock does not reach another process, so each call gets a lock of its own here.
    Would catch: two merges of one batch both inserting its rows — BigQuery runs transactions that only append
    side by side, each blind to the other's rows. It did, before the merge emptied staging inside its
    transaction (62 rows for 31 predictions, each key active twice); taking that ``DELETE`` out again → red.
    Also: the loser latching at once with the empty report of its retry, over the winner's (it did, before it
    waited for the merger's latch; without the wait → red).
    """
    worker = slate.worker("a")
    for message in slate.chunks():
        assert worker.handle(message)
    other = open_gcp(slate.settings)
    monkeypatch.setattr(consolidation, "_date_lock", lambda _: threading.Lock())
    together = threading.Barrier(2, timeout=30)
    merged_before: set[int] = set()
    loser_merged = threading.Event()  # a merge found the staging already merged
    for backend in (slate.backend, other):
        merge, latch = backend.warehouse.merge, backend.ledger.latch

        def merge_together(merge: Any = merge, me: int = id(backend), **kwargs: Any) -> Any:
            if me not in merged_before:  # the first merges start together; a retry goes on alone
                merged_before.add(me)
                together.wait()
            result = merge(**kwargs)
            if result.rows_staged == 0:
                loser_merged.set()
            return result

        def latch_late(batch_id: str, latch: Any = latch, **kwargs: Any) -> Any:
            # The merger latches only once the loser has found its staging merged: the order that lost the
            # merger's report, made certain.
            if kwargs["summary"]["consolidation"]["rows_inserted"]:
                loser_merged.wait(timeout=30)
            return latch(batch_id, **kwargs)

        monkeypatch.setattr(backend.warehouse, "merge", merge_together)
        monkeypatch.setattr(backend.ledger, "latch", latch_late)
    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(
                    lambda b: consolidation.consolidate(b, slate.batch_id, clock=slate.clock),
                    (slate.backend, other),
                )
            )
    finally:
        other.close()
    assert sorted(r.already_consolidated for r in results) == [False, True]
    rows = slate.main_rows()
    # The latched report is the merger's: the loser found the staging merged and waited for its latch.
    (winner,) = [r for r in results if not r.already_consolidated]
    assert winner.rows_inserted == len(rows) > 0
    summary = slate.backend.ledger.get_batch(slate.batch_id).summary or {}
    assert summary["consolidation"]["rows_inserted"] == len(rows)
    monkeypatch.undo()
    again = consolidation.consolidate(slate.backend, slate.batch_id, clock=slate.clock)
    assert again.already_consolidated
    assert slate.main_rows() == rows
    assert len({r["prediction_id"] for r in rows}) == len(rows)
    assert_cloud_invariants(slate.backend, slate.batch_id)


def test_a_column_added_to_main_mid_season_lands_rows_and_reports_drift(slate: Slate) -> None:
    """A column is added to the BigQuery main table (``ALTER TABLE … ADD COLUMN``) while a batch runs, its
    staging made from the contract without it: the batch's rows land by name, the drift is reported, no error
    (I9).

    Would catch: an insert by position or over the main table's columns (the original's failed MERGE), or drift
    made fatal. Mutation tried: the merge inserting every main column (``insert_columns`` = main's) → the
    consolidation fails with a 400 (red).
    """
    dataset = slate.backend.warehouse.dataset
    slate.backend.warehouse._query(
        f"ALTER TABLE `{dataset}.{schema.PREDICTIONS.name}` ADD COLUMN minutes_projection FLOAT64",
        action="test: add a column to main",
    )
    worker = slate.worker("a")
    for message in slate.chunks():
        assert worker.handle(message)

    summary = slate.finish()

    assert summary.state == "complete"
    assert summary.drift["missing_in_staging"] == ["minutes_projection"]
    assert summary.drift["added_to_main"] == []
    active = slate.backend.warehouse.active_predictions(GAME_DATE).to_pylist()
    assert active and all(r["minutes_projection"] is None for r in active)
    assert_cloud_invariants(slate.backend, slate.batch_id)


def test_staging_left_by_a_dead_attempt_is_never_merged_and_is_removed(
    slate: Slate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker loads a chunk's rows into staging and dies before completing it; the lease expires and the
    chunk is redone at attempt 2. A coordinator that died between creating a staging table and its batch left
    that table too. Consolidation takes none of the dead attempt's rows (I7) and drops the batch's staging; the
    janitor drops the orphan: no staging remains (I8).

    Would catch: rows of an attempt that never completed reaching main, a merge that leaves its staging, a
    janitor that keeps staging no batch owns. Mutations tried: the merge's fence → ``TRUE`` (red:
    ``rows_fenced_out`` 0); the merge without its staging ``DROP`` (red); ``cleanup_staging`` not dropping
    ownerless tables (red: the orphan stays).
    """
    chunks = slate.chunks()
    doomed = slate.worker("doomed")

    def die(*args: Any, **kwargs: Any) -> Any:
        raise WorkerDiedError("killed between its staging load and its completion")

    with monkeypatch.context() as patch:
        patch.setattr(slate.backend.ledger, "complete", die)
        with pytest.raises(WorkerDiedError):
            doomed.handle(chunks[0])
    orphan = slate.backend.warehouse.create_staging("20250126_deadcoord000", expires_hours=24)

    rescuer = slate.worker("rescuer")
    for message in chunks:
        assert rescuer.handle(message)  # the dead worker's chunk is still leased: nothing claimed there
    assert slate.open_requests() == len(chunks[0].players)
    slate.clock.advance(LEASE_S + 1)
    assert slate.coordinator().sweep(slate.batch_id).reclaimed == len(chunks[0].players)
    assert rescuer.handle(chunks[0])

    summary = slate.finish()

    assert summary.state == "complete"
    redone = [
        r
        for r in slate.backend.ledger.requests(slate.batch_id, states=["done"])
        if r["player_lookup"] in chunks[0].players
    ]
    assert redone and {r["attempt"] for r in redone} == {2}
    assert slate.consolidation()["rows_fenced_out"] == len(redone)
    assert slate.backend.warehouse.staging_tables() == [orphan]  # the batch's own staging went with the merge
    cleaned = janitor.cleanup_staging(slate.backend, older_than_hours=24, clock=slate.clock)
    assert cleaned.dropped == (orphan,)
    assert_cloud_invariants(slate.backend, slate.batch_id)


# -- Pub/Sub as it really behaves (issue 22, items 3 and 4) -----------------------------------------------------


class FlakySubscriber:
    """The real ``SubscriberClient``, its first ``failures[method]`` calls of a method answered with a transient
    error before they reach the emulator (the injected fault; everything else goes through)."""

    def __init__(self, inner: Any, failures: dict[str, int]) -> None:
        self._inner = inner
        self.left = dict(failures)
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if name not in self.left:
            return method

        def flaky(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                fail = self.left[name] > 0
                self.left[name] -= fail
            if fail:
                raise google_errors.ServiceUnavailable(f"injected: {name} unavailable")
            return method(*args, **kwargs)

        return flaky


def no_failed_requests(slate: Slate) -> None:
    """Nothing dead-lettered, every request done (a passing error never ends a request ``failed``)."""
    assert slate.coordinator().fail_dead_letters(slate.batch_id) == 0
    counts = slate.progress()
    assert counts["failed"] == 0 and counts["done"] == len(slate.players), counts


def test_transient_pull_and_ack_errors_are_waited_out_and_the_worker_keeps_pulling(slate: Slate) -> None:
    """The first three pulls and the first two acks answer ``UNAVAILABLE``: the consumer backs off, pulls again
    and retries the acks; its thread never dies, every chunk is delivered once, every request ends done.

    Would catch: a pull or ack error escaping ``consume()`` (the worker thread dies silently and nothing more is
    done). Mutation tried: ``consume`` without its ``except TransientError`` around the pull → red (the thread
    dies on the first pull, the wait for the batch times out).
    """
    queue = slate.backend.queue
    queue.backoff = Backoff(initial_s=0.05, maximum_s=0.2)
    queue.subscriber = FlakySubscriber(queue.subscriber, {"pull": 3, "acknowledge": 2})  # type: ignore[assignment]
    chunks = slate.chunks()
    worker = slate.worker("a")
    with consuming([worker]):
        wait_for(lambda: slate.open_requests() == 0 and len(worker.deliveries) == len(chunks), timeout=60)
        with contextlib.suppress(AssertionError):  # a redelivery of an ack that was lost would come now
            wait_for(lambda: len(worker.deliveries) > len(chunks), timeout=1.5)

    assert queue.subscriber.left == {"pull": 0, "acknowledge": 0}  # type: ignore[attr-defined]
    assert queue.transient_errors == 5
    assert Counter(m.players for m, _ in worker.deliveries) == {c.players: 1 for c in chunks}
    assert all(answer for _, answer in worker.deliveries)
    no_failed_requests(slate)
    assert slate.finish().state == "complete"
    assert_cloud_invariants(slate.backend, slate.batch_id)


@dataclass
class SlowPredictor:
    """Predicts like ``inner`` after ``seconds``: a chunk longer than the ack deadline."""

    inner: ChunkPredictor
    seconds: float

    def predict_chunk(self, storage: DuckDBStorage, leases: Sequence[Lease]) -> ChunkPrediction:
        threading.Event().wait(self.seconds)
        return self.inner.predict_chunk(storage, leases)


def test_a_chunk_longer_than_its_ack_deadline_is_kept_and_acked_once(slate: Slate) -> None:
    """The queue keeps held messages at a 1 s ack deadline and each chunk takes 2.5 s, with a second worker
    pulling: the deadline is renewed while the chunk runs, so no chunk is redelivered; each is acked once.

    Would catch: nothing extending the ack deadline (a long chunk comes back to another worker mid-way, counts
    an attempt, and after enough of them is dead-lettered while it was being done). Mutation tried: the lease
    keeper setting the deadline once and never renewing it → red (every chunk delivered twice).
    """
    queue = slate.backend.queue
    queue.ack_deadline_s = 1.0
    chunks = slate.chunks()
    slow = SlowPredictor(slate.predictor, 2.5)
    workers = [slate.worker("a", slow), slate.worker("b", slow)]
    with consuming(workers):
        wait_for(lambda: slate.open_requests() == 0, timeout=60)
        with contextlib.suppress(AssertionError):  # a redelivery would come within a deadline or two
            wait_for(lambda: sum(len(w.deliveries) for w in workers) > len(chunks), timeout=2)

    deliveries = [d for w in workers for d in w.deliveries]
    assert Counter(m.players for m, _ in deliveries) == {c.players: 1 for c in chunks}
    assert all(answer and m.delivery_attempt == 1 for m, answer in deliveries)
    assert set(attempts(slate).values()) == {1}
    no_failed_requests(slate)
    assert slate.finish().state == "complete"
    assert_cloud_invariants(slate.backend, slate.batch_id)


def load_failing_for(worker: RecordingWorker, seconds: list[float]) -> RecordingWorker:
    """``worker``, loading a batch's models and history (before it claims anything) failing with a transient
    error until ``seconds[0]`` on the monotonic clock, set at its first call (shared by the workers given it)."""
    load = worker._predictor

    def failing(info: BatchInfo) -> tuple[ChunkPredictor, DuckDBStorage]:
        now = time.monotonic()
        if len(seconds) == 1:
            seconds.append(now + seconds[0])
        if now < seconds[1]:
            raise StorageBusyError("injected: history unavailable while BigQuery restarts")
        return load(info)

    worker._predictor = failing  # type: ignore[method-assign]
    return worker


def test_a_nack_storm_from_a_passing_error_ends_done_not_dead_lettered(slate: Slate) -> None:
    """For its first second every chunk fails to load its history (the passing error of a restarting
    dependency): every delivery is nacked, by two workers at once. The subscription's retry policy
    spaces the redeliveries, so the error has passed before the fifth attempt: no dead letter, every request
    done, the invariants hold.

    Would catch: a subscription without a retry policy — a nack comes back at once, the five attempts are spent
    in a fraction of a second, the chunks are dead-lettered and their requests end ``failed`` for good. Mutation
    tried: ``ensure_pubsub`` ignoring ``redelivery`` → red (both chunks dead-lettered, 31 requests failed).
    """
    storm = [1.0]
    workers = [load_failing_for(slate.worker(name), storm) for name in ("a", "b")]
    chunks = slate.chunks()
    with consuming(workers):
        wait_for(lambda: slate.open_requests() == 0, timeout=60)

    deliveries = [d for w in workers for d in w.deliveries]
    refused = [m for m, answer in deliveries if not answer]
    assert refused and {m.players for m in refused} == {
        c.players for c in chunks
    }  # the storm hit every chunk
    assert max(m.delivery_attempt for m, _ in deliveries) < slate.settings.max_delivery_attempts
    no_failed_requests(slate)
    assert slate.finish().state == "complete"
    assert_cloud_invariants(slate.backend, slate.batch_id)


# -- BigQuery and Firestore for production (issue 22, item 6) ------------------------------------------------------


class FlakyBigQuery:
    """The real ``bigquery.Client``, the first calls of some methods answered with the given errors (the
    injected fault) before they reach the emulator."""

    def __init__(self, inner: Any, errors: dict[str, list[Exception]]) -> None:
        self._inner = inner
        self.errors = {name: list(queue) for name, queue in errors.items()}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if name not in self.errors:
            return method

        def flaky(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                error = self.errors[name].pop(0) if self.errors[name] else None
            if error is not None:
                raise error
            return method(*args, **kwargs)

        return flaky


def test_warehouse_writes_wait_out_conflicts_rate_limits_and_outages(slate: Slate) -> None:
    """A staging load answered 503, the merge's transaction cancelled by a concurrent update (as BigQuery
    reports it), the batch's invalidation answered ``403 rateLimitExceeded``: each write is retried after the
    warehouse's backoff (milliseconds here, seconds in production) and lands once; the invariants hold.

    Would catch: a write not retried by class (the load, the merge or the invalidation fails the batch), a 403
    for a rate limit reported as a permission problem. Mutation tried: ``translate`` treating every 403 as a
    ``ConfigError`` → red (the invalidation fails with "permission denied").
    """
    warehouse = slate.backend.warehouse
    warehouse.backoff = Backoff(initial_s=0.01, maximum_s=0.05, attempts=4)
    rate_limited = google_errors.Forbidden(
        "Exceeded rate limits: too many table update operations for this table",
        errors=[{"reason": "rateLimitExceeded", "message": "Exceeded rate limits"}],
    )
    conflict = google_errors.BadRequest(
        "Transaction is aborted due to concurrent update against table main",
        errors=[{"reason": "invalidQuery"}],
    )
    flaky = FlakyBigQuery(
        warehouse.client,
        {
            "load_table_from_file": [google_errors.ServiceUnavailable("injected: load unavailable")],
            "query": [],
        },
    )
    warehouse.client = flaky  # type: ignore[assignment]
    worker = slate.worker("a")
    for message in slate.chunks():
        assert worker.handle(message)
    assert flaky.errors["load_table_from_file"] == []
    flaky.errors["query"] = [conflict]  # the next query is the merge
    assert slate.finish().state == "complete"
    assert flaky.errors["query"] == []
    assert_cloud_invariants(slate.backend, slate.batch_id)

    ruled_out = sorted({r["player_lookup"] for r in slate.main_rows()})[:1]
    flaky.errors["query"] = [rate_limited]
    postponed, per_player = warehouse.invalidate(
        GAME_DATE, games=[], players=[(ruled_out[0], datetime(2030, 1, 1, tzinfo=UTC))], at=slate.clock.now()
    )
    assert flaky.errors["query"] == [] and postponed == 0 and per_player[ruled_out[0]] > 0


def test_a_403_for_quota_is_transient_and_one_for_permission_is_a_config_error() -> None:
    """BigQuery answers both a quota and a missing role with 403; only the first passes."""
    from nbaprops.errors import ConfigError
    from nbaprops.storage.gcp.warehouse import translate

    for reason in ("quotaExceeded", "rateLimitExceeded"):
        quota = google_errors.Forbidden("Quota exceeded", errors=[{"reason": reason}])
        assert isinstance(translate(quota, action="merge"), StorageBusyError)
    denied = google_errors.Forbidden("Access Denied", errors=[{"reason": "accessDenied"}])
    error = translate(denied, action="merge")
    assert isinstance(error, ConfigError) and "permission denied" in str(error)


def test_the_sweep_reads_only_expired_leases(slate: Slate, monkeypatch: pytest.MonkeyPatch) -> None:
    """One chunk's leases expire while the other chunk's are fresh: the sweep reads (and reclaims) only the
    expired ones — a query on ``lease_expires_at`` — not one document per leased request.

    Would catch: the sweep reading every leased request each pass (~400k Firestore reads an hour per running
    batch at the coordinator's polling rate). Mutation tried: ``_leased`` without the ``lease_expires_at <``
    filter → red (31 documents read).
    """
    ledger = slate.backend.ledger
    first, second = slate.chunks()
    ledger.claim(
        slate.batch_id,
        owner="test:old",
        limit=16,
        lease_seconds=LEASE_S,
        clock=slate.clock,
        players=first.players,
    )
    slate.clock.advance(LEASE_S + 1)
    ledger.claim(
        slate.batch_id,
        owner="test:new",
        limit=16,
        lease_seconds=LEASE_S,
        clock=slate.clock,
        players=second.players,
    )
    read: list[int] = []
    change_many = ledger._change_many

    def counting(items: Any, decide: Any) -> Any:
        work = list(items)
        read.append(len(work))
        return change_many(work, decide)

    monkeypatch.setattr(ledger, "_change_many", counting)
    for batch_id in (slate.batch_id, None):  # one batch's requests, and every batch's (collection group)
        swept = ledger.sweep(clock=slate.clock, max_attempts=3, batch_id=batch_id)
        slate.clock.advance(0.001)
        assert swept.reclaimed == (len(first.players) if batch_id else 0)
    assert read == [len(first.players), 0]
    assert slate.progress()["leased"] == len(second.players)
