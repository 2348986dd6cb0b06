"""Stateful test of the request ledger: claim / complete / die / sweep / consolidate / clock, interleaved.

Hypothesis drives one batch of a small real slate (two games of the real box scores) on a private copy of the
loaded DuckDB file. A plain-Python model of every request (state, attempt, owner, lease expiry, error code,
rows staged) predicts what each operation must do; after every step the database is compared with the model
and the invariants of DESIGN.md are checked on the live batch (I1–I8 as far as they apply mid-run). At the
end the batch is finished and :func:`tests.pipeline.helpers.assert_invariants` runs.

Workers 0 and 1 carry the coordinator's owner prefix (threads of this process); worker 2 carries a foreign prefix,
i.e. a process that died holding the file, whose leases the sweeper releases at once (single-writer DuckDB).
A worker commits chunk by chunk, each chunk being exactly what one ``claim`` returned, as ``QueueWorker.handle``
does; its leases may be stale by then, and a stale commit must change nothing and report the lease ``lost``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from tests.pipeline.helpers import (
    SLATE_DATE,
    Last10Predictor,
    assert_invariants,
    main_table_snapshot,
    start_slate,
)

from nbaprops import schema
from nbaprops.clock import ManualClock
from nbaprops.config import Settings
from nbaprops.errors import ContractError
from nbaprops.pipeline import Coordinator, Lease, ledger
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage

SETTINGS = Settings(workers=1, chunk_size=4, lease_seconds=60, lease_grace_seconds=0, max_attempts=3)
WORKERS = (0, 1, 2)
FOREIGN_WORKER = 2  # owner id of another (dead) process: the sweeper releases its leases without waiting
FORCE_AFTER_STEPS = 12  # a forced finish ends the interesting part of a run: let some history build up first
OPEN_STATES = ("pending", "leased")

MACHINE_SETTINGS = settings(max_examples=15, stateful_step_count=25, deadline=None)


@dataclass
class ModelRequest:
    """What the ledger row of one request must hold."""

    state: str = "pending"
    attempt: int = 0
    owner: str | None = None
    expires: datetime | None = None
    error_code: str | None = None
    rows_staged: int | None = None


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self, seed_path: Path) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="nbaprops-stateful-"))
        path = self.dir / "nbaprops.duckdb"
        shutil.copyfile(seed_path, path)
        self.storage = open_storage(path)
        self.clock = ManualClock()
        self.coordinator = Coordinator(self.storage, SETTINGS, clock=self.clock)
        self.batch_id = start_slate(self.coordinator, teams=2)
        info = ledger.get_batch(self.storage, self.batch_id)
        assert info.staging_table is not None
        self.staging = info.staging_table
        self.deadline = info.deadline_at
        self.predictor = Last10Predictor(SLATE_DATE, self.clock, self.batch_id)
        self.model = {
            lookup: ModelRequest()
            for (lookup,) in self.storage.fetchall(
                "SELECT player_lookup FROM prediction_requests WHERE batch_id = ?", [self.batch_id]
            )
        }
        assert len(self.model) > 20
        self.held: dict[int, list[list[Lease]]] = {w: [] for w in WORKERS}  # chunks each worker still holds
        self.consolidated = False
        self.final_state: str | None = None
        self.main_after_consolidation: list[tuple[object, ...]] | None = None
        self.steps = 0
        self.refusal_seen = False

    def owner(self, worker: int) -> str:
        if worker == FOREIGN_WORKER:
            return "deadhost:1:deadbeef:w2"
        return f"{self.coordinator.owner_prefix}:w{worker}"

    # -- rules ---------------------------------------------------------------------------------
    @initialize(limits=st.lists(st.integers(0, 6), min_size=len(WORKERS), max_size=len(WORKERS)))
    def first_claims(self, limits: list[int]) -> None:
        """Every worker starts with a chunk (so a run has leases even when its claim rules are switched off)."""
        for worker, limit in zip(WORKERS, limits, strict=True):
            if limit:
                self.claim(worker, limit)

    @rule(worker=st.sampled_from(WORKERS), limit=st.integers(1, 6))
    def claim(self, worker: int, limit: int) -> None:
        owner = self.owner(worker)
        now = self.clock.now()
        leases = ledger.claim(
            self.storage,
            self.batch_id,
            owner=owner,
            limit=limit,
            lease_seconds=SETTINGS.lease_seconds,
            clock=self.clock,
        )
        expected = sorted(k for k, r in self.model.items() if r.state == "pending")[:limit]
        assert [lease.player_lookup for lease in leases] == expected
        for lease in leases:
            req = self.model[lease.player_lookup]
            req.state, req.attempt, req.owner = "leased", req.attempt + 1, owner
            req.expires = now + timedelta(seconds=SETTINGS.lease_seconds)
            assert lease.attempt == req.attempt and lease.owner == owner
        if leases:
            self.held[worker].append(leases)

    @rule(worker=st.sampled_from(WORKERS), limit=st.integers(1, 6))
    def expire_then_claim(self, worker: int, limit: int) -> None:
        """Every lease runs out, the sweeper reclaims them and a worker claims again (often the same requests,
        so a worker may end up holding a stale and a fresh lease of one request)."""
        self.advance(SETTINGS.lease_seconds + 1)
        self.sweep()
        self.claim(worker, limit)

    def holders(self) -> list[int]:
        return [w for w in WORKERS if self.held[w]]

    @precondition(lambda self: self.holders())
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        """Predict and commit every chunk a worker holds, one commit per chunk (stale leases included)."""
        worker = data.draw(st.sampled_from(self.holders()), label="worker")
        owner = self.owner(worker)
        for chunk_leases in self.held[worker]:
            chunk = self.predictor.predict_chunk(self.storage, chunk_leases)
            live = {
                lease.player_lookup
                for lease in chunk_leases
                if not self.consolidated
                and self.model[lease.player_lookup].state == "leased"
                and self.model[lease.player_lookup].attempt == lease.attempt
                and self.model[lease.player_lookup].owner == owner
            }
            if any(
                lease.player_lookup not in live and self.model[lease.player_lookup].owner == owner
                for lease in chunk_leases
            ):
                event("commit: stale lease of a request the same worker holds again")
            result = ledger.commit(
                self.storage,
                self.batch_id,
                owner=owner,
                outcomes=chunk.outcomes,
                staged_rows=chunk.rows,
                clock=self.clock,
            )
            assert set(result.committed) == live, (result, live)
            assert set(result.lost) == {lease.player_lookup for lease in chunk_leases} - live, result
            if result.lost:
                event(
                    "commit: stale leases reported lost"
                    + (" after consolidation" if self.consolidated else "")
                )
            rows_per_player: dict[str, int] = {}
            if chunk.rows is not None:
                for lookup in chunk.rows.column("player_lookup").to_pylist():
                    rows_per_player[lookup] = rows_per_player.get(lookup, 0) + 1
            assert result.rows_staged == sum(rows_per_player.get(k, 0) for k in live)
            for outcome in chunk.outcomes:
                if outcome.player_lookup not in live:
                    continue
                req = self.model[outcome.player_lookup]
                req.state, req.owner, req.expires, req.error_code = (
                    outcome.state,
                    None,
                    None,
                    outcome.error_code,
                )
                if outcome.state == "done":
                    assert rows_per_player.get(outcome.player_lookup, 0) > 0
                    req.rows_staged = rows_per_player[outcome.player_lookup]
        self.held[worker] = []

    @precondition(lambda self: self.holders())
    @rule(data=st.data())
    def die(self, data: st.DataObject) -> None:
        """A worker vanishes with its leases: nothing is committed or released."""
        worker = data.draw(st.sampled_from(self.holders()), label="worker")
        self.held[worker] = []

    @rule(seconds=st.sampled_from([10, 61, 200, 1800]))  # 1800: two of them pass the batch deadline (60 min)
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def sweep(self) -> None:
        now = self.clock.now()
        cutoff = now - timedelta(seconds=SETTINGS.lease_grace_seconds)
        prefix = self.coordinator.owner_prefix
        released = failed = reclaimed = 0
        for req in self.model.values():
            if req.state != "leased":
                continue
            assert req.owner is not None and req.expires is not None
            foreign = not req.owner.startswith(prefix)
            if foreign and req.attempt < SETTINGS.max_attempts:
                released += 1
                req.state = "pending"
            elif (req.expires < cutoff or foreign) and req.attempt >= SETTINGS.max_attempts:
                failed += 1
                req.state, req.error_code = "failed", "max_attempts_exceeded"
            elif req.expires < cutoff:
                reclaimed += 1
                req.state = "pending"
            else:
                continue
            req.owner = req.expires = None
        result = self.coordinator.sweep(self.batch_id)
        assert (result.released_foreign, result.failed, result.reclaimed) == (released, failed, reclaimed), (
            result
        )
        for name, n in (("released foreign", released), ("failed", failed), ("reclaimed", reclaimed)):
            if n:
                event(f"sweep: {name}")

    def may_finish(self) -> bool:
        return (
            self.consolidated
            or self.clock.now() >= self.deadline
            or not any(r.state in OPEN_STATES for r in self.model.values())
        )

    @precondition(
        lambda self: self.may_finish() or not self.refusal_seen
    )  # a refusal is worth one step a run
    @rule()
    def consolidate(self) -> None:
        """``Coordinator.finish`` unforced: refused while requests are open, unless the deadline passed."""
        self.finish(force=False)

    @precondition(lambda self: self.steps >= FORCE_AFTER_STEPS)
    @rule()
    def force_consolidate(self) -> None:
        """``Coordinator.finish(force_partial=True)``: open requests end ``failed``."""
        self.finish(force=True)

    def finish(self, *, force: bool) -> None:
        if self.consolidated:
            summary = self.coordinator.finish(self.batch_id, force_partial=force)
            assert summary.state == self.final_state
            return
        open_requests = [r for r in self.model.values() if r.state in OPEN_STATES]
        past_deadline = self.clock.now() >= self.deadline
        if open_requests and not force and not past_deadline:
            with pytest.raises(ContractError):
                self.coordinator.finish(self.batch_id)
            event("finish: refused (open requests)")
            self.refusal_seen = True
            return
        code = "forced_finish" if force else "deadline_exceeded"
        event("finish: " + (code if open_requests else "every request terminal"))
        for req in open_requests:
            req.state, req.owner, req.expires, req.error_code = "failed", None, None, code
        summary = self.coordinator.finish(self.batch_id, force_partial=force)
        self.consolidated = True
        self.final_state = "partial" if any(r.state == "failed" for r in self.model.values()) else "complete"
        assert summary.state == self.final_state
        done = [r for r in self.model.values() if r.state == "done"]
        assert summary.active_predictions == sum(r.rows_staged or 0 for r in done)
        self.main_after_consolidation = main_table_snapshot(self.storage)

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def count_steps(self) -> None:
        """Invariants run once after every step: count the steps (``force_consolidate`` waits for some)."""
        self.steps += 1

    @invariant()
    def ledger_matches_model(self) -> None:
        rows = self.storage.fetchall(
            """SELECT player_lookup, state, attempt, lease_owner, lease_expires_at, error_code, rows_staged
               FROM prediction_requests WHERE batch_id = ? ORDER BY player_lookup""",
            [self.batch_id],
        )
        assert [r[0] for r in rows] == sorted(self.model)
        for lookup, state, attempt, owner, expires, error_code, rows_staged in rows:
            req = self.model[lookup]
            assert state in schema.REQUEST_STATES
            actual = (state, attempt, owner, expires, error_code, rows_staged)
            wanted = (req.state, req.attempt, req.owner, req.expires, req.error_code, req.rows_staged)
            assert actual == wanted, (lookup, actual, wanted)
            # Only a claim raises the attempt and only pending requests are claimed; the sweeper ends a request
            # whose attempts are spent instead of returning it to pending, so the bound holds.
            assert 0 <= attempt <= SETTINGS.max_attempts
            assert (state == "leased") == (owner is not None) == (expires is not None)

    @invariant()
    def progress_counts_distinct_requests(self) -> None:
        counts = ledger.progress(self.storage, self.batch_id)
        assert set(counts) == set(schema.REQUEST_STATES)
        assert sum(counts.values()) == len(self.model)
        for state in schema.REQUEST_STATES:
            assert counts[state] == sum(1 for r in self.model.values() if r.state == state), (state, counts)

    @invariant()
    def rows_land_only_with_their_done_attempt(self) -> None:
        staging_tables = self.storage.tables_with_prefix(schema.STAGING_PREFIX)
        if self.consolidated:
            # I8: consolidation dropped staging; the rows are now active in the main table.
            assert self.staging not in staging_tables
            table, where = schema.PREDICTIONS.name, "p.is_active AND p.batch_id = ?"
        else:
            assert self.staging in staging_tables
            table, where = self.staging, "p.batch_id = ?"
        # In staging, rows of a chunk whose completion was lost (lease taken over, or the worker died between
        # the load and the completion) stay until consolidation fences them out by attempt: there only the rows
        # at the request's own attempt count. In the main table every row counts.
        counted = "count(*) FILTER (p.attempt = r.attempt)" if not self.consolidated else "count(*)"
        per_request = dict(
            (lookup, (n, bad_attempt))
            for lookup, n, bad_attempt in self.storage.fetchall(
                f"""SELECT p.player_lookup, {counted},
                           count(*) FILTER (p.attempt IS DISTINCT FROM r.attempt)
                    FROM "{table}" p JOIN prediction_requests r
                      ON r.batch_id = p.batch_id AND r.player_lookup = p.player_lookup
                    WHERE {where} GROUP BY p.player_lookup""",
                [self.batch_id],
            )
        )
        orphans = self.storage.scalar(
            f"""SELECT count(*) FROM "{table}" p WHERE {where} AND NOT EXISTS (
                    SELECT 1 FROM prediction_requests r WHERE r.batch_id = p.batch_id
                    AND r.player_lookup = p.player_lookup)""",
            [self.batch_id],
        )
        assert orphans == 0
        for lookup, req in self.model.items():
            n, bad_attempt = per_request.get(lookup, (0, 0))
            if req.state == "done":
                # I2/I7: exactly the rows of the attempt that completed the request.
                assert req.rows_staged and n == req.rows_staged, (lookup, n, req)
                if self.consolidated:
                    assert bad_attempt == 0, (lookup, bad_attempt)
            elif self.consolidated:
                # Only a request that ended done at an attempt has rows in the main table.
                assert n == 0, (lookup, n, req)
            else:
                # A request not done may have rows of its current attempt in staging only while it is still
                # leased or was given back with its attempt kept (a lost or crashed completion): never done rows.
                assert req.state in ("pending", "leased", "failed", "skipped") and not req.rows_staged

    @invariant()
    def one_active_row_per_key(self) -> None:
        dup = self.storage.scalar(
            """SELECT count(*) FROM (SELECT game_id, player_lookup, market, system_id FROM player_prop_predictions
               WHERE is_active GROUP BY ALL HAVING count(*) > 1)"""
        )
        assert dup == 0

    @invariant()
    def consolidated_batch_never_changes(self) -> None:
        info = ledger.get_batch(self.storage, self.batch_id)
        if not self.consolidated:
            assert info.consolidated_at is None and info.state == "running"
            return
        assert info.consolidated_at is not None and info.staging_table is None
        assert info.state == self.final_state
        assert main_table_snapshot(self.storage) == self.main_after_consolidation

    def teardown(self) -> None:
        try:
            if ledger.get_batch(self.storage, self.batch_id).consolidated_at is None:
                self.coordinator.finish(self.batch_id, force_partial=True)
            assert_invariants(self.storage, self.batch_id, clock=self.clock)
        finally:
            self.storage.close()
            shutil.rmtree(self.dir, ignore_errors=True)


def test_ledger_state_machine(loaded_db_file: Path) -> None:
    run_state_machine_as_test(lambda: LedgerMachine(loaded_db_file), settings=MACHINE_SETTINGS)


def test_a_commit_mixing_a_stale_and_the_live_attempt_stages_only_the_live_rows(
    storage: DuckDBStorage,
) -> None:
    """Found by the machine above when ``complete`` committed all of a worker's chunks in one call.

    One worker holds a stale lease (attempt 1) and the live lease (attempt 2) of the same request and reports
    both in one commit. Before the fix the attempt-1 row was staged too and counted in ``rows_staged``, and the
    stale outcome was not reported in ``lost``: ``commit`` matched rows by player only. It now matches by
    (player, attempt). Since staging is loaded before the completion (the seams' order, as on BigQuery), the
    stale row may sit in staging; it must never count in ``rows_staged`` nor reach the main table.
    """
    clock = ManualClock()
    coordinator = Coordinator(storage, SETTINGS, clock=clock)
    batch_id = start_slate(coordinator, teams=2)
    owner = f"{coordinator.owner_prefix}:w0"
    stale = ledger.claim(storage, batch_id, owner=owner, limit=1, lease_seconds=60, clock=clock)
    clock.advance(61)
    assert coordinator.sweep(batch_id).reclaimed == 1
    live = ledger.claim(storage, batch_id, owner=owner, limit=1, lease_seconds=60, clock=clock)
    assert [(lease.player_lookup, lease.attempt) for lease in stale + live] == [
        (stale[0].player_lookup, 1),
        (stale[0].player_lookup, 2),
    ]
    chunk = Last10Predictor(SLATE_DATE, clock, batch_id).predict_chunk(storage, stale + live)
    assert chunk.rows is not None and chunk.rows.num_rows == 2  # one row per lease, attempts 1 and 2
    result = ledger.commit(
        storage, batch_id, owner=owner, outcomes=chunk.outcomes, staged_rows=chunk.rows, clock=clock
    )
    assert result.committed == (live[0].player_lookup,)
    assert result.lost == (stale[0].player_lookup,)  # the stale attempt's outcome is reported lost
    assert result.rows_staged == 1
    summary = coordinator.finish(batch_id, force_partial=True)
    assert summary.as_dict()["active_predictions"] == 1
    landed = storage.fetchall(
        "SELECT player_lookup, attempt FROM player_prop_predictions WHERE batch_id = ? AND is_active",
        [batch_id],
    )
    assert landed == [(live[0].player_lookup, 2)], f"the stale attempt's row reached the main table: {landed}"
    assert_invariants(storage, batch_id, clock=clock)
