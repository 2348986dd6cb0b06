"""The ledger contract battery: every operation of the ``Ledger`` seam, run against every backend.

``duckdb`` is a real DuckDB file in ``tmp_path``; ``firestore`` is the gcloud SDK's Firestore emulator (marked
``cloud``; skipped where gcloud or Java is absent), each test in a project of its own. Time comes from a
:class:`ManualClock`, so lease expiry is exact and nothing sleeps.

Mutations tried, each failing here on both backends: claiming without the ``pending`` check (the concurrent
claim leases a request twice), claim ignoring ``players``, complete without the attempt fence or without the
owner fence, release ignoring the owner, sweep ignoring the grace or ``max_attempts``, sweep releasing a foreign
lease of a process whose prefix is ours, fail_requests ignoring ``players``, latch without its precondition
(a second latch answers True), progress counting something other than requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tests.emulators.google import firestore_emulator, unique_project  # noqa: F401
from tests.storage.backends import registered_backends, unknown_backend

from nbaprops.clock import ManualClock
from nbaprops.errors import UnknownBatchError
from nbaprops.storage import open_storage, retry_transient
from nbaprops.storage.seams import Lease, Ledger, PlayerRequest, RequestOutcome

T = TypeVar("T")
GAME_DATE = date(2025, 2, 12)
AS_OF = datetime(2025, 2, 12, 16, 0, tzinfo=UTC)
LEASE_S = 60.0


@pytest.fixture(params=registered_backends())
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "duckdb":
        from nbaprops.storage.duckdb.ledger import DuckDBLedger

        storage = open_storage(tmp_path / "ledger.duckdb")
        yield DuckDBLedger(storage)
        storage.close()
    elif request.param == "gcp":
        request.getfixturevalue("firestore_emulator")
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import firestore

        from nbaprops.storage.gcp.ledger import FirestoreLedger

        client = firestore.Client(project=unique_project(), credentials=AnonymousCredentials())
        yield FirestoreLedger(client, prefix="contract")
        client.close()
    else:
        unknown_backend("ledger", request.param)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2025, 2, 12, 17, 0, tzinfo=UTC))


def players(n: int) -> list[str]:
    return [f"player_{i:02d}" for i in range(n)]


def make_batch(
    ledger: Ledger,
    clock: ManualClock,
    *,
    n: int = 5,
    batch_id: str = "b1",
    game_date: date = GAME_DATE,
    **kind: str,
) -> str:
    ledger.create_batch(
        batch_id=batch_id,
        game_date=game_date,
        requests=[
            PlayerRequest(p, p.replace("_", " ").title(), 1000 + i, "BOS", "NYK", "g1", i % 2 == 0)
            for i, p in enumerate(players(n))
        ],
        markets=["points"],
        systems=["last10", "lgbm"],
        as_of=AS_OF,
        deadline_at=clock.now() + timedelta(minutes=30),
        staging_table=f"staging_{batch_id}",
        clock=clock,
        **kind,
    )
    return batch_id


def claim(
    ledger: Ledger, clock: ManualClock, owner: str = "host:w1", limit: int = 10, **kw: Any
) -> list[Lease]:
    return ledger.claim("b1", owner=owner, limit=limit, lease_seconds=LEASE_S, clock=clock, **kw)


def states(ledger: Ledger, batch_id: str = "b1") -> dict[str, str]:
    return {r["player_lookup"]: r["state"] for r in ledger.requests(batch_id)}


def done(lease: Lease, state: str = "done", **kw: Any) -> RequestOutcome:
    return RequestOutcome(lease.player_lookup, lease.attempt, state, **kw)  # type: ignore[arg-type]


# -- batches -------------------------------------------------------------------------------------


def test_create_batch_records_a_running_batch_and_pending_requests(
    ledger: Ledger, clock: ManualClock
) -> None:
    make_batch(ledger, clock, n=5)
    info = ledger.get_batch("b1")
    assert (info.batch_id, info.game_date, info.state) == ("b1", GAME_DATE, "running")
    assert (info.markets, info.systems, info.staging_table) == (("points",), ("last10", "lgbm"), "staging_b1")
    assert (info.as_of, info.created_at) == (AS_OF, clock.now())
    assert info.deadline_at == clock.now() + timedelta(minutes=30)
    assert info.consolidated_at is None and info.finished_at is None
    assert ledger.progress("b1") == {"pending": 5, "leased": 0, "done": 0, "skipped": 0, "failed": 0}
    rows = ledger.requests("b1")
    assert [r["player_lookup"] for r in rows] == players(5)
    assert rows[1] == {
        "player_lookup": "player_01",
        "player_name": "Player 01",
        "team": "BOS",
        "state": "pending",
        "attempt": 0,
        "lease_owner": None,
        "lease_expires_at": None,
        "error_code": None,
        "error_message": None,
        "rows_staged": None,
    }


@pytest.mark.cloud
def test_a_firestore_creation_failing_half_way_leaves_no_request(
    firestore_emulator: str,  # noqa: F811
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Firestore writes a batch's requests in write batches of at most 500, then the batch document. When a
    write batch fails half-way the creation raises and removes the requests it wrote: no orphan request
    documents, no batch, and the same batch id can be created afresh. Would catch: the cleanup left out (4 orphan
    requests here)."""
    from google.api_core import exceptions as gexc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    from nbaprops.errors import NbapropsError
    from nbaprops.storage.gcp import ledger as gcp_ledger

    client = firestore.Client(project=unique_project(), credentials=AnonymousCredentials())
    try:
        ledger = gcp_ledger.FirestoreLedger(client, prefix="contract")
        monkeypatch.setattr(gcp_ledger, "WRITE_BATCH_LIMIT", 2)
        make_write_batch, calls = client.batch, []

        def third_fails() -> Any:
            writes = make_write_batch()
            calls.append(writes)
            if len(calls) == 3:
                monkeypatch.setattr(
                    writes, "commit", lambda: (_ for _ in ()).throw(gexc.ServiceUnavailable("injected"))
                )
            return writes

        monkeypatch.setattr(client, "batch", third_fails)
        with pytest.raises(NbapropsError):
            make_batch(ledger, clock, n=5)
        assert ledger.requests("b1") == []
        assert len(calls) == 6  # two written, the third failed; its 6 documents deleted 2 at a time
        with pytest.raises(UnknownBatchError):
            ledger.get_batch("b1")
        monkeypatch.setattr(client, "batch", make_write_batch)
        make_batch(ledger, clock, n=5)
        assert ledger.progress("b1")["pending"] == 5
    finally:
        client.close()


def test_a_batch_keeps_its_kind(ledger: Ledger, clock: ManualClock) -> None:
    """`batches` shows daily or line_update from the ledger (on GCP it used to read the coordinator's file)."""
    make_batch(ledger, clock, batch_id="b1")
    make_batch(ledger, clock, batch_id="b2", kind="line_update")
    assert (ledger.get_batch("b1").kind, ledger.get_batch("b2").kind) == ("daily", "line_update")
    assert {b.batch_id: b.kind for b in ledger.list_batches()} == {"b1": "daily", "b2": "line_update"}


def test_an_unknown_batch_is_an_error(ledger: Ledger, clock: ManualClock) -> None:
    with pytest.raises(UnknownBatchError):
        ledger.get_batch("nope")
    with pytest.raises(UnknownBatchError):
        ledger.latch("nope", state="complete", summary={}, clock=clock)


def test_batches_are_listed_newest_first_and_filtered(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=1, batch_id="b1")
    clock.advance(1)
    make_batch(ledger, clock, n=1, batch_id="b2")
    clock.advance(1)
    make_batch(ledger, clock, n=1, batch_id="b3", game_date=GAME_DATE + timedelta(days=1))
    assert [b.batch_id for b in ledger.list_batches()] == ["b3", "b2", "b1"]
    assert [b.batch_id for b in ledger.list_batches(game_date=GAME_DATE)] == ["b2", "b1"]
    assert [b.batch_id for b in ledger.list_batches(limit=2)] == ["b3", "b2"]  # the newest, as the query's
    assert [b.batch_id for b in ledger.list_batches(game_date=GAME_DATE, limit=1)] == ["b2"]
    assert ledger.running_batch(GAME_DATE) == "b2"
    assert ledger.latch("b2", state="complete", summary={}, clock=clock)
    assert [b.batch_id for b in ledger.list_batches(state="running")] == ["b3", "b1"]
    assert [b.batch_id for b in ledger.list_batches(game_date=GAME_DATE, state="complete")] == ["b2"]
    assert ledger.running_batch(GAME_DATE) == "b1"
    assert ledger.running_batch(GAME_DATE + timedelta(days=2)) is None


def test_latch_happens_once(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock)
    clock.advance(90)
    summary = {"missing": [{"player_lookup": "player_03", "error_code": "no_history"}], "rows": 12}
    assert ledger.latch("b1", state="partial", summary=summary, clock=clock) is True
    latched_at = clock.now()
    clock.advance(5)
    assert ledger.latch("b1", state="complete", summary={"rows": 0}, clock=clock) is False
    info = ledger.get_batch("b1")
    assert (info.state, info.consolidated_at, info.finished_at) == ("partial", latched_at, latched_at)
    assert info.staging_table is None
    assert info.summary == summary


# -- claim ---------------------------------------------------------------------------------------


def test_claim_leases_up_to_limit_sorted_with_the_attempt_counted(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=5)
    first = claim(ledger, clock, limit=3)
    assert len(first) == 3
    assert [lease.player_lookup for lease in first] == sorted(lease.player_lookup for lease in first)
    assert {(lease.attempt, lease.owner, lease.batch_id) for lease in first} == {(1, "host:w1", "b1")}
    by_player = {lease.player_lookup: lease for lease in first}
    sample = by_player[first[0].player_lookup]
    index = int(sample.player_lookup[-2:])
    assert (sample.player_name, sample.player_id, sample.team, sample.opponent, sample.game_id) == (
        sample.player_lookup.replace("_", " ").title(),
        1000 + index,
        "BOS",
        "NYK",
        "g1",
    )
    assert sample.is_home is (index % 2 == 0)
    assert ledger.progress("b1") == {"pending": 2, "leased": 3, "done": 0, "skipped": 0, "failed": 0}
    second = claim(ledger, clock, owner="host:w2", limit=10)
    assert {lease.player_lookup for lease in second} == set(players(5)) - set(by_player)
    assert claim(ledger, clock, limit=10) == []
    leased = ledger.requests("b1", states=["leased"])
    assert {r["lease_owner"] for r in leased if r["player_lookup"] in by_player} == {"host:w1"}
    # check-stalled reads the expiry (its stalled_leases_left); no clock moved since the claims
    assert {r["lease_expires_at"] for r in leased} == {clock.now() + timedelta(seconds=LEASE_S)}


def test_claim_restricted_to_players_takes_only_their_pending_requests(
    ledger: Ledger, clock: ManualClock
) -> None:
    make_batch(ledger, clock, n=6)
    leases = claim(ledger, clock, players=["player_03", "player_01", "nobody"])
    assert [lease.player_lookup for lease in leases] == ["player_01", "player_03"]
    again = claim(ledger, clock, owner="host:w2", players=["player_01", "player_04"])
    assert [lease.player_lookup for lease in again] == ["player_04"]  # player_01 is leased already
    limited = claim(ledger, clock, owner="host:w3", players=["player_05", "player_00"], limit=1)
    assert [lease.player_lookup for lease in limited] == ["player_00"]
    assert states(ledger) == {
        "player_00": "leased",
        "player_01": "leased",
        "player_02": "pending",
        "player_03": "leased",
        "player_04": "leased",
        "player_05": "pending",
    }


def test_a_reclaimed_request_is_claimed_again_with_the_next_attempt(
    ledger: Ledger, clock: ManualClock
) -> None:
    make_batch(ledger, clock, n=1)
    (first,) = claim(ledger, clock)
    clock.advance(LEASE_S + 1)
    assert ledger.sweep(clock=clock, max_attempts=3).reclaimed == 1
    (second,) = claim(ledger, clock, owner="host:w2")
    assert (first.attempt, second.attempt) == (1, 2)
    assert ledger.requests("b1")[0]["attempt"] == 2


# -- complete ------------------------------------------------------------------------------------


def test_complete_ends_current_leases_and_records_rows_and_reasons(
    ledger: Ledger, clock: ManualClock
) -> None:
    make_batch(ledger, clock, n=4)
    a, b, c = claim(ledger, clock, limit=3)
    committed, lost = ledger.complete(
        "b1",
        owner="host:w1",
        outcomes=[
            done(a),
            done(b, "skipped", error_code="no_history", error_message="3 games"),
            done(c, "failed", error_code="feature_error", error_message="boom"),
        ],
        rows_staged={a.player_lookup: 7, b.player_lookup: 99},
        clock=clock,
    )
    assert (committed, lost) == (tuple(sorted([a.player_lookup, b.player_lookup, c.player_lookup])), ())
    rows = {r["player_lookup"]: r for r in ledger.requests("b1")}
    assert (rows[a.player_lookup]["state"], rows[a.player_lookup]["rows_staged"]) == ("done", 7)
    assert rows[a.player_lookup]["lease_owner"] is None
    assert (rows[b.player_lookup]["state"], rows[b.player_lookup]["error_code"]) == ("skipped", "no_history")
    assert (rows[b.player_lookup]["error_message"], rows[b.player_lookup]["rows_staged"]) == ("3 games", None)
    assert (rows[c.player_lookup]["state"], rows[c.player_lookup]["error_message"]) == ("failed", "boom")
    assert ledger.progress("b1") == {"pending": 1, "leased": 0, "done": 1, "skipped": 1, "failed": 1}


def test_complete_with_a_superseded_attempt_is_lost(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=1)
    (stale,) = claim(ledger, clock, owner="host:slow")
    clock.advance(LEASE_S + 1)
    ledger.sweep(clock=clock, max_attempts=3)
    (live,) = claim(ledger, clock, owner="host:slow")  # same owner name, next attempt
    assert ledger.complete("b1", owner="host:slow", outcomes=[done(stale)], rows_staged={}, clock=clock) == (
        (),
        ("player_00",),
    )
    assert states(ledger) == {"player_00": "leased"}
    assert ledger.complete("b1", owner="host:slow", outcomes=[done(live)], rows_staged={}, clock=clock) == (
        ("player_00",),
        (),
    )


def test_complete_by_another_owner_is_lost(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=2)
    mine, _ = claim(ledger, clock, owner="host:w1")
    result = ledger.complete("b1", owner="host:w2", outcomes=[done(mine)], rows_staged={}, clock=clock)
    assert result == ((), (mine.player_lookup,))
    assert ledger.progress("b1")["leased"] == 2


def test_complete_twice_commits_once(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=1)
    (lease,) = claim(ledger, clock)
    first = ledger.complete("b1", owner=lease.owner, outcomes=[done(lease)], rows_staged={}, clock=clock)
    second = ledger.complete(
        "b1", owner=lease.owner, outcomes=[done(lease, "failed")], rows_staged={}, clock=clock
    )
    assert (first, second) == ((("player_00",), ()), ((), ("player_00",)))
    assert states(ledger) == {"player_00": "done"}


# -- release -------------------------------------------------------------------------------------


def test_release_gives_back_only_leases_still_held(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=3)
    a, b, c = claim(ledger, clock, limit=3)
    wrong_attempt = Lease(**{**b.__dict__, "attempt": b.attempt + 1})
    wrong_owner = Lease(**{**c.__dict__, "owner": "host:w9"})
    assert ledger.release("b1", [a, wrong_attempt, wrong_owner], clock=clock) == 1
    assert states(ledger) == {
        a.player_lookup: "pending",
        b.player_lookup: "leased",
        c.player_lookup: "leased",
    }
    (again,) = claim(ledger, clock, owner="host:w2")
    assert (again.player_lookup, again.attempt) == (a.player_lookup, 2)  # the attempt was kept
    assert ledger.release("b1", [], clock=clock) == 0


def test_release_owned_gives_back_every_lease_under_a_prefix(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=5)
    claim(ledger, clock, owner="host1:w1", limit=2)
    claim(ledger, clock, owner="host1:w2", limit=1)
    (other,) = claim(ledger, clock, owner="host2:w1", limit=1)
    assert ledger.release_owned(owner_prefix="host1:", clock=clock) == 3
    assert ledger.progress("b1")["leased"] == 1
    assert ledger.requests("b1", states=["leased"])[0]["lease_owner"] == "host2:w1"
    assert ledger.requests("b1", states=["leased"])[0]["player_lookup"] == other.player_lookup


# -- sweep ---------------------------------------------------------------------------------------


def test_sweep_reclaims_only_expired_leases(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=3)
    claim(ledger, clock, limit=1)
    clock.advance(30)
    claim(ledger, clock, limit=1)
    clock.advance(31)  # the first lease expired 1 s ago, the second has 29 s left
    result = ledger.sweep(clock=clock, max_attempts=3)
    assert (result.reclaimed, result.failed, result.released_foreign) == (1, 0, 0)
    assert ledger.progress("b1") == {"pending": 2, "leased": 1, "done": 0, "skipped": 0, "failed": 0}
    reclaimed = ledger.requests("b1", states=["pending"])
    assert {(r["attempt"], r["lease_owner"]) for r in reclaimed} == {(1, None), (0, None)}


def test_sweep_waits_for_the_grace(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=1)
    claim(ledger, clock)
    clock.advance(LEASE_S + 5)
    assert ledger.sweep(clock=clock, max_attempts=3, grace_seconds=10).reclaimed == 0
    clock.advance(6)
    assert ledger.sweep(clock=clock, max_attempts=3, grace_seconds=10).reclaimed == 1


def test_sweep_fails_requests_whose_attempts_are_spent(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=2)
    claim(ledger, clock, limit=2)
    clock.advance(LEASE_S + 1)
    ledger.sweep(clock=clock, max_attempts=2)
    claim(ledger, clock, players=["player_00"])  # attempt 2 of 2
    clock.advance(LEASE_S + 1)
    result = ledger.sweep(clock=clock, max_attempts=2)
    assert (result.reclaimed, result.failed) == (0, 1)
    failed = ledger.requests("b1", states=["failed"])
    assert [(r["player_lookup"], r["error_code"]) for r in failed] == [("player_00", "max_attempts_exceeded")]
    assert failed[0]["error_message"] == "lease expired after 2 attempt(s)"
    assert states(ledger)["player_01"] == "pending"


def test_sweep_releases_leases_of_a_foreign_owner_prefix(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=3)
    claim(ledger, clock, owner="me:w1", players=["player_00"])
    claim(ledger, clock, owner="dead:w1", players=["player_01"])
    result = ledger.sweep(clock=clock, max_attempts=3, foreign_owner_prefix_not="me:")
    assert (result.reclaimed, result.failed, result.released_foreign) == (0, 0, 1)
    assert states(ledger) == {"player_00": "leased", "player_01": "pending", "player_02": "pending"}
    claim(ledger, clock, owner="dead:w2", players=["player_01"])  # attempt 2
    result = ledger.sweep(clock=clock, max_attempts=2, foreign_owner_prefix_not="me:")
    assert (result.failed, result.released_foreign) == (1, 0)
    assert states(ledger)["player_01"] == "failed"


def test_sweep_of_one_batch_leaves_the_others(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=1, batch_id="b1")
    make_batch(ledger, clock, n=1, batch_id="b2")
    claim(ledger, clock)
    ledger.claim("b2", owner="host:w1", limit=1, lease_seconds=LEASE_S, clock=clock)
    clock.advance(LEASE_S + 1)
    assert ledger.sweep(clock=clock, max_attempts=3, batch_id="b2").reclaimed == 1
    assert (states(ledger, "b1"), states(ledger, "b2")) == ({"player_00": "leased"}, {"player_00": "pending"})
    assert ledger.sweep(clock=clock, max_attempts=3).reclaimed == 1


# -- fail_requests and requests ------------------------------------------------------------------


def test_fail_requests_ends_every_open_request(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=5)
    a, _ = claim(ledger, clock, limit=2)
    ledger.complete("b1", owner=a.owner, outcomes=[done(a)], rows_staged={a.player_lookup: 3}, clock=clock)
    assert ledger.fail_requests("b1", error_code="deadline", error_message="batch deadline", clock=clock) == 4
    assert ledger.progress("b1") == {"pending": 0, "leased": 0, "done": 1, "skipped": 0, "failed": 4}
    failed = ledger.requests("b1", states=["failed"])
    assert {(r["error_code"], r["error_message"], r["lease_owner"]) for r in failed} == {
        ("deadline", "batch deadline", None)
    }
    assert ledger.fail_requests("b1", error_code="deadline", clock=clock) == 0


def test_fail_requests_of_some_players_leaves_the_rest(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=4)
    (leased,) = claim(ledger, clock, players=["player_01"])
    ledger.complete("b1", owner=leased.owner, outcomes=[done(leased)], rows_staged={}, clock=clock)
    n = ledger.fail_requests(
        "b1", error_code="dead_lettered", players=["player_00", "player_01", "player_02"], clock=clock
    )
    assert n == 2  # player_01 was already done
    assert states(ledger) == {
        "player_00": "failed",
        "player_01": "done",
        "player_02": "failed",
        "player_03": "pending",
    }


def test_requests_filter_by_state(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=4)
    claim(ledger, clock, players=["player_02", "player_03"])
    assert [r["player_lookup"] for r in ledger.requests("b1", states=["leased"])] == [
        "player_02",
        "player_03",
    ]
    assert [r["player_lookup"] for r in ledger.requests("b1", states=["pending", "done"])] == [
        "player_00",
        "player_01",
    ]
    assert ledger.requests("b1", states=["failed"]) == []
    assert ledger.requests("other") == []


# -- concurrency ---------------------------------------------------------------------------------


def in_threads(n: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` in ``n`` threads released together; re-raise the first error."""
    start = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_concurrent_claimers_never_lease_a_request_twice(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=40)
    claims = in_threads(
        20, lambda i: retry_transient(lambda: claim(ledger, clock, owner=f"host:w{i:02d}", limit=3))
    )
    leased = [lease.player_lookup for leases in claims for lease in leases]
    assert len(leased) == len(set(leased))
    assert ledger.progress("b1")["leased"] == len(leased)
    owners = {r["player_lookup"]: r["lease_owner"] for r in ledger.requests("b1", states=["leased"])}
    assert owners == {lease.player_lookup: lease.owner for leases in claims for lease in leases}
    assert all(len(leases) <= 3 for leases in claims)
    assert len(leased) >= 30  # claimers that lost races went on to other requests


def test_concurrent_completions_on_different_requests_all_commit(ledger: Ledger, clock: ManualClock) -> None:
    make_batch(ledger, clock, n=20)
    leases = [claim(ledger, clock, owner=f"host:w{i:02d}", limit=1)[0] for i in range(20)]
    results = in_threads(
        20,
        lambda i: retry_transient(
            lambda: ledger.complete(
                "b1",
                owner=leases[i].owner,
                outcomes=[done(leases[i])],
                rows_staged={leases[i].player_lookup: i},
                clock=clock,
            )
        ),
    )
    assert sorted(p for committed, _ in results for p in committed) == players(20)
    assert all(lost == () for _, lost in results)
    assert ledger.progress("b1") == {"pending": 0, "leased": 0, "done": 20, "skipped": 0, "failed": 0}
    assert {r["player_lookup"]: r["rows_staged"] for r in ledger.requests("b1")} == {
        lease.player_lookup: i for i, lease in enumerate(leases)
    }
