"""Fault scenarios of DESIGN.md on a real DuckDB file; each ends by asserting the invariants."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pytest
from tests.pipeline.helpers import (
    SLATE_DATE,
    Last10Predictor,
    assert_invariants,
    main_table_snapshot,
    start_slate,
)

from nbaprops.clock import ManualClock
from nbaprops.config import Settings
from nbaprops.errors import ContractError
from nbaprops.pipeline import ChunkPrediction, Coordinator, Lease, RequestOutcome, consolidate, ledger
from nbaprops.pipeline.janitor import cleanup_staging, staging_tables
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage

SETTINGS = Settings(workers=2, chunk_size=16, lease_seconds=60, lease_grace_seconds=0, max_attempts=3)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def coordinator(storage: DuckDBStorage, clock: ManualClock) -> Coordinator:
    return Coordinator(storage, SETTINGS, clock=clock)


def run_to_end(coordinator: Coordinator, batch_id: str) -> None:
    predictor = Last10Predictor(SLATE_DATE, coordinator.clock, batch_id)
    coordinator.run(batch_id, predictor, poll_seconds=0.0)
    coordinator.finish(batch_id)


def test_clean_batch_completes_with_every_invariant(coordinator: Coordinator, clock: ManualClock) -> None:
    batch_id = start_slate(coordinator)
    run_to_end(coordinator, batch_id)
    summary = coordinator.summary(batch_id)
    assert summary.state == "complete"
    assert summary.requests["done"] > 200  # 15 games: about 13 recent players a team
    assert summary.active_predictions == summary.requests["done"]
    assert summary.staging_tables_left == 0
    assert_invariants(coordinator.storage, batch_id, clock=clock)


def test_worker_dying_after_claim_is_recovered_by_lease_expiry(
    coordinator: Coordinator, clock: ManualClock
) -> None:
    batch_id = start_slate(coordinator, teams=3)
    dead = ledger.claim(
        coordinator.storage,
        batch_id,
        owner=f"{coordinator.owner_prefix}:dead",
        limit=10,
        lease_seconds=60,
        clock=clock,
    )
    assert len(dead) == 10
    # Before expiry the sweeper leaves the lease alone; after it, the request goes back to pending.
    assert coordinator.sweep(batch_id).reclaimed == 0
    clock.advance(61)
    assert coordinator.sweep(batch_id).reclaimed == 10
    run_to_end(coordinator, batch_id)
    attempts = dict(
        coordinator.storage.fetchall(
            "SELECT player_lookup, attempt FROM prediction_requests WHERE batch_id = ?", [batch_id]
        )
    )
    assert all(attempts[lease.player_lookup] == 2 for lease in dead)
    assert_invariants(coordinator.storage, batch_id, clock=clock)


def test_lost_messages_are_published_again_long_before_a_lease_would_expire(
    coordinator: Coordinator,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every message of the batch is lost (Pub/Sub hands a message to a pull whose process has gone: it comes back
    after its ack deadline, the lease, 300 s by default). With nothing leased, pending and nothing finishing for
    ``unclaimed_seconds`` the coordinator publishes the pending requests again and the batch completes. Before,
    only the lease rule republished, after ``lease_seconds`` of real time: this run stopped at its timeout with
    every request pending."""
    batch_id = start_slate(coordinator, teams=2)
    lost: list[int] = []
    publish = coordinator.publish

    def lossy(batch: str, players: Sequence[str]) -> int:
        if len(lost) < 2:  # the run's first publish and its first republish: both lost
            lost.append(len(players))
            return 0
        return publish(batch, players)

    monkeypatch.setattr(coordinator, "publish", lossy)
    coordinator.unclaimed_seconds = 0.3  # 30 s by default; lease_seconds is 60 here, of the manual clock
    stop = threading.Event()
    predictor = Last10Predictor(SLATE_DATE, clock, batch_id)
    runner = threading.Thread(
        target=coordinator.run, args=(batch_id, predictor), kwargs={"poll_seconds": 0.02, "stop": stop}
    )
    runner.start()
    runner.join(timeout=20)
    stop.set()
    runner.join()
    assert lost == [lost[0], lost[0]] and lost[0] > 0
    summary = coordinator.finish(batch_id)
    assert summary.state == "complete", summary.requests
    assert "none claimed for 0 s: published again" in caplog.text
    assert_invariants(coordinator.storage, batch_id, clock=clock)


def test_expired_leases_are_reclaimed_at_low_completion_ratio(
    coordinator: Coordinator, clock: ManualClock
) -> None:
    # The original only looked for stalls above 95% completion; here 0% done still gets reclaimed (I6).
    batch_id = start_slate(coordinator)
    leased = ledger.claim(
        coordinator.storage,
        batch_id,
        owner=f"{coordinator.owner_prefix}:w",
        limit=5,
        lease_seconds=60,
        clock=clock,
    )
    assert ledger.progress(coordinator.storage, batch_id)["done"] == 0
    clock.advance(61)
    report = coordinator.check_stalled()
    assert report["reclaimed"] == len(leased)
    assert report["stalled_leases_left"] == 0


def test_requests_fail_after_max_attempts(coordinator: Coordinator, clock: ManualClock) -> None:
    batch_id = start_slate(coordinator, teams=1)
    for _ in range(SETTINGS.max_attempts):
        assert ledger.claim(
            coordinator.storage,
            batch_id,
            owner=f"{coordinator.owner_prefix}:flaky",
            limit=1000,
            lease_seconds=60,
            clock=clock,
        )
        clock.advance(61)
        coordinator.sweep(batch_id)
    counts = ledger.progress(coordinator.storage, batch_id)
    assert counts["failed"] == sum(counts.values())
    summary = coordinator.finish(batch_id)
    assert summary.state == "partial"
    assert {m["error_code"] for m in summary.missing} == {"max_attempts_exceeded"}
    assert_invariants(coordinator.storage, batch_id, clock=clock)


def test_a_crash_inside_the_commit_leaves_neither_rows_nor_completion(
    coordinator: Coordinator, clock: ManualClock
) -> None:
    """A worker dying between staging and completing: both are one transaction, so nothing of it remains."""
    batch_id = start_slate(coordinator, teams=2)
    owner = f"{coordinator.owner_prefix}:crash"
    leases = ledger.claim(coordinator.storage, batch_id, owner=owner, limit=5, lease_seconds=60, clock=clock)
    chunk = Last10Predictor(SLATE_DATE, clock, batch_id).predict_chunk(coordinator.storage, leases)
    assert chunk.rows is not None and chunk.rows.num_rows > 0
    # A row whose key column is NULL violates the staging contract: the INSERT fails after the UPDATE ran.
    broken = chunk.rows.set_column(
        chunk.rows.column_names.index("market"), "market", pa.nulls(chunk.rows.num_rows, pa.string())
    )
    with pytest.raises(ContractError):
        ledger.commit(
            coordinator.storage,
            batch_id,
            owner=owner,
            outcomes=chunk.outcomes,
            staged_rows=broken,
            clock=clock,
        )
    info = ledger.get_batch(coordinator.storage, batch_id)
    assert coordinator.storage.scalar(f'SELECT count(*) FROM "{info.staging_table}"') == 0
    assert ledger.progress(coordinator.storage, batch_id)["leased"] == len(leases)
    clock.advance(61)
    run_to_end(coordinator, batch_id)
    assert_invariants(coordinator.storage, batch_id, clock=clock)


def test_rows_staged_outside_a_completion_never_reach_the_main_table(
    coordinator: Coordinator, clock: ManualClock
) -> None:
    """Rows written to staging by an attempt that never completed (e.g. a manual or buggy writer) are fenced."""
    batch_id = start_slate(coordinator, teams=2)
    owner = f"{coordinator.owner_prefix}:ghost"
    leases = ledger.claim(coordinator.storage, batch_id, owner=owner, limit=5, lease_seconds=60, clock=clock)
    chunk = Last10Predictor(SLATE_DATE, clock, batch_id).predict_chunk(coordinator.storage, leases)
    info = ledger.get_batch(coordinator.storage, batch_id)
    assert chunk.rows is not None
    with coordinator.storage.session() as cur:
        cur.register("__ghost", chunk.rows)
        cur.execute(f'INSERT INTO "{info.staging_table}" BY NAME SELECT * FROM __ghost')
    clock.advance(61)
    run_to_end(coordinator, batch_id)
    result = ledger.get_batch(coordinator.storage, batch_id).summary or {}
    assert result["consolidation"]["rows_fenced_out"] == chunk.rows.num_rows
    assert_invariants(coordinator.storage, batch_id, clock=clock)


def test_stale_attempt_cannot_commit_after_takeover(coordinator: Coordinator, clock: ManualClock) -> None:
    batch_id = start_slate(coordinator, teams=2)
    storage = coordinator.storage
    slow = ledger.claim(
        storage, batch_id, owner=f"{coordinator.owner_prefix}:slow", limit=4, lease_seconds=60, clock=clock
    )
    slow_chunk = Last10Predictor(SLATE_DATE, clock, batch_id).predict_chunk(storage, slow)
    clock.advance(61)
    coordinator.sweep(batch_id)
    fast = ledger.claim(
        storage, batch_id, owner=f"{coordinator.owner_prefix}:fast", limit=4, lease_seconds=60, clock=clock
    )
    assert [lease.player_lookup for lease in fast] == [lease.player_lookup for lease in slow]
    assert all(lease.attempt == 2 for lease in fast)
    stale = ledger.commit(
        storage,
        batch_id,
        owner=slow[0].owner,
        outcomes=slow_chunk.outcomes,
        staged_rows=slow_chunk.rows,
        clock=clock,
    )
    assert stale.committed == () and len(stale.lost) == 4 and stale.rows_staged == 0
    fast_chunk = Last10Predictor(SLATE_DATE, clock, batch_id).predict_chunk(storage, fast)
    fresh = ledger.commit(
        storage,
        batch_id,
        owner=fast[0].owner,
        outcomes=fast_chunk.outcomes,
        staged_rows=fast_chunk.rows,
        clock=clock,
    )
    assert len(fresh.committed) == 4
    run_to_end(coordinator, batch_id)
    assert_invariants(storage, batch_id, clock=clock)


def test_the_same_completion_reported_twice_counts_once(coordinator: Coordinator, clock: ManualClock) -> None:
    batch_id = start_slate(coordinator, teams=2)
    storage = coordinator.storage
    leases = ledger.claim(
        storage, batch_id, owner=f"{coordinator.owner_prefix}:w", limit=6, lease_seconds=60, clock=clock
    )
    chunk = Last10Predictor(SLATE_DATE, clock, batch_id).predict_chunk(storage, leases)
    first = ledger.commit(
        storage, batch_id, owner=leases[0].owner, outcomes=chunk.outcomes, staged_rows=chunk.rows, clock=clock
    )
    second = ledger.commit(
        storage, batch_id, owner=leases[0].owner, outcomes=chunk.outcomes, staged_rows=chunk.rows, clock=clock
    )
    assert len(first.committed) == 6 and second.committed == () and second.rows_staged == 0
    info = ledger.get_batch(storage, batch_id)
    assert storage.scalar(f'SELECT count(*) FROM "{info.staging_table}"') == first.rows_staged
    run_to_end(coordinator, batch_id)
    assert_invariants(storage, batch_id, clock=clock)


def test_consolidating_twice_leaves_the_main_table_identical(
    coordinator: Coordinator, clock: ManualClock
) -> None:
    batch_id = start_slate(coordinator, teams=3)
    run_to_end(coordinator, batch_id)
    before = main_table_snapshot(coordinator.storage)
    assert consolidate(coordinator.storage, batch_id, clock=clock).already_consolidated
    assert main_table_snapshot(coordinator.storage) == before
    assert_invariants(coordinator.storage, batch_id, clock=clock)


def test_concurrent_consolidations_merge_once(coordinator: Coordinator, clock: ManualClock) -> None:
    storage = coordinator.storage
    first = start_slate(coordinator, teams=3)
    run_to_end(coordinator, first)
    second = start_slate(coordinator, teams=3, force=True)  # a rerun of the date supersedes the first
    coordinator.run(second, Last10Predictor(SLATE_DATE, clock, second), poll_seconds=0.0)
    results: list[object] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def go() -> None:
        try:
            barrier.wait()
            results.append(consolidate(storage, second, clock=clock))
        except BaseException as exc:  # pragma: no cover - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(r.already_consolidated for r in results) == [False, True]  # type: ignore[attr-defined]
    active = storage.scalar("SELECT count(*) FROM player_prop_predictions WHERE is_active")
    assert active == storage.scalar(
        "SELECT count(*) FROM player_prop_predictions WHERE batch_id = ?", [second]
    )
    superseded = storage.fetchall(
        "SELECT count(*), count(superseded_by) FROM player_prop_predictions WHERE batch_id = ?", [first]
    )[0]
    assert superseded[0] == superseded[1] > 0
    assert_invariants(storage, second, clock=clock)


def test_drift_main_with_extra_columns_and_staging_with_fewer(
    coordinator: Coordinator, clock: ManualClock
) -> None:
    storage = coordinator.storage
    batch_id = start_slate(coordinator, teams=3)
    info = ledger.get_batch(storage, batch_id)
    storage.execute('ALTER TABLE player_prop_predictions ADD COLUMN "operator_note" VARCHAR')
    storage.execute(f'ALTER TABLE "{info.staging_table}" DROP COLUMN "feature_quality_score"')
    storage.execute(f'ALTER TABLE "{info.staging_table}" ADD COLUMN "new_signal" DOUBLE')
    predictor = Last10Predictor(SLATE_DATE, clock, batch_id)
    original = predictor.predict_chunk

    def fewer_columns(storage_: DuckDBStorage, leases: list[ledger.Lease]):  # type: ignore[no-untyped-def]
        chunk = original(storage_, leases)
        rows = chunk.rows.drop_columns(["feature_quality_score"]) if chunk.rows is not None else None
        return type(chunk)(rows, chunk.outcomes)

    predictor.predict_chunk = fewer_columns  # type: ignore[method-assign]
    coordinator.run(batch_id, predictor, poll_seconds=0.0)
    summary = coordinator.finish(batch_id)
    assert summary.state == "complete"
    assert summary.drift["missing_in_staging"] == ["feature_quality_score", "operator_note"]
    assert summary.drift["added_to_main"] == ["new_signal"]
    assert "new_signal" in storage.table_columns("player_prop_predictions")
    assert (
        storage.scalar(
            "SELECT count(*) FROM player_prop_predictions WHERE batch_id = ? AND feature_quality_score IS NULL",
            [batch_id],
        )
        == summary.active_predictions
        > 0
    )
    assert_invariants(storage, batch_id, clock=clock)


def test_janitor_drops_orphans_and_finishes_stale_batches(
    coordinator: Coordinator, clock: ManualClock
) -> None:
    storage = coordinator.storage
    stale = start_slate(coordinator, teams=2)
    leases = ledger.claim(
        storage, stale, owner=f"{coordinator.owner_prefix}:w", limit=5, lease_seconds=60, clock=clock
    )
    chunk = Last10Predictor(SLATE_DATE, clock, stale).predict_chunk(storage, leases)
    ledger.commit(
        storage, stale, owner=leases[0].owner, outcomes=chunk.outcomes, staged_rows=chunk.rows, clock=clock
    )
    storage.execute("CREATE TABLE staging_predictions_orphan_1 (x INTEGER)")
    clock.advance(25 * 3600)
    fresh = start_slate(coordinator, SLATE_DATE.replace(day=13), teams=1)
    result = cleanup_staging(storage, older_than_hours=24, clock=clock)
    assert "staging_predictions_orphan_1" in result.dropped
    assert result.finished_batches == (stale,)
    assert staging_tables(storage) == [ledger.get_batch(storage, fresh).staging_table]
    info = ledger.get_batch(storage, stale)
    assert info.state == "partial"
    assert_invariants(storage, stale, clock=clock)


def test_starting_a_running_date_returns_the_same_batch(coordinator: Coordinator) -> None:
    first = start_slate(coordinator, teams=2)
    assert start_slate(coordinator, teams=2) == first
    forced = start_slate(coordinator, teams=2, force=True)
    assert forced != first
    assert ledger.get_batch(coordinator.storage, first).state == "partial"


KILLED_RUN = textwrap.dedent(
    """
    import os, sys
    from nbaprops.clock import SystemClock
    from nbaprops.config import Settings
    from nbaprops.pipeline import Coordinator
    from nbaprops.storage import open_storage
    from tests.pipeline.helpers import SLATE_DATE, Last10Predictor, start_slate

    storage = open_storage(sys.argv[1])
    coordinator = Coordinator(storage, Settings(workers=1, chunk_size=16, lease_seconds=600))
    batch_id = start_slate(coordinator)
    predictor = Last10Predictor(SLATE_DATE, SystemClock(), batch_id)
    real = predictor.predict_chunk

    def dying(storage_, leases):
        if predictor.chunks == 5:
            os._exit(9)  # killed mid-batch: no cleanup, leases held, staging half full
        return real(storage_, leases)

    predictor.predict_chunk = dying
    print(batch_id, flush=True)
    coordinator.run(batch_id, predictor)
    """
)


def test_process_killed_mid_batch_resumes_from_the_file(db_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(db_path)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 9, proc.stderr
    batch_id = proc.stdout.split()[0]
    storage = open_storage(db_path)
    try:
        counts = ledger.progress(storage, batch_id)
        assert (
            counts["done"] + counts["skipped"] == 5 * 16 and counts["leased"] == 16
        )  # five chunks landed, the sixth died
        coordinator = Coordinator(storage, SETTINGS)  # real clock: the dead process's lease has not expired
        assert start_slate(coordinator) == batch_id  # resumed, not restarted
        coordinator.run(batch_id, Last10Predictor(SLATE_DATE, coordinator.clock, batch_id), poll_seconds=0.0)
        summary = coordinator.finish(batch_id)
        assert summary.state == "complete"
        assert_invariants(storage, batch_id)
    finally:
        storage.close()


def test_outcomes_for_unknown_players_commit_nothing(coordinator: Coordinator, clock: ManualClock) -> None:
    batch_id = start_slate(coordinator, teams=1)
    result = ledger.commit(
        coordinator.storage,
        batch_id,
        owner="nobody",
        outcomes=[RequestOutcome("not-a-player", 1, "done")],
        staged_rows=None,
        clock=clock,
    )
    assert result.committed == () and result.lost == ("not-a-player",)


def test_past_the_deadline_the_batch_ends_partial_listing_the_missing(
    coordinator: Coordinator, clock: ManualClock
) -> None:
    batch_id = start_slate(coordinator, teams=2)
    ledger.claim(
        coordinator.storage,
        batch_id,
        owner=f"{coordinator.owner_prefix}:dead",
        limit=6,
        lease_seconds=60,
        clock=clock,
    )  # a worker that never comes back
    clock.advance(SETTINGS.batch_deadline_minutes * 60 + 1)
    coordinator.run(batch_id, Last10Predictor(SLATE_DATE, clock, batch_id), poll_seconds=0.0)
    summary = coordinator.finish(batch_id)
    assert summary.state == "partial"
    missing = [m for m in summary.missing if m["error_code"] == "deadline_exceeded"]
    assert missing and summary.requests["failed"] == len(missing)
    assert_invariants(coordinator.storage, batch_id, clock=clock)


@pytest.mark.parametrize("finisher", ["resumed_run", "check_stalled"])
def test_a_deadline_reached_part_way_keeps_the_done_and_lists_the_open(
    coordinator: Coordinator, clock: ManualClock, finisher: str
) -> None:
    """Two chunks committed, one held by a worker that never returns, the rest pending: then the deadline.

    Whoever finishes the batch (a rerun of the date, or ``check-stalled``) claims nothing more, ends the open
    requests ``failed`` (``deadline_exceeded``) and keeps what was done. Mutations tried, each failing here:
    ``Coordinator.run`` ignoring the deadline (the rerun predicts the open requests and the batch ends
    ``complete``); ``Coordinator.finish`` not failing open requests past the deadline (``ContractError``:
    non-terminal requests after finishing) or failing them as ``forced_finish``; ``check_stalled`` not
    finishing batches past their deadline.
    """
    storage = coordinator.storage
    batch_id = start_slate(coordinator, teams=3)
    predictor = Last10Predictor(SLATE_DATE, clock, batch_id)
    for worker in ("w1", "w2"):
        leases = ledger.claim(
            storage,
            batch_id,
            owner=f"{coordinator.owner_prefix}:{worker}",
            limit=8,
            lease_seconds=60,
            clock=clock,
        )
        chunk = predictor.predict_chunk(storage, leases)
        ledger.commit(
            storage,
            batch_id,
            owner=leases[0].owner,
            outcomes=chunk.outcomes,
            staged_rows=chunk.rows,
            clock=clock,
        )
    ledger.claim(
        storage, batch_id, owner=f"{coordinator.owner_prefix}:dead", limit=8, lease_seconds=60, clock=clock
    )
    by_state: dict[str, set[str]] = {}
    for lookup, state in storage.fetchall(
        "SELECT player_lookup, state FROM prediction_requests WHERE batch_id = ?", [batch_id]
    ):
        by_state.setdefault(state, set()).add(lookup)
    assert len(by_state["done"]) > 0 and len(by_state["leased"]) == 8 and len(by_state["pending"]) > 0
    open_at_deadline = by_state["leased"] | by_state["pending"]

    clock.advance(SETTINGS.batch_deadline_minutes * 60 + 1)
    if finisher == "resumed_run":
        coordinator.run(batch_id, predictor, poll_seconds=0.0)
        summary = coordinator.finish(batch_id)
    else:
        [finished] = coordinator.check_stalled()["finished_batches"]
        assert finished["batch_id"] == batch_id
        summary = coordinator.summary(batch_id)
    assert predictor.chunks == 2  # nothing was claimed past the deadline
    assert summary.state == "partial"
    assert {
        m["player_lookup"] for m in summary.missing if m["error_code"] == "deadline_exceeded"
    } == open_at_deadline
    assert {m["player_lookup"] for m in summary.missing} == open_at_deadline | by_state.get("skipped", set())
    assert summary.requests["done"] == summary.active_predictions == len(by_state["done"])
    assert set(
        storage.fetchall("SELECT DISTINCT player_lookup FROM player_prop_predictions WHERE is_active")
    ) == {(lookup,) for lookup in by_state["done"]}
    assert_invariants(storage, batch_id, clock=clock)


def test_a_deadline_passing_while_the_workers_run_stops_them(
    coordinator: Coordinator, clock: ManualClock
) -> None:
    """The deadline passes during the first chunk of a single ``run``: no worker claims another chunk, and the
    batch ends ``partial`` with everything open failed ``deadline_exceeded``. Mutation tried: ``QueueWorker.handle``
    without its deadline check — the workers run the slate to the end and the batch ends ``complete``."""
    batch_id = start_slate(coordinator, teams=4)

    class LatePredictor(Last10Predictor):
        def predict_chunk(self, storage: DuckDBStorage, leases: Sequence[Lease]) -> ChunkPrediction:
            if self.chunks == 0:
                clock.advance(SETTINGS.batch_deadline_minutes * 60 + 1)
            return super().predict_chunk(storage, leases)

    predictor = LatePredictor(SLATE_DATE, clock, batch_id)
    coordinator.run(batch_id, predictor, poll_seconds=0.0)
    summary = coordinator.finish(batch_id)
    assert predictor.chunks <= SETTINGS.workers  # each worker finished at most the chunk it held
    assert summary.state == "partial"
    assert any(m["error_code"] == "deadline_exceeded" for m in summary.missing)
    assert_invariants(coordinator.storage, batch_id, clock=clock)


def test_a_bug_in_a_chunk_stops_the_run_loudly_and_a_rerun_resumes(
    coordinator: Coordinator, clock: ManualClock
) -> None:
    """An error that is not an nbaprops error (a bug) in a coordinator's own worker ends ``run`` with that error
    — not five redeliveries and a dead letter — and leaves the batch resumable: the rerun finishes it.
    Mutation tried: the coordinator's workers without ``fail_fast`` — the run goes on until stopped, never raising."""
    batch_id = start_slate(coordinator, teams=4)

    class BuggyPredictor(Last10Predictor):
        def predict_chunk(self, storage: DuckDBStorage, leases: Sequence[Lease]) -> ChunkPrediction:
            if self.chunks == 0:
                self.chunks += 1
                raise ZeroDivisionError("a bug")
            return super().predict_chunk(storage, leases)

    give_up = (
        threading.Event()
    )  # without fail-fast the run would wait for leases the manual clock never expires
    timer = threading.Timer(30.0, give_up.set)
    timer.start()
    try:
        with pytest.raises(ZeroDivisionError):
            coordinator.run(
                batch_id, BuggyPredictor(SLATE_DATE, clock, batch_id), poll_seconds=0.0, stop=give_up
            )
    finally:
        timer.cancel()
    assert ledger.get_batch(coordinator.storage, batch_id).state == "running"
    clock.advance(SETTINGS.lease_seconds + 1)  # the buggy chunk's leases expire: the rerun's sweep takes them
    run_to_end(coordinator, batch_id)
    summary = coordinator.summary(batch_id)
    assert summary.state == "complete" and summary.requests["failed"] == 0
    assert_invariants(coordinator.storage, batch_id, clock=clock)
